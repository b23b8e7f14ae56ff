"""Non-learned joint-upsampling baselines with the learned nets' interface.

``forward(low (B, C, h, w), guide (B, 3, H, W), mask=None) -> (B, C, H, W)``; they
have no parameters, so they run through the same :class:`JointUpsampler` and metrics.
``mask`` ``(B, 1, h, w)`` (True = known) keeps unknown low-res samples (sensor holes)
out: their weights are dropped and the rest renormalised; a pixel left without a
known sample takes the nearest known one. An all-known mask is the same as none.
Like the learned nets they take ``channels`` (the target's C): ``None``
upsamples any number of channels, an int is checked against the input.
Unknown arguments are errors, as everywhere in a config.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...ops.holes import fill_nearest, masked_interpolate
from ...ops.pac import pac_conv_transpose2d, pac_kernel2d
from ...registry import MODELS
from .base import check_channels, check_factor, check_inputs


@MODELS.register_module()
class Bicubic(nn.Module):
    """Bicubic (``mode='bicubic'``) or bilinear interpolation; ignores the guide."""

    def __init__(self, factor, mode='bicubic', channels=None):
        super().__init__()
        if mode not in ('bicubic', 'bilinear'):
            raise ValueError(f"mode must be 'bicubic' or 'bilinear', got {mode!r}")
        self.factor = check_factor(factor)
        self.channels = check_channels(channels)
        self.mode = mode

    def forward(self, low, guide, mask=None):
        check_inputs(low, guide, self.factor, self.channels, mask)
        if mask is not None:
            return masked_interpolate(low, mask, guide.shape[2:], self.mode)[0]
        return F.interpolate(low, size=guide.shape[2:], mode=self.mode, align_corners=False)


def jbu_geometry(factor):
    """Transposed-conv geometry that puts low-res pixel j at high-res ``factor*j + (factor-1)//2``.

    That is where the DJF/PAC protocol samples it. The window (2*factor+1
    high-res pixels) reaches the nearest low-res samples on each side.

    Returns:
        dict(kernel_size, stride, padding, output_padding) for ``pac_conv_transpose2d``.
    """
    offset = (factor - 1) // 2
    kernel_size = 2 * factor + 1
    padding = factor - offset  # centre tap (index factor) of input j lands on factor*j + offset
    # output = (h-1)*f - 2p + k + op must equal h*f
    output_padding = factor - kernel_size + 2 * padding
    return dict(kernel_size=kernel_size, stride=factor, padding=padding, output_padding=output_padding)


@MODELS.register_module()
class JBU(nn.Module):
    """Joint bilateral upsampling (Kopf et al., 2007) as one PAC transposed convolution.

    The adaptive kernel is a fixed Gaussian on ``(x/sigma_spatial, y/sigma_spatial,
    rgb/sigma_color)`` of the high-res guide, the filter is all ones and the kernel
    is normalised over the low-res samples in the window: exactly JBU, which is
    the PAC paper's point that PAC generalises it.

    With ``learnable=True`` the same layer becomes a small learned PAC layer that
    starts as JBU: the spatial bandwidth (one log-scale) and the colour features
    (a learned 3x3 colour transform, initialised to ``I / sigma_color``) are
    parameters, so training moves the kernel away from JBU only where the data
    supports it (5 + 9 = 10 parameters, nothing that can overfit a single scene
    badly).

    Args:
        sigma_spatial: in high-res pixels.
        sigma_color: in RGB units of [0, 1]. The defaults (factor/2, 0.2) are the best of
            a small grid on the training region of the bundled Middlebury scene.
        learnable: make the bandwidth and colour transform trainable (see above).
    """

    def __init__(self, factor, sigma_spatial=None, sigma_color=0.2, learnable=False, guide_widths=(),
                 channels=None):
        super().__init__()
        self.factor = check_factor(factor)
        self.channels = check_channels(channels)
        self.sigma_spatial = float(sigma_spatial if sigma_spatial is not None else factor / 2)
        self.sigma_color = float(sigma_color)
        if not (self.sigma_spatial > 0 and self.sigma_color > 0):
            raise ValueError(f'sigma_spatial and sigma_color must be > 0, got '
                             f'{self.sigma_spatial} and {self.sigma_color}')
        self.learnable = learnable
        self.geometry = jbu_geometry(factor)
        if learnable:
            self.log_sigma_spatial = nn.Parameter(torch.tensor(math.log(self.sigma_spatial)))
            self.color_transform = nn.Parameter(torch.eye(3) / self.sigma_color)
        self.guide_net = None
        if guide_widths:
            if not learnable:
                raise ValueError('JBU guide_widths needs learnable=True')
            layers, width = [], 3
            for out in guide_widths:
                layers += [nn.Conv2d(width, out, 3, padding=1), nn.ReLU(inplace=True)]
                width = out
            layers.append(nn.Conv2d(width, 3, 3, padding=1))
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)
            self.guide_net = nn.Sequential(*layers)

    def adapting_features(self, guide):
        """``(B, 3, H, W)`` RGB -> ``(B, 5, H, W)`` scaled (x, y, r, g, b)."""
        batch, _, height, width = guide.shape
        ys = torch.arange(height, dtype=guide.dtype, device=guide.device)
        xs = torch.arange(width, dtype=guide.dtype, device=guide.device)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
        coords = torch.stack([grid_x, grid_y])[None].expand(batch, 2, height, width)
        if not self.learnable:
            return torch.cat([coords / self.sigma_spatial, guide / self.sigma_color], dim=1)
        color = torch.einsum('oc,bchw->bohw', self.color_transform, guide)
        if self.guide_net is not None:
            color = color + self.guide_net(guide)
        return torch.cat([coords * torch.exp(-self.log_sigma_spatial), color], dim=1)

    def forward(self, low, guide, mask=None):
        check_inputs(low, guide, self.factor, self.channels, mask)
        geometry = dict(self.geometry)
        kernel_size = geometry.pop('kernel_size')
        known = None if mask is None or bool(mask.all()) else mask.to(guide.dtype)
        kernel = pac_kernel2d(self.adapting_features(guide), kernel_size, normalize=True, transposed=True,
                              mask=known, **geometry)
        ones = low.new_ones(1, 1, kernel_size, kernel_size)
        if known is None:
            return pac_conv_transpose2d(low, kernel, ones, shared_filters=True, **geometry)
        values = torch.where(mask.bool(), low, torch.zeros((), dtype=low.dtype, device=low.device))
        out = pac_conv_transpose2d(values, kernel, ones, shared_filters=True, **geometry)
        # a window without a known sample has an all-zero kernel: take the nearest known sample
        empty = kernel.sum(dim=(2, 3)) == 0
        nearest = F.interpolate(fill_nearest(low, mask), size=guide.shape[2:], mode='nearest')
        return torch.where(empty, nearest, out)
