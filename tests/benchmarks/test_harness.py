"""``benchmarks/harness.py``: the rounds' order, median and range, the worker round trip
and the machine line read from every results layout the repository holds."""
import json
import subprocess
import sys
import textwrap

import pytest

from tests.helpers.e2e import REPO, load_script


@pytest.fixture(scope='module')
def harness():
    sys.path.insert(0, f'{REPO}/benchmarks')
    return load_script('benchmarks/harness.py')


def test_rounds_rotate_the_order_and_keep_the_items_order(harness):
    calls = []
    rounds = harness.interleaved_rounds(3, ['a', 'b', 'c'], lambda item, r: calls.append((r, item)) or f'{item}{r}',
                                        progress=None)
    assert [item for _, item in calls] == list('abc' 'bca' 'cab')
    assert rounds == [{'a': 'a0', 'b': 'b0', 'c': 'c0'}, {'a': 'a1', 'b': 'b1', 'c': 'c1'},
                      {'a': 'a2', 'b': 'b2', 'c': 'c2'}]
    assert list(rounds[1]) == ['a', 'b', 'c']
    with pytest.raises(ValueError, match='rounds must be >= 1'):
        harness.interleaved_rounds(0, ['a'], lambda item, r: None)


def test_spread_is_median_min_max(harness):
    assert harness.spread([3.0, 1.0, 10.0, 2.0]) == dict(median=2.5, min=1.0, max=10.0)


def test_worker_runs_in_a_fresh_process_and_records_the_machine(harness, tmp_path):
    script = tmp_path / 'bench_echo.py'
    script.write_text(textwrap.dedent(f'''
        import os, sys
        sys.path.insert(0, {REPO + '/benchmarks'!r})
        import harness
        harness.serve_worker(sys.argv[1:], lambda spec: dict(doubled=2 * spec['x'], pid=os.getpid()))
    '''))
    record = harness.run_worker(str(script), dict(x=21))
    assert record['doubled'] == 42 and record['pid'] != __import__('os').getpid()
    for key in ('machine_before', 'machine_after'):
        assert {'cpu', 'vector_isa', 'cores', 'torch_threads', 'load_average'} <= set(record[key])
    script.write_text('import sys; sys.exit(3)')
    with pytest.raises(RuntimeError, match=r'bench_echo.py worker failed \(exit 3\)'):
        harness.run_worker(str(script), dict(x=1), quiet=True)


def test_new_layout_names_command_threads_and_machine(harness):
    results = harness.finish(harness.new_results(f'{REPO}/benchmarks/bench_pac.py', ['--quick'], threads=[1],
                                                 rounds=1, goals=dict(a=1)))
    meta = results['meta']
    assert meta['command'] == 'python benchmarks/bench_pac.py --quick' and meta['benchmark'] == 'bench_pac'
    assert meta['goals'] == dict(a=1) and 'started' not in meta and meta['wall_seconds'] >= 0
    text = harness.machine_text(results)
    assert text.startswith(f"Machine: CPU {meta['machine_before']['cpu']}, ISA ") and 'threads 1,' in text


@pytest.mark.parametrize('results, expected', [
    # bench_pac's layout before the harness: flat top-level fields, thread 0 = torch's default
    (dict(cpu='Intel(R) Xeon(R) Processor', vector_isa='avx512f', cpus=2, threads=[1, 0],
          load_average=[1.32, 1.0, 0.9], date='2026-12-02 17:37:04'),
     'Machine: CPU Intel(R) Xeon(R) Processor, ISA avx512f, 2 cores, threads 1/default, 1-min load 1.32; '
     'run 2026-12-02 17:37:04.'),
    # bench_memory's: a machine dict without ISA, loads before and after
    (dict(machine=dict(cpu='AMD EPYC', cores=2, threads=1), load_before=[1.41, 1, 1], load_after=[1.9, 1, 1]),
     'Machine: CPU AMD EPYC, ISA not recorded, 2 cores, threads 1, 1-min load 1.41–1.90.'),
    # records deeper in the file (per-model machine_before/after), a bare architecture, nothing at all
    (dict(models=dict(a=dict(machine_before=dict(cpu='x86_64', load_average=[3.0]))), machine_shared='unknown'),
     'Machine: CPU x86_64, ISA not recorded, cores not recorded, threads not recorded, 1-min load 3.00, '
     'shared with other jobs: unknown.'),
    (dict(rows=[]), 'Machine: CPU not recorded, ISA not recorded, cores not recorded, threads not recorded, '
                    'load not recorded.'),
])
def test_machine_line_reads_every_layout(harness, results, expected):
    assert harness.machine_text(results) == expected


def test_every_results_file_names_its_machine(harness):
    import glob
    for path in glob.glob(f'{REPO}/benchmarks/results/*.json'):
        with open(path) as f:
            results = json.load(f)
        if isinstance(results, dict):
            assert harness.machine_text(results).startswith('Machine: CPU '), path


def test_table_of_a_results_file_without_torch(harness):
    """The table printers of the harness's benchmarks read a results file in a process
    that never imports torch (the renderer's cost is the printers', not the benchmarks')."""
    code = ('import sys, runpy; sys.argv = ["bench_memory.py", "--table"]; '
            'runpy.run_path("benchmarks/bench_memory.py", run_name="__main__"); '
            'assert "torch" not in sys.modules')
    done = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('| model | iterations |')


def test_machine_line_names_every_cpu_of_a_file_whose_rows_ran_on_several(harness):
    """A table whose rows ran on two machines says so instead of naming the first."""
    results = {'models': {
        'a': dict(machine_before=dict(cpu='AMD EPYC', vector_isa='avx512f', cores=2, load_average=[1.0])),
        'b': dict(machine_before=dict(cpu='Intel(R) Xeon(R) Processor', vector_isa='avx512f', cores=2,
                                      load_average=[2.0]))}}
    line = harness.machine_text(results)
    assert 'CPU AMD EPYC / Intel(R) Xeon(R) Processor, ISA avx512f, 2 cores' in line
