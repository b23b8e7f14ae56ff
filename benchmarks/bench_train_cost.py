"""Training cost of Mask R-CNN with each backbone: seconds per iteration and peak RSS,
as ratios to ResNet-50, next to the papers' claims.

    python benchmarks/bench_train_cost.py                # 800x1216 and 320x320, batch 2, 3 rounds
                                                         # (estimated ~25 min, idle 2-core machine)
    python benchmarks/bench_train_cost.py --quick        # 64x64, 2 iterations, 1 round (smoke run)
    python benchmarks/bench_train_cost.py --sizes 320x320 --rounds 5 --threads 1
    python benchmarks/bench_train_cost.py --table [RESULTS.json]  # Markdown table of a results file

Models: every ``configs/mask_rcnn/mask-rcnn_<backbone>_fpn_1x_coco.py``, built
from its config (model and ``optim_wrapper``). Each iteration is mmengine's
``model.train_step`` on one fixed batch of 2 images of the given size from
``mmdet.testing.demo_mm_inputs`` (random pixels, 5 boxes with masks per image):
data preprocessor, forward, losses, backward, optimiser step. No data loading, so
the figures are the model's. The learning rate is the config's times its
``LinearLR`` warm-up start factor, what a real run's first iterations use, so
the randomly initialised model does not diverge while it is timed (the losses
are checked finite).

Method (the one of ``bench_backbones.py``): every (model, size) runs in its own
fresh process, so its peak RSS (``ru_maxrss``, imports included) is its own;
rounds interleave the models (the order rotating each round); a process drops
its warm-up iterations and reports the median of the rest; the ratio to
ResNet-50 is taken per round, and the median over rounds is reported with its
min-max (``benchmarks/harness.py``). The machine (CPU, ISA, cores, torch
threads, load averages) is recorded before and after every process. Results go
to ``benchmarks/results/train_cost.json``; a markdown table is printed.
"""
import argparse
import glob
import os
import os.path as osp
import resource
import statistics
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'benchmarks'))

import cli_helpers  # noqa: E402
import harness  # noqa: E402
from cli_helpers import size_key, table_requested  # noqa: E402

BASELINE = 'r50'
CONFIG_PATTERN = osp.join(REPO, 'configs', 'mask_rcnn', 'mask-rcnn_{}_fpn_1x_coco.py')
#: backbone name in the config file -> config path
MODELS = {osp.basename(p)[len('mask-rcnn_'):-len('_fpn_1x_coco.py')]: p
          for p in sorted(glob.glob(CONFIG_PATTERN.format('*')))}
BATCH = 2
BOXES_PER_IMAGE = 5
#: (H, W) -> (warm-up iterations, timed iterations) per process
SIZES = {(800, 1216): (1, 3), (320, 320): (2, 5)}
QUICK_SIZES = {(64, 64): (1, 1)}
#: what the papers say about training cost relative to ResNet-50
CLAIMS = {
    'oct-resnet-50': dict(claimed_ratio='< 1', text='Chen et al. ICCV 2019: Oct-ResNet-50 '
                          '(alpha=0.5) trains cheaper than ResNet-50 (2.4 vs 4.1 GFLOPs)'),
    'res2net-50': dict(claimed_ratio='about 1.05', text='Gao et al. TPAMI 2019: Res2Net-50 '
                       'costs about 5 % more than ResNet-50'),
}
METHOD = ('fresh process per (model, size, round); rounds interleave the models (order rotating); '
          'per process: median s/iter after the warm-up and ru_maxrss; ratio to r50 per round; '
          'reported: median over rounds, ratio_min/ratio_max over rounds')


