"""HetConv-ResNet (Singh et al., "HetConv: Heterogeneous Kernel-Based
Convolutions for Deep CNNs", CVPR 2019): mmdet's ResNet with every bottleneck's
3x3 conv replaced by a :class:`~convdense.ops.hetconv.HetConv2d`."""
from convdense.models.pretrained import Release
from convdense.ops.hetconv import HetConv2d
from convdense.registry import MODELS
from mmdet.models.backbones.resnet import Bottleneck

from .base import ResNetVariant


class HetConvBottleneck(Bottleneck):
    """mmdet's Bottleneck whose 3x3 ``conv2`` is a HetConv with part ``P``.

    Each of the ``planes`` filters of ``conv2`` has ``planes / P`` 3x3 kernels and
    ``planes - planes / P`` 1x1 kernels; ``conv1``, ``conv3``, the norms, plugins
    and the forward pass are mmdet's. ``conv_cfg`` applies to ``conv1``/``conv3``.

    Input ``(B, inplanes, H, W)``; output ``(B, planes * 4, ceil(H / stride), ceil(W / stride))``.
    """
    expansion = 4

    def __init__(self, inplanes, planes, part=4, **kwargs):
        if kwargs.get('dcn') is not None:
            raise ValueError('HetConv blocks do not support dcn')
        super().__init__(inplanes, planes, **kwargs)
        self.conv2 = HetConv2d(planes, planes, kernel_size=3, part=part,
                               stride=self.conv2_stride, dilation=self.dilation)


@MODELS.register_module(name='HetConvResNet')
class HetConvResNet(ResNetVariant):
    """ResNet whose bottleneck 3x3 convs are HetConvs.

    Defaults give the paper's ResNet-50 HetConv ``P4`` (Table 6: 2.85 GFLOPs as
    a classifier, vs 4.09 G for ``part=1``, a plain ResNet-50). All 16
    bottleneck 3x3 convs become HetConvs, the strided ones included; the 7x7
    stem, the 1x1 convs and the shortcuts stay plain, which is the reading that
    reproduces the table. Each HetConv's 1x1 kernels cover exactly the channels
    its 3x3 kernels do not (see :mod:`convdense.ops.hetconv`), so the counted
    multiply-adds are the paper's formula, not a dense pointwise conv's.

    Args:
        depth (int): 50, 101 or 152.
        part (int): P, dividing every stage width (64 * 2**i); 1 is a plain ResNet.
        **kwargs: mmdet ``ResNet`` arguments (``out_indices``, ``frozen_stages``,
            ``norm_cfg``, ``norm_eval``, ``style``, ``with_cp``, ``plugins``,
            ``init_cfg``, ...).

    Input ``(B, 3, H, W)``; output a tuple, for each of ``out_indices``, of
    ``(B, 256 * 2**i, ceil(H / 2**(i+2)), ceil(W / 2**(i+2)))``.
    """
    shape_arguments = ('part',)
    arch_settings = {
        50: (HetConvBottleneck, (3, 4, 6, 3)),
        101: (HetConvBottleneck, (3, 4, 23, 3)),
        152: (HetConvBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, depth, part=4, **kwargs):
        base_channels = kwargs.get('base_channels', 64)
        if not isinstance(part, int) or part < 1 or base_channels % part:
            raise ValueError(f'HetConvResNet part must be a positive int dividing '
                             f'base_channels={base_channels}, got {part!r}')
        super().__init__(depth, block_kwargs=dict(part=part), **kwargs)

    def release(self):
        """No HetConv weights were released: torchvision's ImageNet ResNet-50,
        inflated by ``resnet_to_hetconv.py`` (plain stem only)."""
        if self.depth != 50 or self.deep_stem:
            return None
        return Release('resnet50-0676ba61.pth',
                       'https://download.pytorch.org/models/resnet50-0676ba61.pth',
                       'tools/model_converters/resnet_to_hetconv.py',
                       f'--part {self.block_kwargs["part"]}')
