"""Upstream Mask R-CNN and UPerNet configs, inherited by ours, trained through
tools/train.py on tiny generated datasets in the real upstream layouts,
checkpointed, resumed, and evaluated by tools/test.py with mmdet's CocoMetric /
mmseg's IoUMetric."""
import glob
import math
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint

from tests.helpers import e2e

REPO = e2e.REPO
pytestmark = pytest.mark.slow


def test_mask_rcnn_train_checkpoint_resume_test(tmp_path):
    run = e2e.train_and_test(osp.join(REPO, 'configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'),
                             str(tmp_path), kind='det', iters=3)
    metrics = run['metrics']
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        assert key in metrics, sorted(metrics)
        assert 0.0 <= metrics[key] <= 1.0
    assert len(run['losses']) == 3 and all(math.isfinite(loss) for loss in run['losses'])

    # resume: the same run continues from iteration 3 to 5, with optimizer state
    train_tool = e2e.load_tool('train')
    train_tool.main([run['config'], '--work-dir', str(tmp_path), '--resume',
                     '--cfg-options', 'train_cfg.max_iters=5', 'default_hooks.checkpoint.interval=1'])
    assert osp.isfile(tmp_path / 'iter_5.pth') and not osp.isfile(tmp_path / 'iter_1.pth')
    resumed = _load_checkpoint(str(tmp_path / 'iter_5.pth'), map_location='cpu')
    assert resumed['meta']['iter'] == 5
    assert 'optimizer' in resumed and resumed['optimizer']['state']
    assert len(e2e.read_losses(str(tmp_path))) == 3 + 2


def test_upernet_train_checkpoint_test(tmp_path):
    run = e2e.train_and_test(osp.join(REPO, 'configs/segmentation/upernet_r50_ade20k.py'),
                             str(tmp_path), kind='seg', iters=3)
    metrics = run['metrics']
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert key in metrics, sorted(metrics)
        assert 0.0 <= metrics[key] <= 100.0
    trained = _load_checkpoint(run['checkpoint'], map_location='cpu')['state_dict']
    assert any(key.startswith('backbone.') for key in trained)


def test_checkpoint_is_the_trained_model(tmp_path):
    """tools/test.py evaluates the weights it was given, not a fresh init."""
    run = e2e.train_and_test(osp.join(REPO, 'configs/segmentation/upernet_r50_ade20k.py'),
                             str(tmp_path), kind='seg', iters=2)
    state = _load_checkpoint(run['checkpoint'], map_location='cpu')['state_dict']
    state = {k: v * 0 if v.is_floating_point() else v for k, v in state.items()}
    zeroed = tmp_path / 'zeroed.pth'
    torch.save(dict(state_dict=state, meta=dict()), zeroed)
    test_tool = e2e.load_tool('test')
    metrics = test_tool.main([run['config'], str(zeroed), '--work-dir', str(tmp_path / 'z'),
                              '--show-dir', str(tmp_path / 'shown')])
    shown = glob.glob(str(tmp_path / 'shown' / '**' / '*.png'), recursive=True)
    assert len(shown) == 2, shown  # one visualised prediction per validation image
    # an all-zero network predicts one class everywhere: accuracy is that class's share
    assert metrics['mIoU'] < 100.0 / 3 + 1e-6


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU/gloo path')
def test_two_process_gloo_training_with_torchrun(tmp_path):
    data_root = e2e.make_tiny_coco(str(tmp_path / 'data'))
    cfg = e2e.shrink_config(osp.join(REPO, 'configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'),
                            data_root, 'det', iters=2)
    cfg.train_dataloader.batch_size = 1
    config = tmp_path / 'tiny.py'
    cfg.dump(str(config))
    env = dict(os.environ, PORT=str(_free_port()), OMP_NUM_THREADS='1')
    result = subprocess.run(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir',
                             str(tmp_path / 'work')], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'world_size: 2' in log or "'world_size': 2" in log or 'Distributed launcher: pytorch' in log
    assert osp.isfile(tmp_path / 'work' / 'iter_2.pth')
