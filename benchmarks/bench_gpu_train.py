"""Short trainings on CUDA, in fp32 and with ``--amp`` (fp16, dynamic loss scaling):
does the loss fall, what do the metrics read, how fast, how much GPU memory.

    python benchmarks/bench_gpu_train.py                  # 300 iterations per run
    python benchmarks/bench_gpu_train.py --iters 500 --runs pac-demo

Runs (each ``tools/train.py`` in its own process, seed 0, one validation at the end):

* ``mask-rcnn-digits``: Mask R-CNN R-50-FPN on the digit scenes
  (``configs/digit_scenes/mask-rcnn_r50_fpn_digit-scenes.py``; the scenes are made by
  ``tools/make_digit_scenes.py`` when missing): mmcv's CUDA ``nms`` / ``roi_align``;
* ``pac-demo``: the PAC (lite) x4 flow upsampler on the bundled frames
  (``configs/joint_upsampling/pacjointupsample_lite_x4_flow_demo.py``).

Per run: the mean logged loss over the first and the last tenth of the logged
iterations (``loss_fell`` when the last is lower), every loss finite, the final
validation metrics, seconds per iteration and the peak GPU memory mmengine logs
(``memory``, MiB of ``torch.cuda.max_memory_allocated``). Results go to
``benchmarks/results/gpu_train_<gpu>.json`` with the GPU's name; exits 1 if a
run's loss did not fall or was not finite.
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
RUNS = {
    'mask-rcnn-digits': 'configs/digit_scenes/mask-rcnn_r50_fpn_digit-scenes.py',
    'pac-demo': 'configs/joint_upsampling/pacjointupsample_lite_x4_flow_demo.py',
}
#: keys of a train record in mmengine's scalars.json that are not metrics
TRAIN_KEYS = ('lr', 'data_time', 'time', 'memory', 'iter', 'epoch', 'step', 'base_lr')


def read_scalars(work_dir):
    """The records of the newest run under ``work_dir`` (mmengine's ``vis_data/scalars.json``)."""
    paths = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not paths:
        raise FileNotFoundError(f'no vis_data/scalars.json under {work_dir}')
    with open(paths[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def summarise_run(records):
    """Loss trend, finiteness, final metrics and peak memory of one run's scalar records."""
    losses = [r['loss'] for r in records if 'loss' in r]
    if not losses:
        raise ValueError('the run logged no loss')
    tenth = max(1, len(losses) // 10)
    first, last = sum(losses[:tenth]) / tenth, sum(losses[-tenth:]) / tenth
    finite = all(math.isfinite(v) for v in losses)
    evaluations = [r for r in records if 'loss' not in r and set(r) - set(TRAIN_KEYS)]
    metrics = {k: v for k, v in (evaluations[-1] if evaluations else {}).items() if k not in TRAIN_KEYS}
    memory = [r['memory'] for r in records if 'memory' in r]
    times = [r['time'] for r in records if 'loss' in r and 'time' in r]
    return dict(logged_iters=len(losses), loss_first_tenth=first, loss_last_tenth=last,
                loss_ratio=last / first if first else None, loss_fell=finite and last < first,
                losses_finite=finite, metrics=metrics,
                peak_memory_mib=max(memory) if memory else None,
                seconds_per_iter=sorted(times)[len(times) // 2] if times else None)


def gpu_slug(name):
    """'NVIDIA H100 80GB HBM3' -> 'h100' (the results file's suffix)."""
    match = re.search(r'\b([A-Z]+\d{2,4}[A-Za-z]?)\b', name.replace('NVIDIA', ''))
    return (match.group(1) if match else re.sub(r'\W+', '_', name)).lower()


def train(name, amp, iters, work_dir, log_interval):
    config = osp.join(REPO, RUNS[name])
    options = [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
               f'default_hooks.logger.interval={log_interval}',
               f'default_hooks.checkpoint.interval={iters}', 'randomness.seed=0']
    command = [sys.executable, osp.join(REPO, 'tools/train.py'), config, '--work-dir', work_dir,
               '--cfg-options', *options] + (['--amp'] if amp else [])
    start = time.time()
    with open(osp.join(work_dir + '.log'), 'w') as log:
        done = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        with open(work_dir + '.log') as log:
            raise RuntimeError(f'{name} (amp={amp}) failed:\n' + log.read()[-4000:])
    record = dict(config=RUNS[name], amp=amp, iters=iters, wall_seconds=round(time.time() - start, 1))
    record.update(summarise_run(read_scalars(work_dir)))
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--runs', nargs='+', choices=sorted(RUNS), default=list(RUNS))
    parser.add_argument('--work-dir', help='where the runs go (default: a temporary folder)')
    parser.add_argument('--out', help='results JSON (default benchmarks/results/gpu_train_<gpu>.json)')
    args = parser.parse_args(argv)
    import torch
    if not torch.cuda.is_available():
        parser.exit(2, f'error: torch {torch.__version__} sees no CUDA device\n')
    gpu = torch.cuda.get_device_name(0)
    if 'mask-rcnn-digits' in args.runs and not osp.isfile(
            osp.join(REPO, 'data/digit_scenes/annotations/instances_train.json')):
        subprocess.run([sys.executable, osp.join(REPO, 'tools/make_digit_scenes.py')], cwd=REPO,
                       check=True)
    work = args.work_dir or tempfile.mkdtemp(prefix='convdense_gpu_train_')
    runs = []
    for name in args.runs:
        for amp in (False, True):
            work_dir = osp.join(work, f"{name}_{'amp' if amp else 'fp32'}")
            os.makedirs(work_dir, exist_ok=True)
            record = dict(run=name, **train(name, amp, args.iters, work_dir, max(1, args.iters // 50)))
            runs.append(record)
            print(f"{name:18s} {'amp ' if amp else 'fp32'} loss {record['loss_first_tenth']:.4f} -> "
                  f"{record['loss_last_tenth']:.4f} ({'fell' if record['loss_fell'] else 'DID NOT FALL'}), "
                  f"{record['seconds_per_iter']} s/iter, {record['peak_memory_mib']} MiB, "
                  f"metrics {record['metrics']}", flush=True)
    out = args.out or osp.join(REPO, 'benchmarks', 'results', f'gpu_train_{gpu_slug(gpu)}.json')
    os.makedirs(osp.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(dict(benchmark='short CUDA trainings, fp32 and --amp (fp16)', gpu=gpu,
                       gpus=torch.cuda.device_count(), torch=torch.__version__,
                       cuda=torch.version.cuda, date=time.strftime('%Y-%m-%d %H:%M:%S'),
                       iters=args.iters, runs=runs), f, indent=2)
        f.write('\n')
    print(f'wrote {out}')
    return 0 if all(r['loss_fell'] for r in runs) else 1


if __name__ == '__main__':
    sys.exit(main())
