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

Files by job: :mod:`.pac_geometry` (argument parsing, output sizes, tap
views), :mod:`.pac_kernel` (:func:`pac_kernel2d`), :mod:`.pac_tiled` (the
tiled autograd engine, which never materialises the im2col tensor of size
``C * kh * kw * H_out * W_out``), :mod:`.pac_export` (kernel and convolution
as a few unfold-based ops, taken while a graph is traced or exported), and this file (the public
functions and modules; everything is importable from here).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .inference import recording_graph
from .pac_export import pac_unfolded
from .pac_geometry import (_conv_out_size, _pair, _require_4d, _resolve_padding, _shape,
                           _transposed_input_grid, _transposed_out_size, _transposed_phase)
from .pac_kernel import pac_kernel2d, parse_kernel_type
from .pac_tiled import DEFAULT_CHUNK_ELEMENTS, _engine_dtype, _pac_core

__all__ = [
    'pac_kernel2d', 'pac_conv2d', 'pac_conv_transpose2d', 'pac_pool2d',
    'PacConv2d', 'PacConvTranspose2d', 'PacPool2d', 'parse_kernel_type'
]


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


def _check_bias(bias, channels, input_shape):
    if bias is not None and (not torch.is_tensor(bias) or _shape(bias) != (channels, )):
        got = _shape(bias) if torch.is_tensor(bias) else type(bias).__name__
        raise ValueError(f'bias: expected shape ({channels},) for input of shape '
                         f'{tuple(input_shape)}, got {got}')


def _pac(padded, kernel, weight, bias, out_size, stride, dilation, shared_filters,
         chunk_elements):
    """The tiled engine, or its plain-op twin while a graph is being recorded
    (tracing, ONNX export, ``torch.export``; see :mod:`.pac_export`)."""
    if recording_graph():
        return pac_unfolded(padded, kernel, weight, bias, out_size, stride, dilation,
                            shared_filters)
    return _pac_core(padded, kernel, weight, bias, out_size, stride, dilation, shared_filters,
                     chunk_elements)


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
    return _pac(padded, kernel, weight, bias, out_size, stride, dilation, shared_filters,
                chunk_elements)


def pac_conv_transpose2d(input, kernel, weight, bias=None, stride=1, padding=0,
                         output_padding=0, dilation=1, shared_filters=False, *,
                         chunk_elements=DEFAULT_CHUNK_ELEMENTS):
    """Pixel-adaptive transposed convolution with a precomputed kernel.

    Defined as a stride-1 PAC over the zero-inserted, padded input with the
    flipped filter, exactly like ``nn.ConvTranspose2d``; kernel tap ``t``
    therefore pairs with ``weight[..., kh-1-ty, kw-1-tx]``. With stride > 1 it is
    computed per output phase (:func:`_pac_transpose_by_phases`), so the inserted
    zeros cost nothing.

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
    flipped = weight.flip(2, 3)
    if not shared_filters:
        flipped = flipped.transpose(0, 1)
    if stride == (1, 1) or recording_graph():
        grid = _transposed_input_grid(input, kernel_size, stride, padding, output_padding,
                                      dilation)
        return _pac(grid, kernel, flipped, bias, out_size, (1, 1), dilation, shared_filters,
                    chunk_elements)
    return _pac_transpose_by_phases(input, kernel, flipped, bias, out_size, stride, padding,
                                    dilation, shared_filters, chunk_elements)


class _DisjointSlices(torch.autograd.Function):
    """``[tensor[index] for index in indices]`` for disjoint ``indices``, with one
    gradient buffer: autograd's own slicing gives each slice's backward a zero-filled
    gradient the size of ``tensor``, which for the ``s * s`` phases of a stride-``s``
    PAC transposed conv (256 at x16, over a kernel of 33 x 33 taps per output pixel) is
    most of the training time. Forward copies the slices (as many elements as
    ``tensor`` in all)."""

    @staticmethod
    def forward(ctx, tensor, indices):
        ctx.indices, ctx.shape = indices, tensor.shape
        return tuple(tensor[index].clone() for index in indices)

    @staticmethod
    def backward(ctx, *grads):
        present = [piece for piece in grads if piece is not None]
        if not present:
            return None, None
        grad = present[0].new_zeros(ctx.shape)
        for index, piece in zip(ctx.indices, grads):
            if piece is not None:
                grad[index] += piece
        return grad, None


def _pac_transpose_by_phases(input, kernel, flipped, bias, out_size, stride, padding, dilation,
                             shared_filters, chunk_elements):
    """A strided PAC transposed conv as ``sh * sw`` stride-1 PACs over the input itself,
    one per output phase (sub-pixel position), each with only the taps that meet real
    input pixels: the zero-inserted grid's ``(s^2 - 1) / s^2`` zeros are never multiplied.
    Same values as the stride-1 PAC over the grid (the zeros contribute nothing)."""
    kernel_size = flipped.shape[2:]
    grid_pads = [(k - 1) * d - p for k, d, p in zip(kernel_size, dilation, padding)]
    axes = [[_transposed_phase(r, input.shape[2 + axis], out_size[axis], kernel_size[axis],
                               stride[axis], grid_pads[axis], dilation[axis])
             for r in range(stride[axis])] for axis in (0, 1)]
    out_channels = flipped.shape[0] if not shared_filters else input.shape[1]
    out = input.new_zeros(input.shape[0], out_channels, *out_size,
                          dtype=_engine_dtype(input, kernel, flipped))
    phases = [(ry, rx, rows, columns) for ry, rows in enumerate(axes[0])
              for rx, columns in enumerate(axes[1])
              if rows is not None and columns is not None]  # others only meet zeros or padding
    kernel_slices = [(slice(None), slice(None), rows['taps'], columns['taps'],
                      slice(ry, None, stride[0]), slice(rx, None, stride[1]))
                     for ry, rx, rows, columns in phases]
    phase_kernels = (_DisjointSlices.apply(kernel, kernel_slices) if kernel.requires_grad
                     else [kernel[index] for index in kernel_slices])
    for (ry, rx, rows, columns), phase_kernel in zip(phases, phase_kernels):
        phase_input = F.pad(input, (*columns['pad'], *rows['pad']))
        phase_weight = flipped[:, :, rows['taps'], columns['taps']]
        out[:, :, ry::stride[0], rx::stride[1]] = _pac_core(
            phase_input, phase_kernel, phase_weight, None,
            (rows['outputs'], columns['outputs']), (1, 1),
            (rows['dilation'], columns['dilation']), shared_filters, chunk_elements)
    if bias is not None:
        out = out + bias.to(out.dtype).view(1, -1, 1, 1)
    return out


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
        if any(op >= max(s, d) for op, s, d in zip(self.output_padding, self.stride, self.dilation)):
            raise ValueError(f'output_padding: must be smaller than stride or dilation, got '
                             f'output_padding={self.output_padding}, stride={self.stride}, '
                             f'dilation={self.dilation}')
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
