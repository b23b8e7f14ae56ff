"""A training run SIGKILLed mid-run and resumed with ``--resume`` ends exactly
where the uninterrupted run of the same seed ends (deterministic mode).

Each config trains once without interruption (the reference), then with kills:
after an iteration between two checkpoints (PAC) and, on resuming, while the
next checkpoint's temporary file is half written (PAC and Mask R-CNN). The
resume after the second kill must fall back to the last complete checkpoint.
Compared with the reference, bit for bit: the iteration count, every
iteration's batch (sample order, crops, flips) and loss, and the final weights,
optimizer state, learning rate and scheduler state.
"""
import glob
import os.path as osp

import pytest

from tests.reliability import train_runs

pytestmark = pytest.mark.slow


def _interrupted(launcher, config, work_dir, record, checkpoint_interval, kill_between):
    """With ``kill_between``, kill after iteration ``checkpoint_interval + 1`` and resume;
    kill while the checkpoint of iteration ``2 * checkpoint_interval`` is being written;
    resume to the end. Returns the records of every run and the iterations each began at."""
    first_save, second_save = checkpoint_interval, 2 * checkpoint_interval
    resume = []
    if kill_between:
        train_runs.train_until_killed(launcher, config, work_dir, f'iter:{first_save + 1}',
                                      record=record)
        assert sorted(osp.basename(p) for p in glob.glob(f'{work_dir}/*.pth')) == \
            [f'iter_{first_save}.pth']
        resume = ['--resume']
    train_runs.train_until_killed(launcher, config, work_dir, f'write:iter_{second_save}.pth',
                                  *resume, record=record)
    # killed mid-write: a half-written temporary file, the previous checkpoint intact
    assert glob.glob(f'{work_dir}/.iter_{second_save}.pth.*')
    assert not osp.exists(f'{work_dir}/iter_{second_save}.pth')
    with open(f'{work_dir}/last_checkpoint') as f:
        assert f.read().strip().endswith(f'iter_{first_save}.pth')
    log = train_runs.train(launcher, config, work_dir, '--resume', record=record)
    assert f'Advance dataloader {first_save} steps' in log
    return train_runs.read_record(record)


def _assert_resumed_run_matches(launcher, tmp_path, config, iters, checkpoint_interval,
                                kill_between=True):
    reference_dir, resumed_dir = tmp_path / 'reference', tmp_path / 'resumed'
    train_runs.train(launcher, config, reference_dir, record=tmp_path / 'reference.jsonl')
    reference = {r['iter']: r for r in train_runs.read_record(tmp_path / 'reference.jsonl')}
    resumed = _interrupted(launcher, config, resumed_dir, tmp_path / 'resumed.jsonl',
                           checkpoint_interval, kill_between)

    assert sorted(reference) == list(range(1, iters + 1))
    for record in resumed:  # every iteration, first attempt and replays alike: bit-equal
        expected = reference[record['iter']]
        assert record['batch'] == expected['batch'], f"iteration {record['iter']}: other data"
        assert record['loss'] == expected['loss'], (record, expected)
    # each resume restarts right after the last complete checkpoint (the iteration
    # killed while saving is not recorded: its record is written after its hooks)
    restart = checkpoint_interval + 1
    attempts = [range(1, restart + 1), range(restart, 2 * checkpoint_interval)] if kill_between \
        else [range(1, 2 * checkpoint_interval)]
    assert [r['iter'] for r in resumed] == [i for run in attempts + [range(restart, iters + 1)]
                                            for i in run]

    final = f'iter_{iters}.pth'
    ours = train_runs.load_checkpoint(resumed_dir / final)
    theirs = train_runs.load_checkpoint(reference_dir / final)
    assert ours['meta']['iter'] == theirs['meta']['iter'] == iters
    assert train_runs.max_difference(ours['state_dict'], theirs['state_dict']) == 0
    assert train_runs.max_difference(ours['optimizer'], theirs['optimizer']) == 0
    learning_rates = [c['optimizer']['param_groups'][0]['lr'] for c in (ours, theirs)]
    assert learning_rates[0] == learning_rates[1]
    assert ours['param_schedulers'] == theirs['param_schedulers']


def test_pac_flow_resume_after_kills_is_exact(launcher, tmp_path):
    """Kills between checkpoints and during a write; Adam, a LR step after the resume point."""
    config = train_runs.pac_flow_config(str(tmp_path / 'pac.py'), iters=6, checkpoint_interval=2)
    _assert_resumed_run_matches(launcher, tmp_path, config, iters=6, checkpoint_interval=2)


def test_mask_rcnn_resume_after_a_kill_during_a_checkpoint_write_is_exact(launcher, tmp_path):
    """The kill during the write of iter_4.pth, resumed from iter_2.pth (the random RoI
    sampling after the resume needs compat fix 8). One kill only: each Mask R-CNN run
    costs ~15 s of CPU; the kill between checkpoints is the PAC test's."""
    config = train_runs.mask_rcnn_config(str(tmp_path / 'mask_rcnn.py'), str(tmp_path / 'coco'),
                                         iters=4, checkpoint_interval=2)
    _assert_resumed_run_matches(launcher, tmp_path, config, iters=4, checkpoint_interval=2,
                                kill_between=False)
