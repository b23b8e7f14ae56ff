"""Pixel-adaptive convolution (PAC; Su et al., "Pixel-Adaptive Convolutional
Neural Networks", CVPR 2019), pooling and transposed convolution in pure torch.

A PAC layer modulates a spatially shared filter ``W`` with a kernel ``K`` that
is computed, per output pixel, from adapting features ``f`` (the *guide*)::

    out[i] = sum_{j in window(i)} K(f_i, f_j) * W[p_i - p_j] @ in[j] + b

The work is split in two steps so that a kernel can be computed once and
reused by several layers: :func:`pac_kernel2d` turns the guide into a kernel
tensor of shape ``[B, 1 or C, kh, kw, H_out, W_out]`` and
:func:`pac_conv2d` / :func:`pac_conv_transpose2d` / :func:`pac_pool2d`
consume it.

Kernel definitions (``d = ||f_i - f_j||^2`` summed over guide channels, or
per channel when ``channel_wise=True``):

* ``'gaussian'``: ``K = exp(-d / 2)``; any bandwidth lives in the (learned)
  guide features.
* ``'inv_{alpha}_{lambda}'`` (e.g. ``'inv_1_1'``): ``K = (alpha + d) ** -lambda``,
  a heavy-tailed inverse-distance decay (Cauchy for ``alpha = lambda = 1``).
  ``alpha > 0`` keeps it finite; ``K(f_i, f_i) = alpha ** -lambda``.  The
  modules learn ``alpha`` and ``lambda`` unless the type ends in ``'_fixed'``.

Guide features outside the image are those of the nearest border pixel
(replicate padding), so a window whose centre lies in the padding still sees
K = 1 for a constant guide.  Taps that fall outside the image or, for the
transposed op, on
the zeros inserted between input pixels get ``K = 0``; ``mask`` zeroes taps on
invalid input pixels; ``normalize=True`` divides by the sum of ``K`` over the
remaining taps (the joint-bilateral-upsampling form).

Implementation: the convolution never materialises the im2col tensor of size
``C * kh * kw * H_out * W_out``.  A custom autograd function walks the taps in
chunks, builds ``K_t * shift_t(input)`` for the taps of one chunk, contracts it
with the matching weight columns in one matmul, and in backward recomputes the
chunk instead of storing it.  Peak extra memory is one chunk (bounded by
``chunk_elements``).
"""
import math
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    'pac_kernel2d', 'pac_conv2d', 'pac_conv_transpose2d', 'pac_pool2d',
    'PacConv2d', 'PacConvTranspose2d', 'PacPool2d', 'parse_kernel_type'
]

# Upper bound on the elements of one tile of modulated, shifted input (8 MiB
# in float32).  Measured on CPU: tiles of 2-8 Mi elements run equally fast,
# but larger ones leave the allocator holding several times their size.
DEFAULT_CHUNK_ELEMENTS = 2 * 1024 * 1024

_INV_PATTERN = re.compile(r'^inv_([0-9.eE+-]+)_([0-9.eE+-]+)(_fixed)?$')


def _pair(value, name):
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, int) for v in value):
        return tuple(value)
    raise ValueError(f'{name}: expected an int or a pair of ints, got {value!r}')


def _shape(t):
    return tuple(t.shape)


def _require_4d(name, tensor):
    if not torch.is_tensor(tensor) or tensor.dim() != 4:
        got = _shape(tensor) if torch.is_tensor(tensor) else type(tensor).__name__
        raise ValueError(f'{name}: expected a 4-D tensor (B, C, H, W), got shape {got}')


def _resolve_padding(padding, kernel_size, dilation, name='padding'):
    """Turns ``'same'`` into explicit padding (odd kernels only)."""
    if padding == 'same':
        for k, d in zip(kernel_size, dilation):
            if k % 2 == 0:
                raise ValueError(
                    f"padding: 'same' needs an odd kernel_size, got kernel_size="
                    f'{tuple(kernel_size)} (dilation={tuple(dilation)})')
        return tuple((k - 1) * d // 2 for k, d in zip(kernel_size, dilation))
    return _pair(padding, name)


def _conv_out_size(size, kernel_size, stride, padding, dilation):
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                 for n, k, s, p, d in zip(size, kernel_size, stride, padding, dilation))


