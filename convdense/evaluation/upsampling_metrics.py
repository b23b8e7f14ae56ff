"""Metrics for joint upsampling: depth/disparity RMSE and optical-flow end-point error.

Both read the model's predictions, a list of dicts with
    ``pred``  ``(C, H, W)`` tensor in target units (metres, pixels of disparity or flow),
    ``gt``    ``(C, H, W)`` tensor,
    ``valid`` ``(1, H, W)`` bool tensor (False for unknown ground truth),
and never let an image without valid pixels through as a zero.
"""
import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from ..registry import METRICS


def _valid_mask(valid, shape, border):
    mask = valid.reshape(shape[-2:]).bool().clone()
    if border:
        if 2 * border >= min(shape[-2:]):
            raise ValueError(f'border {border} leaves nothing of a {shape[-2]}x{shape[-1]} image')
        mask[:border] = False
        mask[-border:] = False
        mask[:, :border] = False
        mask[:, -border:] = False
    return mask


def depth_rmse(pred, gt, valid, border=0):
    """Root-mean-square error over valid pixels, excluding ``border`` pixels on each side.

    Args:
        pred, gt: ``(1, H, W)`` or ``(H, W)`` tensors, same units.
        valid: ``(1, H, W)`` or ``(H, W)`` bool.
    Returns:
        float, in the units of ``gt``.
    """
    pred, gt = torch.as_tensor(pred).double(), torch.as_tensor(gt).double()
    if pred.shape != gt.shape:
        raise ValueError(f'prediction shape {tuple(pred.shape)} != ground truth {tuple(gt.shape)}')
    mask = _valid_mask(torch.as_tensor(valid), gt.shape, border)
    mask &= torch.isfinite(gt.reshape(mask.shape))
    if not mask.any():
        raise ValueError('image has no valid ground-truth pixel: RMSE is undefined')
    diff = (pred.reshape(mask.shape) - gt.reshape(mask.shape))[mask]
    return float(diff.pow(2).mean().sqrt())


def flow_epe_sum(pred, gt, valid, border=0):
    """Sum of end-point errors ``||pred - gt||_2`` over valid pixels, and their count.

    Args:
        pred, gt: ``(2, H, W)`` flow in pixels.
        valid: ``(1, H, W)`` or ``(H, W)`` bool.
    Returns:
        (float sum of EPE, int number of valid pixels)
    """
    pred, gt = torch.as_tensor(pred).double(), torch.as_tensor(gt).double()
    if pred.shape != gt.shape or pred.shape[0] != 2:
        raise ValueError(f'flow prediction {tuple(pred.shape)} and ground truth {tuple(gt.shape)} '
                         'must both be (2, H, W)')
    mask = _valid_mask(torch.as_tensor(valid), gt.shape, border)
    mask &= torch.isfinite(gt).all(0)
    count = int(mask.sum())
    if count == 0:
        raise ValueError('flow has no valid ground-truth pixel: EPE is undefined')
    epe = (pred - gt).pow(2).sum(0).sqrt()[mask]
    return float(epe.sum()), count


@METRICS.register_module()
class DepthRMSE(BaseMetric):
    """RMSE of depth (or disparity) on valid pixels, computed per image then averaged.

    Per-image averaging is the protocol of the DJF and PAC papers' NYU tables:
    each test image counts once, whatever its number of valid pixels.

    Args:
        border: pixels ignored on each side (6 in the NYU protocol, where the
            Kinect's frame border is unreliable).
        scale: multiplies the error into the reported unit (100: metres -> cm).
        unit: the reported unit, part of the metric's name (``rmse_cm``).
        sensor_like_holes: if set (a fraction), images whose low-res input has more
            unknown samples than this are *sensor-like*, the others *clean*, and each
            group's mean is reported too (``rmse_cm_sensor_like``, ``rmse_cm_clean``)
            after the overall ``rmse_cm``.
    """
    default_prefix = None

    def __init__(self, border=6, scale=100.0, unit='cm', sensor_like_holes=None, **kwargs):
        super().__init__(**kwargs)
        if sensor_like_holes is not None and not 0 <= sensor_like_holes < 1:
            raise ValueError(f'sensor_like_holes is a fraction in [0, 1), got {sensor_like_holes!r}')
        self.border = border
        self.scale = scale
        self.unit = unit
        self.sensor_like_holes = sensor_like_holes

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            rmse = depth_rmse(sample['pred'].cpu(), sample['gt'].cpu(), sample['valid'].cpu(), self.border)
            low_valid = sample.get('low_valid')
            holes = 0.0 if low_valid is None else 1.0 - float(low_valid.float().mean())
            self.results.append(dict(name=sample.get('name', ''), rmse=rmse * self.scale, low_holes=holes))

    def compute_metrics(self, results):
        name = f'rmse_{self.unit}'
        metrics = {name: float(np.mean([r['rmse'] for r in results]))}
        if self.sensor_like_holes is not None:
            for group, members in (('sensor_like', [r for r in results if r['low_holes'] > self.sensor_like_holes]),
                                   ('clean', [r for r in results if r['low_holes'] <= self.sensor_like_holes])):
                if members:
                    metrics[f'{name}_{group}'] = float(np.mean([r['rmse'] for r in members]))
        return metrics


@METRICS.register_module()
class FlowEPE(BaseMetric):
    """Mean end-point error (pixels) over all valid pixels of all images.

    Pixel-weighted, as Sintel's "EPE all": a frame with more known flow counts more.

    Args:
        border: pixels ignored on each side (0 for Sintel).
    """
    default_prefix = None

    def __init__(self, border=0, **kwargs):
        super().__init__(**kwargs)
        self.border = border

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            total, count = flow_epe_sum(sample['pred'].cpu(), sample['gt'].cpu(), sample['valid'].cpu(),
                                        self.border)
            self.results.append(dict(name=sample.get('name', ''), epe_sum=total, count=count))

    def compute_metrics(self, results):
        total = sum(r['epe_sum'] for r in results)
        count = sum(r['count'] for r in results)
        return {'epe_px': total / count}
