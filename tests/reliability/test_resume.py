"""A training run SIGKILLed mid-run and resumed with ``--resume`` ends exactly
where the uninterrupted run of the same seed ends (deterministic mode).

Each config trains once without interruption (the reference), then once with
two kills: after an iteration between two checkpoints, and, on resuming, while
the next checkpoint's temporary file is half written. The second resume must
fall back to the last complete checkpoint. Compared with the reference: the
iteration count, every later iteration's batch (sample order, crops, flips),
loss and learning rate, and the final weights, optimizer state and schedulers.
"""
import glob
import os.path as osp

import pytest

from tests.reliability import train_runs

pytestmark = pytest.mark.slow


def _interrupted_twice(launcher, config, work_dir, record, iters, checkpoint_interval):
    """Kill after iteration ``checkpoint_interval + 1``; resume and kill while the
    checkpoint of iteration ``2 * checkpoint_interval`` is being written; resume to the end."""
    first_save, second_save = checkpoint_interval, 2 * checkpoint_interval
    train_runs.train_until_killed(launcher, config, work_dir, f'iter:{first_save + 1}',
                                  record=record)
    assert sorted(osp.basename(p) for p in glob.glob(f'{work_dir}/*.pth')) == \
        [f'iter_{first_save}.pth']
    train_runs.train_until_killed(launcher, config, work_dir, f'write:iter_{second_save}.pth',
                                  '--resume', record=record)
    # killed mid-write: a half-written temporary file, the previous checkpoint intact
    assert glob.glob(f'{work_dir}/.iter_{second_save}.pth.*')
    assert not osp.exists(f'{work_dir}/iter_{second_save}.pth')
    with open(f'{work_dir}/last_checkpoint') as f:
        assert f.read().strip().endswith(f'iter_{first_save}.pth')
    log = train_runs.train(launcher, config, work_dir, '--resume', record=record)
    assert f'Advance dataloader {first_save} steps' in log
    return train_runs.read_record(record)


def _assert_resumed_run_matches(launcher, tmp_path, config, iters, checkpoint_interval,
                                tolerance):
    reference_dir, resumed_dir = tmp_path / 'reference', tmp_path / 'resumed'
    train_runs.train(launcher, config, reference_dir, record=tmp_path / 'reference.jsonl')
    reference = {r['iter']: r for r in train_runs.read_record(tmp_path / 'reference.jsonl')}
    resumed = _interrupted_twice(launcher, config, resumed_dir, tmp_path / 'resumed.jsonl', iters,
                                 checkpoint_interval)

    assert sorted(reference) == list(range(1, iters + 1))
    for record in resumed:  # every iteration, first attempt and replays alike
        expected = reference[record['iter']]
        assert record['batch'] == expected['batch'], f"iteration {record['iter']}: other data"
        assert abs(record['loss'] - expected['loss']) <= tolerance, (record, expected)
    # after each resume, training restarts right after the last complete checkpoint (the
    # iteration killed while saving is not recorded: its record is written after its hooks)
    restart = checkpoint_interval + 1
    assert [r['iter'] for r in resumed] == list(range(1, restart + 1)) + \
        list(range(restart, 2 * checkpoint_interval)) + list(range(restart, iters + 1))

    final = f'iter_{iters}.pth'
    ours = train_runs.load_checkpoint(resumed_dir / final)
    theirs = train_runs.load_checkpoint(reference_dir / final)
    assert ours['meta']['iter'] == theirs['meta']['iter'] == iters
    assert train_runs.max_difference(ours['state_dict'], theirs['state_dict']) <= tolerance
    assert train_runs.max_difference(ours['optimizer'], theirs['optimizer']) <= tolerance
    assert ours['optimizer']['param_groups'][0]['lr'] == theirs['optimizer']['param_groups'][0]['lr']
    assert ours['param_schedulers'] == theirs['param_schedulers']


def test_pac_flow_resume_after_kills_is_exact(launcher, tmp_path):
    config = train_runs.pac_flow_config(str(tmp_path / 'pac.py'), iters=6, checkpoint_interval=2)
    _assert_resumed_run_matches(launcher, tmp_path, config, iters=6, checkpoint_interval=2,
                                tolerance=0.0)


def test_mask_rcnn_resume_after_kills_is_exact(launcher, tmp_path):
    config = train_runs.mask_rcnn_config(str(tmp_path / 'mask_rcnn.py'), str(tmp_path / 'coco'),
                                         iters=5, checkpoint_interval=2)
    _assert_resumed_run_matches(launcher, tmp_path, config, iters=5, checkpoint_interval=2,
                                tolerance=0.0)
