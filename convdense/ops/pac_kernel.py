"""Adaptive kernel construction ``K(f_i, f_j)`` for PAC (see :mod:`convdense.ops.pac`).

:func:`pac_kernel2d` turns the guide into a kernel tensor of shape
``[B, 1 or C, kh, kw, H_out, W_out]`` that :func:`~convdense.ops.pac.pac_conv2d`,
:func:`~convdense.ops.pac.pac_conv_transpose2d` and
:func:`~convdense.ops.pac.pac_pool2d` consume.
"""
import re

import torch
import torch.nn.functional as F

from .inference import recording_graph
from .pac_export import tap_sq_distances, unfold_taps
from .pac_geometry import (_conv_out_size, _pair, _require_4d, _resolve_padding, _shape,
                           _tap_view, _transposed_input_grid)
from .pac_tiled import _once_differentiable

# Floor of the inverse kernel's alpha: a learnable alpha may drift to <= 0 during
# training, where (alpha + d) ** -lambda is inf (d = 0) or NaN; clamping keeps
# K(f_i, f_i) <= MIN_INV_ALPHA ** -lambda (1e3 for lambda = 1).
MIN_INV_ALPHA = 1e-3

_INV_PATTERN = re.compile(r'^inv_([0-9.eE+-]+)_([0-9.eE+-]+)(_fixed)?$')


def parse_kernel_type(kernel_type):
    """Splits a kernel type name.

    Returns:
        tuple: ``(family, alpha, lambda, fixed)`` with family ``'gaussian'``
        or ``'inv'``; alpha/lambda are ``None`` for the Gaussian.
    """
    if kernel_type == 'gaussian':
        return 'gaussian', None, None, True
    match = _INV_PATTERN.match(kernel_type) if isinstance(kernel_type, str) else None
    if match is None:
        raise ValueError(
            f"kernel_type: expected 'gaussian' or 'inv_{{alpha}}_{{lambda}}[_fixed]' "
            f"(e.g. 'inv_1_1'), got {kernel_type!r}")
    alpha, lam = float(match.group(1)), float(match.group(2))
    if alpha <= 0:
        raise ValueError(f'kernel_type: inverse kernels need alpha > 0, got {kernel_type!r}')
    return 'inv', alpha, lam, match.group(3) is not None


def _positive_alpha(alpha):
    if torch.is_tensor(alpha):
        return alpha.clamp_min(MIN_INV_ALPHA)
    if not alpha > 0:
        raise ValueError(f'inv_alpha: inverse kernels need alpha > 0, got {alpha!r}')
    return alpha


def _decay(sq_dist, family, alpha, lam):
    """K from squared guide distances: ``exp(-d / 2)`` or ``(alpha + d) ** -lambda``."""
    if family == 'gaussian':
        return torch.exp(-0.5 * sq_dist)
    return (alpha + sq_dist).pow(-lam)


def _nearest_valid_sq_dist(sq_dist, valid_taps):
    """Per window, the smallest squared distance among its valid taps (0 for a window
    with none), detached. A normalised Gaussian kernel is unchanged by dividing every tap
    by ``exp(-d_min / 2)``, but with it the nearest valid tap is exactly 1: a window whose
    valid taps all lie far away in guide space no longer underflows to a total near 0,
    whose ``K / total`` had a finite value and an infinite gradient (NaN in training)."""
    far = torch.where(valid_taps > 0, sq_dist, torch.full_like(sq_dist, torch.inf)).amin(dim=2, keepdim=True)
    return torch.where(torch.isfinite(far), far, torch.zeros_like(far)).detach()


