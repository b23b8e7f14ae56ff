"""Fuzzed inputs into every public op module: PacConv2d, PacConvTranspose2d,
PacPool2d, OctaveConv2d, HetConv2d, AdaptiveConv2d (see fuzz_contract.py).

Each test draws the layer's geometry (channels, kernel, stride, padding,
dilation), the input's batch and size (empty ones included), dtype, a guide
of some width, sometimes a mismatched dtype or guide, and NaN/inf; the
expected output shape comes from ``nn.Conv2d``'s formulas, not from the op.
"""
import copy

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from convdense.ops.adaptive_conv import AdaptiveConv2d
from convdense.ops.hetconv import HetConv2d
from convdense.ops.octconv import OctaveConv2d, octave_split
from convdense.ops.pac import PacConv2d, PacConvTranspose2d, PacPool2d

from .fuzz_contract import FUZZ, call_or_clear_error, conv_out, poison, transposed_out

DTYPES = st.sampled_from([torch.float32, torch.float64])
POISON = st.sampled_from([None, None, 'nan', 'inf'])
OTHER_DTYPE = {torch.float32: torch.float64, torch.float64: torch.float32}


def _draw_input(draw, channels, dtype, max_side=9):
    batch = draw(st.integers(0, 2))
    height, width = draw(st.integers(0, max_side)), draw(st.integers(0, max_side))
    x = torch.randn(batch, channels, height, width, dtype=dtype)
    if draw(st.integers(0, 9)) == 0:  # occasionally the wrong dtype
        x = x.to(OTHER_DTYPE[dtype])
    return x


def _backward_is_finite(out, inputs):
    out.double().sum().backward()
    for tensor in inputs:
        if tensor.grad is not None:
            assert torch.isfinite(tensor.grad).all(), 'non-finite gradient from finite input'


KERNEL_TYPES = st.sampled_from(['gaussian', 'inv_1_1', 'inv_0.5_2_fixed'])


def _draw_pac_kernel_args(draw, in_channels):
    channel_wise = draw(st.booleans())
    guide_channels = in_channels if channel_wise else draw(st.integers(1, 4))
    return dict(kernel_type=draw(KERNEL_TYPES), normalize_kernel=draw(st.booleans()),
                channel_wise=channel_wise), guide_channels


def _draw_pac_layer(draw):
    """Channels, geometry, kernel arguments and dtype of a PAC conv layer."""
    shared = draw(st.booleans())
    c_in = draw(st.integers(1, 4))
    c_out = c_in if shared else draw(st.integers(1, 4))
    geometry = dict(kernel_size=draw(st.integers(1, 5)), stride=draw(st.integers(1, 3)),
                    padding=draw(st.integers(0, 3)), dilation=draw(st.integers(1, 2)))
    kernel_args, guide_c = _draw_pac_kernel_args(draw, c_in)
    return c_in, c_out, dict(geometry, shared_filters=shared, **kernel_args), guide_c, draw(DTYPES)


def _run_pac_layer(layer, x, guide, expected, valid, finite):
    """The contract on ``layer(x, guide)``, then finite gradients for a finite valid case."""
    x.requires_grad_(valid)
    out = call_or_clear_error(lambda: layer(x, guide), expected if valid else None, finite,
                              must_succeed=valid)
    if out is not None and finite:
        _backward_is_finite(out, [x, layer.weight])


@FUZZ
@given(data=st.data())
def test_fuzz_pac_conv2d(data):
    draw = data.draw
    c_in, c_out, args, guide_c, dtype = _draw_pac_layer(draw)
    layer = PacConv2d(c_in, c_out, **args).to(dtype)
    x = _draw_input(draw, c_in, dtype)
    batch, _, h, w = x.shape
    guide = torch.randn(batch, guide_c, h, w, dtype=dtype)
    bad, where = draw(POISON), draw(st.sampled_from(['input', 'guide']))
    x, guide = (poison(x, bad), guide) if where == 'input' else (x, poison(guide, bad))
    geometry = [args[key] for key in ('kernel_size', 'stride', 'padding', 'dilation')]
    ho, wo = conv_out(h, *geometry), conv_out(w, *geometry)
    valid = h > 0 and w > 0 and ho > 0 and wo > 0 and x.dtype == dtype
    _run_pac_layer(layer, x, guide, [(batch, c_out, ho, wo)], valid, bad is None)


