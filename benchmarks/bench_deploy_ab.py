"""A/B of the deployed and the exact (training-form) backbone under ONNX Runtime
and eager PyTorch, next to ResNet-50, interleaved in one process, with a per-op profile.

    python benchmarks/bench_deploy_ab.py                      # Oct-ResNet-50, 224x224, 1 thread
    python benchmarks/bench_deploy_ab.py --model hetconv-resnet50_p4 --sizes 224x224 800x1216
    python benchmarks/bench_deploy_ab.py --model res2net50_26w4s --split-padding 16
    python benchmarks/bench_deploy_ab.py --table [RESULTS.json]

Four static-shape exports per size (``tools/deployment/export_onnx.py``): the
backbone exact and deployed (:func:`convdense.deploy.switch_to_deploy`), ResNet-50
exact and deployed (batch norms folded; ONNX Runtime folds them into the convs
itself, so both should time alike). ``--split-padding M`` adds a fifth export for
Res2Net: the deployed model with every split zero-padded to a multiple of ``M``
channels (the same function; tests whether ORT's blocked kernels win back the
extra FLOPs, an experiment, not a deploy form). They are timed round-robin in one ORT config
(``bench_backbones.ORT_CONFIG``) for ``--repeats`` forwards after warm-up; ratios
are to the faster ResNet-50 export. ``--profile`` adds ONNX Runtime's profiler
totals per op type for each export (where the time goes). The same four models
are timed in eager PyTorch (``torch.inference_mode``, round-robin) unless
``--no-eager``. Results go to
``benchmarks/results/deploy_ab.json`` with the machine's load before and after.
"""
import argparse
import copy
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
    parser.add_argument('--split-padding', type=int, metavar='M',
                        help='Res2Net only: also time the deployed model with its splits '
                             'zero-padded to a multiple of M channels')
    parser.add_argument('--shared', choices=['yes', 'no', 'unknown'], default='unknown',
                        help='whether other jobs shared the machine (recorded in the JSON)')
    parser.add_argument('--json', default=DEFAULT_JSON)
    return parser.parse_args(argv)


def profiled_nodes(path, feed, threads, runs=3):
    """ONNX Runtime's profiler events of every node run in ``runs`` timed runs (after one
    warm-up run), and ``runs``."""
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
    # Each node belongs to the run whose span holds its start; the first run is warm-up.
    spans = sorted((e['ts'], e['ts'] + e['dur']) for e in events
                   if e.get('cat') == 'Session' and e.get('name') == 'model_run')
    timed = spans[1:]
    nodes = [e for e in events
             if e.get('cat') == 'Node' and e.get('name', '').endswith('_kernel_time')
             and any(start <= e['ts'] <= end for start, end in timed)]
    return nodes, len(timed)


def op_type_profile(nodes, runs):
    """Milliseconds per ONNX op type (summed over nodes, mean over ``runs``)."""
    totals = defaultdict(float)
    for event in nodes:
        totals[event['args'].get('op_name', '?')] += event['dur'] / 1000.0
    return dict(sorted(((op, round(ms / runs, 3)) for op, ms in totals.items()),
                       key=lambda item: -item[1]))


