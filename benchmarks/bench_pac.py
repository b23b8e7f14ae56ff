"""Speed and peak memory of the whole PAC layer (guide -> ``pac_kernel2d`` -> conv,
forward + backward) against the same layer written with unfold (the reference
algorithm) and against ``F.conv2d`` / ``F.conv_transpose2d``, on the CPU.

    python benchmarks/bench_pac.py                # 3 rounds, 1 thread and the default count
    python benchmarks/bench_pac.py --quick        # small sizes, one round, seconds
    python benchmarks/bench_pac.py --rounds 5 --threads 1
    python benchmarks/bench_pac.py --table [RESULTS.json]   # Markdown table of a results file

Cases (B = 1, C_in = C_out = 64, Gaussian kernel on a 16-channel guide): PAC conv
k=5 at 256x256 and k=3 at 128x128, ``channel_wise=True`` (guide = 64 channels, one
kernel per channel: ``pac_kernel2d`` then holds the C*k*k*H*W tensor the conv itself
avoids) and ``PacConvTranspose2d``-style k=5, stride 2, 128x128 -> 256x256.

Method
------
Each measurement runs in a fresh subprocess, and the rounds are interleaved: round
r measures every (threads, case, implementation) once, in an order rotating each
round, before round r+1 starts (``benchmarks/harness.py``), so a burst of load
from other jobs hits all of them alike. The ratios are taken
within a round and reported as the median over rounds with their range.

* time = median of ``--reps`` fwd+bwd calls after one warm-up call; the backward
  pass reaches input, weight and guide (so ``pac_kernel2d``'s backward is timed);
* peak memory = resident-set high-water mark during the warm-up call minus the
  resident set just before it (Linux: reset with ``/proc/self/clear_refs``, read
  from ``VmHWM``; elsewhere the growth of ``ru_maxrss``). Every module a layer
  uses is imported before that (``convdense`` pulls in mmengine, ~100 MiB of
  resident set that is not the layer's).

Threads: ``1`` and ``0`` (= torch's default, all cores). Results go to
``benchmarks/results/pac.json`` and are printed as a table.

``--device cuda``: the full-image case (64 channels, k=5, 512x512) with the goals
>= 10x faster and >= 8x less peak memory than unfold; time between
``torch.cuda.synchronize()`` calls, peak = ``torch.cuda.max_memory_allocated()``
during the warm-up call minus the memory allocated before it; TF32 off, so every
implementation computes in float32. Results go to ``benchmarks/results/gpu_pac.json``
with the GPU's name.
"""
import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'benchmarks'))

import harness  # noqa: E402
RESULTS = ROOT / 'benchmarks' / 'results' / 'pac.json'
CUDA_RESULTS = ROOT / 'benchmarks' / 'results' / 'gpu_pac.json'
IMPLS = ('pac', 'unfold', 'conv')
GOALS = dict(time_vs_conv=2.0, speedup_vs_unfold=3.0, memory_saving_vs_unfold=4.0)
# On CUDA only the two goals against unfold are set; PAC / conv time is reported.
CUDA_GOALS = dict(time_vs_conv=None, speedup_vs_unfold=10.0, memory_saving_vs_unfold=8.0)
FULL_CASES = [
    dict(name='conv k=5 256x256', k=5, size=256, guide_channels=16),
    dict(name='conv k=3 128x128', k=3, size=128, guide_channels=16),
    dict(name='conv channel_wise k=3 128x128', k=3, size=128, channel_wise=True),
    dict(name='transposed k=5 s=2 128->256', k=5, size=128, guide_channels=16, transposed=True),
]
QUICK_CASES = [
    dict(name='conv k=3 32x32', k=3, size=32, guide_channels=4, channels=16),
    dict(name='conv channel_wise k=3 32x32', k=3, size=32, channel_wise=True, channels=16),
    dict(name='transposed k=5 s=2 16->32', k=5, size=16, guide_channels=4, transposed=True, channels=16),
]
CUDA_CASES = [
    dict(name='conv k=5 512x512', k=5, size=512, guide_channels=16),
]


