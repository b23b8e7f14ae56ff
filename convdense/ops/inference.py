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
architectures, not kernel-selection thresholds. Under ``torch.autocast`` the
direct oneDNN call would bypass the autocast dtype, so :func:`onednn_conv2d`
then goes through ``F.conv2d``: validation computes in the precision training
does.

Weights derived from parameters (an octave layer's contiguous blocks, HetConv's
dense pointwise weight, ACNet's folded kernel) are kept between inference
forwards by one mechanism, :class:`DerivedWeightCache`.
"""
import weakref
from typing import Callable, Optional, Sequence, Tuple, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

T = TypeVar('T')


def recording_graph() -> bool:
    """Whether a graph is being recorded: ``torch.jit.trace``, either ONNX
    exporter, or ``torch.export`` / ``torch.compile`` (which both set
    ``torch.compiler.is_compiling()``)."""
    return (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling())


def fast_inference() -> bool:
    """Whether an inference-only fast path may run: no gradient is recorded
    and no graph is being recorded (an exported graph must hold the exact path)."""
    return not torch.is_grad_enabled() and not recording_graph()


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


def _fingerprint(tensor: Tensor) -> Optional[tuple]:
    """What identifies the current value of ``tensor`` without reading it: the
    object (weakly), its storage, layout, dtype, device and version counter.
    ``None`` for inference tensors, which have no version counter."""
    if tensor.is_inference():
        return None
    return (weakref.ref(tensor), tensor.data_ptr(), tensor.dtype, tensor.device,
            tuple(tensor.shape), tensor.stride(), tensor._version)


def _same(old: tuple, new: tuple) -> bool:
    # Weak references compare by identity of the referent here (``==`` on two
    # live refs would compare the tensors element-wise); a dead one never matches.
    return len(old) == len(new) and all(
        a[0]() is b[0]() and a[0]() is not None and a[1:] == b[1:] for a, b in zip(old, new))


class DerivedWeightCache:
    """One value derived from some parameters, kept between inference forwards.

    ``get(sources, build)`` returns ``build()``, reusing the last result while
    :func:`fast_inference` holds and every tensor in ``sources`` is the same
    object with the same storage, dtype, device, shape and version counter as
    when it was built. Hence the cache is rebuilt after an optimizer step or
    ``load_state_dict`` (both bump the version), after ``module.to(...)`` (new
    storage/dtype/device) and when a parameter is replaced, even by a tensor at
    the same address (the old object is gone). Inference tensors (a model built
    under ``torch.inference_mode()``) have no version counter: for them nothing
    is cached and ``build()`` runs every time. With autograd recording or a
    graph being traced ``build()`` always runs and the cache is dropped, so
    training and FLOP counters see the ops that build the value.

    Not saved by ``state_dict``, dropped by ``pickle`` and ``copy.deepcopy``.
    """

    def __init__(self):
        self._key: Optional[Tuple[tuple, ...]] = None
        self._value = None

    def clear(self) -> None:
        self._key = self._value = None

    def get(self, sources: Sequence[Tensor], build: Callable[[], T]) -> T:
        if not fast_inference():
            self.clear()
            return build()
        key = tuple(_fingerprint(t) for t in sources)
        if any(k is None for k in key):
            self.clear()
            return build()
        if self._key is None or not _same(self._key, key):
            self._key, self._value = key, build()
        return self._value

    def __getstate__(self):
        return {'_key': None, '_value': None}

    def __deepcopy__(self, memo):
        return DerivedWeightCache()

    def __repr__(self) -> str:
        return f'DerivedWeightCache(filled={self._key is not None})'
