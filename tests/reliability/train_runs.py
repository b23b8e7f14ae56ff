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
import time

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
    # a LR step after the resume point, so the resumed schedule is checked
    cfg.param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[iters // 2 + 1],
                                gamma=0.1)]
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
    path = os.pathsep.join(filter(None, [REPO, os.environ.get('PYTHONPATH')]))
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS=str(threads), PORT=str(free_port()))
    env.pop('CONVDENSE_TEST_KILL_AT', None)
    if record:
        env['CONVDENSE_TEST_RECORD'] = str(record)
    if kill_at:
        env['CONVDENSE_TEST_KILL_AT'] = kill_at
    return env


#: Runs in the launcher process: import the heavy stack once, then fork one child
#: per request (a JSON line: argv, env, log path) that runs ``tools/train.py``'s main.
_LAUNCHER = r"""
import json, os, sys
sys.path.insert(0, os.getcwd())
import torch, mmengine.runner, mmdet.datasets, mmdet.models, convdense.models, convdense.datasets
from tests.helpers.e2e import load_tool
train = load_tool('train')
for line in sys.stdin:
    request = json.loads(line)
    if request['op'] == 'wait':
        _, status = os.waitpid(request['pid'], 0)
        print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
        continue
    sys.stdout.flush()
    pid = os.fork()
    if pid:
        print(json.dumps(pid), flush=True)
        continue
    os.environ.clear()
    os.environ.update(request['env'])
    log = os.open(request['log'], os.O_WRONLY | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    code = 0
    try:
        train.main(request['argv'])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
"""


class Launcher:
    """Starts ``tools/train.py`` runs as forks of one process that has imported
    torch, mmengine, mmdet and convdense already: a run then costs its own work,
    not ~7 s of CPU for imports. Each run is still its own process with its own
    environment, killed with a real SIGKILL; nothing is computed before the fork,
    so no thread pool is inherited."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, '-c', _LAUNCHER], cwd=REPO,
                                        env=child_env(), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)

    def _ask(self, **request):
        self.process.stdin.write(json.dumps(request) + '\n')
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, 'the launcher process died'
        return json.loads(answer)

    def start(self, argv, env, log):
        """Fork a run of ``tools/train.py argv`` with environment ``env``, its stdout and
        stderr going to the file ``log`` (emptied first); returns its pid."""
        open(log, 'w').close()
        return self._ask(op='run', argv=[str(a) for a in argv], env=env, log=str(log))

    def wait(self, pid):
        return self._ask(op='wait', pid=pid)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def _running(pid):
    """Whether ``pid`` runs (a finished child stays a zombie until the launcher reaps it)."""
    with open(f'/proc/{pid}/stat') as f:
        return f.read().rsplit(')', 1)[1].split()[0] != 'Z'


def _log_text(log):
    with open(log) as f:
        return f.read()


def train(launcher, config, work_dir, *extra, record=None):
    """Run ``tools/train.py`` to completion; return its log (asserts success)."""
    log = f'{work_dir}.log'
    pid = launcher.start([config, '--work-dir', work_dir, *extra], child_env(record), log)
    assert launcher.wait(pid) == 0, _log_text(log)[-4000:]
    return _log_text(log)


def train_until_killed(launcher, config, work_dir, kill_at, *extra, record=None, timeout=600):
    """Run ``tools/train.py`` until it reaches ``kill_at`` (see kill_points), then SIGKILL it."""
    log = f'{work_dir}.log'
    pid = launcher.start([config, '--work-dir', work_dir, *extra], child_env(record, kill_at), log)
    deadline = time.time() + timeout
    try:
        while 'KILL POINT' not in _log_text(log):
            assert time.time() < deadline, 'no kill point within the timeout'
            assert _running(pid), 'ended before its kill point:\n' + _log_text(log)[-4000:]
            time.sleep(0.2)
    finally:
        os.kill(pid, signal.SIGKILL)
    assert launcher.wait(pid) == -signal.SIGKILL, _log_text(log)[-4000:]


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
