"""Write every results table into the docs, between markers, from ``benchmarks/results``.

    python benchmarks/render_docs.py            # rewrite the generated blocks in README.md and docs/*.md
    python benchmarks/render_docs.py --check    # exit 1, naming the first stale block, if any differs
    python benchmarks/render_docs.py --list     # the block names and their results files

A generated block is::

    <!-- BEGIN generated: NAME -->
    ...written by this script, never by hand...
    <!-- END generated: NAME -->

Each block is the table the benchmark's own printer makes of its results file (the
printers are imported from the scripts, so a script's table format is the one place
to change it), preceded by one line naming the machine from the same file
(:func:`harness.machine_text`) and the command that writes the file. Goals are judged
here, from the stored numbers, wherever the printer allows it.
"""
import argparse
import importlib.util
import json
import os.path as osp
import re
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))

import harness  # noqa: E402

RESULTS = osp.join(ROOT, 'benchmarks', 'results')
#: documents searched for blocks (relative to the repository root)
DOCUMENTS = ['README.md', 'docs/*.md']
BLOCK = re.compile(r'(<!-- BEGIN generated: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- END generated: (?P=name) -->)',
                   re.S)
_modules = {}


def script(relative_path):
    """Import a repository script (``benchmarks/`` and ``tools/`` are no packages) once."""
    if relative_path not in _modules:
        name = 'render_' + osp.splitext(relative_path)[0].replace('/', '_')
        spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, relative_path))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[relative_path] = module
    return _modules[relative_path]


def load(name):
    with open(osp.join(RESULTS, name)) as f:
        return json.load(f)


#: the line above a table of counts (parameters, FLOPs) or float32 errors: no timing in it
MACHINE_INDEPENDENT = 'No timing in this table: its numbers do not depend on the machine.'


def framed(results_name, command, table, results=None, machine_independent=False):
    """The table with the machine line above it (``machine_independent``: a line saying
    the numbers are counts) and its source below it (the command the file records, else
    ``command``)."""
    results = load(results_name) if results is None else results
    command = results.get('meta', {}).get('command') or command
    machine = MACHINE_INDEPENDENT if machine_independent else harness.machine_text(results)
    return (f'{machine}\n\n{table.strip()}\n\n'
            f'Source: `benchmarks/results/{results_name}`, written by `{command}`.')


# --------------------------------------------------------------------------- blocks

def pac():
    return framed('pac.json', 'python benchmarks/bench_pac.py',
                  script('benchmarks/bench_pac.py').markdown_table(load('pac.json')))


def train_cost():
    return framed('train_cost.json', 'python benchmarks/bench_train_cost.py',
                  script('benchmarks/bench_train_cost.py').markdown_table(load('train_cost.json')))


def memory(name='memory.json', command='python benchmarks/bench_memory.py'):
    return framed(name, command, script('benchmarks/bench_memory.py').markdown_table(load(name)))


def backbones(name='backbones.json'):
    """bench_backbones.py's tables, each goal judged again (``check_goals``) from the
    stored ratio and limit rather than read from the stored pass/fail."""
    bench = script('benchmarks/bench_backbones.py')
    results = load(name)
    for runtime in bench.RUNTIMES:
        for sizes in results.get(runtime, {}).get('threads', {}).values():
            for summary in sizes.values():
                for row in summary['models'].values():
                    stored = [{k: v for k, v in goal.items() if k != 'passed'} for goal in row['goals']]
                    row['goals'] = bench.check_goals(row['ratio'], stored)
    return framed(name, 'python benchmarks/bench_backbones.py', bench.markdown_table(results), results)


def deploy_ab():
    """Every ``deploy_ab_*.json`` (deployed vs exact form vs ResNet-50), one after another."""
    import glob
    bench = script('benchmarks/bench_deploy_ab.py')
    names = sorted(osp.basename(p) for p in glob.glob(osp.join(RESULTS, 'deploy_ab_*.json')))
    return '\n\n'.join(f'**{name}**\n\n' + framed(name, 'python benchmarks/bench_deploy_ab.py',
                                                     bench.markdown_table(load(name)))
                        for name in names)


