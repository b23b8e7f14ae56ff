"""Training cost of the PAC (lite) joint upsamplers per factor on CPU, and where the x16
net's goes (what decides whether x16 is trained or composed from x4).

    OMP_NUM_THREADS=1 python benchmarks/bench_upsampler_train_cost.py [--factors 4 8 16]
                                                                      [--iters 3] [--out FILE]
    python benchmarks/bench_upsampler_train_cost.py --table [RESULTS.json]

Per factor: the model and optimiser of ``pacjointupsample_lite_x{f}_procedural.py`` and one
batch of its training data (4 procedural scenes: 64x64 crops at x4/x8, 128x128 at x16),
and the seconds of ``model.train_step`` (forward, loss, backward, Adam step; no data
loading): the median of ``--iters`` after a warm-up iteration, except at x16, where ONE
iteration is timed (no warm-up: it takes minutes on one thread). Then one forward +
backward of the x16 model on one of those scenes under ``torch.profiler``, once for the
whole model and once for its learnable JBU base alone on the same input: the base's
share of the time, each module's forward time, and the operators with the most self
time. Every factor's JBU window (``(2f+1)^2`` taps per output pixel) is recorded with
it. Results: ``benchmarks/results/upsampler_train_cost.json``.
"""
import argparse
import math
import os.path as osp
import statistics
import sys
import time
from contextlib import contextmanager

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))

from cli_helpers import table_requested, write_results  # noqa: E402
from machine_info import machine  # noqa: E402

from convdense import launch  # noqa: E402

RESULTS = osp.join(ROOT, 'benchmarks', 'results', 'upsampler_train_cost.json')
CONFIG = 'configs/joint_upsampling/pacjointupsample_lite_x{}_procedural.py'
#: the net's children whose forward time is reported (the rest: the target-branch ops in forward())
MODULES = ('jbu', 'branch_target', 'branch_guide', 'up_convs', 'branch_fusion')
TOP_OPS = 8
BACKWARD = 'autograd::engine::evaluate_function: '