def _case(case):
    """Fill a case's defaults: 64 channels, no channel_wise, not transposed, CPU."""
    case = dict(dict(channels=64, channel_wise=False, transposed=False, device='cpu'), **case)
    if case['channel_wise']:
        case['guide_channels'] = case['channels']
    return case


def unfold_gaussian_kernel(guide, k, channel_wise):
    """exp(-||f_i - f_j||^2 / 2) over each k x k window (replicate-padded guide), by unfold:
    [B, 1 or C_g, k*k, H*W]. Taps outside the image differ from ``pac_kernel2d`` (which
    zeroes them) but meet zero-padded input, so the layer's output and gradients agree."""
    import torch
    import torch.nn.functional as F
    batch, channels, height, width = guide.shape
    padded = F.pad(guide, (k // 2,) * 4, mode='replicate')
    windows = F.unfold(padded, k).view(batch, channels, k * k, height * width)
    distance = (windows - guide.view(batch, channels, 1, height * width)) ** 2
    if not channel_wise:
        distance = distance.sum(1, keepdim=True)
    return torch.exp(-0.5 * distance)


def unfold_pac_layer(input, guide, weight, k, channel_wise=False, transposed=False):
    """The textbook whole PAC layer: unfold kernel, then the [B, C*k*k, H*W] im2col product.

    Transposed (stride 2, padding k//2, output_padding 1): a stride-1 PAC over the
    zero-inserted input with the flipped, transposed filter, as ``nn.ConvTranspose2d``."""
    import torch.nn.functional as F
    if transposed:
        batch, channels, height, width = input.shape
        grid = input.new_zeros(batch, channels, 2 * height - 1, 2 * width - 1)
        grid[..., ::2, ::2] = input
        pad = k - 1 - k // 2
        input = F.pad(grid, (pad, pad + 1, pad, pad + 1))
        weight = weight.flip(2, 3).transpose(0, 1)
    else:
        input = F.pad(input, (k // 2,) * 4)
    batch, channels = input.shape[:2]
    out_channels = weight.shape[0]
    out_h, out_w = guide.shape[2:]
    kernel = unfold_gaussian_kernel(guide, k, channel_wise)
    columns = F.unfold(input, k).view(batch, channels, k * k, -1) * kernel
    out = weight.reshape(out_channels, -1) @ columns.view(batch, channels * k * k, -1)
    return out.view(batch, out_channels, out_h, out_w)


def pac_layer(input, guide, weight, k, channel_wise=False, transposed=False):
    """The whole layer through convdense's public API: ``pac_kernel2d`` then the conv."""
    from convdense.ops.pac import pac_conv2d, pac_conv_transpose2d, pac_kernel2d
    if transposed:
        geometry = dict(stride=2, padding=k // 2, output_padding=1)
        kernel = pac_kernel2d(guide, k, transposed=True, channel_wise=channel_wise, **geometry)
        return pac_conv_transpose2d(input, kernel, weight, **geometry)
    kernel = pac_kernel2d(guide, k, padding=k // 2, channel_wise=channel_wise)
    return pac_conv2d(input, kernel, weight, padding=k // 2)


def conv_layer(input, guide, weight, k, channel_wise=False, transposed=False):
    """The plain convolution of the same shape (the guide is ignored)."""
    import torch.nn.functional as F
    if transposed:
        return F.conv_transpose2d(input, weight, stride=2, padding=k // 2, output_padding=1)
    return F.conv2d(input, weight, padding=k // 2)


LAYERS = dict(pac=pac_layer, unfold=unfold_pac_layer, conv=conv_layer)


def make_inputs(case, requires_grad=True):
    """(input, guide, weight) for a case, on its device; the guide is at the layer's
    output resolution."""
    import torch
    torch.manual_seed(0)
    size, channels, k = case['size'], case['channels'], case['k']
    out_size = 2 * size if case['transposed'] else size
    input = torch.randn(1, channels, size, size)
    guide = torch.randn(1, case['guide_channels'], out_size, out_size).mul_(0.3)
    weight = torch.randn(channels, channels, k, k) / (channels * k * k) ** 0.5
    device = case.get('device', 'cpu')
    input, guide, weight = (t.to(device).requires_grad_(requires_grad) for t in (input, guide, weight))
    return input, guide, weight


def _status_mib(field):
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def _can_reset_peak():
    try:
        with open('/proc/self/clear_refs', 'w') as clear:
            clear.write('5')
        _status_mib('VmHWM')
        return True
    except (OSError, KeyError):
        return False


def resident_mib(reset_peak=False):
    """Current resident set (MiB); optionally resets the high-water mark."""
    if _can_reset_peak() if reset_peak else os.path.exists('/proc/self/clear_refs'):
        return _status_mib('VmRSS')
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_mib():
    """Resident-set high-water mark (MiB) since the last reset."""
    if os.path.exists('/proc/self/clear_refs'):
        return _status_mib('VmHWM')
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(impl, case, reps, threads):
    """One measurement of fwd+bwd in this (fresh) process: ``dict(time_ms, peak_mib, threads)``."""
    import torch
    sys.path.insert(0, str(ROOT))
    if threads:
        torch.set_num_threads(threads)
    if impl == 'pac':  # import before measuring: convdense's imports (mmengine) add ~100 MiB
        import convdense.ops.pac  # noqa: F401
    cuda = case.get('device', 'cpu') == 'cuda'
    if cuda:  # float32 throughout: no TF32 in cuDNN's convolutions or in matmuls
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    tensors = make_inputs(case)
    layer = LAYERS[impl]
    options = dict(k=case['k'], channel_wise=case['channel_wise'], transposed=case['transposed'])
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def run():
        for t in tensors:
            t.grad = None
        layer(*tensors, **options).sum().backward()
        sync()

    if cuda:
        sync()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2 ** 20
        run()
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        before = resident_mib(reset_peak=True)
        run()
        peak = peak_mib()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return dict(time_ms=1e3 * statistics.median(times), peak_mib=peak - before,
                threads=torch.get_num_threads())


def check_agreement(case):
    """Max |pac - unfold| of the layer's output on the case's shape (float32)."""
    import torch
    sys.path.insert(0, str(ROOT))
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    options = dict(k=case['k'], channel_wise=case['channel_wise'], transposed=case['transposed'])
    with torch.no_grad():
        tensors = make_inputs(case, requires_grad=False)
        return (pac_layer(*tensors, **options) - unfold_pac_layer(*tensors, **options)).abs().max().item()


def measure(impl, case, reps, threads):
    """One fresh worker process (``harness.run_worker``) measuring ``impl`` on ``case``."""
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return harness.run_worker(__file__, dict(impl=impl, case=case, reps=reps, threads=threads), env=env)


def goal_met(key, median, goals=GOALS):
    """Whether a goal ratio's median meets its goal (``time_vs_*`` at most, the rest at
    least); None where ``goals`` sets none for it."""
    goal = goals.get(key)
    if goal is None:
        return None
    return median <= goal if key.startswith('time_vs') else median >= goal


def summarise(rounds, goals=GOALS):
    """Per-round measurements {impl: {time_ms, peak_mib}} -> the goal ratios, each as the
    median over rounds with its range (ratios are taken within a round)."""
    ratios = dict(
        time_vs_conv=[r['pac']['time_ms'] / r['conv']['time_ms'] for r in rounds],
        speedup_vs_unfold=[r['unfold']['time_ms'] / r['pac']['time_ms'] for r in rounds],
        memory_saving_vs_unfold=[r['unfold']['peak_mib'] / max(r['pac']['peak_mib'], 1e-9) for r in rounds])
    summary = {}
    for key, values in ratios.items():
        summary[key] = dict(harness.spread(values), goal=goals[key])
    for impl in IMPLS:
        summary[f'{impl}_time_ms'] = statistics.median(r[impl]['time_ms'] for r in rounds)
        summary[f'{impl}_peak_mib'] = statistics.median(r[impl]['peak_mib'] for r in rounds)
    return summary


def markdown_table(report):
    """The results file as Markdown: per case and thread count, the median fwd+bwd times
    and peaks, and each goal ratio as median (min-max), judged now against the file's
    goals (:data:`GOALS` on the CPU, :data:`CUDA_GOALS` on a GPU)."""
    goals = report.get('goals') or report.get('meta', {}).get('goals') or GOALS
    titles = dict(time_vs_conv='PAC / conv time', speedup_vs_unfold='unfold / PAC time',
                  memory_saving_vs_unfold='unfold / PAC memory')
    header = [titles[key] + ('' if goals.get(key) is None else
                             f" (goal {'<=' if key.startswith('time_vs') else '>='} {goals[key]:g})")
              for key in GOALS]
    lines = ['| case | threads | PAC ms / MiB | unfold ms / MiB | conv ms / MiB | ' + ' | '.join(header) + ' |',
             '|---|---:|---:|---:|---:|---|---|---|']
    for row in report['rows']:
        cells = [f"{row[f'{impl}_time_ms']:.0f} / {row[f'{impl}_peak_mib']:.0f}" for impl in IMPLS]
        verdicts = [f"{row[key]['median']:.2f} ({row[key]['min']:.2f}–{row[key]['max']:.2f})"
                    + ('' if goal_met(key, row[key]['median'], goals) in (True, None) else ' **missed**')
                    for key in GOALS]
        lines.append(f"| {row['case']} | {row['num_threads']} | " + ' | '.join(cells + verdicts) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    from cli_helpers import table_requested
    if table_requested(argv, RESULTS, markdown_table):
        return None
    if harness.serve_worker(argv, lambda spec: worker(spec['impl'], spec['case'], spec['reps'], spec['threads'])):
        return None
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='small sizes, one round')
    parser.add_argument('--rounds', type=int, help='interleaved fresh-process rounds (default 3; quick 1)')
    parser.add_argument('--reps', type=int, default=3, help='timed calls per measurement')
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 0],
                        help='thread counts; 0 = torch default (all cores)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu',
                        help='cuda: the full-image case on the GPU, one process per measurement')
    parser.add_argument('--out', type=Path, help='JSON output path (default results/pac.json, '
                        'with --device cuda results/gpu_pac.json)')
    args = parser.parse_args(argv)

    import torch
    cuda = args.device == 'cuda'
    if cuda and not torch.cuda.is_available():
        parser.exit(2, f'error: --device cuda: torch {torch.__version__} sees no CUDA device\n')
    goals = CUDA_GOALS if cuda else GOALS
    threads_list = [0] if cuda else args.threads
    cases = {c['name']: c for c in (_case(dict(c, device=args.device)) for c in
                                    (QUICK_CASES if args.quick else CUDA_CASES if cuda else FULL_CASES))}
    rounds = args.rounds or (1 if args.quick else 3)
    results = harness.new_results(
        __file__, argv, benchmark='whole PAC layer (pac_kernel2d + conv, fwd+bwd) vs unfold layer vs F.conv '
        f'({"CUDA" if cuda else "CPU"})', device=args.device,
        gpu=torch.cuda.get_device_name(0) if cuda else None, cuda=torch.version.cuda if cuda else None,
        threads=threads_list, rounds=rounds, quick=args.quick, reps=args.reps,
        memory_method=('torch.cuda.max_memory_allocated() during one call minus memory_allocated() '
                       'before it, in a fresh subprocess' if cuda else
                       'VmHWM after clear_refs minus VmRSS before, one call in a fresh '
                       'subprocess (ru_maxrss growth where /proc is unavailable)'),
        time_method='median of reps fwd+bwd calls after one warm-up call; ratios within a round, '
        'median and range over interleaved rounds (harness.py)' + ('; synchronised, TF32 off' if cuda else ''),
        goals=goals, cases=list(cases.values()))
    items = [(threads, name, impl) for threads in threads_list for name in cases for impl in IMPLS]
    per_round = harness.interleaved_rounds(
        rounds, items, lambda item, _: measure(item[2], cases[item[1]], args.reps, item[0]))

    rows = []
    for threads in threads_list:
        for name, case in cases.items():
            measured = [{impl: one[threads, name, impl] for impl in IMPLS} for one in per_round]
            rows.append(dict(case=name, threads=threads, num_threads=measured[0]['pac']['threads'],
                             max_abs_diff_pac_vs_unfold=check_agreement(case), rounds=measured,
                             **summarise(measured, goals)))
    results['rows'] = rows
    out = args.out or (CUDA_RESULTS if cuda else RESULTS)
    return harness.write(harness.finish(results), str(out), markdown_table(results))


if __name__ == '__main__':
    main()
