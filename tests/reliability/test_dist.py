"""One process with batch B against ``tools/dist_train.sh`` with two gloo
processes of batch B/2: the same losses at every iteration and the same final
weights (a BN-free model, so no statistic depends on the per-process batch).

The PAC (lite) flow config trains on fixed 64x64 regions without flips, so a
sample's content does not depend on the process that draws it; mmengine's
``InfiniteSampler`` gives rank r every second index of the one-process order,
so each iteration sees the same samples in both runs.
"""
import subprocess

import pytest
import torch

from tests.helpers.e2e import REPO
from tests.reliability import train_runs

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(torch.cuda.is_available(),
                                 reason='gloo on CPU; tools/run_gpu_checks.sh runs the nccl check')]

ITERS = 4


def test_two_gloo_processes_train_like_one(launcher, tmp_path):
    config = train_runs.pac_flow_config(str(tmp_path / 'one.py'), iters=ITERS,
                                        checkpoint_interval=ITERS, batch_size=4,
                                        random_crops=False)
    half = train_runs.pac_flow_config(str(tmp_path / 'two.py'), iters=ITERS,
                                      checkpoint_interval=ITERS, batch_size=2,
                                      random_crops=False)
    train_runs.train(launcher, config, tmp_path / 'one', record=tmp_path / 'one.jsonl')
    result = subprocess.run(['bash', 'tools/dist_train.sh', half, '2', '--work-dir',
                             str(tmp_path / 'two')], cwd=REPO, capture_output=True, text=True,
                            env=train_runs.child_env(tmp_path / 'two.jsonl'), timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]

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
