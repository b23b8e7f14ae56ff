"""HetConv: heterogeneous kernel-based convolution (Singh et al., CVPR 2019).

A HetConv layer with ``M`` input channels, ``N`` filters and part ``P`` gives
every filter ``M/P`` kernels of ``k x k`` and ``M - M/P`` kernels of ``1 x 1``,
with the position of the ``k x k`` kernels shifted cyclically from filter to
filter. Its cost is ``N * H'W' * (M/P * k^2 + M - M/P)`` multiply-adds instead of
``N * H'W' * M * k^2``; ``P = 1`` is a plain convolution.

Layout used here. Input channels form ``P`` contiguous blocks of ``M/P``, output
filters ``P`` contiguous blocks of ``N/P``. Filter block ``g`` has its ``k x k``
kernels on input block ``g`` and ``1 x 1`` kernels on the other blocks, so the
``k x k`` block moves by one from one filter block to the next, cyclically. The
paper numbers the same pattern with filter ``j`` holding its ``k x k`` kernels on
channels ``c = j (mod P)``; the two differ only by a fixed relabelling of input
and output channels (paper channel ``c`` is channel ``(c % P) * M/P + c // P``
here, likewise for filters), which the layers around a HetConv absorb. The
blocked layout lets the layer run as two dense library convolutions whose FLOPs
are exactly the paper's:

* the ``k x k`` part is a grouped convolution (``groups=P``): block ``g`` to block ``g``;
* the ``1 x 1`` part is a grouped pointwise convolution (``groups=P``) over the
  input with its blocks gathered as ``[g+1, ..., g+P-1] (mod P)`` for each ``g``,
  so no ``1 x 1`` kernel is computed where a ``k x k`` kernel already sits (a
  dense pointwise convolution would spend ``N*M/P*H'W'`` extra multiply-adds,
  +2 % on ResNet-50 at ``P = 4``).

The ``1 x 1`` kernels sit at the centre tap of the ``k x k`` window, so the
padding is ``dilation * (k - 1) / 2`` and both parts have the same output size.

Deploy form (:meth:`HetConv2d.switch_to_deploy`). The gather and the grouped
pointwise conv above cost more on CPU than the multiply-adds they save, so the
deployed layer's ``1 x 1`` part is one dense pointwise conv whose ``(N, M)``
weight holds the ``1 x 1`` kernels and zeros on each filter block's own input
block: it spends ``N * M/P * H'W'`` multiply-adds on those structural zeros,
+1/3 on the pointwise part at ``P = 4`` (+1.8 % of HetConv-ResNet-50's
multiply-adds at 224x224), because one dense conv beats a gather plus a grouped
conv; the pointwise result is added in place. Same function: the tests compare
the deployed layer with the exact one. Counted
FLOPs and parameters are the exact path's.
"""
import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checks import check_feature_map
from .deploy import DeployableMixin, norm_affine, refuse_backward, scale_rows


def _check_divisible(in_channels, out_channels, part):
    if not isinstance(part, int) or part < 1:
        raise ValueError(f'HetConv part P must be a positive int, got {part!r}')
    if in_channels % part or out_channels % part:
        raise ValueError(
            f'HetConv part P={part} must divide both in_channels={in_channels} '
            f'and out_channels={out_channels}')


@functools.lru_cache(maxsize=None)
def _other_blocks_index(in_channels, part):
    """Input-channel order feeding the grouped pointwise conv: for each block ``g``,
    the channels of blocks ``g+1, ..., g+P-1`` (mod P). Shape ``(M * (P-1),)``."""
    block = in_channels // part
    order = [((g + shift) % part) * block + c
             for g in range(part) for shift in range(1, part) for c in range(block)]
    return torch.tensor(order, dtype=torch.long)


