"""What latency ratio each backbone's multiply-adds allow, next to the measured one.

    python benchmarks/latency_bound.py                    # 224x224 and 800x1216
    python benchmarks/latency_bound.py --sizes 224x224 --models hetconv-resnet50_p4
    python benchmarks/latency_bound.py --table [RESULTS.json]     # Markdown table of a results file

The papers change the convolutions inside ResNet-50's residual stages and
nothing else (stem, max-pool, the last stage for Oct-ResNet). This script
times each of those convolutions inside a ResNet-50 forward (forward hooks,
median over round-robin repeats) and counts, with mmengine's
:class:`~mmengine.analysis.FlopAnalyzer`, the multiply-adds of the module of
the same name in the other backbone (HetConv's ``conv2``, Oct-ResNet's octave
``conv1``/``conv2``/``conv3``/``downsample.0``). The estimate is the ratio the
backbone would reach if each changed convolution ran at ResNet-50's own time
per multiply-add for that layer, and everything else took ResNet-50's time::

    ratio_est = 1 - sum_m share_m * (1 - flops_backbone(m) / flops_resnet50(m))

``share_m`` is module ``m``'s fraction of the ResNet-50 forward. For HetConv,
which changes nothing but ``conv2``, this is a bound: a lower measured ratio
needs HetConv layers that beat oneDNN's dense 3x3 convolution per
multiply-add. For Oct-ResNet it is an estimate: its norms and activations act
on 5/8 of ResNet's elements, which this leaves at ResNet's time, and its
pooling/upsampling is left out. Backbones whose conv modules do not carry
ResNet's names (Res2Net splits ``conv2`` into ``convs``) are reported as
not comparable.

Results go to ``benchmarks/results/latency_bound.json`` with the measured
ratios from ``benchmarks/results/backbones.json`` (``bench_backbones.py``)
beside them; a markdown table is printed.
"""
import argparse
import json
import os.path as osp
import statistics
import sys
import time

import torch
from torch import nn

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'benchmarks'))

from bench_backbones import BACKBONES, BASELINE, FLOP_MARGIN, build_models  # noqa: E402
from cli_helpers import table_requested, write_results  # noqa: E402
from machine_info import machine  # noqa: E402

#: (H, W) -> (warm-up forwards, timed forwards)
SIZES = {(224, 224): (3, 15), (800, 1216): (1, 5)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', nargs='+', default=None,
                        help='HxW sizes (default: 224x224 800x1216)')
    parser.add_argument('--models', nargs='+', choices=[n for n in BACKBONES if n != BASELINE],
                        default=['oct-resnet50_a0.5', 'hetconv-resnet50_p4'])
    parser.add_argument('--repeats', type=int, default=None, help='timed ResNet-50 forwards')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--measured', default=osp.join(REPO, 'benchmarks', 'results',
                                                       'backbones.json'))
    parser.add_argument('--json', default=osp.join(REPO, 'benchmarks', 'results',
                                                   'latency_bound.json'))
    return parser.parse_args(argv)


def stage_convs(model):
    """Names of the ``nn.Conv2d`` leaves inside the residual stages (``layer*``)."""
    return [name for name, module in model.named_modules()
            if name.startswith('layer') and isinstance(module, nn.Conv2d)]


def conv_shares(model, image, names, warmup, repeats):
    """Each named module's median fraction of ``model``'s forward time.

    Returns ``(median forward seconds, {name: fraction})``; the fractions of one
    forward are computed together, then the median over forwards is taken.
    """
    modules = dict(model.named_modules())
    started, spent = {}, {}

    def before(name):
        def hook(module, args):
            started[name] = time.perf_counter()
        return hook

    def after(name):
        def hook(module, args, output):
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - started[name]
        return hook

    handles = []
    for name in names:
        handles.append(modules[name].register_forward_pre_hook(before(name)))
        handles.append(modules[name].register_forward_hook(after(name)))
    totals, fractions = [], {name: [] for name in names}
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(image)
            for _ in range(repeats):
                spent.clear()
                start = time.perf_counter()
                model(image)
                total = time.perf_counter() - start
                totals.append(total)
                for name in names:
                    fractions[name].append(spent[name] / total)
    finally:
        for handle in handles:
            handle.remove()
    return statistics.median(totals), {n: statistics.median(v) for n, v in fractions.items()}


