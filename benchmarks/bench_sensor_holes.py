"""Sensor holes: does a PAC (lite) x8 model taught that low-res depth has holes beat JBU
on sensor-like inputs, and stay ahead on clean ones?

    python benchmarks/bench_sensor_holes.py [--seed 0] [--iters N] [--out RESULTS.json]

Per seed: trains ``pacjointupsample_lite_x8_procedural_holes.py`` (procedural scenes with
sensor-like holes added to the low-res input; checkpoint chosen on the config's val scene)
twice, with the validity mask through the net and with the holes nearest-filled instead
(``model.low_mask=False``), and scores on its test scene, clean and with two fixed
sensor-like hole patterns (``rmse_px_clean`` / ``rmse_px_sensor_like``): bicubic and JBU
given the same mask, JBU given nearest-filled holes, the holes model, and the same seed's
x8 procedural model trained without holes (the shipping run's, see
``tools/make_shipped_upsamplers.py --seed``) with the mask and without it (holes filled
from the nearest known sample, as it was trained). Each seed's run is merged into
``benchmarks/results/joint_upsampling_holes.json`` (machine and command with it); the
table is over every seed run of the same schedule, judged as the other upsampler tables
are (ahead only beyond the seed spread).
"""
import argparse
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))

import demo  # noqa: E402
import make_shipped_upsamplers as shipping  # noqa: E402
from cli_helpers import locked_merge  # noqa: E402
from convdense import launch  # noqa: E402
from convdense.evaluation.upsampling_verdict import GOAL_GAIN_OVER_JBU, ahead, summarise  # noqa: E402
from eval_upsampling_baselines import BASELINES, evaluate  # noqa: E402
from machine_info import machine  # noqa: E402
from upsample import SHIPPED_DIR  # noqa: E402

CONFIG = osp.join(demo.CONFIGS, 'pacjointupsample_lite_x8_procedural_holes.py')
OUT = osp.join(ROOT, 'benchmarks', 'results', 'joint_upsampling_holes.json')
METRICS = ('rmse_px_clean', 'rmse_px_sensor_like', 'rmse_px')
NO_MASK = {'model.low_mask': False}
HOLES_MODEL = 'PAC (lite), trained with holes (mask)'
WITHOUT_HOLES = 'PAC (lite) x8, trained without holes'
#: the holes config trained twice per seed: the mask through the net, or the holes nearest-filled
HOLES_TRAININGS = {'pac_lite_holes': (HOLES_MODEL, None),
                   'pac_lite_holes_nearest_fill': ('PAC (lite), trained with holes (no mask: holes nearest-filled)',
                                                   NO_MASK)}
#: the ways a learned model meets holes, each judged against the goal
APPROACHES = {'mask': HOLES_MODEL,
              'nearest fill, trained with holes': HOLES_TRAININGS['pac_lite_holes_nearest_fill'][0],
              'nearest fill, trained without holes': f'{WITHOUT_HOLES} (no mask: holes nearest-filled)'}


def procedural_x8_checkpoint(seed, work_dir=osp.join(ROOT, 'work_dirs', 'shipped_upsamplers')):
    """The x8 procedural depth model of ``seed``: the shipped file for the shipped seed,
    else that seed's shipping run in ``work_dir`` (a one-line error naming the command)."""
    return shipping.stage_weights('depth-x8', seed, SHIPPED_DIR, work_dir, shipping.read_results(shipping.RESULTS))[0]


def seed_runs(results):
    """Every seed run of the results file (a file written before runs were kept is one run)."""
    return results.get('runs') or ([dict(seed=results['seed'], iters=results['iters'], rows=results['rows'])]
                                   if 'rows' in results else [])


def merged_rows(runs):
    """One row per method every run has: every metric a seed summary over ``runs``."""
    methods = [row['method'] for row in runs[0]['rows']
               if all(any(r['method'] == row['method'] for r in run['rows']) for run in runs)]
    return [dict(method=m, **{metric: summarise([next(r[metric] for r in run['rows'] if r['method'] == m)
                                                 for run in runs]) for metric in METRICS})
            for m in methods]


def goal(rows):
    """Per approach (``APPROACHES``): its gain over the better JBU (mask or nearest fill) per
    column, and the goal: on clean inputs >= 3 % ahead beyond the seed spread, on sensor-like
    inputs no seed worse than that JBU."""
    by_method = {row['method']: row for row in rows}
    jbus = [row for row in rows if row['method'].startswith('JBU')]
    verdicts = {}
    for approach, method in APPROACHES.items():
        if method not in by_method:
            continue
        model, best_jbu = by_method[method], {m: min((j[m] for j in jbus), key=lambda s: s['mean']) for m in METRICS}
        gain = {m: 1 - model[m]['mean'] / best_jbu[m]['mean'] for m in METRICS}
        clean = gain['rmse_px_clean'] >= GOAL_GAIN_OVER_JBU and ahead(model['rmse_px_clean'], best_jbu['rmse_px_clean'])
        sensor = model['rmse_px_sensor_like']['max'] <= best_jbu['rmse_px_sensor_like']['mean']
        verdicts[approach] = dict(method=method, gain_over_jbu=gain, clean_met=clean, sensor_like_met=sensor,
                                  goal_met=clean and sensor)
    return verdicts


