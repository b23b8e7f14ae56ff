"""Deep Joint Image Filtering (Li et al., ECCV 2016) as a joint-upsampling baseline.

Two CNN branches (filter sizes 9, 1, 5; widths 96, 48, 1) see the bilinearly
upsampled target and the guide; a third CNN (9, 1, 5; widths 64, 32, 1) fuses
their single-channel outputs. No PAC: this is the baseline PAC is compared to.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...ops.holes import masked_interpolate
from ...ops.normalized_conv import conv_stack_over_holes
from ...registry import MODELS
from .base import check_inputs


def _cnn(in_channels, widths, kernel_sizes):
    """Convs with 'same' padding and ReLU between them (none after the last)."""
    layers = []
    for i, (width, size) in enumerate(zip(widths, kernel_sizes)):
        layers.append(nn.Conv2d(in_channels, width, size, padding=size // 2))
        if i < len(widths) - 1:
            layers.append(nn.ReLU(inplace=True))
        in_channels = width
    return nn.Sequential(*layers)


@MODELS.register_module()
class DJF(nn.Module):
    """DJF upsampler: ``forward(low (B, C, h, w), guide (B, 3, H, W), mask=None) -> (B, C, H, W)``.

    Multi-channel targets (flow u, v) are filtered as separate single-channel
    images with shared weights, each with the same guide. ``mask`` ``(B, 1, h, w)``
    (True = known) marks unknown low-res pixels: the bilinear upsampling skips them
    and the target branch's convs are normalised convolutions over the pixels it
    reached (:func:`~convdense.ops.normalized_conv.conv_stack_over_holes`); an
    all-known mask (or none) is the unmasked net bit for bit.

    Args:
        factor: upsampling factor (H = factor * h).
        residual: add the bilinear upsampling to the fused output (DJF's
            journal version learns this residual; off reproduces the ECCV net);
            the last fusion conv then starts at zero (untrained = bilinear).
    """

    def __init__(self, factor, channels=1, guide_channels=3, kernel_sizes=(9, 1, 5),
                 branch_widths=(96, 48, 1), fusion_widths=(64, 32, 1), residual=False):
        super().__init__()
        self.factor = factor
        self.channels = channels
        self.residual = residual
        self.branch_target = _cnn(1, branch_widths, kernel_sizes)
        self.branch_guide = _cnn(guide_channels, branch_widths, kernel_sizes)
        self.fusion = _cnn(2 * branch_widths[-1], fusion_widths, kernel_sizes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity='relu')
                nn.init.zeros_(module.bias)
        if residual:
            nn.init.zeros_(self.fusion[-1].weight)

    def forward(self, low, guide, mask=None):
        check_inputs(low, guide, self.factor, mask=mask)
        batch, channels = low.shape[:2]
        single = low.reshape(batch * channels, 1, *low.shape[2:])
        if mask is None:
            upsampled = F.interpolate(single, size=guide.shape[2:], mode='bilinear', align_corners=False)
        else:
            upsampled, mask = masked_interpolate(single, mask.bool().repeat_interleave(channels, dim=0),
                                                 guide.shape[2:], 'bilinear')
        guide_features = self.branch_guide(guide).repeat_interleave(channels, dim=0)
        target_features = conv_stack_over_holes(self.branch_target, upsampled, mask)
        fused = self.fusion(torch.cat([target_features, guide_features], dim=1))
        if self.residual:
            fused = fused + upsampled
        return fused.reshape(batch, channels, *guide.shape[2:])
