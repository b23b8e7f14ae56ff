"""Parameters and FLOPs of backbones as ImageNet classifiers, next to the papers' tables.

    python tools/analysis/model_stats.py all
    python tools/analysis/model_stats.py res2net50_26w4s hetconv-resnet50_p4
    python tools/analysis/model_stats.py configs/mask_rcnn/mask-rcnn_res2net-50_fpn_1x_coco.py
    python tools/analysis/model_stats.py all --json stats.json --check

Each target is a row name of ``convdense.models.complexity.PAPER_TABLE``,
``all`` (every row), or a config file (its ``model.backbone`` is measured; a
config matching no row has no paper figure). The classifier is backbone +
global average pool + fc-1000 on the last stage; FLOPs are multiply-adds at
``--input-size`` (224) counted by mmengine's FlopAnalyzer. ``--check`` exits
with status 1 when a measured figure is off its paper figure by more than 2 %.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from convdense.models import complexity  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('targets', nargs='+',
                        help="PAPER_TABLE row names, 'all', or config files")
    parser.add_argument('--input-size', type=int, default=224, help='image side (224)')
    parser.add_argument('--json', help='also write the rows to this JSON file')
    parser.add_argument('--check', action='store_true',
                        help='exit 1 if any figure is more than 2%% off the paper')
    return parser.parse_args(argv)


def measure_config(path, input_size):
    """Measure ``model.backbone`` of a config; the config's ``default_scope`` picks
    the registry for unprefixed types."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    if 'model' not in cfg or 'backbone' not in cfg.model:
        raise ValueError(f'{path}: config has no model.backbone')
    scope = cfg.get('default_scope', 'mmdet')
    backbone = cfg.model.backbone.to_dict()
    measured = complexity.classifier_complexity(backbone, input_size, scope=scope)
    return dict(name=osp.basename(path), params=measured['params'], flops=measured['flops'],
                paper_params=None, paper_flops=None, params_rel=None, flops_rel=None,
                source=f'{path} (model.backbone)')


def measure(target, input_size):
    if target in complexity.PAPER_TABLE:
        return complexity.compare_with_paper(target, input_size)
    if target.endswith('.py'):
        if not osp.isfile(target):
            raise FileNotFoundError(f'config file not found: {target}')
        return measure_config(target, input_size)
    raise KeyError(f'{target!r} is neither a config file nor a PAPER_TABLE row '
                   f'({", ".join(complexity.PAPER_TABLE)})')


def _fmt(value, scale, digits):
    return '-' if value is None else f'{value / scale:.{digits}f}'


def _pct(rel):
    return '-' if rel is None else f'{100 * rel:+.1f}%'


def format_table(rows):
    header = ('model', 'params (M)', 'paper', 'diff', 'FLOPs (G)', 'paper', 'diff')
    lines = [header]
    for row in rows:
        if 'error' in row:
            lines.append((row['name'], 'ERROR: ' + row['error'], '', '', '', '', ''))
            continue
        lines.append((row['name'], _fmt(row['params'], 1e6, 2), _fmt(row['paper_params'], 1e6, 2),
                      _pct(row['params_rel']), _fmt(row['flops'], 1e9, 3),
                      _fmt(row['paper_flops'], 1e9, 2), _pct(row['flops_rel'])))
    widths = [max(len(line[i]) for line in lines if not line[1].startswith('ERROR') or i == 0)
              for i in range(len(header))]
    out = []
    for line in lines:
        if line[1].startswith('ERROR'):
            out.append(f'{line[0]:<{widths[0]}}  {line[1]}')
        else:
            out.append('  '.join(cell.ljust(w) if i == 0 else cell.rjust(w)
                                 for i, (cell, w) in enumerate(zip(line, widths))))
    return '\n'.join(out)


def off_paper(row):
    """True when a measured figure is further than the tolerance from the paper's."""
    return any(rel is not None and abs(rel) > complexity.PAPER_TOLERANCE
               for rel in (row.get('params_rel'), row.get('flops_rel')))


def main(argv=None):
    args = parse_args(argv)
    targets = []
    for target in args.targets:
        targets.extend(complexity.PAPER_TABLE if target == 'all' else [target])
    rows = []
    for target in targets:
        try:
            rows.append(measure(target, args.input_size))
        except Exception as error:  # one broken row must not hide the others
            rows.append(dict(name=target, error=f'{type(error).__name__}: {error}'.split('\n')[0]))
    print(format_table(rows))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)
    failed = [row['name'] for row in rows if 'error' in row]
    off = [row['name'] for row in rows if 'error' not in row and off_paper(row)]
    if failed:
        print(f'could not measure: {", ".join(failed)}', file=sys.stderr)
    if args.check and off:
        print(f'more than {100 * complexity.PAPER_TOLERANCE:.0f}% off the paper: '
              f'{", ".join(off)}', file=sys.stderr)
    return 1 if failed or (args.check and off) else 0


if __name__ == '__main__':
    sys.exit(main())
