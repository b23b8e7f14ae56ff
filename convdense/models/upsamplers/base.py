"""mmengine model wrapper shared by every joint upsampler (learned or not).

The wrapped ``net`` maps a normalised low-res target and the high-res guide to
the normalised high-res target::

    net(low, guide) -> high
    low   (B, C, h, w)   target at 1/factor resolution, each channel scaled to [0, 1]
    guide (B, 3, H, W)   RGB in [0, 1]
    high  (B, C, H, W)   in the same normalised units as ``low``

Normalisation follows the reference protocol: each target channel is scaled by
its own low-res input's min/max, so the network sees the same range for a
room 2 m deep and one 8 m deep, and the prediction is mapped back for the metric.

Unknown low-res pixels (sensor holes) arrive as a validity mask ``low_valid``
``(B, 1, h, w)`` (True = known). They are always filled from the nearest known
pixel before anything else, so the normalisation spans known pixels only and a
hole's value (0, NaN, 1e4) never reaches a net; with ``low_mask=True`` the net
also gets the mask (``net(low, guide, mask)``) and treats holes as unknown.
"""
import torch
from mmengine.model import BaseModel

from ...ops.holes import fill_nearest
from ...registry import MODELS, build_model

_EPS = 1e-6


def low_res_range(low):
    """Per-sample, per-channel (min, span) of ``low`` ``(B, C, h, w)``, each ``(B, C, 1, 1)``.

    A constant channel has no span; it gets span 1 so it maps to 0 and back unchanged.
    """
    lo_min = low.amin(dim=(2, 3), keepdim=True)
    span = low.amax(dim=(2, 3), keepdim=True) - lo_min
    return lo_min, torch.where(span > _EPS, span, torch.ones_like(span))


def _valid_range(values, valid):
    """Per-sample, per-channel max - min of ``values`` ``(B, C, H, W)`` over ``valid``
    (0 where a sample has no valid pixel), ``(B, C, 1, 1)``."""
    known = valid.bool()
    high = torch.where(known, values, torch.full_like(values, -torch.inf)).amax(dim=(2, 3), keepdim=True)
    low = torch.where(known, values, torch.full_like(values, torch.inf)).amin(dim=(2, 3), keepdim=True)
    return torch.where(torch.isfinite(high - low), high - low, torch.zeros_like(high))


def check_factor(factor):
    """``factor`` if it is an int >= 1, else a ``ValueError``."""
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f'factor must be a positive int, got {factor!r}')
    return factor


def check_channels(channels):
    if channels is not None and (isinstance(channels, bool) or not isinstance(channels, int)
                                 or channels < 1):
        raise ValueError(f'channels must be None or a positive int, got {channels!r}')
    return channels


def check_inputs(low, guide, factor, channels=None, mask=None):
    """One-line ``ValueError``/``TypeError`` unless ``low`` (B, C, h, w) and
    ``guide`` (B, 3, factor*h, factor*w) are non-empty floating tensors that fit,
    and ``mask`` is None or (B, 1, h, w)."""
    for name, tensor in (('low', low), ('guide', guide)):
        if not torch.is_tensor(tensor) or tensor.dim() != 4:
            got = tuple(tensor.shape) if torch.is_tensor(tensor) else type(tensor).__name__
            raise ValueError(f'{name}: expected a 4-D tensor (B, C, H, W), got {got}')
        if not tensor.is_floating_point():
            raise TypeError(f'{name}: expected a floating-point tensor, got {tensor.dtype}')
    if low.numel() == 0:
        raise ValueError(f'low: empty input of shape {tuple(low.shape)}')
    if guide.shape[1] != 3 or guide.shape[0] != low.shape[0]:
        raise ValueError(f'guide must be (B, 3, H, W) with the batch of low {tuple(low.shape)}, '
                         f'got {tuple(guide.shape)}')
    if channels is not None and low.shape[1] != channels:
        raise ValueError(f'low has {low.shape[1]} channels, this net was built for {channels}')
    expected = (low.shape[2] * factor, low.shape[3] * factor)
    if tuple(guide.shape[2:]) != expected:
        raise ValueError(f'guide is {guide.shape[2]}x{guide.shape[3]} but low-res input '
                         f'{low.shape[2]}x{low.shape[3]} x{factor} needs {expected[0]}x{expected[1]}')
    mask_shape = (low.shape[0], 1) + tuple(low.shape[2:])
    if mask is not None and (not torch.is_tensor(mask) or tuple(mask.shape) != mask_shape):
        got = tuple(mask.shape) if torch.is_tensor(mask) else type(mask).__name__
        raise ValueError(f'mask: expected shape {mask_shape} (the known low-res pixels), got {got}')


