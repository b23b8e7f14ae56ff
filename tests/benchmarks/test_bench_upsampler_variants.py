"""The upsampler variant study (benchmarks/bench_upsampler_variants.py): which config a
model trains, options refused before training, runs merged per (variant, seed), the val
table, and one short run whose recorded val history is what the Runner chose on."""
import json
import os.path as osp

import pytest

from convdense import launch

from tests.helpers.e2e import load_script


@pytest.fixture(scope='module')
def bench():
    return load_script('benchmarks/bench_upsampler_variants.py')


def test_the_model_names_its_procedural_config_and_a_cascade_is_refused(bench):
    assert osp.basename(bench.config_of('depth-x4')) == 'pacjointupsample_lite_x4_procedural.py'
    assert osp.basename(bench.config_of('flow-x8')) == 'pacjointupsample_lite_x8_flow_procedural.py'
    with pytest.raises(launch.ConfigError, match="'depth-x16' is not a trained shipped model"):
        bench.config_of('depth-x16')


@pytest.mark.parametrize('argv, message', [
    (['--variant', 'config', '--cfg-options', 'optim_wrapper.optimizer.lr=1e-4'], 'takes no --cfg-options'),
    (['--variant', 'lower-lr'], 'takes no --cfg-options'),
    (['--variant', 'typo', '--cfg-options', 'optim_wraper.optimizer.lr=1e-4'], "unknown config key 'optim_wraper"),
])
def test_inconsistent_or_misspelt_options_are_refused_before_training(bench, tmp_path, argv, message):
    with pytest.raises(launch.ConfigError, match=message):
        bench.main(['--model', 'depth-x4', '--work-dir', str(tmp_path), '--out', str(tmp_path / 'r.json')] + argv)
    assert not (tmp_path / 'r.json').exists()


def _record(variant, seed, history, options=None):
    return dict(variant=variant, seed=seed, cfg_options=options or {}, iters=history[-1][0], metric='rmse_px',
                val_scene='aloe', val_history=history, best_val=min(score for _, score in history))


def test_runs_are_merged_per_variant_and_seed_and_tabled_against_jbu(bench):
    baselines = {'bicubic': 2.0, 'JBU': 1.25}
    results = bench.add_variant({}, 'depth-x4', _record('config', 0, [[100, 1.30], [200, 1.20]]), baselines)
    results = bench.add_variant(results, 'depth-x4', _record('lr', 0, [[100, 1.40]], {'a.b': 3e-4}), baselines)
    results = bench.add_variant(results, 'depth-x4', _record('config', 0, [[100, 1.35], [200, 1.30]]), baselines)
    runs = results['depth-x4']['runs']
    assert [(r['variant'], r['best_val']) for r in runs] == [('lr', 1.40), ('config', 1.30)]
    table = bench.format_table(results)
    assert '| config | 0 | the config | 1.350 | 1.300 | 1.300 | -4.0 % |' in table
    assert '| lr | 0 | a.b=0.0003 | 1.400 | – | 1.400 | -12.0 % |' in table


def test_a_short_run_records_the_val_score_the_runner_chose_on(bench, tmp_path):
    out = tmp_path / 'r.json'
    assert bench.main(['--model', 'depth-x4', '--variant', 'lower-lr', '--cfg-options',
                       'optim_wrapper.optimizer.lr=3e-4', '--iters', '2', '--work-dir', str(tmp_path / 'w'),
                       '--out', str(out)]) == 0
    entry = json.loads(out.read_text())['depth-x4']
    (run,) = entry['runs']
    assert run['iters'] == 2 and run['val_history'][-1][0] == 2
    assert run['best_val'] == pytest.approx(min(score for _, score in run['val_history']), abs=1e-4)
    assert run['cfg_options'] == {'optim_wrapper.optimizer.lr': 3e-4}
    assert entry['baselines_val']['JBU'] < entry['baselines_val']['bicubic']
    assert run['command'].endswith(f'--out {out}')
