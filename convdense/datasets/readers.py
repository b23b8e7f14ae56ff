"""Readers for joint-upsampling data: guide images, depth/disparity maps and flow.

Every reader returns float32 numpy arrays and raises ``ValueError`` with a
one-line message naming the file when it cannot give a trustworthy result
(missing, unreadable, corrupt, wrong shape), because a silently wrong target
becomes a silently wrong metric.

Conventions:
    guide RGB: ``(H, W, 3)`` float32 in ``[0, 1]``.
    depth / disparity: ``(H, W)`` float32, invalid pixels are NaN.
    flow: ``(H, W, 2)`` float32 in pixels, unknown pixels are NaN.
"""
import os
import os.path as osp

import numpy as np

from ..errors import DataError

#: Sintel / Middlebury store "unknown" flow as huge values; anything above this is unknown.
UNKNOWN_FLOW_THRESHOLD = 1e7
_FLO_MAGIC = 202021.25  # the float32 spelling of b'PIEH'


def _require_file(path):
    if not osp.isfile(path):
        raise DataError(f'{path}: no such file')


def read_rgb(path):
    """Read an 8/16-bit RGB (or grey, or RGBA) image as ``(H, W, 3)`` float32 in [0, 1]."""
    import imageio.v3 as iio
    _require_file(path)
    try:
        image = iio.imread(path)
    except Exception as exc:  # imageio raises many types; report the file, not the plugin
        raise DataError(f'{path}: unreadable image ({exc.__class__.__name__}: {exc})') from None
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise DataError(f'{path}: expected an RGB image, got an array of shape {image.shape}')
    image = image[..., :3]
    scale = 65535.0 if image.dtype == np.uint16 else 255.0 if image.dtype == np.uint8 else 1.0
    return image.astype(np.float32) / scale


def read_pfm(path):
    """Read a PFM (Middlebury 2014 disparity) as float32; ``inf`` marks unknown pixels.

    Returns:
        ``(H, W)`` for a grey PFM, ``(H, W, 3)`` for a colour one, top row first.
    """
    import cv2
    _require_file(path)
    data = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if data is None:
        raise DataError(f'{path}: unreadable PFM file (bad header or truncated data)')
    return np.ascontiguousarray(data.astype(np.float32))


def write_pfm(path, array):
    """Write a ``(H, W)`` (grey) or ``(H, W, 3)`` (colour) float32 array as PFM (the
    Middlebury 2014 format; what :func:`read_pfm` reads back)."""
    import cv2
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, np.ascontiguousarray(array, dtype=np.float32)):
        raise DataError(f'{path}: could not write PFM')


def _check_flo_file(path):
    """Validate a Middlebury ``.flo`` header and size before handing it to mmcv.

    mmcv's reader checks the magic number but a truncated body only shows up as
    an obscure numpy reshape error, so the size is checked here.
    """
    _require_file(path)
    size = osp.getsize(path)
    if size < 12:
        raise DataError(f'{path}: corrupt .flo file (only {size} bytes, header needs 12)')
    with open(path, 'rb') as f:
        magic = np.frombuffer(f.read(4), np.float32)[0]
        width, height = np.frombuffer(f.read(8), np.int32)
    if magic != _FLO_MAGIC:
        raise DataError(f'{path}: corrupt .flo file (bad magic number {magic!r}, expected PIEH)')
    if width <= 0 or height <= 0 or width * height > 1 << 28:
        raise DataError(f'{path}: corrupt .flo file (implausible size {width}x{height})')
    expected = 12 + 8 * int(width) * int(height)
    if size != expected:
        raise DataError(f'{path}: truncated or corrupt .flo file ({size} bytes, a '
                         f'{width}x{height} flow needs {expected})')


def _check_numeric(path, data, what):
    """An integer or floating array with at least one element, else a one-line error."""
    data = np.asarray(data)
    if data.dtype == bool or not (np.issubdtype(data.dtype, np.integer)
                                  or np.issubdtype(data.dtype, np.floating)):
        raise DataError(f'{path}: {what} must hold integers or floats, got dtype {data.dtype}')
    if data.size == 0:
        raise DataError(f'{path}: empty {what} (shape {data.shape})')
    return data


def read_flow(path):
    """Read optical flow as ``(H, W, 2)`` float32 (u, v) in pixels; unknown pixels are NaN.

    ``.flo`` goes through mmcv's ``flowread``; ``.npy``/``.npz`` hold an
    ``(H, W, 2)`` array; ``.pfm`` holds u, v in its first two colour planes.
    """
    ext = osp.splitext(path)[1].lower()
    if ext == '.flo':
        import mmcv
        _check_flo_file(path)
        flow = mmcv.flowread(path)
    elif ext in ('.npy', '.npz'):
        flow = _read_numpy(path)
    elif ext == '.pfm':
        flow = read_pfm(path)[..., :2]
    else:
        raise DataError(f'{path}: unsupported flow format {ext!r} (use .flo, .npy, .npz or .pfm)')
    flow = _check_numeric(path, flow, 'flow field').astype(np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise DataError(f'{path}: expected an (H, W, 2) flow field, got shape {flow.shape}')
    flow = flow.copy()
    unknown = ~np.isfinite(flow).all(axis=2) | (np.abs(flow) > UNKNOWN_FLOW_THRESHOLD).any(axis=2)
    flow[unknown] = np.nan
    return flow


def write_flow(path, flow):
    """Write ``(H, W, 2)`` flow as a Middlebury ``.flo`` via mmcv; NaN is written as unknown (1e9)."""
    import mmcv
    flow = np.nan_to_num(np.asarray(flow, np.float32), nan=1e9)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    mmcv.flowwrite(flow, path)


def _read_numpy(path):
    _require_file(path)
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f'{path}: unreadable numpy file ({exc.__class__.__name__}: {exc})') from None
    if isinstance(data, np.lib.npyio.NpzFile):
        if not data.files:
            raise DataError(f'{path}: empty .npz archive')
        data = data[data.files[0]]
    return data


