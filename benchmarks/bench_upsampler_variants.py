"""Schedule variants of a shipped upsampler, judged on its val scene only.

    python benchmarks/bench_upsampler_variants.py --model depth-x4 --variant NAME \
        [--cfg-options key=value ...] [--seed 0] [--iters N] [--out RESULTS.json]

Trains the model's procedural config (``tools/make_shipped_upsamplers.py``'s ``MODELS``)
with the variant's ``--cfg-options`` (``--variant config``: none) and records the val
score at every validation, the best, and bicubic's and JBU's val scores on the same
scene: what a schedule change would be chosen on. The test scene is not scored here (a
chosen variant becomes the config and is scored by ``make_shipped_upsamplers.py``).
Each run is merged into ``benchmarks/results/upsampler_variants.json`` as it finishes.
"""
import argparse
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))

from mmengine.config import DictAction  # noqa: E402

import demo  # noqa: E402
import make_shipped_upsamplers as shipping  # noqa: E402
from bench_gpu_train import read_scalars  # noqa: E402
from cli_helpers import locked_merge  # noqa: E402
from convdense import launch  # noqa: E402
from eval_upsampling_baselines import BASELINES  # noqa: E402
from machine_info import machine  # noqa: E402

OUT = osp.join(ROOT, 'benchmarks', 'results', 'upsampler_variants.json')


def config_of(model):
    """The procedural config a shipped model ``model`` (e.g. 'depth-x4') is trained with."""
    trained = [key for key in shipping.MODELS if key not in shipping.COMPOSED]
    if model not in trained:
        raise launch.ConfigError(f"--model: {model!r} is not a trained shipped model (one of {', '.join(trained)})")
    return osp.join(demo.CONFIGS, shipping.SHIPPED[shipping.MODELS[model]])


def val_history(work_dir, metric, val_interval, max_iters):
    """``[[iteration, score], ...]`` of every validation of the newest run in ``work_dir``
    (mmengine's ``vis_data/scalars.json`` keys an iteration loop's validations by epoch, so
    the k-th is placed at ``min(k * val_interval, max_iters)``)."""
    scores = [round(r[metric], 4) for r in read_scalars(work_dir) if metric in r and 'loss' not in r]
    return [[min((k + 1) * val_interval, max_iters), score] for k, score in enumerate(scores)]


def baselines_val(config, work_dir):
    """Bicubic's and JBU's scores on the config's val set (what the learned model is chosen on)."""
    return {name: demo.evaluate_val(config, osp.join(work_dir, name), {}, None, net=net) for name, net in BASELINES}


def add_variant(results, model, record, baselines):
    """``results`` with ``record`` as variant ``record['variant']`` (seed ``record['seed']``)
    of ``model``, replacing an earlier run of that variant and seed."""
    entry = dict(results.get(model, {}))
    entry['baselines_val'] = baselines
    runs = [r for r in entry.get('runs', []) if (r['variant'], r['seed']) != (record['variant'], record['seed'])]
    entry['runs'] = runs + [record]
    return {**results, model: entry}


def format_table(results):
    """Markdown per model: val score at every validation, the best and its gain over JBU's val."""
    lines = []
    for model, entry in results.items():
        base = entry['baselines_val']
        steps = sorted({step for run in entry['runs'] for step, _ in run['val_history']})
        lines += [f"{model}, val scene {entry['runs'][0]['val_scene']} ({entry['runs'][0]['metric']}; bicubic "
                  f"{base['bicubic']:.3f}, JBU {base['JBU']:.3f}):", '',
                  '| variant | seed | options | ' + ' | '.join(f'@{s}' for s in steps) + ' | best | vs JBU |',
                  '|---|---:|---|' + '---:|' * (len(steps) + 2)]
        for run in entry['runs']:
            at = dict((step, score) for step, score in run['val_history'])
            options = ', '.join(f'{k}={v}' for k, v in run['cfg_options'].items()) or 'the config'
            lines.append(f"| {run['variant']} | {run['seed']} | {options} | "
                         + ' | '.join(f'{at[s]:.3f}' if s in at else '–' for s in steps)
                         + f" | {run['best_val']:.3f} | {100 * (1 - run['best_val'] / base['JBU']):+.1f} % |")
        lines.append('')
    return '\n'.join(lines).strip()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', required=True)
    parser.add_argument('--variant', required=True, help="a name for the options ('config': none)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--iters', type=int, help='training iterations (default: the config\'s schedule)')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'upsampler_variants'))
    parser.add_argument('--out', default=OUT)
    args = parser.parse_args(argv)
    config = config_of(args.model)
    if (args.variant == 'config') != (not args.cfg_options):
        raise launch.ConfigError("--variant config takes no --cfg-options, and any other variant needs them")
    schedule = shipping.schedule_overrides(launch.load_config(config), args.iters) if args.iters else {}
    overrides = {'randomness.seed': args.seed, **schedule, **args.cfg_options}
    cfg = launch.load_config(config, overrides)  # a misspelt key is refused before training
    work_dir = osp.join(osp.abspath(args.work_dir), args.model)
    start, before = time.time(), machine()
    run_dir = osp.join(work_dir, args.variant, f'seed{args.seed}')
    _, best = demo.train(config, run_dir, overrides, description=f'{args.model} {args.variant} seed {args.seed}')
    metric = demo.TASKS[shipping.MODELS[args.model][0]]['metric']
    record = dict(variant=args.variant, seed=args.seed, cfg_options=dict(args.cfg_options),
                  iters=cfg.train_cfg.max_iters, metric=metric, val_scene=cfg.val_scene,
                  val_history=val_history(run_dir, metric, cfg.train_cfg.val_interval, cfg.train_cfg.max_iters),
                  best_val=round(best, 4),
                  command='python benchmarks/bench_upsampler_variants.py ' + ' '.join(argv or sys.argv[1:]),
                  machine_before=before, machine_after=machine(), seconds=round(time.time() - start))
    baselines = baselines_val(config, osp.join(work_dir, 'baselines_val'))
    results = locked_merge(args.out, lambda old: add_variant(old, args.model, record, baselines))
    print(format_table(results))
    print(f'written: {args.out}')
    return 0


if __name__ == '__main__':
    launch.run_cli(main)
