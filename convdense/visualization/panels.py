"""Comparison panels for joint upsampling: guide, low-res input, methods, ground truth, error.

Depth/disparity use one perceptual colour map (viridis) with a range shared by
every tile, so colours compare across methods; flow uses the Middlebury colour
wheel (mmcv's ``flow2rgb``) with one shared magnitude scale.
"""
import os
import os.path as osp

import numpy as np


def _to_hwc(array):
    """``(C, H, W)`` tensor or ``(H, W, C)``/``(H, W)`` array -> ``(H, W, C)`` float numpy."""
    if hasattr(array, 'detach'):
        array = array.detach().cpu().numpy()
        if array.ndim == 3:
            array = array.transpose(1, 2, 0)
    array = np.asarray(array, dtype=np.float32)
    return array[..., None] if array.ndim == 2 else array


def _flow_rgb(flow, max_magnitude):
    import mmcv
    # flow2rgb scales by the largest finite magnitude it sees; pinning one
    # reference vector at max_magnitude keeps the scale shared across tiles.
    flow = np.nan_to_num(flow, nan=0.0).copy()
    flow[0, 0] = (max_magnitude, 0.0)
    rgb = mmcv.flow2rgb(flow)
    rgb[0, 0] = rgb[0, 1] if flow.shape[1] > 1 else rgb[0, 0]
    return np.clip(rgb, 0, 1)


def make_panel(path, guide, low, predictions, gt, valid, kind='depth', unit='', title='', low_value_scale=1.0):
    """Write a PNG panel.

    Args:
        path: output ``.png``.
        guide: ``(3, H, W)``/``(H, W, 3)`` RGB in [0, 1].
        low: ``(C, h, w)`` low-res input (shown nearest-upsampled to H x W).
        predictions: ordered ``{method name: (C, H, W)}``, e.g. bicubic, JBU, PAC;
            the last one gets the error map.
        gt: ``(C, H, W)`` ground truth; valid: ``(1, H, W)`` bool.
        kind: ``'depth'``, ``'disparity'`` or ``'flow'``.
        unit: unit of the error colour bar.
        low_value_scale: multiplies ``low`` for display (``factor`` for flow,
            whose low-res values are in low-res pixels).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    guide, low, gt = _to_hwc(guide), _to_hwc(low) * low_value_scale, _to_hwc(gt)
    valid = _to_hwc(valid)[..., 0] > 0
    height, width = gt.shape[:2]
    repeat = height // low.shape[0]
    low_up = np.repeat(np.repeat(low, repeat, axis=0), repeat, axis=1)[:height, :width]
    preds = {name: _to_hwc(p) for name, p in predictions.items()}
    last_name, last = list(preds.items())[-1]
    gt_masked = np.where(valid[..., None], gt, np.nan)

    tiles = [('guide RGB', guide, None), (f'low-res input (x{repeat})', low_up, 'signal')]
    tiles += [(name, p, 'signal') for name, p in preds.items()]
    tiles += [('ground truth', gt_masked, 'signal')]
    if kind == 'flow':
        error = np.linalg.norm(last - gt, axis=2)
        max_magnitude = float(np.nanmax(np.linalg.norm(gt_masked, axis=2)))
    else:
        error = np.abs(last - gt)[..., 0]
        vmin, vmax = float(np.nanmin(gt_masked)), float(np.nanmax(gt_masked))
    error[~valid] = np.nan

    columns = len(tiles) + 1
    fig, axes = plt.subplots(1, columns, figsize=(2.6 * columns, 2.6 * height / width + 0.6))
    for ax, (name, image, role) in zip(axes, tiles):
        if role is None:
            ax.imshow(np.clip(image, 0, 1))
        elif kind == 'flow':
            ax.imshow(_flow_rgb(image, max_magnitude))
        else:
            ax.imshow(image[..., 0], cmap='viridis', vmin=vmin, vmax=vmax)
        ax.set_title(name, fontsize=8)
    shown = axes[-1].imshow(error, cmap='magma', vmin=0, vmax=float(np.nanpercentile(error, 99)) or 1.0)
    axes[-1].set_title(f'|{last_name} - gt| ({unit})' if unit else f'|{last_name} - gt|', fontsize=8)
    fig.colorbar(shown, ax=axes[-1], fraction=0.046, pad=0.02)
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches='tight')
    plt.close(fig)
    return path
