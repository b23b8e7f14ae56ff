"""Procedural RGB-D scenes, for *training* joint upsamplers only (issue #14).

Two bundled real scenes are too few to learn upsampling that carries over to an
unseen scene, and the real scenes must stay untouched for evaluation. So the
training data is generated: a slanted background and 4-10 occluding layers
(ellipses, star polygons, rotated rectangles, noise blobs, thick strokes),
composited back to front. Each layer is textured with a crop of a real
photograph (scikit-image's bundled photos; a few layers are flat shaded
colour) and carries a piecewise-smooth disparity surface (a gentle plane plus a
small bowl) whose level grows with the layer's order, so nearer layers occlude
farther ones. Hence depth edges lie on layer boundaries, which are colour edges,
while most colour edges (the photo texture inside a layer, and the boundary of a
*coplanar* layer that shares the surface of the layer under it, like a poster
on a wall) carry no depth edge. Disparities span about the bundled Middlebury
scenes' range (8-80 px; theirs: 7-106 px, 5-95 % quantiles 10-62 px), and
pixels that the right view of a stereo pair cannot see (left of a nearer
layer's left edge, as wide as the disparity jump) are unknown (NaN), as in
Middlebury's ground truth.

A scene is a pure function of its seed, generated on the fly (a 256x256 scene
in a few milliseconds); nothing is written to disk.

Photographs: every RGB/grey photo in ``skimage/data`` except
``motorcycle_left/right.png`` -- those are the Middlebury *Motorcycle* scene, a
bundled evaluation scene.
"""
import functools
import inspect
import os.path as osp
from typing import NamedTuple

import numpy as np

from ..registry import DATASETS
from .joint_upsampling import JointUpsamplingDataset

#: scikit-image's bundled photographs used as textures (motorcycle_* excluded: a test scene)
PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'hubble_deep_field.jpg',
          'ihc.png', 'retina.jpg', 'camera.png', 'coins.png', 'moon.png', 'grass.png',
          'gravel.png', 'brick.png', 'cell.png', 'page.png', 'text.png')
DISPARITY_RANGE = (8.0, 80.0)
SHAPES = ('ellipse', 'polygon', 'rectangle', 'blob', 'stroke')


class ProceduralRGBD(NamedTuple):
    """One scene: ``guide`` (H, W, 3) float32 in [0, 1]; ``disparity`` (H, W, 1) float32,
    NaN = unknown (stereo occlusion); ``layers`` (H, W) int, the visible layer (0 =
    background); ``surfaces`` (H, W) int, the visible disparity surface (coplanar
    layers share their underlying layer's)."""
    guide: np.ndarray
    disparity: np.ndarray
    layers: np.ndarray
    surfaces: np.ndarray


@functools.lru_cache(maxsize=1)
def load_textures():
    """The photographs as (float32 RGB in [0, 1], is-grey) pairs (read once per process)."""
    import skimage
    from PIL import Image
    folder = osp.join(osp.dirname(skimage.__file__), 'data')
    textures = []
    for name in PHOTOS:
        path = osp.join(folder, name)
        if osp.isfile(path):
            photo = np.asarray(Image.open(path).convert('RGB'), np.float32) / 255.0
            grey = bool(np.abs(photo - photo.mean(2, keepdims=True)).max() < 0.02)
            textures.append((photo, grey))
    if len(textures) < 4:
        raise FileNotFoundError(f'{folder}: procedural RGB-D needs scikit-image\'s bundled photographs '
                                f'({", ".join(PHOTOS)})')
    return tuple(textures)


