"""The contract every fuzzed call must keep, and the shared hypothesis settings.

A call either returns tensors of the expected shapes, finite wherever its inputs
were finite, or raises ``ValueError``/``TypeError`` with a message. Anything
else (another exception type, a wrong shape, NaN/inf out of finite input, a
hang past the deadline-free budget) fails the test with the drawn case.
Non-finite inputs may propagate to the output: like ``torch.nn``, the ops do
not scan their inputs (that costs a device sync per call).
"""
import math

import torch
from hypothesis import HealthCheck, settings

#: Derandomized (a fixed example sequence, no database), bounded, no deadline:
#: each fuzz test costs a few seconds on two CPU cores and never flakes.
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def conv_out(size, kernel, stride=1, padding=0, dilation=1):
    """``nn.Conv2d``'s output side."""
    return math.floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1


def transposed_out(size, kernel, stride=1, padding=0, output_padding=0, dilation=1):
    """``nn.ConvTranspose2d``'s output side."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def leaves(out):
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for t in out if t is not None]


def call_or_clear_error(call, expected_shapes, finite_input, must_succeed=False):
    """Run ``call()`` under the contract.

    Args:
        expected_shapes: the shapes of the returned tensors (in order), or None
            when the case is invalid and must raise.
        finite_input: all inputs were finite, so the outputs must be.
        must_succeed: the case is valid: raising is a failure too.

    Returns:
        The outputs, or None when a ValueError/TypeError was raised.
    """
    try:
        out = call()
    except (ValueError, TypeError) as exc:
        if must_succeed:
            raise AssertionError(f'a valid case raised {type(exc).__name__}: {exc}') from exc
        message = str(exc)
        assert message and '\n' not in message.strip(), f'unclear error: {message!r}'
        return None
    if expected_shapes is None:
        raise AssertionError(f'an invalid case returned {[tuple(t.shape) for t in leaves(out)]} '
                             'instead of raising ValueError/TypeError')
    got = [tuple(t.shape) for t in leaves(out)]
    assert got == [tuple(s) for s in expected_shapes], f'shapes {got}, expected {expected_shapes}'
    if finite_input:
        for tensor in leaves(out):
            assert torch.isfinite(tensor).all(), 'non-finite output from finite input'
    return out


def poison(tensor, kind):
    """``tensor`` with one NaN or inf written in (``kind`` 'nan'/'inf'/None)."""
    if kind is None or tensor.numel() == 0:
        return tensor
    tensor = tensor.clone()
    tensor.view(-1)[tensor.numel() // 2] = float('nan') if kind == 'nan' else float('inf')
    return tensor
