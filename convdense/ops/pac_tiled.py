"""The tiled PAC engine: a custom autograd function that computes a PAC over
an already padded input without materialising the ``C * kh * kw * H_out * W_out``
im2col tensor.

It walks (block of output rows) x (chunk of taps) tiles, builds
``K_t * shift_t(input)`` for one tile into a reused buffer, contracts it with
the matching weight columns in one matmul, and in backward recomputes the tile
instead of storing it.  Peak extra memory is one tile (``chunk_elements``).

Precision: input, kernel and weight must share one floating dtype. Under
``torch.autocast`` the three are cast to the autocast dtype (bf16 on CPU, fp16
on CUDA) and the engine runs in it with autocast off inside, as ``F.conv2d``
computes under autocast; the result has that dtype.

Gradients: first order only. The backward writes into reused buffers, so it is
not itself differentiable; a second backward (``create_graph=True``, double
backward) raises a ``RuntimeError`` that says so instead of failing inside an
``out=`` call.
"""
import functools

import torch

from .pac_geometry import _tap_view


# Upper bound on the elements of one tile of modulated, shifted input (8 MiB
# in float32).  Measured on CPU: tiles of 2-8 Mi elements run equally fast,
# but larger ones leave the allocator holding several times their size.
DEFAULT_CHUNK_ELEMENTS = 2 * 1024 * 1024


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


DOUBLE_BACKWARD_ERROR = (
    'pac_kernel2d / pac_conv2d / pac_conv_transpose2d / pac_pool2d support first-order '
    'gradients only: '
    'their hand-written backward is not differentiable (double backward or create_graph=True '
    'through a PAC op)')


def _once_differentiable(backward):
    """``torch.autograd.function.once_differentiable`` with an error that names PAC:
    the backward runs without autograd, and if a graph was requested its
    outputs carry a node that raises :data:`DOUBLE_BACKWARD_ERROR` when
    differentiated."""

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        with torch.no_grad():
            outputs = backward(ctx, *grads)
        if not torch.is_grad_enabled():  # no create_graph: the usual case
            return outputs
        tensors = [o.detach().requires_grad_() for o in outputs if isinstance(o, torch.Tensor)]
        raising = torch._C._functions.DelayedError(DOUBLE_BACKWARD_ERROR.encode(),
                                                   len(tensors))(*tensors)
        raising = iter(raising if isinstance(raising, tuple) else (raising, ))
        return tuple(next(raising) if isinstance(o, torch.Tensor) else o for o in outputs)

    return wrapper


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
            # Half-precision inputs are summed over the taps in float32, as a
            # library conv accumulates, and rounded once at the end.
            low_precision = padded.dtype in (torch.float16, torch.bfloat16)
            out = padded.new_zeros(batch, channels, *out_size,
                                   dtype=torch.float32 if low_precision else padded.dtype)
            weight_per_tap = weight.reshape(kh * kw)
            for t in range(kh * kw):
                ty, tx = divmod(t, kw)
                out.addcmul_(_tap_view(padded, ty, tx, out_size, stride, dilation),
                             kernel[:, :, ty, tx] * weight_per_tap[t])
            return out.to(padded.dtype)
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
    @_once_differentiable
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


def _engine_dtype(input, kernel, weight):
    """The dtype the engine runs in: the autocast dtype under ``torch.autocast``,
    else the one dtype the three tensors share (a ``TypeError`` if they differ
    or are not floating point)."""
    dtypes = (input.dtype, kernel.dtype, weight.dtype)
    if not all(d.is_floating_point for d in dtypes):
        raise TypeError(f'PAC needs floating-point input, kernel and weight, got dtypes '
                        f'{tuple(str(d) for d in dtypes)}')
    device_type = input.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    if len(set(dtypes)) > 1:
        raise TypeError(f'PAC: input, kernel and weight must have the same dtype, got '
                        f'{tuple(str(d) for d in dtypes)}')
    return input.dtype


def _pac_core(input, kernel, weight, bias, out_size, stride, dilation, shared_filters,
              chunk_elements):
    """The tiled engine plus bias; see the module docstring for dtypes."""
    dtype = _engine_dtype(input, kernel, weight)
    with torch.autocast(input.device.type, enabled=False):
        out = _PacConvFunction.apply(input.to(dtype), kernel.to(dtype), weight.to(dtype),
                                     out_size, stride, dilation, shared_filters,
                                     int(chunk_elements))
    if bias is not None:
        out = out + bias.to(dtype).view(1, -1, 1, 1)
    return out
