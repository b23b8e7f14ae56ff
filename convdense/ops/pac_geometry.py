"""Argument parsing and window geometry shared by the PAC kernel, the tiled
engine and the public functions: pairs, ``'same'`` padding, output sizes, the
zero-inserted grid of a transposed conv, and the strided view one tap reads."""
import torch
import torch.nn.functional as F


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
    """A floating ``(B, C, H, W)`` tensor with ``H, W >= 1`` (``B = 0`` is fine)."""
    if not torch.is_tensor(tensor) or tensor.dim() != 4:
        got = _shape(tensor) if torch.is_tensor(tensor) else type(tensor).__name__
        raise ValueError(f'{name}: expected a 4-D tensor (B, C, H, W), got shape {got}')
    if not tensor.is_floating_point():
        raise TypeError(f'{name}: expected a floating-point tensor, got {tensor.dtype}')
    if tensor.shape[2] == 0 or tensor.shape[3] == 0:
        raise ValueError(f'{name}: empty spatial size {_shape(tensor)}')


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


def _transposed_phase(phase, size_in, out_len, kernel, stride, grid_pad, dilation):
    """One axis of a stride-``s`` transposed conv split into ``s`` stride-1 phases.

    The stride-1 conv over the zero-inserted grid reads, for output ``o = phase + s * m``,
    only the taps ``t`` with ``(phase + t * d - grid_pad) % s == 0``: an arithmetic run
    ``first, first + step, ...`` (``step = s / gcd(s, d)``) that reads input pixels
    ``m + offset + j * d'`` (``d' = step * d / s``). Returns None when no tap reads a real
    pixel for this phase, else ``dict(taps=slice, outputs=M, dilation=d', pad=(before,
    after))``: ``F.pad`` amounts (negative: crop) that turn the input into the stride-1,
    unpadded input of the phase.
    """
    taps = [t for t in range(kernel) if (phase + t * dilation - grid_pad) % stride == 0]
    outputs = len(range(phase, out_len, stride))
    if not taps or outputs == 0:
        return None
    step = taps[1] - taps[0] if len(taps) > 1 else 1
    new_dilation = step * dilation // stride if len(taps) > 1 else 1
    first = (phase + taps[0] * dilation - grid_pad) // stride
    last = first + outputs - 1 + (len(taps) - 1) * new_dilation  # last input pixel read
    if last < 0 or first >= size_in:
        return None  # every tap of this phase reads padding
    return dict(taps=slice(taps[0], taps[-1] + 1, step), outputs=outputs, dilation=new_dilation,
                pad=(-first, last - (size_in - 1)))