def module_flops(model, image):
    """Multiply-adds per module name (a module's count includes its children's)."""
    from mmengine.analysis import FlopAnalyzer
    analyzer = FlopAnalyzer(model, image)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        return dict(analyzer.by_module())


def flop_proportional_ratio(shares, reference_flops, flops):
    """``1 - sum_m share_m * (1 - flops[m] / reference_flops[m])`` over ``shares``.

    Raises ``KeyError`` naming the first module ``flops`` lacks (the backbone
    does not keep ResNet's module names, so the comparison is not defined).
    """
    saved = 0.0
    for name, share in shares.items():
        if name not in flops:
            raise KeyError(f'no module named {name!r} in the backbone')
        saved += share * (1.0 - flops[name] / reference_flops[name])
    return 1.0 - saved


def measured_ratios(path):
    """``{size: {name: row}}`` of bench_backbones.py's eager 1-thread results (rows hold
    ``ratio``), or ``{}`` when the file or that run is missing."""
    try:
        with open(path) as f:
            sizes = json.load(f)['eager']['threads']['1']
        return {key: size['models'] for key, size in sizes.items()}
    except (OSError, ValueError, KeyError):
        return {}


def parse_size(text):
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise SystemExit(f'size must look like 224x224, got {text!r}')
    return height, width


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    default_json = osp.join(REPO, 'benchmarks', 'results', 'latency_bound.json')
    if table_requested(argv, default_json, markdown_table):
        return None  # printed the Markdown table of a results file
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = SIZES if args.sizes is None else {
        size: SIZES.get(size, (1, 5)) for size in map(parse_size, args.sizes)}
    models, unavailable = build_models([BASELINE] + args.models)
    if BASELINE not in models:
        raise RuntimeError(f'cannot build the ResNet-50 baseline: {unavailable[BASELINE]}')
    reference = models[BASELINE]
    names = stage_convs(reference)
    measured = measured_ratios(args.measured)
    results = dict(meta=dict(torch=torch.__version__, threads=args.threads,
                             date=time.strftime('%Y-%m-%d %H:%M:%S'), machine_before=machine(),
                             formula='1 - sum_m share_m * (1 - flops_backbone(m) / flops_r50(m))'),
                   unavailable=unavailable, sizes={})
    for size, (warmup, repeats) in sizes.items():
        key = f'{size[0]}x{size[1]}'
        image = torch.randn(1, 3, *size)
        total, shares = conv_shares(reference, image, names, warmup, args.repeats or repeats)
        reference_flops = module_flops(reference, image)
        rows = {}
        for name in args.models:
            if name not in models:
                continue
            row = dict(measured=measured.get(key, {}).get(name, {}).get('ratio'),
                       goal=BACKBONES[name][1])
            try:
                row['estimate'] = flop_proportional_ratio(
                    shares, reference_flops, module_flops(models[name], image))
                # bench_backbones.py's goal: FLOP_MARGIN x this estimate
                row['goal'] = FLOP_MARGIN * row['estimate']
            except KeyError as error:
                row['estimate'] = None
                row['not_comparable'] = str(error).strip('"')
            rows[name] = row
        results['sizes'][key] = dict(resnet50_ms=1000 * total,
                                     changed_conv_share=sum(shares.values()), backbones=rows)
        print(f'{key}: ResNet-50 {1000 * total:.1f} ms, stage convs '
              f'{100 * sum(shares.values()):.1f} % of it', flush=True)
    results['meta']['machine_after'] = machine()
    return write_results(results, args.json, markdown_table(results))


def markdown_table(results):
    lines = ['| backbone | size | FLOP-proportional ratio | measured ratio | goal |',
             '| --- | --- | --- | --- | --- |']
    for key, size_result in results['sizes'].items():
        for name, row in size_result['backbones'].items():
            estimate = ('not comparable' if row['estimate'] is None
                        else f'{row["estimate"]:.3f}x')
            measured = '-' if row['measured'] is None else f'{row["measured"]:.2f}x'
            goal = '-' if row['goal'] is None else f'<= {row["goal"]:.3f}x'
            lines.append(f'| {name} | {key} | {estimate} | {measured} | {goal} |')
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
