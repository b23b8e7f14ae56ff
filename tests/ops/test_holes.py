"""Interpolation over unknown samples (masked, renormalised bicubic/bilinear) against a numpy reference."""
import math

import numpy as np
import pytest
import torch

from convdense.ops.holes import MIN_KNOWN_WEIGHT, masked_interpolate


def _taps(size_in, size_out, mode):
    """torch's 1-D interpolation taps (align_corners=False): per output, [(index, weight)]."""
    scale, a = size_in / size_out, -0.75
    taps = []
    for out in range(size_out):
        real = scale * (out + 0.5) - 0.5
        if mode == 'bilinear':
            real = max(real, 0.0)
            i0 = math.floor(real)
            t = real - i0
            pairs = [(i0, 1 - t), (i0 + 1, t)]
        else:  # Keys' cubic convolution, A = -0.75, taps i0-1 .. i0+2
            i0 = math.floor(real)
            t = real - i0

            def near(x):
                return ((a + 2) * x - (a + 3)) * x * x + 1

            def far(x):
                return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
            pairs = [(i0 - 1, far(t + 1)), (i0, near(t)), (i0 + 1, near(1 - t)), (i0 + 2, far(2 - t))]
        taps.append([(min(max(i, 0), size_in - 1), w) for i, w in pairs if w != 0])
    return taps


def _reference(low, mask, size, mode):
    """Per output pixel: the weighted sum over known taps / their weight; the nearest-known
    sample of the pixel's low-res cell when they carry < MIN_KNOWN_WEIGHT."""
    from scipy import ndimage
    h, w = low.shape
    rows, cols = _taps(h, size[0], mode), _taps(w, size[1], mode)
    _, (ny, nx) = ndimage.distance_transform_edt(~mask, return_indices=True)
    out = np.zeros(size)
    for y in range(size[0]):
        for x in range(size[1]):
            num = den = 0.0
            for iy, wy in rows[y]:
                for ix, wx in cols[x]:
                    if mask[iy, ix]:
                        num += wy * wx * low[iy, ix]
                        den += wy * wx
            if den >= MIN_KNOWN_WEIGHT:
                out[y, x] = num / den
            else:
                cy, cx = y * h // size[0], x * w // size[1]
                out[y, x] = low[ny[cy, cx], nx[cy, cx]]
    return out


@pytest.mark.parametrize('mode', ['bicubic', 'bilinear'])
def test_masked_interpolation_matches_the_reference_and_ignores_hole_values(mode):
    rng = np.random.default_rng(0)
    low = rng.random((5, 6)).astype(np.float32)
    mask = rng.random((5, 6)) > 0.35
    mask[3:, :3] = False  # a hole wider than the support: nearest-known fallback
    low_t, mask_t = torch.from_numpy(low)[None, None], torch.from_numpy(mask)[None, None]
    out, known = masked_interpolate(low_t, mask_t, (20, 24), mode)
    expected = _reference(low.astype(np.float64), mask, (20, 24), mode)
    np.testing.assert_allclose(out[0, 0].numpy(), expected, rtol=1e-5, atol=1e-5)
    assert not known.all() and known.any()
    for hole_value in (0.0, 1e4, float('inf')):
        other = torch.where(mask_t, low_t, torch.tensor(hole_value))
        assert torch.equal(masked_interpolate(other, mask_t, (20, 24), mode)[0], out)


@pytest.mark.parametrize('mode', ['bicubic', 'bilinear'])
def test_all_known_or_fully_supported_pixels_are_plain_interpolation(mode):
    torch.manual_seed(0)
    low = torch.rand(2, 2, 6, 5)
    ones = torch.ones(2, 1, 6, 5, dtype=torch.bool)
    plain = torch.nn.functional.interpolate(low, size=(24, 20), mode=mode, align_corners=False)
    assert torch.equal(masked_interpolate(low, ones, (24, 20), mode)[0], plain)
    mask = ones.clone()
    mask[0, 0, 0, 0] = False  # far from the bottom-right corner's support
    out = masked_interpolate(low, mask, (24, 20), mode)[0]
    assert torch.equal(out[0, :, 12:, 10:], plain[0, :, 12:, 10:]) and torch.equal(out[1], plain[1])
