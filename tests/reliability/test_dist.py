"""One process with batch B against ``tools/dist_train.sh`` with two gloo
processes of batch B/2: the same losses at every iteration and the same final
weights (a BN-free model, so no statistic depends on the per-process batch);
``tools/dist_test.sh`` (two processes) and ``tools/slurm_test.sh`` (one task)
evaluate that checkpoint alike.

The PAC (lite) flow config trains on fixed 64x64 regions without flips, so a
sample's content does not depend on the process that draws it; mmengine's
``InfiniteSampler`` gives rank r every second index of the one-process order,
so each iteration sees the same samples in both runs.

The Slurm scripts run under a stand-in ``srun`` that records its arguments and
starts one task with the variables Slurm sets (mmengine's slurm launcher on
gloo); ``--auto-scale-lr`` is checked against mmengine's rule (lr x world size x
batch / base_batch_size) with one Slurm task and two torchrun processes.
"""
import json
import os
import subprocess

import pytest
import torch
from mmengine.config import Config

from tests.helpers.e2e import REPO
from tests.reliability import train_runs

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(torch.cuda.is_available(),
                                 reason='gloo on CPU; tools/run_gpu_checks.sh runs the nccl check')]

ITERS = 4


def run_script(*args, env, timeout=600):
    result = subprocess.run(['bash', *map(str, args)], cwd=REPO, capture_output=True, text=True,
                            env=env, timeout=timeout)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result


@pytest.fixture(scope='module')
def two_runs(launcher, tmp_path_factory):
    """The same 4 iterations trained by one process (batch 4) and by two (batch 2 each)."""
    tmp_path = tmp_path_factory.mktemp('dist')
    config = train_runs.pac_flow_config(str(tmp_path / 'one.py'), iters=ITERS,
                                        checkpoint_interval=ITERS, batch_size=4,
                                        random_crops=False)
    half = train_runs.pac_flow_config(str(tmp_path / 'two.py'), iters=ITERS,
                                      checkpoint_interval=ITERS, batch_size=2,
                                      random_crops=False)
    train_runs.train(launcher, config, tmp_path / 'one', record=tmp_path / 'one.jsonl')
    run_script('tools/dist_train.sh', half, '2', '--work-dir', tmp_path / 'two',
               env=train_runs.child_env(tmp_path / 'two.jsonl'))
    return tmp_path, half


def test_two_gloo_processes_train_like_one(two_runs):
    tmp_path, _ = two_runs
    one = {r['iter']: r['loss'] for r in train_runs.read_record(tmp_path / 'one.jsonl')}
    two = train_runs.read_record(tmp_path / 'two.jsonl')
    assert sorted({r['rank'] for r in two}) == [0, 1]
    assert sorted(one) == list(range(1, ITERS + 1))
    for step, loss in one.items():
        ranks = [r['loss'] for r in two if r['iter'] == step]
        assert len(ranks) == 2, (step, ranks)
        # every pixel of these regions is valid: the batch loss is the mean of the halves'
        assert abs(sum(ranks) / 2 - loss) <= 1e-5, (step, loss, ranks)

    ours = train_runs.load_checkpoint(tmp_path / 'two' / f'iter_{ITERS}.pth')
    theirs = train_runs.load_checkpoint(tmp_path / 'one' / f'iter_{ITERS}.pth')
    assert ours['meta']['iter'] == theirs['meta']['iter'] == ITERS
    state = {k.removeprefix('module.'): v for k, v in ours['state_dict'].items()}
    assert train_runs.max_difference(state, theirs['state_dict']) <= 1e-5


FAKE_SRUN = r"""#!/usr/bin/env bash
# srun stand-in: record the arguments, drop srun's options, run the command as task 0 of 1
printf '%s\n' "$@" > "$SRUN_RECORD"
while [ $# -gt 0 ]; do case $1 in -p) shift 2 ;; -*) shift ;; *) break ;; esac; done
export SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_LOCALID=0 SLURM_NODELIST=fake-node
exec "$@"
"""


def _slurm_env(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text(FAKE_SRUN)
    (bin_dir / 'scontrol').write_text('#!/bin/sh\necho 127.0.0.1\n')  # show hostname NODELIST
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = train_runs.child_env()
    env.pop('MASTER_ADDR', None)  # mmengine's slurm path asks scontrol for the first host
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", MASTER_PORT=str(train_runs.free_port()),
               SRUN_RECORD=str(tmp_path / 'srun_args.txt'), GPUS='1', GPUS_PER_NODE='1',
               CPUS_PER_TASK='2', SRUN_ARGS='--qos=low --time=5')
    return env


