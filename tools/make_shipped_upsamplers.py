"""Train the PAC (lite) models that ``tools/upsample.py --method pac-lite`` uses by default.

    python tools/make_shipped_upsamplers.py [--models depth-x8 flow-x4 ...] [--seed 0]
                                            [--work-dir work_dirs/shipped_upsamplers]

Each model of ``tools/upsample.py``'s ``SHIPPED`` table (depth x4/x8/x16, flow x4/x8) is
trained on procedural data only with its config (``*_procedural.py``), its checkpoint
chosen on the config's val scene (one real Middlebury scene; read as flow for flow) and
scored on the config's test scene (the other one, never trained or selected on) beside
bicubic and JBU, with ``tools/demo.py``'s protocol code. A model in ``COMPOSED`` (x16
depth: ``JointUpsampleCascade`` of an x4 model twice) is not trained: its checkpoint is
the weights of its stages (the shipped x4 model's, or with ``--seed N`` seed N's x4 run),
scored the same way and chosen on its own val score. The weights (no optimizer state)
go to ``checkpoints/<config stem>.pth`` with their provenance in ``meta``, and the scores
to ``benchmarks/results/shipped_upsamplers.json``, merged as each model finishes.
``--iters N --checkpoints-dir DIR --out FILE`` (the tests) trains a short schedule
elsewhere; the record says how many iterations a model had.

Every run is also kept in the record's ``seed_runs``; runs of the shipped schedule with
other ``--seed`` values are judged together (:func:`seed_study`): the mean and range over
seeds, and whether PAC is ahead of each other method by the goal margin and beyond the
seed spread. ``--with-djf`` trains DJF beside PAC on the same schedule and seed (never
shipped); on the shipped run's own seed and schedule it scores the shipped PAC weights
beside DJF instead of training them again (without it, that run is trained again: a
reproduction, kept out unless better on val).
"""
import argparse
import copy
import glob
import hashlib
import json
import os
import os.path as osp
import shutil
import sys
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))

import demo  # noqa: E402
from cli_helpers import locked_merge  # noqa: E402
from convdense import launch  # noqa: E402
from machine_info import machine  # noqa: E402
from upsample import SHIPPED, SHIPPED_DIR, shipped_checkpoint  # noqa: E402

from convdense.evaluation.upsampling_verdict import GOAL_GAIN_OVER_JBU, judge, merge_rows  # noqa: E402

RESULTS = osp.join(ROOT, 'benchmarks', 'results', 'shipped_upsamplers.json')
MODEL = 'PAC (lite)'


def model_key(kind, factor):
    return f'{kind}-x{factor}'


MODELS = {model_key(kind, factor): (kind, factor) for kind, factor in SHIPPED}
#: models made of others with no training: key -> the model each cascade stage takes its weights from
COMPOSED = {'depth-x16': ('depth-x4', 'depth-x4')}
#: the DJF config trained beside a model with --with-djf (same data, schedule and seed)
DJF_CONFIGS = {'flow-x4': 'djf_x4_flow_procedural.py', 'flow-x8': 'djf_x8_flow_procedural.py',
               'depth-x8': 'djf_x8_procedural.py'}
#: the methods PAC must beat by the goal margin, per kind (the flow goal includes DJF and bicubic)
GOAL_OVER = {'flow': ('bicubic', 'JBU', 'DJF'), 'depth': ('JBU',)}


def ship(checkpoint, dst, provenance):
    """Write the trained weights of ``checkpoint`` to ``dst`` (atomically) with their
    provenance in ``meta``; returns the file's sha256."""
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)['state_dict']
    os.makedirs(osp.dirname(dst), exist_ok=True)
    tmp = f'{dst}.tmp'
    torch.save(dict(state_dict=state, meta=provenance), tmp)
    os.replace(tmp, dst)
    return file_sha256(dst)


