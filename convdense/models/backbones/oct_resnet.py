"""Oct-ResNet (Chen et al., "Drop an Octave", ICCV 2019) on mmdet's ResNet.

Every convolution of every bottleneck (1x1, 3x3, 1x1 and the projection
shortcut) is an :class:`~convdense.ops.octconv.OctaveConv2d`; the stem stays a
plain convolution. Feature maps travel between blocks as ``(x_high, x_low)``
pairs, the low group at half resolution.

Reading of the paper that reproduces its table (ResNet-50: 25.6 M params,
2.4 / 3.6 / 3.1 / 1.9 GFLOPs at alpha = .5 / .125 / .25 / .75), the one of the
authors' reference code:

* per-stage ratios ``(alpha, alpha, alpha, 0)``: the last stage is a plain
  ResNet stage; its first block's ``conv1`` and shortcut take the octave pair
  of stage 3 (``alpha_in = alpha``, ``alpha_out = 0``);
* the first octave layers (``conv1`` and shortcut of the first block of
  stage 1) have ``alpha_in = 0``;
* every conv of a block works at the stage's ratio (``alpha_in = alpha_out``
  inside a stage), ``int(alpha * C)`` channels being low-frequency;
* stride 2 in an octave conv is 2x2 average pooling before the conv.

One option reproduces the d-li14/octconv.pytorch ImageNet release exactly:
there *every* stride-2 conv pools, including the one whose alphas are both 0
(``layer4.0.conv2`` in the default layout), where a ResNet (and the default
``strided_downsample='conv'``) uses a stride-2 conv. Checkpoints converted with
``tools/model_converters/oct_resnet_dli14.py`` need
``strided_downsample='avgpool'`` to compute the release's function.

Parameter counts equal ResNet's: the octave weights are the plain weights
partitioned, and each norm is split into a high and a low part of the same
total width. A plain ResNet checkpoint (mmdet or torchvision layout) therefore
loads through ``init_cfg=dict(type='Pretrained', checkpoint=...)``: conv keys
match as they are, and each full-width norm entry is split into its ``high`` /
``low`` halves on load.

Outputs: at each of ``out_indices`` the low group is upsampled (nearest) and
concatenated after the high group, giving the usual single NCHW tensor with
ResNet's channel width at strides 4/8/16/32. Any input size works: all
downsampling uses ``ceil`` sizes like ResNet's strided convs, and upsampled
low maps are cropped to the high map.
"""
from typing import Optional, Sequence, Tuple, Union

import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmdet.models.backbones.resnet import Bottleneck
from mmengine.model import Sequential
from torch import Tensor, nn

from convdense.models.pretrained import Release
from convdense.ops.octconv import (STRIDED_DOWNSAMPLES, OctaveConv2d, merge_octave,
                                   octave_split)
from convdense.registry import MODELS

from .base import ResNetVariant

OctavePair = Tuple[Tensor, Optional[Tensor]]


