"""The backbone benchmark's bookkeeping (not its timings: those are the
benchmark's output, never a test's assertion)."""
import pytest

from tests.helpers.e2e import load_script


@pytest.fixture(scope='module')
def bench():
    return load_script('benchmarks/bench_backbones.py')


def _trial(oct_ms, base_ms, load):
    meta = dict(statistic='median', load_average_end=load)
    rows = {'resnet50': dict(ms=base_ms, ratio=1.0, repeats=3, goal=None, meets_goal=None),
            'oct-resnet50_a0.5': dict(ms=oct_ms, ratio=oct_ms / base_ms, repeats=3, goal=0.75,
                                      meets_goal=oct_ms / base_ms <= 0.75)}
    return dict(meta=meta, unavailable={}, sizes={'224x224': rows})


def test_trials_combine_to_median_ratio_with_range(bench):
    trials = [_trial(80, 100, [1.0]), _trial(90, 100, [2.0]), _trial(70, 100, [3.0])]
    combined = bench.combine_trials(trials)
    row = combined['sizes']['224x224']['oct-resnet50_a0.5']
    assert row['ratio'] == pytest.approx(0.8)
    assert (row['ratio_min'], row['ratio_max']) == (pytest.approx(0.7), pytest.approx(0.9))
    assert row['ms'] == 80 and row['meets_goal'] is False
    assert combined['meta']['trials'] == 3 and combined['meta']['load_average_end'] == [3.0]
    # The median is of the trials' ratios, not the ratio of median times.
    skewed = bench.combine_trials([_trial(70, 100, None), _trial(60, 80, None), _trial(90, 100, None)])
    assert skewed['sizes']['224x224']['oct-resnet50_a0.5']['ratio'] == pytest.approx(0.75)
    assert skewed['sizes']['224x224']['oct-resnet50_a0.5']['meets_goal'] is True
    table = bench.markdown_table(combined)
    assert '0.80x (0.70-0.90)' in table and '| resnet50 | - | 100.0 | 1.00x |' in table


def test_trial_subprocesses_get_the_other_arguments(bench, monkeypatch, tmp_path):
    calls = []

    def fake_run(command, check):
        calls.append(command)
        import json
        with open(command[command.index('--json') + 1], 'w') as f:
            json.dump(_trial(80, 100, None), f)

    import subprocess
    monkeypatch.setattr(subprocess, 'run', fake_run)
    out = tmp_path / 'out.json'
    result = bench.main(['--quick', '--trials', '2', '--threads', '2', f'--json={out}'])
    assert len(calls) == 2 and out.is_file()
    for command in calls:
        assert command[2:6] == ['--quick', '--threads', '2', '--trials'] and command[6] == '1'
        assert str(out) not in command
    assert result['meta']['trials'] == 2
    with pytest.raises(SystemExit, match='--trials must be >= 1'):
        bench.main(['--trials', '0'])
