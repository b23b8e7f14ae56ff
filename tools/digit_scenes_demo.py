"""The backbones on real data, briefly: train and test digit-scene models, print a table.

    python tools/digit_scenes_demo.py [--tasks cls] [--backbones r50 hetconv-resnet-50]
        [--iters 100] [--work-dir work_dirs/digit_scenes_demo]

Generates the digit scenes if needed (``tools/make_digit_scenes.py``, seconds), then
for each backbone and task trains the config in ``configs/digit_scenes/`` for
``--iters`` iterations with mmengine's Runner and evaluates it on the test split
(top-1, mmdet ``CocoMetric`` / mmseg ``IoUMetric``). The terminal shows one progress
bar per model, the result table with the score of a model that learnt nothing beside
it, and the benchmark's full-schedule results of the same models; mmengine's full logs
(config dump, hook table, losses) stay in each model's work dir, beside
``console.log`` (everything the run printed) and the checkpoints. The default, the
digit classifier for 100 iterations, was chosen on val as the step that learns in
minutes (``digit-scenes-recipe`` in docs/benchmarks.md); Semantic FPN and Mask R-CNN
are still at the trivial score after that many iterations.

The benchmark (``benchmarks/bench_digit_scenes.py``) trains the same configs with
their full schedules through the same functions.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
import warnings

import numpy as np

# mmengine imports pkg_resources, which warns on every import; not the user's concern
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))

from convdense import launch  # noqa: E402
from convdense.engine.progress import ProgressAndTimingHook, console_to  # noqa: E402,F401

CONFIG_DIR = osp.join(ROOT, 'configs', 'digit_scenes')
DATA_ROOT = osp.join(ROOT, 'data', 'digit_scenes')
BENCHMARK_RESULTS = osp.join(ROOT, 'benchmarks', 'results', 'digit_scenes.json')
#: name in the config file -> row label
BACKBONES = {
    'r50': 'ResNet-50',
    'acnet-50-dataset': 'ACNet-50 dataset-aware',
    'acnet-50-pixel': 'ACNet-50 pixel-aware',
    'res2net-50': 'Res2Net-50 26w×4s',
    'oct-resnet-50': 'Oct-ResNet-50 α=0.5',
    'hetconv-resnet-50': 'HetConv-ResNet-50 P=4',
}
CONFIG_NAMES = {'cls': 'digit-classifier_{}', 'det': 'mask-rcnn_{}_fpn_digit-scenes',
                'seg': 'fpn_{}_digit-scenes'}
#: reported metrics per task, as (metric key, column title, scale to a 0-1 fraction)
METRICS = {
    'cls': (('digits/top1', 'top-1', 1.0),),
    'det': (('coco/bbox_mAP', 'bbox AP', 1.0), ('coco/bbox_mAP_50', 'bbox AP50', 1.0),
            ('coco/segm_mAP', 'mask AP', 1.0), ('coco/segm_mAP_50', 'mask AP50', 1.0)),
    'seg': (('mIoU', 'mIoU', 0.01),),
}


def config_path(task, backbone):
    if task not in CONFIG_NAMES:
        raise ValueError(f'task must be one of {sorted(CONFIG_NAMES)}, got {task!r}')
    if backbone not in BACKBONES:
        raise ValueError(f'backbone must be one of {list(BACKBONES)}, got {backbone!r}')
    return osp.join(CONFIG_DIR, CONFIG_NAMES[task].format(backbone) + '.py')


def best_or_last_checkpoint(work_dir, iters):
    """The newest ``best_*.pth`` in ``work_dir`` (the one this run saved: a folder may
    keep an earlier run's, and ``iter_300`` sorts after ``iter_1000`` as text), else
    the last iteration's checkpoint."""
    best = [osp.join(work_dir, name) for name in os.listdir(work_dir)
            if name.startswith('best_') and name.endswith('.pth')]
    return max(best, key=osp.getmtime) if best else osp.join(work_dir, f'iter_{iters}.pth')


def train_and_test(task, backbone, work_dir, iters, data_root=DATA_ROOT, val_interval=None,
                   init_checkpoint=None, quiet=True, cfg_options=None, seed=None):
    """Train one digit-scene config and evaluate the val-selected (best) checkpoint,
    or the last one when validation never ran, on the test split. With
    ``init_checkpoint`` (a digit-classifier checkpoint) the backbone starts from its
    ``backbone.*`` weights. ``cfg_options`` (``{dotted key: value}``) change the recipe
    of both the training and the test config; ``seed`` replaces the config's seed.

    Returns ``dict(test=metrics, checkpoint=path, seconds_per_iter=..., train_seconds=...)``.
    """
    config = config_path(task, backbone)
    os.makedirs(work_dir, exist_ok=True)
    cfg = launch.load_config(config, cfg_options, work_dir)
    if seed is not None:
        cfg.randomness = dict(cfg.get('randomness', {}), seed=seed)
    if init_checkpoint is not None:
        cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=init_checkpoint,
                                           prefix='backbone.')
    _point_at(cfg, data_root)
    launch.set_schedule(cfg, iters, val_interval)
    terminal = sys.stderr
    hook = ProgressAndTimingHook(f'{task} {BACKBONES[backbone]}', terminal)
    with console_to(osp.join(work_dir, 'console.log') if quiet else None):
        runner = launch.build_runner(cfg)
        runner.register_hook(hook)
        start = time.perf_counter()
        runner.train()
        train_seconds = time.perf_counter() - start
        checkpoint = best_or_last_checkpoint(work_dir, iters)
        test_cfg = launch.load_config(config, cfg_options, osp.join(work_dir, 'test'))
        _point_at(test_cfg, data_root)
        test_cfg.load_from = checkpoint
        metrics = launch.build_runner(test_cfg).test()
    return dict(test={k: float(v) for k, v in metrics.items()}, checkpoint=checkpoint,
                seconds_per_iter=hook.seconds_per_iter(), train_seconds=train_seconds)