def conv_kernel_profile(nodes, runs):
    """ONNX Runtime's convolutions by kernel size and kernel (``Conv``: blocked NCHWc
    layout; ``FusedConv``: plain NCHW): ms per run, GMAC per run and GMAC/s, from the
    shapes the profiler reports (so channels ORT padded to its block count as work)."""
    totals = defaultdict(lambda: [0.0, 0.0, 0])
    for event in nodes:
        args = event['args']
        if args.get('op_name') not in ('Conv', 'FusedConv'):
            continue
        weight = list(args['input_type_shape'][1].values())[0]
        output = list(args['output_type_shape'][0].values())[0]
        macs = 1
        for extent in output + weight[1:]:
            macs *= extent
        entry = totals[f'{weight[2]}x{weight[3]} {args["op_name"]}']
        entry[0] += event['dur'] / 1000.0
        entry[1] += macs / 1e9
        entry[2] += 1
    return {key: dict(ms=round(ms / runs, 3), gmac=round(gmac / runs, 6),
                      gmac_per_s=round(gmac / ms * 1000.0, 1), nodes=count // runs)
            for key, (ms, gmac, count) in sorted(totals.items(), key=lambda item: -item[1][0])}


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
            if not results['meta'].get('profile_runs_counted'):
                lines += ['Written before the profile counted its runs: these ms sum two timed '
                          'runs divided by three (two thirds of a run); the columns compare '
                          'as they stand.', '']
        if row.get('profile_conv_by_kernel'):
            lines += conv_kernel_table(key, row['profile_conv_by_kernel']) + ['']
    return '\n'.join(lines)


def conv_kernel_table(key, profile):
    """Markdown lines: ONNX Runtime's convolutions by kernel size, ms per run and GMAC/s,
    one column per export."""
    names = list(profile)
    kinds = sorted({k for p in profile.values() for k in p}, key=lambda k: -max(
        profile[n].get(k, {}).get('ms', 0.0) for n in names))
    lines = [f'{key}, onnxruntime convolutions by kernel, ms per run (GMAC/s):', '',
             '| kernel | ' + ' | '.join(names) + ' |', '| --- |' + ' --- |' * len(names)]
    for kind in kinds:
        cells = [f'{profile[n][kind]["ms"]:.2f} ({profile[n][kind]["gmac_per_s"]:.0f})'
                 if kind in profile[n] else '–' for n in names]
        lines.append(f'| {kind} | ' + ' | '.join(cells) + ' |')
    return lines


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


def pad_res2net_splits(model, multiple):
    """Zero-pad every split of a deployed Res2Net (groups 1, norms folded) to a multiple of
    ``multiple`` channels: ``conv1`` gains zero rows, each split conv zero rows and columns,
    ``conv3`` zero columns, so the function is unchanged. Returns ``model``."""
    from torch import nn

    from convdense.models.backbones.res2net import Res2NetBottleneck

    def conv_like(conv, weight, bias):
        new = nn.Conv2d(weight.shape[1], weight.shape[0], conv.kernel_size, conv.stride,
                        conv.padding, conv.dilation, bias=True)
        new.weight.data, new.bias.data = weight, bias
        return new.requires_grad_(False)

    for block in model.modules():
        if not isinstance(block, Res2NetBottleneck) or block.width % multiple == 0:
            continue
        if block.groups != 1 or any(not isinstance(n, nn.Identity) for n in block.bns):
            raise SystemExit('error: --split-padding needs groups=1 and folded split norms')
        width, scales = block.width, block.scales
        padded = -(-width // multiple) * multiple
        old = [slice(i * width, (i + 1) * width) for i in range(scales)]
        new = [slice(i * padded, i * padded + width) for i in range(scales)]
        c1, c3 = block.conv1, block.conv3
        w1, b1 = c1.weight.new_zeros(scales * padded, *c1.weight.shape[1:]), c1.weight.new_zeros(
            scales * padded)
        w3 = c3.weight.new_zeros(c3.out_channels, scales * padded, 1, 1)
        for o, n in zip(old, new):
            w1[n], b1[n], w3[:, n] = c1.weight[o], c1.bias[o], c3.weight[:, o]
        block.conv1, block.conv3 = conv_like(c1, w1, b1), conv_like(c3, w3, c3.bias.clone())
        for i, conv in enumerate(block.convs):
            weight = conv.weight.new_zeros(padded, padded, *conv.kernel_size)
            bias = conv.weight.new_zeros(padded)
            weight[:width, :width], bias[:width] = conv.weight, conv.bias
            block.convs[i] = conv_like(conv, weight, bias)
        block.width = padded
    return model


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
    if args.split_padding:
        if not args.model.startswith('res2net'):
            raise SystemExit('error: --split-padding is for a res2net model')
        padded = pad_res2net_splits(copy.deepcopy(models[f'{args.model}_deploy']), args.split_padding)
        image = torch.randn(1, 3, 64, 64)
        with torch.inference_mode():
            for got, expected in zip(padded(image), models[f'{args.model}_deploy'](image)):
                torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
        models[f'{args.model}_deploy_splits_padded{args.split_padding}'] = padded
    results = dict(meta=dict(torch=torch.__version__, cpu=cpu_model(), cpus=os.cpu_count(),
                             threads=args.threads, split_padding=args.split_padding,
                             profile_runs_counted=True, warmup=args.warmup, repeats=args.repeats,
                             machine_shared=args.shared, ort_config=ORT_CONFIG,
                             date=time.strftime('%Y-%m-%d %H:%M:%S'),
                             method='one process; the exports timed round-robin '
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
                profiles = {n: profiled_nodes(p, feed, args.threads) for n, p in paths[key].items()}
                row['profile_ms_per_op_type'] = {n: op_type_profile(*nodes)
                                                 for n, nodes in profiles.items()}
                row['profile_conv_by_kernel'] = {n: conv_kernel_profile(*nodes)
                                                 for n, nodes in profiles.items()}
            results['sizes'][key] = row
    results['meta'].update(machine_after=machine(), load_average_end=load_average())
    return write_results(results, args.json, markdown_table(results))


if __name__ == '__main__':
    main()
