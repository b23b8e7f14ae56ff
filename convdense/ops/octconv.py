"""Octave convolution (Chen et al., "Drop an Octave", ICCV 2019).

A feature map with ``C`` channels is split into a high-frequency group
``x_high`` of ``C - int(alpha * C)`` channels at full resolution and a
low-frequency group ``x_low`` of ``int(alpha * C)`` channels at half
resolution. One octave convolution mixes the two groups through four paths::

    y_high = conv_HH(x_high) + upsample(conv_LH(x_low))
    y_low  = conv_LL(x_low)  + conv_HL(avgpool(x_high))

All four paths are slices of one ordinary ``(C_out, C_in, k, k)`` weight
(rows = outputs, columns = inputs, high channels first), so an
``OctaveConv2d`` has exactly the parameters of the ``nn.Conv2d`` it replaces
and loads that convolution's state dict unchanged.

Resolution conventions (these make any input size work, odd sides included):

* the low group of a map with side ``s`` has side ``ceil(s / 2)``;
* downsampling is 2x2 average pooling with ``ceil_mode=True`` (the partial
  border window averages only the pixels it covers), which gives exactly
  ``ceil(s / 2)``, the same size a stride-2 ``k=3, padding=1`` conv gives;
* upsampling is nearest-neighbour x2 followed by a crop to the high side;
* stride 2 (as in the paper's reference code) is 2x2 average pooling before
  the convolution; the L->H path then needs no upsampling because the low
  input already has the output resolution.

When ``alpha_in == alpha_out == 0`` the layer is exactly ``F.conv2d`` with the
given stride (strided conv, no pooling), as a ResNet's; with
``strided_downsample='avgpool'`` a stride-2 one is 2x2 average pooling + a
stride-1 conv instead, as every strided conv of the d-li14/octconv.pytorch
release runs (its ``OctaveConv`` pools whatever its alphas).
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import check_feature_map
from .deploy import DeployableMixin, norm_affine, refuse_backward, scale_rows
from .inference import recording_graph

OctaveTensor = Tuple[Tensor, Optional[Tensor]]
#: How a stride-2 conv with no low-frequency group (alpha_in = alpha_out = 0)
#: downsamples: a strided conv (ResNet) or 2x2 average pooling + conv.
STRIDED_DOWNSAMPLES = ('conv', 'avgpool')


def octave_split(channels: int, alpha: float) -> Tuple[int, int]:
    """Return ``(high_channels, low_channels)`` for ``channels`` at ratio ``alpha``.

    ``low = int(alpha * channels)`` as in the paper's reference code.
    """
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f'octave alpha must be in [0, 1), got {alpha}')
    low = int(alpha * channels)
    return channels - low, low


def downsample_by_two(x: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """2x2 average pooling, ``(N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2))``.

    ``out``: a tensor of that shape to write into (a slice of a larger buffer
    of a deployed layer); it is returned.
    """
    n, c, h, w = x.shape
    if h % 2 or w % 2:
        pooled = F.avg_pool2d(x, kernel_size=2, stride=2, ceil_mode=True)
        return pooled if out is None else out.copy_(pooled)
    # Same numbers as avg_pool2d, several times faster on CPU: add row pairs
    # (contiguous halves of a 2W-wide view), then column pairs.
    rows = x.reshape(n, c, h // 2, 2 * w)
    rows = (rows[..., :w] + rows[..., w:]).view(n, c, h // 2, w // 2, 2)
    if out is None:
        return (rows[..., 0] + rows[..., 1]) * 0.25
    return torch.add(rows[..., 0], rows[..., 1], out=out).mul_(0.25)


def upsample_to(x: Tensor, size: Tuple[int, int]) -> Tensor:
    """Nearest x2 upsampling cropped to ``size``.

    ``(N, C, h, w) -> (N, C, *size)`` where ``size[i] in (2h - 1, 2h)``.
    """
    x = F.interpolate(x, scale_factor=2.0, mode='nearest')
    return x[..., :size[0], :size[1]]


def add_upsampled(x: Tensor, low: Tensor) -> Tensor:
    """``x + upsample_to(low, x.shape[-2:])`` for ``(N, C, H, W)`` and
    ``(N, C, ceil(H/2), ceil(W/2))``, without materialising the upsampled map
    when both sides are even."""
    n, c, h, w = x.shape
    if h % 2 or w % 2:
        return x + upsample_to(low, (h, w))
    pairs = x.view(n, c, h // 2, 2, w // 2, 2) + low[:, :, :, None, :, None]
    return pairs.view(n, c, h, w)


def add_upsampled_(x: Tensor, low: Tensor) -> Tensor:
    """In-place :func:`add_upsampled` for inference: adds into ``x`` and returns it.

    Same numbers (one float add per element). The broadcast add above runs an
    inner loop of length 2 and is several times slower on CPU than a plain
    add, so here each low pixel is first doubled along W in one vectorised op
    (``view_as_real(complex(low, low))`` lays ``(v, v)`` pairs out in memory),
    then added to the even and to the odd rows. Falls back to
    :func:`add_upsampled` for odd sides or unusual layouts/dtypes.
    """
    n, c, h, w = x.shape
    if (h % 2 or w % 2 or x.dtype not in (torch.float32, torch.float64)
            or low.dtype != x.dtype or not x.is_contiguous() or not low.is_contiguous()):
        return add_upsampled(x, low)
    wide = torch.view_as_real(torch.complex(low, low)).view(n * c * (h // 2), w)
    rows = x.view(n * c * (h // 2), 2, w)
    rows[:, 0].add_(wide)
    rows[:, 1].add_(wide)
    return x


def merge_octave(x_high: Tensor, x_low: Optional[Tensor]) -> Tensor:
    """Concatenate the upsampled low group after the high group.

    ``(N, Ch, H, W), (N, Cl, ceil(H/2), ceil(W/2)) -> (N, Ch + Cl, H, W)``; this
    is how an octave feature map is handed to a neck that expects one tensor.
    """
    if x_low is None:
        return x_high
    return torch.cat([x_high, upsample_to(x_low, x_high.shape[-2:])], dim=1)


def _check_inputs(x_high: Tensor, x_low: Optional[Tensor], in_channels: int,
                  alpha_in: float, weight: Optional[Tensor] = None) -> int:
    """Raise a one-line error unless the pair fits (and has ``weight``'s dtype,
    outside autocast); return the high channels."""
    in_high, in_low = octave_split(in_channels, alpha_in)
    check_feature_map(x_high, 'x_high', like=weight)
    if x_low is not None:
        check_feature_map(x_low, 'x_low', like=weight)
    if x_high.shape[1] != in_high:
        raise ValueError(f'x_high has {x_high.shape[1]} channels, expected '
                         f'{in_high} (C_in={in_channels}, alpha_in={alpha_in})')
    if in_low == 0:
        if x_low is not None:
            raise ValueError('x_low must be None when alpha_in gives no low channels')
    elif x_low is None or x_low.shape[1] != in_low:
        got = None if x_low is None else x_low.shape[1]
        raise ValueError(f'x_low has {got} channels, expected {in_low} '
                         f'(C_in={in_channels}, alpha_in={alpha_in})')
    elif x_low.shape[-2:] != tuple((s + 1) // 2 for s in x_high.shape[-2:]):
        raise ValueError(f'x_low is {tuple(x_low.shape[-2:])}, expected half of x_high '
                         f'{tuple(x_high.shape[-2:])} rounded up')
    return in_high


def octave_conv2d(x_high: Tensor,
                  x_low: Optional[Tensor],
                  weight: Tensor,
                  alpha_in: float,
                  alpha_out: float,
                  bias: Optional[Tensor] = None,
                  stride: int = 1,
                  padding: int = 0,
                  dilation: int = 1) -> OctaveTensor:
    """Functional octave convolution.

    Args:
        x_high: ``(N, C_in - int(alpha_in*C_in), H, W)``.
        x_low: ``(N, int(alpha_in*C_in), ceil(H/2), ceil(W/2))`` or ``None``
            when ``alpha_in == 0``.
        weight: ``(C_out, C_in, k, k)``, high channels first on both axes.
        alpha_in, alpha_out: low-frequency ratios of input and output.
        bias: ``(C_out,)`` or ``None``; added once per output channel.
        stride: 1 or 2.

    Returns:
        ``(y_high, y_low)``: ``(N, C_out - int(alpha_out*C_out), H', W')`` and
        ``(N, int(alpha_out*C_out), ceil(H'/2), ceil(W'/2))`` (``None`` when
        ``alpha_out == 0``), where ``H' = ceil(H / stride)`` for the usual
        ``padding = dilation * (k - 1) / 2``.
    """
    if stride not in (1, 2):
        raise ValueError(f'octave conv supports stride 1 or 2, got {stride}')
    out_channels, in_channels = weight.shape[:2]
    in_high = _check_inputs(x_high, x_low, in_channels, alpha_in, weight)
    out_high, _ = octave_split(out_channels, alpha_out)
    return _octave_conv2d_blocks(x_high, x_low, weight, weight[:out_high, :in_high],
                                 weight[:out_high, in_high:], out_high, bias,
                                 stride, padding, dilation)


def _octave_conv2d_blocks(x_high, x_low, weight, high_from_high, high_from_low,
                          out_high, bias, stride, padding, dilation):
    """:func:`octave_conv2d` given the column blocks of ``weight[:out_high]``."""
    conv = dict(padding=padding, dilation=dilation)
    if x_low is None and weight.shape[0] == out_high:
        return F.conv2d(x_high, weight, bias, stride=stride, **conv), None
    bias_high = None if bias is None else bias[:out_high]
    bias_low = None if bias is None else bias[out_high:]
    to_low = weight[out_high:] if weight.shape[0] > out_high else None

    if stride == 2:
        # After pooling the high group has the low group's size, so each output
        # group is one conv over both input groups, pooled once more for y_low.
        x_high = downsample_by_two(x_high)
        both = x_high if x_low is None else torch.cat([x_high, x_low], dim=1)
        y_high = F.conv2d(both, weight[:out_high], bias_high, **conv)
        y_low = None if to_low is None else F.conv2d(
            downsample_by_two(both), to_low, bias_low, **conv)
        return y_high, y_low

    y_high = F.conv2d(x_high, high_from_high, bias_high, **conv)
    if x_low is not None:
        y_high = add_upsampled(y_high, F.conv2d(x_low, high_from_low, **conv))
    y_low = None
    if to_low is not None:
        low_in = downsample_by_two(x_high)
        if x_low is not None:
            low_in = torch.cat([low_in, x_low], dim=1)
        y_low = F.conv2d(low_in, to_low, bias_low, **conv)
    return y_high, y_low


def _pool(x: Tensor, eager: bool) -> Tensor:
    """:func:`downsample_by_two`; in a recorded graph one ``avg_pool2d`` (ONNX
    ``AveragePool``), with ``ceil_mode`` only where a side is odd: ONNX Runtime
    keeps a pool without it in its blocked (NCHWc) layout, and reorders around
    one with it."""
    if eager:
        return downsample_by_two(x)
    h, w = x.shape[-2:]
    return F.avg_pool2d(x, 2, 2, ceil_mode=bool(h % 2 or w % 2))


def _pooled_cat(x_high: Tensor, x_low: Optional[Tensor], eager: bool = True) -> Tensor:
    """``torch.cat([downsample_by_two(x_high), x_low], 1)``. Eager, the pooled
    group is written straight into the concatenated buffer (one pass and one
    allocation fewer than pooling, then concatenating)."""
    if x_low is None:
        return _pool(x_high, eager)
    if not eager:
        return torch.cat([_pool(x_high, eager), x_low], dim=1)
    c_high = x_high.shape[1]
    out = x_high.new_empty(x_low.shape[0], c_high + x_low.shape[1], *x_low.shape[-2:])
    downsample_by_two(x_high, out=out[:, :c_high])
    out[:, c_high:] = x_low
    return out


def _add_resized(x: Tensor, low: Tensor) -> Tensor:
    """:func:`add_upsampled` as a recorded graph holds it best: one nearest
    ``interpolate`` (ONNX ``Resize``) and an ``Add``, cropped only for odd sides."""
    h, w = x.shape[-2:]
    up = F.interpolate(low, scale_factor=2.0, mode='nearest')
    if h % 2 or w % 2:
        up = up[..., :h, :w]
    return x + up


def _as_pair(x) -> OctaveTensor:
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise TypeError(f'octave input must be a tensor or a pair (x_high, x_low), got '
                        f'{type(x).__name__}')
    return x[0], x[1]


class OctaveConv2d(DeployableMixin, nn.Conv2d):
    """``nn.Conv2d`` whose input and output are octave pairs.

    The parameters (``weight`` ``(C_out, C_in, k, k)``, optional ``bias``) are
    those of the plain convolution, so initialisers that match ``Conv2d`` and
    plain-conv checkpoints apply unchanged.

    ``forward`` takes a tensor (when ``alpha_in == 0``) or a pair
    ``(x_high, x_low)`` and always returns a pair ``(y_high, y_low)``,
    ``y_low`` being ``None`` when ``alpha_out == 0``; shapes as in
    :func:`octave_conv2d`.

    ``strided_downsample``: ``'conv'`` (default) or ``'avgpool'``, how a
    stride-2 layer with ``alpha_in == alpha_out == 0`` downsamples (see the
    module docstring); layers with a low group always pool.

    Deploy form (:meth:`switch_to_deploy`): ``weight`` and ``bias`` become one
    contiguous weight per convolution the layer runs, each output frequency
    computed once from its inputs. Stride 1: ``weight_high`` (H->H) and
    ``weight_low_to_high`` (L->H, upsampled and added in place), and
    ``weight_to_low`` over ``cat(pool(x_high), x_low)``; stride 2:
    ``weight_to_high`` over ``cat(pool(x_high), x_low)`` and ``weight_to_low``
    over that pooled once more; ``bias_high`` / ``bias_low``. A following batch
    norm folds in (:meth:`fuse_norm`). Eager, the low-to-high output is added
    in place and the high group pooled straight into the concatenation buffer;
    in a recorded graph the same function is plain ``Conv``, ``AveragePool``,
    ``Concat``, ``Resize`` and ``Add``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int,
                 alpha_in: float = 0.5,
                 alpha_out: float = 0.5,
                 stride: int = 1,
                 padding: int = 0,
                 dilation: int = 1,
                 groups: int = 1,
                 bias: bool = False,
                 strided_downsample: str = 'conv'):
        if strided_downsample not in STRIDED_DOWNSAMPLES:
            raise ValueError(f'strided_downsample must be one of {STRIDED_DOWNSAMPLES}, '
                             f'got {strided_downsample!r}')
        if groups != 1:
            raise ValueError(f'OctaveConv2d supports groups=1 only, got {groups}')
        if stride not in (1, 2):
            raise ValueError(f'OctaveConv2d supports stride 1 or 2, got {stride}')
        octave_split(in_channels, alpha_in)
        octave_split(out_channels, alpha_out)
        if kernel_size % 2 == 0 or padding != dilation * (kernel_size - 1) // 2:
            raise ValueError('OctaveConv2d needs an odd kernel and "same" padding '
                             '(dilation * (k - 1) / 2) so its high and low paths align; got '
                             f'kernel_size={kernel_size}, padding={padding}, dilation={dilation}')
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=padding, dilation=dilation, bias=bias)
        self.alpha_in = alpha_in
        self.alpha_out = alpha_out
        self.strided_downsample = strided_downsample

    @property
    def in_split(self) -> Tuple[int, int]:
        return octave_split(self.in_channels, self.alpha_in)

    @property
    def out_split(self) -> Tuple[int, int]:
        return octave_split(self.out_channels, self.alpha_out)

    @property
    def _plain(self) -> bool:
        return self.alpha_in == 0 and self.alpha_out == 0

    def forward(self, x: Union[Tensor, OctaveTensor]) -> OctaveTensor:
        x_high, x_low = (x, None) if isinstance(x, Tensor) else _as_pair(x)
        if self.deploy:
            _check_inputs(x_high, x_low, self.in_channels, self.alpha_in, self._high_weights()[0])
            return refuse_backward(self._forward_deploy(x_high, x_low), type(self).__name__)
        if self._plain:
            if self.stride[0] == 2 and self.strided_downsample == 'avgpool':
                _check_inputs(x_high, x_low, self.in_channels, 0.0, self.weight)
                return F.conv2d(downsample_by_two(x_high), self.weight, self.bias, 1,
                                self.padding, self.dilation), None
            return octave_conv2d(x_high, x_low, self.weight, 0.0, 0.0, self.bias,
                                 self.stride[0], self.padding[0], self.dilation[0])
        return octave_conv2d(x_high, x_low, self.weight, self.alpha_in, self.alpha_out,
                             self.bias, self.stride[0], self.padding[0], self.dilation[0])

    # deploy form ---------------------------------------------------------------

    #: buffers of the deploy form feeding the high / the low output
    _HIGH_WEIGHTS = ('weight_high', 'weight_low_to_high', 'weight_to_high')

    def _high_weights(self):
        return [getattr(self, n) for n in self._HIGH_WEIGHTS if getattr(self, n) is not None]

    def _build_deploy(self) -> None:
        weight, bias = self.weight.detach(), self.bias
        out_high, in_high = self.out_split[0], self.in_split[0]
        pooled_inputs = self.stride[0] == 2 and not (
            self._plain and self.strided_downsample == 'conv')
        split_columns = not pooled_inputs and self.in_split[1] > 0
        del self.weight, self.bias
        self.register_parameter('weight', None)
        self.register_parameter('bias', None)
        self._deploy_buffer('weight_high', weight[:out_high, :in_high] if split_columns else
                            None if pooled_inputs else weight[:out_high])
        self._deploy_buffer('weight_low_to_high',
                            weight[:out_high, in_high:] if split_columns else None)
        self._deploy_buffer('weight_to_high', weight[:out_high] if pooled_inputs else None)
        self._deploy_buffer('weight_to_low',
                            weight[out_high:] if self.out_split[1] else None)
        self._deploy_buffer('bias_high', None if bias is None else bias[:out_high])
        self._deploy_buffer('bias_low', None if bias is None or not self.out_split[1]
                            else bias[out_high:])

    @torch.no_grad()
    def fuse_norm(self, norm_high: nn.Module, norm_low: Optional[nn.Module]) -> None:
        """Fold eval-mode batch norms applied to ``y_high`` / ``y_low`` into the
        deploy form (the layer must be deployed); the norms are then identities."""
        if not self.deploy:
            raise RuntimeError('fuse_norm: call switch_to_deploy() first')
        for group, norm in (('high', norm_high), ('low', norm_low)):
            if norm is None:
                continue
            scale, shift = norm_affine(norm)
            names = self._HIGH_WEIGHTS if group == 'high' else ('weight_to_low',)
            for name in names:
                if getattr(self, name) is not None:
                    setattr(self, name, scale_rows(getattr(self, name), scale).contiguous())
            bias = getattr(self, 'bias_' + group)
            setattr(self, 'bias_' + group, shift if bias is None else bias * scale + shift)

    def _forward_deploy(self, x_high: Tensor, x_low: Optional[Tensor]) -> OctaveTensor:
        eager = not recording_graph()
        stride, padding, dilation = self.stride[0], self.padding[0], self.dilation[0]
        conv = dict(padding=padding, dilation=dilation)
        if self.weight_to_high is not None:  # pooled inputs, one conv per output group
            both = _pooled_cat(x_high, x_low, eager)
            y_high = F.conv2d(both, self.weight_to_high, self.bias_high, **conv)
            y_low = None if self.weight_to_low is None else F.conv2d(
                _pool(both, eager), self.weight_to_low, self.bias_low, **conv)
            return y_high, y_low
        y_high = F.conv2d(x_high, self.weight_high, self.bias_high, stride, **conv)
        if x_low is not None:
            from_low = F.conv2d(x_low, self.weight_low_to_high, None, **conv)
            y_high = add_upsampled_(y_high, from_low) if eager else _add_resized(y_high, from_low)
        y_low = None
        if self.weight_to_low is not None:
            y_low = F.conv2d(_pooled_cat(x_high, x_low, eager), self.weight_to_low,
                             self.bias_low, **conv)
        return y_high, y_low

    def extra_repr(self) -> str:
        extra = f', alpha_in={self.alpha_in}, alpha_out={self.alpha_out}'
        if self.strided_downsample != 'conv':
            extra += f', strided_downsample={self.strided_downsample!r}'
        if self.deploy:
            extra += ', deploy=True'
        return super().extra_repr() + extra
