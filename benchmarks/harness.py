"""The one way the benchmarks measure and record: fresh-process workers, interleaved
rounds, median and range, one machine record and one results-file layout.

Why fresh processes and interleaving: on one idle machine a ratio moves by several
per cent between processes (memory placement differs per process), and load from
other jobs comes in bursts; a worker process per measurement, with the order of the
measured items rotating each round, spreads both over every item alike, and the
median over rounds with its min-max says how far to trust a figure.

Layout of a results file::

    {"meta": {"benchmark": ..., "command": "python benchmarks/X.py ...", "date": ...,
              "threads": ..., "rounds": ..., "machine_before": MACHINE,
              "machine_after": MACHINE, "wall_seconds": ..., ...},
     ...the benchmark's own measurements...}

``MACHINE`` is :func:`machine_info.machine` (CPU model, vector ISA, cores, torch
threads, load averages, Python and torch versions). Goals are never stored as
verdicts: the table printers judge the stored numbers when they render.
:func:`machine_text` describes the machine of any results file, including the
layouts written before this module (top-level ``cpu``, ``machine``, ``load_before``).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from machine_info import machine

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER_FLAG = '--worker'


def spread(values):
    """``dict(median, min, max)`` of a list of numbers (one per round)."""
    values = list(values)
    return dict(median=statistics.median(values), min=min(values), max=max(values))


def rotated(items, index):
    """``items`` rotated left by ``index`` (round ``index``'s order)."""
    shift = index % len(items) if items else 0
    return items[shift:] + items[:shift]


def interleaved_rounds(rounds, items, measure, progress=print):
    """Measure every item once per round, the order rotating each round.

    ``items``: hashable keys; ``measure(item, round_index)`` returns one record.
    Returns one ``{item: record}`` per round, keys in ``items``' order.
    """
    if rounds < 1:
        raise ValueError(f'rounds must be >= 1, got {rounds}')
    per_round = []
    for index in range(rounds):
        one = {}
        for item in rotated(list(items), index):
            if progress:
                progress(f'round {index + 1}/{rounds}: {item}')
            one[item] = measure(item, index)
        per_round.append({item: one[item] for item in items})
    return per_round


def run_worker(script, spec, env=None, cwd=None, quiet=False):
    """Run ``python SCRIPT --worker SPEC.json`` in a fresh process and return the
    record it wrote (see :func:`serve_worker`) with ``machine_before`` and
    ``machine_after``. ``quiet``: keep the worker's output, shown only if it fails."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'spec.json')
        with open(path, 'w') as f:
            json.dump(spec, f)
        before = machine()
        done = subprocess.run([sys.executable, os.path.abspath(script), WORKER_FLAG, path],
                              env=env, cwd=cwd, capture_output=quiet, text=True)
        if done.returncode != 0:
            tail = (done.stderr or '')[-3000:] if quiet else ''
            raise RuntimeError(f'{os.path.basename(script)} worker failed (exit {done.returncode}) '
                               f'on {json.dumps(spec)[:200]}{chr(10) + tail if tail else ""}')
        with open(path + '.out') as f:
            record = json.load(f)
    return dict(record, machine_before=before, machine_after=machine())


def serve_worker(argv, work):
    """In a script's ``main``: for ``--worker SPEC.json`` run ``work(spec)`` here and
    write its JSON record next to the spec; returns the record, or None for any
    other command line."""
    if argv[:1] != [WORKER_FLAG] or len(argv) != 2:
        return None
    with open(argv[1]) as f:
        record = work(json.load(f))
    with open(argv[1] + '.out', 'w') as f:
        json.dump(record, f)
    return record


def new_results(script, argv, threads, rounds, **meta):
    """A results dict in the one layout, its ``meta`` filled for the run of ``script``
    (the benchmark's ``__file__``) with ``argv`` starting now; ``meta``: the benchmark's own."""
    command = ' '.join(['python', os.path.relpath(os.path.abspath(script), REPO), *argv])
    meta.setdefault('benchmark', os.path.splitext(os.path.basename(script))[0])
    return dict(meta=dict(meta, command=command, date=time.strftime('%Y-%m-%d %H:%M:%S'),
                          threads=threads, rounds=rounds, machine_before=machine(), started=time.time()))


def finish(results):
    """Record the machine after the run and the wall time; returns ``results``."""
    meta = results['meta']
    meta['machine_after'] = machine()
    meta['wall_seconds'] = round(time.time() - meta.pop('started'))
    return results


def write(results, path, table=None):
    """Write ``results`` as JSON to ``path`` and print ``table`` and the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(results, f, indent=1)
        f.write('\n')
    if table is not None:
        print(table)
    print(f'written to {path} (python benchmarks/render_docs.py puts its tables into the docs)')
    return results


# --------------------------------------------------------------------------- reading

_MACHINE_KEYS = ('machine', 'machine_before', 'machine_after')
_LOAD_KEYS = ('load_average', 'load_before', 'load_after', 'load_average_start',
              'load_average_end', 'load')
_BARE_ARCH = ('x86_64', 'aarch64', 'arm64', 'AMD64', 'i386', '')


def _records(results):
    """Every dict that describes the machine: the file's top level, its ``meta`` and
    every ``machine``/``machine_before``/``machine_after`` dict at any depth."""
    found = [results, results.get('meta', {})]
    stack = [results]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            if key in _MACHINE_KEYS and isinstance(value, dict):
                found.append(value)
            elif isinstance(value, (dict, list)):
                stack.append(value)
    return [r for r in found if isinstance(r, dict)]


def _one_minute_loads(record):
    for key in _LOAD_KEYS:
        value = record.get(key)
        if isinstance(value, (int, float)):
            yield float(value)
        elif isinstance(value, list) and value and isinstance(value[0], (int, float)):
            yield float(value[0])


def machine_summary(results):
    """What a results file says about its machine, whatever its layout: ``dict(cpu,
    vector_isa, cores, threads, load, date, shared)``, None where it does not say."""
    records = _records(results)

    def values(*keys):
        return [r[k] for r in records for k in keys if r.get(k) is not None and not isinstance(r[k], dict)]

    cpus = [c for c in values('cpu') + values('machine') if isinstance(c, str)]
    named = [c for c in cpus if c not in _BARE_ARCH]
    threads = set()
    meta_threads = results.get('meta', {}).get('threads', results.get('threads'))
    for value in ([meta_threads] if meta_threads is not None else values('torch_threads', 'threads')):
        threads.update(value if isinstance(value, list) else [value])
    loads = [load for r in records for load in _one_minute_loads(r)]
    cores = values('cores', 'cpus')
    distinct = sorted(set(named or cpus))  # every CPU model the file's rows ran on
    isas = sorted(set(values('vector_isa')))
    return dict(cpu=' / '.join(distinct) or None, vector_isa=' / '.join(isas) or None,
                cores=cores[0] if cores else None, threads=sorted(threads, key=lambda t: (t == 0, t)) or None,
                load=(min(loads), max(loads)) if loads else None,
                date=(values('date') or [None])[0],
                shared=(values('machine_shared') or [None])[0])


def machine_text(results):
    """One line naming the machine of a results file (CPU model, ISA, cores, threads,
    1-minute load range, date); says 'not recorded' for what the file lacks."""
    info = machine_summary(results)
    missing = 'not recorded'
    parts = [f"CPU {info['cpu'] or missing}",
             f"ISA {info['vector_isa'] or missing}",
             f"{info['cores']} cores" if info['cores'] else f'cores {missing}',
             'threads ' + ('/'.join(str(t) if t else 'default' for t in info['threads'])
                         if info['threads'] else missing)]
    if info['load']:
        low, high = info['load']
        parts.append(f'1-min load {low:.2f}' + (f'–{high:.2f}' if high != low else ''))
    else:
        parts.append(f'load {missing}')
    if info['shared'] is not None:
        parts.append(f"shared with other jobs: {info['shared']}")
    line = 'Machine: ' + ', '.join(parts)
    if info['date']:
        line += f"; run {info['date']}"
    return line + '.'