def _transposed_out_size(size, kernel_size, stride, padding, output_padding, dilation):
    return tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, k, s, p, op, d in zip(
        size, kernel_size, stride, padding, output_padding, dilation))


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


def _zero_insert(x, stride):
    """[B, C, H, W] -> [B, C, (H-1)*sh+1, (W-1)*sw+1] with x on the stride grid."""
    sh, sw = stride
    if sh == 1 and sw == 1:
        return x
    b, c, h, w = x.shape
    out = x.new_zeros(b, c, (h - 1) * sh + 1, (w - 1) * sw + 1)
    out[:, :, ::sh, ::sw] = x
    return out


def _transposed_input_grid(x, kernel_size, stride, padding, output_padding, dilation):
    """Zero-inserts and pads ``x`` so that a stride-1 convolution with the
    flipped filter equals the transposed convolution (negative pads crop)."""
    x = _zero_insert(x, stride)
    (kh, kw), (dh, dw) = kernel_size, dilation
    ph, pw = (kh - 1) * dh - padding[0], (kw - 1) * dw - padding[1]
    return F.pad(x, (pw, pw + output_padding[1], ph, ph + output_padding[0]))


def _tap_view(x, ty, tx, out_size, stride, dilation):
    """The input pixels read by tap (ty, tx) for every output pixel:
    [B, C, H_out, W_out], a strided view of the (padded) input ``x``."""
    (ho, wo), (sh, sw), (dh, dw) = out_size, stride, dilation
    y0, x0 = ty * dh, tx * dw
    return x[:, :, y0:y0 + sh * (ho - 1) + 1:sh, x0:x0 + sw * (wo - 1) + 1:sw]


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
            values in ``kernel_type`` (the modules pass learnable ones).

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

    taps, valid_taps = [], []
    for ty in range(kh):
        for tx in range(kw):
            neighbour = _tap_view(padded, ty, tx, out_size, tap_stride, dilation)
            sq_dist = (neighbour - centre).square()
            if not channel_wise:
                sq_dist = sq_dist.sum(dim=1, keepdim=True)
            if family == 'gaussian':
                taps.append(torch.exp(-0.5 * sq_dist))
            else:
                taps.append((alpha + sq_dist).pow(-lam))
            valid_taps.append(_tap_view(valid, ty, tx, out_size, tap_stride, dilation))
    kernel = torch.stack(taps, dim=2)
    kernel = kernel * torch.stack(valid_taps, dim=2)
    kernel = kernel.view(kernel.shape[0], kernel.shape[1], kh, kw, *out_size)
    if normalize:
        total = kernel.sum(dim=(2, 3), keepdim=True)
        # A window with no valid tap keeps K = 0 rather than producing NaN.
        kernel = kernel / torch.where(total == 0, torch.ones_like(total), total)
    return kernel


def _check_kernel(kernel, batch, channels, kernel_size, out_size, input_shape):
    expected = f'({batch}, 1 or {channels}, {kernel_size[0]}, {kernel_size[1]}, ' \
               f'{out_size[0]}, {out_size[1]})'
    if not torch.is_tensor(kernel) or kernel.dim() != 6 or kernel.shape[0] != batch or (
            kernel.shape[1] not in (1, channels)) or tuple(kernel.shape[2:4]) != tuple(
                kernel_size) or tuple(kernel.shape[4:]) != tuple(out_size):
        got = _shape(kernel) if torch.is_tensor(kernel) else type(kernel).__name__
        raise ValueError(f'kernel: expected shape {expected} for input of shape '
                         f'{tuple(input_shape)}, got {got}')


def _check_weight(weight, shared_filters, expected_shape, input_shape):
    if shared_filters:
        expected_shape = (1, 1) + tuple(expected_shape[2:])
    if not torch.is_tensor(weight) or _shape(weight) != tuple(expected_shape):
        got = _shape(weight) if torch.is_tensor(weight) else type(weight).__name__
        raise ValueError(f'weight: expected shape {tuple(expected_shape)} for input of shape '
                         f'{tuple(input_shape)}, got {got}')


