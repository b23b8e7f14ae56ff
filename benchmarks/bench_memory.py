"""Long-run memory check: resident memory over many training iterations stays flat.

    python benchmarks/bench_memory.py                  # 200 iterations of each model (the check)
    python benchmarks/bench_memory.py --iters 60       # a shorter run, same method
    python benchmarks/bench_memory.py --table [RESULTS.json]   # Markdown table of a results file

Method
------
Each model trains in a fresh subprocess through ``tools/train.py``'s code path
(``convdense.launch`` → mmengine ``Runner``), on the same tiny generated data the
end-to-end tests use, single-threaded. A hook reads the process's resident set
(``/proc/self/statm``) after every training iteration, before any checkpoint
is written. The first ``--warmup`` fraction of the iterations is dropped
(allocator pools, lazily built buffers and the first checkpoint-free
iterations grow memory once); a least-squares line through the rest gives the
slope in KiB per iteration. The same fit of the bytes held by live tensors
(every ``torch.Tensor`` the garbage collector can see) tells a leak of tensors
from the allocator's own growth. The run passes when the RSS slope is at most
``--max-slope-kib`` (default 32 KiB/iteration, 6.25 MiB over 200 iterations):
a leak of even one small feature map per iteration is far above it, while
mmengine's own per-iteration log history (a few floats) is far below.

Models:
    maskrcnn  Mask R-CNN R-50-FPN (``configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py``),
              batch 2 of 128x96 COCO-format images, fewer RoIs (``shrink_config``).
    pac       PAC (lite) x4 flow upsampling
              (``configs/joint_upsampling/pacjointupsample_lite_x4_flow_demo.py``),
              batch 2 of 64x64 random crops of the bundled flow frames.

Each model's run is one fresh worker process (``benchmarks/harness.py``). Results
go to ``benchmarks/results/memory.json`` in the harness's layout: the RSS of every
iteration, the fitted slope and its limit per model (judged when a table is
printed), and the machine (CPU, ISA, cores, threads, load) before and after.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'benchmarks'))

import harness  # noqa: E402
from cli_helpers import table_requested  # noqa: E402

RESULTS = ROOT / 'benchmarks' / 'results' / 'memory.json'
MODELS = ('maskrcnn', 'pac')
DEFAULT_MAX_SLOPE_KIB = 32.0


def fit_slope(values, warmup=0.2):
    """Least-squares slope of ``values`` per step after dropping the first
    ``warmup`` fraction (at least two points are kept).

    Returns ``(slope, first_kept_index)``; the slope is in ``values``' unit per step.
    """
    if not 0 <= warmup < 1:
        raise ValueError(f'warmup must be a fraction in [0, 1), got {warmup!r}')
    start = min(int(len(values) * warmup), max(len(values) - 2, 0))
    kept = [float(v) for v in values[start:]]
    if len(kept) < 2:
        raise ValueError(f'need at least 2 samples after the warm-up, got {len(kept)}')
    steps = range(start, start + len(kept))
    mean_x = sum(steps) / len(kept)
    mean_y = sum(kept) / len(kept)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in zip(steps, kept))
    variance = sum((x - mean_x) ** 2 for x in steps)
    return covariance / variance, start


def verdict(rss_kib, max_slope_kib=DEFAULT_MAX_SLOPE_KIB, warmup=0.2):
    """Summarise one run's per-iteration RSS (KiB): slope and growth (the limit is
    stored beside them; :func:`is_flat` judges)."""
    slope, start = fit_slope(rss_kib, warmup)
    return dict(slope_kib_per_iter=round(slope, 3), max_slope_kib_per_iter=max_slope_kib,
                warmup_iters=start, rss_mib_first_kept=round(rss_kib[start] / 1024, 1),
                rss_mib_last=round(rss_kib[-1] / 1024, 1))


def is_flat(result):
    """The goal: the fitted RSS slope is at most the run's limit (KiB per iteration)."""
    return result['slope_kib_per_iter'] <= result['max_slope_kib_per_iter']


def markdown_table(report):
    """One row per model: RSS slope against its limit (judged now), the RSS from the
    first kept to the last iteration and the live-tensor slope."""
    lines = ['| model | iterations | RSS slope KiB/iter (limit) | flat | RSS MiB first kept -> last | '
             'live tensors KiB/iter |', '|---|---:|---|---|---|---:|']
    iters = report.get('meta', report)['iters']  # the layout before harness.py kept it at the top
    for model, result in report['models'].items():
        lines.append(f"| {model} | {iters} (first {result['warmup_iters']} dropped) | "
                     f"{result['slope_kib_per_iter']:.1f} (<= {result['max_slope_kib_per_iter']:g}) | "
                     f"{'yes' if is_flat(result) else '**no**'} | {result['rss_mib_first_kept']} -> "
                     f"{result['rss_mib_last']} | {result['live_tensor_slope_kib_per_iter']:.1f} |")
    return '\n'.join(lines)