def latency_bound():
    """latency_bound.py's table and, judged here, each measured ratio against its goal."""
    results = load('latency_bound.json')
    lines = [script('benchmarks/latency_bound.py').markdown_table(results), '']
    for key, size in results['sizes'].items():
        for name, row in size['backbones'].items():
            if row.get('measured') is None or row.get('goal') is None:
                continue
            gap = row['measured'] - row['goal']
            lines.append(f'- {name}, {key}: measured {row["measured"]:.3f}x, goal <= {row["goal"]:.3f}x: '
                         + (f'met ({-gap:.3f} to spare)' if gap <= 0 else f'missed by {gap:.3f}'))
    return framed('latency_bound.json', 'python benchmarks/latency_bound.py', '\n'.join(lines), results)


def _stages(values):
    return ' / '.join('–' if v is None else f'{v:.3g}' for v in values) if values else '–'


def model_converters():
    """The converters' relative error per stage (layer1..layer4), as stored."""
    results = load('model_converters.json')
    lines = ['| converter | setting | relative error per stage (layer1 / 2 / 3 / 4) | max |',
             '|---|---|---|---:|']
    for key in ('res2net', 'hetconv_from_resnet50', 'oct_release_layer4_pooling', 'acnet'):
        for setting, value in results.get(key, {}).get('relative_error_per_stage', {}).items():
            parts = value.items() if isinstance(value, dict) else [('', value)]
            for part, errors in parts:
                if errors is None:
                    continue
                label = f'{setting} ({part.replace("_", " ")})' if part else setting
                lines.append(f'| {key} | {label} | {_stages(errors)} | {max(errors):.3g} |')
    lines.append('')
    lines += [f'- {key}: {results[key][field]}' for key in results if isinstance(results[key], dict)
              for field in ('source', 'what') if field in results[key]]
    return framed('model_converters.json', 'python tools/model_converters/fidelity_report.py',
                  '\n'.join(lines), results, machine_independent=True)


def digit_scenes():
    bench, results = script('benchmarks/bench_digit_scenes.py'), load('digit_scenes.json')
    text = bench.format_table(results)
    if results.get('cam'):
        text += '\n\nCAM pointing game of the trained detectors:\n\n' + bench.format_cam_table(results)
    return framed('digit_scenes.json', 'make bench-digit-scenes BACKBONE=...', text)


def digit_scenes_summary():
    return framed('digit_scenes.json', 'make bench-digit-scenes BACKBONE=...',
                  script('benchmarks/bench_digit_scenes.py').format_summary_table(load('digit_scenes.json')))


def digit_scenes_recipe():
    """The recipe study on the val split (variants of the ResNet-50 chain)."""
    bench, results = script('benchmarks/bench_digit_scenes.py'), load('digit_scenes_recipe.json')
    return framed('digit_scenes_recipe.json', 'python benchmarks/bench_digit_scenes.py --variant ...',
                  bench.format_val_table(results))


def cams(kind):
    name = f'cam_pointing_game_{kind}.json'
    results = load(name)
    return framed(name, results.get('command', 'python tools/analysis/cam_pointing_game.py'),
                  script('tools/analysis/cam_pointing_game.py').format_table(results), results)


def joint_upsampling(name):
    """Every protocol of a ``tools/demo.py`` results file, each judged again from its rows
    (``demo.tables_of``) so the verdicts are the current rule's, not the stored strings."""
    demo = script('tools/demo.py')
    results = load(name)
    tables = demo.tables_of(results)
    command = '; '.join(f'`{c.strip()}`' for c in results.get('merged_from', [results.get('command', '')]))
    return (f'{harness.machine_text(results)}\n\n' + '\n\n'.join(tables)
            + f'\n\nSource: `benchmarks/results/{name}`, from {command} merged by `python tools/demo.py --merge`.')


def scale_sweep():
    sweep = script('tools/analysis/scale_sweep.py')
    results = load('scale_sweep.json')
    tables = [sweep.format_rows(name, entry['rows']).replace('## ', '#### ', 1)
              for name, entry in results['backbones'].items()]
    return framed('scale_sweep.json', 'python tools/analysis/scale_sweep.py all --phi 0 1 2 3 --table3',
                  '\n\n'.join(tables), results, machine_independent=True)


