"""The backbone benchmark's bookkeeping (goals, baseline choice, ratios over rounds,
the JSON layout) and its oneDNN-forced baseline; timings are its output, never a
test's assertion."""
import json

import pytest
import torch
from torch import nn

from tests.helpers.e2e import load_script


@pytest.fixture(scope='module')
def bench():
    return load_script('benchmarks/bench_backbones.py')


def test_goals_are_the_flop_margin_and_the_ceiling(bench):
    flop = dict(ratio=0.6728, source='latency_bound.json estimate')
    goals = bench.goals_for('oct-resnet50_a0.5', flop)
    assert [g['goal'] for g in goals] == ['flop']
    assert goals[0]['limit'] == pytest.approx(0.74008)  # the "Oct <= 0.74"
    res2net = bench.goals_for('res2net50_26w4s', dict(ratio=1.04, source='counter'))
    assert [(g['goal'], g['limit']) for g in res2net] == [('flop', pytest.approx(1.144)),
                                                          ('ceiling', 1.3)]
    assert bench.goals_for('acnet50_dataset', None) == [dict(goal='ceiling', limit=1.4)]
    checked = bench.check_goals(1.2, res2net)
    assert [g['passed'] for g in checked] == [False, True]
    assert [g['passed'] for g in bench.check_goals(1.144, res2net[:1])] == [True]


def test_baseline_is_the_faster_resnet50(bench):
    assert bench.choose_baseline({'resnet50': 2.0, 'resnet50_onednn': 1.5, 'x': 0.1}) == \
        'resnet50_onednn'
    assert bench.choose_baseline({'resnet50': 1.0, 'resnet50_onednn': 1.5}) == 'resnet50'
    assert bench.choose_baseline({'resnet50': 3.0, 'oct': 1.0}) == 'resnet50'
    with pytest.raises(ValueError, match='no ResNet-50 baseline was timed'):
        bench.choose_baseline({'oct': 1.0})


def test_ratios_are_per_round_to_the_chosen_baseline(bench):
    rounds = [{'resnet50': 100, 'resnet50_onednn': 90, 'oct': 72},
              {'resnet50': 100, 'resnet50_onednn': 80, 'oct': 64},
              {'resnet50': 100, 'resnet50_onednn': 120, 'oct': 84}]
    goals = {'oct': [dict(goal='flop', limit=0.75)]}
    summary = bench.summarise(rounds, goals)
    # oneDNN's median (90) beats stock's (100), so every round divides by its oneDNN time.
    assert summary['baseline'] == 'resnet50_onednn'
    assert summary['baseline_ms'] == {'resnet50': 100000, 'resnet50_onednn': 90000}
    row = summary['models']['oct']
    assert row['round_ratios'] == pytest.approx([0.8, 0.8, 0.7])
    assert (row['ratio'], row['ratio_min'], row['ratio_max']) == \
        (pytest.approx(0.8), pytest.approx(0.7), pytest.approx(0.8))
    assert row['ms'] == 72000 and row['goals'] == [dict(goal='flop', limit=0.75, passed=False)]
    assert summary['models']['resnet50_onednn']['ratio'] == 1.0
    assert summary['models']['resnet50']['goals'] == []


def test_each_backbone_counts_with_its_faster_kernel_variant(bench):
    # Like for like: a backbone gets the oneDNN forcing the baseline gets, and counts
    # with whichever of its two variants is faster; the other variant carries no goals.
    rounds = [{'resnet50': 100, 'resnet50_onednn': 80, 'oct': 72, 'oct_onednn': 60},
              {'resnet50': 100, 'resnet50_onednn': 80, 'oct': 64, 'oct_onednn': 56},
              {'resnet50': 100, 'resnet50_onednn': 80, 'oct': 80, 'oct_onednn': 64}]
    summary = bench.summarise(rounds, {'oct': [dict(goal='flop', limit=0.75)]})
    assert summary['chosen'] == {'resnet50': 'resnet50_onednn', 'oct': 'oct_onednn'}
    assert summary['models']['oct']['goals'] == []
    counted = summary['models']['oct_onednn']
    assert counted['round_ratios'] == pytest.approx([0.75, 0.7, 0.8])
    assert counted['goals'] == [dict(goal='flop', limit=0.75, passed=True)]
    table = bench.markdown_table(dict(eager=dict(threads={'1': {'32x32': summary}})))
    assert '| oct_onednn | 60000.0 | 0.75x (0.70-0.80) * | flop <= 0.750: pass |' in table
    assert '| oct | 72000.0 | 0.90x (0.80-1.00) | - |' in table
    assert bench.network_of('acnet50_pixel_onednn') == 'acnet50_pixel'


