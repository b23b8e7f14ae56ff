"""Sensor-like holes in the low-resolution input, for training and for sensor-like test data.

Real depth sensors leave pixels unknown (Kinect-class frames: about 10-50 %), and
not at random: structured-light and stereo sensors lose the band beside a depth
edge on its far side (the projector's or the second camera's shadow), anything
beyond their range (or too close), and dark, shiny or transparent patches. The
ground truth stays complete; only the low-res input loses samples, so a model
learns to upsample *through* the holes.

:func:`sensor_holes` picks, among the known low-res samples, a budget of

* **edge dropouts**: samples closest to a depth edge on its far side (larger depth,
  smaller disparity), i.e. the edge band widened away from the near surface;
* **out-of-range** samples: the farthest known ones (or, one time in four, the nearest);
* **blobs**: the rest, where a smooth random field is highest (random blob shapes);

so that the unknown fraction after the call is the one asked for (holes already
there count towards it).
"""
import zlib

import numpy as np

from ..registry import TRANSFORMS

MAX_FRACTION = 0.5


def _check_fraction(fraction):
    pair = (fraction, fraction) if np.isscalar(fraction) else tuple(fraction)
    if len(pair) != 2:
        raise ValueError(f'fraction must be a float or a (min, max) pair, got {fraction!r}')
    low, high = pair
    if not 0 <= low <= high <= MAX_FRACTION:
        raise ValueError(f'fraction must be in [0, {MAX_FRACTION}] (or a (min, max) range inside it), '
                         f'got {fraction!r}')
    return float(low), float(high)


def far_side_edges(values, valid, kind='depth', edge_jump=0.05):
    """``(h, w)`` bool: known samples on the far side of a depth edge.

    A 4-neighbour pair of known samples is an edge when their values differ by
    more than ``edge_jump`` times the known values' range; the farther sample of the
    pair (larger depth, smaller disparity) is marked.
    """
    known = values[valid]
    span = float(known.max() - known.min()) if known.size else 0.0
    edges = np.zeros(values.shape, bool)
    if span <= 0:
        return edges
    sign = -1.0 if kind == 'disparity' else 1.0  # far = larger depth, smaller disparity
    far_value = sign * values
    for axis in (0, 1):
        a = np.swapaxes(far_value, 0, axis)
        va = np.swapaxes(valid, 0, axis)
        e = np.swapaxes(edges, 0, axis)  # a view: writes land in edges
        pair = va[1:] & va[:-1] & (np.abs(a[1:] - a[:-1]) > edge_jump * span)
        e[1:] |= pair & (a[1:] > a[:-1])
        e[:-1] |= pair & (a[:-1] > a[1:])
    return edges


def sensor_holes(values, valid, rng, fraction, kind='depth', edge_share=0.4, range_share=0.2,
                 edge_width=3.0, edge_jump=0.05, blob_sigma=(1.0, 4.0)):
    """A validity mask with sensor-like holes added to ``valid``.

    Args:
        values: ``(h, w)`` low-res depth or disparity (read only where ``valid``).
        valid: ``(h, w)`` bool, the samples known before.
        rng: ``numpy.random.Generator``; the result is a pure function of it.
        fraction: unknown fraction to reach, in [0, 0.5] (reached exactly up to
            rounding, unless ``valid`` already has more holes).
        edge_share, range_share: shares of the new holes that are edge dropouts and
            out-of-range samples (blobs take the rest; edge dropouts are capped at the
            samples within ``edge_width`` low-res pixels of a far-side edge).
        edge_jump: an edge is a jump of more than this share of the value range.
        blob_sigma: (min, max) smoothing, in low-res pixels, of the blob field.
    Returns:
        ``(h, w)`` bool, False = unknown; a subset of ``valid``.
    """
    from scipy import ndimage
    _check_fraction(fraction)
    if not (0 <= edge_share and 0 <= range_share and edge_share + range_share <= 1):
        raise ValueError(f'edge_share and range_share must be >= 0 with a sum <= 1, got '
                         f'{edge_share!r} and {range_share!r}')
    valid = np.asarray(valid, bool)
    mask = valid.copy()
    total = valid.size
    add = int(round(fraction * total)) - int(total - valid.sum())
    if add <= 0:
        return mask
    jitter = rng.random(values.shape)  # breaks ties, so a band widens unevenly like a real shadow

    def drop(score, count, allowed):
        """Make the ``count`` allowed known samples with the lowest score unknown."""
        candidates = np.flatnonzero((mask & allowed).ravel())
        if count <= 0 or candidates.size == 0:
            return 0
        chosen = candidates[np.argsort(score.ravel()[candidates], kind='stable')[:count]]
        mask.ravel()[chosen] = False
        return chosen.size

    far = np.where(valid, values if kind != 'disparity' else -values, 0)
    edges = far_side_edges(values, valid, kind, edge_jump)
    band = np.zeros(values.shape, bool)
    distance = np.full(values.shape, np.inf)
    if edges.any():
        distance, (rows, cols) = ndimage.distance_transform_edt(~edges, return_indices=True)
        # widen each edge into its own (far) surface only: no deeper jump to the edge sample
        span = float(far[valid].max() - far[valid].min())
        band = (distance <= edge_width) & (far >= far[rows, cols] - edge_jump * span)
    dropped = drop(distance + jitter, int(round(add * edge_share)), band)
    sign = 1.0 if rng.random() < 0.75 else -1.0  # beyond the range, or too close
    dropped += drop(-sign * far + 1e-6 * jitter, int(round(add * range_share)), valid)
    field = ndimage.gaussian_filter(rng.standard_normal(values.shape), rng.uniform(*blob_sigma), mode='wrap')
    drop(-field, add - dropped, valid)
    return mask