def file_sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def schedule_overrides(cfg, iters):
    """Config overrides giving ``cfg`` its own schedule stretched to ``iters`` iterations
    (milestones scaled, :func:`convdense.launch.set_schedule`), validated and checkpointed
    five times, so the best-on-val checkpoint is still chosen along the run."""
    scheduled = launch.set_schedule(copy.deepcopy(cfg), iters, iters // 5 or iters)
    return {'train_cfg.max_iters': iters, 'train_cfg.val_interval': scheduled.train_cfg.val_interval,
            'param_scheduler': scheduled.param_scheduler,
            'default_hooks.checkpoint.interval': scheduled.default_hooks.checkpoint.interval,
            'default_hooks.logger.interval': scheduled.default_hooks.logger.interval}


def stage_weights(source, seed, checkpoints_dir, work_dir, results):
    """The weights a cascade stage takes from model ``source``: the shipped file when the
    shipped run has ``seed``, else that seed's run of the shipped schedule (its best-on-val
    file in ``work_dir``, which ``--seed`` runs leave there). Returns (path, shipped?)."""
    shipped = results.get(source)
    if shipped is None or shipped['seed'] == seed:
        path = shipped_checkpoint(*MODELS[source], directory=checkpoints_dir)
        if not osp.isfile(path):
            raise launch.ConfigError(f'the cascade is made of the shipped {source} model, but {path} is missing: '
                                     f'run --models {source} first')
        return path, True
    best = sorted(glob.glob(osp.join(work_dir, source, f"{shipped['iters']}it", demo._slug(MODEL), f'seed{seed}',
                                     'best_*.pth')), key=osp.getmtime)
    if not best:
        raise launch.ConfigError(f"no seed-{seed} run of {source}'s shipped schedule in {work_dir}: run --models "
                                 f"{source} --seed {seed}" + (f" --iters {shipped['iters']}" if shipped['iters'] else ''))
    return best[-1], False


def compose(key, checkpoints_dir, work_dir, seed=0, results=None):
    """The checkpoint of cascade ``key`` (``COMPOSED``): stage i holds the weights of model
    ``COMPOSED[key][i]`` (:func:`stage_weights` of ``seed``). Returns its path (in
    ``work_dir``) and, per stage, the source's path and sha256."""
    state, sources = {}, []
    for i, source in enumerate(COMPOSED[key]):
        path, shipped = stage_weights(source, seed, checkpoints_dir, osp.dirname(work_dir), results or {})
        weights = torch.load(path, map_location='cpu', weights_only=False)['state_dict']
        state.update({f'net.stages.{i}.' + name[len('net.'):]: value for name, value in weights.items()})
        sources.append(dict(model=source, checkpoint=osp.relpath(path, ROOT) if path.startswith(ROOT) else path,
                            sha256=file_sha256(path), shipped=shipped))
    os.makedirs(work_dir, exist_ok=True)
    dst = osp.join(work_dir, f'{key}_seed{seed}_composed.pth')
    torch.save(dict(state_dict=state), dst)
    return dst, sources


def train_one(key, seed, work_dir, max_iters, checkpoints_dir=SHIPPED_DIR, with_djf=False, reuse=None,
              results=None):
    """Train (``max_iters``: the config's schedule stretched to that many iterations) or,
    for ``COMPOSED``, assemble, and score one shipped model; returns (its results record,
    its checkpoint). ``with_djf`` trains DJF beside it; ``reuse`` (a checkpoint) is scored
    as the PAC model instead of training one; ``results`` (the results file's contents)
    say which runs a cascade's stages are."""
    kind, factor = MODELS[key]
    config_name = SHIPPED[kind, factor]
    cfg = launch.load_config(osp.join(demo.CONFIGS, config_name))
    overrides = schedule_overrides(cfg, max_iters) if max_iters else {}
    task = demo.TASKS['flow' if kind == 'flow' else 'depth']
    column = cfg.test_scene.capitalize()
    start, before = time.time(), machine()
    trained, extra = ({MODEL: reuse} if reuse else None), {}
    learned = {MODEL: config_name}
    if with_djf:
        if key not in DJF_CONFIGS:
            raise launch.ConfigError(f'--with-djf: no DJF config for {key} (there is one for '
                                     f'{", ".join(DJF_CONFIGS)})')
        learned['DJF'] = DJF_CONFIGS[key]
    if key in COMPOSED:
        checkpoint, sources = compose(key, checkpoints_dir, osp.join(work_dir, key), seed, results)
        trained, extra = {MODEL: checkpoint}, dict(composed_from=sources)
        # the same weights with the stages' sample offsets left as the chain makes them
        unaligned, sub_dir = {'model.net.align': False}, osp.join(work_dir, key, 'unaligned')
        config = osp.join(demo.CONFIGS, config_name)
        extra['unaligned'] = dict(val=demo.evaluate_val(config, sub_dir, unaligned, checkpoint),
                                  test=demo.evaluate_per_scene(config, sub_dir, {cfg.test_scene: column},
                                                               unaligned, checkpoint=checkpoint))
    # each schedule trains in a folder of its own: a best-on-val file of another run must not mix in
    run_dir = osp.join(work_dir, key, f'{max_iters or cfg.train_cfg.max_iters}it')
    block, checkpoints = demo.run_protocol(task, run_dir, overrides, {cfg.test_scene: column},
                                           [seed], None, panels=False, learned=learned, trained=trained)
    record = dict(config=f'configs/joint_upsampling/{config_name}', kind=kind, factor=factor, seed=seed,
                  iters=0 if key in COMPOSED else max_iters or cfg.train_cfg.max_iters, **extra,
                  val_scene=cfg.val_scene, test_scene=cfg.test_scene, metric=task['metric'],
                  rows=block['rows'], gain_over_jbu=block['gain_over_jbu'],
                  machine_before=before, machine_after=machine(), seconds=round(time.time() - start))
    return record, checkpoints[MODEL]


def seed_runs(record):
    """Every run kept for the seed study of a model ({seed, iters, rows}); a record written
    before runs were kept holds only its shipped run."""
    return record.get('seed_runs') or [dict(seed=record['seed'], iters=record['iters'], rows=record['rows'])]


def add_seed_run(runs, run):
    """``runs`` with ``run`` in the place of an earlier run of the same seed and schedule."""
    kept = [r for r in runs if (r['seed'], r['iters']) != (run['seed'], run['iters'])]
    return sorted(kept + [run], key=lambda r: (r['iters'], r['seed']))


def seed_study(record):
    """The shipped schedule's runs over seeds, judged together on the methods every run
    has (:func:`judge`: ahead only beyond either seed spread): the relative gain of PAC's
    mean over each other method's on the test scene, and whether it is ahead of each of
    ``GOAL_OVER[kind]`` by ``GOAL_GAIN_OVER_JBU`` and beyond the spread. None with fewer
    than two seeds."""
    runs = [run for run in seed_runs(record) if run['iters'] == record['iters']]
    if len(runs) < 2:
        return None
    methods = [row['method'] for row in runs[0]['rows']
               if all(any(r['method'] == row['method'] for r in run['rows']) for run in runs)]
    block = judge(merge_rows([[next(r for r in run['rows'] if r['method'] == m) for m in methods]
                              for run in runs]))
    column = record['test_scene'].capitalize()
    rows = {row['method']: row['test'][column] for row in block['rows']}
    gain = {m: 1 - rows[MODEL]['mean'] / rows[m]['mean'] for m in methods if m != MODEL}
    required = [m for m in GOAL_OVER[record['kind']] if m in gain]
    partly = {}  # a method only some runs have: its seeds and its mean over them, shown but not judged
    for method in (m for m in GOAL_OVER[record['kind']] if m not in gain):
        have = [(run['seed'], row['test'][column]['mean']) for run in runs for row in run['rows']
                if row['method'] == method]
        if have:
            partly[method] = dict(seeds=[seed for seed, _ in have], mean=sum(v for _, v in have) / len(have))
    return dict(seeds=[run['seed'] for run in runs], iters=record['iters'], column=column, scores=rows,
                gain=gain, ahead={m: block['verdict'][m][column] for m in gain}, goal=GOAL_GAIN_OVER_JBU,
                goal_over=required, not_measured=[m for m in GOAL_OVER[record['kind']] if m not in gain],
                partly_measured=partly,
                goal_met=all(gain[m] >= GOAL_GAIN_OVER_JBU and block['verdict'][m][column] for m in required))


def format_seed_table(results):
    """Markdown: each model's shipped schedule over seeds on its test scene (mean and
    range), PAC's gain over each method, and whether the goal is met beyond the spread."""
    studies = {key: seed_study(results[key]) for key in sorted(results, key=lambda k: list(MODELS).index(k))}
    studies = {key: study for key, study in studies.items() if study}
    if not studies:
        return ''
    lines = ['| model | seeds | iterations | tested on | bicubic | JBU | DJF | PAC (lite) | PAC gain over '
             'bicubic / JBU / DJF | goal met |', '|---|---|---:|---|---:|---:|---:|---:|---|---|']
    for key, study in studies.items():
        partly = study.get('partly_measured', {})
        cells = [f"{partly[m]['mean']:.3f} (seed {', '.join(map(str, partly[m]['seeds']))} only)" if m in partly
                 else seed_cell(study['scores'].get(m)) for m in ('bicubic', 'JBU', 'DJF', MODEL)]
        gains = ' / '.join('–' if m not in study['gain'] else
                           f"{100 * study['gain'][m]:+.1f} %" + ('' if study['ahead'][m] else ' (within spread)')
                           for m in ('bicubic', 'JBU', 'DJF'))
        unmeasured = ''.join(f"; {m} not measured over every seed" if m in partly else f'; {m} not measured'
                             for m in study['not_measured'])
        goal = f"{'yes' if study['goal_met'] else 'no'} (≥ {100 * study['goal']:.0f} % over " \
               f"{', '.join(study['goal_over'])}{unmeasured})"
        iters = study['iters'] if key not in COMPOSED else 'none (cascade)'
        lines.append(f"| {key} | {', '.join(map(str, study['seeds']))} | {iters} | {study['column']} | "
                     + ' | '.join(cells) + f' | {gains} | {goal} |')
    return '\n'.join(lines)


def seed_cell(summary):
    """'0.194 [0.190-0.199]' (mean [min-max] over seeds); a baseline is one number."""
    if summary is None:
        return '–'
    if summary['spread'] == 0:
        return f"{summary['mean']:.3f}"
    return f"{summary['mean']:.3f} [{summary['min']:.3f}–{summary['max']:.3f}]"


def format_table(results, notes=True):
    """Markdown: each shipped model's error on its unseen test scene beside bicubic and
    JBU, then (``notes``) how a cascade is aligned and how each run was chosen, then the
    shipped schedules over seeds (:func:`format_seed_table`)."""
    units = dict(rmse_px='RMSE (px)', epe_px='EPE (px)')
    lines = ['| model (`checkpoints/`) | selected on | tested on | metric | bicubic | JBU | PAC (lite) '
             '| gain over JBU | iterations | train + test |',
             '|---|---|---|---|---:|---:|---:|---:|---:|---:|']
    for key in sorted(results, key=lambda k: list(MODELS).index(k)):
        record = results[key]
        column = record['test_scene'].capitalize()
        score = {row['method']: row['test'][column]['mean'] for row in record['rows']}
        lines.append(f"| {key} (`{osp.basename(record['checkpoint'])}`) | {record['val_scene'].capitalize()} "
                     f"| {column} | {units[record['metric']]} | {score['bicubic']:.3f} | {score['JBU']:.3f} "
                     f"| {score[MODEL]:.3f} | {100 * record['gain_over_jbu'][column]:+.1f} % "
                     f"| {_iterations(record)} | {record['seconds'] / 60:.0f} min |")
    if notes:
        notes = [_unaligned_note(key, record) for key, record in results.items() if 'unaligned' in record]
        notes += [_selection_note(key, record) for key, record in results.items()
                  if 'replaced' in record or record.get('candidates')]
        for note in notes:
            lines += ['', note]
    seeds = format_seed_table(results)
    if seeds:
        lines += ['', 'Over seeds (the shipped schedule trained again with other `--seed` values; '
                  '"within spread": the gap is smaller than either seed range):', '', seeds]
    return '\n'.join(lines)


def _selection_note(key, record):
    """How the shipped run was chosen over the runs it replaced or kept out: their
    iterations and val scores (the test scores never decided)."""
    val = record['val_scene'].capitalize()
    def run(summary):
        return (f"the cascade of seed {summary['seed']}" if key in COMPOSED
                else f"the {summary['iters']}-iteration run of seed {summary['seed']}")
    shipped = f"{key}: {run(record)} ships ({val} val {val_score(record):.3f})"
    others = []
    if 'replaced' in record:
        others.append(f"it replaced {run(record['replaced'])} (val {record['replaced']['val']:.3f})")
    if record.get('candidates'):
        others.append('kept out: ' + ', '.join(f"{run(c)} (val {c['val']:.3f})" for c in record['candidates']))
    return shipped + '; ' + '; '.join(others) + '.'


def _unaligned_note(key, record):
    """What a cascade's ``align`` (undoing the chain's misplacement of the low-res samples)
    does, on the val scene it is chosen on and on the test scene."""
    column, val = record['test_scene'].capitalize(), record['val_scene'].capitalize()
    pac = next(row for row in record['rows'] if row['method'] == MODEL)
    aligned = (pac['val']['mean'], pac['test'][column]['mean'])
    off = (record['unaligned']['val'], record['unaligned']['test'][column])
    kept = 'kept (better on the val scene)' if aligned[0] <= off[0] else 'NOT better on the val scene'
    return (f'{key} is a cascade whose samples are moved to where the protocol took them (`align`), {kept}: '
            f'{val} val {aligned[0]:.3f} aligned vs {off[0]:.3f} not; {column} test {aligned[1]:.3f} vs {off[1]:.3f}.')


def _iterations(record):
    """The iterations cell: a composed model's is none, with what it is made of."""
    if 'composed_from' not in record:
        return str(record['iters'])
    return 'none: ' + ' then '.join(source['model'] for source in record['composed_from'])


def val_score(record):
    """The learned model's score on the val scene (lower is better)."""
    return next(row for row in record['rows'] if row['method'] == MODEL)['val']['mean']


def summary(record):
    """What a results record says about one run, for the record that replaces or keeps it."""
    return dict(iters=record['iters'], seed=record['seed'], val=val_score(record), command=record['command'],
                test={row['method']: next(iter(row['test'].values()))['mean'] for row in record['rows']})


def replaces(old, new):
    """Whether run ``new`` replaces the shipped run ``old`` (None: nothing shipped): only
    when it scores better on the val scene; test scores never decide."""
    return old is None or val_score(new) < val_score(old)


def read_results(path):
    """The JSON at ``path``, or ``{}`` when there is none yet."""
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _config_iters(key):
    """The iterations of a model's config as it is (no --iters)."""
    kind, factor = MODELS[key]
    return launch.load_config(osp.join(demo.CONFIGS, SHIPPED[kind, factor])).train_cfg.max_iters


def settle(old, key, record, checkpoint, dst, args, reused, say=print):
    """The results record of ``key`` after a run (``record``, its ``checkpoint``) against the
    one on file (``old``): the run joins ``seed_runs``; it ships (weights written to ``dst``)
    when it is better on the val scene, with ``--force``, or, for a cascade, when the shipped
    one is made of stage weights that are no longer the shipped ones."""
    run = dict(seed=record['seed'], iters=record['iters'], rows=record['rows'], seconds=record['seconds'],
               command=record['command'])
    runs = None if old is None else add_seed_run(seed_runs(old), run)
    if reused:
        say(f'scored the shipped {key} model again beside the methods trained with it')
        return dict(old, seed_runs=runs)
    if old is None and key in COMPOSED and not all(source['shipped'] for source in record['composed_from']):
        raise launch.ConfigError(f'ship {key} of the shipped stages first (--models {key})')
    stale = key in COMPOSED and old is not None and stale_cascade(old, args.checkpoints_dir)
    if old is not None and not (args.force or stale or replaces(old, record)):
        say(f"kept the shipped {key} model: val {val_score(old):.4f} <= this run's {val_score(record):.4f} "
            '(--force ships it anyway)')
        return dict(old, candidates=[*old.get('candidates', []), summary(record)], seed_runs=runs)
    if old is not None:
        record['replaced'] = summary(old)
        # the runs it was chosen over stay on record: kept-out ones and the one before it
        record['candidates'] = [*old.get('candidates', []), *([old['replaced']] if 'replaced' in old else [])]
        record['seed_runs'] = runs
    record.update(checkpoint=osp.relpath(dst, ROOT) if dst.startswith(ROOT) else dst,
                  sha256=ship(checkpoint, dst, dict(config=record['config'], seed=record['seed'],
                                                    command=record['command'],
                                                    results=osp.relpath(osp.abspath(args.out), ROOT),
                                                    **({'composed_from': record['composed_from']}
                                                       if key in COMPOSED else {}))))
    say(f'shipped: {dst}' + (' (the shipped cascade\'s stages had changed)' if stale else ''))
    return record


def stale_cascade(record, checkpoints_dir):
    """Whether the cascade ``record`` says it is made of shipped stage weights that are no
    longer the shipped files (a stage model was shipped again since)."""
    for source in record['composed_from']:
        if source.get('shipped', True):
            path = shipped_checkpoint(*MODELS[source['model']], directory=checkpoints_dir)
            if not osp.isfile(path) or file_sha256(path) != source['sha256']:
                return True
    return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    parser.add_argument('--seed', type=int, help='default 0; for a cascade, the seed of its stages\' runs '
                                                 '(default: the shipped stages)')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'shipped_upsamplers'))
    parser.add_argument('--out', default=RESULTS)
    parser.add_argument('--checkpoints-dir', default=SHIPPED_DIR,
                        help='where the weights go (tools/upsample.py reads checkpoints/)')
    parser.add_argument('--iters', type=int, help='training iterations: the config\'s schedule stretched '
                                                  '(default: as the config has it)')
    parser.add_argument('--with-djf', action='store_true',
                        help='train DJF beside PAC on the same schedule and seed (compared, never shipped)')
    parser.add_argument('--force', action='store_true',
                        help='ship the new run even if the shipped one scores better on the val scene')
    args = parser.parse_args(argv)
    for key in sorted(set(args.models), key=list(MODELS).index):  # a composed model after its stages
        results = read_results(args.out)
        shipped, seed = results.get(key), args.seed or 0
        if key in COMPOSED and args.seed is None:  # the cascade of the shipped stages
            seed = results.get(COMPOSED[key][0], {}).get('seed', 0)
        dst = shipped_checkpoint(*MODELS[key], directory=args.checkpoints_dir)
        if shipped is not None and key not in COMPOSED and args.iters is None \
                and shipped['iters'] != _config_iters(key):
            print(f"{key}: the shipped model had {shipped['iters']} iterations and this run takes the config's "
                  f"{_config_iters(key)}, a schedule of its own (--iters {shipped['iters']} joins the shipped "
                  'schedule and its seed study)')
        reuse = None
        if (args.with_djf and shipped is not None and key not in COMPOSED and osp.isfile(dst) and not args.force
                and (shipped['seed'], shipped['iters']) == (seed, args.iters or _config_iters(key))):
            # DJF beside the shipped run's own seed and schedule: the shipped weights are scored,
            # not trained again (a copy: a run beside this one may ship other weights meanwhile)
            reuse = osp.join(osp.abspath(args.work_dir), key, 'shipped_weights.pth')
            os.makedirs(osp.dirname(reuse), exist_ok=True)
            shutil.copyfile(dst, reuse)
        record, checkpoint = train_one(key, seed, osp.abspath(args.work_dir), args.iters,
                                       args.checkpoints_dir, with_djf=args.with_djf, reuse=reuse,
                                       results=results)
        print(f"{key}: {record['metric']} on {record['test_scene']}: "
              + ', '.join(f"{row['method']} {next(iter(row['test'].values()))['mean']:.3f}"
                          for row in record['rows'])
              + f"; gain over JBU {100 * record['gain_over_jbu'][record['test_scene'].capitalize()]:+.1f} %")
        record['command'] = 'python tools/make_shipped_upsamplers.py --models ' + key + (
            (f' --seed {args.seed}' if args.seed is not None else '') if key in COMPOSED
            else f' --seed {seed}' + (f' --iters {args.iters}' if args.iters else '')) \
            + (' --with-djf' if args.with_djf else '')
        messages = []
        # decided under the results file's lock, against the record as it is then
        locked_merge(args.out, lambda results: {**results, key: settle(
            results.get(key), key, record, checkpoint, dst, args, reused=reuse is not None, say=messages.append)})
        print(messages[-1])
    return 0


if __name__ == '__main__':
    launch.run_cli(main)
