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
from torch import Tensor

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