def resident_kib():
    with open('/proc/self/statm') as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE') / 1024


def _pac_config(work_dir, iters):
    from convdense import launch
    cfg = launch.load_config(
        str(ROOT / 'configs/joint_upsampling/pacjointupsample_lite_x4_flow_demo.py'),
        work_dir=work_dir)
    cfg.train_dataloader.batch_size = 2
    cfg.train_dataloader.dataset.data_root = str(ROOT / 'data/flow')
    for transform in cfg.train_dataloader.dataset.pipeline:
        if transform['type'] == 'RandomJointCrop':
            transform['crop_size'] = 64
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    cfg.param_scheduler = []
    cfg.custom_hooks = []
    return cfg


def _maskrcnn_config(work_dir, iters):
    from tests.helpers.e2e import make_tiny_coco, shrink_config
    data_root = make_tiny_coco(os.path.join(work_dir, 'data'))
    cfg = shrink_config(str(ROOT / 'configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'), data_root,
                        'det', iters=iters)
    cfg.work_dir = work_dir
    return cfg


def live_tensor_kib():
    """Bytes of the storages of every tensor Python still references, in KiB:
    what a leak of tensors (a kept graph, a growing list) adds to, while the
    allocator's own growth (fragmentation, pools) only shows in the RSS."""
    import gc

    import torch
    storages = {}
    for obj in gc.get_objects():
        if isinstance(obj, torch.Tensor) and not obj.is_meta:
            storage = obj.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values()) / 1024


def measure_one(model, iters, threads):
    """Train ``model`` for ``iters`` iterations here; return the RSS and the live
    tensor bytes (KiB) after each iteration."""
    import torch
    from mmengine.hooks import Hook

    torch.set_num_threads(threads)
    samples = dict(rss=[], tensors=[])

    class ResidentSetHook(Hook):
        priority = 'NORMAL'  # before CheckpointHook (VERY_LOW): a save is not counted

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            samples['rss'].append(resident_kib())
            samples['tensors'].append(live_tensor_kib())

    from convdense import launch
    with tempfile.TemporaryDirectory() as work_dir:
        cfg = (_pac_config if model == 'pac' else _maskrcnn_config)(work_dir, iters)
        cfg.default_hooks.logger = dict(type='LoggerHook', interval=max(iters // 4, 1))
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=iters + 1,
                                            by_epoch=False)
        cfg.log_level = 'WARNING'
        runner = launch.build_runner(cfg)
        runner.register_hook(ResidentSetHook())
        runner.train()
    return samples


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if table_requested(argv, RESULTS, markdown_table):
        return None
    if harness.serve_worker(argv, lambda spec: measure_one(spec['model'], spec['iters'], spec['threads'])):
        return None
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', choices=MODELS, default=list(MODELS))
    parser.add_argument('--iters', type=int, default=200)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--warmup', type=float, default=0.2,
                        help='fraction of the first iterations left out of the fit')
    parser.add_argument('--max-slope-kib', type=float, default=DEFAULT_MAX_SLOPE_KIB)
    parser.add_argument('--out', default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.iters < 10:
        parser.error('--iters must be at least 10 for a meaningful slope')

    report = harness.new_results(__file__, argv, threads=args.threads, rounds=1, iters=args.iters,
                                 warmup_fraction=args.warmup)
    report['models'] = {}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                                   os.environ.get('PYTHONPATH')])))
    for model in args.models:
        started = time.time()
        try:
            samples = harness.run_worker(__file__, dict(model=model, iters=args.iters, threads=args.threads),
                                         env=env, cwd=ROOT, quiet=True)
        except RuntimeError as error:
            sys.exit(f'error: {model}: training failed: {error}')
        result = verdict(samples['rss'], args.max_slope_kib, args.warmup)
        tensor_slope, _ = fit_slope(samples['tensors'], args.warmup)
        result.update(seconds=round(time.time() - started, 1),
                      live_tensor_slope_kib_per_iter=round(tensor_slope, 3),
                      rss_kib=[round(v) for v in samples['rss']],
                      live_tensor_kib=[round(v) for v in samples['tensors']],
                      machine_before=samples['machine_before'], machine_after=samples['machine_after'])
        report['models'][model] = result
        print(f"{model:9s} slope {result['slope_kib_per_iter']:8.2f} KiB/iter "
              f"(limit {args.max_slope_kib}), RSS {result['rss_mib_first_kept']} -> "
              f"{result['rss_mib_last']} MiB, {'flat' if is_flat(result) else 'GROWING'}; "
              f"live tensors {tensor_slope:.2f} KiB/iter")
    harness.write(harness.finish(report), args.out, markdown_table(report))
    if not all(is_flat(result) for result in report['models'].values()):
        sys.exit(1)
    return report


if __name__ == '__main__':
    main()
