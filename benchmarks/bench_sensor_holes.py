"""Sensor holes: does a PAC (lite) x8 model taught that low-res depth has holes beat JBU
on sensor-like inputs, and stay ahead on clean ones?

    python benchmarks/bench_sensor_holes.py [--seed 0] [--iters N] [--out RESULTS.json]

Trains ``pacjointupsample_lite_x8_procedural_holes.py`` (procedural scenes with sensor-like
holes added to the low-res input, the validity mask through the net; checkpoint chosen on
the config's val scene) and scores on its test scene, clean and with two fixed sensor-like
hole patterns (``rmse_px_clean`` / ``rmse_px_sensor_like``): bicubic and JBU given the same
mask, the holes model, and the shipped x8 model (trained without holes) both with the mask
and without it (holes filled from the nearest known sample, as before masks existed).
Writes ``benchmarks/results/joint_upsampling_holes.json`` with the machine and command.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))

import demo  # noqa: E402
from convdense import launch  # noqa: E402
from eval_upsampling_baselines import BASELINES, evaluate  # noqa: E402
from machine_info import machine  # noqa: E402
from upsample import shipped_checkpoint  # noqa: E402

CONFIG = osp.join(demo.CONFIGS, 'pacjointupsample_lite_x8_procedural_holes.py')
SHIPPED_X8 = shipped_checkpoint('depth', 8)
OUT = osp.join(ROOT, 'benchmarks', 'results', 'joint_upsampling_holes.json')
METRICS = ('rmse_px_clean', 'rmse_px_sensor_like', 'rmse_px')


def format_table(results):
    """Markdown: RMSE (px) of each method on the clean and the sensor-like test inputs."""
    lines = [f"Test scene {results['test_scene']} (never trained or selected on), x8, RMSE in px: "
             'clean input, sensor-like holes in the low-res input, all', '',
             '| method | clean | sensor-like | all |', '|---|---:|---:|---:|']
    for row in results['rows']:
        lines.append(f"| {row['method']} | " + ' | '.join(f'{row[m]:.3f}' for m in METRICS) + ' |')
    jbu = next(row for row in results['rows'] if row['method'].startswith('JBU'))
    holes = next(row for row in results['rows'] if row['method'].startswith('PAC (lite), trained with holes'))
    lines += ['', 'Gain of the holes model over JBU (1 - PAC / JBU): '
              + ', '.join(f"{m.replace('rmse_px_', '').replace('rmse_px', 'all')} "
                          f"{100 * (1 - holes[m] / jbu[m]):+.1f} %" for m in METRICS)]
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--iters', type=int, help='training iterations (default: the config\'s schedule)')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'sensor_holes'))
    parser.add_argument('--out', default=OUT)
    args = parser.parse_args(argv)
    if not osp.isfile(SHIPPED_X8):
        raise launch.ConfigError(f'{SHIPPED_X8} is missing: run python tools/make_shipped_upsamplers.py '
                                 '--models depth-x8 first')
    work_dir, start, before = osp.abspath(args.work_dir), time.time(), machine()
    checkpoint, _ = demo.train(CONFIG, osp.join(work_dir, 'pac_lite_holes'), {'randomness.seed': args.seed},
                               args.iters, description=f'PAC (lite) x8 with holes, seed {args.seed}')
    rows = []
    for name, net in BASELINES:
        rows.append((f'{name} (mask)', evaluate(CONFIG, osp.join(work_dir, name), net=net, panels=False)[0]))
    for name, ckpt, overrides in (
            (f'PAC (lite), trained with holes, seed {args.seed} (mask)', checkpoint, None),
            ('shipped PAC (lite) x8, trained without holes (mask)', SHIPPED_X8, None),
            ('shipped PAC (lite) x8, trained without holes (no mask: holes nearest-filled)', SHIPPED_X8,
             {'model.low_mask': False})):
        rows.append((name, evaluate(CONFIG, osp.join(work_dir, demo._slug(name)), checkpoint=ckpt,
                                    panels=False, overrides=overrides)[0]))
    cfg = launch.load_config(CONFIG)
    results = dict(command='python benchmarks/bench_sensor_holes.py ' + ' '.join(argv or sys.argv[1:]),
                   config=osp.relpath(CONFIG, ROOT), seed=args.seed, iters=args.iters or cfg.train_cfg.max_iters,
                   val_scene=cfg.val_scene, test_scene=cfg.test_scene,
                   rows=[dict(method=name, **{m: metrics[m] for m in METRICS}) for name, metrics in rows],
                   machine_before=before, machine_after=machine(), seconds=round(time.time() - start))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    demo.write_json(args.out, results)
    print(format_table(results))
    print(f'written: {args.out}')
    return 0


if __name__ == '__main__':
    launch.run_cli(main)
