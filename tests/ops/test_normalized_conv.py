"""Normalised convolution over a validity mask and nearest-known filling, against slow references."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from convdense.ops.holes import fill_nearest
from convdense.ops.normalized_conv import conv_stack_over_holes, masked_conv_stack, normalized_conv2d


def _slow_normalized_conv(x, mask, weight, bias, padding):
    """Loop over output pixels: sum over the window's known pixels, times in-image / known count."""
    batch, _, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    out = torch.zeros(batch, out_channels, height + 2 * padding - kh + 1, width + 2 * padding - kw + 1,
                      dtype=torch.float64)
    known_out = torch.zeros(batch, 1, *out.shape[2:], dtype=torch.bool)
    for b in range(batch):
        for y in range(out.shape[2]):
            for x0 in range(out.shape[3]):
                total, n_in, n_known = torch.zeros(out_channels, dtype=torch.float64), 0, 0
                for ty in range(kh):
                    for tx in range(kw):
                        iy, ix = y + ty - padding, x0 + tx - padding
                        if not (0 <= iy < height and 0 <= ix < width):
                            continue
                        n_in += 1
                        if mask[b, 0, iy, ix]:
                            n_known += 1
                            total += weight[:, :, ty, tx].double() @ x[b, :, iy, ix].double()
                scale = n_in / n_known if n_known else 1.0
                out[b, :, y, x0] = total * scale + bias.double()
                known_out[b, 0, y, x0] = n_known > 0
    return out, known_out


def test_normalized_conv_matches_the_slow_reference_and_ignores_hole_values():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 6)
    mask = torch.rand(2, 1, 7, 6) > 0.5
    mask[1, :, :4] = False  # a hole wider than the window
    weight, bias = torch.randn(4, 3, 3, 3), torch.randn(4)
    out, known = normalized_conv2d(x, mask, weight, bias, padding=1)
    expected, expected_known = _slow_normalized_conv(x, mask, weight, bias, 1)
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(known, expected_known) and not known.all()
    for hole_value in (0.0, 1e4, float('nan')):
        other = torch.where(mask, x, torch.full_like(x, hole_value))
        assert torch.equal(normalized_conv2d(other, mask, weight, bias, padding=1)[0], out)


def test_all_known_mask_is_the_plain_conv_bit_for_bit():
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 5, 5, padding=2)
    x = torch.randn(3, 2, 9, 8)
    ones = torch.ones(3, 1, 9, 8, dtype=torch.bool)
    out, known = normalized_conv2d(x, ones, conv.weight, conv.bias, padding=2)
    assert torch.equal(out, conv(x)) and known.all()
    stack = nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.Conv2d(4, 4, 5, padding=2))
    single = x[:, :1]
    assert torch.equal(conv_stack_over_holes(stack, single, ones), stack(single))
    # a mixed batch: the all-known sample is still exactly the plain stack
    mask = ones.clone()
    mask[1, 0, 2:5, 2:5] = False
    mixed = conv_stack_over_holes(stack, fill_nearest(single, mask), mask)
    assert torch.equal(mixed[0], stack(single)[0]) and not torch.equal(mixed[1], stack(single)[1])


def test_masked_stack_carries_the_mask_and_falls_back_in_wide_holes():
    torch.manual_seed(2)
    stack = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 3, padding=1))
    x = torch.randn(1, 1, 12, 12)
    mask = torch.ones(1, 1, 12, 12, dtype=torch.bool)
    mask[..., :, :7] = False  # columns 0-6 unknown: two 3x3 convs reach 2 columns into it
    _, known = masked_conv_stack(stack, x, mask)
    assert known[0, 0, 0].tolist() == [False] * 5 + [True] * 7
    filled = fill_nearest(x, mask)
    out = conv_stack_over_holes(stack, filled, mask)
    # beyond the reach of known pixels: the plain stack on the nearest-known values
    torch.testing.assert_close(out[..., :5], stack(filled)[..., :5])
    with pytest.raises(ValueError, match='mask: expected shape'):
        normalized_conv2d(x, mask[..., :5], stack[0].weight, None, padding=1)


def test_fill_nearest_takes_a_nearest_known_value_and_keeps_gradients():
    torch.manual_seed(3)
    x = torch.randn(2, 2, 6, 7, requires_grad=True)
    mask = torch.rand(2, 1, 6, 7) > 0.6
    filled = fill_nearest(x, mask)
    for b in range(2):
        known = np.argwhere(mask[b, 0].numpy())
        for y in range(6):
            for x0 in range(7):
                distances = ((known - (y, x0)) ** 2).sum(1)
                nearest = {tuple(p) for p in known[distances == distances.min()]}
                value = filled[b, :, y, x0].detach()
                assert any(torch.equal(value, x[b, :, py, px].detach()) for py, px in nearest)
    filled.sum().backward()
    assert (x.grad[0][:, ~mask[0, 0]] == 0).all()  # a hole's value never reaches the output
    with pytest.raises(ValueError, match='no valid pixel'):
        fill_nearest(x, torch.zeros_like(mask))


def test_normalized_conv_gradients():
    torch.manual_seed(4)
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(1, 1, 5, 5) > 0.4
    assert torch.autograd.gradcheck(lambda *a: normalized_conv2d(*a[:1], mask, *a[1:], padding=1)[0],
                                    (x, weight, bias))