def read_depth(path, scale=1.0, zero_is_invalid=True):
    """Read a depth or disparity map as ``(H, W)`` float32, invalid pixels NaN.

    Args:
        path: ``.png`` (8/16-bit integers; divided by ``scale``, e.g. 1000 for
            millimetre depth PNGs, 256 for KITTI-style disparity), ``.npy``,
            ``.npz`` (first array) or ``.pfm`` (``inf`` = unknown); float
            formats already hold metres / pixels and are not scaled.
        scale: stored PNG value per unit (metres for depth, pixels for disparity).
        zero_is_invalid: treat 0 as unknown (the PNG convention of NYU and
            Middlebury, where 0 means "no measurement").
    """
    ext = osp.splitext(path)[1].lower()
    if ext == '.png':
        import imageio.v3 as iio
        _require_file(path)
        try:
            data = iio.imread(path)
        except Exception as exc:
            raise DataError(f'{path}: unreadable PNG ({exc.__class__.__name__}: {exc})') from None
        if data.ndim == 3:
            if not (data[..., :3] == data[..., :1]).all():
                raise DataError(f'{path}: depth/disparity PNG must be single-channel, got shape {data.shape}')
            data = data[..., 0]
    elif ext in ('.npy', '.npz'):
        data = _read_numpy(path)
    elif ext == '.pfm':
        data = read_pfm(path)
        if data.ndim == 3:
            data = data[..., 0]
    else:
        raise DataError(f'{path}: unsupported depth format {ext!r} (use .png, .npy, .npz or .pfm)')
    data = np.squeeze(_check_numeric(path, data, 'depth/disparity map'))
    if data.ndim != 2:
        raise DataError(f'{path}: expected a 2-D depth/disparity map, got shape {data.shape}')
    depth = data.astype(np.float32)
    if ext == '.png':
        depth /= np.float32(scale)
    invalid = ~np.isfinite(depth)
    if zero_is_invalid:
        invalid |= depth == 0
    if invalid.all():
        raise DataError(f'{path}: no valid pixel in the depth/disparity map (all '
                         f"{'0, ' if zero_is_invalid else ''}NaN or inf)")
    depth[invalid] = np.nan
    return depth


def write_depth_png(path, depth, scale, clip=False):
    """Write depth/disparity as a 16-bit PNG (``round(value * scale)``; NaN -> 0 = unknown).

    Values outside ``[0, 65535]`` at ``scale`` raise ``ValueError``, or with ``clip``
    are written as the nearest end (below 0 -> 0, i.e. unknown). Returns the number of
    (too low, too high) pixels clipped.
    """
    import imageio.v3 as iio
    depth = np.asarray(depth, np.float64)
    stored = np.nan_to_num(depth * scale, nan=0.0, posinf=0.0, neginf=0.0)
    too_low, too_high = int((stored < 0).sum()), int((stored > 65535).sum())
    if (too_low or too_high) and not clip:
        raise DataError(f'{path}: values out of the 16-bit range at scale {scale}')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    iio.imwrite(path, np.round(np.clip(stored, 0, 65535)).astype(np.uint16))
    return too_low, too_high


#: output formats by extension, per target kind
TARGET_FORMATS = {'flow': ('.flo', '.npy', '.pfm'), 'depth': ('.png', '.npy', '.pfm'),
                  'disparity': ('.png', '.npy', '.pfm')}


def write_target(path, target, kind, scale=1.0):
    """Write an ``(H, W, C)`` prediction in the format of ``path``'s extension.

    ``.png`` (depth/disparity): 16-bit ``value * scale``, out-of-range values clipped;
    ``.flo`` (flow): Middlebury; ``.npy``: the float32 array itself (``(H, W)`` for
    depth, ``(H, W, 2)`` for flow); ``.pfm``: float32 (flow: u, v in the first two
    planes). Float formats are never scaled or clipped, and every format round-trips
    through :func:`read_target`. Returns (too low, too high) clipped pixel counts.
    """
    ext = osp.splitext(path)[1].lower()
    if ext not in TARGET_FORMATS.get(kind, ()):
        raise DataError(f'{path}: cannot write {kind} as {ext or "no extension"!r} '
                         f'(use {", ".join(TARGET_FORMATS.get(kind, ()))})')
    target = np.asarray(target, np.float32)
    values = target if kind == 'flow' else target[..., 0]
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if ext == '.png':
        return write_depth_png(path, values, scale, clip=True)
    if ext == '.flo':
        write_flow(path, values)
    elif ext == '.npy':
        np.save(path, values)
    elif kind == 'flow':  # .pfm, three planes: u, v, 0
        write_pfm(path, np.concatenate([values, np.zeros_like(values[..., :1])], axis=2))
    else:
        write_pfm(path, values)
    return 0, 0


def read_target(path, kind, scale=1.0):
    """Read a depth/disparity (``(H, W, 1)``) or flow (``(H, W, 2)``) target; NaN = invalid."""
    if kind == 'flow':
        return read_flow(path)
    if kind in ('depth', 'disparity'):
        return read_depth(path, scale=scale)[..., None]
    raise ValueError(f'unknown target kind {kind!r} (expected depth, disparity or flow)')
