"""Procedural optical flow in the manner of FlyingChairs, for *training* flow upsamplers only.

The bundled flow frames move by per-segment translations of a few pixels, unlike
real motion (independent objects, occlusions, rotation, zoom, large and small
displacements). So the training flow is generated as FlyingChairs (Dosovitskiy et
al., "FlowNet", ICCV 2015) built theirs: a background and 2-6 foreground layers
(random shapes, :func:`.procedural_layers.shape_mask`) cut from real photographs,
each with its own random affine motion (rotation and zoom about the layer's
centre plus a translation) and, optionally, a mild smooth non-rigid deformation;
composited back to front in both frames, so nearer layers occlude farther ones.

Ground truth is exact by construction: each layer's motion is a displacement
field ``f`` on frame 1, and frame 1 samples the layer where frame 2 shows it,
``frame1(x) = layer(x + f(x))``; the flow at ``x`` is ``f`` of the layer visible
there. Translations are log-uniform between ``translation`` (low, high), a
heavy tail of sub-pixel to tens-of-pixel motion like Sintel's and Middlebury's;
the background's motion is scaled by ``background_scale``. Frame 2 gets a
brightness change and both frames camera noise. A pixel is *occluded* when the
point it shows leaves frame 2 or a nearer layer covers it there.

A sample is a pure function of its seed, generated on the fly (a 256x256 pair in
a few tens of milliseconds); nothing is written to disk.
"""
from typing import NamedTuple

import numpy as np

from ..registry import DATASETS
from .procedural_layers import (ProceduralDataset, check_layout, check_probability, check_range, load_textures,
                                shape_mask, texture_window)


class Motion(NamedTuple):
    """A layer's affine motion ``x -> centre + zoom * R(rotation) (x - centre) + translation``,
    plus a smooth non-rigid part of at most ``nonrigid`` px. Coordinates (x, y) in px,
    rotation in degrees."""
    translation: tuple
    rotation: float
    zoom: float
    centre: tuple
    nonrigid: float


class ProceduralFlow(NamedTuple):
    """One pair: ``frame1``/``frame2`` (H, W, 3) float32 in [0, 1]; ``flow`` (H, W, 2)
    float32 (u, v) from frame 1 to frame 2, exact and dense (``frame1(x) ~ frame2(x +
    flow(x))``); ``occluded`` (H, W) bool; ``layers`` (H, W) int, the layer visible in
    frame 1 (0 = background); ``motions`` one :class:`Motion` per layer."""
    frame1: np.ndarray
    frame2: np.ndarray
    flow: np.ndarray
    occluded: np.ndarray
    layers: np.ndarray
    motions: tuple


def _check_args(size, num_layers, translation, background_scale, rotation_std, zoom_std, nonrigid,
                nonrigid_prob, brightness, flat_prob, noise_std):
    check_layout(size, num_layers, flat_prob, noise_std)
    check_range('translation', translation, ' px')
    if not background_scale > 0:
        raise ValueError(f'background_scale must be > 0, got {background_scale!r}')
    for name, value in (('rotation_std', rotation_std), ('zoom_std', zoom_std), ('nonrigid', nonrigid),
                        ('brightness', brightness)):
        if not value >= 0:
            raise ValueError(f'{name} must be >= 0, got {value!r}')
    check_probability('nonrigid_prob', nonrigid_prob)


def sample_motion(rng, centre, translation, rotation_std, zoom_std, nonrigid):
    """A random :class:`Motion`: translation log-uniform in ``translation`` (low, high) px in a
    uniform direction, rotation ~ N(0, ``rotation_std``) degrees, log-zoom ~ N(0, ``zoom_std``),
    non-rigid amplitude uniform in [0, ``nonrigid``]."""
    magnitude = float(np.exp(rng.uniform(np.log(translation[0]), np.log(translation[1]))))
    direction = rng.uniform(0, 2 * np.pi)
    return Motion((magnitude * np.cos(direction), magnitude * np.sin(direction)),
                  float(rng.normal(0, rotation_std)), float(np.exp(rng.normal(0, zoom_std))),
                  tuple(float(c) for c in centre), float(rng.uniform(0, nonrigid)))