class _TapSqDistances(torch.autograd.Function):
    """``||f_i - f_j||^2`` for every tap of every window, storing only the guide.

    Plain autograd over the taps would keep each tap's ``f_j - f_i`` ([B, C_g, H, W]
    per tap: ``C_g * k^2 * H * W`` values, 105 MiB for a 16-channel guide, k = 5, 256^2)
    plus a zero-filled padded-guide gradient per slice; here backward recomputes
    one tap's difference at a time and accumulates into two gradients.

    ``padded`` [B, C_g, H_pad, W_pad], ``centre`` [B, C_g, H_out, W_out] -> [B, 1 or
    C_g, kh * kw, H_out, W_out] (taps row-major; per channel with ``channel_wise``).
    """

    @staticmethod
    def forward(ctx, padded, centre, kernel_size, out_size, stride, dilation, channel_wise):
        ctx.save_for_backward(padded, centre)
        ctx.conf = (kernel_size, out_size, stride, dilation, channel_wise)
        (kh, kw), batch = kernel_size, padded.shape[0]
        channels = padded.shape[1] if channel_wise else 1
        out = padded.new_empty(batch, channels, kh * kw, *out_size)
        difference = torch.empty_like(centre)
        for t in range(kh * kw):
            torch.sub(_tap_view(padded, *divmod(t, kw), out_size, stride, dilation), centre,
                      out=difference)
            if channel_wise:
                torch.square(difference, out=out[:, :, t])
            else:
                torch.sum(difference.square_(), dim=1, out=out[:, 0, t])
        return out

    @staticmethod
    @_once_differentiable
    def backward(ctx, grad_out):
        padded, centre = ctx.saved_tensors
        kernel_size, out_size, stride, dilation, channel_wise = ctx.conf
        kw = kernel_size[1]
        grad_padded = torch.zeros_like(padded) if ctx.needs_input_grad[0] else None
        grad_centre = torch.zeros_like(centre) if ctx.needs_input_grad[1] else None
        difference = torch.empty_like(centre)
        for t in range(kernel_size[0] * kw):
            neighbour = _tap_view(padded, *divmod(t, kw), out_size, stride, dilation)
            torch.sub(neighbour, centre, out=difference)
            difference.mul_(grad_out[:, :, t]).mul_(2)  # d/d f_j of (f_j - f_i)^2
            if grad_padded is not None:
                _tap_view(grad_padded, *divmod(t, kw), out_size, stride, dilation).add_(
                    difference)
            if grad_centre is not None:
                grad_centre.sub_(difference)
        return grad_padded, grad_centre, None, None, None, None, None


