"""Train the PAC (lite) models that ``tools/upsample.py --method pac-lite`` uses by default.

    python tools/make_shipped_upsamplers.py [--models depth-x8 flow-x4 ...] [--seed 0]
                                            [--work-dir work_dirs/shipped_upsamplers]

Each model of ``tools/upsample.py``'s ``SHIPPED`` table (depth x4/x8/x16, flow x4/x8) is
trained on procedural data only with its config (``*_procedural.py``), its checkpoint
chosen on the config's val scene (one real Middlebury scene; read as flow for flow) and
scored on the config's test scene (the other one, never trained or selected on) beside
bicubic and JBU, with ``tools/demo.py``'s protocol code. The weights (no optimizer state)
go to ``checkpoints/<config stem>.pth`` with their provenance in ``meta``, and the scores
to ``benchmarks/results/shipped_upsamplers.json``, merged as each model finishes.
``--iters N --checkpoints-dir DIR --out FILE`` (the tests) trains a short schedule
elsewhere; the record says how many iterations a model had.
"""
import argparse
import copy
import hashlib
import json
import os
import os.path as osp
import sys
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))

import demo  # noqa: E402
from cli_helpers import locked_merge  # noqa: E402
from convdense import launch  # noqa: E402
from machine_info import machine  # noqa: E402
from upsample import SHIPPED, SHIPPED_DIR, shipped_checkpoint  # noqa: E402

RESULTS = osp.join(ROOT, 'benchmarks', 'results', 'shipped_upsamplers.json')
MODEL = 'PAC (lite)'


def model_key(kind, factor):
    return f'{kind}-x{factor}'


MODELS = {model_key(kind, factor): (kind, factor) for kind, factor in SHIPPED}


def ship(checkpoint, dst, provenance):
    """Write the trained weights of ``checkpoint`` to ``dst`` (atomically) with their
    provenance in ``meta``; returns the file's sha256."""
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)['state_dict']
    os.makedirs(osp.dirname(dst), exist_ok=True)
    tmp = f'{dst}.tmp'
    torch.save(dict(state_dict=state, meta=provenance), tmp)
    os.replace(tmp, dst)
    with open(dst, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def schedule_overrides(cfg, iters):
    """Config overrides giving ``cfg`` its own schedule stretched to ``iters`` iterations
    (milestones scaled, :func:`convdense.launch.set_schedule`), validated and checkpointed
    five times, so the best-on-val checkpoint is still chosen along the run."""
    scheduled = launch.set_schedule(copy.deepcopy(cfg), iters, iters // 5 or iters)
    return {'train_cfg.max_iters': iters, 'train_cfg.val_interval': scheduled.train_cfg.val_interval,
            'param_scheduler': scheduled.param_scheduler,
            'default_hooks.checkpoint.interval': scheduled.default_hooks.checkpoint.interval,
            'default_hooks.logger.interval': scheduled.default_hooks.logger.interval}


def train_one(key, seed, work_dir, max_iters):
    """Train and score one shipped model (``max_iters``: the config's schedule stretched
    to that many iterations); returns (its results record, best checkpoint)."""
    kind, factor = MODELS[key]
    config_name = SHIPPED[kind, factor]
    cfg = launch.load_config(osp.join(demo.CONFIGS, config_name))
    overrides = schedule_overrides(cfg, max_iters) if max_iters else {}
    task = demo.TASKS['flow' if kind == 'flow' else 'depth']
    column = cfg.test_scene.capitalize()
    start, before = time.time(), machine()
    block, checkpoints = demo.run_protocol(task, osp.join(work_dir, key), overrides, {cfg.test_scene: column},
                                           [seed], None, panels=False, learned={MODEL: config_name})
    record = dict(config=f'configs/joint_upsampling/{config_name}', kind=kind, factor=factor, seed=seed,
                  iters=max_iters or cfg.train_cfg.max_iters,
                  val_scene=cfg.val_scene, test_scene=cfg.test_scene, metric=task['metric'],
                  rows=block['rows'], gain_over_jbu=block['gain_over_jbu'],
                  machine_before=before, machine_after=machine(), seconds=round(time.time() - start))
    return record, checkpoints[MODEL]


def format_table(results):
    """Markdown: each shipped model's error on its unseen test scene beside bicubic and
    JBU (one seed; the seed spread of the same protocol is in docs/joint_upsampling.md)."""
    units = dict(rmse_px='RMSE (px)', epe_px='EPE (px)')
    lines = ['| model (`checkpoints/`) | selected on | tested on | metric | bicubic | JBU | PAC (lite) '
             '| gain over JBU | iterations | train + test |',
             '|---|---|---|---|---:|---:|---:|---:|---:|---:|']
    for key in sorted(results, key=lambda k: list(MODELS).index(k)):
        record = results[key]
        column = record['test_scene'].capitalize()
        score = {row['method']: row['test'][column]['mean'] for row in record['rows']}
        lines.append(f"| {key} (`{osp.basename(record['checkpoint'])}`) | {record['val_scene'].capitalize()} "
                     f"| {column} | {units[record['metric']]} | {score['bicubic']:.3f} | {score['JBU']:.3f} "
                     f"| {score[MODEL]:.3f} | {100 * record['gain_over_jbu'][column]:+.1f} % "
                     f"| {record['iters']} | {record['seconds'] / 60:.0f} min |")
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'shipped_upsamplers'))
    parser.add_argument('--out', default=RESULTS)
    parser.add_argument('--checkpoints-dir', default=SHIPPED_DIR,
                        help='where the weights go (tools/upsample.py reads checkpoints/)')
    parser.add_argument('--iters', type=int, help='training iterations: the config\'s schedule stretched '
                                                  '(default: as the config has it)')
    args = parser.parse_args(argv)
    for key in args.models:
        record, checkpoint = train_one(key, args.seed, osp.abspath(args.work_dir), args.iters)
        print(f"{key}: {record['metric']} on {record['test_scene']}: "
              + ', '.join(f"{row['method']} {next(iter(row['test'].values()))['mean']:.3f}"
                          for row in record['rows'])
              + f"; gain over JBU {100 * record['gain_over_jbu'][record['test_scene'].capitalize()]:+.1f} %")
        dst = shipped_checkpoint(*MODELS[key], directory=args.checkpoints_dir)
        command = 'python tools/make_shipped_upsamplers.py --models ' + key + f' --seed {args.seed}' + (
            f' --iters {args.iters}' if args.iters else '')
        record.update(checkpoint=osp.relpath(dst, ROOT) if dst.startswith(ROOT) else dst, command=command,
                      sha256=ship(checkpoint, dst, dict(config=record['config'], seed=args.seed,
                                                        command=command, results=osp.relpath(osp.abspath(args.out), ROOT))))
        locked_merge(args.out, lambda results: {**results, key: record})
        print(f'shipped: {dst}')
    return 0


if __name__ == '__main__':
    launch.run_cli(main)