class OctaveNorm(nn.Module):
    """One norm layer per frequency group: ``(x_high, x_low) -> (y_high, y_low)``.

    Loads a plain norm's full-width state (``weight``, ``running_mean``, ...)
    by splitting it, high channels first.
    """

    def __init__(self, norm_cfg: dict, channels: int, alpha: float):
        super().__init__()
        self.channels = channels
        high, low = octave_split(channels, alpha)
        self.high = build_norm_layer(norm_cfg, high)[1]
        self.low = build_norm_layer(norm_cfg, low)[1] if low else None
        self.split = (high, low)

    def forward(self, x: OctavePair) -> OctavePair:
        x_high, x_low = x
        return self.high(x_high), None if self.low is None else self.low(x_low)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        plain_keys = [key for key in state_dict
                      if key.startswith(prefix) and '.' not in key[len(prefix):]]
        high, _ = self.split
        for key in plain_keys:
            value = state_dict.pop(key)
            name = key[len(prefix):]
            per_channel = value.dim() >= 1 and value.shape[0] == self.channels
            state_dict[f'{prefix}high.{name}'] = value[:high] if per_channel else value
            if self.low is not None:
                state_dict[f'{prefix}low.{name}'] = value[high:] if per_channel else value
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class OctaveBottleneck(Bottleneck):
    """mmdet's ``Bottleneck`` with octave convolutions and norms.

    Input: a tensor ``(N, inplanes, H, W)`` (``alpha_in == 0``) or an octave
    pair; output: an octave pair at ratio ``alpha_out`` with
    ``planes * 4`` channels in all, spatial size ``ceil(H / stride)``.
    """

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 alpha_in: float = 0.5,
                 alpha_out: float = 0.5,
                 strided_downsample: str = 'conv',
                 conv_cfg: Optional[dict] = None,
                 dcn: Optional[dict] = None,
                 plugins: Optional[list] = None,
                 **kwargs):
        if conv_cfg is not None or dcn is not None or plugins is not None:
            raise ValueError('OctResNet blocks build their own octave convs: '
                             'conv_cfg, dcn and plugins must be None')
        super().__init__(inplanes, planes, **kwargs)
        self.alpha_in = alpha_in
        self.alpha_out = alpha_out
        width, out_width = planes, planes * self.expansion
        self.conv1 = OctaveConv2d(inplanes, width, 1, alpha_in, alpha_out,
                                  stride=self.conv1_stride,
                                  strided_downsample=strided_downsample)
        self.conv2 = OctaveConv2d(width, width, 3, alpha_out, alpha_out,
                                  stride=self.conv2_stride,
                                  padding=self.dilation, dilation=self.dilation,
                                  strided_downsample=strided_downsample)
        self.conv3 = OctaveConv2d(width, out_width, 1, alpha_out, alpha_out)
        for name, channels in ((self.norm1_name, width), (self.norm2_name, width),
                               (self.norm3_name, out_width)):
            self.add_module(name, OctaveNorm(self.norm_cfg, channels, alpha_out))

    def _relu(self, x: OctavePair) -> OctavePair:
        return tuple(None if t is None else self.relu(t) for t in x)

    def _residual(self, x_high: Tensor, x_low: Optional[Tensor]) -> OctavePair:
        x = (x_high, x_low)
        out = self._relu(self.norm1(self.conv1(x)))
        out = self._relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        # In place, like mmdet's ``out += identity``: the norm output is not
        # needed for the backward pass, and this saves a full-size allocation.
        return tuple(None if o is None else o.add_(i) for o, i in zip(out, identity))

    def forward(self, x: Union[Tensor, OctavePair]) -> OctavePair:
        x_high, x_low = (x, None) if isinstance(x, Tensor) else x
        if self.with_cp and x_high.requires_grad:
            out = cp.checkpoint(self._residual, x_high, x_low, use_reentrant=False)
        else:
            out = self._residual(x_high, x_low)
        return self._relu(out)


class OctaveResLayer(Sequential):
    """A stage of :class:`OctaveBottleneck` s; the first block moves from
    ``alpha_in`` (the previous stage's ratio) to the stage ratio ``alpha``."""

    def __init__(self, block, inplanes: int, planes: int, num_blocks: int,
                 alpha_in: float, alpha: float, stride: int = 1,
                 avg_down: bool = False, norm_cfg: dict = dict(type='BN'),
                 strided_downsample: str = 'conv', **kwargs):
        if avg_down:
            raise ValueError('OctResNet shortcuts already downsample by average '
                             'pooling (octave stride); avg_down must be False')
        out_channels = planes * block.expansion
        downsample = None
        if stride != 1 or inplanes != out_channels:
            downsample = nn.Sequential(
                OctaveConv2d(inplanes, out_channels, 1, alpha_in, alpha, stride=stride,
                             strided_downsample=strided_downsample),
                OctaveNorm(norm_cfg, out_channels, alpha))
        kwargs.update(norm_cfg=norm_cfg, strided_downsample=strided_downsample)
        layers = [block(inplanes, planes, alpha_in=alpha_in, alpha_out=alpha,
                        stride=stride, downsample=downsample, **kwargs)]
        layers += [block(out_channels, planes, alpha_in=alpha, alpha_out=alpha, **kwargs)
                   for _ in range(1, num_blocks)]
        super().__init__(*layers)