SRUN_OPTIONS = ['-p', 'dev', '--job-name=convdense', '--gres=gpu:1', '--ntasks=1',
                '--ntasks-per-node=1', '--cpus-per-task=2', '--kill-on-bad-exit=1', '--qos=low',
                '--time=5']


def _srun_command(tmp_path, script):
    """What the stand-in srun was asked to run, after checking srun's options."""
    args = (tmp_path / 'srun_args.txt').read_text().splitlines()
    command = len(SRUN_OPTIONS)  # then: python -u .../tools/SCRIPT ...
    assert args[:command] == SRUN_OPTIONS and args[command + 1] == '-u'
    assert args[command + 2].endswith(f'tools/{script}')
    return args[command + 3:]


def test_dist_test_and_slurm_test_evaluate_alike(two_runs):
    """The two-process checkpoint evaluated by 2 torchrun processes and by 1 Slurm task."""
    tmp_path, config = two_runs
    checkpoint = tmp_path / 'two' / f'iter_{ITERS}.pth'
    run_script('tools/dist_test.sh', config, checkpoint, '2', '--work-dir', tmp_path / 'test_two',
               '--out', tmp_path / 'two_metrics.json', env=train_runs.child_env())
    out = tmp_path / 'slurm_metrics.json'
    run_script('tools/slurm_test.sh', 'dev', 'convdense', config, checkpoint, '--work-dir',
               tmp_path / 'test_slurm', '--out', out, env=_slurm_env(tmp_path))
    assert _srun_command(tmp_path, 'test.py') == [
        config, str(checkpoint), '--launcher=slurm', '--work-dir', str(tmp_path / 'test_slurm'),
        '--out', str(out)]
    one = json.loads(out.read_text())
    two = json.loads((tmp_path / 'two_metrics.json').read_text())
    assert one and one.keys() == two.keys()
    for key, value in one.items():
        assert two[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    for run, launcher in (('test_two', 'pytorch'), ('test_slurm', 'slurm')):
        log = ''.join(p.read_text() for p in (tmp_path / run).glob('*/*.log'))
        assert f'Distributed launcher: {launcher}' in log, run


def _with_base_batch_size(path, base_batch_size):
    with open(path, 'a') as f:
        f.write(f'\nauto_scale_lr = dict(enable=False, base_batch_size={base_batch_size})\n')
    return path


def _base_lr(work_dir, iters):
    checkpoint = train_runs.load_checkpoint(work_dir / f'iter_{iters}.pth')
    return checkpoint['param_schedulers'][0]['base_values'][0]  # the lr the schedule starts from


def test_slurm_train_and_auto_scale_lr_by_world_size_times_batch(tmp_path):
    """slurm_train.sh runs one task through mmengine's slurm launcher; --auto-scale-lr
    multiplies the lr by world size x batch / base_batch_size there and under torchrun."""
    config = _with_base_batch_size(train_runs.pac_flow_config(
        str(tmp_path / 'scale.py'), iters=1, checkpoint_interval=1, batch_size=2), 8)
    lr = Config.fromfile(config).optim_wrapper.optimizer.lr
    run_script('tools/slurm_train.sh', 'dev', 'convdense', config, tmp_path / 'one', '--auto-scale-lr',
               env=_slurm_env(tmp_path))
    assert _srun_command(tmp_path, 'train.py') == [
        config, f"--work-dir={tmp_path / 'one'}", '--launcher=slurm', '--auto-scale-lr']
    log = ''.join(p.read_text() for p in (tmp_path / 'one').glob('*/*.log'))
    assert 'Distributed launcher: slurm' in log and 'GPU number: 1' in log  # the world size
    run_script('tools/dist_train.sh', config, '2', '--work-dir', tmp_path / 'two', '--auto-scale-lr',
               env=train_runs.child_env())
    assert _base_lr(tmp_path / 'one', 1) == pytest.approx(lr * 1 * 2 / 8)
    assert _base_lr(tmp_path / 'two', 1) == pytest.approx(lr * 2 * 2 / 8)
