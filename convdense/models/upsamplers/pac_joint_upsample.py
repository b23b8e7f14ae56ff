"""PAC joint upsampling network (Su et al., CVPR 2019, Sec. 5.1).

A target branch encodes the low-res signal, a guidance branch encodes the
high-res RGB image, and log2(factor) pixel-adaptive transposed convolutions
(each x2) upsample the target features; the i-th one is adapted by its own
slice of the guidance features, resized to its output scale, so that edges in
the image steer where the upsampled signal may change.

Layer widths and the per-factor widths of the DJF-sized ``Lite`` variant follow
the authors' released code (NVlabs/pac, ``task_jointUpsampling/models.py``).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...ops.holes import fill_nearest, masked_interpolate
from ...ops.normalized_conv import conv_stack_over_holes
from ...ops.pac import PacConvTranspose2d
from ...registry import MODELS
from .base import check_inputs
from .classic import JBU


def _conv_stack(in_channels, widths, kernel_size, last_relu):
    layers = []
    for i, width in enumerate(widths):
        layers.append(nn.Conv2d(in_channels, width, kernel_size, padding=kernel_size // 2))
        if last_relu or i < len(widths) - 1:
            layers.append(nn.ReLU(inplace=True))
        in_channels = width
    return nn.Sequential(*layers)


@MODELS.register_module()
class PacJointUpsample(nn.Module):
    """``forward(low (B, C, h, w), guide (B, 3, H, W)) -> (B, C, H, W)``, H = factor * h.

    Defaults are the paper's reference design: target branch 1->32->32->32,
    guidance branch 3->32->32->16*n_up, n_up = log2(factor) PAC transposed convs
    32->32 (5x5, stride 2, padding 2, output_padding 1, each followed by ReLU),
    then 32->32->1; all convs 5x5, ReLU between convs but not after the last conv
    of a branch. Guidance slice i is resized to stage i's output size bilinearly,
    as in the reference code (``guide_resize='area'``: average pooling instead).
    Channels of a multi-channel target (flow u, v) are upsampled as separate
    single-channel images with shared weights.

    ``mask`` ``(B, 1, h, w)`` (True = known) marks unknown low-res pixels (sensor
    holes): the target branch's convs become normalised convolutions that skip
    them (:func:`~convdense.ops.normalized_conv.conv_stack_over_holes`; features
    no known pixel reaches come from the nearest known value), and the residual
    base interpolates over known samples only. An all-known mask (or none) gives
    the unmasked net's output bit for bit, so a net trained without masks loads
    and runs unchanged.

    Args:
        factor: 4, 8, 16 (any power of two >= 2).
        channels: target channels (1 depth, 2 flow); only checked, weights are shared.
        target_widths, guide_widths, kernel_channels, fusion_widths: layer widths.
        up_widths: output width of each PAC transposed conv (n_up of them);
            default: the target branch's last width for all.
        guide_resize: ``'bilinear'`` (the reference) or ``'area'``.
        residual: ``False`` (the reference design), ``'bilinear'`` (or ``True``) or
            ``'jbu'``: add that upsampling of ``low`` to the output, so the network
            learns a correction to it (not in the reference design). The last conv
            then starts at zero: an untrained residual net is exactly its base
            (bilinear, or joint bilateral upsampling = a fixed-kernel PAC layer),
            not the base plus noise.
        learnable_jbu: with ``residual='jbu'``, learn the JBU layer's bandwidth and
            colour features too (``JBU(learnable=True)``), starting from JBU; a dict
            gives further ``JBU`` arguments (e.g. ``guide_widths``).
    """

    def __init__(self, factor, channels=1, guide_channels=3, target_widths=(32, 32, 32),
                 guide_widths=(32, 32), kernel_channels=16, fusion_widths=(32,), kernel_size=5,
                 residual=False, learnable_jbu=False, up_widths=None, guide_resize='bilinear'):
        super().__init__()
        if factor < 2 or factor & (factor - 1):
            raise ValueError(f'factor must be a power of two >= 2, got {factor}')
        if guide_resize not in ('bilinear', 'area'):
            raise ValueError(f"guide_resize must be 'bilinear' or 'area', got {guide_resize!r}")
        self.guide_resize = guide_resize
        self.factor = factor
        self.channels = channels
        self.kernel_channels = kernel_channels
        if residual is True:
            residual = 'bilinear'
        if residual not in (False, 'bilinear', 'jbu'):
            raise ValueError(f"residual must be False, 'bilinear' or 'jbu', got {residual!r}")
        self.residual = residual
        self.jbu = None
        if residual == 'jbu':
            jbu_args = dict(learnable_jbu) if isinstance(learnable_jbu, dict) else {}
            self.jbu = JBU(factor, learnable=bool(learnable_jbu), **jbu_args)
        self.num_up = int(math.log2(factor))
        up_widths = tuple(up_widths) if up_widths is not None else (target_widths[-1],) * self.num_up
        if len(up_widths) != self.num_up:
            raise ValueError(f'up_widths needs log2(factor) = {self.num_up} widths, got {len(up_widths)}')
        self.branch_target = _conv_stack(1, target_widths, kernel_size, last_relu=False)
        self.branch_guide = _conv_stack(guide_channels, tuple(guide_widths) + (kernel_channels * self.num_up,),
                                        kernel_size, last_relu=False)
        in_widths = (target_widths[-1],) + up_widths[:-1]
        self.up_convs = nn.ModuleList(
            PacConvTranspose2d(cin, cout, kernel_size, stride=2, padding=kernel_size // 2, output_padding=1)
            for cin, cout in zip(in_widths, up_widths))
        self.branch_fusion = nn.Sequential(
            _conv_stack(up_widths[-1], fusion_widths, kernel_size, last_relu=True),
            nn.Conv2d(fusion_widths[-1], 1, kernel_size, padding=kernel_size // 2))
        self._init_weights()

    def _init_weights(self):
        # He init keeps activations at scale through ~10 layers; torch's default
        # shrinks them each layer, which leaves a freshly built net near-silent.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity='relu')
                nn.init.zeros_(module.bias)
        for up_conv in self.up_convs:
            # a stride-2 transposed conv sees 1 in 4 taps (the rest are inserted zeros)
            nn.init.kaiming_normal_(up_conv.weight, nonlinearity='relu')
            with torch.no_grad():
                up_conv.weight.mul_(2.0)
            nn.init.zeros_(up_conv.bias)
        if self.residual:
            nn.init.zeros_(self.branch_fusion[-1].weight)

    def forward(self, low, guide, mask=None):
        check_inputs(low, guide, self.factor, mask=mask)
        batch, channels, height, width = low.shape
        single = low.reshape(batch * channels, 1, height, width)
        if mask is not None:
            mask = mask.bool().repeat_interleave(channels, dim=0)
            single = fill_nearest(single, mask)
        features = conv_stack_over_holes(self.branch_target, single, mask)
        guide_features = self.branch_guide(guide)
        for i, up_conv in enumerate(self.up_convs):
            adapting = guide_features[:, i * self.kernel_channels:(i + 1) * self.kernel_channels]
            shrink = self.factor // 2 ** (i + 1)
            if shrink > 1 and self.guide_resize == 'area':
                adapting = F.avg_pool2d(adapting, shrink)
            elif shrink > 1:
                adapting = F.interpolate(adapting, size=(height * 2 ** (i + 1), width * 2 ** (i + 1)),
                                         mode='bilinear', align_corners=False)
            adapting = adapting.repeat_interleave(channels, dim=0)
            features = F.relu(up_conv(features, adapting))
        out = self.branch_fusion(features)
        if self.residual == 'bilinear' and mask is not None:
            out = out + masked_interpolate(single, mask, out.shape[2:], 'bilinear')[0]
        elif self.residual == 'bilinear':
            out = out + F.interpolate(single, scale_factor=self.factor, mode='bilinear', align_corners=False)
        elif self.residual == 'jbu':
            out = out + self.jbu(single, guide.repeat_interleave(channels, dim=0), mask)
        return out.reshape(batch, channels, *out.shape[2:])


@MODELS.register_module()
class PacJointUpsampleLite(PacJointUpsample):
    """The same design at about DJF's size (56 k parameters) at every factor.

    One more x2 stage would add a PAC transposed conv and a guidance slice, so
    each factor has its own narrower widths: those of the reference code
    (55,509 / 56,273 / 55,777 parameters at x4 / x8 / x16).
    """

    WIDTHS = {
        4: dict(target_widths=(12, 16, 22), guide_widths=(12, 22), kernel_channels=12, up_widths=(12, 16),
                fusion_widths=(22,)),
        8: dict(target_widths=(12, 16, 16), guide_widths=(12, 16), kernel_channels=12, up_widths=(12, 16, 16),
                fusion_widths=(20,)),
        16: dict(target_widths=(8, 16, 16), guide_widths=(8, 16), kernel_channels=10, up_widths=(8, 16, 16, 16),
                 fusion_widths=(16,)),
    }

    def __init__(self, factor, channels=1, guide_channels=3, **kwargs):
        if factor not in self.WIDTHS:
            raise ValueError(f'PacJointUpsampleLite has DJF-sized widths for factors 4, 8 and 16, got {factor}')
        widths = dict(self.WIDTHS[factor])
        widths.update(kwargs)
        super().__init__(factor, channels, guide_channels, **widths)
