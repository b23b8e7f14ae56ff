"""The project's main job (``make demo``): PAC joint upsampling on the bundled real data.

    python tools/demo.py [--quick] [--seeds 0 1 2] [--loso] [--procedural] [--skip-regions]
                         [--tasks depth flow]
                         [--work-dir work_dirs/joint_upsampling_demo] [--out RESULTS.json]

Each bundled scene is split into train / val / test regions with a margin between
them (``configs/joint_upsampling/_base_/bundled_*.py``). For each task:

1. bicubic and JBU are scored on the test split;
2. DJF and the PAC variants (the reference design at DJF's size, and the demo model
   that learns a correction to a learnable JBU layer) are trained with mmengine's
   Runner on the train split, scored on the val split every 100 iterations, and the
   best-on-val checkpoint of each is scored on the test split;
3. the PAC variant with the lowest val error (mean over seeds) is *the* PAC model, and
   the verdict compares it on test with every other method (bicubic, JBU, DJF): PAC is
   called ahead of a method only where the gap exceeds the seeds' spread (max - min).

``--loso`` adds leave-one-scene-out runs for depth (train and select on one scene,
test on the other scene's test region, both ways); ``--procedural`` adds, for depth,
the learned methods trained on procedural RGB-D scenes only
(``convdense/datasets/procedural_rgbd.py``), selected on one real scene's val region and
tested on the other scene's test region, both ways, and for flow the learned methods
trained on procedural optical flow only (``convdense/datasets/procedural_flow.py``),
selected on one bundled stereo scene read as flow (u = -d, v = 0) and tested on the other,
both ways, with the bundled flow frames as a further test; each with the chosen PAC model's gain over
JBU (the goal: >= 3 % on each scene); ``--seeds`` repeats every learned run per
seed; ``--skip-regions`` runs only those added protocols. Everything lands in one
``results.json`` (``--out``), the only source of the numbers quoted in configs, docs and
the README; ``results.md`` has the tables.
``--quick`` trains a few iterations (about a minute; used by the tests): the tables
are printed but the learned models are not expected to beat the baselines.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import shutil
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))

from convdense import launch  # noqa: E402
from convdense.engine.progress import ProgressAndTimingHook, console_to  # noqa: E402
from convdense.evaluation.upsampling_verdict import (judge, merge_runs, summarise,  # noqa: E402
                                                     unseen_scene_goal)
from eval_upsampling_baselines import BASELINES, count_parameters, evaluate  # noqa: E402
from machine_info import machine  # noqa: E402  (CPU model, vector ISA, cores, threads, load)

CONFIGS = osp.join(ROOT, 'configs', 'joint_upsampling')
DEMO_MODEL = 'PAC (lite, learned JBU base)'
TASKS = {
    'depth': dict(
        learned={DEMO_MODEL: 'pacjointupsample_lite_x8_demo.py',
                 'PAC (lite, reference)': 'pacjointupsample_lite_x8_reference_demo.py',
                 'DJF': 'djf_x8_demo.py'},
        scenes={'aloe': 'Aloe', 'motorcycle': 'Motorcycle'},  # folder -> table column
        procedural={DEMO_MODEL: 'pacjointupsample_lite_x8_procedural.py',
                    'PAC (lite, reference)': 'pacjointupsample_lite_x8_reference_procedural.py',
                    'DJF': 'djf_x8_procedural.py'},
        procedural_data='procedural RGB-D scenes', procedural_split=('val region', 'test region'),
        checkpoint='pac_lite_x8_demo.pth', metric='rmse_px', shipped=('depth', 8),
        title='Bundled Middlebury scenes, x8, test regions: disparity RMSE in pixels per scene and '
              'their mean (lower is better)'),
    'flow': dict(
        learned={'PAC (lite, bilinear base)': 'pacjointupsample_lite_x4_flow_demo.py',
                 'PAC (lite, reference)': 'pacjointupsample_lite_x4_flow_reference_demo.py',
                 'DJF': 'djf_x4_flow_demo.py'},
        scenes=None, checkpoint='pac_lite_x4_flow_demo.pth', metric='epe_px', shipped=('flow', 4),
        # real flow for selection and testing: the stereo scenes read as flow (u = -d, v = 0)
        procedural={'PAC (lite, bilinear base)': 'pacjointupsample_lite_x4_flow_procedural.py',
                    'DJF': 'djf_x4_flow_procedural.py'},
        procedural_scenes={'aloe': 'Aloe', 'motorcycle': 'Motorcycle'},
        procedural_data='procedural optical flow',
        procedural_split=('whole image, stereo as flow', 'whole image, stereo as flow'),
        title='Held-out scene (Grove2) of the bundled known-motion flow frames, x4: end-point error in '
              'pixels (lower is better)'),
}
QUICK_ITERS = 6
#: the regions table's row for the model tools/upsample.py ships (trained on procedural data only)
SHIPPED_ROW = 'shipped PAC (lite), procedural'


def train(config, work_dir, overrides, max_iters=None, description=None):
    """Train with the Runner; return (best-on-val checkpoint, its val score). The
    terminal shows a progress bar; the Runner's output goes to ``console.log`` in
    ``work_dir`` beside mmengine's own log."""
    overrides = dict(overrides)
    if max_iters is not None:
        overrides.update({'train_cfg.max_iters': max_iters, 'train_cfg.val_interval': max_iters,
                          'default_hooks.checkpoint.interval': max_iters,
                          'default_hooks.logger.interval': max(1, max_iters // 3),
                          'param_scheduler': [dict(type='ConstantLR', factor=1.0, by_epoch=False)]})
    cfg = launch.load_config(config, overrides, work_dir)
    cfg.custom_hooks = []  # panels are written once, by the final evaluation
    os.makedirs(work_dir, exist_ok=True)
    progress = ProgressAndTimingHook(description or osp.basename(work_dir), sys.stderr)
    started = time.time()
    with console_to(osp.join(work_dir, 'console.log')):
        runner = launch.build_runner(cfg)
        runner.register_hook(progress)
        runner.train()
    # this run's best: a best file an earlier run left in the same folder is older
    best = sorted(p for p in glob.glob(osp.join(work_dir, 'best_*.pth')) if osp.getmtime(p) >= started)
    if len(best) != 1:
        raise RuntimeError(f'training finished but {work_dir} holds {len(best)} best-on-val checkpoints')
    return best[0], float(runner.message_hub.get_info('best_score'))


def evaluate_per_scene(config, work_dir, scenes, overrides, panels=False, **kwargs):
    """The config's test metric over its test set and, for each ``{folder: column}`` of
    ``scenes``, over that scene alone (a column before the overall one), then over each
    of the config's ``further_tests`` (``{column: dataset}``, each replacing the test
    set; a column after). The Runner's output goes to ``console.log`` in ``work_dir``."""
    metrics = {}
    os.makedirs(work_dir, exist_ok=True)
    further = launch.load_config(config, overrides).get('further_tests') or {}
    with console_to(osp.join(work_dir, 'console.log')):
        for scene, column in (scenes or {}).items():
            per_scene, _ = evaluate(config, osp.join(work_dir, scene), panels=False,
                                    overrides={**overrides, 'test_dataloader.dataset.scenes': [scene]},
                                    **kwargs)
            (metrics[column],) = per_scene.values()
        if len(scenes or ()) != 1:
            overall, _ = evaluate(config, work_dir, overrides=overrides, panels=panels, **kwargs)
            metrics.update(overall)  # the metric's own average over the test set
        for column, dataset in further.items():
            (metrics[column],) = evaluate(config, osp.join(work_dir, _slug(column)), panels=False,
                                          overrides={**overrides, 'test_dataloader.dataset': dict(
                                              _delete_=True, **dataset)}, **kwargs)[0].values()
    return metrics


def evaluate_val(config, work_dir, overrides, checkpoint, net=None):
    """The config's val score for ``checkpoint`` (or baseline ``net``; the first metric, which
    ``save_best='auto'`` selects on), by running the test loop over the val set."""
    cfg = launch.load_config(config, overrides)
    val_set = {'test_dataloader.dataset': dict(_delete_=True, **cfg.val_dataloader.dataset),
               'test_evaluator': cfg.val_evaluator}
    os.makedirs(work_dir, exist_ok=True)
    with console_to(osp.join(work_dir, 'console.log')):
        metrics, _ = evaluate(config, osp.join(work_dir, 'val'), net=net, checkpoint=checkpoint, panels=False,
                              overrides={**overrides, **val_set})
    return next(iter(metrics.values()))


def run_protocol(task, work_dir, overrides, scenes, seeds, max_iters, panels, learned=None, trained=None):
    """Baselines and every learned method (per seed) on one train/val/test protocol;
    ``learned`` ({method: config}) defaults to the task's. A method in ``trained``
    ({method: checkpoint}) is not trained: that checkpoint is scored on the val set too.

    Returns the protocol's block of ``results.json``: rows, the PAC variant chosen on
    val, the verdict against every other method on test, and the chosen PAC's relative
    gain over JBU per test column (1 - PAC / JBU, mean over seeds)."""
    learned = learned or task['learned']
    first_config = osp.join(CONFIGS, next(iter(learned.values())))
    rows = []
    for name, net in BASELINES:
        metrics = evaluate_per_scene(first_config, osp.join(work_dir, name), scenes, overrides, net=net)
        rows.append(dict(method=name, params=0, learned=False,
                         test={k: summarise([v]) for k, v in metrics.items()}))
    checkpoints = {}
    for name, config_name in learned.items():
        config = osp.join(CONFIGS, config_name)
        vals, tests = [], []
        for seed in seeds:
            sub_dir = osp.join(work_dir, _slug(name), f'seed{seed}')
            seeded = {**overrides, 'randomness.seed': seed}
            if name in (trained or {}):
                checkpoint, val_score = trained[name], evaluate_val(config, sub_dir, overrides, trained[name])
            else:
                checkpoint, val_score = train(config, sub_dir, seeded, max_iters,
                                              description=f'{osp.basename(work_dir)} {name} seed {seed}')
            checkpoints.setdefault(name, checkpoint)
            vals.append(val_score)
            tests.append(evaluate_per_scene(config, sub_dir, scenes, overrides, checkpoint=checkpoint,
                                            panels=panels and name == next(iter(learned))))
        params = count_parameters(launch.load_config(config))
        rows.append(dict(method=name, params=params, learned=True, val=summarise(vals),
                         test={k: summarise([t[k] for t in tests]) for k in tests[0]}))
    return judge(rows), checkpoints


def _slug(name):
    """'PAC (lite, reference)' -> 'pac_lite_reference' (a work-dir name)."""
    return re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')


def format_table(block, metric, title):
    """A protocol block -> Markdown: test columns and the val score (mean and range over seeds)."""
    columns = list(block['rows'][0]['test'])
    lines = [title, '', '| method | params | ' + ' | '.join(_pretty(c, metric) for c in columns) + ' | val |',
             '|---|---:|' + '---:|' * (len(columns) + 1)]
    for row in block['rows']:
        cells = [_cell(row['test'][c]) for c in columns]
        val = _cell(row['val']) if 'val' in row else '–'
        mark = ' (chosen on val)' if row['method'] == block['chosen_pac'] else ''
        lines.append(f"| {row['method']}{mark} | {row['params']:,} | " + ' | '.join(cells) + f' | {val} |')
    ahead = [f"{method}: {', '.join(c for c, yes in v.items() if yes) or 'nowhere'}"
             for method, v in block['verdict'].items()]
    lines += ['', f"Verdict: {block['chosen_pac']} (chosen on val) is ahead of " + '; '.join(ahead)
              + f" -> ahead of every method everywhere: {'yes' if block['pac_ahead_of_all'] else 'no'}"]
    if 'gain_over_jbu' in block:
        lines.append('Gain over JBU (1 - PAC / JBU): '
                     + ', '.join(f'{c}: {100 * g:+.1f} %' for c, g in block['gain_over_jbu'].items()))
    return '\n'.join(lines)


def _cell(summary):
    """One seed: the value; several: the mean and the range over seeds."""
    if len(summary['seeds']) == 1:
        return f"{summary['mean']:.3f}"
    return f"{summary['mean']:.3f} ({summary['min']:.3f}–{summary['max']:.3f})"


def _pretty(column, metric):
    names = dict(rmse_px='mean RMSE (px)', epe_px='EPE (px)')
    return names.get(column, column) if column == metric else column


def run_task(key, task, work_dir, args, max_iters, on_block=lambda block: None):
    """All protocols of one task; returns its ``results.json`` block and the Markdown tables.
    ``on_block(block)`` is called after each protocol with the block so far."""
    seeds = args.seeds
    block, tables = {}, []
    block['metric'] = metric = task['metric']
    if not args.skip_regions:
        block['regions'], checkpoints = run_protocol(task, work_dir, {}, task['scenes'], seeds,
                                                     max_iters, panels=True)
        shipped = shipped_row(task, work_dir)
        if shipped:
            block['regions'] = judge(block['regions']['rows'] + [shipped])
        on_block(block)
        tables.append(format_table(block['regions'], metric, task['title']))
        shutil.copyfile(checkpoints[next(iter(task['learned']))],
                        osp.join(args.work_dir, task['checkpoint']))
    if args.loso and task['scenes']:
        block['loso'] = {}
        for test_scene, column in task['scenes'].items():
            (train_scene,) = [s for s in task['scenes'] if s != test_scene]
            overrides = {f'{split}_dataloader.dataset.scenes': [train_scene] for split in ('train', 'val')}
            overrides['test_dataloader.dataset.scenes'] = [test_scene]
            fold, _ = run_protocol(task, osp.join(work_dir, f'loso_{test_scene}'), overrides,
                                   {test_scene: column}, seeds, max_iters, panels=False)
            block['loso'][column] = fold
            on_block(block)
            tables.append(format_table(fold, metric, loso_title(task, column)))
    if args.procedural and task.get('procedural'):
        block['procedural'], table = run_procedural(
            task, work_dir, seeds, max_iters, metric,
            on_fold=lambda folds: on_block({**block, 'procedural': dict(folds=folds)}))
        tables.append(table)
    return block, tables


def shipped_row(task, work_dir):
    """The task's shipped model (``checkpoints/``, see ``tools/make_shipped_upsamplers.py``)
    scored on the demo's test split, as a row of the regions table; None when it is not
    there. It has the demo model's architecture, so the demo config evaluates it."""
    from upsample import shipped_checkpoint
    checkpoint = shipped_checkpoint(*task['shipped'])
    if not osp.isfile(checkpoint):
        return None
    config = osp.join(CONFIGS, next(iter(task['learned'].values())))
    metrics = evaluate_per_scene(config, osp.join(work_dir, 'shipped'), task['scenes'], {}, checkpoint=checkpoint)
    return dict(method=SHIPPED_ROW, params=count_parameters(launch.load_config(config)), learned=False,
                test={k: summarise([v]) for k, v in metrics.items()})


def other_scene(task, column, scenes=None):
    """The name of the bundled scene that is not ``column`` (of the task's two ``scenes``)."""
    (other,) = [name for name in (scenes or task['scenes']).values() if name != column]
    return other


def procedural_scenes(task):
    """``{folder: column}`` of the real scenes the procedural protocol selects and tests on."""
    return task.get('procedural_scenes') or task['scenes']


def loso_title(task, column):
    """The table title of the leave-one-scene-out fold tested on scene ``column``."""
    return f'Leave one scene out: trained and selected on {other_scene(task, column)}, tested on {column}'


def run_procedural(task, work_dir, seeds, max_iters, metric, on_fold=lambda folds: None):
    """Learned methods trained on procedural scenes only; for each real scene, selected on
    the other scene's val region and tested on this scene's test region (never trained or
    selected on). Returns the ``procedural`` block (folds keyed by test column, the chosen
    PAC's gain over JBU per fold, whether the goal is met) and its tables."""
    folds = {}
    scenes = procedural_scenes(task)
    for test_scene, column in scenes.items():
        (select_scene,) = [s for s in scenes if s != test_scene]
        overrides = {'val_dataloader.dataset.scenes': [select_scene],
                     'test_dataloader.dataset.scenes': [test_scene]}
        folds[column], _ = run_protocol(task, osp.join(work_dir, f'procedural_{test_scene}'), overrides,
                                        {test_scene: column}, seeds, max_iters, panels=False,
                                        learned=task['procedural'])
        on_fold(folds)
    return procedural_block(task, folds, metric)


def procedural_block(task, folds, metric):
    """The procedural folds -> the ``procedural`` block (each fold's gain over JBU,
    whether the goal is met on every unseen scene) and its tables."""
    block = unseen_scene_goal(folds)
    return block, procedural_tables(task, block, metric)


def procedural_tables(task, block, metric):
    """A ``procedural`` block's tables: one per fold, then the goal's verdict."""
    tables = []
    val_split, test_split = task['procedural_split']
    for column, fold in block['folds'].items():
        other = other_scene(task, column, procedural_scenes(task))
        tables.append(format_table(fold, metric, f"Trained on {task['procedural_data']} only, selected on "
                                                 f'{other} ({val_split}), tested on {column} ({test_split})'
                                                 + _further_note(fold, column)))
    tables.append(f'Goal: the PAC model chosen on val beats JBU by >= '
                  f'{100 * block["goal"]:.0f} % and by more than the seed spread on every unseen scene: '
                  f'{"met" if block["goal_met"] else "not met"}')
    return '\n\n'.join(tables)


def _further_note(fold, column):
    """The title's note on a fold's test columns beyond its test scene (further tests)."""
    further = [c for c in fold['rows'][0]['test'] if c != column]
    return f" and on {', '.join(further)} (further tests)" if further else ''


def tables_of(results):
    """Markdown tables of every protocol in a results dict, each judged again from its
    rows (so a table shows the current rule's verdict, not a stored one)."""
    tables = []
    for key, task in TASKS.items():
        block = results.get(key)
        if block is None:
            continue
        metric = block['metric']
        if 'regions' in block:
            tables.append(format_table(judge(block['regions']['rows']), metric, task['title']))
        for column, fold in block.get('loso', {}).items():
            tables.append(format_table(judge(fold['rows']), metric, loso_title(task, column)))
        if 'procedural' in block:
            tables.append(procedural_block(task, {c: judge(fold['rows']) for c, fold in
                                                  block['procedural']['folds'].items()}, metric)[1])
    return tables


def merge_results(runs):
    """``results.json`` of demo runs that differ only in ``--seeds`` -> one, each
    protocol judged again over all their seeds, and its Markdown tables."""
    merged = merge_runs(runs, TASKS)
    return merged, tables_of(merged)


def write_json(path, data):
    """Write ``data`` to ``path`` atomically (a reader never sees half a file)."""
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='a ~1-minute smoke version')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0], help='seeds of every learned run')
    parser.add_argument('--loso', action='store_true', help='add leave-one-scene-out runs (depth)')
    parser.add_argument('--procedural', action='store_true',
                        help='add runs trained on procedural data (RGB-D scenes for depth, optical '
                             'flow for flow), tested on unseen real scenes')
    parser.add_argument('--skip-regions', action='store_true',
                        help='only the added protocols (--loso, --procedural): no regions table, '
                             'panels or demo checkpoint')
    parser.add_argument('--tasks', nargs='+', default=list(TASKS), choices=list(TASKS))
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'joint_upsampling_demo'))
    parser.add_argument('--out', help='results JSON (default: WORK_DIR/results.json)')
    parser.add_argument('--merge', nargs='+', metavar='RESULTS.json',
                        help='merge finished runs that differ only in --seeds into --out (or '
                             'WORK_DIR/results.json), judging every protocol over all their seeds; '
                             'trains nothing')
    args = parser.parse_args(argv)
    if args.merge:
        runs = []
        for path in args.merge:
            with open(path) as f:
                runs.append(json.load(f))
        merged, tables = merge_results(runs)
        out = args.out or osp.join(osp.abspath(args.work_dir), 'results.json')
        os.makedirs(osp.dirname(out), exist_ok=True)
        write_json(out, merged)
        with open(osp.splitext(out)[0] + '.md', 'w') as f:
            f.write('\n\n'.join(tables) + '\n')
        print('\n\n'.join(tables))
        print(f'results: {out}')
        return merged
    args.work_dir = osp.abspath(args.work_dir)
    os.makedirs(args.work_dir, exist_ok=True)
    max_iters = QUICK_ITERS if args.quick else None
    start = time.time()

    print(f'mmengine logs and each run\'s console output: {args.work_dir}/<task>/<method>/', file=sys.stderr)
    results = dict(quick=args.quick, seeds=args.seeds, command='python tools/demo.py ' + ' '.join(argv or sys.argv[1:]),
                   machine_before=machine())
    out = args.out or osp.join(args.work_dir, 'results.json')
    all_tables = []
    for key in args.tasks:
        task = TASKS[key]
        task_dir = osp.join(args.work_dir, key)
        # after each protocol the file holds what has finished, marked complete=False
        results[key], tables = run_task(
            key, task, task_dir, args, max_iters,
            on_block=lambda block: write_json(out, {**results, key: block, 'complete': False}))
        for table in tables:
            print('\n' + table)
        if args.quick:
            print('(quick run: the learned models are not expected to win)')
        if not args.skip_regions:
            panel_dir = osp.join(task_dir, _slug(next(iter(task['learned']))),
                                 f'seed{args.seeds[0]}', 'panels')
            for panel in sorted(os.listdir(panel_dir)):
                print(f'panel: {osp.join(panel_dir, panel)}')
            print(f"PAC checkpoint: {osp.join(args.work_dir, task['checkpoint'])} "
                  f"(config configs/joint_upsampling/{next(iter(task['learned'].values()))})")
        all_tables += tables
    results['seconds'] = round(time.time() - start)
    results.update(complete=True, machine_after=machine())
    write_json(out, results)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write('\n\n'.join(all_tables) + '\n')
    print(f'results: {out}')
    print(f'demo finished in {results["seconds"]} s')


if __name__ == '__main__':
    launch.run_cli(main)
