"""``benchmarks/bench_pac.py``: its unfold reference layer is the PAC layer (values and
gradients), and the goal ratios are per-round ratios summarised by median and range."""
import pytest
import torch

from tests.helpers.e2e import load_script


@pytest.fixture(scope='module')
def bench():
    return load_script('benchmarks/bench_pac.py')


@pytest.mark.parametrize('kind', [dict(), dict(channel_wise=True), dict(transposed=True)])
def test_unfold_reference_layer_matches_the_pac_layer_with_gradients(bench, kind):
    case = bench._case(dict(name='t', k=5 if kind.get('transposed') else 3, size=7, channels=3,
                            guide_channels=2, **kind))
    inputs = [t.detach().double().requires_grad_() for t in bench.make_inputs(case)]
    options = dict(k=case['k'], channel_wise=case['channel_wise'], transposed=case['transposed'])
    outputs, grads = [], []
    for layer in (bench.pac_layer, bench.unfold_pac_layer):
        out = layer(*inputs, **options)
        outputs.append(out)
        grads.append(torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(), inputs))
    assert outputs[0].shape == ((1, 3, 14, 14) if case['transposed'] else (1, 3, 7, 7))
    torch.testing.assert_close(outputs[0], outputs[1])
    for pac_grad, unfold_grad in zip(*grads):
        torch.testing.assert_close(pac_grad, unfold_grad)


def test_goal_ratios_are_medians_of_per_round_ratios(bench):
    rounds = [dict(pac=dict(time_ms=t, peak_mib=m), unfold=dict(time_ms=u, peak_mib=um),
                   conv=dict(time_ms=c, peak_mib=1.0))
              for t, m, u, um, c in ((10, 10, 40, 50, 5), (20, 10, 50, 30, 8), (12, 5, 30, 40, 10))]
    summary = bench.summarise(rounds)
    assert summary['time_vs_conv']['median'] == pytest.approx(2.0)  # 2.0, 2.5, 1.2
    assert (summary['time_vs_conv']['min'], summary['time_vs_conv']['max']) == pytest.approx((1.2, 2.5))
    assert summary['time_vs_conv']['met']  # <= 2x
    assert summary['speedup_vs_unfold']['median'] == pytest.approx(2.5)  # 4, 2.5, 2.5
    assert not summary['speedup_vs_unfold']['met']  # < 3x
    assert summary['memory_saving_vs_unfold']['median'] == pytest.approx(5.0)  # 5, 3, 8
    assert summary['memory_saving_vs_unfold']['met'] and summary['pac_time_ms'] == 12
    table = bench.markdown_table(dict(rows=[dict(case='c', num_threads=2, **summary)]))
    assert table.splitlines()[-1] == ('| c | 2 | 12 / 10 | 40 / 40 | 8 / 1 | 2.00 (1.20–2.50) | '
                                      '2.50 (2.50–4.00) **missed** | 5.00 (3.00–8.00) |')


def test_fresh_process_peak_is_the_layers_not_its_imports(bench):
    """A tiny PAC layer in a fresh worker process reports a few MiB of peak, not the
    ~100 MiB that importing convdense (mmengine) adds when it happens inside the
    measured call."""
    import json
    import subprocess
    import sys
    case = bench._case(dict(name='t', k=3, size=16, channels=4, guide_channels=2))
    child = subprocess.run([sys.executable, str(bench.ROOT / 'benchmarks/bench_pac.py'), '--worker',
                            'pac', json.dumps(case), '1', '1'], capture_output=True, text=True,
                           cwd=bench.ROOT, check=True)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert 0 <= result['peak_mib'] < 30, result


def test_cuda_goals_judge_only_the_ratios_against_unfold(bench):
    rounds = [dict(pac=dict(time_ms=2.0, peak_mib=100.0), unfold=dict(time_ms=30.0, peak_mib=700.0),
                   conv=dict(time_ms=1.0, peak_mib=50.0))]
    summary = bench.summarise(rounds, bench.CUDA_GOALS)
    assert summary['time_vs_conv']['met'] is None and summary['time_vs_conv']['median'] == 2.0
    assert summary['speedup_vs_unfold']['met']  # 15x >= 10x
    assert not summary['memory_saving_vs_unfold']['met']  # 7x < 8x
    table = bench.markdown_table(dict(goals=bench.CUDA_GOALS,
                                      rows=[dict(case='c', num_threads=1, **summary)])).splitlines()
    assert table[0].endswith('| PAC / conv time | unfold / PAC time (goal >= 10) | '
                             'unfold / PAC memory (goal >= 8) |')
    assert table[-1].endswith('| 2.00 (2.00–2.00) | 15.00 (15.00–15.00) | 7.00 (7.00–7.00) **missed** |')


@pytest.mark.skipif(torch.cuda.is_available(), reason='the refusal is for a machine without CUDA')
def test_device_cuda_without_a_gpu_is_a_one_line_error(bench, tmp_path):
    import subprocess
    import sys
    child = subprocess.run([sys.executable, str(bench.ROOT / 'benchmarks/bench_pac.py'), '--device',
                            'cuda', '--out', str(tmp_path / 'x.json')], capture_output=True, text=True,
                           cwd=bench.ROOT, timeout=120)
    assert child.returncode == 2
    assert child.stderr.strip().startswith('error: --device cuda: torch') and '\n' not in child.stderr.strip()
    assert not (tmp_path / 'x.json').exists()