class _Tiling:
    """Splits the work of one batch element into blocks of output rows and
    chunks of taps so that one block of modulated input,
    [taps_in_chunk, C, rows, W_out], stays within ``chunk_elements``.

    Whole tap sets per row block are preferred: the single matmul then has a
    deep inner dimension (k^2 * C) and each output block is written once.
    """

    def __init__(self, taps, channels, out_size, chunk_elements):
        out_h, out_w = out_size
        row_all_taps = taps * channels * out_w
        if row_all_taps <= chunk_elements:
            self.rows = max(1, min(out_h, chunk_elements // row_all_taps))
            self.taps_per_chunk = taps
        else:
            self.rows = 1
            self.taps_per_chunk = max(1, min(taps, chunk_elements // max(channels * out_w, 1)))
        self.out_h, self.taps = out_h, taps

    def row_blocks(self):
        for first in range(0, self.out_h, self.rows):
            yield first, min(first + self.rows, self.out_h)

    def tap_chunks(self):
        for first in range(0, self.taps, self.taps_per_chunk):
            yield first, min(first + self.taps_per_chunk, self.taps)


def _tile_view(x, ty, tx, rows, out_w, stride, dilation):
    """Pixels of ``x`` ([..., H_pad, W_pad]) read by tap (ty, tx) for output
    rows ``rows = (first, last)``: [..., last - first, W_out]."""
    (sh, sw), (dh, dw) = stride, dilation
    y0, x0 = ty * dh + sh * rows[0], tx * dw
    return x[..., y0:y0 + sh * (rows[1] - rows[0] - 1) + 1:sh, x0:x0 + sw * (out_w - 1) + 1:sw]


def _modulate(out, padded_b, kernel_b, taps, rows, kw, out_w, stride, dilation):
    """out[i] = K_t * shift_t(input) for the taps of one chunk.

    out: [n_taps, C, n_rows, W_out]; padded_b: [C, H_pad, W_pad];
    kernel_b: [1 or C, kh, kw, H_out, W_out].
    """
    for i, t in enumerate(range(*taps)):
        ty, tx = divmod(t, kw)
        torch.mul(_tile_view(padded_b, ty, tx, rows, out_w, stride, dilation),
                  kernel_b[:, ty, tx, rows[0]:rows[1]], out=out[i])
    return out


class _PacConvFunction(torch.autograd.Function):
    """Stride/dilation PAC over an already padded input.

    Forward and backward walk (row block, tap chunk) tiles: the modulated input
    of one tile is built, used in one matmul and dropped; backward rebuilds it
    instead of saving it, so memory stays O(chunk) instead of O(C k^2 H W).
    """

    @staticmethod
    def forward(ctx, padded, kernel, weight, out_size, stride, dilation, shared_filters,
                chunk_elements):
        ctx.save_for_backward(padded, kernel, weight)
        ctx.conf = (out_size, stride, dilation, shared_filters, chunk_elements)
        kh, kw = kernel.shape[2:4]
        batch, channels = padded.shape[:2]
        if shared_filters:
            out = padded.new_zeros(batch, channels, *out_size)
            weight_per_tap = weight.reshape(kh * kw)
            for t in range(kh * kw):
                ty, tx = divmod(t, kw)
                out.addcmul_(_tap_view(padded, ty, tx, out_size, stride, dilation),
                             kernel[:, :, ty, tx] * weight_per_tap[t])
            return out
        out_channels, out_w = weight.shape[0], out_size[1]
        # [C_out, taps * C_in] so that a chunk of taps is a contiguous column range.
        weight_by_tap = weight.permute(0, 2, 3, 1).reshape(out_channels, kh * kw * channels)
        tiling = _Tiling(kh * kw, channels, out_size, chunk_elements)
        # Buffers are allocated once and reused by every tile: fresh per-tile
        # tensors fragment the CPU heap and inflate peak memory several-fold.
        buffer = padded.new_empty(tiling.taps_per_chunk * channels * tiling.rows * out_w)
        block_buffer = padded.new_empty(out_channels * tiling.rows * out_w)
        out = padded.new_empty(batch, out_channels, *out_size)
        for b in range(batch):
            for rows in tiling.row_blocks():
                pixels = (rows[1] - rows[0]) * out_w
                block = block_buffer[:out_channels * pixels].view(out_channels, pixels)
                for i, taps in enumerate(tiling.tap_chunks()):
                    n_taps = taps[1] - taps[0]
                    modulated = _modulate(
                        buffer[:n_taps * channels * pixels].view(n_taps, channels, -1, out_w),
                        padded[b], kernel[b], taps, rows, kw, out_w, stride, dilation)
                    weight_chunk = weight_by_tap[:, taps[0] * channels:taps[1] * channels]
                    if i == 0:
                        torch.mm(weight_chunk, modulated.view(-1, pixels), out=block)
                    else:
                        block.addmm_(weight_chunk, modulated.view(-1, pixels))
                out[b, :, rows[0]:rows[1]] = block.view(out_channels, -1, out_w)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        padded, kernel, weight = ctx.saved_tensors
        out_size, stride, dilation, shared_filters, chunk_elements = ctx.conf
        need_input, need_kernel, need_weight = ctx.needs_input_grad[:3]
        kh, kw = kernel.shape[2:4]
        batch, channels = padded.shape[:2]
        kernel_channels = kernel.shape[1]
        grad_padded = torch.zeros_like(padded) if need_input else None
        grad_kernel = torch.empty_like(kernel) if need_kernel else None
        grad_weight = None

        if shared_filters:
            weight_per_tap = weight.reshape(kh * kw)
            grad_weight_per_tap = weight.new_zeros(kh * kw) if need_weight else None
            for t in range(kh * kw):
                ty, tx = divmod(t, kw)
                shifted = _tap_view(padded, ty, tx, out_size, stride, dilation)
                tap_kernel = kernel[:, :, ty, tx]
                if need_input:
                    _tap_view(grad_padded, ty, tx, out_size, stride, dilation).addcmul_(
                        grad_out, tap_kernel * weight_per_tap[t])
                if need_kernel or need_weight:
                    correlation = grad_out * shifted
                    if kernel_channels == 1:
                        correlation = correlation.sum(dim=1, keepdim=True)
                    if need_kernel:
                        grad_kernel[:, :, ty, tx] = correlation * weight_per_tap[t]
                    if need_weight:
                        grad_weight_per_tap[t] = (correlation * tap_kernel).sum()
            if need_weight:
                grad_weight = grad_weight_per_tap.view_as(weight)
            return grad_padded, grad_kernel, grad_weight, None, None, None, None, None

        out_channels, out_w = weight.shape[0], out_size[1]
        weight_by_tap = weight.permute(0, 2, 3, 1).reshape(out_channels, kh * kw * channels)
        grad_by_tap = torch.zeros_like(weight_by_tap) if need_weight else None
        tiling = _Tiling(kh * kw, channels, out_size, chunk_elements)
        buffer_size = tiling.taps_per_chunk * channels * tiling.rows * out_w
        buffer = padded.new_empty(buffer_size) if need_weight else None
        grad_buffer = padded.new_empty(buffer_size) if (need_input or need_kernel) else None
        grad_block_buffer = padded.new_empty(out_channels * tiling.rows * out_w)
        for b in range(batch):
            for rows in tiling.row_blocks():
                pixels = (rows[1] - rows[0]) * out_w
                grad_block = grad_block_buffer[:out_channels * pixels].view(
                    out_channels, -1, out_w)
                grad_block.copy_(grad_out[b, :, rows[0]:rows[1]])
                grad_block = grad_block.view(out_channels, pixels)
                for taps in tiling.tap_chunks():
                    n_taps = taps[1] - taps[0]
                    columns = slice(taps[0] * channels, taps[1] * channels)
                    if need_weight:
                        modulated = _modulate(
                            buffer[:n_taps * channels * pixels].view(n_taps, channels, -1,
                                                                     out_w),
                            padded[b], kernel[b], taps, rows, kw, out_w, stride, dilation)
                        grad_by_tap[:, columns].addmm_(grad_block,
                                                       modulated.view(-1, pixels).t())
                    if not (need_input or need_kernel):
                        continue
                    # d loss / d modulated input of this tile: [n_taps, C, rows, W_out].
                    grad_modulated = torch.mm(
                        weight_by_tap[:, columns].t(), grad_block,
                        out=grad_buffer[:n_taps * channels * pixels].view(-1, pixels)).view(
                            n_taps, channels, -1, out_w)
                    for i, t in enumerate(range(*taps)):
                        ty, tx = divmod(t, kw)
                        if need_input:
                            _tile_view(grad_padded[b], ty, tx, rows, out_w, stride,
                                       dilation).addcmul_(
                                           grad_modulated[i],
                                           kernel[b, :, ty, tx, rows[0]:rows[1]])
                        if need_kernel:
                            correlation = grad_modulated[i].mul_(
                                _tile_view(padded[b], ty, tx, rows, out_w, stride, dilation))
                            target = grad_kernel[b, :, ty, tx, rows[0]:rows[1]]
                            if kernel_channels == 1:
                                torch.sum(correlation, dim=0, keepdim=True, out=target)
                            else:
                                target.copy_(correlation)
        if need_weight:
            grad_weight = grad_by_tap.view(out_channels, kh, kw, channels).permute(0, 3, 1, 2)
        return grad_padded, grad_kernel, grad_weight, None, None, None, None, None


def _pac_core(input, kernel, weight, bias, out_size, stride, dilation, shared_filters,
              chunk_elements):
    out = _PacConvFunction.apply(input, kernel, weight, out_size, stride, dilation,
                                 shared_filters, int(chunk_elements))
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def _check_bias(bias, channels, input_shape):
    if bias is not None and (not torch.is_tensor(bias) or _shape(bias) != (channels, )):
        got = _shape(bias) if torch.is_tensor(bias) else type(bias).__name__
        raise ValueError(f'bias: expected shape ({channels},) for input of shape '
                         f'{tuple(input_shape)}, got {got}')


def pac_conv2d(input, kernel, weight, bias=None, stride=1, padding=0, dilation=1,
               shared_filters=False, *, chunk_elements=DEFAULT_CHUNK_ELEMENTS):
    """Pixel-adaptive convolution with a precomputed kernel.

    Args:
        input (Tensor): [B, C_in, H, W].
        kernel (Tensor): [B, 1 or C_in, kh, kw, H_out, W_out] from
            :func:`pac_kernel2d` (same stride/padding/dilation).
        weight (Tensor): [C_out, C_in, kh, kw], or [1, 1, kh, kw] with
            ``shared_filters`` (one filter for every channel, C_out = C_in).
        bias (Tensor, optional): [C_out].
        padding (int, pair or 'same'): zero padding ('same': odd kernels).
        chunk_elements (int): memory bound of one tap chunk, in elements.

    Returns:
        Tensor: [B, C_out, H_out, W_out].
    """
    _require_4d('input', input)
    _require_4d('weight', weight)
    kernel_size = tuple(weight.shape[2:])
    stride = _pair(stride, 'stride')
    dilation = _pair(dilation, 'dilation')
    padding = _resolve_padding(padding, kernel_size, dilation)
    batch, channels = input.shape[:2]
    out_channels = channels if shared_filters else weight.shape[0]
    _check_weight(weight, shared_filters, (out_channels, channels) + kernel_size, input.shape)
    _check_bias(bias, out_channels, input.shape)
    out_size = _conv_out_size(input.shape[2:], kernel_size, stride, padding, dilation)
    if min(out_size) < 1:
        raise ValueError(f'input: shape {_shape(input)} is too small for kernel_size='
                         f'{kernel_size}, padding={padding}, dilation={dilation}')
    _check_kernel(kernel, batch, channels, kernel_size, out_size, input.shape)
    padded = F.pad(input, (padding[1], padding[1], padding[0], padding[0]))
    return _pac_core(padded, kernel, weight, bias, out_size, stride, dilation, shared_filters,
                     chunk_elements)


def pac_conv_transpose2d(input, kernel, weight, bias=None, stride=1, padding=0,
                         output_padding=0, dilation=1, shared_filters=False, *,
                         chunk_elements=DEFAULT_CHUNK_ELEMENTS):
    """Pixel-adaptive transposed convolution with a precomputed kernel.

    Computed as a stride-1 PAC over the zero-inserted, padded input with the
    flipped filter, exactly like ``nn.ConvTranspose2d``; kernel tap ``t``
    therefore pairs with ``weight[..., kh-1-ty, kw-1-tx]``.

    Args:
        input (Tensor): [B, C_in, H, W].
        kernel (Tensor): [B, 1 or C_in, kh, kw, H_out, W_out] from
            ``pac_kernel2d(guide, ..., transposed=True)`` with the same
            stride/padding/output_padding/dilation.
        weight (Tensor): [C_in, C_out, kh, kw] (``nn.ConvTranspose2d``
            layout), or [1, 1, kh, kw] with ``shared_filters``.
        bias (Tensor, optional): [C_out].

    Returns:
        Tensor: [B, C_out, H_out, W_out] with
        ``H_out = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1``.
    """
    _require_4d('input', input)
    _require_4d('weight', weight)
    kernel_size = tuple(weight.shape[2:])
    stride = _pair(stride, 'stride')
    padding = _pair(padding, 'padding')
    output_padding = _pair(output_padding, 'output_padding')
    dilation = _pair(dilation, 'dilation')
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= max(s, d):
            raise ValueError(f'output_padding: must be smaller than stride or dilation, got '
                             f'output_padding={output_padding}, stride={stride}, '
                             f'dilation={dilation}')
    batch, channels = input.shape[:2]
    out_channels = channels if shared_filters else weight.shape[1]
    _check_weight(weight, shared_filters, (channels, out_channels) + kernel_size, input.shape)
    _check_bias(bias, out_channels, input.shape)
    out_size = _transposed_out_size(input.shape[2:], kernel_size, stride, padding,
                                    output_padding, dilation)
    if min(out_size) < 1:
        raise ValueError(f'input: shape {_shape(input)} gives an empty output for '
                         f'kernel_size={kernel_size}, stride={stride}, padding={padding}')
    _check_kernel(kernel, batch, channels, kernel_size, out_size, input.shape)
    grid = _transposed_input_grid(input, kernel_size, stride, padding, output_padding, dilation)
    flipped = weight.flip(2, 3)
    if not shared_filters:
        flipped = flipped.transpose(0, 1)
    return _pac_core(grid, kernel, flipped, bias, out_size, (1, 1), dilation, shared_filters,
                     chunk_elements)


def pac_pool2d(input, kernel, kernel_size, stride=1, padding=0, dilation=1, *,
               chunk_elements=DEFAULT_CHUNK_ELEMENTS):
    """Kernel-weighted pooling ``out[i] = sum_j K_ij * in[j]`` per channel.

    It is a weighted *average* when the kernel is normalised
    (``pac_kernel2d(..., normalize=True)``), i.e. joint bilateral filtering.

    Args:
        input (Tensor): [B, C, H, W].
        kernel (Tensor): [B, 1 or C, kh, kw, H_out, W_out].

    Returns:
        Tensor: [B, C, H_out, W_out].
    """
    _require_4d('input', input)
    kernel_size = _pair(kernel_size, 'kernel_size')
    ones = input.new_ones(1, 1, *kernel_size)
    return pac_conv2d(input, kernel, ones, None, stride, padding, dilation, shared_filters=True,
                      chunk_elements=chunk_elements)


class _PacBase(nn.Module):
    """Shared kernel configuration of the PAC modules."""

    def _init_kernel(self, kernel_type, smooth_kernel_type, normalize_kernel, channel_wise):
        family, alpha, lam, fixed = parse_kernel_type(kernel_type)
        if smooth_kernel_type not in (None, 'none'):
            raise ValueError(f"smooth_kernel_type: only 'none' is implemented, got "
                             f'{smooth_kernel_type!r}')
        self.kernel_type = kernel_type
        self.smooth_kernel_type = 'none'
        self.normalize_kernel = normalize_kernel
        self.channel_wise = channel_wise
        if family == 'inv':
            alpha, lam = torch.tensor(alpha), torch.tensor(lam)
            if fixed:
                self.register_buffer('inv_alpha', alpha)
                self.register_buffer('inv_lambda', lam)
            else:
                self.inv_alpha = nn.Parameter(alpha)
                self.inv_lambda = nn.Parameter(lam)
        else:
            self.inv_alpha = self.inv_lambda = None

    def _kernel(self, guide, mask, transposed, output_padding=0):
        return pac_kernel2d(guide, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.kernel_type, self.normalize_kernel, mask, transposed,
                            output_padding, channel_wise=self.channel_wise,
                            inv_alpha=self.inv_alpha, inv_lambda=self.inv_lambda)

    def _check_guide(self, guide, input, expected_size, what):
        _require_4d('guide', guide)
        if tuple(guide.shape[2:]) != tuple(expected_size) or guide.shape[0] != input.shape[0]:
            raise ValueError(f'guide: expected batch {input.shape[0]} and spatial size '
                             f'{tuple(expected_size)} ({what}) for input of shape '
                             f'{_shape(input)}, got guide of shape {_shape(guide)}')
        if self.channel_wise and guide.shape[1] != input.shape[1]:
            raise ValueError(f'guide: channel_wise needs as many guide channels as input '
                             f'channels; input shape {_shape(input)}, guide shape '
                             f'{_shape(guide)}')

    def _init_filters(self, in_channels, out_channels, shared_filters, bias, transposed):
        """Weight ``[C_out, C_in, kh, kw]`` (``[C_in, C_out, ...]`` when transposed, as
        torch's layers), or ``[1, 1, kh, kw]`` shared by all channels; bias ``[C_out]``."""
        self.shared_filters = shared_filters
        if shared_filters and in_channels != out_channels:
            raise ValueError(f'out_channels: shared_filters needs in_channels == out_channels, '
                             f'got {in_channels} and {out_channels}')
        channels = (in_channels, out_channels) if transposed else (out_channels, in_channels)
        weight_shape = (1, 1) if shared_filters else channels
        self.weight = nn.Parameter(torch.empty(*weight_shape, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self._reset(self.weight, self.bias)

    def _reset(self, weight, bias):
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        if bias is not None:
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(bias, -bound, bound)

    def extra_repr(self):
        return (f'kernel_size={self.kernel_size}, stride={self.stride}, '
                f'padding={self.padding}, dilation={self.dilation}, '
                f'kernel_type={self.kernel_type!r}, normalize_kernel={self.normalize_kernel}, '
                f'channel_wise={self.channel_wise}')

    def compute_kernel(self, guide, mask=None):
        """[B, C_g, H, W] -> [B, 1 or C_g, kh, kw, H_out, W_out]."""
        return self._kernel(guide, mask, transposed=False)

    def _guide_size(self, input):
        """The spatial size the guide must have for ``input``, and its name in errors."""
        return input.shape[2:], 'same as input'

    def _kernel_for_input(self, input, guide, kernel, mask):
        """The given kernel, or one computed from a guide of the required size."""
        _require_4d('input', input)
        if kernel is None:
            if guide is None:
                raise ValueError('guide: needed when no kernel is given, got None '
                                 f'(input shape {_shape(input)})')
            self._check_guide(guide, input, *self._guide_size(input))
            kernel = self.compute_kernel(guide, mask)
        return kernel


class PacConv2d(_PacBase):
    """Pixel-adaptive ``nn.Conv2d``.

    ``forward(input [B, C_in, H, W], guide [B, C_g, H, W], kernel=None,
    mask=None) -> [B, C_out, H_out, W_out]``.  Pass ``kernel`` (from
    :meth:`compute_kernel` or :func:`pac_kernel2d`) to reuse one kernel; the
    guide is then optional.  With a constant guide it equals ``nn.Conv2d``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, kernel_type='gaussian', smooth_kernel_type='none',
                 normalize_kernel=False, shared_filters=False, channel_wise=False):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, 'kernel_size')
        self.stride = _pair(stride, 'stride')
        self.dilation = _pair(dilation, 'dilation')
        self.padding = _resolve_padding(padding, self.kernel_size, self.dilation)
        self._init_kernel(kernel_type, smooth_kernel_type, normalize_kernel, channel_wise)
        self._init_filters(in_channels, out_channels, shared_filters, bias, transposed=False)

    def forward(self, input, guide=None, kernel=None, mask=None):
        kernel = self._kernel_for_input(input, guide, kernel, mask)
        return pac_conv2d(input, kernel, self.weight, self.bias, self.stride, self.padding,
                          self.dilation, self.shared_filters)


class PacConvTranspose2d(_PacBase):
    """Pixel-adaptive ``nn.ConvTranspose2d`` (weight [C_in, C_out, kh, kw]).

    ``forward(input [B, C_in, H, W], guide [B, C_g, H_out, W_out],
    kernel=None, mask=None) -> [B, C_out, H_out, W_out]``: the guide lives at
    the *output* resolution; ``mask`` ([B, 1, H, W]) marks valid input pixels.
    With a constant guide it equals ``nn.ConvTranspose2d``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, dilation=1, bias=True, kernel_type='gaussian',
                 smooth_kernel_type='none', normalize_kernel=False, shared_filters=False,
                 channel_wise=False):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, 'kernel_size')
        self.stride = _pair(stride, 'stride')
        self.padding = _pair(padding, 'padding')
        self.output_padding = _pair(output_padding, 'output_padding')
        self.dilation = _pair(dilation, 'dilation')
        self._init_kernel(kernel_type, smooth_kernel_type, normalize_kernel, channel_wise)
        self._init_filters(in_channels, out_channels, shared_filters, bias, transposed=True)

    def output_size(self, input_size):
        """(H, W) of the input -> (H_out, W_out)."""
        return _transposed_out_size(input_size, self.kernel_size, self.stride, self.padding,
                                    self.output_padding, self.dilation)

    def compute_kernel(self, guide, mask=None):
        """[B, C_g, H_out, W_out] -> [B, 1 or C_g, kh, kw, H_out, W_out]."""
        return self._kernel(guide, mask, transposed=True, output_padding=self.output_padding)

    def _guide_size(self, input):
        return self.output_size(input.shape[2:]), 'the output size'

    def forward(self, input, guide=None, kernel=None, mask=None):
        kernel = self._kernel_for_input(input, guide, kernel, mask)
        return pac_conv_transpose2d(input, kernel, self.weight, self.bias, self.stride,
                                    self.padding, self.output_padding, self.dilation,
                                    self.shared_filters)

    def extra_repr(self):
        return super().extra_repr() + f', output_padding={self.output_padding}'


class PacPool2d(_PacBase):
    """Pixel-adaptive pooling ``out[i] = sum_j K_ij in[j]`` per channel; with
    ``normalize_kernel=True`` (default) a kernel-weighted average.

    ``forward(input [B, C, H, W], guide [B, C_g, H, W], kernel=None,
    mask=None) -> [B, C, H_out, W_out]``.
    """

    def __init__(self, kernel_size, stride=1, padding=0, dilation=1, kernel_type='gaussian',
                 smooth_kernel_type='none', normalize_kernel=True, channel_wise=False):
        super().__init__()
        self.kernel_size = _pair(kernel_size, 'kernel_size')
        self.stride = _pair(stride, 'stride')
        self.dilation = _pair(dilation, 'dilation')
        self.padding = _resolve_padding(padding, self.kernel_size, self.dilation)
        self._init_kernel(kernel_type, smooth_kernel_type, normalize_kernel, channel_wise)

    def forward(self, input, guide=None, kernel=None, mask=None):
        kernel = self._kernel_for_input(input, guide, kernel, mask)
        return pac_pool2d(input, kernel, self.kernel_size, self.stride, self.padding,
                          self.dilation)
