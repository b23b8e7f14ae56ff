"""A joint-upsampling run whose loss turns NaN stops at once, with one line naming the
iteration, instead of training on NaN."""
import glob
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config

from convdense.engine import StopOnNonFiniteLoss

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.parametrize('loss', [float('nan'), float('inf')])
def test_a_non_finite_loss_stops_the_run_with_its_iteration(loss):
    runner = SimpleNamespace(iter=827, work_dir='work_dirs/run')
    hook = StopOnNonFiniteLoss()
    hook.after_train_iter(runner, 0, outputs=dict(loss=torch.tensor(0.25)))  # finite: nothing
    with pytest.raises(RuntimeError, match=r'^training loss is (nan|inf) at iteration 828: the run diverged.*'
                                           r'work_dirs/run$'):
        hook.after_train_iter(runner, 0, outputs=dict(loss=torch.tensor(loss)))


def test_every_joint_upsampling_config_has_the_hook():
    configs = sorted(glob.glob(osp.join(REPO, 'configs', 'joint_upsampling', '*.py')))
    assert configs
    for path in configs:
        assert Config.fromfile(path).default_hooks.finite_loss.type == 'StopOnNonFiniteLoss', path
