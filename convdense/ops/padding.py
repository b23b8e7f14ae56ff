"""TensorFlow "SAME" padding for PyTorch convolutions and pools.

TF pads a stride-``s`` layer of effective kernel ``k`` on a side of length ``n`` by
``max((ceil(n / s) - 1) * s + k - n, 0)`` in all, the smaller half *before*; PyTorch
pads symmetrically. The two agree for stride 1 (odd kernels) and for odd sides, but
on an even side a stride-2 3x3 conv is padded 0 / 1 by TF and 1 / 1 by PyTorch: every
window sits one pixel further down / right. Weights trained in TF (e.g. tensorpack
releases) compute their own function only with TF's windows.
"""
from typing import List, Optional, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

#: padding of strided layers: PyTorch's symmetric one, or TF "SAME"
STRIDED_PADDINGS = ('symmetric', 'tf_same')


def tf_same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> Tuple[int, int]:
    """``(before, after)`` TF "SAME" padding of one side of length ``size``."""
    effective = dilation * (kernel - 1) + 1
    total = max((-(-size // stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def tf_same_pad_if_different(x: Tensor, kernel: int, stride: int, dilation: int,
                             padding: int) -> Optional[List[int]]:
    """``F.pad`` argument ``[left, right, top, bottom]`` giving the ``(N, C, H, W)``
    map ``x`` TF "SAME" padding, or ``None`` where that equals the symmetric
    ``padding`` on both sides (the layer then runs as it is)."""
    top_bottom = tf_same_pads(x.shape[-2], kernel, stride, dilation)
    left_right = tf_same_pads(x.shape[-1], kernel, stride, dilation)
    if top_bottom == (padding, padding) and left_right == (padding, padding):
        return None
    return [*left_right, *top_bottom]


def conv2d_tf_same(x: Tensor, conv, pads: List[int]) -> Tensor:
    """``conv`` (an ``nn.Conv2d``) on ``x`` padded by ``pads`` instead of its own padding."""
    return F.conv2d(F.pad(x, pads), conv.weight, conv.bias, conv.stride, 0, conv.dilation,
                    conv.groups)


class TFSameConv2d(nn.Conv2d):
    """``nn.Conv2d`` padded as TF "SAME" wherever that differs from its own
    symmetric ``padding`` (odd sides and stride 1 run the layer as it is).

    Same parameters and state-dict keys as ``nn.Conv2d``; ``(N, C_in, H, W) ->
    (N, C_out, ceil(H / stride), ceil(W / stride))``.
    """

    def forward(self, x: Tensor) -> Tensor:
        pads = tf_same_pad_if_different(x, self.kernel_size[0], self.stride[0],
                                        self.dilation[0], self.padding[0])
        return super().forward(x) if pads is None else conv2d_tf_same(x, self, pads)


class TFSameMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` padded (with ``-inf``) as TF "SAME" wherever that differs
    from its own symmetric ``padding``; ``(N, C, H, W) -> (N, C, ceil(H / stride),
    ceil(W / stride))``."""

    def forward(self, x: Tensor) -> Tensor:
        pads = tf_same_pad_if_different(x, self.kernel_size, self.stride, self.dilation,
                                        self.padding)
        if pads is None:
            return super().forward(x)
        return F.max_pool2d(F.pad(x, pads, value=float('-inf')), self.kernel_size, self.stride,
                            0, self.dilation, ceil_mode=False)
