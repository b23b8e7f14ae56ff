"""Stop a run whose training loss stops being finite, with one line saying so."""
import torch
from mmengine.hooks import Hook

from ..registry import HOOKS


@HOOKS.register_module()
class StopOnNonFiniteLoss(Hook):
    """Raise as soon as the training loss is NaN or infinite, instead of training on
    (every later step is NaN and the best-on-val checkpoint silently stays an early
    one). mmdet's ``CheckInvalidLossHook`` does the check, but asserts with an empty
    message; this one names the iteration and where the saved checkpoints are."""

    priority = 'VERY_LOW'  # after the optimizer step, beside the logger

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        loss = (outputs or {}).get('loss')
        if loss is not None and not torch.isfinite(torch.as_tensor(loss)).all():
            raise RuntimeError(f'training loss is {float(loss)} at iteration {runner.iter + 1}: the run '
                               'diverged (lower the learning rate or clip gradients); checkpoints saved '
                               f'so far are in {runner.work_dir}')