def scale_sweep_table3():
    """``--table3``: ResNet-50 under each multiplier set and rounding against EfficientNet's Table 3."""
    results = load('scale_sweep.json')
    table3 = results['table3']
    lines = [f"| multipliers | rounding | blocks | base ch. | side | GFLOPs | off Table 3 "
             f"({table3['paper_flops'] / 1e9:.1f} G) |", '|---|---|---|---:|---:|---:|---:|']
    for row in table3['rows']:
        mark = ' (closest)' if (row['multipliers'], row['rounding']) == (
            table3['closest']['multipliers'], table3['closest']['rounding']) else ''
        lines.append(f"| {row['multipliers']}{mark} | {row['rounding']} | "
                     f"{'/'.join(map(str, row['stage_blocks']))} | {row['base_channels']} | "
                     f"{row['input_size']} | {row['flops'] / 1e9:.2f} | {100 * row['off_table3']:+.1f} % |")
    return framed('scale_sweep.json', 'python tools/analysis/scale_sweep.py all --phi 0 1 2 3 --table3',
                  '\n'.join(lines), results, machine_independent=True)


def model_stats():
    """Parameters and FLOPs of every ``PAPER_TABLE`` row beside the paper's (a list of rows)."""
    rows = load('model_stats.json')
    table = script('tools/analysis/model_stats.py').format_table(rows)
    return framed('model_stats.json', 'python tools/analysis/model_stats.py all --json '
                  'benchmarks/results/model_stats.json', f'```\n{table}\n```', dict(rows=rows),
                  machine_independent=True)


def shipped_upsamplers(notes=True):
    """The shipped upsamplers on their unseen test scene and over seeds; ``notes``: how
    each was chosen (docs; the README leaves them out)."""
    name = 'shipped_upsamplers.json'
    results = load(name)
    return framed(name, 'python tools/make_shipped_upsamplers.py',
                  script('tools/make_shipped_upsamplers.py').format_table(results, notes=notes), results)


def upsampler_train_cost():
    return framed('upsampler_train_cost.json', 'OMP_NUM_THREADS=1 python benchmarks/bench_upsampler_train_cost.py',
                  script('benchmarks/bench_upsampler_train_cost.py').markdown_table(load('upsampler_train_cost.json')))


def sensor_holes():
    name = 'joint_upsampling_holes.json'
    results = load(name)
    return framed(name, results['command'], script('benchmarks/bench_sensor_holes.py').format_table(results),
                  results)


NO_TRIM_COMMAND = ('MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=68719476736 python '
                   'benchmarks/bench_memory.py --models maskrcnn --out benchmarks/results/memory_maskrcnn_no_trim.json')
