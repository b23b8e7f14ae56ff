"""CPU inference latency of the convdense backbones relative to the fastest ResNet-50.

    python benchmarks/bench_backbones.py              # 224x224 and 800x1216, eager + ONNX Runtime,
                                                      # 1 thread and the default count, 3 rounds
                                                      # (estimated ~25 min on an idle 2-core machine)
    python benchmarks/bench_backbones.py --quick      # 224x224, 1 thread, one round (smoke run,
                                                      # ~3 min, mostly the 6 ONNX exports)
    python benchmarks/bench_backbones.py --runtimes eager --threads 1 --trials 5
    python benchmarks/bench_backbones.py --form exact  # the training form (not deployed)
    python benchmarks/bench_backbones.py --table [RESULTS.json]   # Markdown tables of a results file
    python benchmarks/bench_backbones.py --rejudge [RESULTS.json] # its goals again, from the
                                                      # current latency_bound.json

Every backbone is built with its default (paper) arguments and all four
``out_indices``, in eval mode, in its inference form (``--form deploy``, the
default: :func:`convdense.deploy.switch_to_deploy`, re-parameterised layers and
every batch norm folded, ResNet-50's included), and timed on one ``(1, 3, H, W)``
image: in PyTorch under ``torch.inference_mode``, and under ONNX Runtime from a
static-shape export of that same model at each size made by
``tools/deployment/export_onnx.py``. ``--form exact`` times the training form.

Kernels, like for like. In eager PyTorch every network, ResNet-50 and each
backbone, is timed twice: as built (PyTorch sends stride-1 1x1 convs to a GEMM,
the rest to oneDNN) and with every plain ``nn.Conv2d`` forced onto oneDNN
(:func:`force_onednn`; name suffix ``_onednn``). Each network counts with the
faster of its two (by median over rounds, per size and thread count): the
baseline is the faster ResNet-50, and a backbone's ratio and goals are those of
its faster variant, so neither side is denied a kernel the other gets. The JSON
names the chosen variants and gives every time. Under ONNX Runtime each network
is timed once (ORT picks its own kernels).

Timing method (one, fixed). Each round is a fresh process that times every
model round-robin (one forward of each, the order rotating each pass), ``SIZES``
gives the warm-up and timed forwards per model; the round's figure per model is
its median forward, and its ratio is to the baseline's median *in the same
round*. Reported: the median over rounds of the ratio, and its min-max. Why:
on the same idle machine the ratio moved by up to +-0.06 between processes
(weight placement in memory differs per process; longer runs in one process do
not remove it), and one in-process run gave Oct-ResNet 0.87x where fresh
processes gave 0.78x; one process is one draw from that spread, so only a
median over fresh processes, with its range shown, means anything. Round-robin
inside a process spreads load from other jobs over all models alike. The rounds
run at 1 thread and at torch's default thread count, interleaved.

Goals, per backbone, size, thread count and runtime (checked on the median
ratio, pass/fail recorded per goal): ``flop``: ratio <= 1.10 x the backbone's
FLOP-proportional ratio, read from ``benchmarks/results/latency_bound.json``
(its time-weighted multiply-add estimate, Oct-ResNet and HetConv) or, where
that has none, the whole-network multiply-add ratio from
``convdense.models.complexity`` (the project's FLOP counter); ``ceiling``:
Res2Net-50 <= 1.3x and ACNet (dataset-aware) <= 1.4x. Results go to
``benchmarks/results/backbones.json``; markdown tables are printed.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time
import types

import torch
from torch import nn

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'benchmarks'))

import harness  # noqa: E402
from cli_helpers import parse_size, size_key, table_requested, write_results  # noqa: E402
from machine_info import cpu_model, load_average, machine, vector_isa  # noqa: E402,F401 (re-exported)

BASELINE = 'resnet50'
#: name suffix of a network timed with every plain conv forced onto oneDNN
ONEDNN = '_onednn'
ONEDNN_BASELINE = BASELINE + ONEDNN
#: name -> (backbone config, absolute ceiling on the latency ratio or None)
BACKBONES = {
    'resnet50': (dict(type='ResNet', depth=50), None),
    'oct-resnet50_a0.5': (dict(type='convdense.OctResNet', depth=50), None),
    'hetconv-resnet50_p4': (dict(type='convdense.HetConvResNet', depth=50), None),
    'res2net50_26w4s': (dict(type='convdense.Res2Net', depth=50), 1.3),
    'acnet50_dataset': (dict(type='convdense.ACNet', depth=50), 1.4),
    'acnet50_pixel': (dict(type='convdense.ACNet', depth=50, mode='pixel'), None),
}
#: the latency goal is this factor times the FLOP-proportional ratio
FLOP_MARGIN = 1.10
RUNTIMES = ('eager', 'onnxruntime')
#: the form every model is timed in (convdense.deploy.switch_to_deploy, or as built)
FORMS = ('deploy', 'exact')
#: (H, W) -> (warm-up forwards, timed forwards) per model and round
SIZES = {(224, 224): (3, 15), (800, 1216): (1, 5)}
QUICK_SIZES = {(224, 224): (1, 3)}
LATENCY_BOUND_JSON = osp.join(REPO, 'benchmarks', 'results', 'latency_bound.json')
#: the one ONNX Runtime session config every model runs in
ORT_CONFIG = dict(provider='CPUExecutionProvider', intra_op_num_threads='the run\'s thread count',
                  inter_op_num_threads=1, execution_mode='ORT_SEQUENTIAL',
                  graph_optimization_level='ORT_ENABLE_ALL', intra_op_allow_spinning=0,
                  model='static H/W export per size, opset 18, tools/deployment/export_onnx.py')
METHOD = ('rounds: fresh processes; inside a round every model timed round-robin (order rotating '
          'each pass), the round\'s value = median forward; eager: every network as built and '
          'with all convs forced onto oneDNN, each counted with its faster variant (by median '
          'over rounds); ratio per round to the faster ResNet-50 variant of that size timed in '
          'the same round; reported: median over rounds of ms and of the ratio, '
          'ratio_min/ratio_max over rounds')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='224x224 (or --sizes), 3 timed forwards, 1 thread, one round: '
                             'smoke run')
    parser.add_argument('--sizes', nargs='+', type=parse_size, metavar='HxW',
                        help='image sizes (default: 224x224 800x1216; --quick: 224x224)')
    parser.add_argument('--threads', nargs='+', type=int,
                        help='torch / ORT intra-op thread counts (default: 1 and torch\'s default; '
                             '--quick: 1)')
    parser.add_argument('--repeats', type=int, help='timed forwards per model, size and round')
    parser.add_argument('--trials', type=int,
                        help='rounds, each in fresh processes (default 3; 1 with --quick)')
    parser.add_argument('--runtimes', nargs='+', choices=RUNTIMES, default=list(RUNTIMES))
    parser.add_argument('--form', choices=FORMS, default='deploy',
                        help='the models\' form: deployed (default) or exact (training form)')
    parser.add_argument('--shared', choices=['yes', 'no', 'unknown'], default='unknown',
                        help='whether other jobs shared the machine (recorded in the JSON)')
    parser.add_argument('--models', nargs='+', choices=list(BACKBONES), default=list(BACKBONES),
                        help='subset to time (both ResNet-50 baselines are always added)')
    parser.add_argument('--latency-bound', default=LATENCY_BOUND_JSON,
                        help='latency_bound.py results holding FLOP-proportional ratios')
    parser.add_argument('--json', default=osp.join(REPO, 'benchmarks', 'results', 'backbones.json'),
                        help='where to write the results')
    return parser.parse_args(argv)


def onednn_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``F.conv2d`` on oneDNN (``torch.mkldnn_convolution``) for a contiguous float32
    CPU input outside autocast; any other input goes to ``F.conv2d``."""
    import torch.nn.functional as F
    if (x.device.type == 'cpu' and x.dtype == torch.float32 and weight.dtype == torch.float32
            and not torch.is_autocast_enabled('cpu') and x.is_contiguous()
            and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return torch.mkldnn_convolution(x, weight, bias, (padding, padding), (stride, stride),
                                        (dilation, dilation), groups)
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


def _onednn_forward(self, x):
    self._onednn_calls = getattr(self, '_onednn_calls', 0) + 1
    return onednn_conv2d(x, self.weight, self.bias, self.stride[0], self.padding[0],
                         self.dilation[0], self.groups)


def force_onednn(model):
    """Send every ``nn.Conv2d`` of ``model`` to oneDNN (``torch.mkldnn_convolution``, via
    :func:`onednn_conv2d`) instead of PyTorch's per-shape choice.
    Returns ``model``; a conv with unequal H/W stride, padding or dilation, or a
    non-zero padding mode, is a ``ValueError``."""
    for name, module in model.named_modules():
        if type(module) is not nn.Conv2d:
            continue
        square = all(len(set(v)) == 1 for v in (module.stride, module.padding, module.dilation))
        if not square or module.padding_mode != 'zeros' or isinstance(module.padding, str):
            raise ValueError(f'force_onednn: conv {name!r} has unequal H/W stride, padding or '
                             f'dilation, or padding mode {module.padding_mode!r}')
        module.forward = types.MethodType(_onednn_forward, module)
    return model


def network_of(name):
    """The :data:`BACKBONES` key of a timed name (``X`` or its oneDNN variant ``X_onednn``)."""
    return name[:-len(ONEDNN)] if name.endswith(ONEDNN) else name


def forced_conv_calls(model, size=64):
    """How many forced (:func:`force_onednn`) convs one inference forward of ``model``
    on a ``(1, 3, size, size)`` image runs."""
    convs = [m for m in model.modules() if type(m) is nn.Conv2d]
    for conv in convs:
        conv._onednn_calls = 0
    with torch.inference_mode():
        model(torch.zeros(1, 3, size, size))
    return sum(conv._onednn_calls for conv in convs)


def build_models(names, form='exact'):
    """Build each backbone in ``form`` (``'deploy'``: :func:`convdense.deploy.switch_to_deploy`;
    a name ending in ``ONEDNN``: that network through :func:`force_onednn`); returns
    ``(models, unavailable)`` dicts by name. A oneDNN variant whose inference
    forward runs no plain ``nn.Conv2d.forward`` (its deployed layers call the
    kernels themselves) would time the same computation twice, so it is left out,
    with that reason, under ``unavailable``."""
    from convdense.models.complexity import build_backbone
    models, unavailable = {}, {}
    for name in names:
        cfg, _ = BACKBONES[network_of(name)]
        try:
            model = build_backbone(dict(cfg))
            model.eval()  # not chained: mmdet's ResNet.train returns None
            if form == 'deploy':
                from convdense.deploy import switch_to_deploy
                switch_to_deploy(model)
            if name.endswith(ONEDNN):
                model = force_onednn(model)
                if not forced_conv_calls(model):
                    unavailable[name] = (f'same computation as {network_of(name)}: its '
                                         'inference forward runs no plain nn.Conv2d.forward')
                    continue
            models[name] = model
        except Exception as error:  # a backbone still being written must not stop the run
            unavailable[name] = f'{type(error).__name__}: {error}'.splitlines()[0]
    return models, unavailable


def time_round_robin(runners, warmup, repeats):
    """Median seconds of one call per runner (``name -> callable``), called round-robin.

    The order rotates by one each pass, so no model always runs right after the
    same other one (cache state, order effects).
    """
    times = {name: [] for name in runners}
    names = list(runners)
    for run in runners.values():
        for _ in range(warmup):
            run()
    for pass_ in range(repeats):
        shift = pass_ % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def ort_session(path, threads):
    """An ONNX Runtime CPU session in the one config of :data:`ORT_CONFIG`."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads of one session must not spin while the next model runs (round-robin).
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def run_round(spec):
    """One round in this process: ``{runtime: {size: {name: median seconds}}}`` plus
    the machine before and after. ``spec``: threads, sizes ([H, W, warm-up, timed]),
    eager (names to build), onnx (``{size: {name: path}}``)."""
    torch.set_num_threads(spec['threads'])
    result = dict(threads=spec['threads'], machine_before=machine(), eager={}, onnxruntime={})
    if spec.get('eager'):
        models, _ = build_models(spec['eager'], spec.get('form', 'exact'))
        with torch.inference_mode():
            for height, width, warmup, repeats in spec['sizes']:
                image = torch.randn(1, 3, height, width)
                runners = {name: (lambda m=model: m(image)) for name, model in models.items()}
                result['eager'][size_key((height, width))] = time_round_robin(
                    runners, warmup, repeats)
        del models
    for height, width, warmup, repeats in spec['sizes']:
        paths = spec.get('onnx', {}).get(size_key((height, width)))
        if not paths:
            continue
        feed = {'image': torch.randn(1, 3, height, width).numpy()}
        sessions = {name: ort_session(path, spec['threads']) for name, path in paths.items()}
        runners = {name: (lambda s=session: s.run(None, feed))
                   for name, session in sessions.items()}
        result['onnxruntime'][size_key((height, width))] = time_round_robin(
            runners, warmup, repeats)
    result['machine_after'] = machine()
    return result


def run_round_in_fresh_process(spec):
    """:func:`run_round` in a fresh process (``harness.run_worker``)."""
    return harness.run_worker(__file__, spec)


def flop_ratios(names, sizes, bound_path=LATENCY_BOUND_JSON):
    """Per size key and backbone: ``dict(ratio, source)``, the FLOP-proportional
    latency ratio to ResNet-50. From ``bound_path`` (latency_bound.py's estimate)
    where it has one for that size and backbone, else the multiply-add ratio of
    the whole network (``classifier_complexity``, the project's FLOP counter)."""
    from convdense.models.complexity import classifier_complexity
    try:
        with open(bound_path) as f:
            bound = json.load(f).get('sizes', {})
    except (OSError, ValueError):
        bound = {}
    result = {}
    for size in sizes:
        key = size_key(size)
        rows, reference = {}, None
        for name in dict.fromkeys(map(network_of, names)):
            if name == BASELINE:
                continue
            estimate = bound.get(key, {}).get('backbones', {}).get(name, {}).get('estimate')
            if estimate is not None:
                rows[name] = dict(ratio=estimate, source=f'{osp.basename(bound_path)} estimate')
                continue
            if reference is None:
                reference = classifier_complexity(BACKBONES[BASELINE][0], size)['flops']
            flops = classifier_complexity(BACKBONES[name][0], size)['flops']
            rows[name] = dict(ratio=flops / reference, source='complexity.classifier_complexity')
        result[key] = rows
    return result


def goals_for(name, flop_ratio):
    """The latency goals of backbone ``name``: ``flop`` (``FLOP_MARGIN`` x ``flop_ratio``,
    a ``dict(ratio, source)`` or None) and its ``ceiling`` from :data:`BACKBONES`."""
    goals = []
    if flop_ratio is not None:
        goals.append(dict(goal='flop', limit=FLOP_MARGIN * flop_ratio['ratio'],
                          flop_ratio=flop_ratio['ratio'], source=flop_ratio['source']))
    ceiling = BACKBONES.get(name, (None, None))[1]
    if ceiling is not None:
        goals.append(dict(goal='ceiling', limit=ceiling))
    return goals


def check_goals(ratio, goals):
    """Each goal with ``passed``: whether ``ratio`` is at most its limit."""
    return [dict(goal, passed=ratio <= goal['limit']) for goal in goals]


def fastest_variants(medians):
    """``{network: its timed name with the lowest median}`` (``X`` or ``X_onednn``)."""
    chosen = {}
    for name, median in medians.items():
        network = network_of(name)
        if network not in chosen or median < medians[chosen[network]]:
            chosen[network] = name
    return chosen


def choose_baseline(medians):
    """The faster ResNet-50 (stock or oneDNN-forced) among those in ``medians``."""
    baseline = fastest_variants(medians).get(BASELINE)
    if baseline is None:
        raise ValueError('no ResNet-50 baseline was timed')
    return baseline


def summarise(rounds, goals):
    """One size, runtime and thread count over rounds (``[{name: seconds}]``): the
    baseline (faster ResNet-50 by median over rounds), and per timed model the median
    ms and the median ratio (per round, to that round's baseline) with min-max. The
    goals (``{network: goals}``) are checked on each network's faster variant
    (``chosen``); the other variant's row has none."""
    names = list(rounds[0])
    medians = {name: statistics.median(r[name] for r in rounds) for name in names}
    baseline = choose_baseline(medians)
    chosen = fastest_variants(medians)
    models = {}
    for name in names:
        ratios = [r[name] / r[baseline] for r in rounds]
        models[name] = dict(ms=1000 * medians[name], ratio=statistics.median(ratios),
                            ratio_min=min(ratios), ratio_max=max(ratios), round_ratios=ratios)
    summary = dict(baseline=baseline,
                   baseline_ms={name: 1000 * medians[name]
                                for name in (BASELINE, ONEDNN_BASELINE) if name in medians},
                   chosen=chosen, models=models)
    return check_summary_goals(summary, goals)


def size_goals(networks, flops_at_size):
    """``{network: goals}`` at one size from that size's FLOP-proportional ratios."""
    return {name: goals_for(name, flops_at_size.get(name)) for name in networks}


def check_summary_goals(summary, goals):
    """Set every row's ``goals`` in a :func:`summarise` result: ``goals[network]``
    checked on the variant the network counts with (``chosen``), none on the other."""
    for name, row in summary['models'].items():
        network = network_of(name)
        counted = summary['chosen'].get(network) == name
        row['goals'] = check_goals(row['ratio'], goals.get(network, [])) if counted else []
    return summary


def combine(rounds_by_threads, flops):
    """``{runtime: {'threads': {n: {size: summary}}}}`` from each thread count's rounds."""
    results = {}
    for runtime in RUNTIMES:
        per_threads = {}
        for threads, rounds in rounds_by_threads.items():
            sizes = {}
            for key in rounds[0][runtime]:
                networks = dict.fromkeys(map(network_of, rounds[0][runtime][key]))
                sizes[key] = summarise([r[runtime][key] for r in rounds],
                                       size_goals(networks, flops.get(key, {})))
            if sizes:
                per_threads[str(threads)] = sizes
        if per_threads:
            results[runtime] = dict(threads=per_threads)
    return results


def rejudge(results, bound_path=LATENCY_BOUND_JSON):
    """Check a finished run's goals again against ``bound_path`` (a newer
    ``latency_bound.py`` result, e.g. one measured on the same machine after the
    run): new ``flop_ratios`` and goals, the timings untouched. Returns ``results``."""
    sizes = [parse_size(key) for key in results['meta']['sizes']]
    names = {name for runtime in RUNTIMES
             for per_size in results.get(runtime, {}).get('threads', {}).values()
             for summary in per_size.values() for name in summary['models']}
    flops = flop_ratios(sorted(names), sizes, bound_path)
    for runtime in RUNTIMES:
        for per_size in results.get(runtime, {}).get('threads', {}).values():
            for key, summary in per_size.items():
                networks = dict.fromkeys(map(network_of, summary['models']))
                check_summary_goals(summary, size_goals(networks, flops.get(key, {})))
    with open(bound_path) as f:
        bound_meta = json.load(f).get('meta', {})
    results['flop_ratios'] = flops
    results['meta']['goals_from'] = dict(latency_bound=osp.relpath(bound_path, REPO),
                                         latency_bound_date=bound_meta.get('date'))
    return results


def export_all(models, sizes, folder):
    """Static-shape ONNX files of every model but the oneDNN variants at each size:
    ``({size: {name: path}}, {name: one-line error})``."""
    sys.path.insert(0, osp.join(REPO, 'tools', 'deployment'))
    from export_onnx import BackboneForExport, export_onnx
    paths, failed = {}, {}
    for size in sizes:
        for name, model in models.items():
            if name.endswith(ONEDNN) or name in failed:
                continue
            path = osp.join(folder, f'{name}_{size_key(size)}.onnx')
            try:
                export_onnx(BackboneForExport(model).eval(), size, path, dynamic=False)
            except Exception as error:
                failed[name] = f'{type(error).__name__}: {error}'.splitlines()[0]
                continue
            paths.setdefault(size_key(size), {})[name] = path
    return paths, failed


def _goal_text(goals):
    return '; '.join(f'{g["goal"]} <= {g["limit"]:.3f}: {"pass" if g["passed"] else "FAIL"}'
                     for g in goals) or '-'


def markdown_table(results):
    """One table per runtime and thread count, a row per timed model: ms, ratio
    (min-max) and goals per size; ``*`` marks the variant each network counts with."""
    blocks = []
    for runtime in RUNTIMES:
        for threads, sizes in results.get(runtime, {}).get('threads', {}).items():
            keys = list(sizes)
            lines = [f'{runtime}, {threads} thread(s):', '',
                     '| backbone | ' + ' | '.join(f'{k} ms | {k} ratio | {k} goals'
                                                  for k in keys) + ' |',
                     '|' + ' --- |' * (1 + 3 * len(keys))]
            names = list(dict.fromkeys(n for k in keys for n in sizes[k]['models']))
            for name in names:
                cells = [name]
                for key in keys:
                    row = sizes[key]['models'].get(name)
                    if row is None:
                        cells += ['-', '-', '-']
                        continue
                    mark = ' (baseline)' if name == sizes[key]['baseline'] else ''
                    if sizes[key].get('chosen', {}).get(network_of(name)) == name and \
                            network_of(name) + ONEDNN in sizes[key]['models']:
                        mark += ' *'
                    cells += [f'{row["ms"]:.1f}', f'{row["ratio"]:.2f}x '
                              f'({row["ratio_min"]:.2f}-{row["ratio_max"]:.2f}){mark}',
                              _goal_text(row['goals'])]
                lines.append('| ' + ' | '.join(cells) + ' |')
            lines.append('')
            lines += [f'{k}: baseline {sizes[k]["baseline"]} (' + ', '.join(
                f'{n} {ms:.1f} ms' for n, ms in sizes[k]['baseline_ms'].items()) + ')'
                for k in keys]
            blocks.append('\n'.join(lines))
    for kind in ('unavailable', 'onnx_failed'):
        for name, why in results.get(kind, {}).items():
            blocks.append(f'{name}: {kind.replace("_", " ")}: {why}')
    return '\n\n'.join(blocks)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    default_json = osp.join(REPO, 'benchmarks', 'results', 'backbones.json')
    if table_requested(argv, default_json, markdown_table):
        return None  # printed the Markdown table of a results file
    if argv[:1] == ['--rejudge']:  # --rejudge [RESULTS.json]: goals from today's latency_bound
        path = argv[1] if len(argv) > 1 else default_json
        with open(path) as f:
            results = rejudge(json.load(f))
        return write_results(results, path, markdown_table(results))
    worker = harness.serve_worker(argv, run_round)
    if worker is not None:
        return worker
    args = parse_args(argv)
    trials = args.trials if args.trials is not None else (1 if args.quick else 3)
    if trials < 1:
        raise SystemExit(f'--trials must be >= 1, got {trials}')
    default_threads = torch.get_num_threads()
    threads = args.threads or ([1] if args.quick else sorted({1, default_threads}))
    if min(threads) < 1:
        raise SystemExit(f'--threads must be >= 1, got {min(threads)}')
    if args.repeats is not None and args.repeats < 1:
        raise SystemExit(f'--repeats must be >= 1, got {args.repeats}')
    table = QUICK_SIZES if args.quick else SIZES
    sizes = {size: table.get(size, (1, 3) if args.quick else (1, 5))
             for size in (args.sizes or table)}
    size_spec = [[h, w, warmup, args.repeats or repeats] for (h, w), (warmup, repeats) in
                 sizes.items()]
    networks = [BASELINE] + [n for n in args.models if n != BASELINE]
    names = [n + suffix for n in networks
             for suffix in ('', ONEDNN)] if 'eager' in args.runtimes else networks
    models, unavailable = build_models(names, args.form)
    if BASELINE not in models:
        raise RuntimeError(f'cannot build the ResNet-50 baseline: {unavailable[BASELINE]}')
    started = time.time()
    results = dict(meta=dict(torch=torch.__version__, cpu=cpu_model(), vector_isa=vector_isa(),
                             cpus=os.cpu_count(),
                             threads=threads, default_threads=default_threads,
                             omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
                             quick=args.quick, rounds=trials, batch=1, form=args.form,
                             date=time.strftime('%Y-%m-%d %H:%M:%S'),
                             sizes={size_key(s): dict(warmup=w, repeats=args.repeats or r)
                                    for s, (w, r) in sizes.items()},
                             method=METHOD, flop_margin=FLOP_MARGIN,
                             machine_shared=args.shared, load_average_start=load_average()),
                   unavailable=unavailable,
                   flop_ratios=flop_ratios(list(models), sizes, args.latency_bound))
    with tempfile.TemporaryDirectory() as tmp:
        onnx = {}
        if 'onnxruntime' in args.runtimes:
            import onnxruntime
            onnx, results['onnx_failed'] = export_all(models, sizes, tmp)
            results['meta']['onnxruntime'] = dict(ORT_CONFIG, version=onnxruntime.__version__)
        spec = dict(sizes=size_spec, onnx=onnx, form=args.form,
                    eager=list(models) if 'eager' in args.runtimes else [])
        del models
        in_process = trials == 1 and len(threads) == 1
        # thread counts interleaved too, the order rotating each round (benchmarks/harness.py)
        per_round = harness.interleaved_rounds(trials, threads, lambda count, _: (
            run_round if in_process else run_round_in_fresh_process)(dict(spec, threads=count)))
        rounds = {count: [one[count] for one in per_round] for count in threads}
        log = [dict(round=index, threads=count, machine_before=one[count]['machine_before'],
                    machine_after=one[count]['machine_after'])
               for index, one in enumerate(per_round) for count in threads]
    results.update(combine(rounds, results['flop_ratios']))
    results['rounds'] = log
    results['meta'].update(load_average_end=load_average(),
                           wall_seconds=round(time.time() - started))
    return write_results(results, args.json, markdown_table(results))


if __name__ == '__main__':
    main()
