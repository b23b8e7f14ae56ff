"""The training-cost benchmark's bookkeeping (models found, learning rate, ratios over
rounds, interleaving, the JSON layout) and one real smoke iteration; timings are its
output, never a test's assertion."""
import json

import pytest

from tests.helpers.e2e import load_script


@pytest.fixture(scope='module')
def bench():
    return load_script('benchmarks/bench_train_cost.py')


def test_every_mask_rcnn_config_is_a_model_and_every_claim_names_one(bench):
    assert set(bench.MODELS) == {'r50', 'oct-resnet-50', 'hetconv-resnet-50', 'res2net-50',
                                 'acnet-50'}
    assert set(bench.CLAIMS) <= set(bench.MODELS)


def test_learning_rate_is_the_warmup_start(bench):
    from mmengine.config import Config
    cfg = Config.fromfile(bench.MODELS['r50'])
    # mmdet's 1x schedule: SGD lr 0.02, LinearLR from 0.001 of it.
    assert bench.warmup_lr(cfg) == pytest.approx(0.02 * 0.001)
    cfg.param_scheduler = [dict(type='MultiStepLR', milestones=[8])]
    assert bench.warmup_lr(cfg) == pytest.approx(0.02)


def _record(seconds, rss):
    return dict(seconds_per_iter=seconds, peak_rss_mib=rss, losses_finite=True)


def test_ratios_are_per_round_medians_with_range(bench):
    rounds = [{'r50': _record(10, 1000), 'res2net-50': _record(11, 1100)},
              {'r50': _record(8, 1000), 'res2net-50': _record(10, 1050)},
              {'r50': _record(10, 1000), 'res2net-50': _record(10.5, 1200)}]
    rows = bench.summarise(rounds)['models']
    row = rows['res2net-50']
    assert row['seconds_per_iter'] == 10.5 and row['peak_rss_mib'] == 1100
    assert row['seconds_per_iter_round_ratios'] == pytest.approx([1.1, 1.25, 1.05])
    assert (row['seconds_per_iter_ratio'], row['seconds_per_iter_ratio_min'],
            row['seconds_per_iter_ratio_max']) == (pytest.approx(1.1), pytest.approx(1.05),
                                                   pytest.approx(1.25))
    assert (row['peak_rss_ratio'], row['peak_rss_ratio_max']) == (pytest.approx(1.1),
                                                                  pytest.approx(1.2))
    assert row['paper_claim'] == bench.CLAIMS['res2net-50'] and 'paper_claim' not in rows['r50']
    assert rows['r50']['seconds_per_iter_ratio'] == 1.0
    with pytest.raises(ValueError, match='every round needs the r50 baseline'):
        bench.summarise([{'res2net-50': _record(1, 1)}])


@pytest.mark.parametrize('claimed, low, high, verdict', [
    ('< 1', 0.85, 0.95, 'holds'), ('< 1', 0.855, 1.081, 'undecided (range crosses 1)'),
    ('< 1', 1.0, 1.1, 'does not hold'), ('about 1.05', 1.10, 1.19, 'range excludes 1.05'),
    ('about 1.05', 0.84, 1.06, 'range includes 1.05')])
def test_paper_claims_are_judged_against_the_range(bench, claimed, low, high, verdict):
    assert bench.claim_verdict(claimed, low, high) == verdict


def test_models_interleave_in_fresh_processes(bench, monkeypatch, tmp_path):
    specs = []

    def fake(spec):
        specs.append(spec)
        seconds = 2.0 if 'r50' in spec['config'] else 1.0
        return dict(_record(seconds, 900), iter_seconds=[seconds], machine_before={},
                    machine_after={})

    monkeypatch.setattr(bench, 'run_in_fresh_process', fake)
    result = bench.main(['--sizes', '64x64', '--models', 'oct-resnet-50', '--rounds', '2',
                         '--threads', '1', '--json', str(tmp_path / 'out.json')])
    names = [s['config'].rsplit('mask-rcnn_', 1)[1].split('_fpn')[0] for s in specs]
    assert names == ['r50', 'oct-resnet-50', 'oct-resnet-50', 'r50']
    assert specs[0]['size'] == [64, 64] and specs[0]['threads'] == 1
    row = result['sizes']['64x64']['models']['oct-resnet-50']
    assert row['seconds_per_iter_ratio'] == 0.5 and row['peak_rss_ratio'] == 1.0
    assert [(r['round'], r['model']) for r in result['runs']][:2] == [(0, 'r50'),
                                                                     (0, 'oct-resnet-50')]
    assert result['meta']['command'].startswith('python benchmarks/bench_train_cost.py --sizes 64x64 ')
    with pytest.raises(SystemExit, match='--rounds must be >= 1, got 0'):
        bench.main(['--rounds', '0'])
    with pytest.raises(SystemExit, match=r"at least 32x32 .*got '16x16'"):
        bench.parse_args(['--sizes', '16x16'])


def test_quick_smoke_run_writes_the_promised_json(bench, tmp_path):
    out = tmp_path / 'train_cost.json'
    result = bench.main(['--quick', '--models', 'r50', '--threads', '1', '--json', str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    meta = result['meta']
    assert (meta['batch'], meta['threads'], meta['rounds']) == (2, 1, 1)
    assert meta['sizes'] == {'64x64': dict(warmup=1, iters=1)}
    for key in ('machine_before', 'machine_after'):
        assert set(meta[key]) >= {'cpu', 'vector_isa', 'cores', 'torch_threads', 'load_average'}
    row = result['sizes']['64x64']['models']['r50']
    assert row['seconds_per_iter'] > 0 and row['losses_finite'] is True
    assert row['peak_rss_mib'] > 100 and row['seconds_per_iter_ratio'] == 1.0
    run = result['runs'][0]
    assert len(run['iter_seconds']) == 2 and run['threads'] == 1
    assert run['peak_rss_mib'] >= run['rss_start_mib'] > 0
    assert 'load_average' in run['machine_before'] and result['claims'] == bench.CLAIMS
