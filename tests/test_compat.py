"""Each fix in convdense.compat, shown failing without it (fresh interpreter with
CONVDENSE_NO_COMPAT=1) and working with it."""
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code, compat=True, env_extra=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (REPO, os.environ.get('PYTHONPATH')) if p))
    env['CONVDENSE_NO_COMPAT'] = '0' if compat else '1'
    env.update(env_extra or {})
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_mmengine_checkpoint_with_message_hub_loads_only_with_fix(tmp_path):
    path = tmp_path / 'ckpt.pth'
    code = f"""
        import numpy as np, torch
        import convdense
        from mmengine.logging import MessageHub
        from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint
        hub = MessageHub.get_instance('compat-test')
        hub.update_scalar('train/loss', np.float64(0.25))
        hub.update_scalar('train/lr', 0.02)
        save_checkpoint(dict(meta=dict(epoch=1, seed=np.int64(7)), state_dict=dict(w=torch.ones(2)),
                             message_hub=hub.state_dict()), {str(path)!r})
        ckpt = _load_checkpoint({str(path)!r}, map_location='cpu')
        buffer = ckpt['message_hub']['log_scalars']['train/loss']
        assert buffer.current() == 0.25, buffer.current()
        assert int(ckpt['meta']['seed']) == 7
        print('LOADED')
    """
    without = run_python(code, compat=False)
    assert without.returncode != 0
    assert 'weights_only' in without.stderr or 'Unsupported global' in without.stderr
    fixed = run_python(code, compat=True)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert 'LOADED' in fixed.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason='the fix only acts on CPU-only torch')
def test_init_dist_pytorch_launcher_on_cpu_only_with_fix():
    code = """
        import convdense, torch.distributed as dist
        from mmengine.dist import init_dist
        init_dist('pytorch', backend='nccl')
        print('BACKEND', dist.get_backend(), dist.get_world_size())
    """
    env = dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(free_port()))
    without = run_python(code, compat=False, env_extra=env)
    assert without.returncode != 0
    fixed = run_python(code, compat=True, env_extra=env)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert 'BACKEND gloo 1' in fixed.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason='the fix only acts on CPU-only torch')
def test_init_dist_slurm_launcher_on_cpu_only_with_fix(tmp_path):
    """mmengine's slurm path reads SLURM_* (the first host of the node list, from
    ``scontrol``, is the master) and then needs CUDA; with the fix it runs on gloo."""
    scontrol = tmp_path / 'scontrol'
    scontrol.write_text('#!/bin/sh\necho 127.0.0.1\n')
    scontrol.chmod(0o755)
    code = """
        import os, convdense, torch.distributed as dist
        from mmengine.dist import init_dist
        init_dist('slurm', backend='nccl')
        print('BACKEND', dist.get_backend(), dist.get_world_size(), dist.get_rank(),
              os.environ['MASTER_ADDR'], os.environ['LOCAL_RANK'])
    """
    env = dict(SLURM_PROCID='0', SLURM_NTASKS='1', SLURM_LOCALID='0', SLURM_NODELIST='node[1-2]',
               MASTER_PORT=str(free_port()), PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    without = run_python(code, compat=False, env_extra=env)
    assert without.returncode != 0
    fixed = run_python(code, compat=True, env_extra=env)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert 'BACKEND gloo 1 0 127.0.0.1 0' in fixed.stdout


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_init_dist_and_default_ddp_wrapper_on_cuda_use_nccl():
    """What replaces the two CPU-only checks on a GPU runner: fix 2 leaves the CUDA
    path alone (nccl, set_device) and the Runner's default DDP wrapper works there."""
    code = """
        import torch, torch.distributed as dist, convdense
        from mmengine.dist import init_dist
        from mmengine.model import MMDistributedDataParallel
        init_dist('pytorch', backend='nccl')
        module = MMDistributedDataParallel(module=torch.nn.Linear(2, 2).cuda(), device_ids=[0])
        module(torch.ones(1, 2, device='cuda')).sum().backward()
        print('BACKEND', dist.get_backend(), torch.cuda.current_device())
    """
    env = dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(free_port()))
    result = run_python(code, env_extra=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'BACKEND nccl 0' in result.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason='the fix only acts on CPU-only torch')