@FUZZ
@given(data=st.data())
def test_fuzz_pac_conv_transpose2d(data):
    draw = data.draw
    c_in, c_out, args, guide_c, dtype = _draw_pac_layer(draw)
    args['output_padding'] = output_padding = draw(st.integers(0, 2))
    k, stride, padding, dilation = [args[key] for key in ('kernel_size', 'stride', 'padding',
                                                          'dilation')]
    make = lambda: PacConvTranspose2d(c_in, c_out, **args).to(dtype)  # noqa: E731
    if output_padding >= max(stride, dilation):
        call_or_clear_error(make, None, True)
        return
    layer = make()
    x = _draw_input(draw, c_in, dtype, max_side=6)
    batch, _, h, w = x.shape
    ho, wo = (transposed_out(h, k, stride, padding, output_padding, dilation),
              transposed_out(w, k, stride, padding, output_padding, dilation))
    guide = torch.randn(batch, guide_c, max(ho, 0), max(wo, 0), dtype=dtype)
    if draw(st.integers(0, 9)) == 0:  # a guide of the wrong size
        guide = torch.randn(batch, guide_c, max(ho, 0) + 1, max(wo, 0), dtype=dtype)
    bad = draw(POISON)
    x = poison(x, bad)
    valid = (h > 0 and w > 0 and ho > 0 and wo > 0 and x.dtype == dtype
             and tuple(guide.shape[2:]) == (ho, wo))
    _run_pac_layer(layer, x, guide, [(batch, c_out, ho, wo)], valid, bad is None)


@FUZZ
@given(data=st.data())
def test_fuzz_pac_pool2d(data):
    draw = data.draw
    c = draw(st.integers(1, 4))
    k, stride, dilation, padding = (draw(st.integers(1, 5)), draw(st.integers(1, 3)),
                                    draw(st.integers(1, 2)), draw(st.integers(0, 3)))
    kernel_args, guide_c = _draw_pac_kernel_args(draw, c)
    dtype = draw(DTYPES)
    layer = PacPool2d(k, stride, padding, dilation, **kernel_args)
    x = _draw_input(draw, c, dtype)
    batch, _, h, w = x.shape
    guide = torch.randn(batch, guide_c, h, w, dtype=dtype)
    bad = draw(POISON)
    guide = poison(guide, bad)
    ho, wo = conv_out(h, k, stride, padding, dilation), conv_out(w, k, stride, padding, dilation)
    valid = h > 0 and w > 0 and ho > 0 and wo > 0 and x.dtype == dtype
    call_or_clear_error(lambda: layer(x, guide), [(batch, c, ho, wo)] if valid else None,
                        bad is None, must_succeed=valid)


ALPHAS = st.sampled_from([0.0, 0.25, 0.5, 0.75])


