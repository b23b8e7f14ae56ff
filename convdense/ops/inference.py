"""Graph-recording test and the kernel choice of the deployed convolutions.

:func:`recording_graph` says whether a graph is being recorded (tracing, ONNX
export, ``torch.export`` / ``torch.compile``). A deployed layer
(:mod:`convdense.ops.deploy`) computes the same function either way; it only
spells it with standard ops (``avg_pool2d``, ``interpolate``, ``F.conv2d``) in a
recorded graph and with the faster eager kernels below otherwise. PAC's
fixed-size export form uses the same test.

Kernel choice (:func:`onednn_conv2d`). With batch 1 on one thread PyTorch
sends every ``3 x 3`` and every strided conv of ResNet-50 to oneDNN (their
inputs exceed its 20480-element threshold) and every stride-1 ``1 x 1`` conv
to a plain GEMM. The pieces of an octave or HetConv layer are smaller, so
PyTorch's size heuristic alone would put some of them on the im2col/GEMM path,
1.5-2x slower there on this project's benchmark machine. Deployed layers run
their pieces on the library that runs the ResNet-50 conv the layer replaces
(oneDNN for ``3 x 3`` and strided convs, GEMM for stride-1 ``1 x 1`` convs), so
the backbone comparison in ``benchmarks/bench_backbones.py`` compares
architectures, not kernel-selection thresholds. Under ``torch.autocast`` the
direct oneDNN call would bypass the autocast dtype, so :func:`onednn_conv2d`
then goes through ``F.conv2d``.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def recording_graph() -> bool:
    """Whether a graph is being recorded: ``torch.jit.trace``, either ONNX
    exporter, or ``torch.export`` / ``torch.compile`` (which both set
    ``torch.compiler.is_compiling()``)."""
    return (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling())


def onednn_conv2d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: int = 1,
                  padding: int = 0, dilation: int = 1, groups: int = 1) -> Tensor:
    """``F.conv2d`` on oneDNN for a contiguous float32 CPU input outside autocast
    (same numbers up to float rounding); any other input, and any input under
    ``torch.autocast``, goes to ``F.conv2d``."""
    if (x.device.type == 'cpu' and x.dtype == torch.float32 and weight.dtype == torch.float32
            and not torch.is_autocast_enabled('cpu')
            and x.is_contiguous() and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled):
        return torch.mkldnn_convolution(x, weight, bias, (padding, padding), (stride, stride),
                                        (dilation, dilation), groups)
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
