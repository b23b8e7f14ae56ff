"""A/B of the deployed and the exact (training-form) backbone under ONNX Runtime
and eager PyTorch, next to ResNet-50, interleaved in one process, with a per-op profile.

    python benchmarks/bench_deploy_ab.py                      # Oct-ResNet-50, 224x224, 1 thread
    python benchmarks/bench_deploy_ab.py --model hetconv-resnet50_p4 --sizes 224x224 800x1216
    python benchmarks/bench_deploy_ab.py --table [RESULTS.json]

Four static-shape exports per size (``tools/deployment/export_onnx.py``): the
backbone exact and deployed (:func:`convdense.deploy.switch_to_deploy`), ResNet-50
exact and deployed (batch norms folded; ONNX Runtime folds them into the convs
itself, so both should time alike). They are timed round-robin in one ORT config
(``bench_backbones.ORT_CONFIG``) for ``--repeats`` forwards after warm-up; ratios
are to the faster ResNet-50 export. ``--profile`` adds ONNX Runtime's profiler
totals per op type for each export (where the time goes). The same four models
are timed in eager PyTorch (``torch.inference_mode``, round-robin) unless
``--no-eager``. Results go to
``benchmarks/results/deploy_ab.json`` with the machine's load before and after.
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile
import time
from collections import defaultdict

import onnx
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'benchmarks'))

from bench_backbones import (BACKBONES, BASELINE, ORT_CONFIG, build_models,  # noqa: E402
                             export_all, ort_session, time_round_robin)
from cli_helpers import parse_size, size_key, table_requested, write_results  # noqa: E402
from machine_info import cpu_model, load_average, machine  # noqa: E402

DEFAULT_JSON = osp.join(REPO, 'benchmarks', 'results', 'deploy_ab.json')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', choices=[n for n in BACKBONES if n != BASELINE],
                        default='oct-resnet50_a0.5')
    parser.add_argument('--sizes', nargs='+', type=parse_size, default=[(224, 224)],
                        metavar='HxW')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=20,
                        help='timed forwards per export and size (round-robin)')
    parser.add_argument('--no-eager', action='store_true', help='ONNX Runtime only')
    parser.add_argument('--profile', action='store_true',
                        help='ONNX Runtime profile per op type of each export')
    parser.add_argument('--shared', choices=['yes', 'no', 'unknown'], default='unknown',
                        help='whether other jobs shared the machine (recorded in the JSON)')
    parser.add_argument('--json', default=DEFAULT_JSON)
    return parser.parse_args(argv)


def op_type_profile(path, feed, threads, runs=3):
    """Milliseconds per ONNX op type (summed over nodes, mean over ``runs``)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    for _ in range(runs + 1):
        session.run(None, feed)
    profile = session.end_profiling()
    with open(profile) as f:
        events = json.load(f)
    os.remove(profile)
    totals, seen_runs = defaultdict(float), 0
    for event in events:
        if event.get('cat') == 'Session' and event.get('name') == 'model_run':
            seen_runs += 1
        if event.get('cat') == 'Node' and event.get('name', '').endswith('_kernel_time') \
                and seen_runs > 1:  # skip the first run (warm-up)
            totals[event['args'].get('op_name', '?')] += event['dur'] / 1000.0
    count = max(seen_runs - 1, 1)
    return dict(sorted(((op, round(ms / count, 3)) for op, ms in totals.items()),
                       key=lambda item: -item[1]))


def markdown_table(results):
    lines = []
    for key, row in results['sizes'].items():
        for runtime in ('onnxruntime', 'eager'):
            timed = row if runtime == 'onnxruntime' else row.get('eager')
            if not timed:
                continue
            lines += [f'{key}, {runtime}, {results["meta"]["threads"]} thread(s):', '',
                      '| model | ms | ratio to ResNet-50 |', '| --- | --- | --- |']
            for name, ms in timed['ms'].items():
                lines.append(f'| {name} | {ms:.1f} | {timed["ratio"][name]:.3f}x |')
            lines.append('')
        profile = row.get('profile_ms_per_op_type')
        if profile:
            lines += profile_table(key, profile) + ['']
    return '\n'.join(lines)


def profile_table(key, profile):
    """Markdown lines: ONNX Runtime's time per op type (ms per run), one column per export,
    op types by their largest time."""
    names = list(profile)
    ops = sorted({op for ms in profile.values() for op in ms}, key=lambda op: -max(
        profile[n].get(op, 0.0) for n in names))
    lines = [f'{key}, onnxruntime profile, ms per run by op type:', '',
             '| op type | ' + ' | '.join(names) + ' |', '| --- |' + ' --- |' * len(names)]
    for op in ops:
        lines.append(f'| {op} | ' + ' | '.join(f'{profile[n][op]:.2f}' if op in profile[n] else '–'
                                               for n in names) + ' |')
    lines.append('| total | ' + ' | '.join(f'{sum(profile[n].values()):.2f}' for n in names) + ' |')
    return lines


def timed_row(runners, warmup, repeats):
    """Median ms of each runner (round-robin) and its ratio to the faster ResNet-50."""
    medians = time_round_robin(runners, warmup, repeats)
    baseline = min(medians[f'{BASELINE}_{form}'] for form in ('exact', 'deploy'))
    return dict(ms={n: 1000 * t for n, t in medians.items()},
                ratio={n: t / baseline for n, t in medians.items()})


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if table_requested(argv, DEFAULT_JSON, markdown_table):
        return None
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [BASELINE, args.model]
    models = {}
    for form in ('exact', 'deploy'):
        built, unavailable = build_models(names, form)
        if unavailable:
            raise SystemExit(f'error: cannot build {unavailable}')
        models.update({f'{name}_{form}': model for name, model in built.items()})
    results = dict(meta=dict(torch=torch.__version__, cpu=cpu_model(), cpus=os.cpu_count(),
                             threads=args.threads, warmup=args.warmup, repeats=args.repeats,
                             machine_shared=args.shared, ort_config=ORT_CONFIG,
                             date=time.strftime('%Y-%m-%d %H:%M:%S'),
                             method='one process; the four exports timed round-robin '
                                    '(order rotating each pass), median forward each',
                             machine_before=machine(), load_average_start=load_average()),
                   sizes={})
    with tempfile.TemporaryDirectory() as tmp:
        paths, failed = export_all(models, args.sizes, tmp)
        if failed:
            raise SystemExit(f'error: export failed: {failed}')
        for size in args.sizes:
            key = size_key(size)
            feed = {'image': torch.randn(1, 3, *size).numpy()}
            sessions = {name: ort_session(path, args.threads) for name, path in paths[key].items()}
            row = timed_row({n: (lambda s=s: s.run(None, feed)) for n, s in sessions.items()},
                            args.warmup, args.repeats)
            row['nodes'] = {n: len(onnx.load(p).graph.node) for n, p in paths[key].items()}
            if not args.no_eager:
                image = torch.from_numpy(feed['image'])
                runners = {n: (lambda m=m: m(image)) for n, m in models.items()}
                with torch.inference_mode():
                    row['eager'] = timed_row(runners, args.warmup, args.repeats)
            if args.profile:
                row['profile_ms_per_op_type'] = {
                    n: op_type_profile(p, feed, args.threads) for n, p in paths[key].items()}
            results['sizes'][key] = row
    results['meta'].update(machine_after=machine(), load_average_end=load_average())
    return write_results(results, args.json, markdown_table(results))


if __name__ == '__main__':
    main()