@MODELS.register_module()
class OctResNet(ResNetVariant):
    """Oct-ResNet backbone (``dict(type='convdense.OctResNet', depth=50)`` is
    the paper's Oct-ResNet-50, alpha = 0.5).

    Args:
        depth: 50, 101 or 152.
        alpha: low-frequency ratio of stages 1-3.
        stage_alphas: per-stage ratios overriding ``alpha``; default
            ``(alpha, alpha, alpha, 0)`` as in the paper.
        strided_downsample: how stride-2 convs with no low-frequency group
            downsample: ``'conv'`` (default, a strided conv as in ResNet) or
            ``'avgpool'`` (2x2 average pooling + conv, as the d-li14 release
            runs them; needed for its converted checkpoints). Octave convs
            with a low group always pool. Parameters and FLOPs of the convs
            are the same either way.
        **kwargs: mmdet ``ResNet`` arguments (``out_indices``,
            ``frozen_stages``, ``norm_cfg``, ``norm_eval``, ``style``,
            ``with_cp``, ``init_cfg``, ...); ``dcn``, ``plugins``,
            ``conv_cfg`` and ``avg_down`` are not supported.

    Input ``(N, 3, H, W)``; output: a tuple with, for each ``i`` in
    ``out_indices``, ``(N, 256 * 2**i, ceil(H / 2**(i+2)), ceil(W / 2**(i+2)))``.
    """

    shape_arguments = ('alpha', 'stage_alphas')
    compatible_layouts = ('plain ResNet',)
    arch_settings = {
        50: (OctaveBottleneck, (3, 4, 6, 3)),
        101: (OctaveBottleneck, (3, 4, 23, 3)),
        152: (OctaveBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, depth: int, alpha: float = 0.5,
                 stage_alphas: Optional[Sequence[float]] = None,
                 strided_downsample: str = 'conv', **kwargs):
        num_stages = kwargs.get('num_stages', 4)
        if stage_alphas is None:
            stage_alphas = [alpha] * (num_stages - 1) + [0.0]
        stage_alphas = tuple(float(a) for a in stage_alphas)
        if len(stage_alphas) != num_stages:
            raise ValueError(f'stage_alphas needs {num_stages} values, got {stage_alphas}')
        for a in stage_alphas:
            octave_split(64, a)  # range check with a clear message
        for unsupported in ('dcn', 'plugins', 'conv_cfg'):
            if kwargs.get(unsupported) is not None:
                raise ValueError(f'OctResNet does not support {unsupported}')
        if strided_downsample not in STRIDED_DOWNSAMPLES:
            raise ValueError(f'OctResNet strided_downsample must be one of '
                             f'{STRIDED_DOWNSAMPLES}, got {strided_downsample!r}')
        self.alpha = alpha
        self.stage_alphas = stage_alphas
        self.strided_downsample = strided_downsample
        super().__init__(depth, **kwargs)

    def make_res_layer(self, **kwargs) -> OctaveResLayer:
        # ResNet.__init__ appends each stage's name after building it.
        stage = len(self.res_layers)
        alpha_in = self.stage_alphas[stage - 1] if stage > 0 else 0.0
        for unused in ('conv_cfg', 'dcn', 'plugins'):
            kwargs.pop(unused, None)
        kwargs['init_cfg'] = self.last_norm_init_cfg()
        return OctaveResLayer(alpha_in=alpha_in, alpha=self.stage_alphas[stage],
                              strided_downsample=self.strided_downsample, **kwargs)

    def forward_stages(self, x: Tensor) -> tuple:
        """The stem, then octave stages; each output merged to one map."""
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(x)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(merge_octave(*x))
        return tuple(outs)

    def release(self):
        """d-li14/octconv.pytorch's Oct-ResNet-50, alpha = 0.5 (plain stem)."""
        if self.depth != 50 or self.deep_stem or self.stage_alphas != (0.5, 0.5, 0.5, 0.0):
            return None
        return Release('oct_resnet50_cosine.pth', 'https://github.com/d-li14/octconv.pytorch',
                       'tools/model_converters/oct_resnet_dli14.py')
