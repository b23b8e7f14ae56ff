"""Every backbone on the digit scenes: Mask R-CNN and Semantic FPN, side by side.

    python benchmarks/bench_digit_scenes.py --tasks det [--backbones ...] [--iters N]
    python benchmarks/bench_digit_scenes.py --tasks seg [--iters N]

For each task and backbone, in a fresh process (so that its peak RSS is its own):
trains ``configs/digit_scenes/<config>.py`` with mmengine's Runner, validating on
the val split and keeping the best checkpoint (model selection on val only),
then evaluates that checkpoint on the **test** split: mmdet ``CocoMetric`` bbox and
segm AP / AP50, mmseg ``IoUMetric`` mIoU (written as a 0-1 fraction). It records
seconds per training iteration (median) and peak RSS, and their ratios to
ResNet-50 from the same invocation, with the machine and its load.

With ``--tasks cls`` each backbone is first pre-trained as a digit classifier on
crops of the train scenes (top-1 on the test crops is reported); detection and
segmentation then start from that checkpoint's backbone (``--from-scratch``: not).

Each invocation rewrites only its own tasks in ``--out``, so detection and
segmentation may run separately and merge into one file. Checkpoints and
mmengine's logs stay in ``work_dirs/digit_scenes/<config name>/``.

    python benchmarks/bench_digit_scenes.py --chain BACKBONE [--seed N]

runs one backbone's whole chain in order: classifier, Mask R-CNN and Semantic FPN
from it, then the CAM pointing game on the trained detector (``cam`` section: a hit
when the map's peak lies in the category's boxes grown by 15 px, Zhang et al. 2016,
beside the stricter stroke-mask variant); every step is merged as it finishes. Two
chains (one per core) may share the results file. ``--seed N`` (N > 0) trains
detection and segmentation again from the same classifier with another seed
(record ``BACKBONE:seedN``). ``--variant NAME --cfg-options k=v ...`` trains a recipe
variant (record ``BACKBONE:NAME``; keep variants in their own ``--out`` file).
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))

import numpy as np  # noqa: E402

import digit_scenes_demo as runs  # noqa: E402
from convdense import launch  # noqa: E402
from cli_helpers import locked_merge  # noqa: E402
from machine_info import machine  # noqa: E402

DEFAULT_OUT = osp.join(ROOT, 'benchmarks', 'results', 'digit_scenes.json')
DEFAULT_WORK_DIR = osp.join(ROOT, 'work_dirs', 'digit_scenes')
DEFAULT_ITERS = {'cls': 300, 'det': 1000, 'seg': 1000}
#: the pointing game of the chain: (section name, region, tolerance in px)
POINTING_GAMES = (('box15', 'box', 15), ('mask0', 'mask', 0))
CAM_IMAGES = 40  # test scenes scored by the pointing game
#: the figure: Grad-CAM of this test scene's first digit, every detector, at this stage
FIGURE_SCENE, FIGURE_LAYER = '000001.png', 'mean'
CAM_MAPS = osp.join(ROOT, 'benchmarks', 'results', 'cam_maps')
FIGURE = osp.join(ROOT, 'docs', 'images', 'cam_digit_scenes.png')
VALIDATIONS = 3  # validation runs per training (the best checkpoint is tested)
# A results section holds models trained with the same values of these.
SCHEDULE_KEYS = ('iters', 'scenes', 'from_scratch')


def record_key(backbone, variant=None, seed=0):
    """The results-file key of a run: ``BACKBONE``, ``BACKBONE:VARIANT``,
    ``BACKBONE:seedN`` (seed 0 is the configs' own)."""
    return ':'.join([backbone] + ([variant] if variant else []) + ([f'seed{seed}'] if seed else []))


def run_dir(work_dir, task, key):
    """``WORK_DIR/<config name>[:variant][:seedN]``: one folder per run."""
    backbone, _, suffix = key.partition(':')
    return osp.join(work_dir, runs.CONFIG_NAMES[task].format(backbone) + (f':{suffix}' if suffix else ''))


def classifier_checkpoint(work_dir, backbone, variant=None):
    """The val-selected checkpoint of the backbone's digit-classifier run."""
    folder = run_dir(work_dir, 'cls', record_key(backbone, variant))
    best = [n for n in os.listdir(folder) if n.startswith('best_')] if osp.isdir(folder) else []
    if not best:
        raise FileNotFoundError(f'no digit-classifier checkpoint in {folder}: run --tasks cls first, '
                                f'or pass --from-scratch')
    return runs.best_or_last_checkpoint(folder, None)  # the newest best_*.pth


def run_one(task, backbone, iters, work_dir, data_root, from_scratch=False, variant=None,
            cfg_options=None, seed=0, classifier_variant=None):
    """Train and test one config in this process; returns its result record."""
    import resource
    folder = run_dir(work_dir, task, record_key(backbone, variant, seed))
    init = None if task == 'cls' or from_scratch else classifier_checkpoint(
        work_dir, backbone, classifier_variant)
    result = runs.train_and_test(task, backbone, folder, iters, data_root,
                                 val_interval=max(1, iters // VALIDATIONS), init_checkpoint=init,
                                 cfg_options=cfg_options, seed=seed)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    test = {key: value * scale for key, _, scale in runs.METRICS[task]
            for value in [result['test'][key]]}
    return dict(config=osp.relpath(runs.config_path(task, backbone), ROOT), test=test,
                seed=seed, cfg_options=cfg_options or {},
                val_history=val_history(folder, task, iters),
                val_metrics=val_history(folder, task, iters, all_metrics=True),
                checkpoint=osp.relpath(result['checkpoint'], ROOT),
                initialised_from=init and osp.relpath(init, ROOT),
                seconds_per_iter=round(result['seconds_per_iter'], 4),
                train_seconds=round(result['train_seconds'], 1),
                peak_rss_mib=round(peak_kib / 1024, 1))


def val_history(work_dir, task, iters, all_metrics=False):
    """``[[iteration, metric], ...]`` of every validation of the training run in
    ``work_dir`` (mmengine's ``vis_data/scalars.json``; metrics as 0-1 fractions):
    shows whether the schedule had converged. A logger that keys validation by epoch
    writes step 0; the iteration is then the k-th multiple of this benchmark's
    validation interval (the last validation runs at ``iters``). ``all_metrics``:
    ``[[iteration, {metric: value, ...}], ...]`` with every reported metric."""
    key, _, scale = runs.METRICS[task][0]
    runs_dirs = sorted(d for d in (os.listdir(work_dir) if osp.isdir(work_dir) else [])
                       if osp.isfile(osp.join(work_dir, d, 'vis_data', 'scalars.json')))
    if not runs_dirs:
        return []
    history = []
    with open(osp.join(work_dir, runs_dirs[-1], 'vis_data', 'scalars.json')) as f:
        for line in f:
            record = json.loads(line)
            if key in record:
                history.append([record['step'], {k: round(record[k] * f, 4) for k, _, f in runs.METRICS[task]
                                                 if k in record} if all_metrics
                                else round(record[key] * scale, 4)])
    interval = max(1, iters // VALIDATIONS)
    return [[step or min((k + 1) * interval, iters), value] for k, (step, value) in enumerate(history)]


def _cpu(record):
    return (record.get('machine_before') or {}).get('cpu')


def add_ratios(models, baseline='r50'):
    """s/iter and peak RSS of each backbone as ratios to ``baseline``; a record timed
    on another CPU model than the baseline gets no ratio (None), since speeds of two
    CPUs do not compare."""
    base = models.get(baseline)
    for record in models.values():
        if base is None or 'seconds_per_iter' not in base:
            break
        same_cpu = _cpu(record) == _cpu(base)
        record['seconds_per_iter_ratio'] = (round(record['seconds_per_iter'] / base['seconds_per_iter'], 3)
                                            if same_cpu else None)
        record['peak_rss_ratio'] = round(record['peak_rss_mib'] / base['peak_rss_mib'], 3) if same_cpu else None
    return models


def merge(path, task, section, backbone, record):
    """Add one model's ``record`` to ``task``'s section of the JSON at ``path``, under a
    file lock (two invocations, e.g. one per core, may share the file): a section with
    the same schedule keeps its other models, a different schedule replaces it. The
    ratios to ResNet-50 are recomputed; the file is replaced atomically."""
    def update(results):
        old = results.get(task)
        same = old is not None and all(old.get(k) == section[k] for k in SCHEDULE_KEYS)
        if old is not None and not same and ':' in backbone and set(old['models']) - {backbone}:
            theirs = ', '.join(f'{k}={old.get(k)}' for k in SCHEDULE_KEYS)
            raise SystemExit(f'error: {path} holds {task} runs of another schedule ({theirs}); a variant '
                             f'with its own schedule goes to its own --out file')
        merged = dict(old if same else section, models=dict(old['models'] if same else {}))
        merged['models'][backbone] = record
        add_ratios(merged['models'])
        return {**results, task: merged}
    return locked_merge(path, update)


def _ratio(value):
    return 'other CPU than R-50' if value is None else f'{value:.2f}×'


def row_order(key):
    """Rows in the benchmark's backbone order, a backbone's variants and seeds after it."""
    backbone, _, suffix = key.partition(':')
    return list(runs.BACKBONES).index(backbone), suffix


def row_label(key):
    backbone, _, suffix = key.partition(':')
    return runs.BACKBONES[backbone] + (f' ({suffix})' if suffix else '')


def format_table(results):
    """Markdown: one row per backbone, test metrics of each task present, ratios."""
    tasks = [task for task in runs.CONFIG_NAMES if task in results and results[task].get('models')]
    rows = {}
    for task in tasks:
        for backbone, record in results[task]['models'].items():
            rows.setdefault(backbone, {})[task] = record
    header = ['backbone']
    for task in tasks:
        header += [title for _, title, _ in runs.METRICS[task]] + [f'{task} s/iter (× R-50)', f'{task} peak RSS (× R-50)']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for backbone, by_task in sorted(rows.items(), key=lambda item: row_order(item[0])):
        cells = [row_label(backbone)]
        for task in tasks:
            record = by_task.get(task)
            if record is None:
                cells += ['–'] * (len(runs.METRICS[task]) + 2)
                continue
            cells += [f"{record['test'][key]:.3f}" for key, _, _ in runs.METRICS[task]]
            cells.append(f"{record['seconds_per_iter']:.2f} s ({_ratio(record.get('seconds_per_iter_ratio'))})")
            cells.append(f"{record['peak_rss_mib']:.0f} MiB ({_ratio(record.get('peak_rss_ratio'))})")
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def format_summary_table(results):
    """Markdown, one row per backbone: the test metric each task is chosen by (top-1,
    bbox AP, mask AP, mIoU) and the pointing game (box, 15 px) of the stages' mean map,
    with its chance rate; the full tables are :func:`format_table` and
    :func:`format_cam_table`."""
    columns = [('cls', 'digits/top1', 'top-1'), ('det', 'coco/bbox_mAP', 'bbox AP'),
               ('det', 'coco/segm_mAP', 'mask AP'), ('seg', 'mIoU', 'mIoU')]
    game = results.get('cam', {}).get(POINTING_GAMES[0][0])
    keys = {key for task, _, _ in columns for key in results.get(task, {}).get('models', {})}
    header = [title for _, _, title in columns]
    if game:
        header.append(f"pointing game (chance {game['chance_rate']:.3f})")
    lines = ['| backbone | ' + ' | '.join(header) + ' |', '|---|' + '---:|' * len(header)]
    for key in sorted(keys, key=row_order):
        cells = []
        for task, metric, _ in columns:
            record = results.get(task, {}).get('models', {}).get(key)
            cells.append(f"{record['test'][metric]:.3f}" if record else '–')
        if game:
            record = results['cam']['models'].get(key)
            cells.append(f"{record[POINTING_GAMES[0][0]]['mean']['accuracy']:.3f}" if record else '–')
        lines.append(f'| {row_label(key)} | ' + ' | '.join(cells) + ' |')
    spread = seed_spread_note(results, columns)
    if spread:
        lines += ['', spread]
    if game:
        lines += ['', f"Pointing game: the share of ({game['pairs']} test scene, digit) pairs whose Grad-CAM of "
                  f"the trained detector (the backbone stages' maps averaged) peaks inside the digit's box grown "
                  f"by {game['tolerance_px']} px; chance is the grown boxes' mean area fraction."]
    return '\n'.join(lines)


def seed_values(models, key, metric):
    """``metric`` on the test split of backbone ``key``'s seed-0 row and its ``key:seedN`` rows."""
    return [r['test'][metric] for k, r in models.items() if k == key or re.fullmatch(rf'{re.escape(key)}:seed\d+', k)]


def seed_spread_note(results, columns, baseline='r50'):
    """One line: the range of ``baseline``'s seeds on each (task, metric, title) column
    it has two or more seeds of, and which other backbones fall outside it (inside is a
    tie); a backbone with seeds of its own is outside only when all of them are, and is
    named with its range. '' when no column has two baseline seeds."""
    spans, outside = [], []
    for task, metric, title in columns:
        models = results.get(task, {}).get('models', {})
        seeds = seed_values(models, baseline, metric)
        if len(seeds) < 2:
            continue
        low, high = min(seeds), max(seeds)
        spans.append(f'{title} {low:.3f}–{high:.3f}')
        for key in sorted((k for k in models if ':' not in k and k != baseline), key=row_order):
            values = seed_values(models, key, metric)
            side = 'below' if max(values) < low else 'above' if min(values) > high else None
            if side is not None:
                shown = (f'{values[0]:.3f}' if len(values) == 1
                         else f'{min(values):.3f}–{max(values):.3f} over {len(values)} seeds')
                outside.append(f'{row_label(key)} {title} {shown} ({side})')
    if not spans:
        return ''
    return (f"{row_label(baseline)}'s seeds span " + ', '.join(spans) + '; a backbone inside that range ties with '
            'it. Outside it: ' + ('; '.join(outside) if outside else 'none') + '.')


def children_cpu_seconds():
    """CPU seconds (user + system) used so far by this process's finished children: a
    step's cost that neither other jobs on the cores nor a stopped process inflate."""
    import resource
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def format_cost_table(results):
    """Markdown: what each step of each chain cost where it ran: CPU, the 1-minute load
    before and after (other jobs shared the cores), training and wall-clock minutes, and
    the CPU minutes of the step's process (recorded since they were kept)."""
    lines = ['| backbone | step | CPU | load before → after | training | wall (train + test) '
             '| CPU time |', '|---|---|---|---|---:|---:|---:|']
    for task in (t for t in runs.CONFIG_NAMES if results.get(t, {}).get('models')):
        for key, record in sorted(results[task]['models'].items(), key=lambda item: row_order(item[0])):
            before, after = (record.get(k, {}).get('load_average', [None])[0] for k in ('machine_before',
                                                                                       'machine_after'))
            load = '–' if before is None else f'{before:.1f} → {after:.1f}'
            minutes = [f'{record[k] / 60:.0f} min' if record.get(k) is not None else '–'
                       for k in ('train_seconds', 'wall_seconds', 'cpu_seconds')]
            lines.append(f"| {row_label(key)} | {task} | {_cpu(record) or '–'} | {load} | "
                         + ' | '.join(minutes) + ' |')
    return '\n'.join(lines)


def format_val_table(results):
    """Markdown, one table per task: each run's **val** metrics at every validation
    (``val_metrics``; a record made before those were kept has its first metric,
    ``val_history``), for choosing a recipe on val; runs with their ``cfg_options``."""
    def metrics_by_step(record, task):
        if record.get('val_metrics'):
            return dict(map(tuple, record['val_metrics']))
        first = runs.METRICS[task][0][0]
        return {step: {first: value} for step, value in record.get('val_history', [])}

    lines = []
    for task in (t for t in runs.CONFIG_NAMES if results.get(t, {}).get('models')):
        section = results[task]
        models = sorted(section['models'].items(), key=lambda item: row_order(item[0]))
        steps = sorted({step for _, record in models for step in metrics_by_step(record, task)})
        titles = ' / '.join(title for _, title, _ in runs.METRICS[task])
        lines += [f"{task}, {section['iters']} iterations, val {titles}:", '',
                  '| run | options | ' + ' | '.join(f'@{step}' for step in steps) + ' |',
                  '|---|---|' + '---|' * len(steps)]
        for key, record in models:
            by_step = metrics_by_step(record, task)
            options = ', '.join(f'{k}={v}' for k, v in record.get('cfg_options', {}).items()) or 'the config'
            cells = [' / '.join(f"{by_step[step][k]:.3f}" if k in by_step.get(step, {}) else '–'
                                for k, _, _ in runs.METRICS[task]) for step in steps]
            lines.append(f'| {row_label(key)} | {options} | ' + ' | '.join(cells) + ' |')
        lines.append('')
    return '\n'.join(lines)


def pointing_game(work_dir, key, checkpoint, data_root, images=CAM_IMAGES):
    """Score the trained detector ``checkpoint`` of record ``key`` with the CAM pointing
    game (``tools/analysis/cam_pointing_game.py``, Grad-CAM, every backbone stage and the
    stages' mean map), once per entry of :data:`POINTING_GAMES`, each in a fresh
    process. Returns ``{game: report}``."""
    backbone = key.partition(':')[0]
    reports = {}
    for game, region, tolerance in POINTING_GAMES:
        out = osp.join(run_dir(work_dir, 'det', key), f'pointing_game_{game}.json')
        command = [sys.executable, osp.join(ROOT, 'tools', 'analysis', 'cam_pointing_game.py'),
                   '--ann-file', osp.join(data_root, 'annotations', 'instances_test.json'),
                   '--img-dir', osp.join(data_root, 'images', 'test'), '--max-images', str(images),
                   '--model', key, runs.config_path('det', backbone), checkpoint,
                   '--region', region, '--tolerance', str(tolerance), '--out', out]
        if subprocess.run(command, stdout=subprocess.DEVNULL).returncode != 0:
            raise RuntimeError(f'pointing game {game} of {key} failed: {" ".join(command)}')
        with open(out) as f:
            reports[game] = json.load(f)
    return reports


def figure_category(data_root):
    """Name of the first digit annotated in the figure's scene."""
    with open(osp.join(data_root, 'annotations', 'instances_test.json')) as f:
        coco = json.load(f)
    image = next(i for i in coco['images'] if i['file_name'] == FIGURE_SCENE)
    category = next(a['category_id'] for a in coco['annotations'] if a['image_id'] == image['id'])
    return next(c['name'] for c in coco['categories'] if c['id'] == category)


def save_figure_maps(work_dir, key, checkpoint, data_root, maps_dir=CAM_MAPS):
    """Grad-CAM of the figure scene's first digit from the trained detector of record
    ``key`` at every backbone stage (``tools/analysis/visualize_cam.py``, fresh
    process), kept as ``maps_dir/KEY.npy`` (float16, stages x H x W): the figure is
    drawn from these files, so it outlives the checkpoints."""
    backbone, category = key.partition(':')[0], figure_category(data_root)
    out_dir = osp.join(run_dir(work_dir, 'det', key), 'cam_figure')
    command = [sys.executable, osp.join(ROOT, 'tools', 'analysis', 'visualize_cam.py'),
               runs.config_path('det', backbone), checkpoint,
               '--img', osp.join(data_root, 'images', 'test', FIGURE_SCENE),
               '--target-category', category, '--names', key, '--out-dir', out_dir]
    if subprocess.run(command, stdout=subprocess.DEVNULL).returncode != 0:
        raise RuntimeError(f'CAM figure maps of {key} failed: {" ".join(command)}')
    with open(osp.join(out_dir, 'summary.json')) as f:
        layers = [layer.replace('backbone.', '') for layer in json.load(f)['models'][0]['layers']]
    maps = np.load(osp.join(out_dir, key, osp.splitext(FIGURE_SCENE)[0] + '.npy'))
    os.makedirs(maps_dir, exist_ok=True)
    np.save(osp.join(maps_dir, f'{maps_stem(key)}.npy'), maps.astype(np.float16))
    with open(osp.join(maps_dir, f'{maps_stem(key)}.json'), 'w') as f:
        json.dump(dict(key=key, scene=FIGURE_SCENE, category=category, layers=layers), f)


def maps_stem(key):
    """File name stem of record ``key``'s saved maps: 'r50:seed1' -> 'r50_seed1' (no ':'
    in the repository's file names, which some file systems refuse)."""
    return key.replace(':', '_')


def write_figure(data_root, maps_dir=CAM_MAPS, out=FIGURE, layer=FIGURE_LAYER):
    """The README figure from the saved maps: the figure scene, then each detector's
    Grad-CAM at ``layer`` (ResNet-50 first; ``'mean'``: the stages' aggregate the pointing
    game's ``mean`` column scores), with pytorch-grad-cam's overlay."""
    import visualize_cam

    from convdense.visualization.cam import stage_mean
    from PIL import Image
    saved = {}
    for name in (n for n in os.listdir(maps_dir) if n.endswith('.json')):
        with open(osp.join(maps_dir, name)) as f:
            info = json.load(f)
        saved[info.get('key', name[:-5])] = (osp.join(maps_dir, name[:-5] + '.npy'), info)
    # one panel per backbone: its seed-0, unvaried run (other seeds' maps are kept, not drawn)
    keys = sorted((key for key in saved if ':' not in key), key=row_order)
    if not keys:
        raise FileNotFoundError(f'no saved CAM maps in {maps_dir}: run a --chain first')
    image = np.asarray(Image.open(osp.join(data_root, 'images', 'test', FIGURE_SCENE)).convert('RGB'))
    overlays, titles = {}, {}
    for key in keys:
        path, info = saved[key]
        stages = np.load(path).astype(np.float32)
        cam = stage_mean(stages) if layer == 'mean' else stages[info['layers'].index(layer)]
        overlays[row_label(key)] = [visualize_cam.overlay(image, cam)]
        titles[row_label(key)] = [f"digit {info['category']}, " + ('mean of stages' if layer == 'mean' else layer)]
    os.makedirs(osp.dirname(out), exist_ok=True)
    visualize_cam.write_grid(out, [(f'test scene {FIGURE_SCENE}', image)], list(overlays), overlays, titles)
    return out


def merge_pointing_game(path, key, reports):
    """Put ``key``'s pointing-game reports into the ``cam`` section of the results at
    ``path`` (same file lock and atomic replace as :func:`merge`)."""
    section = {game: dict(region=r['region'], tolerance_px=r['tolerance_px'], images=r['images'],
                          pairs=r['pairs'], chance_rate=r['chance_rate'])
               for game, r in reports.items()}
    record = {game: {entry['layer'].replace('backbone.', ''): {
        k: entry[k] for k in ('hits', 'misses', 'constant_maps', 'pairs', 'accuracy')} for entry in r['results']}
        for game, r in reports.items()}
    return merge(path, 'cam', dict(section, iters=None, scenes=None, from_scratch=None), key, record)


def cam_step(out, work_dir, key, checkpoint, data_root):
    """The chain's last step for detector ``key``: pointing games merged into ``out``,
    its figure maps saved, the figure redrawn. Returns the merged results."""
    results = merge_pointing_game(out, key, pointing_game(work_dir, key, checkpoint, data_root))
    save_figure_maps(work_dir, key, checkpoint, data_root)
    write_figure(data_root)
    return results


def format_cam_table(results):
    """Markdown: one row per detector, per game: the pointing-game accuracy (hits /
    pairs) of each backbone stage's Grad-CAM and of ``mean``, the one map
    pytorch-grad-cam aggregates from the stages (their normalised maps averaged),
    scored like the others (it is not the mean of the stages' scores); then the
    constant maps (no peak, so no hit) per column."""
    section = results['cam']
    lines = []
    for game, _, _ in POINTING_GAMES:
        if game not in section:
            continue
        info = section[game]
        layers = list(next(iter(section['models'].values()))[game])
        lines += [f"{info['region']} region, {info['tolerance_px']} px tolerance: {info['pairs']} "
                  f"(image, digit) pairs on {info['images']} test scenes, chance {info['chance_rate']:.3f}",
                  '', '| detector | ' + ' | '.join(layers) + ' | constant maps |',
                  '|---|' + '---:|' * (len(layers) + 1)]
        for key, record in sorted(section['models'].items(), key=lambda item: row_order(item[0])):
            scores = record[game]
            lines.append(f'| {row_label(key)} | ' + ' | '.join(
                f"{scores[layer]['accuracy']:.3f}" for layer in layers) + ' | '
                + ', '.join(str(scores[layer]['constant_maps']) for layer in layers) + ' |')
        lines.append('')
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--tasks', nargs='+', choices=sorted(runs.CONFIG_NAMES),
                        help='cls: digit-classifier pre-training (det and seg start from its '
                        'checkpoint unless --from-scratch); default cls det, with --chain every task '
                        '(a chain given det seg starts from the classifier already trained)')
    parser.add_argument('--from-scratch', action='store_true',
                        help='det/seg backbones start from random weights')
    parser.add_argument('--backbones', nargs='+', default=list(runs.BACKBONES),
                        choices=list(runs.BACKBONES))
    parser.add_argument('--iters', type=int, help='training iterations per model '
                        f'(default: the configs\' schedule, {DEFAULT_ITERS})')
    parser.add_argument('--scenes', type=int, nargs=3, default=(1000, 100, 100))
    parser.add_argument('--work-dir', default=DEFAULT_WORK_DIR)
    parser.add_argument('--out', default=DEFAULT_OUT)
    parser.add_argument('--add-val-history', action='store_true',
                        help='fill in val_history for records of the results file that lack it '
                        '(runs made before it was recorded) from their work dirs, and exit')
    parser.add_argument('--table', action='store_true',
                        help='print the table of the results file (--out) and exit')
    parser.add_argument('--chain', choices=list(runs.BACKBONES),
                        help='one backbone, every task in order (cls, det, seg) and the pointing game')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of det/seg training (0: the configs\' own; the classifier of seed 0 '
                        'initialises every seed)')
    parser.add_argument('--variant', help='name of a recipe variant given by --cfg-options and/or '
                                          '--iters')
    parser.add_argument('--classifier-variant', help='det/seg start from this variant\'s classifier')
    parser.add_argument('--cfg-options', nargs='+', action=launch.DictAction, default={},
                        help='override entries of the trained configs, key=value (with --variant)')
    parser.add_argument('--cam', metavar='KEY',
                        help='the CAM pointing game and figure maps of the detector of results record KEY '
                        '(trained earlier, outside a chain), and exit')
    parser.add_argument('--figure', action='store_true',
                        help=f'draw {osp.relpath(FIGURE, ROOT)} from the saved CAM maps and exit')
    parser.add_argument('--one', nargs=2, metavar=('TASK', 'BACKBONE'), help=argparse.SUPPRESS)
    parser.add_argument('--one-out', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cfg_options and not args.variant:
        parser.error('--cfg-options needs --variant NAME (the record it lands in)')
    if args.variant and not (args.cfg_options or args.iters):
        parser.error('--variant NAME needs --cfg-options or --iters (what makes it a variant)')
    if args.chain:
        args.backbones = [args.chain]
        args.tasks = args.tasks or (['det', 'seg'] if args.seed else ['cls', 'det', 'seg'])
    args.tasks = args.tasks or ['cls', 'det']
    if args.seed and 'cls' in args.tasks and not args.one:  # a child gets its one task in --one
        parser.error('--seed is for det/seg: every seed starts from the seed-0 classifier')
    if args.add_val_history:
        with open(args.out) as f:
            results = json.load(f)
        for task, section in results.items():
            for backbone, record in section['models'].items():
                if 'val_history' not in record:
                    name = runs.CONFIG_NAMES[task].format(backbone)
                    record = dict(record, val_history=val_history(
                        osp.join(args.work_dir, name), task, section['iters']))
                    merge(args.out, task, section, backbone, record)
        return
    if args.table:
        if not osp.isfile(args.out):
            sys.exit(f'bench_digit_scenes: no results file at {args.out}')
        with open(args.out) as f:
            results = json.load(f)
        print(format_table(results))
        if results.get('cam'):
            print('\n' + format_cam_table(results))
        return
    data_root = osp.join(args.work_dir, 'data') if list(args.scenes) != [1000, 100, 100] else runs.DATA_ROOT
    if args.figure:
        from make_digit_scenes import ensure_digit_scenes
        print('written:', write_figure(ensure_digit_scenes(data_root, scenes=tuple(args.scenes))))
        return

    if args.cam:
        with open(args.out) as f:
            record = json.load(f).get('det', {}).get('models', {}).get(args.cam)
        if record is None:
            sys.exit(f'bench_digit_scenes: no Mask R-CNN record {args.cam!r} in {args.out}')
        cam_step(args.out, args.work_dir, args.cam, osp.join(ROOT, record['checkpoint']), data_root)
        print(format_cam_table(json.load(open(args.out))))
        return

    if args.one:  # the child process: one task and backbone
        task, backbone = args.one
        record = run_one(task, backbone, args.iters or DEFAULT_ITERS[task], args.work_dir, data_root,
                         args.from_scratch, args.variant, args.cfg_options, args.seed,
                         args.classifier_variant)
        with open(args.one_out, 'w') as f:
            json.dump(record, f)
        return

    from make_digit_scenes import ensure_digit_scenes
    ensure_digit_scenes(data_root, scenes=tuple(args.scenes))
    results, failed = {}, []
    for task in sorted(args.tasks, key=list(runs.CONFIG_NAMES).index):  # cls first
        iters = args.iters or DEFAULT_ITERS[task]
        section = dict(iters=iters, scenes=list(args.scenes), from_scratch=args.from_scratch,
                       models={})
        for backbone in args.backbones:
            key = record_key(backbone, args.variant, args.seed)
            one_out = osp.join(args.work_dir, f'{task}_{key}.json')
            command = [sys.executable, osp.abspath(__file__), '--one', task, backbone, '--iters',
                       str(iters), '--scenes', *map(str, args.scenes), '--work-dir', args.work_dir,
                       '--one-out', one_out, '--seed', str(args.seed)]
            command += ['--from-scratch'] if args.from_scratch else []
            command += ['--classifier-variant', args.classifier_variant] if args.classifier_variant else []
            command += ['--variant', args.variant] if args.variant else []
            if args.cfg_options:
                command += ['--cfg-options'] + [
                    f'{k}={json.dumps(v) if not isinstance(v, str) else v}' for k, v in args.cfg_options.items()]
            os.makedirs(args.work_dir, exist_ok=True)
            before, start, cpu_start = machine(), time.time(), children_cpu_seconds()
            if subprocess.run(command).returncode != 0:
                failed.append(f'{task} {backbone}')
                continue
            with open(one_out) as f:
                record = json.load(f)
            # Each model is merged as soon as it is done: a run cut short keeps what finished.
            record.update(machine_before=before, machine_after=machine(),
                          wall_seconds=round(time.time() - start),
                          cpu_seconds=round(children_cpu_seconds() - cpu_start))
            results = merge(args.out, task, section, key, record)
            if task == 'det' and args.chain:
                try:  # a failed CAM step is reported, and the chain goes on to segmentation
                    results = cam_step(args.out, args.work_dir, key, osp.join(ROOT, record['checkpoint']),
                                       data_root)
                except (RuntimeError, OSError) as error:
                    print(f'bench_digit_scenes: {error}', file=sys.stderr)
                    failed.append(f'cam {key}')
    if results:
        print('\n' + format_table(results))
    if failed:
        sys.exit(f'bench_digit_scenes: failed runs (see their work dirs): {", ".join(failed)}')
    print(f'\nwritten: {args.out}')


if __name__ == '__main__':
    main()
