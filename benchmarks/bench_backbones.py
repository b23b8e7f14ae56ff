"""CPU inference latency of the convdense backbones relative to ResNet-50.

    python benchmarks/bench_backbones.py            # 224x224 and 800x1216, ~5 min
    python benchmarks/bench_backbones.py --quick    # 224x224 only, a smoke run
    python benchmarks/bench_backbones.py --threads 2 --json out.json

Every backbone is built with its default (paper) arguments and all four
``out_indices``, in eval mode, and timed on one ``(1, 3, H, W)`` image under
``torch.inference_mode``. Models are timed round-robin (one forward of each,
repeated), so load from other processes on a shared machine hits every model
alike; the median of the repeats is reported, and the ratio to mmdet's
ResNet-50 median of the same size. Results go to
``benchmarks/results/backbones.json``; a markdown table is printed.

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
SIZES = {(224, 224): (3, 15), (800, 1216): (1, 3)}
QUICK_SIZES = {(224, 224): (1, 3)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='224x224 only, 3 timed forwards (smoke run)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads (default 1: steady on a shared CPU)')
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
    """Median seconds of one forward per model, timed round-robin."""
    image = torch.randn(1, 3, *size)
    times = {name: [] for name in models}
    with torch.inference_mode():
        for name, model in models.items():
            for _ in range(warmup):
                model(image)
        for _ in range(repeats):
            for name, model in models.items():
                start = time.perf_counter()
                model(image)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


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
            cells += ['-', '-'] if row is None else [f'{row["ms"]:.1f}', f'{row["ratio"]:.2f}x']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [BASELINE] + [n for n in args.models if n != BASELINE]
    models, unavailable = build_models(names)
    if BASELINE not in models:
        raise RuntimeError(f'cannot build the ResNet-50 baseline: {unavailable[BASELINE]}')
    sizes = QUICK_SIZES if args.quick else SIZES
    results = dict(
        meta=dict(torch=torch.__version__, threads=args.threads, quick=args.quick,
                  cpu=platform.processor() or platform.machine(), cpus=os.cpu_count(),
                  date=time.strftime('%Y-%m-%d %H:%M:%S'), batch=1,
                  statistic='median of round-robin forwards, torch.inference_mode'),
        unavailable=unavailable, sizes={})
    for size, (warmup, repeats) in sizes.items():
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
    os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
    with open(args.json, 'w') as f:
        json.dump(results, f, indent=2)
    print(markdown_table(results))
    print(f'written to {args.json}')
    return results


if __name__ == '__main__':
    main()
