"""The upsampler training-cost benchmark: one real x4 smoke run (its JSON layout, the JBU
window of the config, every profiled module labelled, operators by self time) and the
table from the file; timings are its output, never a test's assertion."""
import json

import pytest

from tests.helpers.e2e import load_script


@pytest.fixture(scope='module')
def bench():
    return load_script('benchmarks/bench_upsampler_train_cost.py')


def test_a_smoke_run_records_the_iteration_and_where_the_profiled_time_goes(bench, tmp_path, capsys):
    out = tmp_path / 'cost.json'
    assert bench.main(['--factors', '4', '--iters', '1', '--profile-factor', '4', '--out', str(out)]) == 0
    results = json.loads(out.read_text())
    row = results['iterations']['4']
    assert row['config'].endswith('pacjointupsample_lite_x4_procedural.py')
    assert (row['jbu_window'], row['jbu_taps'], row['batch']) == (9, 81, [4, 3, 64, 64])  # (2f+1)^2 taps
    assert (row['warmup'], len(row['seconds'])) == (1, 1) and row['seconds_per_iter'] > 0
    prof = results['profile']
    assert prof['factor'] == 4 and prof['input']['low'] == [1, 1, 16, 16]
    assert 0 < prof['seconds_jbu_forward_backward'] < prof['seconds_forward_backward']
    assert prof['jbu_share'] == pytest.approx(prof['seconds_jbu_forward_backward'] / prof['seconds_forward_backward'])
    by_module = prof['forward_seconds_by_module']
    assert set(by_module) == set(bench.MODULES) and all(s > 0 for s in by_module.values())
    assert sum(by_module.values()) < prof['seconds_forward_backward']
    self_times = [op['self_seconds'] for op in prof['top_ops']]
    assert self_times == sorted(self_times, reverse=True) and len(self_times) == bench.TOP_OPS
    assert not any(op['op'].startswith(('module::', 'autograd::')) for op in prof['top_ops'])
    nodes = {node['node']: node for node in prof['top_backward_nodes']}
    assert 'ConvolutionBackward0' in nodes and all(0 < n['seconds'] < prof['self_seconds_total'] for n in nodes.values())
    assert results['meta']['command'].endswith('--profile-factor 4 --out ' + str(out))
    capsys.readouterr()
    assert bench.main(['--table', str(out)]) == 0
    table = capsys.readouterr().out
    assert '| x4 | `pacjointupsample_lite_x4_procedural.py` | 4x3x64x64 | 9x9 (81) |' in table
    assert 'x4 forward + backward on one scene (low 1x1x16x16)' in table