def _check_args(size, num_layers, disparity_range, coplanar_prob, flat_prob, noise_std):
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(v, (int, np.integer)) and v >= 16 for v in size)):
        raise ValueError(f'size must be (height, width), ints >= 16, got {size!r}')
    if (not isinstance(num_layers, (tuple, list)) or len(num_layers) != 2
            or not all(isinstance(v, (int, np.integer)) for v in num_layers)
            or not 1 <= num_layers[0] <= num_layers[1]):
        raise ValueError(f'num_layers must be (min, max) ints with 1 <= min <= max, got {num_layers!r}')
    if (not isinstance(disparity_range, (tuple, list)) or len(disparity_range) != 2
            or not 0 < disparity_range[0] < disparity_range[1]):
        raise ValueError(f'disparity_range must be (low, high) with 0 < low < high, got {disparity_range!r}')
    for name, value in (('coplanar_prob', coplanar_prob), ('flat_prob', flat_prob)):
        if not 0 <= value <= 1:
            raise ValueError(f'{name} is a probability in [0, 1], got {value!r}')
    if not noise_std >= 0:
        raise ValueError(f'noise_std must be >= 0, got {noise_std!r}')


def _shape_mask(rng, height, width):
    """A random shape's boolean mask on the canvas (may leave the frame, may be empty)."""
    import cv2
    mask = np.zeros((height, width), np.uint8)
    side = min(height, width)
    radius = side * float(np.exp(rng.uniform(np.log(0.08), np.log(0.45))))
    cy, cx = rng.uniform(-0.1, 1.1) * height, rng.uniform(-0.1, 1.1) * width
    kind = SHAPES[rng.choice(len(SHAPES), p=(0.25, 0.25, 0.15, 0.2, 0.15))]
    if kind == 'ellipse':
        axes = (max(1, int(radius)), max(1, int(radius * rng.uniform(0.3, 1.0))))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0, 360, 1, -1)
    elif kind == 'polygon':
        count = int(rng.integers(3, 10))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        radii = radius * rng.uniform(0.4, 1.0, count)
        points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    elif kind == 'rectangle':
        box = ((cx, cy), (2 * radius, 2 * radius * rng.uniform(0.15, 1.0)), rng.uniform(0, 180))
        cv2.fillPoly(mask, [np.round(cv2.boxPoints(box)).astype(np.int32)], 1)
    elif kind == 'blob':
        cells = int(rng.integers(3, 7))
        noise = rng.standard_normal((cells, cells)).astype(np.float32)
        diameter = max(4, int(2 * radius))
        field = cv2.resize(noise, (diameter, diameter), interpolation=cv2.INTER_CUBIC)
        yy, xx = np.mgrid[-1:1:diameter * 1j, -1:1:diameter * 1j]
        blob = (field + 1.5 * (1 - (xx ** 2 + yy ** 2)) > 1.0).astype(np.uint8)
        top, left = int(cy) - diameter // 2, int(cx) - diameter // 2
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + diameter, height), min(left + diameter, width)
        if y1 > y0 and x1 > x0:
            mask[y0:y1, x0:x1] = blob[y0 - top:y1 - top, x0 - left:x1 - left]
    else:  # a thick stroke: stems, poles, leaves
        count = int(rng.integers(2, 5))
        step = radius * rng.uniform(0.5, 1.0, count)
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.uniform(-0.6, 0.6, count))
        points = np.stack([cx + np.concatenate([[0], np.cumsum(step * np.cos(heading))]),
                           cy + np.concatenate([[0], np.cumsum(step * np.sin(heading))])], 1)
        cv2.polylines(mask, [np.round(points).astype(np.int32)], False, 1,
                      thickness=int(rng.integers(3, max(4, side // 16))))
    return mask.astype(bool)


def _texture(rng, textures, height, width, box, flat_prob):
    """The ``box`` = (y0, y1, x0, x1) window of a canvas-sized texture: a jittered,
    rescaled crop of a photo, or flat shaded colour (only the window is computed)."""
    import cv2
    y0, y1, x0, x1 = box
    if rng.random() < flat_prob:
        colour = rng.uniform(0.05, 0.95, 3).astype(np.float32)
        yy, xx = np.ogrid[y0:y1, x0:x1]
        shade = (1 + rng.uniform(-0.25, 0.25) * (xx / width - 0.5)
                 + rng.uniform(-0.25, 0.25) * (yy / height - 0.5)).astype(np.float32)
        return np.clip(colour * shade[..., None], 0, 1)
    photo, grey = textures[rng.integers(len(textures))]
    photo_h, photo_w = photo.shape[:2]
    crop = int(min(photo_h, photo_w, max(16, max(height, width) * rng.uniform(0.5, 2.0))))
    top, left = rng.integers(0, photo_h - crop + 1), rng.integers(0, photo_w - crop + 1)
    # the crop resized to the canvas (bilinear, pixel centres aligned), sampled on the window only
    scale_y, scale_x = crop / height, crop / width
    warp = np.array([[scale_x, 0, left + (x0 + 0.5) * scale_x - 0.5],
                     [0, scale_y, top + (y0 + 0.5) * scale_y - 0.5]], np.float64)
    patch = cv2.warpAffine(photo, warp, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REFLECT)
    if grey:
        patch = patch[..., :1] * rng.uniform(0.3, 1.0, 3).astype(np.float32)
    gain = rng.uniform(0.6, 1.3, 3).astype(np.float32)
    return np.clip(patch * gain + np.float32(rng.uniform(-0.15, 0.15)), 0, 1)


def _surface(rng, height, width, level, max_slope):
    """A gentle disparity surface's parameters: ``level`` at a random point, a plane of
    slope up to ``max_slope`` px/px, and a bowl of up to 3 px over the canvas."""
    cy, cx = rng.uniform(0, height), rng.uniform(0, width)
    gy, gx = rng.uniform(-max_slope, max_slope, 2)
    bowl = rng.uniform(-3, 3) / float(height ** 2 + width ** 2)
    return level, cy, cx, gy, gx, bowl


def _eval_surface(surface, yy, xx):
    level, cy, cx, gy, gx, bowl = surface
    dy, dx = yy - cy, xx - cx
    return (level + gy * dy + gx * dx + bowl * (dy * dy + dx * dx)).astype(np.float32)


def stereo_occlusion(disparity):
    """Pixels of a left view that the right view cannot see.

    Pixel x of a row lands at x - d(x) in the right view; it is hidden when a
    pixel to its right lands left of it (a nearer surface covers it):
    ``min_{x' > x} (x' - d(x')) < x - d(x)``.
    """
    width = disparity.shape[1]
    landing = np.arange(width, dtype=np.float32)[None] - disparity
    right_min = np.minimum.accumulate(landing[:, ::-1], axis=1)[:, ::-1]
    right_min = np.concatenate([right_min[:, 1:], np.full_like(right_min[:, :1], np.inf)], axis=1)
    return right_min < landing - 1e-3


def generate_rgbd(seed, size=(256, 256), num_layers=(4, 10), disparity_range=DISPARITY_RANGE,
                  coplanar_prob=0.25, flat_prob=0.15, noise_std=0.01, occlusion=True):
    """One procedural scene (:class:`ProceduralRGBD`), a pure function of ``seed``.

    Args:
        seed: int or tuple of ints (``(dataset_seed, index)``) for ``numpy.random.default_rng``.
        size: (height, width).
        num_layers: (min, max) occluding layers in front of the background.
        disparity_range: (low, high) px; every known disparity lies inside it.
        coplanar_prob: chance that a layer shares the surface under it (a colour edge
            without a depth edge).
        flat_prob: chance that a layer is flat shaded colour instead of a photo crop.
        noise_std: Gaussian noise added to the guide (a camera's).
        occlusion: mark stereo-occluded pixels unknown (NaN), as Middlebury's ground truth does.
    """
    import cv2
    _check_args(size, num_layers, disparity_range, coplanar_prob, flat_prob, noise_std)
    rng = np.random.default_rng(seed)
    textures = load_textures()
    height, width = (int(v) for v in size)
    low, high = (float(v) for v in disparity_range)
    span = high - low

    count = int(rng.integers(num_layers[0], num_layers[1] + 1))
    background = low + rng.uniform(0.05, 0.3) * span
    levels = np.sort(rng.uniform(background + 0.08 * span, high - 0.05 * span, count))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    guide = _texture(rng, textures, height, width, (0, height, 0, width), flat_prob)
    surface_params = [_surface(rng, height, width, background, max_slope=0.06)]
    disparity = _eval_surface(surface_params[0], yy, xx)
    layers = np.zeros((height, width), np.int32)
    surfaces = np.zeros((height, width), np.int32)
    for index in range(1, count + 1):
        mask = _shape_mask(rng, height, width)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if rows.size == 0:
            continue
        # the mask's bounding box with room for the soft edge
        box = (max(rows[0] - 3, 0), min(rows[-1] + 4, height), max(cols[0] - 3, 0), min(cols[-1] + 4, width))
        y0, y1, x0, x1 = box
        texture = _texture(rng, textures, height, width, box, flat_prob)
        if rng.random() < coplanar_prob:
            surface_id = int(np.bincount(surfaces[mask]).argmax())  # what it mostly covers
        else:
            surface_params.append(_surface(rng, height, width, levels[index - 1], max_slope=0.04))
            surface_id = len(surface_params) - 1
        alpha = cv2.GaussianBlur(mask[y0:y1, x0:x1].astype(np.float32), (0, 0), rng.uniform(0.4, 0.9))
        alpha = alpha[..., None]
        guide[y0:y1, x0:x1] = alpha * texture + (1 - alpha) * guide[y0:y1, x0:x1]  # soft colour edge
        disparity[mask] = _eval_surface(surface_params[surface_id], yy[mask], xx[mask])  # sharp depth edge
        layers[mask] = index
        surfaces[mask] = surface_id
    if noise_std:
        guide = guide + np.float32(noise_std) * rng.standard_normal(guide.shape, dtype=np.float32)
    guide = np.clip(guide, 0, 1).astype(np.float32)
    disparity = np.clip(disparity, low, high).astype(np.float32)
    if occlusion:
        disparity = np.where(stereo_occlusion(disparity), np.float32(np.nan), disparity)
    return ProceduralRGBD(guide, disparity[..., None], layers, surfaces)


def procedural_pair(seed, **kwargs):
    """``(guide, disparity)`` of :func:`generate_rgbd`, the loader a dataset sample calls."""
    scene = generate_rgbd(seed, **kwargs)
    return scene.guide, scene.disparity


@DATASETS.register_module()
class ProceduralRGBDDataset(JointUpsamplingDataset):
    """``num_samples`` procedural scenes (:func:`generate_rgbd`), sample i from seed ``(seed, i)``.

    Samples are made on the fly by ``LoadJointUpsamplingSample`` (each carries a
    ``loader``), so the joint-upsampling pipelines run unchanged. Training only:
    evaluate on real scenes. ``generator`` holds :func:`generate_rgbd`'s keyword
    arguments (size, num_layers, disparity_range, ...).
    """
    target_kind = 'disparity'

    def __init__(self, num_samples=2000, seed=0, generator=None, **kwargs):
        if not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise ValueError(f'num_samples must be a positive int, got {num_samples!r}')
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.generator = dict(generator or {})
        defaults = {name: p.default for name, p in inspect.signature(generate_rgbd).parameters.items()
                    if name != 'seed'}
        unknown = sorted(set(self.generator) - set(defaults))
        if unknown:
            raise ValueError(f'ProceduralRGBDDataset: unknown generator arguments {unknown}; '
                             f'known: {sorted(defaults)}')
        checked = {**defaults, **self.generator}
        checked.pop('occlusion')
        _check_args(**checked)
        super().__init__(**kwargs)

    def list_samples(self):
        return [dict(loader=functools.partial(procedural_pair, (self.seed, index), **self.generator),
                     name=f'procedural_{self.seed}_{index:05d}') for index in range(self.num_samples)]
