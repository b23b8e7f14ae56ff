"""CPU inference latency of the convdense backbones relative to ResNet-50.

    python benchmarks/bench_backbones.py            # 224x224 and 800x1216, 3 trials, ~6 min
    python benchmarks/bench_backbones.py --quick    # 224x224 only, one trial, a smoke run
    python benchmarks/bench_backbones.py --threads 2 --json out.json

Every backbone is built with its default (paper) arguments and all four
``out_indices``, in eval mode, and timed on one ``(1, 3, H, W)`` image under
``torch.inference_mode``. Models are timed round-robin (one forward of each,
repeated), so load from other processes on a shared machine hits every model
alike; the median of the repeats is reported, and the ratio to mmdet's
ResNet-50 median of the same size. Results go to
``benchmarks/results/backbones.json``; a markdown table is printed.

Trials: the ratios moved by up to +-0.06 from one process to the next on the
same idle machine (weight placement in memory differs per process; a longer
run in one process does not remove it), so by default each of ``--trials``
runs times every model in a fresh process, and the reported ratio is the
median of the trials' ratios, with their min and max.

Goals (the issue's): Oct-ResNet-50 (alpha=.5) <= 0.75x ResNet-50, HetConv P=4
<= 0.8x, Res2Net-50 <= 1.3x, ACNet (dataset-aware) <= 1.4x. A backbone that
cannot be built yet is listed as unavailable with the reason.
"""
import argparse
import json
import os
import os.path as osp
import platform
import statistics
import sys
import time

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

BASELINE = 'resnet50'
#: name -> (backbone config, goal as a ratio to ResNet-50 or None)
BACKBONES = {
    'resnet50': (dict(type='ResNet', depth=50), None),
    'oct-resnet50_a0.5': (dict(type='convdense.OctResNet', depth=50), 0.75),
    'hetconv-resnet50_p4': (dict(type='convdense.HetConvResNet', depth=50), 0.8),
    'res2net50_26w4s': (dict(type='convdense.Res2Net', depth=50), 1.3),
    'acnet50_dataset': (dict(type='convdense.ACNet', depth=50), 1.4),
    'acnet50_pixel': (dict(type='convdense.ACNet', depth=50, mode='pixel'), None),
}
#: (H, W) -> (warm-up forwards, timed forwards) per model
SIZES = {(224, 224): (3, 15), (800, 1216): (1, 5)}
QUICK_SIZES = {(224, 224): (1, 3)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='224x224 only, 3 timed forwards (smoke run)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads (default 1: steady on a shared CPU)')
    parser.add_argument('--repeats', type=int, default=None,
                        help='timed forwards per model and size (default: 15 at 224x224, '
                             '5 at 800x1216)')
    parser.add_argument('--trials', type=int, default=None,
                        help='fresh processes, each timing every model (default 3; 1 with --quick)')
    parser.add_argument('--shared', choices=['yes', 'no', 'unknown'], default='unknown',
                        help='whether other jobs shared the machine (recorded in the JSON)')
    parser.add_argument('--models', nargs='+', choices=list(BACKBONES), default=list(BACKBONES),
                        help='subset to time (ResNet-50 is always added)')
    parser.add_argument('--json', default=osp.join(REPO, 'benchmarks', 'results', 'backbones.json'),
                        help='where to write the results')
    return parser.parse_args(argv)


def build_models(names):
    """Build each backbone; returns ``(models, unavailable)`` dicts by name."""
    from convdense.models.complexity import build_backbone
    models, unavailable = {}, {}
    for name in names:
        cfg, _ = BACKBONES[name]
        try:
            model = build_backbone(dict(cfg))
            model.eval()  # not chained: mmdet's ResNet.train returns None
            models[name] = model
        except Exception as error:  # a backbone still being written must not stop the run
            unavailable[name] = f'{type(error).__name__}: {error}'.splitlines()[0]
    return models, unavailable


