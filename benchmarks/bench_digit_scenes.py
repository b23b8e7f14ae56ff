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
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))

import digit_scenes_demo as runs  # noqa: E402
from machine_info import machine  # noqa: E402

DEFAULT_OUT = osp.join(ROOT, 'benchmarks', 'results', 'digit_scenes.json')
DEFAULT_WORK_DIR = osp.join(ROOT, 'work_dirs', 'digit_scenes')
DEFAULT_ITERS = {'cls': 300, 'det': 1000, 'seg': 1000}
VALIDATIONS = 3  # validation runs per training (the best checkpoint is tested)
# A results section holds models trained with the same values of these.
SCHEDULE_KEYS = ('iters', 'scenes', 'from_scratch')


def classifier_checkpoint(work_dir, backbone):
    """The val-selected checkpoint of the backbone's digit-classifier run."""
    folder = osp.join(work_dir, runs.CONFIG_NAMES['cls'].format(backbone))
    best = sorted(n for n in os.listdir(folder) if n.startswith('best_')) if osp.isdir(folder) else []
    if not best:
        raise FileNotFoundError(f'no digit-classifier checkpoint in {folder}: run --tasks cls first, '
                                f'or pass --from-scratch')
    return osp.join(folder, best[-1])


def run_one(task, backbone, iters, work_dir, data_root, from_scratch=False):
    """Train and test one config in this process; returns its result record."""
    import resource
    name = runs.CONFIG_NAMES[task].format(backbone)
    init = None if task == 'cls' or from_scratch else classifier_checkpoint(work_dir, backbone)
    result = runs.train_and_test(task, backbone, osp.join(work_dir, name), iters, data_root,
                                 val_interval=max(1, iters // VALIDATIONS), init_checkpoint=init)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    test = {key: value * scale for key, _, scale in runs.METRICS[task]
            for value in [result['test'][key]]}
    return dict(config=osp.relpath(runs.config_path(task, backbone), ROOT), test=test,
                val_history=val_history(osp.join(work_dir, name), task, iters),
                checkpoint=osp.relpath(result['checkpoint'], ROOT),
                initialised_from=init and osp.relpath(init, ROOT),
                seconds_per_iter=round(result['seconds_per_iter'], 4),
                train_seconds=round(result['train_seconds'], 1),
                peak_rss_mib=round(peak_kib / 1024, 1))


def val_history(work_dir, task, iters):
    """``[[iteration, metric], ...]`` of every validation of the training run in
    ``work_dir`` (mmengine's ``vis_data/scalars.json``; metrics as 0-1 fractions):
    shows whether the schedule had converged. A logger that keys validation by epoch
    writes step 0; the iteration is then the k-th multiple of this benchmark's
    validation interval (the last validation runs at ``iters``)."""
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
                history.append([record['step'], round(record[key] * scale, 4)])
    interval = max(1, iters // VALIDATIONS)
    return [[step or min((k + 1) * interval, iters), value] for k, (step, value) in enumerate(history)]


def add_ratios(models, baseline='r50'):
    """s/iter and peak RSS of each backbone as ratios to ``baseline`` (same run)."""
    base = models.get(baseline)
    for record in models.values():
        if base is None:
            break
        record['seconds_per_iter_ratio'] = round(record['seconds_per_iter'] / base['seconds_per_iter'], 3)
        record['peak_rss_ratio'] = round(record['peak_rss_mib'] / base['peak_rss_mib'], 3)
    return models


def merge(path, task, section, backbone, record):
    """Add one model's ``record`` to ``task``'s section of the JSON at ``path``, under a
    file lock (two invocations, e.g. one per core, may share the file): a section with
    the same schedule keeps its other models, a different schedule replaces it. The
    ratios to ResNet-50 are recomputed; the file is replaced atomically."""
    import fcntl
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = {}
        if osp.isfile(path):
            with open(path) as f:
                results = json.load(f)
        old = results.get(task)
        same = old is not None and all(old.get(k) == section[k] for k in SCHEDULE_KEYS)
        merged = dict(old if same else section, models=dict(old['models'] if same else {}))
        merged['models'][backbone] = record
        add_ratios(merged['models'])
        results[task] = merged
        tmp = path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(results, f, indent=2)
        os.replace(tmp, path)
    return results


def format_table(results):
    """Markdown: one row per backbone, test metrics of each task present, ratios."""
    tasks = [task for task in runs.CONFIG_NAMES if task in results]
    rows = {}
    for task in tasks:
        for backbone, record in results[task]['models'].items():
            rows.setdefault(backbone, {})[task] = record
    header = ['backbone']
    for task in tasks:
        header += [title for _, title, _ in runs.METRICS[task]] + [f'{task} s/iter (× R-50)', f'{task} peak RSS (× R-50)']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for backbone, by_task in sorted(rows.items(), key=lambda item: list(runs.BACKBONES).index(item[0])):
        cells = [runs.BACKBONES[backbone]]
        for task in tasks:
            record = by_task.get(task)
            if record is None:
                cells += ['–'] * (len(runs.METRICS[task]) + 2)
                continue
            cells += [f"{record['test'][key]:.3f}" for key, _, _ in runs.METRICS[task]]
            cells.append(f"{record['seconds_per_iter']:.2f} s ({record.get('seconds_per_iter_ratio', float('nan')):.2f}×)")
            cells.append(f"{record['peak_rss_mib']:.0f} MiB ({record.get('peak_rss_ratio', float('nan')):.2f}×)")
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--tasks', nargs='+', default=['cls', 'det'], choices=sorted(runs.CONFIG_NAMES),
                        help='cls: digit-classifier pre-training (det and seg start from its '
                        'checkpoint unless --from-scratch)')
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
    parser.add_argument('--one', nargs=2, metavar=('TASK', 'BACKBONE'), help=argparse.SUPPRESS)
    parser.add_argument('--one-out', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
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
            print(format_table(json.load(f)))
        return
    data_root = osp.join(args.work_dir, 'data') if list(args.scenes) != [1000, 100, 100] else runs.DATA_ROOT

    if args.one:  # the child process: one task and backbone
        task, backbone = args.one
        record = run_one(task, backbone, args.iters or DEFAULT_ITERS[task], args.work_dir, data_root,
                         args.from_scratch)
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
            one_out = osp.join(args.work_dir, f'{task}_{backbone}.json')
            command = [sys.executable, osp.abspath(__file__), '--one', task, backbone, '--iters',
                       str(iters), '--scenes', *map(str, args.scenes), '--work-dir', args.work_dir,
                       '--one-out', one_out] + (['--from-scratch'] if args.from_scratch else [])
            os.makedirs(args.work_dir, exist_ok=True)
            before, start = machine(), time.time()
            if subprocess.run(command).returncode != 0:
                failed.append(f'{task} {backbone}')
                continue
            with open(one_out) as f:
                record = json.load(f)
            # Each model is merged as soon as it is done: a run cut short keeps what finished.
            record.update(machine_before=before, machine_after=machine(),
                          wall_seconds=round(time.time() - start))
            results = merge(args.out, task, section, backbone, record)
    if results:
        print('\n' + format_table(results))
    if failed:
        sys.exit(f'bench_digit_scenes: failed runs (see their work dirs): {", ".join(failed)}')
    print(f'\nwritten: {args.out}')


if __name__ == '__main__':
    main()
