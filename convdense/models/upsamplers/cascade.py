"""A chain of joint upsamplers whose factors multiply to the total (e.g. x4 then x4 = x16).

Why: a single-stage net at a large factor can cost far more than the same design at a
small one (PAC lite's learnable JBU base has a (2f+1)^2 window: 1089 taps per output
pixel at x16 against 81 at x4), so a trained small-factor net applied twice gives a
large-factor model with no training at that factor.
"""
import math

import torch.nn as nn
import torch.nn.functional as F

from ...registry import MODELS, build_model
from .base import check_factor, check_inputs, low_res_range


def protocol_shift(factors):
    """High-res pixels by which the chain misplaces the low-res samples, against the
    single-stage protocol at the product factor.

    A stage at factor f puts its input pixel j at output ``f*j + (f-1)//2`` (where the
    DJF/PAC protocol samples the low-res map); chained, pixel j lands at
    ``F*j + sum_i (f_i-1)//2 * prod_{k>i} f_k`` instead of ``F*j + (F-1)//2``.
    x4 then x4: 16j + 5 instead of 16j + 7, a shift of 2.
    """
    total, offset = 1, 0
    for factor in factors:
        total *= factor
        offset = offset * factor + (factor - 1) // 2
    return (total - 1) // 2 - offset


def _shift(image, shift):
    """``(B, C, H, W)`` moved by ``shift`` pixels down and right (negative: up and left),
    the edge rows/columns repeated into the gap."""
    if shift == 0:
        return image
    height, width = image.shape[2:]
    if shift > 0:
        return F.pad(image[:, :, :height - shift, :width - shift], (shift, 0, shift, 0), mode='replicate')
    return F.pad(image[:, :, -shift:, -shift:], (0, -shift, 0, -shift), mode='replicate')


@MODELS.register_module()
class JointUpsampleCascade(nn.Module):
    """``forward(low (B, C, h, w), guide (B, 3, H, W), mask=None) -> (B, C, H, W)``, H = factor * h.

    Stage i (a joint-upsampling net config with its own ``factor`` f_i) upsamples the
    previous output ``(B, C, h * f_1 ... f_{i-1}, ...)`` by f_i, guided by ``guide``
    area-resized to its output size ``(B, 3, h * f_1 ... f_i, ...)``; the last stage sees
    the full guide. Everything is in the normalised units of :class:`JointUpsampler`
    (``low`` scaled to [0, 1] by its own range): each stage after the first rescales
    its input by that input's own min/max and maps its output back, as the wrapper does
    for a single net, so every stage sees what it was trained on. A flow's value scale
    (x factor) needs nothing here: the rescaling absorbs each stage's, and the wrapper
    applies the total. ``mask`` ``(B, 1, h, w)`` (True = known, sensor holes) goes to
    the first stage only; later stages' inputs are all known.

    Args:
        stages: net configs (or modules), each with a ``factor``; applied in order.
        factor: the total; must be the product of the stages' factors.
        align: undo the chain's misplacement of the low-res samples
            (:func:`protocol_shift`) by shifting the guide in and the output back by
            that many high-res pixels (edges replicated), so the samples sit where the
            protocol took them at ``factor``. A single stage never shifts.
    """

    def __init__(self, stages, factor, align=True):
        super().__init__()
        factor = check_factor(factor)
        if not stages:
            raise ValueError('stages: give at least one joint-upsampling net')
        self.stages = nn.ModuleList(build_model(stage) if isinstance(stage, dict) else stage for stage in stages)
        factors = [stage.factor for stage in self.stages]
        product = math.prod(factors)
        if product != factor:
            raise ValueError(f"stage factors {' x '.join(map(str, factors))} = {product}, not the cascade's "
                             f'factor {factor}')
        self.factor = factor
        self.stage_factors = factors
        self.shift = protocol_shift(factors) if align else 0

    def forward(self, low, guide, mask=None):
        check_inputs(low, guide, self.factor, mask=mask)
        guide = _shift(guide, -self.shift)
        out, remaining = low, self.factor
        for i, stage in enumerate(self.stages):
            remaining //= stage.factor
            stage_guide = F.avg_pool2d(guide, remaining) if remaining > 1 else guide
            if i == 0:
                out = stage(out, stage_guide) if mask is None else stage(out, stage_guide, mask)
            else:
                lo_min, span = low_res_range(out)
                out = stage((out - lo_min) / span, stage_guide) * span + lo_min
        return _shift(out, self.shift)
