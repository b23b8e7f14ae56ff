"""The digit-scene benchmark's bookkeeping (schedule scaling, ratios to ResNet-50,
merging separate invocations, the table) and the demo's config lookup; the
training itself is covered by tests/tools/test_upstream_e2e.py."""
import json

import pytest
from mmengine.config import Config

from convdense import launch

from tests.helpers.e2e import REPO, load_script


@pytest.fixture(scope='module')
def bench():
    return load_script('benchmarks/bench_digit_scenes.py')


@pytest.fixture(scope='module')
def demo():
    return load_script('tools/digit_scenes_demo.py')


def test_every_backbone_has_a_config_per_task_differing_only_in_the_backbone(demo):
    for task in demo.CONFIG_NAMES:
        base = Config.fromfile(demo.config_path(task, 'r50')).to_dict()
        for backbone in demo.BACKBONES:
            cfg = Config.fromfile(demo.config_path(task, backbone)).to_dict()
            assert cfg['model'].pop('backbone')['type'] != 'mmdet.ResNet' or backbone == 'r50'
            assert {k: v for k, v in cfg.items() if k != 'model'} == \
                {k: v for k, v in base.items() if k != 'model'}, backbone
            assert cfg['model'] == {k: v for k, v in base['model'].items() if k != 'backbone'}
    with pytest.raises(ValueError, match='backbone must be one of'):
        demo.config_path('det', 'resnet50')


