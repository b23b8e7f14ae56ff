"""Evaluate in deploy mode: the model is deployed after its checkpoint is loaded."""
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from ..registry import HOOKS


@HOOKS.register_module()
class DeployHook(Hook):
    """Call :func:`convdense.deploy.switch_to_deploy` on the model at ``before_test``,
    which mmengine's ``Runner.test`` runs after loading ``load_from``, so the
    checkpoint (of the training form) loads first and the test loop then runs the
    deployed model."""

    priority = 'VERY_HIGH'

    def before_test(self, runner):
        from convdense.deploy import is_deployed, switch_to_deploy
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        switch_to_deploy(model)
        print_log(f'deploy mode: {type(model).__name__} re-parameterised'
                  + ('' if is_deployed(model) else ' (no convdense layer: norms folded only)'),
                  logger='current')
