"""Data pipeline for joint upsampling: load, crop, flip, make the low-res input, pack.

A sample travels through the pipeline as a dict with
    ``guide``  ``(H, W, 3)`` float32 RGB in [0, 1],
    ``target`` ``(H, W, C)`` float32 (C=1 depth/disparity, C=2 flow), NaN = invalid,
and after :class:`MakeLowResolution` also ``low`` ``(H/f, W/f, C)`` (finite everywhere:
unknown samples hold their nearest known sample's value) and ``low_valid`` ``(H/f, W/f)``
bool (False = the sample is unknown, a sensor hole; see :mod:`.sensor_holes`).

A random window without a valid target pixel is bad luck, not bad data: the
transform returns ``None`` (OpenMMLab's "skip this sample"; the dataset draws
another) and counts it. An image that has no valid pixel at all is an error.
"""
import logging

import numpy as np
import torch
import torch.nn.functional as F

from ..ops.holes import nearest_valid_index
from ..registry import TRANSFORMS
from .readers import read_rgb, read_target


def crop_to_multiple(array, factor):
    """Crop ``(H, W, ...)`` from the bottom/right so H and W are multiples of ``factor``."""
    height, width = array.shape[:2]
    return array[:height - height % factor, :width - width % factor]


def fill_invalid_nearest(image):
    """Replace NaN pixels of ``(h, w, C)`` with the nearest valid pixel's value.

    The low-res input must be finite for the networks; nearest-valid filling is
    what a sensor pipeline would hand over and does not invent new values.
    """
    invalid = ~np.isfinite(image).all(axis=2)
    if not invalid.any():
        return image
    rows, cols = nearest_valid_index(invalid)
    return image[rows, cols]


