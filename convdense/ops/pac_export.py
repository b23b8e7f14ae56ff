"""The export path of PAC: the kernel and the convolution written as a few
standard tensor ops, taken while ``torch.jit.trace``, ``torch.export`` or an
ONNX exporter records a graph (:func:`~convdense.ops.inference.recording_graph`).

The tiled engine (:mod:`.pac_tiled`) is a Python ``autograd.Function`` whose
loops depend on the concrete output size and that writes into reused
buffers, and :func:`~convdense.ops.pac_kernel.pac_kernel2d` loops over the
``kh * kw`` taps; a tracer would record an opaque Python call, or a graph that
grows with the window (a x16 JBU window has 1089 taps) and one slice per tap.
Here every tap set is one ``F.unfold`` (ONNX: two Gathers), so the graph has a
fixed, small size, its shapes follow the input symbolically (dynamic H/W),
and the results equal the tiled engine's up to float summation order.

Cost: the exported convolution holds the unfolded input,
``C * kh * kw * H_out * W_out`` values for one layer at a time (the im2col
tensor the tiled engine avoids); the kernel is built one guide channel at a
time, so its intermediates stay at the kernel's own size.
"""
import torch
import torch.nn.functional as F


def unfold_taps(x, kernel_size, out_size, stride, dilation):
    """What every tap reads, for every output pixel.

    ``[B, C, H_pad, W_pad] -> [B, C, kh * kw, H_out, W_out]`` (taps row-major),
    for an input already padded so that ``out_size`` is the valid-conv size.
    """
    columns = F.unfold(x, kernel_size, dilation=dilation, stride=stride)
    return columns.view(x.shape[0], x.shape[1], kernel_size[0] * kernel_size[1], *out_size)


def tap_sq_distances(padded, centre, kernel_size, out_size, stride, dilation, channel_wise):
    """``||f_i - f_j||^2`` between each window centre and its taps.

    Args:
        padded (Tensor): [B, C_g, H_pad, W_pad] guide, padded as the kernel needs.
        centre (Tensor): [B, C_g, H_out, W_out] guide at the window centres.

    Returns:
        Tensor: [B, 1, kh * kw, H_out, W_out], or [B, C_g, ...] per channel
        with ``channel_wise``. Summed one guide channel at a time, so no
        [B, C_g, kh * kw, H_out, W_out] tensor exists unless that is the result.
    """
    if channel_wise:
        taps = unfold_taps(padded, kernel_size, out_size, stride, dilation)
        return (taps - centre.unsqueeze(2)).square()
    total = None
    for channel in range(padded.shape[1]):
        taps = unfold_taps(padded[:, channel:channel + 1], kernel_size, out_size, stride,
                           dilation)
        sq_dist = (taps - centre[:, channel:channel + 1].unsqueeze(2)).square()
        total = sq_dist if total is None else total + sq_dist
    return total


def pac_unfolded(padded, kernel, weight, bias, out_size, stride, dilation, shared_filters):
    """PAC over an already padded input as unfold, multiply and one ``1 x 1`` conv.

    Args:
        padded (Tensor): [B, C, H_pad, W_pad].
        kernel (Tensor): [B, 1 or C, kh, kw, H_out, W_out].
        weight (Tensor): [C_out, C, kh, kw], or [1, 1, kh, kw] when
            ``shared_filters`` (then C_out = C).
        bias (Tensor, optional): [C_out].
        out_size, stride, dilation: pairs, as the tiled engine takes them.

    Returns:
        Tensor: [B, C_out, H_out, W_out].
    """
    batch, channels = padded.shape[:2]
    kh, kw = weight.shape[2:]
    taps = kh * kw
    modulated = unfold_taps(padded, (kh, kw), out_size, stride, dilation) * kernel.reshape(
        batch, kernel.shape[1], taps, *out_size)
    if shared_filters:
        out = (modulated * weight.reshape(1, 1, taps, 1, 1)).sum(dim=2)
        return out if bias is None else out + bias.view(1, -1, 1, 1)
    # [C_out, C * taps] matches the unfolded channel order (channel-major, then taps).
    return F.conv2d(modulated.reshape(batch, channels * taps, *out_size),
                    weight.reshape(weight.shape[0], channels * taps, 1, 1), bias)
