"""Normalised convolution over a validity mask (unknown inputs contribute nothing).

Normalised convolution (Knutsson & Westin 1993; learned by Eldesokey et al., TPAMI
2019) computes ``conv(x * m) / conv(m)`` so that unknown samples (``m = 0``) neither
count as zeros nor pull the result; a window without a known sample yields no
confidence. Eldesokey et al. make the filters non-negative so ``conv(m)`` cannot
vanish or change sign; the joint upsamplers' filters are signed, so here the
normaliser uses a box (uniform) applicability -- the fraction of known pixels in the
window, as partial convolution (Liu et al., ECCV 2018) does::

    out = W * (x m) * (n_in / n_known) + b,    m_out = n_known > 0

``n_in`` counts the window's pixels inside the image and ``n_known`` its known
ones, so zero padding is neither known nor unknown and a window with no unknown
pixel is *exactly* (bit for bit) the plain convolution.
"""
import torch
import torch.nn.functional as F


def _window_count(mask, kernel_size, padding, stride, dilation):
    ones = mask.new_ones(1, 1, *kernel_size)
    return F.conv2d(mask, ones, None, stride, padding, dilation)


def normalized_conv2d(input, mask, weight, bias=None, stride=1, padding=0, dilation=1):
    """Convolution that ignores unknown input pixels and renormalises by the known fraction.

    Args:
        input: ``(B, C_in, H, W)``; values at unknown pixels are never read (NaN is fine).
        mask: ``(B, 1, H, W)`` bool or {0, 1}, True = known.
        weight: ``(C_out, C_in, kh, kw)``; bias ``(C_out,)`` or None (as ``F.conv2d``).
    Returns:
        ``(out (B, C_out, H_out, W_out), out_mask (B, 1, H_out, W_out) bool)``: ``out_mask``
        is True where the window held a known pixel; elsewhere ``out`` is the bias alone.
    """
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != input.shape[0] \
            or mask.shape[2:] != input.shape[2:]:
        raise ValueError(f'mask: expected shape ({input.shape[0]}, 1, {input.shape[2]}, {input.shape[3]}) '
                         f'for input of shape {tuple(input.shape)}, got {tuple(mask.shape)}')
    known = mask.bool()
    values = torch.where(known, input, torch.zeros((), dtype=input.dtype, device=input.device))
    out = F.conv2d(values, weight, bias, stride, padding, dilation)
    kernel_size = tuple(weight.shape[2:])
    fmask = known.to(input.dtype)
    n_known = _window_count(fmask, kernel_size, padding, stride, dilation)
    n_in = _window_count(torch.ones_like(fmask), kernel_size, padding, stride, dilation)
    # ratio is exactly 1 where every pixel of the window is known, so out is the plain conv there
    ratio = torch.where(n_known > 0, n_in / n_known.clamp_min(1), torch.ones_like(n_known))
    if bias is not None:
        unbiased = out - bias.view(1, -1, 1, 1)
    else:
        unbiased = out
    return out + unbiased * (ratio - 1), n_known > 0


def masked_conv_stack(stack, input, mask):
    """Run a ``nn.Sequential`` of stride-1 ``nn.Conv2d`` and element-wise layers (ReLU)
    with every conv as :func:`normalized_conv2d`, carrying the mask along.

    Returns ``(features, mask)``: features are valid where ``mask`` is True.
    """
    for module in stack:
        if isinstance(module, torch.nn.Sequential):
            input, mask = masked_conv_stack(module, input, mask)
        elif isinstance(module, torch.nn.Conv2d):
            if module.groups != 1 or module.padding_mode != 'zeros' or isinstance(module.padding, str):
                raise ValueError(f'masked_conv_stack: {module} is not a plain zero-padded conv')
            input, mask = normalized_conv2d(input, mask, module.weight, module.bias, module.stride,
                                            module.padding, module.dilation)
        else:
            input = module(input)
    return input, mask


def conv_stack_over_holes(stack, input, mask=None):
    """``stack(input)`` that sees unknown pixels as unknown.

    Features come from :func:`masked_conv_stack`; where no known pixel reached a
    feature (a hole wider than the stack's receptive field) they come from the plain
    ``stack(input)`` instead, so ``input`` should hold nearest-known values in its
    holes (:func:`~convdense.ops.holes.fill_nearest`). ``mask=None`` or an all-known
    mask is exactly ``stack(input)``.

    Args:
        input: ``(B, C, H, W)``; mask: ``(B, 1, H, W)`` True = known, or None.
    """
    if mask is None or bool(mask.all()):
        return stack(input)
    features, known = masked_conv_stack(stack, input, mask)
    if bool(known.all()):
        return features
    return torch.where(known, features, stack(input))
