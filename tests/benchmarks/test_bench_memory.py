"""The leak check's arithmetic in ``benchmarks/bench_memory.py`` (never a measurement)."""
import numpy as np
import pytest

from tests.helpers.e2e import load_script


@pytest.fixture(scope='module')
def bench():
    return load_script('benchmarks/bench_memory.py')


def test_slope_matches_numpy_polyfit_after_the_warmup(bench):
    rng = np.random.default_rng(0)
    steps = np.arange(200)
    # a one-off 300 MiB climb in the first 20 iterations, then 5 KiB/iteration and noise
    rss = 400_000 + np.minimum(steps, 20) * 15_000 + 5.0 * steps + rng.normal(0, 200, 200)
    slope, start = bench.fit_slope(list(rss), warmup=0.2)
    assert start == 40
    assert slope == pytest.approx(np.polyfit(steps[40:], rss[40:], 1)[0], rel=1e-9)
    assert slope == pytest.approx(5.0, abs=1.0)
    # without dropping the warm-up the climb dominates the fit
    assert bench.fit_slope(list(rss), warmup=0.0)[0] > 100


def test_verdict_flags_a_leak_and_passes_a_flat_run(bench):
    flat = [500_000.0 + (i % 3) * 100 for i in range(100)]
    leaking = [500_000.0 + 64 * i for i in range(100)]  # 64 KiB per iteration
    assert bench.is_flat(bench.verdict(flat, max_slope_kib=32))
    result = bench.verdict(leaking, max_slope_kib=32)
    assert not bench.is_flat(result) and result['slope_kib_per_iter'] == pytest.approx(64)
    assert result['warmup_iters'] == 20 and 'flat' not in result  # judged when read, not stored


def test_table_reads_both_layouts_and_judges_the_slope(bench):
    result = dict(bench.verdict([500_000.0 + 64 * i for i in range(100)], max_slope_kib=32),
                  live_tensor_slope_kib_per_iter=0.0, flat=True)  # a stale stored verdict
    old = dict(iters=100, machine=dict(cpu='x'), models=dict(maskrcnn=result))
    new = dict(meta=dict(iters=100, machine_before=dict(cpu='x')), models=dict(maskrcnn=result))
    table = bench.markdown_table(old)
    assert table == bench.markdown_table(new)
    assert table.splitlines()[-1] == ('| maskrcnn | 100 (first 20 dropped) | 64.0 (<= 32) | **no** | '
                                      '489.5 -> 494.5 | 0.0 |')


@pytest.mark.parametrize('values, warmup, message', [([1.0], 0.0, 'at least 2'),
                                                     ([1.0, 2.0], 1.0, 'warmup')])
def test_bad_arguments_are_named(bench, values, warmup, message):
    with pytest.raises(ValueError, match=message):
        bench.fit_slope(values, warmup)