def parse_size(text):
    """``HxW``, at least the detector's stride (32) on each side."""
    return cli_helpers.parse_size(text, minimum=32, reason=" (the detector's stride)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='64x64 (or --sizes), 2 iterations, 1 round: smoke run')
    parser.add_argument('--sizes', nargs='+', type=parse_size, metavar='HxW',
                        help='image sizes (default: 800x1216 320x320)')
    parser.add_argument('--models', nargs='+', choices=list(MODELS), default=list(MODELS),
                        help='backbones (ResNet-50 is always added)')
    parser.add_argument('--rounds', type=int, help='rounds (default 3; 1 with --quick)')
    parser.add_argument('--iters', type=int, help='timed iterations per process')
    parser.add_argument('--threads', type=int,
                        help='torch threads (default: torch\'s default, all cores)')
    parser.add_argument('--shared', choices=['yes', 'no', 'unknown'], default='unknown',
                        help='whether other jobs shared the machine (recorded in the JSON)')
    parser.add_argument('--json', default=osp.join(REPO, 'benchmarks', 'results',
                                                   'train_cost.json'))
    return parser.parse_args(argv)


def warmup_lr(cfg):
    """The config's learning rate times its ``LinearLR`` start factor (1 without one)."""
    lr = cfg.optim_wrapper.optimizer.lr
    schedulers = cfg.get('param_scheduler') or []
    for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
        if scheduler.get('type') == 'LinearLR':
            return lr * scheduler.get('start_factor', 1.0 / 3)
    return lr


def train_iterations(config, size, warmup, iters, threads, seed=0):
    """Build ``config``'s Mask R-CNN and run ``warmup + iters`` training iterations on
    one fixed batch; returns s/iter (median after the warm-up), every iteration's
    time, the RSS before training and the peak RSS (MiB)."""
    import torch

    import convdense  # noqa: F401  (before mmdet.models: compat fixes)
    from convdense import launch
    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.testing import demo_mm_inputs
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    # the cost of a training iteration does not depend on the starting weights: time the
    # backbone from its initialisation (no download, no converted checkpoint needed)
    cfg = launch.load_config(config, {'model.backbone.init_cfg': None}, work_dir='')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmengine.logging import MMLogger
    # mmengine logs every parameter's initialisation at INFO: keep the terminal readable.
    MMLogger.get_instance('bench_train_cost', log_level='WARNING')
    model = DET_MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    cfg.optim_wrapper.optimizer.lr = warmup_lr(cfg)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    data = demo_mm_inputs(batch_size=BATCH, image_shapes=(3, *size),
                          num_items=[BOXES_PER_IMAGE] * BATCH, num_classes=80, with_mask=True)
    rss_start = _resident_mib()
    times, finite = [], True
    for _ in range(warmup + iters):
        start = time.perf_counter()
        losses = model.train_step(data, optim_wrapper)
        times.append(time.perf_counter() - start)
        finite = finite and all(torch.isfinite(v).all().item() for v in losses.values())
    return dict(seconds_per_iter=statistics.median(times[warmup:]), iter_seconds=times,
                warmup=warmup, rss_start_mib=rss_start, losses_finite=finite,
                peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                threads=torch.get_num_threads())


def _resident_mib():
    with open('/proc/self/statm') as statm:
        return int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20


def run_in_fresh_process(spec):
    """``train_iterations`` of ``spec`` in a fresh worker process, with the machine before and after."""
    return harness.run_worker(__file__, spec)


def work(spec):
    """The worker's side of :func:`run_in_fresh_process`."""
    return train_iterations(spec['config'], tuple(spec['size']), spec['warmup'], spec['iters'], spec['threads'])


def summarise(rounds, baseline=BASELINE):
    """One size over rounds (``[{model: record}]``): per model the median s/iter and peak
    RSS, and the median, min and max over rounds of their per-round ratios to ``baseline``."""
    if any(baseline not in r for r in rounds):
        raise ValueError(f'every round needs the {baseline} baseline')
    models = {}
    for name in rounds[0]:
        row = {}
        for key, short in (('seconds_per_iter', 'seconds_per_iter'), ('peak_rss_mib', 'peak_rss')):
            ratios = [r[name][key] / r[baseline][key] for r in rounds]
            row[key] = statistics.median(r[name][key] for r in rounds)
            ratio = harness.spread(ratios)
            row.update({f'{short}_ratio': ratio['median'], f'{short}_ratio_min': ratio['min'],
                        f'{short}_ratio_max': ratio['max'], f'{short}_round_ratios': ratios})
        row['losses_finite'] = all(r[name]['losses_finite'] for r in rounds)
        if name in CLAIMS:
            row['paper_claim'] = CLAIMS[name]
        models[name] = row
    return dict(models=models)


def claim_verdict(claimed, low, high):
    """A paper's claimed ratio (``'< 1'``, ``'about 1.05'``) against the measured per-round
    range ``[low, high]``: whether the range supports it, contradicts it or cannot tell."""
    kind, _, value = claimed.partition(' ')
    value = float(value)
    if kind == '<':
        return 'holds' if high < value else 'does not hold' if low >= value else \
            f'undecided (range crosses {value:g})'
    if kind == 'about':
        return f'range includes {value:g}' if low <= value <= high else f'range excludes {value:g}'
    raise ValueError(f'unknown claim {claimed!r}')


def markdown_table(results):
    """Per size, a row per backbone: median s/iter and peak RSS, the median of the
    per-round ratios to ResNet-50 with their min-max, and each paper claim judged
    against that range now."""
    lines = []
    for key, size in results['sizes'].items():
        lines += [f'Mask R-CNN training, batch {BATCH}, {key}, {results["meta"]["threads"]} '
                  f'thread(s); ratios are medians of per-round ratios to r50 (min-max over rounds):', '',
                  '| backbone | s/iter | s/iter ratio | peak RSS MiB | RSS ratio | paper claim (s/iter) |',
                  '| --- | --- | --- | --- | --- | --- |']
        for name, row in size['models'].items():
            claim = '-'
            if 'paper_claim' in row:
                claimed = row['paper_claim']['claimed_ratio']
                verdict = claim_verdict(claimed, row['seconds_per_iter_ratio_min'],
                                        row['seconds_per_iter_ratio_max'])
                claim = f'{claimed}: {verdict}'
            lines.append(
                f'| {name} | {row["seconds_per_iter"]:.2f} | {row["seconds_per_iter_ratio"]:.2f}x '
                f'({row["seconds_per_iter_ratio_min"]:.2f}-{row["seconds_per_iter_ratio_max"]:.2f})'
                f' | {row["peak_rss_mib"]:.0f} | {row["peak_rss_ratio"]:.2f}x '
                f'({row["peak_rss_ratio_min"]:.2f}-{row["peak_rss_ratio_max"]:.2f}) | {claim} |')
        lines.append('')
    lines += [f'{name}: {claim["text"]}' for name, claim in CLAIMS.items()]
    return '\n'.join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    default_json = osp.join(REPO, 'benchmarks', 'results', 'train_cost.json')
    if table_requested(argv, default_json, markdown_table):
        return None  # printed the Markdown table of a results file
    record = harness.serve_worker(argv, work)
    if record is not None:
        return record
    args = parse_args(argv)
    import torch
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    for option, value in (('--rounds', rounds), ('--iters', args.iters),
                          ('--threads', args.threads)):
        if value is not None and value < 1:
            raise SystemExit(f'{option} must be >= 1, got {value}')
    if BASELINE not in MODELS:
        raise SystemExit(f'no ResNet-50 config: {CONFIG_PATTERN.format(BASELINE)}')
    threads = args.threads or torch.get_num_threads()
    table = QUICK_SIZES if args.quick else SIZES
    sizes = {size_key(size): (size, *table.get(size, (1, 1) if args.quick else (1, 3)))
             for size in (args.sizes or table)}
    names = [BASELINE] + [n for n in args.models if n != BASELINE]
    results = harness.new_results(
        __file__, argv, benchmark='Mask R-CNN training cost per backbone', threads=threads, rounds=rounds,
        method=METHOD, batch=BATCH, boxes_per_image=BOXES_PER_IMAGE, quick=args.quick, machine_shared=args.shared,
        sizes={key: dict(warmup=w, iters=args.iters or n) for key, (_, w, n) in sizes.items()},
        configs={n: osp.relpath(MODELS[n], REPO) for n in names})
    results.update(claims=CLAIMS, sizes={}, runs=[])

    def measure(item, index):
        key, name = item
        size, warmup, iters = sizes[key]
        record = run_in_fresh_process(dict(config=MODELS[name], size=list(size), warmup=warmup,
                                           iters=args.iters or iters, threads=threads))
        results['runs'].append(dict(record, round=index, size=key, model=name))
        return record

    per_round = harness.interleaved_rounds(rounds, [(key, name) for key in sizes for name in names], measure)
    for key in sizes:
        results['sizes'][key] = summarise([{name: one[key, name] for name in names} for one in per_round])
    return harness.write(harness.finish(results), args.json, markdown_table(results))


if __name__ == '__main__':
    main()
