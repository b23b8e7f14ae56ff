"""Res2Net and Res2NeXt (Gao et al., "Res2Net: A New Multi-scale Backbone
Architecture", TPAMI 2019), on mmdet's ResNet scaffolding.

Registered as ``convdense.Res2Net``: mmdet's own ``Res2Net`` (the v1b variant
with a deep stem and average-pool shortcuts) stays untouched in the ``mmdet``
scope, and this one builds from mmdet and mmseg configs alike.
"""
import math

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnet import Bottleneck
from mmdet.models.layers import SELayer

from convdense.models.pretrained import Release
from convdense.registry import MODELS

from .base import ResNetVariant


class Res2NetBottleneck(Bottleneck):
    """Bottleneck whose 3x3 conv is replaced by hierarchical 3x3 convs over splits.

    ``conv1`` (1x1) widens the input to ``scales`` splits of ``width`` channels,
    ``width = floor(planes * base_width / 64) * groups``. Splits ``0 .. scales-2``
    each go through a 3x3 conv (``groups`` groups, so ``groups > 1`` is
    Res2NeXt) + BN + ReLU, and from split 1 on the conv's input is the split plus
    the previous conv's output, so later splits see ever larger receptive
    fields. The last split is passed on unchanged. ``conv3`` (1x1) fuses the
    concatenation back to ``planes * 4`` channels; an optional SE block
    reweights them before the residual sum.

    In a block that changes shape (it has a ``downsample``: the first block of
    every ResNet stage) the splits are not chained, since the stride and width
    change, and the last split goes through a 3x3 average pool with the block's
    stride (also when that stride is 1, as in the official implementation;
    mmdet's v1b variant skips the pool there). Parameter and module names follow
    the official code (``convs.i``, ``bns.i``, ``bn1``, ``bn3``), so its
    ImageNet checkpoints load without key mapping.

    Input ``(B, inplanes, H, W)``; output ``(B, planes * 4, H', W')``,
    ``H' = ceil(H / stride)``.
    """
    expansion = 4

    def __init__(self, inplanes, planes, scales=4, base_width=26, groups=1,
                 with_se=False, se_ratio=16, **kwargs):
        if scales < 2:
            raise ValueError(f'Res2Net needs scales >= 2, got {scales} '
                             '(scales=1 is a plain ResNet bottleneck)')
        if kwargs.get('dcn') is not None:
            raise ValueError('Res2Net blocks do not support dcn')
        if kwargs.get('plugins'):
            raise ValueError('Res2Net blocks do not support plugins')
        super().__init__(inplanes, planes, **kwargs)
        width = math.floor(planes * base_width / 64) * groups
        if width == 0:
            raise ValueError(f'Res2Net split width is 0 for planes={planes}, '
                             f'base_width={base_width}')
        is_gn = self.norm_cfg.get('type') == 'GN'
        groups_of_norm = self.norm_cfg.get('num_groups') if is_gn else None
        if groups_of_norm and (width % groups_of_norm or width * scales % groups_of_norm):
            raise ValueError(f'Res2Net: GN num_groups={groups_of_norm} does not divide the '
                             f'{width}-channel splits ({width * scales} channels in all) of '
                             f'base_width={base_width}, scales={scales}; use BN / SyncBN or a '
                             'num_groups dividing both')
        self.scales, self.width, self.groups = scales, width, groups
        self.changes_shape = self.downsample is not None

        # Replace mmdet's conv1/conv2/conv3 (built for a plain bottleneck).
        del self.conv2
        delattr(self, self.norm2_name)
        self.conv1 = build_conv_layer(self.conv_cfg, inplanes, width * scales, 1,
                                      stride=self.conv1_stride, bias=False)
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, width * scales, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.convs = nn.ModuleList(
            build_conv_layer(self.conv_cfg, width, width, 3, stride=self.conv2_stride,
                             padding=self.dilation, dilation=self.dilation,
                             groups=groups, bias=False)
            for _ in range(scales - 1))
        self.bns = nn.ModuleList(
            build_norm_layer(self.norm_cfg, width)[1] for _ in range(scales - 1))
        self.pool = None
        if self.changes_shape:
            self.pool = nn.AvgPool2d(3, stride=self.conv2_stride, padding=1)
        self.conv3 = build_conv_layer(self.conv_cfg, width * scales,
                                      planes * self.expansion, 1, bias=False)
        self.norm3_name, norm3 = build_norm_layer(self.norm_cfg, planes * self.expansion,
                                                  postfix=3)
        self.add_module(self.norm3_name, norm3)
        self.se = SELayer(planes * self.expansion, ratio=se_ratio) if with_se else None

    def fold_paired_norms(self) -> int:
        """Fold each split's eval-mode batch norm (``bns.i``) into its conv
        (``convs.i``), which gains a bias; the norm becomes ``nn.Identity``. Called by
        :func:`convdense.deploy.switch_to_deploy`: mmcv's ``fuse_conv_bn`` only pairs
        consecutive children. Returns how many were folded."""
        from mmcv.cnn.utils.fuse_conv_bn import _fuse_conv_bn
        folded = 0
        for i, norm in enumerate(self.bns):
            if isinstance(norm, nn.modules.batchnorm._BatchNorm) and not norm.training:
                self.convs[i] = _fuse_conv_bn(self.convs[i], norm)
                self.bns[i] = nn.Identity()
                folded += 1
        return folded

    def forward_splits(self, x):
        """The multi-scale 3x3 stage: ``(B, width*scales, H, W)`` -> ``(B, width*scales, H', W')``."""
        splits = torch.split(x, self.width, dim=1)
        outputs = []
        previous = None
        for i, (conv, norm) in enumerate(zip(self.convs, self.bns)):
            branch = splits[i]
            if previous is not None and not self.changes_shape:
                branch = branch + previous
            previous = self.relu(norm(conv(branch)))
            outputs.append(previous)
        last = splits[-1]
        outputs.append(self.pool(last) if self.pool is not None else last)
        return torch.cat(outputs, dim=1)

    def forward(self, x):
        """``(B, inplanes, H, W)`` -> ``(B, planes * 4, H', W')``."""

        def _inner_forward(x):
            out = self.relu(self.norm1(self.conv1(x)))
            out = self.forward_splits(out)
            out = self.norm3(self.conv3(out))
            if self.se is not None:
                out = self.se(out)
            identity = x if self.downsample is None else self.downsample(x)
            return out + identity

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x, use_reentrant=False)
        else:
            out = _inner_forward(x)
        return self.relu(out)