@TRANSFORMS.register_module()
class AddSensorHoles:
    """Make sensor-like holes (:func:`sensor_holes`) in the low-res input only.

    Place it after :class:`~convdense.datasets.transforms.MakeLowResolution`. It
    lowers ``low_valid``, refills ``low`` from the nearest known sample (the nets
    never read a hole's value) and records the unknown fraction in
    ``low_hole_fraction``. The ground truth is untouched. With a ``seed`` the
    sample's name gets ``_holes<percent unknown>`` appended.

    Args:
        fraction: the unknown fraction, a float or a (min, max) range drawn per
            sample, within [0, 0.5].
        seed: None draws from numpy's global generator (seeded per run and worker by
            mmengine, like the random crops); an int makes each sample's holes a pure
            function of (seed, sample name) -- a fixed sensor-like test set.
        prob: chance that a sample gets holes at all (the rest stay clean).
        kwargs: :func:`sensor_holes`'s shares and shapes.
    """

    def __init__(self, fraction=(0.0, 0.5), seed=None, prob=1.0, **kwargs):
        self.fraction = _check_fraction(fraction)
        if not 0 <= prob <= 1:
            raise ValueError(f'prob is a probability in [0, 1], got {prob!r}')
        self.seed = seed
        self.prob = prob
        self.kwargs = kwargs
        sensor_holes(np.zeros((2, 2), np.float32), np.ones((2, 2), bool), np.random.default_rng(0), 0.0,
                     **kwargs)  # bad keyword arguments fail here, when the pipeline is built

    def __call__(self, results):
        from .transforms import fill_invalid_nearest
        kind = results.get('target_kind', 'depth')
        if kind == 'flow':
            raise ValueError('AddSensorHoles makes depth/disparity sensor holes; the target is flow')
        if self.seed is None:
            rng = np.random.default_rng(np.random.randint(0, 2 ** 31))
        else:
            name = str(results.get('name', ''))
            rng = np.random.default_rng([int(self.seed), zlib.crc32(name.encode())])
        low = results['low']
        valid = results.get('low_valid', np.isfinite(low).all(axis=2))
        if rng.random() < self.prob:
            fraction = rng.uniform(*self.fraction)
            valid = sensor_holes(low[..., 0], valid, rng, fraction, kind, **self.kwargs)
            low = fill_invalid_nearest(np.where(valid[..., None], low, np.float32(np.nan)).astype(low.dtype))
        results['low'], results['low_valid'] = low, valid
        results['low_hole_fraction'] = float(1 - valid.mean())
        if self.seed is not None:  # a fixed sensor-like copy of a scene: its own name (panels, logs)
            results['name'] = f'{results.get("name", "sample")}_holes{round(100 * results["low_hole_fraction"])}'
        return results