def _point_at(cfg, data_root):
    """Read the scenes from ``data_root`` (the configs name ``data/digit_scenes/``)."""
    data_root = data_root.rstrip('/') + '/'
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = data_root
        evaluator = cfg[f'{split}_evaluator'] if split != 'train' else None
        if evaluator is not None and 'ann_file' in evaluator:
            evaluator.ann_file = osp.join(data_root, 'annotations', f'instances_{split}.json')


def trivial_scores(data_root, split='test'):
    """The score of a model that learnt nothing but the label statistics, per task
    (in the units the metrics report, as :data:`METRICS`): ``cls`` always answers the most
    frequent digit; ``seg`` labels every pixel background (IoU = background share for
    that class, 0 for the ten digit classes, so mIoU = share / 11); ``det`` detects
    nothing (AP 0)."""
    from collections import Counter

    from PIL import Image
    with open(osp.join(data_root, 'annotations', f'instances_{split}.json')) as f:
        annotations = json.load(f)['annotations']
    counts = Counter(ann['category_id'] for ann in annotations)
    folder = osp.join(data_root, 'annotations', split)
    background = total = 0
    for name in sorted(os.listdir(folder)):
        labels = np.asarray(Image.open(osp.join(folder, name)))
        background += int((labels == 0).sum())
        total += labels.size
    return {'cls': {'digits/top1': max(counts.values()) / sum(counts.values())},
            'seg': {'mIoU': 100 * background / total / 11},  # mmseg reports percent
            'det': {key: 0.0 for key, _, _ in METRICS['det']}}


def format_table(rows, tasks, trivial=None):
    """Markdown table: one row per backbone, each task's metrics (0-1 fractions),
    and with ``trivial`` (:func:`trivial_scores`) a last row of what a model that
    learnt nothing scores."""
    header = ['backbone'] + [title for task in tasks for _, title, _ in METRICS[task]]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    named = [(BACKBONES[backbone], {task: results.get(task, {}).get('test', {}) for task in tasks})
             for backbone, results in rows.items()]
    if trivial is not None:
        named.append(('trivial (learnt nothing)', trivial))
    for label, tests in named:
        cells = [label]
        for task in tasks:
            test = tests.get(task, {})
            cells += [f'{test[key] * scale:.3f}' if key in test else '–' for key, _, scale in METRICS[task]]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def full_schedule_rows(path, backbones, tasks):
    """``{backbone: {task: dict(test=...)}}`` of the benchmark's results file (full
    schedules), for the backbones and tasks it has, in :func:`format_table`'s units."""
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        results = json.load(f)
    rows = {}
    for task in tasks:
        for backbone in backbones:
            record = results.get(task, {}).get('models', {}).get(backbone)
            if record is not None:  # the file holds 0-1 fractions
                rows.setdefault(backbone, {})[task] = dict(test={
                    key: record['test'][key] / scale for key, _, scale in METRICS[task]})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--tasks', nargs='+', default=['cls'], choices=sorted(CONFIG_NAMES),
                        help='cls (default: the digit classifier, the step that learns within '
                        'minutes), det, seg')
    parser.add_argument('--backbones', nargs='+', default=['r50', 'hetconv-resnet-50'],
                        choices=list(BACKBONES))
    parser.add_argument('--iters', type=int, default=100,
                        help='training iterations per model (the benchmark\'s schedules: '
                        'cls 300, det and seg 1,000)')
    parser.add_argument('--scenes', type=int, nargs=3, default=(1000, 100, 100))
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'digit_scenes_demo'))
    args = parser.parse_args(argv)
    from make_digit_scenes import ensure_digit_scenes
    start = time.time()
    data_root = ensure_digit_scenes(DATA_ROOT, scenes=tuple(args.scenes))
    rows = {}
    for backbone in args.backbones:
        rows[backbone] = {}
        for task in args.tasks:
            name = CONFIG_NAMES[task].format(backbone)
            rows[backbone][task] = train_and_test(task, backbone, osp.join(args.work_dir, name),
                                                  args.iters, data_root)
    table = format_table(rows, args.tasks, trivial_scores(data_root))
    print(f'\nDigit scenes, test split, after {args.iters} training iterations per model:\n')
    print(table)
    full = full_schedule_rows(BENCHMARK_RESULTS, args.backbones, args.tasks)
    if full:
        print(f'\nThe same models after the full schedule ({osp.relpath(BENCHMARK_RESULTS, ROOT)}, '
              f'python benchmarks/bench_digit_scenes.py --table):\n')
        print(format_table(full, args.tasks))
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(iters=args.iters, results=rows), f, indent=2)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    print(f'\nlogs, checkpoints and results.md under {args.work_dir} '
          f'(finished in {time.time() - start:.0f} s)')


if __name__ == '__main__':
    launch.run_cli(main)