def test_combine_keeps_runtimes_and_thread_counts_apart(bench):
    def one(eager_oct, ort_oct):
        return dict(eager={'32x32': {'resnet50': 1.0, 'resnet50_onednn': 2.0, 'oct': eager_oct}},
                    onnxruntime={'32x32': {'resnet50': 1.0, 'oct': ort_oct}})
    flops = {'32x32': {'oct': dict(ratio=0.5, source='s')}}
    results = bench.combine({1: [one(0.6, 0.9)], 2: [one(0.5, 0.4), one(0.7, 0.6)]}, flops)
    assert set(results) == {'eager', 'onnxruntime'}
    assert set(results['eager']['threads']) == {'1', '2'}
    two = results['onnxruntime']['threads']['2']['32x32']
    assert two['baseline'] == 'resnet50' and two['models']['oct']['ratio'] == pytest.approx(0.5)
    assert two['models']['oct']['goals'][0]['passed'] is True  # 0.5 <= 1.1 * 0.5
    assert results['eager']['threads']['1']['32x32']['models']['oct']['goals'][0]['passed'] is False
    table = bench.markdown_table(results)
    assert 'onnxruntime, 2 thread(s):' in table and 'flop <= 0.550: pass' in table
    assert '32x32: baseline resnet50 (resnet50 1000.0 ms, resnet50_onednn 2000.0 ms)' in table


def test_rejudge_checks_the_goals_again_against_a_newer_bound(bench, tmp_path):
    def bound(estimate):
        path = tmp_path / f'bound_{estimate}.json'
        path.write_text(json.dumps({'meta': {'date': 'today'}, 'sizes': {'32x32': {'backbones': {
            'oct-resnet50_a0.5': dict(estimate=estimate)}}}}))
        return str(path)

    name = 'oct-resnet50_a0.5'
    rounds = [dict(eager={'32x32': {'resnet50': 1.0, 'resnet50_onednn': 2.0, name: 0.8,
                                    name + '_onednn': 0.9}}, onnxruntime={})]
    flops = bench.flop_ratios(['resnet50', name], [(32, 32)], bound(0.75))
    results = dict(meta=dict(sizes={'32x32': {}}), flop_ratios=flops,
                   **bench.combine({1: rounds}, flops))
    row = lambda: results['eager']['threads']['1']['32x32']['models']  # noqa: E731
    assert row()[name]['goals'][0]['passed'] is True  # 0.8 <= 1.1 * 0.75
    bench.rejudge(results, bound(0.70))
    (goal,) = row()[name]['goals']
    assert (goal['goal'], goal['limit'], goal['passed']) == ('flop', pytest.approx(0.77), False)
    assert row()[name + '_onednn']['goals'] == []  # the slower variant still carries none
    assert row()[name]['ratio'] == pytest.approx(0.8)  # timings untouched
    assert results['flop_ratios']['32x32'][name]['ratio'] == 0.70
    assert results['meta']['goals_from']['latency_bound_date'] == 'today'


def test_force_onednn_runs_every_conv_on_onednn_with_the_same_numbers(bench, monkeypatch):
    models, unavailable = bench.build_models(['resnet50', 'resnet50_onednn'])
    assert not unavailable
    models['resnet50_onednn'].load_state_dict(models['resnet50'].state_dict())
    calls = []
    real = torch.mkldnn_convolution

    def counting(*args):
        calls.append(args[1].shape)
        return real(*args)

    monkeypatch.setattr(torch, 'mkldnn_convolution', counting)
    image = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        expected = models['resnet50'](image)
        calls.clear()
        got = models['resnet50_onednn'](image)
    convs = sum(type(m) is nn.Conv2d for m in models['resnet50'].modules())
    assert len(calls) == convs == 53
    for a, b in zip(expected, got):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=r"conv '0' has unequal H/W stride"):
        bench.force_onednn(nn.Sequential(nn.Conv2d(3, 4, (1, 3), padding=(0, 1))))


def test_a_onednn_variant_that_runs_no_forced_conv_is_not_timed(bench, monkeypatch):
    class CallsTheKernelItself(nn.Module):  # like a fast path: the conv's weights, not its forward
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            return (torch.nn.functional.conv2d(x, self.conv.weight, self.conv.bias, padding=1),)

    forced = bench.force_onednn(CallsTheKernelItself().eval())
    assert bench.forced_conv_calls(forced) == 0
    resnet = bench.force_onednn(bench.build_models(['resnet50'])[0]['resnet50'])
    assert bench.forced_conv_calls(resnet) == 53
    monkeypatch.setitem(bench.BACKBONES, 'own-kernels', (dict(type='Own'), None))
    import convdense.models.complexity as complexity
    monkeypatch.setattr(complexity, 'build_backbone', lambda cfg: CallsTheKernelItself())
    models, unavailable = bench.build_models(['own-kernels', 'own-kernels_onednn'])
    assert list(models) == ['own-kernels']
    assert unavailable['own-kernels_onednn'].startswith('same computation as own-kernels')