def test_ddp_wrapper_cfg_for_cpu_module():
    code = """
        import torch, torch.distributed as dist, convdense
        from mmengine.config import Config
        from mmengine.model import MMDistributedDataParallel
        from mmengine.registry import MODEL_WRAPPERS
        from convdense.compat import cpu_ddp_wrapper_cfg
        dist.init_process_group('gloo', rank=0, world_size=1)
        module = torch.nn.Linear(2, 2)
        try:
            MMDistributedDataParallel(module=module, device_ids=[0])  # what the Runner does by default
            print('DEFAULT_OK')
        except Exception as exc:
            print('DEFAULT_FAILS', type(exc).__name__)
        # the Runner always adds device_ids=[LOCAL_RANK] as a default argument
        wrapper = MODEL_WRAPPERS.build(cpu_ddp_wrapper_cfg(Config(dict())),
                                       default_args=dict(module=module, device_ids=[0]))
        print('WRAPPED', type(wrapper).__name__)
    """
    env = dict(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()))
    result = run_python(code, env_extra=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'DEFAULT_FAILS' in result.stdout
    assert 'WRAPPED MMDistributedDataParallel' in result.stdout


def _upstream(tmp_path, base):
    from mmengine.config import Config
    path = tmp_path / (base.replace('::', '_').replace('/', '_'))
    path.write_text(f"_base_ = '{base}'\n")
    return Config.fromfile(str(path))


def test_remote_checkpoints_in_upstream_configs_are_found(tmp_path):
    from mmengine.config import Config

    from convdense.compat import find_remote_checkpoints
    upstream = _upstream(tmp_path, 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')
    assert ('model.backbone.init_cfg.checkpoint', 'torchvision://resnet50') in \
        find_remote_checkpoints(upstream.to_dict())
    seg = _upstream(tmp_path, 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py')
    assert [key for key, _ in find_remote_checkpoints(seg.to_dict())] == ['model.pretrained']
    # the ResNet-50 baselines keep upstream's remote ImageNet weights (torchvision's, as
    # the plain-stem convdense backbones' releases); the from-scratch ones name none
    for ours, key in (('configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
                       'model.backbone.init_cfg.checkpoint'),
                      ('configs/segmentation/upernet_r50_ade20k.py', 'model.pretrained')):
        assert find_remote_checkpoints(Config.fromfile(os.path.join(REPO, ours)).to_dict()) == \
            [(key, 'torchvision://resnet50')]
    scratch = 'configs/scratch/mask-rcnn_r50-scratch_fpn_gn-all_6x_coco.py'
    assert find_remote_checkpoints(Config.fromfile(os.path.join(REPO, scratch)).to_dict()) == []


def test_checkpoint_writes_are_atomic(tmp_path):
    """A write that fails half-way (here: the file-size limit, like a full disk)
    leaves the previous checkpoint whole and no stray temporary file."""
    code = f"""
        import os, resource, signal, torch
        import convdense
        from mmengine.runner.checkpoint import save_checkpoint
        path = {str(tmp_path / 'iter_1.pth')!r}
        save_checkpoint(dict(state_dict=dict(w=torch.ones(3))), path)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
        try:
            save_checkpoint(dict(state_dict=dict(w=torch.zeros(100_000))), path)
        except OSError as exc:
            print('WRITE FAILED', exc.errno)
        state = torch.load(path, map_location='cpu')['state_dict']
        assert torch.equal(state['w'], torch.ones(3)), state
        assert os.listdir(os.path.dirname(path)) == ['iter_1.pth'], os.listdir(os.path.dirname(path))
        print('INTACT')
    """
    without = run_python(code, compat=False)
    assert 'WRITE FAILED' in without.stdout and 'INTACT' not in without.stdout
    fixed = run_python(code, compat=True)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert 'WRITE FAILED' in fixed.stdout and 'INTACT' in fixed.stdout


def test_checkpoint_hook_keeps_the_old_checkpoint_until_the_new_one_is_saved(tmp_path):
    """max_keep_ckpts=1 and a save that fails: the previous checkpoint must survive."""
    code = f"""
        import os
        from unittest import mock
        import torch
        import convdense
        from mmengine.hooks import CheckpointHook
        from mmengine.fileio import get_file_backend
        from mmengine.logging import MessageHub
        work_dir = {str(tmp_path)!r}
        hook = CheckpointHook(interval=1, by_epoch=False, max_keep_ckpts=1)
        hook.out_dir = work_dir
        hook.file_backend = get_file_backend(work_dir)
        hook.filename_tmpl = 'iter_{{}}.pth'
        hook.keep_ckpt_ids = __import__('collections').deque()
        runner = mock.Mock(work_dir=work_dir, message_hub=MessageHub.get_instance('compat-test'))
        def save(out_dir, filename, *args, **kwargs):
            torch.save(dict(step=filename), os.path.join(out_dir, filename))
        runner.save_checkpoint.side_effect = save
        hook._save_checkpoint_with_step(runner, 1, dict())
        runner.save_checkpoint.side_effect = OSError('disk full')
        try:
            hook._save_checkpoint_with_step(runner, 2, dict())
        except OSError:
            print('SAVE FAILED')
        print('KEPT' if os.path.isfile(os.path.join(work_dir, 'iter_1.pth')) else 'LOST')
        runner.save_checkpoint.side_effect = save
        hook._save_checkpoint_with_step(runner, 3, dict())
        print(sorted(f for f in os.listdir(work_dir) if f.endswith('.pth')))
    """
    without = run_python(code, compat=False)
    assert 'SAVE FAILED' in without.stdout and 'LOST' in without.stdout, without.stderr[-2000:]
    fixed = run_python(code, compat=True)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert 'SAVE FAILED' in fixed.stdout and 'KEPT' in fixed.stdout
    # pruning still happens once a save succeeds: only the newest checkpoint remains
    assert fixed.stdout.strip().splitlines()[-1] == "['iter_3.pth']"


def _noisy_runs(tmp_path, name, max_iters, resume_from=None):
    """Train a model whose loss draws torch random numbers (like Mask R-CNN's RoI
    sampling) on data with a numpy random augmentation; return each iteration's loss."""
    import numpy as np

    import convdense  # noqa: F401  (applies the fixes in this process)
    from mmengine.hooks import Hook
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class NoisyModel(BaseModel):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(4))

        def forward(self, inputs, data_samples=None, mode='tensor'):
            sampled = torch.randperm(4)[:2]  # a random subset, as an RoI sampler draws
            return dict(loss=(self.weight[sampled] * inputs.float().mean()).pow(2).sum())

    class Jittered(torch.utils.data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, index):
            return dict(inputs=index + np.random.rand())  # a random augmentation

    losses = {}

    class Record(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            losses[runner.iter + 1] = outputs['loss'].item()

    runner = Runner(
        model=NoisyModel(), work_dir=str(tmp_path / name), experiment_name=f'{tmp_path.name}-{name}',
        train_dataloader=dict(dataset=Jittered(), batch_size=2, num_workers=0,
                              sampler=dict(type='InfiniteSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=[Record()], randomness=dict(seed=0), log_level='WARNING',
        resume=resume_from is not None, load_from=resume_from)
    runner.train()
    return losses


def test_resume_restores_the_random_state(tmp_path, monkeypatch):
    """Fix 8: a run resumed at iteration 2 repeats the uninterrupted run's later
    losses exactly; with mmengine's own resume it does not (the torch draws differ)."""
    from mmengine.runner import IterBasedTrainLoop, Runner
    uninterrupted = _noisy_runs(tmp_path, 'full', 4)
    _noisy_runs(tmp_path, 'first_half', 2)
    checkpoint = str(tmp_path / 'first_half' / 'iter_2.pth')
    resumed = _noisy_runs(tmp_path, 'resumed', 4, resume_from=checkpoint)
    assert resumed == {3: uninterrupted[3], 4: uninterrupted[4]}
    monkeypatch.setattr(Runner, 'resume', Runner.resume.__wrapped__)
    monkeypatch.setattr(IterBasedTrainLoop, 'run', IterBasedTrainLoop.run.__wrapped__)
    without_fix = _noisy_runs(tmp_path, 'resumed_without_fix', 4, resume_from=checkpoint)
    assert without_fix != resumed


def test_torchvision_timm_and_grad_cam_import_beside_the_cpu_torch():
    unfixed = run_python('import torchvision', compat=False)
    if unfixed.returncode == 0:
        pytest.skip('torchvision C++ ops load here: fix 7 is not needed')
    assert 'torchvision::nms does not exist' in unfixed.stderr
    fixed = run_python('''
        import convdense, torchvision, timm, pytorch_grad_cam
        model = timm.create_model('res2net50_26w_4s', pretrained=False, features_only=True)
        print('imported', torchvision.__version__, len(model.feature_info))
    ''')
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert 'imported' in fixed.stdout
