"""Unknown pixels (holes) in a low-resolution input: nearest-valid filling and
interpolation whose weights skip the holes.

Both keep a hole's value out of the result: whatever a hole holds (0, NaN, 1e4),
only known samples are read.
"""
import numpy as np
import torch
import torch.nn.functional as F

#: a pixel whose known taps carry less than this share of the interpolation weight
#: takes the nearest known sample instead (renormalising a few small or negative-lobe
#: weights would extrapolate).
MIN_KNOWN_WEIGHT = 0.1


def nearest_valid_index(invalid):
    """For ``invalid`` ``(h, w)`` bool, the (rows, cols) of each pixel's nearest valid pixel."""
    from scipy import ndimage
    if invalid.all():
        raise ValueError('low-resolution input has no valid pixel')
    _, (rows, cols) = ndimage.distance_transform_edt(invalid, return_indices=True)
    return rows, cols


def fill_nearest(input, mask):
    """``input`` ``(B, C, h, w)`` with each unknown pixel (``mask`` ``(B, 1, h, w)`` False)
    replaced by its nearest known pixel's value (differentiable in the known values)."""
    known = mask.bool()
    if bool(known.all()):
        return input
    batch, channels, height, width = input.shape
    flat = input.reshape(batch, channels, height * width)
    filled = []
    for i in range(batch):
        invalid = ~known[i, 0].cpu().numpy()
        if not invalid.any():
            filled.append(flat[i])
            continue
        rows, cols = nearest_valid_index(invalid)
        index = torch.from_numpy((rows * width + cols).reshape(-1)).to(input.device)
        filled.append(flat[i][:, index])
    return torch.stack(filled).reshape(input.shape)


def _interpolation_matrix(size_in, size_out, mode, dtype, device):
    """``(size_out, size_in)`` weights of 1-D ``F.interpolate`` (align_corners=False)."""
    eye = torch.eye(size_in, dtype=dtype, device=device)[:, None, :, None]  # each basis vector
    rows = F.interpolate(eye, size=(size_out, 1), mode=mode, align_corners=False)
    return rows[:, 0, :, 0].t()


def masked_interpolate(input, mask, size, mode='bicubic'):
    """``F.interpolate`` (align_corners=False) whose weights skip unknown samples.

    Where every tap of an output pixel is known, the output is the plain
    interpolation of ``input`` bit for bit. Elsewhere the known taps' weights are
    renormalised to sum to 1; if they carry less than :data:`MIN_KNOWN_WEIGHT` of the
    weight (e.g. every tap unknown), the pixel takes the nearest known sample.

    Args:
        input: ``(B, C, h, w)``; mask: ``(B, 1, h, w)`` True = known; size: (H, W).
    Returns:
        ``(out (B, C, H, W), known (B, 1, H, W) bool)``: ``known`` is False where the
        nearest known sample was used.
    """
    if mode not in ('bicubic', 'bilinear'):
        raise ValueError(f"mode must be 'bicubic' or 'bilinear', got {mode!r}")
    filled = fill_nearest(input, mask)
    plain = F.interpolate(filled, size=size, mode=mode, align_corners=False)
    known = mask.bool()
    full = torch.ones_like(plain[:, :1], dtype=torch.bool)
    if bool(known.all()):
        return plain, full
    dtype = torch.float64
    rows = _interpolation_matrix(input.shape[2], size[0], mode, dtype, input.device)
    cols = _interpolation_matrix(input.shape[3], size[1], mode, dtype, input.device)

    def apply(matrix_y, image, matrix_x):
        return torch.einsum('yh,bchw,xw->bcyx', matrix_y, image, matrix_x)

    weight = known.to(dtype)
    values = torch.where(known, filled, torch.zeros((), dtype=filled.dtype, device=filled.device)).to(dtype)
    numerator = apply(rows, values, cols)
    denominator = apply(rows, weight, cols)
    touches_hole = apply(rows.abs(), 1 - weight, cols.abs()) > 0
    usable = denominator >= MIN_KNOWN_WEIGHT
    renormalised = (numerator / torch.where(usable, denominator, torch.ones_like(denominator))).to(input.dtype)
    nearest = F.interpolate(filled, size=size, mode='nearest')
    out = torch.where(touches_hole, torch.where(usable, renormalised, nearest), plain)
    return out, full & ~(touches_hole & ~usable)