@pytest.mark.parametrize('task', ['cls', 'det', 'seg'])
def test_schedule_scales_with_the_run(demo, task):
    cfg = Config.fromfile(demo.config_path(task, 'r50'))
    old = cfg.train_cfg.max_iters
    launch.set_schedule(cfg, old // 10, val_interval=old // 30)
    assert cfg.train_cfg.max_iters == old // 10 and cfg.train_cfg.val_interval == old // 30
    warmup, main = cfg.param_scheduler
    assert warmup.end <= old // 100 and main.end == old // 10
    assert all(m <= old // 10 for m in main.get('milestones', [])) and main.get('T_max', 0) <= old // 10
    assert cfg.default_hooks.checkpoint.interval == old // 30
    with pytest.raises(ValueError, match='iters must be positive'):
        launch.set_schedule(cfg, 0)


def _record(seconds, rss, ap):
    return dict(test={'coco/bbox_mAP': ap, 'coco/bbox_mAP_50': ap, 'coco/segm_mAP': ap,
                      'coco/segm_mAP_50': ap}, seconds_per_iter=seconds, peak_rss_mib=rss)


def test_ratios_merge_and_table(bench, tmp_path):
    models = bench.add_ratios({'r50': _record(2.0, 1000.0, 0.5), 'oct-resnet-50': _record(1.5, 900.0, 0.4)})
    assert models['oct-resnet-50']['seconds_per_iter_ratio'] == 0.75
    assert models['oct-resnet-50']['peak_rss_ratio'] == 0.9 and models['r50']['peak_rss_ratio'] == 1.0
    path = tmp_path / 'results.json'
    det = dict(iters=100, scenes=[10, 2, 2], from_scratch=False)
    bench.merge(str(path), 'det', det, 'r50', _record(2.0, 1000.0, 0.5))
    bench.merge(str(path), 'det', det, 'oct-resnet-50', _record(1.5, 900.0, 0.4))
    seg = dict(iters=50, scenes=[10, 2, 2], from_scratch=False)
    merged = bench.merge(str(path), 'seg', seg, 'r50',
                         dict(test={'mIoU': 0.7}, seconds_per_iter=1.0, peak_rss_mib=500.0))
    assert set(json.loads(path.read_text())) == {'det', 'seg'} == set(merged)
    assert merged['det']['models']['oct-resnet-50']['seconds_per_iter_ratio'] == 0.75
    # another schedule replaces the section instead of mixing two schedules in one table
    other = bench.merge(str(path), 'det', dict(det, iters=200), 'r50', _record(2.0, 1000.0, 0.6))
    assert list(other['det']['models']) == ['r50'] and other['det']['iters'] == 200
    merged = bench.merge(str(path), 'det', det, 'r50', _record(2.0, 1000.0, 0.5))
    merged = bench.merge(str(path), 'det', det, 'oct-resnet-50', _record(1.5, 900.0, 0.4))
    table = bench.format_table(merged).splitlines()
    assert table[0].startswith('| backbone | bbox AP |') and 'mIoU' in table[0]
    assert table[2].startswith('| ResNet-50 | 0.500 |') and '| 0.700 |' in table[2]
    assert '1.50 s (0.75×)' in table[3] and table[3].endswith('– | – | – |')


def test_val_history_reads_mmengine_scalars(bench, tmp_path):
    """Validation metrics from vis_data/scalars.json as 0-1 fractions; a logger that
    keys validation by epoch (step 0) gets the benchmark's validation iterations."""
    scalars = tmp_path / '20260101_000000' / 'vis_data'
    scalars.mkdir(parents=True)
    lines = [dict(loss=1.0, iter=50, step=50), {'mIoU': 8.5, 'step': 333}, dict(loss=0.5, step=400),
             {'mIoU': 15.1, 'step': 1000}]
    (scalars / 'scalars.json').write_text('\n'.join(json.dumps(line) for line in lines))
    assert bench.val_history(str(tmp_path), 'seg', 1000) == [[333, 0.085], [1000, 0.151]]
    lines = [{'coco/bbox_mAP': 0.1, 'step': 0}, {'coco/bbox_mAP': 0.2, 'step': 0},
             {'coco/bbox_mAP': 0.3, 'step': 0}, {'coco/bbox_mAP': 0.3, 'step': 0}]
    (scalars / 'scalars.json').write_text('\n'.join(json.dumps(line) for line in lines))
    assert bench.val_history(str(tmp_path), 'det', 1000) == [[333, 0.1], [666, 0.2], [999, 0.3],
                                                             [1000, 0.3]]
    assert bench.val_history(str(tmp_path / 'missing'), 'det', 1000) == []


def test_seeds_and_variants_get_their_own_rows_and_folders(bench, tmp_path):
    assert bench.record_key('r50') == 'r50' and bench.record_key('r50', seed=1) == 'r50:seed1'
    assert bench.record_key('oct-resnet-50', 'head4x256') == 'oct-resnet-50:head4x256'
    assert bench.run_dir('W', 'det', 'r50:seed1') == 'W/mask-rcnn_r50_fpn_digit-scenes:seed1'
    assert bench.run_dir('W', 'cls', 'r50') == 'W/digit-classifier_r50'
    path = str(tmp_path / 'results.json')
    det = dict(iters=100, scenes=[10, 2, 2], from_scratch=False)
    for key, ap in (('r50:seed1', 0.4), ('hetconv-resnet-50', 0.3), ('r50', 0.5)):
        merged = bench.merge(path, 'det', det, key, _record(2.0, 1000.0, ap))
    rows = bench.format_table(merged).splitlines()[2:]
    assert [row.split(' | ')[0] for row in rows] == [
        '| ResNet-50', '| ResNet-50 (seed1)', '| HetConv-ResNet-50 P=4']
    # a variant of another schedule never replaces the runs in the file: it needs its own file
    with pytest.raises(SystemExit, match='another schedule .*iters=100.* its own --out'):
        bench.merge(path, 'det', dict(det, iters=200), 'r50:longer', _record(2.0, 1000.0, 0.6))
    assert set(json.load(open(path))['det']['models']) == {'r50', 'r50:seed1', 'hetconv-resnet-50'}


def _pointing_report(region, tolerance, accuracy):
    results = [dict(layer=f'backbone.layer{i}', hits=int(accuracy * 10), misses=9 - int(accuracy * 10),
                    constant_maps=1, pairs=10, accuracy=accuracy) for i in (1, 4)]
    results.append(dict(layer='mean', hits=2, misses=8, constant_maps=0, pairs=10, accuracy=0.2))
    return dict(region=region, tolerance_px=tolerance, images=4, pairs=10, chance_rate=0.05,
                results=results)


def test_pointing_game_section_merges_beside_the_tasks(bench, tmp_path):
    path = str(tmp_path / 'results.json')
    bench.merge(path, 'det', dict(iters=100, scenes=[10, 2, 2], from_scratch=False), 'r50',
                _record(2.0, 1000.0, 0.5))
    for key, accuracy in (('oct-resnet-50', 0.3), ('r50', 0.6)):
        merged = bench.merge_pointing_game(path, key, {'box15': _pointing_report('box', 15, accuracy),
                                                       'mask0': _pointing_report('mask', 0, 0.1)})
    assert merged['det']['models']['r50']['test']['coco/bbox_mAP'] == 0.5
    assert merged['cam']['models']['r50']['box15']['layer4'] == dict(
        hits=6, misses=3, constant_maps=1, pairs=10, accuracy=0.6)
    table = bench.format_cam_table(merged)
    assert 'box region, 15 px tolerance: 10 (image, digit) pairs on 4 test scenes, chance 0.050' in table
    lines = table.splitlines()
    header = lines.index('| detector | layer1 | layer4 | mean | constant maps |')
    assert lines[header + 2] == '| ResNet-50 | 0.600 | 0.600 | 0.200 | 1, 1, 0 |'
    assert lines[header + 3].startswith('| Oct-ResNet-50 α=0.5 | 0.300 |')
    assert 'mask region, 0 px tolerance' in table
    assert 'cam' not in bench.format_table(merged)  # the task table ignores the section


def test_variants_need_their_options(bench, capsys):
    with pytest.raises(SystemExit):
        bench.main(['--variant', 'x'])
    assert '--variant NAME needs --cfg-options or --iters' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(['--cfg-options', 'a=1'])
    assert '--cfg-options needs --variant NAME' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(['--tasks', 'cls', '--seed', '1'])


def test_a_seed_child_process_runs_its_one_task(bench, tmp_path, monkeypatch):
    """The chain's child for a second seed (``--one seg r50 --seed 1``, no --tasks) trains
    its task, not refused as if it were asked for a seeded classifier."""
    calls = []
    monkeypatch.setattr(bench, 'run_one', lambda task, backbone, *args: calls.append((task, backbone, args[-2]))
                        or {'test': {}})
    out = tmp_path / 'one.json'
    bench.main(['--one', 'seg', 'r50', '--seed', '1', '--iters', '2', '--one-out', str(out)])
    assert calls == [('seg', 'r50', 1)] and out.exists()


def test_demo_prints_what_a_model_that_learnt_nothing_scores(demo, tmp_path):
    """The trivial row: the most frequent digit for top-1, and for mIoU what mmseg's
    own IoUMetric gives an all-background prediction on the same label maps."""
    import numpy as np
    import torch
    from mmseg.evaluation import IoUMetric
    from PIL import Image

    maker = load_script('tools/make_digit_scenes.py')
    root = maker.ensure_digit_scenes(str(tmp_path / 'scenes'), seed=1, scenes=(2, 2, 3))
    trivial = demo.trivial_scores(root)
    labels = [ann['category_id'] for ann in
              json.loads((tmp_path / 'scenes/annotations/instances_test.json').read_text())['annotations']]
    assert trivial['cls']['digits/top1'] == max(labels.count(c) for c in set(labels)) / len(labels)
    metric = IoUMetric()
    metric.dataset_meta = dict(classes=tuple(['background'] + [str(d) for d in range(10)]))
    for path in sorted((tmp_path / 'scenes/annotations/test').iterdir()):
        truth = torch.from_numpy(np.asarray(Image.open(path)).astype(np.int64))
        metric.process([], [dict(pred_sem_seg=dict(data=torch.zeros_like(truth)[None]),
                                 gt_sem_seg=dict(data=truth[None]))])
    # mmseg leaves a digit absent from the three scenes out of its mean; ours counts
    # all eleven classes, as the full test split has every digit
    present = len({int(v) for path in (tmp_path / 'scenes/annotations/test').iterdir()
                   for v in np.unique(np.asarray(Image.open(path)))})
    expected = metric.compute_metrics(metric.results)['mIoU'] * present / 11
    assert abs(trivial['seg']['mIoU'] - expected) < 0.02
    assert all(value == 0 for value in trivial['det'].values())
    table = demo.format_table({'r50': {'cls': dict(test={'digits/top1': 0.5})}}, ['cls'], trivial)
    assert table.splitlines()[-1] == f"| trivial (learnt nothing) | {trivial['cls']['digits/top1']:.3f} |"


def test_cam_figure_is_drawn_from_the_saved_maps(bench, tmp_path):
    import numpy as np
    from PIL import Image
    maker = load_script('tools/make_digit_scenes.py')
    root = maker.ensure_digit_scenes(str(tmp_path / 'scenes'), seed=1, scenes=(2, 2, 2))
    category = bench.figure_category(root)
    assert category in [str(d) for d in range(10)]
    maps = tmp_path / 'maps'
    with pytest.raises(FileNotFoundError, match='no saved CAM maps'):
        bench.write_figure(root, str(tmp_path), str(tmp_path / 'none.png'))
    maps.mkdir()
    for key in ('oct-resnet-50', 'r50'):
        cam = np.zeros((4, 128, 128), np.float16)
        cam[0, 10:20, 30:40] = 1
        np.save(maps / f'{key}.npy', cam)
        (maps / f'{key}.json').write_text(json.dumps(dict(scene=bench.FIGURE_SCENE, category=category,
                                                          layers=['layer1', 'layer2', 'layer3', 'layer4'])))
    out = bench.write_figure(root, str(maps), str(tmp_path / 'figure.png'))
    width, height = Image.open(out).size
    assert width > 2.5 * height  # the scene and two detectors side by side
    # another seed's maps are kept under a file name without ':' and not drawn
    assert bench.maps_stem('r50:seed1') == 'r50_seed1'
    np.save(maps / 'r50_seed1.npy', np.zeros((4, 128, 128), np.float16))
    (maps / 'r50_seed1.json').write_text(json.dumps(dict(key='r50:seed1', scene=bench.FIGURE_SCENE,
                                                         category=category, layers=['layer1'])))
    assert Image.open(bench.write_figure(root, str(maps), str(tmp_path / 'figure2.png'))).size == (width, height)


def test_val_table_lists_every_run_at_every_validation(bench):
    def record(options, history):
        return dict(cfg_options=options, val_metrics=[[step, {'coco/bbox_mAP': b, 'coco/segm_mAP': m,
                                                              'coco/bbox_mAP_50': b, 'coco/segm_mAP_50': m}]
                                                      for step, b, m in history])
    results = {'det': dict(iters=300, models={
        'r50:head4x256': record({'model.roi_head.mask_head.num_convs': 4}, [(100, 0.2, 0.1), (300, 0.4, 0.3)]),
        'r50': record({}, [(100, 0.1, 0.0), (200, 0.2, 0.05)])})}
    lines = bench.format_val_table(results).splitlines()
    assert lines[0] == 'det, 300 iterations, val bbox AP / bbox AP50 / mask AP / mask AP50:'
    assert lines[2] == '| run | options | @100 | @200 | @300 |'
    assert lines[4] == '| ResNet-50 | the config | 0.100 / 0.100 / 0.000 / 0.000 | 0.200 / 0.200 / 0.050 / 0.050 | – / – / – / – |'
    assert lines[5].startswith('| ResNet-50 (head4x256) | model.roi_head.mask_head.num_convs=4 | 0.200 /')


def test_speed_ratios_only_between_runs_on_one_cpu_model(bench):
    def on(cpu, seconds):
        return dict(_record(seconds, 1000.0, 0.5), machine_before=dict(cpu=cpu))
    models = bench.add_ratios({'r50': on('A', 2.0), 'oct-resnet-50': on('A', 1.0),
                               'hetconv-resnet-50': on('B', 1.0)})
    assert models['oct-resnet-50']['seconds_per_iter_ratio'] == 0.5
    assert models['hetconv-resnet-50']['seconds_per_iter_ratio'] is None
    table = bench.format_table({'det': dict(iters=1, models=models)})
    assert '1.00 s (other CPU than R-50)' in table and '1.00 s (0.50×)' in table


def test_the_tested_checkpoint_is_this_runs_best_not_an_earlier_runs(demo, tmp_path):
    """An earlier run's best_..._iter_300.pth sorts after this run's ..._iter_1000.pth as text."""
    import os
    old, new = tmp_path / 'best_coco_bbox_mAP_iter_300.pth', tmp_path / 'best_coco_bbox_mAP_iter_1000.pth'
    old.write_bytes(b'old')
    new.write_bytes(b'new')
    os.utime(old, (1, 1))
    assert demo.best_or_last_checkpoint(str(tmp_path), 1000) == str(new)
    for path in (old, new):
        path.unlink()
    assert demo.best_or_last_checkpoint(str(tmp_path), 1000) == str(tmp_path / 'iter_1000.pth')


def test_cost_table_names_the_cpu_and_load_of_every_step(bench):
    machine = dict(cpu='AMD EPYC', load_average=[2.5, 2.0, 1.0])
    results = {'det': {'models': {'r50': dict(machine_before=machine, machine_after=dict(machine, load_average=[4.0]),
                                              train_seconds=3600, wall_seconds=3690,
                                              cpu_seconds=3300)}},
               'cls': {'models': {'res2net-50': dict(train_seconds=600)}}}
    lines = bench.format_cost_table(results).splitlines()
    assert lines[2] == '| Res2Net-50 26w×4s | cls | – | – | 10 min | – | – |'   # cls first, unknowns as –
    assert lines[3] == '| ResNet-50 | det | AMD EPYC | 2.5 → 4.0 | 60 min | 62 min | 55 min |'


def test_children_cpu_seconds_counts_a_finished_child_and_not_its_sleep(bench):
    """A child that spins ~0.3 s of CPU then sleeps 0.5 s adds about 0.3 s, not 0.8 s."""
    import subprocess
    import sys
    before = bench.children_cpu_seconds()
    subprocess.run([sys.executable, '-c', 'import time\nend = time.process_time() + 0.3\n'
                    'while time.process_time() < end: pass\ntime.sleep(0.5)'], check=True)
    spent = bench.children_cpu_seconds() - before
    assert 0.25 <= spent < 0.75


def test_seed_spread_note_names_the_backbones_outside_resnet50s_seed_range(bench):
    """Ties are judged against ResNet-50's own seed range: a backbone inside it ties, one
    outside is named with its side; a variant row is not judged, and one seed gives no note."""
    def det(value):
        return dict(test={'coco/bbox_mAP': value})
    columns = [('det', 'coco/bbox_mAP', 'bbox AP')]
    results = {'det': {'models': {'r50': det(0.30), 'r50:seed1': det(0.32), 'res2net-50': det(0.31),
                                  'oct-resnet-50': det(0.29), 'hetconv-resnet-50': det(0.33),
                                  'r50:head4x256': det(0.10)}}}
    note = bench.seed_spread_note(results, columns)
    assert note.startswith("ResNet-50's seeds span bbox AP 0.300–0.320;")
    assert 'Oct-ResNet-50 α=0.5 bbox AP 0.290 (below)' in note and 'HetConv-ResNet-50 P=4 bbox AP 0.330 (above)' in note
    assert 'Res2Net' not in note and '0.100' not in note
    results['det']['models']['oct-resnet-50:seed1'] = det(0.31)        # its seeds straddle the range: a tie
    results['det']['models']['hetconv-resnet-50:seed1'] = det(0.34)    # both above
    note = bench.seed_spread_note(results, columns)
    assert 'Oct-ResNet' not in note and 'HetConv-ResNet-50 P=4 bbox AP 0.330–0.340 over 2 seeds (above)' in note
    del results['det']['models']['r50:seed1']
    assert bench.seed_spread_note(results, columns) == ''