@FUZZ
@given(data=st.data())
def test_fuzz_octave_conv2d(data):
    draw = data.draw
    c_in, c_out = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    alpha_in, alpha_out = draw(ALPHAS), draw(ALPHAS)
    k, stride, dilation = draw(st.sampled_from([1, 3, 5])), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    same = dilation * (k - 1) // 2
    padding = same if draw(st.integers(0, 3)) else draw(st.integers(0, 3))
    dtype = draw(DTYPES)
    make = lambda: OctaveConv2d(c_in, c_out, k, alpha_in, alpha_out, stride, padding,  # noqa: E731
                                dilation).to(dtype)
    if stride not in (1, 2) or padding != same:
        call_or_clear_error(make, None, True)
        return
    layer = make()
    (in_high, in_low), (out_high, out_low) = octave_split(c_in, alpha_in), octave_split(c_out, alpha_out)
    x = _draw_input(draw, c_in, dtype)
    batch, _, h, w = x.shape
    low_size = ((h + 1) // 2, (w + 1) // 2)
    x_high = x[:, :in_high]
    x_low = torch.randn(batch, in_low, *low_size, dtype=x.dtype) if in_low else None
    bad = draw(POISON)
    x_high = poison(x_high, bad)
    inputs = x_high if x_low is None else (x_high, x_low)
    ho, wo = -(-h // stride), -(-w // stride)
    expected = [(batch, out_high, ho, wo)]
    if out_low:
        expected.append((batch, out_low, (ho + 1) // 2, (wo + 1) // 2))
    valid = h > 0 and w > 0 and x.dtype == dtype
    for run in (layer, copy.deepcopy(layer).switch_to_deploy()):  # exact, deployed
        call_or_clear_error(lambda: run(inputs), expected if valid else None, bad is None,
                            must_succeed=valid)


def _run_on_both_paths(layer, x, bad, dtype, out_channels, geometry):
    """Poison ``x`` with ``bad``, then the contract on the exact (grad) path and on
    a deployed copy; ``geometry`` = (k, stride, padding, dilation).
    Returns both outputs (None where an error was raised)."""
    x = poison(x, bad)
    batch, _, h, w = x.shape
    expected = [(batch, out_channels, conv_out(h, *geometry), conv_out(w, *geometry))]
    valid = h > 0 and w > 0 and x.dtype == dtype
    outs = []
    for run in (layer, copy.deepcopy(layer).switch_to_deploy()):
        outs.append(call_or_clear_error(lambda: run(x), expected if valid else None,
                                        bad is None, must_succeed=valid))
    return outs


@FUZZ
@given(data=st.data())
def test_fuzz_hetconv2d(data):
    draw = data.draw
    part = draw(st.sampled_from([1, 2, 4]))
    c_in, c_out = part * draw(st.integers(1, 2)), part * draw(st.integers(1, 2))
    if draw(st.integers(0, 9)) == 0:
        c_in += 1  # not divisible by P
    k, stride, dilation = draw(st.sampled_from([1, 3, 5])), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    dtype = draw(DTYPES)
    make = lambda: HetConv2d(c_in, c_out, k, part, stride, dilation).to(dtype)  # noqa: E731
    if c_in % part:
        call_or_clear_error(make, None, True)
        return
    layer = make()
    x = _draw_input(draw, c_in, dtype)
    exact, inferred = _run_on_both_paths(layer, x, draw(POISON), dtype, c_out,
                                         (k, stride, dilation * (k - 1) // 2, dilation))
    if exact is not None and inferred is not None and torch.isfinite(exact).all():
        torch.testing.assert_close(inferred, exact.detach(), rtol=1e-4, atol=1e-5)


@FUZZ
@given(data=st.data())
def test_fuzz_adaptive_conv2d(data):
    draw = data.draw
    c_in, c_out = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    k, stride, dilation = draw(st.sampled_from([1, 3, 5])), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    same = dilation * (k - 1) // 2
    padding = same if draw(st.integers(0, 3)) else draw(st.integers(0, 3))
    mode = draw(st.sampled_from(['dataset', 'pixel']))
    dtype = draw(DTYPES)
    make = lambda: AdaptiveConv2d(c_in, c_out, k, stride, padding, dilation, mode).to(dtype)  # noqa: E731
    if padding != same:
        call_or_clear_error(make, None, True)
        return
    layer = make()
    x = _draw_input(draw, c_in, dtype)
    _run_on_both_paths(layer, x, draw(POISON), dtype, c_out, (k, stride, padding, dilation))


@pytest.mark.parametrize('make', [
    lambda: PacConv2d(2, 2, 3, padding=1), lambda: PacPool2d(3, padding=1),
    lambda: HetConv2d(4, 4, 3, part=2), lambda: AdaptiveConv2d(2, 2, 3, padding=1),
    lambda: OctaveConv2d(4, 4, 3, padding=1)])
@pytest.mark.parametrize('bad_input', ['3d', 'int', 'channels', 'not a tensor'])
def test_malformed_inputs_are_clear_errors(make, bad_input):
    layer = make()
    channels = 2 if isinstance(layer, (PacConv2d, PacPool2d, AdaptiveConv2d)) else 4
    x = {'3d': torch.randn(channels, 5, 5), 'int': torch.ones(1, channels, 5, 5, dtype=torch.long),
         'channels': torch.randn(1, channels + 1, 5, 5), 'not a tensor': [[1.0]]}[bad_input]
    if isinstance(layer, (PacConv2d, PacPool2d)):
        call = lambda: layer(x, torch.randn(1, 3, 5, 5))  # noqa: E731
    elif isinstance(layer, OctaveConv2d) and torch.is_tensor(x) and x.dim() == 4:
        call = lambda: layer((x[:, :2], x[:, 2:, ::2, ::2]))  # noqa: E731
    else:
        call = lambda: layer(x)  # noqa: E731
    if isinstance(layer, PacPool2d) and bad_input == 'channels':
        pytest.skip('pooling takes any number of channels')
    call_or_clear_error(call, None, True)
