"""Judging joint upsamplers against each other over seeds.

A protocol's *rows* hold each method's scores: ``test`` maps a test column (a scene,
or the test set's average) to a seed summary (:func:`summarise`), learned methods
also a ``val`` summary. :func:`judge` picks the PAC variant on val and calls it ahead
of another method on a test column only where the gap exceeds either method's seed
spread (max - min), so one lucky seed never reads as a win. :func:`merge_runs` joins
results of runs that differ only in their seeds and judges every protocol again.
"""
import statistics

#: the PAC model beats JBU by at least this relative margin on every unseen scene
GOAL_GAIN_OVER_JBU = 0.03


def summarise(values):
    """Seed values -> mean, min, max and the spread (max - min) gaps are compared with."""
    values = list(values)
    if not values:
        raise ValueError('no seed values to summarise')
    return dict(mean=statistics.fmean(values), min=min(values), max=max(values),
                spread=max(values) - min(values), seeds=values)


def ahead(pac, other):
    """PAC (lower is better) is ahead only where its mean is lower by more than either
    method's seed spread."""
    return other['mean'] - pac['mean'] > max(pac['spread'], other['spread'])


def judge(rows):
    """A protocol's rows -> its results block: the PAC variant chosen on val (lowest
    mean), the verdict against every other method per test column, and the chosen
    PAC's gain over JBU (1 - PAC / JBU, means over seeds)."""
    pac_rows = [row for row in rows if row['method'].startswith('PAC')]
    if not pac_rows:
        raise ValueError(f'no PAC row to judge among {[row["method"] for row in rows]}')
    chosen = min(pac_rows, key=lambda row: row['val']['mean'])
    verdict = {row['method']: {column: ahead(chosen['test'][column], score)
                               for column, score in row['test'].items()}
               for row in rows if not row['method'].startswith('PAC')}
    jbu = next(row for row in rows if row['method'] == 'JBU')
    gain = {column: 1 - chosen['test'][column]['mean'] / jbu['test'][column]['mean']
            for column in jbu['test']}
    return dict(rows=rows, chosen_pac=chosen['method'], verdict=verdict,
                pac_ahead_of_all=all(all(v.values()) for v in verdict.values()),
                gain_over_jbu=gain)


def unseen_scene_goal(folds, goal=GOAL_GAIN_OVER_JBU):
    """Folds ``{test column: judged block}`` -> the chosen PAC's gain over JBU on each
    fold's own scene and whether it beats JBU by ``goal`` and beyond the seed spread on
    every one of them."""
    gain = {column: fold['gain_over_jbu'][column] for column, fold in folds.items()}
    met = all(gain[c] >= goal and fold['verdict']['JBU'][c] for c, fold in folds.items())
    return dict(folds=folds, gain_over_jbu=gain, goal=goal, goal_met=met)


def merge_rows(row_lists):
    """Rows of one protocol from runs with different seeds -> one row per method whose
    learned summaries cover every run's seeds (a baseline, deterministic, keeps the first)."""
    merged = []
    for rows in zip(*row_lists):
        methods = {row['method'] for row in rows}
        if len(methods) != 1:
            raise ValueError(f'cannot merge different methods {sorted(methods)}: the runs differ')
        first = rows[0]
        if not first['learned']:
            merged.append(first)
            continue
        row = dict(first, test={c: summarise([v for r in rows for v in r['test'][c]['seeds']])
                                for c in first['test']})
        row['val'] = summarise([v for r in rows for v in r['val']['seeds']])
        merged.append(row)
    return merged


def merge_runs(runs, tasks):
    """Finished results of runs that differ only in their seeds -> one results dict,
    every protocol (``regions``, ``loso`` folds, ``procedural`` folds) of each task key
    in ``tasks`` that all runs hold judged again over all their seeds."""
    incomplete = [i for i, run in enumerate(runs) if not run.get('complete')]
    if incomplete:
        raise ValueError(f'cannot merge unfinished runs (complete is not true): {incomplete}')
    seeds = [seed for run in runs for seed in run['seeds']]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f'the runs share seeds: {seeds}')
    merged = dict(quick=runs[0]['quick'], seeds=seeds, merged_from=[run['command'] for run in runs],
                  machines=[{k: run[k] for k in ('machine_before', 'machine_after') if k in run}
                            for run in runs], complete=True)
    for key in [k for k in tasks if all(k in run for run in runs)]:
        blocks = [run[key] for run in runs]
        block = dict(metric=blocks[0]['metric'])
        if all('regions' in b for b in blocks):
            block['regions'] = judge(merge_rows([b['regions']['rows'] for b in blocks]))
        if all('loso' in b for b in blocks):
            block['loso'] = {c: judge(merge_rows([b['loso'][c]['rows'] for b in blocks]))
                             for c in blocks[0]['loso']}
        if all('procedural' in b for b in blocks):
            block['procedural'] = unseen_scene_goal(
                {c: judge(merge_rows([b['procedural']['folds'][c]['rows'] for b in blocks]))
                 for c in blocks[0]['procedural']['folds']})
        merged[key] = block
    return merged
