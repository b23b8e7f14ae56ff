"""Procedural RGB-D scenes, for *training* joint upsamplers only.

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
from typing import NamedTuple

import numpy as np

from ..registry import DATASETS
from .procedural_layers import (PHOTOS, SHAPES, ProceduralDataset, check_layout,  # noqa: F401
                                check_probability, check_range, load_textures, shape_mask, texture_window)

DISPARITY_RANGE = (8.0, 80.0)


class ProceduralRGBD(NamedTuple):
    """One scene: ``guide`` (H, W, 3) float32 in [0, 1]; ``disparity`` (H, W, 1) float32,
    NaN = unknown (stereo occlusion); ``layers`` (H, W) int, the visible layer (0 =
    background); ``surfaces`` (H, W) int, the visible disparity surface (coplanar
    layers share their underlying layer's)."""
    guide: np.ndarray
    disparity: np.ndarray
    layers: np.ndarray
    surfaces: np.ndarray


def _check_args(size, num_layers, disparity_range, coplanar_prob, flat_prob, noise_std):
    check_layout(size, num_layers, flat_prob, noise_std)
    check_range('disparity_range', disparity_range)
    check_probability('coplanar_prob', coplanar_prob)


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
    guide = texture_window(rng, textures, height, width, (0, height, 0, width), flat_prob)
    surface_params = [_surface(rng, height, width, background, max_slope=0.06)]
    disparity = _eval_surface(surface_params[0], yy, xx)
    layers = np.zeros((height, width), np.int32)
    surfaces = np.zeros((height, width), np.int32)
    for index in range(1, count + 1):
        mask = shape_mask(rng, height, width)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if rows.size == 0:
            continue
        # the mask's bounding box with room for the soft edge
        box = (max(rows[0] - 3, 0), min(rows[-1] + 4, height), max(cols[0] - 3, 0), min(cols[-1] + 4, width))
        y0, y1, x0, x1 = box
        texture = texture_window(rng, textures, height, width, box, flat_prob)
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
class ProceduralRGBDDataset(ProceduralDataset):
    """``num_samples`` procedural scenes (:func:`generate_rgbd`), sample i from seed ``(seed, i)``.

    Samples are made on the fly by ``LoadJointUpsamplingSample`` (each carries a
    ``loader``), so the joint-upsampling pipelines run unchanged. Training only:
    evaluate on real scenes. ``generator`` holds :func:`generate_rgbd`'s keyword
    arguments (size, num_layers, disparity_range, ...).
    """
    target_kind = 'disparity'
    generate = staticmethod(generate_rgbd)
    load_pair = staticmethod(procedural_pair)

    @staticmethod
    def check_generator(occlusion, **kwargs):
        _check_args(**kwargs)