def format_table(results):
    """Markdown: RMSE (px) of each method on the clean and the sensor-like test inputs, mean
    [min–max] over the seed runs of the latest schedule, and the goal per approach."""
    runs = [run for run in seed_runs(results) if run['iters'] == results['iters']]
    rows = merged_rows(runs)
    seeds = ', '.join(str(run['seed']) for run in runs)
    lines = [f"Test scene {results['test_scene']} (never trained or selected on), x8, RMSE in px: "
             f'clean input, sensor-like holes in the low-res input, all; learned rows: mean [min–max] '
             f'over seeds {seeds}', '', '| method | clean | sensor-like | all |', '|---|---:|---:|---:|']
    for row in rows:
        lines.append(f"| {row['method']} | " + ' | '.join(shipping.seed_cell(row[m]) for m in METRICS) + ' |')
    lines += ['', f'Goal: at least {GOAL_GAIN_OVER_JBU:.0%} below the better JBU on clean inputs beyond the seed '
              'spread, and no seed worse than it on sensor-like inputs. Gain over the better JBU '
              '(1 - PAC / JBU, means):', '']
    for approach, verdict in goal(rows).items():
        gain = verdict['gain_over_jbu']
        lines.append(f"- {approach} ({verdict['method']}): "
                     + ', '.join(f"{m.replace('rmse_px_', '').replace('rmse_px', 'all').replace('_', '-')} "
                                 f"{100 * gain[m]:+.1f} %" for m in METRICS)
                     + f" — clean {'met' if verdict['clean_met'] else 'not met'}, sensor-like "
                     f"{'met' if verdict['sensor_like_met'] else 'not met'}")
    return '\n'.join(lines)


def score_seed(seed, holes_checkpoints, work_dir):
    """(method, metrics) of every method for one seed: baselines, the holes models
    (``{method: (checkpoint, overrides)}``) and the same seed's procedural model without
    holes, with and without the mask."""
    without_holes = procedural_x8_checkpoint(seed)
    scored = [(f'{name} (mask)', dict(net=net)) for name, net in BASELINES]
    scored += [('JBU (no mask: holes nearest-filled)', dict(net='JBU', overrides=NO_MASK))]
    scored += [(method, dict(checkpoint=checkpoint, overrides=overrides))
               for method, (checkpoint, overrides) in holes_checkpoints.items()]
    scored += [(f'{WITHOUT_HOLES} (mask)', dict(checkpoint=without_holes)),
               (APPROACHES['nearest fill, trained without holes'], dict(checkpoint=without_holes, overrides=NO_MASK))]
    return [(name, evaluate(CONFIG, osp.join(work_dir, demo._slug(name)), panels=False, **options)[0])
            for name, options in scored]


def add_run(results, run, config_fields):
    """``results`` with ``run`` in the place of an earlier run of its seed and schedule; the
    file's schedule becomes the run's (the table is over runs of the latest schedule)."""
    legacy = ('seed', 'rows', 'command', 'machine_before', 'machine_after', 'seconds')
    merged = {k: v for k, v in results.items() if k not in legacy}
    merged.update(config_fields, runs=shipping.add_seed_run(seed_runs(results), run))
    merged['command'] = 'python benchmarks/bench_sensor_holes.py --seed N (N = ' + ', '.join(
        str(r['seed']) for r in merged['runs'] if r['iters'] == run['iters']) + ')'
    return merged


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--iters', type=int, help='training iterations (default: the config\'s schedule)')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'sensor_holes'))
    parser.add_argument('--out', default=OUT)
    args = parser.parse_args(argv)
    procedural_x8_checkpoint(args.seed)  # a missing model is refused before training
    work_dir, start, before = osp.join(osp.abspath(args.work_dir), f'seed{args.seed}'), time.time(), machine()
    trained = {}
    for sub_dir, (method, overrides) in HOLES_TRAININGS.items():
        checkpoint, _ = demo.train(CONFIG, osp.join(work_dir, sub_dir),
                                   {'randomness.seed': args.seed, **(overrides or {})}, args.iters,
                                   description=f'{method}, seed {args.seed}')
        trained[method] = (checkpoint, overrides)
    rows = score_seed(args.seed, trained, work_dir)
    cfg = launch.load_config(CONFIG)
    iters = args.iters or cfg.train_cfg.max_iters
    run = dict(seed=args.seed, iters=iters, rows=[dict(method=name, **{m: metrics[m] for m in METRICS})
                                                  for name, metrics in rows],
               command='python benchmarks/bench_sensor_holes.py ' + ' '.join(argv or sys.argv[1:]),
               machine_before=before, machine_after=machine(), seconds=round(time.time() - start))
    fields = dict(config=osp.relpath(CONFIG, ROOT), iters=iters, val_scene=cfg.val_scene, test_scene=cfg.test_scene)
    results = locked_merge(args.out, lambda old: add_run(old, run, fields))
    print(format_table(results))
    print(f'written: {args.out}')
    return 0


if __name__ == '__main__':
    launch.run_cli(main)