#: block name -> (function, results files it reads)
BLOCKS = {
    'pac': (pac, ['pac.json']),
    'train-cost': (train_cost, ['train_cost.json']),
    'memory': (memory, ['memory.json']),
    'memory-maskrcnn-800': (lambda: memory('memory_maskrcnn_800.json', 'python benchmarks/bench_memory.py '
                                           '--models maskrcnn --iters 800 --out '
                                           'benchmarks/results/memory_maskrcnn_800.json'),
                            ['memory_maskrcnn_800.json']),
    'memory-maskrcnn-no-trim': (lambda: memory('memory_maskrcnn_no_trim.json', NO_TRIM_COMMAND),
                                ['memory_maskrcnn_no_trim.json']),
    'backbones': (backbones, ['backbones.json']),
    'latency-bound': (latency_bound, ['latency_bound.json']),
    'model-converters': (model_converters, ['model_converters.json']),
    'deploy-ab': (deploy_ab, ['deploy_ab_oct224.json']),
    'digit-scenes': (digit_scenes, ['digit_scenes.json']),
    'digit-scenes-recipe': (digit_scenes_recipe, ['digit_scenes_recipe.json']),
    'digit-scenes-summary': (digit_scenes_summary, ['digit_scenes.json']),
    'digit-scenes-recipe-cls600': (lambda: framed(
        'digit_scenes_recipe_cls600.json', 'python benchmarks/bench_digit_scenes.py --tasks cls --backbones r50 '
        '--variant batch16-iters600 --iters 600 --cfg-options train_dataloader.batch_size=16 '
        '--out benchmarks/results/digit_scenes_recipe_cls600.json',
        script('benchmarks/bench_digit_scenes.py').format_val_table(load('digit_scenes_recipe_cls600.json'))),
        ['digit_scenes_recipe_cls600.json']),
    'digit-scenes-cost': (lambda: framed('digit_scenes.json', 'make bench-digit-scenes BACKBONE=...',
                                         script('benchmarks/bench_digit_scenes.py').format_cost_table(
                                             load('digit_scenes.json'))), ['digit_scenes.json']),
    'digit-scenes-val': (lambda: framed('digit_scenes.json', 'make bench-digit-scenes BACKBONE=...',
                                        script('benchmarks/bench_digit_scenes.py').format_val_table(
                                            load('digit_scenes.json'))), ['digit_scenes.json']),
    'cam-classifiers': (lambda: cams('classifiers'), ['cam_pointing_game_classifiers.json']),
    'cam-detectors': (lambda: cams('detectors'), ['cam_pointing_game_detectors.json']),
    'joint-upsampling-seeds': (lambda: joint_upsampling('joint_upsampling_seeds_loso.json'),
                               ['joint_upsampling_seeds_loso.json']),
    'joint-upsampling-procedural': (lambda: joint_upsampling('joint_upsampling_procedural.json'),
                                    ['joint_upsampling_procedural.json']),
    'joint-upsampling-flow-procedural': (lambda: joint_upsampling('joint_upsampling_flow_procedural_seed0.json'),
                                         ['joint_upsampling_flow_procedural_seed0.json']),
    'shipped-upsamplers': (shipped_upsamplers, ['shipped_upsamplers.json']),
    'shipped-upsamplers-summary': (lambda: shipped_upsamplers(notes=False), ['shipped_upsamplers.json']),
    'sensor-holes': (sensor_holes, ['joint_upsampling_holes.json']),
    'upsampler-train-cost': (upsampler_train_cost, ['upsampler_train_cost.json']),
    'upsampler-variants': (lambda: framed('upsampler_variants.json', 'python benchmarks/bench_upsampler_variants.py '
                                          '--model MODEL --variant NAME [--cfg-options ...]',
                                          script('benchmarks/bench_upsampler_variants.py').format_table(
                                              load('upsampler_variants.json'))), ['upsampler_variants.json']),
    'scale-sweep': (scale_sweep, ['scale_sweep.json']),
    'scale-sweep-table3': (scale_sweep_table3, ['scale_sweep.json']),
    'model-stats': (model_stats, ['model_stats.json']),
}


# --------------------------------------------------------------------------- documents

def documents(root=ROOT):
    import glob
    paths = []
    for pattern in DOCUMENTS:
        paths += sorted(glob.glob(osp.join(root, pattern)))
    return paths


def render_text(text, path='', cache=None):
    """``text`` with every generated block rewritten; an unknown block name is an error."""
    cache = {} if cache is None else cache

    def fill(match):
        name = match['name']
        if name not in BLOCKS:
            raise SystemExit(f'error: {path}: unknown generated block {name!r} (known: {", ".join(BLOCKS)})')
        if name not in cache:
            cache[name] = BLOCKS[name][0]().strip() + '\n'
        return match.group(1) + cache[name] + match.group(4)

    return BLOCK.sub(fill, text)


def stale_blocks(path, rendered):
    """Names of the blocks of ``path`` whose text differs from ``rendered``."""
    with open(path) as f:
        old = {m['name']: m['body'] for m in BLOCK.finditer(f.read())}
    new = {m['name']: m['body'] for m in BLOCK.finditer(rendered)}
    return [name for name in new if old.get(name) != new[name]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--check', action='store_true',
                        help='change nothing; exit 1 naming the first block that differs')
    parser.add_argument('--list', action='store_true', help='print the block names and their results files')
    parser.add_argument('--root', default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.list:
        for name, (_, files) in BLOCKS.items():
            print(f'{name}: ' + ', '.join(f'benchmarks/results/{f}' for f in files))
        return 0
    cache, changed = {}, []
    for path in documents(args.root):
        with open(path) as f:
            text = f.read()
        rendered = render_text(text, osp.relpath(path, args.root), cache)
        if rendered == text:
            continue
        if args.check:
            stale = stale_blocks(path, rendered)
            print(f'stale generated block {stale[0]!r} in {osp.relpath(path, args.root)}: '
                  f'run python benchmarks/render_docs.py')
            return 1
        with open(path, 'w') as f:
            f.write(rendered)
        changed.append(osp.relpath(path, args.root))
    if not args.check:
        print('rewrote ' + (', '.join(changed) if changed else 'nothing (every block is current)'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