def low_res_validity(target, factor, kind):
    """``(H/f, W/f)`` bool: which low-res samples of ``target`` are known.

    Depth/disparity: the subsampled pixel is finite. Flow: always True (the flow
    protocol averages over each block after filling, so no low-res vector is unknown).
    """
    _check_divisible(target, factor)
    if kind == 'flow':
        return np.ones((target.shape[0] // factor, target.shape[1] // factor), bool)
    offset = (factor - 1) // 2
    return np.isfinite(target[offset::factor, offset::factor]).all(axis=2)


def subsample_depth(depth, factor):
    """Low-res depth as in the DJF/PAC protocol: the pixel at offset (f-1)//2 of each f x f block.

    Args:
        depth: ``(H, W, C)`` with H, W multiples of ``factor``; NaN = invalid.
    Returns:
        ``(H/f, W/f, C)``, invalid samples filled from the nearest valid sample.
    """
    _check_divisible(depth, factor)
    offset = (factor - 1) // 2
    return fill_invalid_nearest(np.ascontiguousarray(depth[offset::factor, offset::factor]))


def downsample_flow(flow, factor):
    """Low-res flow: anti-aliased bilinear downsampling, divided by ``factor``.

    Flow is measured in pixels, so a field at 1/f resolution has 1/f the magnitude.
    Unknown (NaN) vectors take the nearest known vector before filtering, so they
    neither spread NaN nor drag the average towards zero motion (with stereo-as-flow's
    occlusion holes, zeros would dominate the error of every method).

    Args:
        flow: ``(H, W, 2)`` with H, W multiples of ``factor``.
    Returns:
        ``(H/f, W/f, 2)`` float32.
    """
    _check_divisible(flow, factor)
    height, width = flow.shape[:2]
    tensor = torch.from_numpy(np.ascontiguousarray(fill_invalid_nearest(flow))).permute(2, 0, 1)[None]
    low = F.interpolate(tensor, size=(height // factor, width // factor), mode='bilinear',
                        align_corners=False, antialias=True) / factor
    return low[0].permute(1, 2, 0).numpy().astype(np.float32)


def make_low_resolution(target, factor, kind):
    """Dispatch to the protocol of ``kind``: subsampling for depth/disparity, filtering for flow."""
    if kind == 'flow':
        return downsample_flow(target, factor)
    return subsample_depth(target, factor)


def _check_divisible(array, factor):
    if array.shape[0] % factor or array.shape[1] % factor:
        raise ValueError(f'image size {array.shape[0]}x{array.shape[1]} is not a multiple of the '
                         f'upsampling factor {factor}; crop it first (crop_to_multiple)')


@TRANSFORMS.register_module()
class LoadJointUpsamplingSample:
    """Read ``guide_path`` / ``target_path`` (or take in-memory ``guide``/``target``).

    Optional keys: ``target_kind`` (depth|disparity|flow), ``target_scale``
    (stored value per unit), ``region`` = (top, left, bottom, right) in pixels
    or ``region_frac`` = the same as fractions of the image size, to keep only
    part of the image (held-out regions), ``loader`` = a callable returning
    (guide, target) for containers such as NYU's ``.mat``.
    """

    def __call__(self, results):
        if 'loader' in results:
            guide, target = results['loader']()
        elif 'guide' in results and 'target' in results:
            guide, target = results['guide'], results['target']
        else:
            guide = read_rgb(results['guide_path'])
            target = read_target(results['target_path'], results['target_kind'],
                                 results.get('target_scale', 1.0))
        if guide.shape[:2] != target.shape[:2]:
            name = results.get('target_path', results.get('name', 'sample'))
            raise ValueError(f'{name}: guide is {guide.shape[0]}x{guide.shape[1]} but target is '
                             f'{target.shape[0]}x{target.shape[1]}')
        region = results.get('region')
        if results.get('region_frac') is not None:
            height, width = target.shape[:2]
            top, left, bottom, right = results['region_frac']
            region = (round(top * height), round(left * width), round(bottom * height), round(right * width))
        if region is not None:
            top, left, bottom, right = region
            guide, target = guide[top:bottom, left:right], target[top:bottom, left:right]
        results['guide'] = np.ascontiguousarray(guide, dtype=np.float32)
        results['target'] = np.ascontiguousarray(target, dtype=np.float32)
        return results


@TRANSFORMS.register_module()
class RandomJointCrop:
    """Crop guide and target at the same random ``crop_size`` (h, w) window.

    Windows with fewer than ``min_valid`` (a fraction) valid target pixels are
    redrawn, up to ``max_tries`` windows in all, because they contribute little
    to the loss; the window with the most valid pixels is kept. If none of them
    has a valid pixel the sample is skipped: ``None`` is returned, the dataset
    draws another sample, and ``skipped`` counts such samples (logged).
    """

    def __init__(self, crop_size, min_valid=0.5, max_tries=10):
        self.crop_size = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)
        if len(self.crop_size) != 2 or not all(isinstance(v, int) and v > 0 for v in self.crop_size):
            raise ValueError(f'crop_size must be a positive int or (h, w), got {crop_size!r}')
        if not 0 <= min_valid <= 1:
            raise ValueError(f'min_valid is a fraction in [0, 1], got {min_valid!r}')
        if not isinstance(max_tries, int) or max_tries < 1:
            raise ValueError(f'max_tries must be a positive int, got {max_tries!r}')
        self.min_valid = min_valid
        self.max_tries = max_tries
        self.skipped = 0

    def __call__(self, results):
        crop_h, crop_w = self.crop_size
        height, width = results['target'].shape[:2]
        if height < crop_h or width < crop_w:
            raise ValueError(f'crop {crop_h}x{crop_w} is larger than the image {height}x{width}')
        best, best_valid = None, -1.0
        for _ in range(self.max_tries):
            top = np.random.randint(0, height - crop_h + 1)
            left = np.random.randint(0, width - crop_w + 1)
            target = results['target'][top:top + crop_h, left:left + crop_w]
            valid = np.isfinite(target).all(axis=2).mean()
            if valid > best_valid:
                best, best_valid = (top, left), valid
            if valid >= self.min_valid:
                break
        if best_valid <= 0:
            self.skipped += 1
            _log_skip(f'RandomJointCrop: no valid target pixel in {self.max_tries} random '
                      f'{crop_h}x{crop_w} windows of {results.get("name", "a sample")}; sample '
                      f'skipped ({self.skipped} so far)')
            return None
        top, left = best
        results['guide'] = results['guide'][top:top + crop_h, left:left + crop_w]
        results['target'] = results['target'][top:top + crop_h, left:left + crop_w]
        results['random_crop'] = (top, left)
        return results


def _log_skip(message):
    from mmengine.logging import print_log
    print_log(message, logger='current', level=logging.WARNING)


@TRANSFORMS.register_module()
class RandomJointFlip:
    """Flip guide and target horizontally (and optionally vertically) with probability ``prob``.

    A flip mirrors flow too, so the u (or v) component changes sign.
    """

    def __init__(self, prob=0.5, vertical=False):
        self.prob = prob
        self.vertical = vertical

    def __call__(self, results):
        flow = results.get('target_kind') == 'flow'
        if np.random.rand() < self.prob:
            results['guide'] = results['guide'][:, ::-1]
            results['target'] = results['target'][:, ::-1].copy()
            if flow:
                results['target'][..., 0] *= -1
        if self.vertical and np.random.rand() < self.prob:
            results['guide'] = results['guide'][::-1]
            results['target'] = results['target'][::-1].copy()
            if flow:
                results['target'][..., 1] *= -1
        return results


@TRANSFORMS.register_module()
class MakeLowResolution:
    """Crop to a multiple of ``factor`` and make the low-res input ``low`` (see :func:`make_low_resolution`)
    and its validity mask ``low_valid`` (:func:`low_res_validity`).

    ``factor=None`` takes the sample's ``factor`` (set by the dataset's ``factor`` argument).
    A random crop (:class:`RandomJointCrop`) left without a valid pixel by the
    crop to a multiple of ``factor`` or by the subsampling is skipped (``None``,
    counted in ``skipped``); a whole image without one is a ``ValueError``
    naming it.
    """

    def __init__(self, factor=None):
        if factor is not None:
            _check_factor(factor)
        self.factor = factor
        self.skipped = 0

    def __call__(self, results):
        factor = self.factor or results.get('factor')
        if factor is None:
            raise ValueError('MakeLowResolution needs a factor (argument or the dataset\'s factor)')
        _check_factor(factor)
        name = results.get('name', 'sample')
        height, width = results['target'].shape[:2]
        if height < factor or width < factor:
            raise ValueError(f'{name}: image {height}x{width} is smaller than the upsampling '
                             f'factor {factor}')
        results['guide'] = crop_to_multiple(results['guide'], factor)
        results['target'] = crop_to_multiple(results['target'], factor)
        try:
            if not np.isfinite(results['target']).all(axis=2).any():
                raise ValueError('target has no valid pixel')
            kind = results.get('target_kind', 'depth')
            results['low'] = make_low_resolution(results['target'], factor, kind)
            results['low_valid'] = low_res_validity(results['target'], factor, kind)
        except ValueError as exc:
            if 'random_crop' not in results:
                raise ValueError(f'{name}: {exc}') from None
            self.skipped += 1
            _log_skip(f'MakeLowResolution: random crop of {name}: {exc}; sample skipped '
                      f'({self.skipped} so far)')
            return None
        results['factor'] = factor
        return results


def _check_factor(factor):
    if not isinstance(factor, int) or factor < 2 or factor & (factor - 1):
        raise ValueError(f'upsampling factor must be a power of two >= 2, got {factor!r}')


@TRANSFORMS.register_module()
class PackJointUpsamplingInputs:
    """Pack to ``dict(inputs=dict(guide, low), data_samples=dict(gt, valid, ...))``.

    Tensors: guide ``(3, H, W)``, low ``(C, H/f, W/f)``, gt ``(C, H, W)`` with
    invalid pixels set to 0, valid ``(1, H, W)`` bool; ``low_valid`` ``(1, H/f, W/f)``
    bool goes into ``inputs`` when the sample has one.
    """

    def __call__(self, results):
        target = results['target']
        valid = np.isfinite(target).all(axis=2)
        gt = np.where(valid[..., None], target, 0.0).astype(np.float32)

        def chw(array):
            return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))

        inputs = dict(guide=chw(results['guide']), low=chw(results['low']))
        if 'low_valid' in results:
            inputs['low_valid'] = torch.from_numpy(np.ascontiguousarray(results['low_valid']))[None]
        return dict(
            inputs=inputs,
            data_samples=dict(gt=chw(gt), valid=torch.from_numpy(valid)[None],
                              name=results.get('name', ''), kind=results.get('target_kind', 'depth')))