def hetconv2d(x, spatial_weight, pointwise_weight, part, stride=1, dilation=1, bias=None):
    """Heterogeneous convolution.

    Args:
        x (Tensor): ``(B, M, H, W)``.
        spatial_weight (Tensor): ``(N, M/P, k, k)``, the ``k x k`` kernels, grouped by filter block.
        pointwise_weight (Tensor | None): ``(N, M - M/P, 1, 1)``, the ``1 x 1`` kernels of
            each filter on the other blocks in order ``g+1, ..., g+P-1``; None iff ``P = 1``.
        part (int): P.
        stride (int), dilation (int): as for a ``k x k`` convolution.
        bias (Tensor | None): ``(N,)``.

    Returns:
        Tensor: ``(B, N, H', W')`` with ``H' = floor((H - 1) / stride) + 1``.
    """
    check_feature_map(x, 'input', like=spatial_weight)
    in_channels = x.shape[1]
    out_channels, block_in, kernel_h, kernel_w = spatial_weight.shape
    _check_divisible(in_channels, out_channels, part)
    if block_in * part != in_channels:
        raise ValueError(
            f'input has {in_channels} channels but spatial_weight expects '
            f'{block_in} x P={part} = {block_in * part}')
    if kernel_h != kernel_w or kernel_h % 2 == 0:
        raise ValueError(f'HetConv needs a square odd kernel, got {kernel_h}x{kernel_w}')
    if (part == 1) != (pointwise_weight is None):
        raise ValueError('pointwise_weight must be None exactly when part == 1')
    padding = dilation * (kernel_h - 1) // 2
    out = F.conv2d(x, spatial_weight, bias, stride, padding, dilation, groups=part)
    if part > 1:
        expected = (out_channels, in_channels - block_in, 1, 1)
        if tuple(pointwise_weight.shape) != expected:
            raise ValueError(f'pointwise_weight must have shape {expected}, '
                             f'got {tuple(pointwise_weight.shape)}')
        index = _other_blocks_index(in_channels, part).to(x.device)
        # Subsample before gathering: a strided 1x1 conv reads only these pixels.
        others = x[:, :, ::stride, ::stride].index_select(1, index)
        out = out + F.conv2d(others, pointwise_weight, groups=part)
    return out


def dense_pointwise_weight(pointwise_weight, part):
    """The ``(N, M, 1, 1)`` weight of a dense pointwise conv equal to the ``1 x 1``
    part of a HetConv: ``pointwise_weight`` ``(N, M - M/P, 1, 1)`` scattered to its
    input blocks ``g+1, ..., g+P-1`` (mod P), zeros on each filter block's own."""
    out_channels, others = pointwise_weight.shape[:2]
    block_in, block_out = others // (part - 1), out_channels // part
    dense = pointwise_weight.new_zeros(out_channels, block_in * part, 1, 1)
    for g in range(part):
        rows = slice(g * block_out, (g + 1) * block_out)
        for slot, shift in enumerate(range(1, part)):
            source = (g + shift) % part
            dense[rows, source * block_in:(source + 1) * block_in] = \
                pointwise_weight[rows, slot * block_in:(slot + 1) * block_in]
    return dense


def hetconv_kernel_mask(in_channels, out_channels, kernel_size, part):
    """Where a HetConv has weights, as a dense conv weight mask.

    Returns:
        Tensor: bool ``(N, M, k, k)``; per filter, ``M/P`` full ``k x k`` kernels and
        ``M - M/P`` centre taps.
    """
    _check_divisible(in_channels, out_channels, part)
    mask = torch.zeros(out_channels, in_channels, kernel_size, kernel_size, dtype=torch.bool)
    centre = kernel_size // 2
    mask[:, :, centre, centre] = True
    block_in, block_out = in_channels // part, out_channels // part
    for g in range(part):
        mask[g * block_out:(g + 1) * block_out, g * block_in:(g + 1) * block_in] = True
    return mask


def hetconv_dense_weight(spatial_weight, pointwise_weight, part):
    """The plain-conv weight ``(N, M, k, k)`` computing the same function as a HetConv
    (zeros off the HetConv pattern): for inspection and as a slow reference."""
    out_channels, block_in, kernel, _ = spatial_weight.shape
    in_channels = block_in * part
    block_out = out_channels // part
    dense = spatial_weight.new_zeros(out_channels, in_channels, kernel, kernel)
    centre = kernel // 2
    for g in range(part):
        rows = slice(g * block_out, (g + 1) * block_out)
        dense[rows, g * block_in:(g + 1) * block_in] = spatial_weight[rows]
        for slot, shift in enumerate(range(1, part)):
            source = (g + shift) % part
            dense[rows, source * block_in:(source + 1) * block_in, centre, centre] = \
                pointwise_weight[rows, slot * block_in:(slot + 1) * block_in, 0, 0]
    return dense


