"""Input checks shared by the convolution modules: what ``F.conv2d`` would
reject with a ``RuntimeError`` deep in a kernel (or accept and misread, like a
3-D tensor taken as one unbatched image) becomes a one-line ``ValueError`` or
``TypeError`` naming the argument."""
from typing import Optional

import torch
from torch import Tensor


def check_feature_map(x, name: str = 'input', channels: Optional[int] = None,
                      like: Optional[Tensor] = None) -> Tensor:
    """Return ``x`` if it is a floating ``(B, C, H, W)`` tensor with ``H, W >= 1``
    (``B = 0`` is fine), ``C == channels`` when given, and the dtype of ``like``
    (a parameter) unless autocast is on for its device; raise otherwise."""
    if not torch.is_tensor(x) or x.dim() != 4:
        got = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f'{name}: expected a 4-D tensor (B, C, H, W), got {got}')
    if not x.is_floating_point():
        raise TypeError(f'{name}: expected a floating-point tensor, got {x.dtype}')
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f'{name}: empty spatial size {tuple(x.shape)}')
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f'{name} has {x.shape[1]} channels, expected {channels} '
                         f'(shape {tuple(x.shape)})')
    if (like is not None and x.dtype != like.dtype
            and not torch.is_autocast_enabled(x.device.type)):
        raise TypeError(f'{name}: dtype {x.dtype} differs from the parameters\' {like.dtype} '
                        '(convert the module, or run under torch.autocast)')
    return x
