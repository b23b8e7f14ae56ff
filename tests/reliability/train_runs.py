"""Running ``tools/train.py`` / ``tools/dist_train.sh`` in child processes for the
reliability tests: tiny deterministic configs, kills at chosen points
(:mod:`tests.reliability.kill_points`), and reading back what a run did.
"""
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys

import torch

from tests.helpers.e2e import REPO, make_tiny_coco, shrink_config

PAC_FLOW = osp.join(REPO, 'configs/joint_upsampling/pacjointupsample_lite_x4_flow_demo.py')
MASK_RCNN = osp.join(REPO, 'configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')
INSTRUMENTATION = 'tests.reliability.kill_points'


def _deterministic(cfg, iters, checkpoint_interval):
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                        interval=checkpoint_interval, max_keep_ckpts=1)
    cfg.randomness = dict(seed=0, deterministic=True)
    imports = list(cfg.get('custom_imports', {}).get('imports', []))
    cfg.custom_imports = dict(imports=[*dict.fromkeys(imports + ['convdense', INSTRUMENTATION])],
                              allow_failed_imports=False)
    return cfg


def pac_flow_config(path, iters=6, checkpoint_interval=2, batch_size=2, crop_size=32,
                    random_crops=True):
    """The PAC (lite) x4 flow config on the bundled frames, seconds long. BN-free.

    ``random_crops=False``: a fixed 64x64 region and no flips, so a sample's
    content does not depend on which process draws it.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(PAC_FLOW)
    loader = cfg.train_dataloader
    loader.batch_size = batch_size
    loader.dataset.data_root = osp.join(REPO, 'data/flow')
    if random_crops:
        for transform in loader.dataset.pipeline:
            if transform['type'] == 'RandomJointCrop':
                transform['crop_size'] = crop_size
    else:
        loader.dataset.pipeline = [t for t in loader.dataset.pipeline
                                   if t['type'] not in ('RandomJointCrop', 'RandomJointFlip')]
        loader.dataset.region_frac = (0.0, 0.0, 64 / 194, 64 / 292)  # 64x64 of 292x194 frames
    cfg.val_dataloader.dataset.data_root = loader.dataset.data_root
    cfg.test_dataloader = cfg.val_dataloader
    cfg.param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[iters // 2 + 1],
                                gamma=0.1)]  # a step after the resume point: the LR schedule is checked
    cfg.custom_hooks = []
    _deterministic(cfg, iters, checkpoint_interval)
    cfg.dump(path)
    return path


def mask_rcnn_config(path, data_root, iters=4, checkpoint_interval=2):
    """Mask R-CNN R-50-FPN on tiny COCO-format data (``shrink_config``), deterministic."""
    make_tiny_coco(data_root)
    cfg = shrink_config(MASK_RCNN, data_root, 'det', iters=iters)
    _deterministic(cfg, iters, checkpoint_interval)
    cfg.dump(path)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def child_env(record=None, kill_at=None, threads=1):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get('PYTHONPATH')])),
               OMP_NUM_THREADS=str(threads), PORT=str(free_port()))
    env.pop('CONVDENSE_TEST_KILL_AT', None)
    if record:
        env['CONVDENSE_TEST_RECORD'] = str(record)
    if kill_at:
        env['CONVDENSE_TEST_KILL_AT'] = kill_at
    return env


def train(config, work_dir, *extra, record=None, timeout=600):
    """Run ``tools/train.py`` to completion; returns the CompletedProcess (asserts success)."""
    result = subprocess.run([sys.executable, 'tools/train.py', config, '--work-dir', str(work_dir),
                             *extra], cwd=REPO, env=child_env(record), capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result


def train_until_killed(config, work_dir, kill_at, *extra, record=None, timeout=600):
    """Run ``tools/train.py`` until it reaches ``kill_at`` (see kill_points), then SIGKILL it."""
    log = open(osp.join(str(work_dir) + '.stdout'), 'w')
    process = subprocess.Popen([sys.executable, 'tools/train.py', config, '--work-dir',
                                str(work_dir), *extra], cwd=REPO,
                               env=child_env(record, kill_at), stdout=log,
                               stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in process.stderr:
            seen.append(line)
            if line.startswith('KILL POINT'):
                process.send_signal(signal.SIGKILL)
                break
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert process.returncode == -signal.SIGKILL, ''.join(seen)[-4000:]


def read_record(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def load_checkpoint(path):
    import convdense  # noqa: F401  (the safe loader's allow-list)
    from mmengine.runner.checkpoint import _load_checkpoint
    return _load_checkpoint(str(path), map_location='cpu')


def tensors_of(node, prefix=''):
    """Flatten a (nested) state dict to ``{dotted key: tensor}``."""
    if isinstance(node, torch.Tensor):
        return {prefix: node}
    items = node.items() if isinstance(node, dict) else \
        enumerate(node) if isinstance(node, (list, tuple)) else ()
    flat = {}
    for key, value in items:
        flat.update(tensors_of(value, f'{prefix}.{key}' if prefix else str(key)))
    return flat


def max_difference(first, second):
    """Largest absolute difference between two nested state dicts with the same keys."""
    first, second = tensors_of(first), tensors_of(second)
    assert first.keys() == second.keys(), set(first) ^ set(second)
    return max(((a.double() - b.double()).abs().max().item() if a.numel() else 0.0)
               for a, b in zip(first.values(), (second[k] for k in first)))
