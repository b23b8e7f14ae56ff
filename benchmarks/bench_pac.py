"""Speed and peak memory of ``pac_conv2d`` against ``F.conv2d`` and the
straightforward unfold (im2col) PAC, on the CPU.

    python benchmarks/bench_pac.py            # B=1, C=64: k=5 @ 256x256, k=3 @ 128x128
    python benchmarks/bench_pac.py --quick    # small sizes, a few seconds

Method
------
Every (case, implementation, mode) runs in a fresh subprocess so that peak
memory is not polluted by earlier cases:

* peak memory = resident-set high-water mark during one call minus the
  resident set just before it, after the inputs are allocated.  On Linux the
  high-water mark is reset first (``echo 5 > /proc/self/clear_refs``, then
  ``VmHWM`` / ``VmRSS`` from ``/proc/self/status``), so memory touched at
  import time cannot hide a smaller peak; elsewhere the growth of
  ``ru_maxrss`` is used.  It counts every byte the call touches (outputs,
  gradients, saved tensors, workspaces, allocator slack).
* time = median of ``--reps`` calls after that first call.

``fwd`` runs under ``torch.no_grad()``; ``fwd+bwd`` backpropagates a sum into
input, weight and (for the PAC forms) the adaptive kernel.

Threads default to 1: the benchmark box is shared, and with 2 OpenMP
threads a busy neighbour stalls every parallel region at its barrier,
which adds milliseconds per op and swamps the comparison.  Pass
``--threads 2`` on an idle machine.

Results go to ``benchmarks/results/pac.json`` and are printed as a table.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'benchmarks' / 'results' / 'pac.json'
IMPLS = ('pac', 'unfold', 'conv2d')
MODES = ('fwd', 'fwd+bwd')
FULL_CASES = [dict(k=5, size=256, channels=64), dict(k=3, size=128, channels=64)]
QUICK_CASES = [dict(k=5, size=64, channels=32), dict(k=3, size=32, channels=32)]


def unfold_pac_conv2d(input, kernel, weight, padding):
    """The textbook PAC: materialises the [B, C*k*k, H*W] im2col tensor."""
    import torch.nn.functional as F
    batch, channels = input.shape[:2]
    out_channels, _, k, _ = weight.shape
    out_h, out_w = kernel.shape[-2:]
    columns = F.unfold(input, k, padding=padding).view(batch, channels, k * k, -1)
    columns = columns * kernel.view(batch, 1, k * k, -1)
    out = weight.view(out_channels, -1) @ columns.view(batch, channels * k * k, -1)
    return out.view(batch, out_channels, out_h, out_w)


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


def worker(impl, mode, k, size, channels, reps, threads):
    """Runs one measurement in this (fresh) process and prints JSON."""
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, str(ROOT))
    from convdense.ops.pac import pac_conv2d

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    grad = mode == 'fwd+bwd'
    padding = k // 2
    x = torch.randn(1, channels, size, size, requires_grad=grad)
    weight = torch.randn(channels, channels, k, k, requires_grad=grad)
    kernel = torch.rand(1, 1, k, k, size, size, requires_grad=grad)
    if impl == 'pac':
        def call():
            return pac_conv2d(x, kernel, weight, padding=padding)
    elif impl == 'unfold':
        def call():
            return unfold_pac_conv2d(x, kernel, weight, padding)
    else:
        def call():
            return F.conv2d(x, weight, padding=padding)

    def run():
        if grad:
            for t in (x, weight, kernel):
                t.grad = None
            call().sum().backward()
        else:
            with torch.no_grad():
                call()

    before = resident_mib(reset_peak=True)
    run()
    peak = peak_mib()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    print(json.dumps(dict(time_ms=1e3 * statistics.median(times),
                          peak_mib=peak - before)))


def check_agreement(k, size, channels):
    """Max |pac - unfold| on the benchmark shape (a sanity check, float32)."""
    import torch
    sys.path.insert(0, str(ROOT))
    from convdense.ops.pac import pac_conv2d
    torch.manual_seed(0)
    x = torch.randn(1, channels, size, size)
    weight = torch.randn(channels, channels, k, k) / (channels * k * k)**0.5
    kernel = torch.rand(1, 1, k, k, size, size)
    with torch.no_grad():
        diff = pac_conv2d(x, kernel, weight, padding=k // 2) - unfold_pac_conv2d(
            x, kernel, weight, k // 2)
    return diff.abs().max().item()


def measure(impl, mode, case, reps, threads):
    command = [sys.executable, __file__, '--worker', impl, mode, str(case['k']),
               str(case['size']), str(case['channels']), str(reps), str(threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='small sizes')
    parser.add_argument('--reps', type=int, default=3, help='timed calls per measurement')
    parser.add_argument('--threads', type=int, default=1, help='torch/OpenMP threads')
    parser.add_argument('--out', type=Path, default=RESULTS, help='JSON output path')
    parser.add_argument('--worker', nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        impl, mode, k, size, channels, reps, threads = args.worker
        worker(impl, mode, int(k), int(size), int(channels), int(reps), int(threads))
        return

    cases = QUICK_CASES if args.quick else FULL_CASES
    rows, summary = [], []
    for case in cases:
        label = f"B=1 C={case['channels']} k={case['k']} {case['size']}x{case['size']}"
        results = {}
        for impl in IMPLS:
            for mode in MODES:
                results[impl, mode] = measure(impl, mode, case, args.reps, args.threads)
                r = results[impl, mode]
                rows.append(dict(case=label, impl=impl, mode=mode, time_ms=r['time_ms'],
                                 peak_mib=r['peak_mib']))
                print(f"{label:28s} {impl:7s} {mode:8s} {r['time_ms']:10.1f} ms "
                      f"{r['peak_mib']:9.1f} MiB", flush=True)
        pac_fb, unfold_fb, conv_fb = (results[i, 'fwd+bwd'] for i in IMPLS)
        pac_f, unfold_f, conv_f = (results[i, 'fwd'] for i in IMPLS)
        summary.append(dict(
            case=label,
            max_abs_diff_pac_vs_unfold=check_agreement(case['k'], case['size'],
                                                       case['channels']),
            speedup_vs_unfold_fwd_bwd=unfold_fb['time_ms'] / pac_fb['time_ms'],
            memory_saving_vs_unfold_fwd_bwd=unfold_fb['peak_mib'] / max(pac_fb['peak_mib'],
                                                                         1e-9),
            speedup_vs_unfold_fwd=unfold_f['time_ms'] / pac_f['time_ms'],
            memory_saving_vs_unfold_fwd=unfold_f['peak_mib'] / max(pac_f['peak_mib'], 1e-9),
            time_vs_conv2d_fwd=pac_f['time_ms'] / conv_f['time_ms'],
            time_vs_conv2d_fwd_bwd=pac_fb['time_ms'] / conv_fb['time_ms'],
            im2col_tensor_mib=case['channels'] * case['k']**2 * case['size']**2 * 4 / 2**20,
        ))

    print()
    header = (f"{'case':28s} {'impl':7s} {'fwd ms':>9s} {'fwd MiB':>9s} "
              f"{'f+b ms':>9s} {'f+b MiB':>9s}")
    print(header)
    print('-' * len(header))
    for case in cases:
        label = f"B=1 C={case['channels']} k={case['k']} {case['size']}x{case['size']}"
        for impl in IMPLS:
            f, fb = ({r['mode']: r for r in rows if r['case'] == label and r['impl'] == impl}[m]
                     for m in MODES)
            print(f"{label:28s} {impl:7s} {f['time_ms']:9.1f} {f['peak_mib']:9.1f} "
                  f"{fb['time_ms']:9.1f} {fb['peak_mib']:9.1f}")
    print()
    targets = dict(speedup_vs_unfold_fwd_bwd=3.0, memory_saving_vs_unfold_fwd_bwd=4.0,
                   time_vs_conv2d_fwd_bwd=2.0)
    for s in summary:
        verdicts = []
        for key, goal in targets.items():
            ok = s[key] <= goal if key.startswith('time_vs') else s[key] >= goal
            verdicts.append(f"{key}={s[key]:.2f} ({'ok' if ok else 'MISSED'})")
        print(f"{s['case']}: " + ', '.join(verdicts) +
              f", time_vs_conv2d_fwd={s['time_vs_conv2d_fwd']:.2f}, "
              f"max|pac-unfold|={s['max_abs_diff_pac_vs_unfold']:.1e}")

    import torch
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(
        benchmark='pac_conv2d vs unfold PAC vs F.conv2d (CPU)',
        quick=args.quick, threads=args.threads, reps=args.reps,
        torch=torch.__version__, python=platform.python_version(),
        machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
        load_average=os.getloadavg(),
        memory_method='VmHWM after clear_refs minus VmRSS before, one call in a fresh '
        'subprocess (ru_maxrss growth where /proc is unavailable)',
        time_method='median of reps calls after one warm-up call',
        targets=targets, rows=rows, summary=summary), indent=2) + '\n')
    print(f'wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}')


if __name__ == '__main__':
    main()