def build(factor):
    """(model, optim_wrapper, one training batch) of the factor's procedural config."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from convdense.registry import MODELS
    init_default_scope('convdense')
    cfg = launch.load_config(osp.join(ROOT, CONFIG.format(factor)))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader, seed=0)))
    return model, build_optim_wrapper(model, cfg.optim_wrapper), batch


def time_iterations(factor, iters):
    """Seconds per ``train_step``: ONE iteration at x16, else the median of ``iters`` after a warm-up."""
    model, optim_wrapper, batch = build(factor)
    model.train()
    warmup, timed = (0, 1) if factor == 16 else (1, iters)
    seconds = []
    for i in range(warmup + timed):
        start = time.perf_counter()
        losses = model.train_step(batch, optim_wrapper)
        if i >= warmup:
            seconds.append(time.perf_counter() - start)
    if not all(torch.isfinite(v).all() for v in losses.values()):
        raise RuntimeError(f'x{factor}: non-finite loss {losses}')
    geometry = model.net.jbu.geometry
    return dict(config=CONFIG.format(factor), batch=list(batch['inputs']['guide'].shape),
                jbu_window=geometry['kernel_size'], jbu_taps=geometry['kernel_size'] ** 2, warmup=warmup,
                seconds=seconds, seconds_per_iter=statistics.median(seconds))


@contextmanager
def _labelled(net):
    """Each of ``MODULES``' forward runs in a ``record_function`` range named after it."""
    handles, ranges = [], {}
    for name in MODULES:
        module = getattr(net, name)

        def enter(module, args, name=name):
            ranges[name] = torch.autograd.profiler.record_function(f'module::{name}')
            ranges[name].__enter__()

        def leave(module, args, output, name=name):
            ranges.pop(name).__exit__(None, None, None)
        if isinstance(module, torch.nn.ModuleList):  # one range around all of them
            handles += [module[0].register_forward_pre_hook(enter), module[-1].register_forward_hook(leave)]
        else:
            handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _profiled(step):
    """(wall seconds, profiler) of ``step()`` run once under the CPU profiler."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        step()
        seconds = time.perf_counter() - start
    return seconds, prof


def profile_factor(factor=16):
    """Forward + backward of the model at ``factor`` on one procedural scene, whole and its
    JBU base alone, under torch.profiler."""
    model, _, batch = build(factor)
    model.train()
    data = model.data_preprocessor(batch, True)
    inputs = {k: v[:1] for k, v in data['inputs'].items()}
    samples = {k: v[:1] for k, v in data['data_samples'].items()}
    net = model.net

    def whole():
        model(inputs, samples, mode='loss')['loss'].backward()

    def jbu_alone():
        net.jbu(inputs['low'], inputs['guide']).sum().backward()

    with _labelled(net):
        total, prof = _profiled(whole)
    jbu, _ = _profiled(jbu_alone)
    events = prof.key_averages()
    forward = {name: next((e.cpu_time_total for e in events if e.key == f'module::{name}'), 0.0) / 1e6
               for name in MODULES}
    ops = sorted((e for e in events if not e.key.startswith(('module::', BACKWARD))),
                 key=lambda e: -e.self_cpu_time_total)
    nodes = sorted((e for e in events if e.key.startswith(BACKWARD)), key=lambda e: -e.cpu_time_total)
    self_total = sum(e.self_cpu_time_total for e in events) / 1e6
    return dict(factor=factor, input=dict(low=list(inputs['low'].shape), guide=list(inputs['guide'].shape)),
                seconds_forward_backward=total, seconds_jbu_forward_backward=jbu, jbu_share=jbu / total,
                forward_seconds_by_module=forward, self_seconds_total=self_total,
                top_ops=[dict(op=e.key, self_seconds=e.self_cpu_time_total / 1e6, calls=e.count)
                         for e in ops[:TOP_OPS]],
                top_backward_nodes=[dict(node=e.key[len(BACKWARD):], seconds=e.cpu_time_total / 1e6, calls=e.count)
                                    for e in nodes[:TOP_OPS]])


def markdown_table(results):
    """Seconds per training iteration per factor, then the x16 profile."""
    its = results['iterations']
    lines = ['| factor | config | batch (guide) | JBU window (taps per output pixel) | s / iteration '
             '| vs x8 | vs x8 per guide pixel | timed iterations |', '|---:|---|---|---|---:|---:|---:|---:|']

    def per_pixel(row):
        return row['seconds_per_iter'] / math.prod(row['batch'])

    def times(ratio):
        return '–' if ratio is None else f'{ratio:.1f}x' if ratio < 10 else f'{ratio:.0f}x'
    base = its.get('8')
    for factor in sorted(its, key=int):
        row = its[factor]
        lines.append(f"| x{factor} | `{osp.basename(row['config'])}` | {'x'.join(map(str, row['batch']))} "
                     f"| {row['jbu_window']}x{row['jbu_window']} ({row['jbu_taps']}) | {row['seconds_per_iter']:.2f} "
                     f"| {times(base and row['seconds_per_iter'] / base['seconds_per_iter'])} "
                     f"| {times(base and per_pixel(row) / per_pixel(base))} | {len(row['seconds'])} |")
    prof = results.get('profile')
    if prof:
        low = 'x'.join(map(str, prof['input']['low']))
        lines += ['', f"x{prof['factor']} forward + backward on one scene (low {low}) under torch.profiler: "
                  f"{prof['seconds_forward_backward']:.2f} s; its learnable JBU base alone (forward + backward on "
                  f"the same input, a separate run) {prof['seconds_jbu_forward_backward']:.2f} s. "
                  f"Forward time by module: "
                  + ', '.join(f'{name} {seconds:.2f} s' for name, seconds in prof['forward_seconds_by_module'].items())
                  + '.', '', '| operator (forward and backward; backward nodes below) | self CPU s | share | calls |',
                  '|---|---:|---:|---:|']
        for op in prof['top_ops']:
            lines.append(f"| `{op['op']}` | {op['self_seconds']:.2f} | "
                         f"{100 * op['self_seconds'] / prof['self_seconds_total']:.0f} % | {op['calls']} |")
        lines += ['', '| backward node (with the operators it runs) | CPU s | share of forward + backward | calls |',
                  '|---|---:|---:|---:|']
        for node in prof['top_backward_nodes']:
            lines.append(f"| `{node['node']}` | {node['seconds']:.2f} | "
                         f"{100 * node['seconds'] / prof['self_seconds_total']:.0f} % | {node['calls']} |")
    return '\n'.join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if table_requested(argv, RESULTS, markdown_table):
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--factors', type=int, nargs='+', default=[4, 8, 16], choices=[4, 8, 16])
    parser.add_argument('--iters', type=int, default=3, help='timed iterations at x4/x8 (x16: always 1)')
    parser.add_argument('--profile-factor', type=int, default=16, choices=[0, 4, 8, 16],
                        help='the model profiled (default x16); 0 skips it')
    parser.add_argument('--out', default=RESULTS)
    args = parser.parse_args(argv)
    before = machine()
    results = dict(iterations={})
    for factor in args.factors:
        results['iterations'][str(factor)] = row = time_iterations(factor, args.iters)
        print(f"x{factor}: {row['seconds_per_iter']:.2f} s per iteration", flush=True)
    if args.profile_factor:
        results['profile'] = profile_factor(args.profile_factor)
    results['meta'] = dict(command=('OMP_NUM_THREADS=1 python benchmarks/bench_upsampler_train_cost.py '
                                    + ' '.join(argv)).strip(),
                           machine_before=before, machine_after=machine(), date=time.strftime('%Y-%m-%d'))
    write_results(results, args.out, markdown_table(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