class HetConv2d(DeployableMixin, nn.Module):
    """Heterogeneous ``k x k`` convolution, input ``(B, M, H, W)`` -> ``(B, N, H', W')``.

    Holds two ``nn.Conv2d`` so that weight initialisers and FLOP counters see
    ordinary convolutions: ``spatial`` (``M -> N``, ``k x k``, ``groups=P``) and,
    for ``P > 1``, ``pointwise`` (``M(P-1) -> N``, ``1 x 1``, ``groups=P``, so
    ``M - M/P`` inputs per filter), which :func:`hetconv2d` feeds with the
    gathered other blocks.

    Args:
        in_channels (int): M. out_channels (int): N. Both divisible by ``part``.
        kernel_size (int): k, odd.
        part (int): P; ``1`` gives a plain convolution.
        stride, dilation (int): as for ``nn.Conv2d``; padding keeps the kernel centred.
        bias (bool): add a learnable bias.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, part=4, stride=1,
                 dilation=1, bias=False):
        super().__init__()
        _check_divisible(in_channels, out_channels, part)
        if kernel_size % 2 == 0:
            raise ValueError(f'HetConv needs an odd kernel_size, got {kernel_size}')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.part = kernel_size, part
        self.stride, self.dilation = stride, dilation
        self.spatial = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                                 padding=dilation * (kernel_size - 1) // 2,
                                 dilation=dilation, groups=part, bias=bias)
        self.pointwise = None
        if part > 1:
            # Its input is the (P-1)*M gathered channels; each filter sees M - M/P of them.
            self.pointwise = nn.Conv2d(in_channels * (part - 1), out_channels, 1,
                                       groups=part, bias=False)
        self.reset_parameters()

    def reset_parameters(self):
        """He-normal init over each filter's true fan-in ``M/P*k^2 + M - M/P``, so the
        output variance matches a plain conv's at any P."""
        fan_in = (self.in_channels // self.part * self.kernel_size ** 2
                  + self.in_channels - self.in_channels // self.part)
        std = math.sqrt(2.0 / fan_in)
        nn.init.normal_(self.spatial.weight, 0.0, std)
        if self.spatial.bias is not None:
            nn.init.zeros_(self.spatial.bias)
        if self.pointwise is not None:
            nn.init.normal_(self.pointwise.weight, 0.0, std)

    def forward(self, x):
        """``(B, M, H, W)`` -> ``(B, N, floor((H-1)/stride)+1, floor((W-1)/stride)+1)``."""
        if self.deploy:
            check_feature_map(x, 'input', self.in_channels, self.spatial_weight)
            return refuse_backward(self._forward_deploy(x), type(self).__name__)
        check_feature_map(x, 'input', self.in_channels, self.spatial.weight)
        return hetconv2d(x, self.spatial.weight,
                         None if self.pointwise is None else self.pointwise.weight,
                         self.part, self.stride, self.dilation, self.spatial.bias)

    def _build_deploy(self):
        """``spatial_weight`` ``(N, M/P, k, k)``, ``pointwise_weight`` ``(N, M, 1, 1)``
        (:func:`dense_pointwise_weight`, ``None`` for ``P = 1``) and ``bias``."""
        spatial, pointwise = self.spatial, self.pointwise
        del self.spatial, self.pointwise
        self._deploy_buffer('spatial_weight', spatial.weight)
        self._deploy_buffer('pointwise_weight', None if pointwise is None else
                            dense_pointwise_weight(pointwise.weight, self.part))
        self._deploy_buffer('bias', spatial.bias)

    @torch.no_grad()
    def fuse_norm(self, norm):
        """Fold an eval-mode batch norm applied to the output into the deploy form."""
        if not self.deploy:
            raise RuntimeError('fuse_norm: call switch_to_deploy() first')
        scale, shift = norm_affine(norm)
        self.spatial_weight = scale_rows(self.spatial_weight, scale).contiguous()
        if self.pointwise_weight is not None:
            self.pointwise_weight = scale_rows(self.pointwise_weight, scale).contiguous()
        self.bias = shift if self.bias is None else self.bias * scale + shift

    def _forward_deploy(self, x):
        padding = self.dilation * (self.kernel_size - 1) // 2
        out = F.conv2d(x, self.spatial_weight, self.bias, self.stride, padding, self.dilation,
                       self.part)
        if self.pointwise_weight is None:
            return out
        return out.add_(F.conv2d(x, self.pointwise_weight, None, self.stride))

    def dense_weight(self):
        """The equivalent plain-conv weight ``(N, M, k, k)`` (see :func:`hetconv_dense_weight`)."""
        if self.deploy:
            raise RuntimeError('dense_weight: the layer is deployed; '
                               'call it before switch_to_deploy')
        if self.pointwise is None:
            return self.spatial.weight
        return hetconv_dense_weight(self.spatial.weight, self.pointwise.weight, self.part)

    def extra_repr(self):
        return (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
                f'part={self.part}, stride={self.stride}, dilation={self.dilation}'
                + (', deploy=True' if self.deploy else ''))
