"""Configs inheriting upstream Mask R-CNN, Semantic FPN and UPerNet, trained through
tools/train.py, checkpointed, resumed, and evaluated by tools/test.py with mmdet's
CocoMetric / mmseg's IoUMetric: over-fit runs on real digit scenes must learn
them, and the evaluated weights must be the checkpoint's."""
import glob
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


# Over-fit runs: a few digit scenes, trained and evaluated on themselves. A model
# that learns nothing scores ~0 there; the thresholds are the goals.
# bbox AP measured on these two scenes: R-50 0.631 after 60 steps, HetConv 0.511 after 80
DET_ITERS = {'r50': 60, 'hetconv-resnet-50': 100}
SEG_ITERS = 60
OPTIMIZER = dict(type='AdamW', lr=1e-3, weight_decay=1e-4)  # SGD 0.02: all background after 40


@pytest.fixture(scope='module')
def digit_scenes(tmp_path_factory):
    return e2e.make_digit_scenes(tmp_path_factory.mktemp('digits'), scenes=(2, 1, 1))


@pytest.mark.parametrize('backbone', list(DET_ITERS))
def test_mask_rcnn_overfits_digit_scenes(tmp_path, digit_scenes, backbone):
    """Mask R-CNN learns the scenes it trains on: bbox AP >= 0.5 there (COCO AP,
    IoU 0.50:0.95), through tools/train.py and tools/test.py."""
    iters = DET_ITERS[backbone]
    cfg = e2e.overfit_digit_config('det', backbone, digit_scenes, iters, OPTIMIZER)
    run = e2e.train_and_test_config(cfg, str(tmp_path), iters)
    metrics = run['metrics']
    assert metrics['coco/bbox_mAP'] >= 0.5, metrics
    assert metrics['coco/segm_mAP'] > 0.1, metrics
    if backbone != 'r50':
        return
    # resume: the same run continues from its last iteration, with optimizer state
    train_tool = e2e.load_tool('train')
    train_tool.main([run['config'], '--work-dir', str(tmp_path), '--resume', '--cfg-options',
                     f'train_cfg.max_iters={iters + 1}', 'default_hooks.checkpoint.interval=1',
                     'default_hooks.logger.interval=1'])
    resumed = _load_checkpoint(str(tmp_path / f'iter_{iters + 1}.pth'), map_location='cpu')
    assert resumed['meta']['iter'] == iters + 1
    assert 'optimizer' in resumed and resumed['optimizer']['state']
    assert len(e2e.read_losses(str(tmp_path))) == len(run['losses']) + 1


def test_trained_segmentation_checkpoint_beats_a_fresh_model(tmp_path, digit_scenes):
    """tools/test.py scores the weights it is given: the over-fit checkpoint is far
    above a freshly initialised model of the same config on the same scenes."""
    from mmengine.registry import MODELS, init_default_scope
    cfg = e2e.overfit_digit_config('seg', 'r50', digit_scenes, SEG_ITERS, OPTIMIZER)
    run = e2e.train_and_test_config(cfg, str(tmp_path), SEG_ITERS)
    init_default_scope('mmseg')
    fresh = MODELS.build(cfg.model)
    fresh.init_weights()
    fresh_checkpoint = tmp_path / 'fresh.pth'
    torch.save(dict(state_dict=fresh.state_dict(), meta=dict()), fresh_checkpoint)
    test_tool = e2e.load_tool('test')
    fresh_metrics = test_tool.main([run['config'], str(fresh_checkpoint), '--work-dir',
                                    str(tmp_path / 'fresh'), '--show-dir', str(tmp_path / 'shown')])
    shown = glob.glob(str(tmp_path / 'shown' / '**' / '*.png'), recursive=True)
    assert len(shown) == 2, shown  # one visualised prediction per evaluated scene
    # 60 AdamW steps on these scenes measured 47.5 % mIoU; a model that predicts one
    # class everywhere scores at most 100/11 = 9.1 %
    assert run['metrics']['mIoU'] >= 35.0, run['metrics']
    assert run['metrics']['mIoU'] >= fresh_metrics['mIoU'] + 25.0, (run['metrics'], fresh_metrics)


def test_upernet_ade_layout_train_checkpoint_test(tmp_path):
    """The upstream UPerNet config (ADE20K layout) trains, checkpoints and is scored."""
    run = e2e.train_and_test(osp.join(REPO, 'configs/segmentation/upernet_r50_ade20k.py'),
                             str(tmp_path), kind='seg', iters=2)
    metrics = run['metrics']
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert key in metrics, sorted(metrics)
    trained = _load_checkpoint(run['checkpoint'], map_location='cpu')['state_dict']
    assert any(key.startswith('backbone.') for key in trained)


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
