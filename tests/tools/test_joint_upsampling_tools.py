"""End to end on the bundled data: the quick demo (train -> checkpoint -> test -> table),
resume, and tools/upsample.py on one image pair."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCENE = osp.join(ROOT, 'data', 'middlebury', 'motorcycle')


def _shipped_rows(config):
    """The regions table's shipped-model row, present when that model is committed."""
    return ['shipped PAC (lite), procedural'] if osp.isfile(osp.join(ROOT, 'checkpoints', config)) else []


def _run(args, cwd=ROOT, timeout=300):
    result = subprocess.run([sys.executable] + args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return result


@pytest.fixture(scope='module')
def quick_demo(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('demo')
    result = _run(['tools/demo.py', '--quick', '--work-dir', str(work_dir)], timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work_dir, result.stdout, result.stderr


def test_quick_demo_is_quiet_and_keeps_the_full_logs(quick_demo):
    """The terminal gets progress bars and tables; mmengine's config dumps, hook tables
    and loss lines go to each run's work dir."""
    work_dir, stdout, stderr = quick_demo
    terminal = stdout + stderr
    assert ' - mmengine - ' not in terminal and 'Config:' not in terminal
    assert 'depth PAC (lite, learned JBU base) seed 0: 100%' in stderr.replace('\r', '\n')
    console = work_dir / 'depth' / 'pac_lite_learned_jbu_base' / 'seed0' / 'console.log'
    assert 'Hooks will be executed in the following order' in console.read_text()


def test_quick_demo_prints_table_and_leaves_checkpoint_and_panels(quick_demo):
    work_dir, stdout, _ = quick_demo
    assert 'mean RMSE (px)' in stdout
    results = json.load(open(work_dir / 'results.json'))
    block = results['depth']['regions']
    methods = [row['method'] for row in block['rows']]
    assert methods == ['bicubic', 'JBU', 'PAC (lite, learned JBU base)', 'PAC (lite, reference)', 'DJF'] + \
        _shipped_rows('pacjointupsample_lite_x8_procedural.pth')
    for method in methods:
        assert f'| {method}' in stdout
    scores = {row['method']: row['test']['rmse_px']['mean'] for row in block['rows']}
    assert all(np.isfinite(v) and 0 < v < 50 for v in scores.values())
    # the non-learned baselines are deterministic, and JBU uses the guide: it must beat bicubic
    assert scores['JBU'] < scores['bicubic']
    checkpoint = work_dir / 'pac_lite_x8_demo.pth'
    assert checkpoint.is_file() and f'PAC checkpoint: {checkpoint}' in stdout
    panels = list((work_dir / 'depth' / 'pac_lite_learned_jbu_base' / 'seed0' / 'panels').glob('*.png'))
    assert sorted(p.stem for p in panels) == ['aloe', 'motorcycle']
    assert all(p.stat().st_size > 10_000 for p in panels)
    for row in block['rows']:
        test = {column: summary['mean'] for column, summary in row['test'].items()}
        # per-scene columns, and the last column is the metric's own mean over the scenes
        assert test['rmse_px'] == pytest.approx((test['Aloe'] + test['Motorcycle']) / 2, rel=1e-6)


def test_quick_demo_chooses_pac_on_val_and_compares_it_with_every_method(quick_demo):
    work_dir, stdout, _ = quick_demo
    block = json.load(open(work_dir / 'results.json'))['depth']['regions']
    rows = {row['method']: row for row in block['rows']}
    pac_rows = [row for name, row in rows.items() if name.startswith('PAC')]
    # chosen by the val score alone, whatever the test scores say
    assert block['chosen_pac'] == min(pac_rows, key=lambda row: row['val']['mean'])['method']
    assert all(0 < row['val']['mean'] < 50 for row in pac_rows)
    # the verdict covers every non-PAC method, DJF included, on every column
    assert sorted(block['verdict']) == sorted(['DJF', 'JBU', 'bicubic'] +
                                              _shipped_rows('pacjointupsample_lite_x8_procedural.pth'))
    chosen = rows[block['chosen_pac']]['test']
    # one seed: no spread, so "ahead" is a plain comparison of the test scores
    for method, columns in block['verdict'].items():
        for column, ahead in columns.items():
            assert ahead == (chosen[column]['mean'] < rows[method]['test'][column]['mean'])
    assert f"Verdict: {block['chosen_pac']} (chosen on val) is ahead of bicubic:" in stdout


def test_quick_demo_runs_the_flow_task_too(quick_demo):
    work_dir, stdout, _ = quick_demo
    assert 'EPE (px)' in stdout
    flow = json.load(open(work_dir / 'results.json'))['flow']['regions']
    scores = {row['method']: row['test']['epe_px']['mean'] for row in flow['rows']}
    assert sorted(scores) == sorted(['DJF', 'JBU', 'PAC (lite, bilinear base)', 'PAC (lite, reference)', 'bicubic'] +
                                    _shipped_rows('pacjointupsample_lite_x4_flow_procedural.pth'))
    assert all(np.isfinite(v) and 0 < v < 10 for v in scores.values())
    assert (work_dir / 'pac_lite_x4_flow_demo.pth').is_file()
    assert list((work_dir / 'flow' / 'pac_lite_bilinear_base' / 'seed0' / 'panels').glob('*.png'))


def test_upsample_tool_scores_a_checkpoint_and_baselines(quick_demo, tmp_path):
    work_dir, *_ = quick_demo
    values = {}
    for method, extra in (('bicubic', []), ('pac-lite', ['--checkpoint', str(work_dir / 'pac_lite_x8_demo.pth')])):
        out = tmp_path / f'{method}.png'
        result = _run(['tools/upsample.py', '--method', method, '--guide', osp.join(SCENE, 'im0.png'),
                       '--gt', osp.join(SCENE, 'disp0.pfm'), '--factor', '8', '--kind', 'disparity',
                       '--scale', '256', '--out', str(out)] + extra)
        assert result.returncode == 0, result.stderr[-2000:]
        last = result.stdout.strip().splitlines()[-1]
        assert last.startswith('RMSE ')
        values[method] = float(last.split()[1])
        assert out.is_file() and (tmp_path / f'{method}_panel.png').is_file()
    assert 0 < values['bicubic'] < 20 and 0 < values['pac-lite'] < 20


def test_upsample_tool_applies_the_flow_checkpoint(quick_demo, tmp_path):
    work_dir, *_ = quick_demo
    flow_root = osp.join(ROOT, 'data', 'flow', 'training')
    out = tmp_path / 'grove2.flo'
    result = _run(['tools/upsample.py', '--method', 'pac-lite', '--kind', 'flow', '--factor', '4',
                   '--checkpoint', str(work_dir / 'pac_lite_x4_flow_demo.pth'),
                   '--guide', osp.join(flow_root, 'clean', 'Grove2', 'frame_0001.png'),
                   '--gt', osp.join(flow_root, 'flow', 'Grove2', 'frame_0001.flo'), '--out', str(out)])
    assert result.returncode == 0, result.stderr[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith('EPE ') and 0 < float(last.split()[1]) < 10
    assert out.is_file()


def test_upsample_tool_rejects_mismatched_sizes(tmp_path):
    import imageio.v3 as iio
    iio.imwrite(tmp_path / 'low.png', np.ones((7, 9), np.uint16))
    result = _run(['tools/upsample.py', '--method', 'bicubic', '--guide', osp.join(SCENE, 'im0.png'),
                   '--low', str(tmp_path / 'low.png'), '--out', str(tmp_path / 'out.png')])
    assert result.returncode == 2
    assert 'not an integer factor' in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_resume_continues_the_same_run(tmp_path):
    config = 'configs/joint_upsampling/djf_x8_demo.py'
    common = ['--work-dir', str(tmp_path), '--cfg-options', 'train_cfg.max_iters=4', 'train_cfg.val_interval=100',
              'default_hooks.checkpoint.interval=2', 'default_hooks.checkpoint.max_keep_ckpts=3',
              'default_hooks.logger.interval=1', 'custom_hooks=[]']
    first = _run(['tools/train.py', config] + common[:3] + ['train_cfg.max_iters=2'] + common[4:])
    assert first.returncode == 0, first.stderr[-2000:]
    assert (tmp_path / 'iter_2.pth').is_file()
    resumed = _run(['tools/train.py', config, '--resume', str(tmp_path / 'iter_2.pth')] + common)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    log = resumed.stdout + resumed.stderr
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'Iter(train) [3/4]' in log and 'Iter(train) [1/4]' not in log
    import torch
    state = torch.load(tmp_path / 'iter_4.pth', map_location='cpu', weights_only=False)
    assert state['meta']['iter'] == 4
    # Adam's step counter carried over from the first two iterations
    steps = {int(s['step']) for s in state['optimizer']['state'].values()}
    assert steps == {4}
    test = _run(['tools/test.py', config, str(tmp_path / 'iter_4.pth'), '--work-dir', str(tmp_path / 'test'),
                 '--cfg-options', 'custom_hooks=[]'])
    assert test.returncode == 0, test.stderr[-2000:]
    assert 'rmse_px' in test.stdout + test.stderr