def affine_flow(motion, height, width):
    """The affine part of ``motion`` as an (H, W, 2) displacement field (u, v) in px."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    angle = np.deg2rad(motion.rotation)
    cos, sin = motion.zoom * np.cos(angle), motion.zoom * np.sin(angle)
    (cx, cy), (tx, ty) = motion.centre, motion.translation
    dx, dy = xx - cx, yy - cy
    u = cx + cos * dx - sin * dy + tx - xx
    v = cy + sin * dx + cos * dy + ty - yy
    return np.stack([u, v], axis=2)


def _nonrigid_flow(rng, amplitude, height, width):
    """A smooth random (H, W, 2) field with at most ``amplitude`` px per component."""
    import cv2
    cells = int(rng.integers(2, 5))
    coarse = rng.uniform(-1, 1, (cells, cells, 2)).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    return amplitude * np.clip(field, -1, 1).astype(np.float64)


def _sample(image, flow, pad, border):
    """Bilinear ``image(x + flow(x) + pad)`` on the (H, W) grid of ``flow``."""
    import cv2
    height, width = flow.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width]
    map_x = (xx + flow[..., 0] + pad).astype(np.float32)
    map_y = (yy + flow[..., 1] + pad).astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=border, borderValue=0)


def generate_flow(seed, size=(256, 256), num_layers=(2, 6), translation=(0.1, 32.0), background_scale=0.5,
                  rotation_std=4.0, zoom_std=0.05, nonrigid=1.5, nonrigid_prob=0.5, brightness=0.1,
                  flat_prob=0.1, noise_std=0.01):
    """One procedural flow pair (:class:`ProceduralFlow`), a pure function of ``seed``.

    Args:
        seed: int or tuple of ints (``(dataset_seed, index)``) for ``numpy.random.default_rng``.
        size: (height, width).
        num_layers: (min, max) foreground layers over the background.
        translation: (low, high) px; each foreground translation's length is log-uniform in it.
        background_scale: the background's translation range and rotation/zoom spread,
            relative to the foreground's (a camera moves less than the objects).
        rotation_std: degrees; zoom_std: of the log-zoom.
        nonrigid: max amplitude (px) of a layer's smooth non-rigid deformation, applied to
            a layer with probability ``nonrigid_prob``.
        brightness: frame 2's per-channel gain is in [1 - b, 1 + b] and its offset in [-b/2, b/2].
        flat_prob: chance that a layer is flat shaded colour instead of a photo crop.
        noise_std: Gaussian noise added to both frames.
    """
    import cv2
    _check_args(size, num_layers, translation, background_scale, rotation_std, zoom_std, nonrigid,
                nonrigid_prob, brightness, flat_prob, noise_std)
    rng = np.random.default_rng(seed)
    textures = load_textures()
    height, width = (int(v) for v in size)
    low, high = (float(v) for v in translation)
    # layers live on a padded canvas so that the part of a layer frame 1 sees is drawn
    pad = int(np.ceil(high)) + 8
    canvas_h, canvas_w = height + 2 * pad, width + 2 * pad

    count = int(rng.integers(num_layers[0], num_layers[1] + 1))
    colours, alphas, flows, motions = [], [], [], []
    for index in range(count + 1):
        if index == 0:
            mask = np.ones((canvas_h, canvas_w), bool)
            centre = ((width - 1) / 2, (height - 1) / 2)
            scale = background_scale
        else:
            mask = shape_mask(rng, canvas_h, canvas_w)
            if not mask[pad:pad + height, pad:pad + width].any():
                continue
            ys, xs = np.nonzero(mask)
            centre = (xs.mean() - pad, ys.mean() - pad)
            scale = 1.0
        motion = sample_motion(rng, centre, (low * scale, high * scale), rotation_std * scale, zoom_std * scale,
                               nonrigid if rng.random() < nonrigid_prob else 0.0)
        flow = affine_flow(motion, height, width)
        if motion.nonrigid:
            flow += _nonrigid_flow(rng, motion.nonrigid, height, width)
        colour = texture_window(rng, textures, canvas_h, canvas_w, (0, canvas_h, 0, canvas_w), flat_prob)
        alpha = mask.astype(np.float32)
        if index:
            alpha = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(0.4, 0.9))  # a soft colour edge
        colours.append(colour)
        alphas.append(alpha)
        flows.append(flow)
        motions.append(motion)

    frame1 = np.zeros((height, width, 3), np.float32)
    frame2 = np.zeros((height, width, 3), np.float32)
    flow = np.zeros((height, width, 2), np.float64)
    layers = np.zeros((height, width), np.int32)
    for index, (colour, alpha, layer_flow) in enumerate(zip(colours, alphas, flows)):
        # frame 2 shows the layer where it is drawn; frame 1 where it comes from
        alpha2 = alpha[pad:pad + height, pad:pad + width, None]
        frame2 = alpha2 * colour[pad:pad + height, pad:pad + width] + (1 - alpha2) * frame2
        colour1 = _sample(colour, layer_flow, pad, cv2.BORDER_REFLECT)
        alpha1 = _sample(alpha, layer_flow, pad, cv2.BORDER_CONSTANT) if index else np.ones_like(colour1[..., 0])
        frame1 = alpha1[..., None] * colour1 + (1 - alpha1[..., None]) * frame1
        inside = alpha1 > 0.5
        flow[inside] = layer_flow[inside]
        layers[inside] = index

    # occluded: the point leaves frame 2, or a nearer layer covers it there
    yy, xx = np.mgrid[0:height, 0:width]
    target_x, target_y = xx + flow[..., 0], yy + flow[..., 1]
    occluded = (target_x < 0) | (target_x > width - 1) | (target_y < 0) | (target_y > height - 1)
    for index in range(1, len(alphas)):
        covered = _sample(alphas[index], flow, pad, cv2.BORDER_CONSTANT) > 0.5
        occluded |= covered & (layers < index)

    if brightness:
        gain = rng.uniform(1 - brightness, 1 + brightness, 3).astype(np.float32)
        frame2 = frame2 * gain + np.float32(rng.uniform(-brightness / 2, brightness / 2))
    if noise_std:
        frame1 = frame1 + np.float32(noise_std) * rng.standard_normal(frame1.shape, dtype=np.float32)
        frame2 = frame2 + np.float32(noise_std) * rng.standard_normal(frame2.shape, dtype=np.float32)
    frame1, frame2 = (np.clip(f, 0, 1).astype(np.float32) for f in (frame1, frame2))
    return ProceduralFlow(frame1, frame2, flow.astype(np.float32), occluded, layers, tuple(motions))


def procedural_flow_pair(seed, **kwargs):
    """``(frame1, flow)`` of :func:`generate_flow`, the loader a dataset sample calls."""
    pair = generate_flow(seed, **kwargs)
    return pair.frame1, pair.flow


@DATASETS.register_module()
class ProceduralFlowDataset(ProceduralDataset):
    """``num_samples`` procedural flow pairs (:func:`generate_flow`), sample i from seed
    ``(seed, i)``; the guide is frame 1 and the target its dense flow. Training only:
    select and test on real flow. ``generator`` holds :func:`generate_flow`'s keyword
    arguments (size, num_layers, translation, ...)."""
    target_kind = 'flow'
    generate = staticmethod(generate_flow)
    load_pair = staticmethod(procedural_flow_pair)
    check_generator = staticmethod(_check_args)
