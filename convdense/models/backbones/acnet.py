"""ACNet-ResNet (Wang et al., "Adaptively Connected Neural Networks", CVPR 2019)
on mmdet's ResNet.

The 3x3 convolution of every bottleneck becomes an
:class:`~convdense.ops.adaptive_conv.AdaptiveConv2d`: a softmax-gated mix of a
1x1 (self), the 3x3 (local) and a global-pooling + two-fc (global) branch; the
block's ``norm2`` and ReLU follow the mix, as in the authors' code. Everything
else is mmdet's ``Bottleneck`` / ``ResNet``.

``dict(type='convdense.ACNet', depth=50)`` is the paper's dataset-aware
ACNet-ResNet50 (29.34 M params vs the paper's 29.38 M); ``mode='pixel'`` the
pixel-aware one (31.85 M vs 31.85 M). How the branch design was chosen to give
these figures is in :mod:`convdense.ops.adaptive_conv`. The gates do not
depend on the input size, so any detection / segmentation input works.

A plain ResNet checkpoint loads through ``init_cfg=dict(type='Pretrained',
checkpoint=...)``: each ``conv2.weight`` goes to ``conv2.local_branch.weight``,
the new branches keep their initialisation (logged); any other mismatch raises
(:mod:`convdense.models.pretrained`). The official tensorpack release converts
with ``tools/model_converters/acnet_tensorpack.py``; it was trained with TF "SAME"
padding, which ``strided_padding='tf_same'`` reproduces on the strided layers (stem
conv, max-pool, strided 3x3 convs; elsewhere TF's padding equals PyTorch's).
"""
from typing import Dict, Optional

from mmdet.models.backbones.resnet import Bottleneck
from torch import Tensor

from convdense.models.pretrained import Release
from convdense.ops.adaptive_conv import ADAPTIVE_MODES, AdaptiveConv2d
from convdense.ops.padding import STRIDED_PADDINGS, TFSameConv2d, TFSameMaxPool2d
from convdense.registry import MODELS

from .base import ResNetVariant


class AdaptiveBottleneck(Bottleneck):
    """mmdet's ``Bottleneck`` whose ``conv2`` is an adaptively connected conv.

    Shapes are those of ``Bottleneck``: ``(N, inplanes, H, W) ->
    (N, 4 * planes, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, inplanes: int, planes: int, mode: str = 'dataset',
                 strided_padding: str = 'symmetric',
                 conv_cfg: Optional[dict] = None, dcn: Optional[dict] = None,
                 **kwargs):
        if conv_cfg is not None or dcn is not None:
            raise ValueError('ACNet replaces the 3x3 conv itself: conv_cfg and dcn must be None')
        super().__init__(inplanes, planes, **kwargs)
        self.conv2 = AdaptiveConv2d(planes, planes, 3, stride=self.conv2_stride,
                                    padding=self.dilation, dilation=self.dilation,
                                    mode=mode, strided_padding=strided_padding)


@MODELS.register_module()
class ACNet(ResNetVariant):
    """ACNet-ResNet backbone.

    Args:
        depth: 50, 101 or 152.
        mode: ``'dataset'`` (one learnable gate triple per layer) or
            ``'pixel'`` (gates predicted at every pixel).
        strided_padding: ``'symmetric'`` (default, PyTorch's) or ``'tf_same'``:
            the stem conv, the max-pool and the strided 3x3 convs padded as
            TensorFlow's "SAME" (more at the bottom / right on even sides), as
            the tensorpack release was trained; needed for its converted
            checkpoints to compute the release's function. Needs the plain
            7x7 stem (``deep_stem=False``).
        **kwargs: mmdet ``ResNet`` arguments (``out_indices``,
            ``frozen_stages``, ``norm_cfg``, ``norm_eval``, ``style``,
            ``with_cp``, ``plugins``, ``init_cfg``, ...); ``dcn`` and
            ``conv_cfg`` are not supported.

    Input ``(N, 3, H, W)``; output: a tuple with, for each ``i`` in
    ``out_indices``, ``(N, 256 * 2**i, ceil(H / 2**(i+2)), ceil(W / 2**(i+2)))``.
    """

    shape_arguments = ('mode',)
    compatible_layouts = ('plain ResNet',)
    new_parameters = r'\.conv2\.(self_branch|global_fc[12]|gate_logits|gate_hidden|gate_out)(\.|$)'
    arch_settings = {
        50: (AdaptiveBottleneck, (3, 4, 6, 3)),
        101: (AdaptiveBottleneck, (3, 4, 23, 3)),
        152: (AdaptiveBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, depth: int, mode: str = 'dataset', strided_padding: str = 'symmetric',
                 **kwargs):
        if mode not in ADAPTIVE_MODES:
            raise ValueError(f'ACNet mode must be one of {ADAPTIVE_MODES}, got {mode!r}')
        if strided_padding not in STRIDED_PADDINGS:
            raise ValueError(f'ACNet strided_padding must be one of {STRIDED_PADDINGS}, '
                             f'got {strided_padding!r}')
        if strided_padding == 'tf_same' and kwargs.get('deep_stem'):
            raise ValueError("ACNet strided_padding='tf_same' needs the plain 7x7 stem "
                             '(deep_stem=False), as the tensorpack release has')
        if kwargs.get('conv_cfg') is not None:
            raise ValueError('ACNet does not support conv_cfg')
        self.mode = mode
        self.strided_padding = strided_padding
        super().__init__(depth, block_kwargs=dict(mode=mode, strided_padding=strided_padding),
                         **kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int):
        """mmdet's stem; with ``strided_padding='tf_same'`` its 7x7 conv and
        max-pool pad as TF "SAME" where that differs from their own padding
        (same parameters and state-dict keys)."""
        super()._make_stem_layer(in_channels, stem_channels)
        if self.strided_padding == 'tf_same':
            conv = self.conv1
            self.conv1 = TFSameConv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                                      conv.stride, conv.padding, conv.dilation, conv.groups,
                                      bias=conv.bias is not None)
            pool = self.maxpool
            self.maxpool = TFSameMaxPool2d(pool.kernel_size, pool.stride, pool.padding)

    def last_gates(self) -> Dict[str, Tensor]:
        """Gates of the last forward pass, ``{'layer1.0': gates, ...}``.

        Each is ``(3,)`` in dataset mode or ``(N, 3, H_i, W_i)`` in pixel mode,
        order ``(alpha, beta, gamma)`` = (self, local, global) (ACNet Fig. 3).
        """
        return {name[:-len('.conv2')]: module.last_gates
                for name, module in self.named_modules()
                if isinstance(module, AdaptiveConv2d) and module.last_gates is not None}

    def release(self):
        """The official dataset-aware ACNet-ResNet50 (tensorpack ``.npz``); the
        pixel-aware release does not convert (see the converter)."""
        if self.depth != 50 or self.mode != 'dataset' or self.deep_stem:
            return None
        return Release('acnet_resnet50.npz',
                       'https://github.com/wanggrun/Adaptively-Connected-Neural-Networks',
                       'tools/model_converters/acnet_tensorpack.py')
