"""Helpers for the inference-only fast paths of the custom convolutions.

A layer may take a faster route than its exact (reference) path only when
:func:`fast_inference` holds: no gradient is recorded and no graph is being
traced. Training, gradient checks and FLOP counters (which trace) therefore
always see the exact path, whose ops and multiply-adds are the paper's; the
tests compare both paths on the same inputs.

Kernel choice (:func:`onednn_conv2d`). With batch 1 on one thread PyTorch
sends every ``3 x 3`` and every strided conv of ResNet-50 to oneDNN (their
inputs exceed its 20480-element threshold) and every stride-1 ``1 x 1`` conv
to a plain GEMM. The pieces of an octave or HetConv layer are smaller, so
PyTorch's size heuristic alone would put some of them on the im2col/GEMM path,
1.5-2x slower there on this project's benchmark machine. The fast paths run a
layer's pieces on the library that runs the ResNet-50 conv the layer replaces
(oneDNN for ``3 x 3`` and strided convs, GEMM for stride-1 ``1 x 1`` convs), so
the backbone comparison in ``benchmarks/bench_backbones.py`` compares
architectures, not kernel-selection thresholds.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def fast_inference() -> bool:
    """Whether an inference-only fast path may run: no gradient is recorded
    and no graph is being traced."""
    return not torch.is_grad_enabled() and not torch.jit.is_tracing()


def onednn_conv2d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: int = 1,
                  padding: int = 0, dilation: int = 1, groups: int = 1) -> Tensor:
    """``F.conv2d`` on oneDNN for a contiguous float32 CPU input (same numbers
    up to float rounding); any other input goes to ``F.conv2d``."""
    if (x.device.type == 'cpu' and x.dtype == torch.float32 and weight.dtype == torch.float32
            and x.is_contiguous() and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled):
        return torch.mkldnn_convolution(x, weight, bias, (padding, padding), (stride, stride),
                                        (dilation, dilation), groups)
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
