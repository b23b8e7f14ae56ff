"""Whether a graph is being recorded.

A deployed layer (:mod:`convdense.ops.deploy`) computes the same function either
way; it only spells it with standard ops (``avg_pool2d``, ``interpolate``) in a
recorded graph and with faster eager-only arrangements (in-place adds, writes
into preallocated buffers) otherwise. PAC's fixed-size export form uses the same
test.
"""
import torch


def recording_graph() -> bool:
    """Whether a graph is being recorded: ``torch.jit.trace``, either ONNX
    exporter, or ``torch.export`` / ``torch.compile`` (which both set
    ``torch.compiler.is_compiling()``)."""
    return (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling())