@MODELS.register_module()
class JointUpsampler(BaseModel):
    """Trains and runs a joint-upsampling ``net`` with mmengine's Runner.

    ``forward(inputs, data_samples, mode)``:
        inputs: ``dict(guide=(B, 3, H, W), low=(B, C, h, w))``, optionally
            ``low_valid=(B, 1, h, w)`` bool (False = unknown low-res pixel)
        data_samples: ``dict(gt=(B, C, H, W), valid=(B, 1, H, W) bool, name=[...], kind=[...])``
        mode ``'loss'``: ``dict(loss=...)``, the mean squared error on normalised
            targets over valid pixels only;
        mode ``'predict'``: list of per-sample dicts with ``pred`` (de-normalised),
            ``gt``, ``valid``, ``low``, ``guide``, ``name``, ``kind`` for the metrics;
        mode ``'tensor'``: the de-normalised prediction ``(B, C, H, W)``.

    Args:
        net: config of the network (``PacJointUpsample``, ``DJF``, ``Bicubic``, ``JBU``...).
        values_scale_with_resolution: the target is a displacement in pixels
            (optical flow): the low-res input is in low-res pixels, so the
            prediction is multiplied by ``factor`` to be in high-res pixels.
        low_mask: hand the net the low-res validity mask, so that it treats
            unknown pixels as unknown (normalised convolution, masked JBU and
            interpolation weights). Off, the net sees holes filled from the
            nearest known pixel and nothing else, as before masks existed.
        loss_span: ``'input'`` (the reference protocol): the loss compares targets
            normalised by the low-res input's range. ``'input_or_target'``: per sample
            and channel, by the larger of that range and the ground truth's, so a crop
            whose holes hide one side of an edge (input range near zero, ground truth
            spanning the edge) cannot weigh hundreds of times more than the rest of its
            batch. The loss only: inference is the same under both.
    """

    LOSS_SPANS = ('input', 'input_or_target')

    def __init__(self, net, values_scale_with_resolution=False, low_mask=False, loss_span='input',
                 data_preprocessor=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.net = build_model(net) if isinstance(net, dict) else net
        self.factor = self.net.factor
        self.values_scale_with_resolution = values_scale_with_resolution
        self.value_scale = float(self.factor) if values_scale_with_resolution else 1.0
        self.low_mask = bool(low_mask)
        if loss_span not in self.LOSS_SPANS:
            raise ValueError(f'loss_span must be one of {self.LOSS_SPANS}, got {loss_span!r}')
        self.loss_span = loss_span

    def upsample(self, low, guide, low_valid=None):
        """De-normalised upsampling: ``low`` ``(B, C, h, w)`` in target units -> ``(B, C, H, W)``;
        ``low_valid`` ``(B, 1, h, w)`` bool marks known pixels (None: all known)."""
        self._check_shapes(low, guide)
        low, low_valid = self._fill_holes(low, guide, low_valid)
        lo_min, span = low_res_range(low)
        return (self._net((low - lo_min) / span, guide, low_valid) * span + lo_min) * self.value_scale

    def _fill_holes(self, low, guide, low_valid):
        """``low`` with unknown pixels filled from the nearest known one, and the mask
        (None when every pixel is known)."""
        if low_valid is None:
            return low, None
        check_inputs(low, guide, self.factor, mask=low_valid)
        low_valid = low_valid.bool()
        if bool(low_valid.all()):
            return low, None
        return fill_nearest(low, low_valid), low_valid

    def _net(self, low, guide, low_valid):
        if self.low_mask and low_valid is not None:
            return self.net(low, guide, low_valid)
        return self.net(low, guide)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        guide, low = inputs['guide'], inputs['low']
        self._check_shapes(low, guide)
        low_valid = inputs.get('low_valid')
        low, holes = self._fill_holes(low, guide, low_valid)
        lo_min, span = low_res_range(low)
        pred_norm = self._net((low - lo_min) / span, guide, holes)
        if mode == 'loss':
            if data_samples is None:
                raise ValueError("mode='loss' needs data_samples with gt and valid")
            gt_norm = (data_samples['gt'] / self.value_scale - lo_min) / span
            valid = data_samples['valid'].to(pred_norm.dtype).expand_as(pred_norm)
            if not valid.any():
                raise ValueError('batch has no valid ground-truth pixel')
            diff = pred_norm - gt_norm
            if self.loss_span == 'input_or_target':
                diff = diff * (span / torch.maximum(span, _valid_range(gt_norm * span, valid)))
            loss = (diff.pow(2) * valid).sum() / valid.sum()
            return dict(loss=loss)
        pred = (pred_norm * span + lo_min) * self.value_scale
        if mode == 'tensor':
            return pred
        if mode == 'predict':
            samples = data_samples or {}
            outputs = []
            for i in range(pred.shape[0]):
                out = dict(pred=pred[i].detach(), low=low[i], guide=guide[i], factor=self.factor)
                if low_valid is not None:
                    out['low_valid'] = low_valid[i].bool()
                for key in ('gt', 'valid'):
                    if key in samples:
                        out[key] = samples[key][i]
                for key in ('name', 'kind'):
                    if key in samples:
                        out[key] = samples[key][i]
                outputs.append(out)
            return outputs
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def _check_shapes(self, low, guide):
        check_inputs(low, guide, self.factor)