def pac_kernel2d(guide, kernel_size, stride=1, padding=0, dilation=1, kernel_type='gaussian',
                 normalize=False, mask=None, transposed=False, output_padding=0, *,
                 channel_wise=False, inv_alpha=None, inv_lambda=None):
    """Computes the adaptive kernel ``K(f_i, f_j)`` from guide features.

    Args:
        guide (Tensor): [B, C_g, H, W] adapting features.  For ``transposed``
            these are at the *output* resolution of the transposed conv.
        kernel_size, stride, padding, dilation, output_padding: as the
            convolution that will consume the kernel.  ``padding='same'``
            is accepted for odd kernels (non-transposed only).
        kernel_type (str): ``'gaussian'`` or ``'inv_{alpha}_{lambda}'``
            (see module docstring).
        normalize (bool): divide by ``sum_j K`` over the valid taps.
        mask (Tensor, optional): [B, 1, H_in, W_in] validity (1 valid,
            0 invalid) of the conv *input* pixels, multiplied into the taps.
            ``H_in = H`` unless ``transposed``.
        transposed (bool): kernel for :func:`pac_conv_transpose2d`.  Output
            pixel ``o`` is the centre; tap ``t`` of the equivalent stride-1
            conv over the zero-inserted input sits at guide position
            ``o + t * dilation - floor((k - 1) * dilation / 2)`` and is
            zero unless it lands on a real input pixel.
        channel_wise (bool): one kernel per guide channel.
        inv_alpha, inv_lambda (float or Tensor, optional): override the
            values in ``kernel_type`` (the modules pass learnable ones). A
            float alpha must be > 0; a tensor alpha is clamped to at least
            :data:`MIN_INV_ALPHA` (no gradient below it).

    Centre of a non-transposed window: tap ``(kh // 2, kw // 2)``.

    Returns:
        Tensor: [B, 1 or C_g, kh, kw, H_out, W_out].
    """
    _require_4d('guide', guide)
    kernel_size = _pair(kernel_size, 'kernel_size')
    stride = _pair(stride, 'stride')
    dilation = _pair(dilation, 'dilation')
    output_padding = _pair(output_padding, 'output_padding')
    family, alpha, lam, _ = parse_kernel_type(kernel_type)
    if inv_alpha is not None:
        alpha = inv_alpha
    if inv_lambda is not None:
        lam = inv_lambda
    if family == 'inv':
        alpha = _positive_alpha(alpha)
    if transposed and padding == 'same':
        raise ValueError("padding: 'same' is not defined for transposed kernels; "
                         f'give ints (kernel_size={kernel_size})')
    padding = _resolve_padding(padding, kernel_size, dilation)
    batch, _, height, width = guide.shape
    (kh, kw), (dh, dw) = kernel_size, dilation

    if transposed:
        out_size = (height, width)
        in_size = []
        for axis, (o, k, s, p, op, d) in enumerate(
                zip(out_size, kernel_size, stride, padding, output_padding, dilation)):
            span = o - op - 1 - (k - 1) * d + 2 * p
            if span < 0 or span % s:
                raise ValueError(
                    f'guide: output size {tuple(out_size)} of shape {_shape(guide)} is not '
                    f'reachable by a transposed conv with kernel_size={kernel_size}, '
                    f'stride={stride}, padding={padding}, output_padding={output_padding}, '
                    f'dilation={dilation}')
            if op >= max(s, d):
                raise ValueError(f'output_padding: must be smaller than stride or dilation, '
                                 f'got output_padding={output_padding}, stride={stride}, '
                                 f'dilation={dilation}')
            in_size.append(span // s + 1)
        in_size = tuple(in_size)
        centre_y, centre_x = (kh - 1) * dh // 2, (kw - 1) * dw // 2
        padded = F.pad(guide, (centre_x, (kw - 1) * dw - centre_x,
                               centre_y, (kh - 1) * dh - centre_y), mode='replicate')
        centre = guide
        tap_stride = (1, 1)
    else:
        in_size = (height, width)
        out_size = _conv_out_size(in_size, kernel_size, stride, padding, dilation)
        if min(out_size) < 1:
            raise ValueError(f'guide: shape {_shape(guide)} is too small for kernel_size='
                             f'{kernel_size}, padding={padding}, dilation={dilation}')
        padded = F.pad(guide, (padding[1], padding[1], padding[0], padding[0]),
                       mode='replicate')
        centre = _tap_view(padded, kh // 2, kw // 2, out_size, stride, dilation)
        tap_stride = stride

    if mask is not None:
        expected = (batch, 1) + in_size
        if not torch.is_tensor(mask) or mask.dim() != 4 or (
                mask.shape[0] not in (1, batch)) or tuple(mask.shape[1:]) != expected[1:]:
            got = _shape(mask) if torch.is_tensor(mask) else type(mask).__name__
            raise ValueError(f'mask: expected shape {expected} (input pixels) for guide of '
                             f'shape {_shape(guide)}, got {got}')
        valid = mask.to(guide.dtype)
    else:
        valid = guide.new_ones(1, 1, *in_size)
    if transposed:
        valid = _transposed_input_grid(valid, kernel_size, stride, padding, output_padding,
                                       dilation)
    else:
        valid = F.pad(valid, (padding[1], padding[1], padding[0], padding[0]))

    if recording_graph():  # a graph of fixed size whatever the window (see pac_export)
        sq_dist = tap_sq_distances(padded, centre, kernel_size, out_size, tap_stride, dilation,
                                   channel_wise)
        valid_taps = unfold_taps(valid, kernel_size, out_size, tap_stride, dilation)
    else:
        sq_dist = _TapSqDistances.apply(padded, centre, kernel_size, out_size, tap_stride,
                                        dilation, channel_wise)
        valid_taps = torch.stack([_tap_view(valid, ty, tx, out_size, tap_stride, dilation)
                                  for ty in range(kh) for tx in range(kw)], dim=2)
    if normalize and family == 'gaussian':
        # (an invalid tap may be nearer than every valid one: clamped, it stays finite)
        sq_dist = (sq_dist - _nearest_valid_sq_dist(sq_dist, valid_taps)).clamp_min(0)
    kernel = _decay(sq_dist, family, alpha, lam) * valid_taps
    kernel = kernel.view(kernel.shape[0], kernel.shape[1], kh, kw, *out_size)
    if normalize:
        total = kernel.sum(dim=(2, 3), keepdim=True)
        # A window with no valid tap keeps K = 0 rather than producing NaN.
        kernel = kernel / torch.where(total == 0, torch.ones_like(total), total)
    return kernel