def time_models(models, size, warmup, repeats):
    """Median seconds of one forward per model, timed round-robin.

    The order of the models rotates by one each round, so no model always
    runs right after the same other one (cache state, thermal order effects).
    """
    image = torch.randn(1, 3, *size)
    times = {name: [] for name in models}
    names = list(models)
    with torch.inference_mode():
        for name, model in models.items():
            for _ in range(warmup):
                model(image)
        for round_ in range(repeats):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                models[name](image)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def cpu_model():
    """The CPU's model name (``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def run_trials(args, argv):
    """Run ``args.trials`` single-trial benchmarks in fresh processes and
    combine them (:func:`combine_trials`)."""
    import subprocess
    import tempfile
    passed = [a for i, a in enumerate(argv) if not a.startswith(('--trials', '--json'))
              and not (i and argv[i - 1] in ('--trials', '--json'))]
    trials = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.trials):
            out = osp.join(tmp, f'trial{index}.json')
            print(f'trial {index + 1}/{args.trials}', flush=True)
            subprocess.run([sys.executable, osp.abspath(__file__), *passed, '--trials', '1',
                            '--json', out], check=True)
            with open(out) as f:
                trials.append(json.load(f))
    return combine_trials(trials)


def combine_trials(trials):
    """One result from single-trial results: per model and size, the median
    ms and the median, min and max of the trials' ratios."""
    results = dict(meta=dict(trials[0]['meta'], trials=len(trials),
                             statistic='per trial (fresh process): ' + trials[0]['meta']['statistic']
                             + '; reported: median over trials of ms and of ratio, '
                               'ratio_min/ratio_max over trials',
                             load_average_end=trials[-1]['meta']['load_average_end']),
                   unavailable=trials[0]['unavailable'], sizes={})
    for key in trials[0]['sizes']:
        results['sizes'][key] = {}
        for name, first in trials[0]['sizes'][key].items():
            rows = [trial['sizes'][key][name] for trial in trials]
            ratios = [row['ratio'] for row in rows]
            ratio = statistics.median(ratios)
            results['sizes'][key][name] = dict(
                ms=statistics.median(row['ms'] for row in rows), ratio=ratio,
                ratio_min=min(ratios), ratio_max=max(ratios), trial_ratios=ratios,
                repeats=first['repeats'], goal=first['goal'],
                meets_goal=None if first['goal'] is None else ratio <= first['goal'])
    return results


def markdown_table(results):
    sizes = list(results['sizes'])
    header = '| backbone | goal | ' + ' | '.join(
        f'{s} ms | {s} ratio' for s in sizes) + ' |'
    lines = [header, '|' + ' --- |' * (2 + 2 * len(sizes))]
    for name, (_, goal) in BACKBONES.items():
        if name in results['unavailable']:
            lines.append(f'| {name} | unavailable: {results["unavailable"][name]} |')
            continue
        if not any(name in results['sizes'][s] for s in sizes):
            continue
        cells = [name, '-' if goal is None else f'<= {goal}x']
        for s in sizes:
            row = results['sizes'][s].get(name)
            if row is None:
                cells += ['-', '-']
                continue
            spread = (f' ({row["ratio_min"]:.2f}-{row["ratio_max"]:.2f})'
                      if 'ratio_min' in row and name != BASELINE else '')
            cells += [f'{row["ms"]:.1f}', f'{row["ratio"]:.2f}x{spread}']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.trials is None:
        args.trials = 1 if args.quick else 3
    if args.trials < 1:
        raise SystemExit(f'--trials must be >= 1, got {args.trials}')
    if args.trials > 1:
        results = run_trials(args, argv)
        write_results(results, args.json)
        return results
    torch.set_num_threads(args.threads)
    names = [BASELINE] + [n for n in args.models if n != BASELINE]
    models, unavailable = build_models(names)
    if BASELINE not in models:
        raise RuntimeError(f'cannot build the ResNet-50 baseline: {unavailable[BASELINE]}')
    sizes = QUICK_SIZES if args.quick else SIZES
    results = dict(
        meta=dict(torch=torch.__version__, threads=args.threads, quick=args.quick,
                  cpu=cpu_model(), cpus=os.cpu_count(),
                  date=time.strftime('%Y-%m-%d %H:%M:%S'), batch=1,
                  statistic='median of round-robin forwards (order rotating each round), '
                            'torch.inference_mode',
                  machine_shared=args.shared, load_average_start=load_average()),
        unavailable=unavailable, sizes={})
    for size, (warmup, repeats) in sizes.items():
        repeats = args.repeats or repeats
        medians = time_models(models, size, warmup, repeats)
        key = f'{size[0]}x{size[1]}'
        results['sizes'][key] = {
            name: dict(ms=1000 * t, ratio=t / medians[BASELINE], repeats=repeats,
                       goal=BACKBONES[name][1],
                       meets_goal=None if BACKBONES[name][1] is None
                       else t / medians[BASELINE] <= BACKBONES[name][1])
            for name, t in medians.items()}
        print(f'{key}: ' + ', '.join(f'{n} {1000 * t:.1f} ms' for n, t in medians.items()),
              flush=True)
    results['meta']['load_average_end'] = load_average()
    write_results(results, args.json)
    return results


def write_results(results, path):
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(results, f, indent=2)
    print(markdown_table(results))
    print(f'written to {path}')


if __name__ == '__main__':
    main()