@MODELS.register_module(name='Res2Net')
class Res2Net(ResNetVariant):
    """Res2Net / Res2NeXt backbone.

    Defaults give the paper's Res2Net-50 ``26w x 4s`` (Table 1: 25.7 M
    parameters, 4.2 GFLOPs as a classifier): a plain 7x7 stem and strided 1x1
    shortcuts, as in the paper and its official code, not mmdet's v1b variant.

    Args:
        depth (int): 50, 101 or 152.
        scales (int): splits per block (``s``), >= 2.
        base_width (int): channels per split in the first stage (``w``).
        groups (int): groups of each split's 3x3 conv (cardinality ``c``); > 1 gives
            Res2NeXt (e.g. ``groups=8, base_width=4, scales=4``).
        with_se (bool): add a squeeze-and-excitation block (``se_ratio``) to every block.
        **kwargs: mmdet ``ResNet`` arguments (``out_indices``, ``frozen_stages``,
            ``norm_cfg``, ``norm_eval``, ``style``, ``deep_stem``, ``avg_down``,
            ``with_cp``, ``init_cfg``, ...).

    Input ``(B, 3, H, W)``; output a tuple, for each of ``out_indices``, of
    ``(B, 256 * 2**i, ceil(H / 2**(i+2)), ceil(W / 2**(i+2)))``.
    """
    shape_arguments = ('scales', 'base_width', 'groups', 'with_se')
    #: Official releases (github.com/Res2Net/Res2Net-PretrainedModels) by
    #: (depth, scales, base_width, groups, v1b): v1b is the deep stem with
    #: average-pool shortcuts (``deep_stem=True, avg_down=True``).
    releases = {
        (50, 4, 26, 1, False): 'res2net50_26w_4s-06e79181.pth',
        (50, 4, 26, 1, True): 'res2net50_v1b_26w_4s-3cf99910.pth',
        (101, 4, 26, 1, True): 'res2net101_v1b_26w_4s-0812c246.pth',
    }
    arch_settings = {
        50: (Res2NetBottleneck, (3, 4, 6, 3)),
        101: (Res2NetBottleneck, (3, 4, 23, 3)),
        152: (Res2NetBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, depth, scales=4, base_width=26, groups=1, with_se=False,
                 se_ratio=16, **kwargs):
        super().__init__(depth, block_kwargs=dict(
            scales=scales, base_width=base_width, groups=groups,
            with_se=with_se, se_ratio=se_ratio), **kwargs)

    def release(self):
        """The official checkpoint of this architecture (plain or v1b), if any."""
        kwargs = self.block_kwargs
        key = (self.depth, kwargs['scales'], kwargs['base_width'], kwargs['groups'],
               self.deep_stem and self.avg_down)
        if kwargs['with_se'] or key not in self.releases or self.deep_stem != self.avg_down:
            return None
        return Release(self.releases[key], 'https://github.com/Res2Net/Res2Net-PretrainedModels',
                       'tools/model_converters/res2net.py')
