"""Runner hooks for joint upsampling."""
import os.path as osp

import torch
from mmengine.hooks import Hook

from ..registry import HOOKS

_UNITS = dict(depth='m', disparity='px', flow='px')


@HOOKS.register_module()
class JointUpsamplingPanelHook(Hook):
    """Writes comparison panels (guide, low-res, bicubic, JBU, model, GT, error) while testing.

    One PNG per sample, for the first ``max_panels`` test samples, in
    ``<work_dir>/panels/``. The baselines are run here so the panel compares
    methods on exactly the input the model saw.
    """

    def __init__(self, max_panels=4, on_val=False):
        self.max_panels = max_panels
        self.on_val = on_val
        self._written = 0

    def before_test(self, runner):
        self._written = 0

    def before_val(self, runner):
        self._written = 0

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.on_val:
            self._write(runner, outputs)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._write(runner, outputs)

    def _write(self, runner, outputs):
        from ..models.upsamplers.base import JointUpsampler
        from ..models.upsamplers.classic import JBU, Bicubic
        from ..visualization import make_panel
        for sample in outputs or []:
            if self._written >= self.max_panels or 'gt' not in sample:
                return
            factor = sample['factor']
            low, guide = sample['low'][None].cpu(), sample['guide'][None].cpu()
            model = getattr(runner.model, 'module', runner.model)
            rescale, low_mask = model.values_scale_with_resolution, getattr(model, 'low_mask', False)
            low_valid = sample['low_valid'][None].cpu() if 'low_valid' in sample else None
            predictions = {}
            with torch.no_grad():  # the baselines get the low-res mask when the model does
                for name, net in (('bicubic', Bicubic), ('JBU', JBU)):
                    baseline = JointUpsampler(net(factor), rescale, low_mask=low_mask)
                    predictions[name] = baseline.upsample(low, guide, low_valid)[0]
            predictions[type(model.net).__name__] = sample['pred'].cpu()
            name = str(sample.get('name') or self._written).replace('/', '_')
            kind = sample.get('kind', 'depth')
            shown_low = sample['low'].cpu()
            if low_mask and low_valid is not None and kind != 'flow':  # show the holes the model was told of
                shown_low = torch.where(low_valid[0], shown_low, torch.tensor(float('nan')))
            make_panel(osp.join(runner.work_dir, 'panels', f'{name}.png'), sample['guide'], shown_low,
                       predictions, sample['gt'], sample['valid'], kind=kind, unit=_UNITS.get(kind, ''),
                       title=f'{name} x{factor}', low_value_scale=model.value_scale)
            self._written += 1
