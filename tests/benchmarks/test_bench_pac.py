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