def test_flop_ratios_read_latency_bound_else_count(bench, tmp_path):
    bound = tmp_path / 'bound.json'
    bound.write_text(json.dumps({'sizes': {'32x32': {'backbones': {
        'oct-resnet50_a0.5': dict(estimate=0.67)}}}}))
    ratios = bench.flop_ratios(['resnet50', 'resnet50_onednn', 'oct-resnet50_a0.5',
                                'res2net50_26w4s'], [(32, 32)], str(bound))['32x32']
    assert set(ratios) == {'oct-resnet50_a0.5', 'res2net50_26w4s'}
    assert ratios['oct-resnet50_a0.5'] == dict(ratio=0.67, source='bound.json estimate')
    from convdense.models.complexity import classifier_complexity
    count = {name: classifier_complexity(bench.BACKBONES[name][0], 32)['flops']
             for name in ('resnet50', 'res2net50_26w4s')}
    assert ratios['res2net50_26w4s'] == dict(
        ratio=pytest.approx(count['res2net50_26w4s'] / count['resnet50']),
        source='complexity.classifier_complexity')


def test_quick_smoke_run_writes_the_promised_json(bench, tmp_path):
    out = tmp_path / 'backbones.json'
    result = bench.main(['--quick', '--sizes', '32x32', '--models', 'hetconv-resnet50_p4',
                         '--runtimes', 'eager', '--json', str(out),
                         '--latency-bound', str(tmp_path / 'missing.json')])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result['meta']['threads'] == [1] and result['meta']['rounds'] == 1
    assert 'onnxruntime' not in result and len(result['rounds']) == 1
    size = result['eager']['threads']['1']['32x32']
    assert size['baseline'] in ('resnet50', 'resnet50_onednn')
    assert set(size['models']) == {'resnet50', 'resnet50_onednn', 'hetconv-resnet50_p4',
                                   'hetconv-resnet50_p4_onednn'}
    assert size['models'][size['baseline']]['ratio'] == 1.0
    het = size['models'][size['chosen']['hetconv-resnet50_p4']]
    flop = result['flop_ratios']['32x32']['hetconv-resnet50_p4']
    assert 0.5 < flop['ratio'] < 0.9  # HetConv P=4 cuts the 3x3 convs' multiply-adds to 1/3
    assert het['goals'] == [dict(goal='flop', limit=pytest.approx(1.1 * flop['ratio']),
                                 flop_ratio=flop['ratio'], source=flop['source'],
                                 passed=het['ratio'] <= 1.1 * flop['ratio'])]
    with pytest.raises(SystemExit, match='--trials must be >= 1'):
        bench.main(['--trials', '0'])
    with pytest.raises(SystemExit, match="size must look like 224x224, got '32'"):
        bench.parse_args(['--sizes', '32'])


def test_rounds_run_in_fresh_processes_with_thread_counts_interleaved(bench, monkeypatch,
                                                                      tmp_path):
    specs = []

    def fake_round(spec):
        specs.append(spec)
        times = {'resnet50': 1.0, 'resnet50_onednn': 1.2, 'hetconv-resnet50_p4': 0.8}
        return dict(threads=spec['threads'], machine_before={}, machine_after={},
                    eager={'32x32': times}, onnxruntime={})

    monkeypatch.setattr(bench, 'run_round_in_fresh_process', fake_round)
    monkeypatch.setattr(bench, 'flop_ratios', lambda names, sizes, path: {})
    result = bench.main(['--sizes', '32x32', '--models', 'hetconv-resnet50_p4', '--runtimes',
                         'eager', '--threads', '1', '2', '--trials', '2',
                         '--json', str(tmp_path / 'out.json')])
    assert [s['threads'] for s in specs] == [1, 2, 2, 1]
    assert specs[0]['sizes'] == [[32, 32, 1, 5]] and specs[0]['onnx'] == {}
    assert specs[0]['eager'] == ['resnet50', 'resnet50_onednn', 'hetconv-resnet50_p4',
                                 'hetconv-resnet50_p4_onednn']
    row = result['eager']['threads']['2']['32x32']['models']['hetconv-resnet50_p4']
    assert row['round_ratios'] == [0.8, 0.8] and row['goals'] == []


def test_onnxruntime_round_times_every_exported_model(bench, tmp_path):
    export = load_script('tools/deployment/export_onnx.py')

    class Tiny(nn.Module):
        out_indices = (0, )

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            return (self.conv(x), )

    path = str(tmp_path / 'tiny.onnx')
    export.export_onnx(export.BackboneForExport(Tiny()).eval(), (32, 32), path, dynamic=False)
    spec = dict(threads=1, sizes=[[32, 32, 1, 2]], eager=[],
                onnx={'32x32': {'resnet50': path, 'tiny': path}})
    result = bench.run_round(spec)
    assert result['eager'] == {} and set(result['onnxruntime']['32x32']) == {'resnet50', 'tiny'}
    assert all(t > 0 for t in result['onnxruntime']['32x32'].values())
    summary = bench.combine({1: [result]}, {})['onnxruntime']['threads']['1']['32x32']
    assert summary['baseline'] == 'resnet50' and set(summary['baseline_ms']) == {'resnet50'}
