"""Params and FLOPs of compound-scaled backbones per phi, beside what the scaling rule predicts.

    python tools/analysis/scale_sweep.py all --phi 0 1 2 3 --table3 \\
        --out benchmarks/results/scale_sweep.json
    python tools/analysis/scale_sweep.py res2net50_26w4s --phi 0 1 2

Each BACKBONE is a row name of ``convdense.models.complexity.PAPER_TABLE``
(``all``: ResNet-50, Res2Net-50, Oct-ResNet-50, HetConv-ResNet-50, ACNet-50) or a
config file (its ``model.backbone``). For each phi the backbone is scaled by
:func:`convdense.models.scaling.compound_scale` and counted as an ImageNet
classifier (backbone + pool + fc-1000) at ``--size`` x ``gamma**phi`` (rounded to
a multiple of 32) by mmengine's FlopAnalyzer
(:func:`convdense.models.complexity.classifier_complexity`). Beside the measured
FLOPs ratio to phi = 0 stand the nominal ``(alpha * beta**2 * gamma**2)**phi``,
the product ``depth * width**2 * resolution**2`` of the factors left after
rounding (blocks, base channels and image side over phi = 0's), and the same
product with the depth factor counted in FLOPs (the added blocks' multiply-adds:
a stage's strided first block is never repeated), the *realised* product.
Percentages are the measured ratio's distance to each.

``--table3`` also counts ResNet-50 at the multipliers nearest EfficientNet's
Table 3 (compound-scaled ResNet-50, 16.7 GFLOPs) under three roundings and names
the closest.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from convdense.models import complexity, scaling  # noqa: E402

#: The five ResNet-family backbones ``all`` sweeps (PAPER_TABLE rows, default arguments).
ALL = ('resnet50', 'res2net50_26w4s', 'oct-resnet50_a0.5', 'hetconv-resnet50_p4',
       'acnet50_dataset')

#: EfficientNet Table 3: ResNet-50 compound-scaled (d=1.4, w=1.2, r=1.3) at 16.7 GFLOPs.
TABLE3_FLOPS = 16.7e9
#: (label, compound_scale keywords) of the multipliers tried against Table 3.
TABLE3_MULTIPLIERS = (
    ('phi=2 (1.2, 1.1, 1.15)', dict(phi=2)),
    ('Table 3 (d, w, r) = (1.4, 1.2, 1.3)', dict(phi=1, alpha=1.4, beta=1.2, gamma=1.3)),
)
#: (label, depth rounding, width divisor, image-side divisor).
TABLE3_ROUNDINGS = (
    ('EfficientNet: ceil blocks, widths /8, side /32', 'ceil', 8, 32),
    ('nearest blocks, widths /8, side /32', 'nearest', 8, 32),
    ('nearest blocks, nearest int width and side', 'nearest', 1, 1),
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('backbones', nargs='+', help="PAPER_TABLE row names, 'all', or configs")
    parser.add_argument('--phi', type=float, nargs='+', default=[0, 1, 2, 3])
    parser.add_argument('--size', type=int, default=224, help='image side at phi = 0 (224)')
    parser.add_argument('--alpha', type=float, default=1.2)
    parser.add_argument('--beta', type=float, default=1.1)
    parser.add_argument('--gamma', type=float, default=1.15)
    parser.add_argument('--table3', action='store_true',
                        help="also compare ResNet-50 roundings with EfficientNet's Table 3")
    parser.add_argument('--out', help='write the results to this JSON file')
    return parser.parse_args(argv)


def backbone_config(target):
    """``(name, backbone config, registry scope)`` of a PAPER_TABLE row or a config file."""
    if target in complexity.PAPER_TABLE:
        return target, complexity.PAPER_TABLE[target]['cfg'], 'mmdet'
    if target.endswith('.py'):
        if not osp.isfile(target):
            raise FileNotFoundError(f'config file not found: {target}')
        from mmengine.config import Config
        cfg = Config.fromfile(target)
        if 'model' not in cfg or 'backbone' not in cfg.model:
            raise ValueError(f'{target}: config has no model.backbone')
        return osp.basename(target), cfg.model.backbone.to_dict(), cfg.get('default_scope', 'mmdet')
    raise KeyError(f'{target!r} is neither a config file nor a PAPER_TABLE row '
                   f'({", ".join(complexity.PAPER_TABLE)})')


def measure(backbone_cfg, phi, size, scope='mmdet', size_divisor=scaling.SIZE_DIVISOR,
            by_module=False, **scale_kw):
    """Scale, count, and describe one point: a dict with the rounded depth, width
    and image side, their realised factors, ``params`` and ``flops``."""
    scaled = scaling.compound_scale(backbone_cfg, phi, scope=scope, **scale_kw)
    side = scaling.scale_size(size, scaled.resolution, size_divisor)
    counted = complexity.classifier_complexity(scaled.backbone, side, scope=scope,
                                               by_module=by_module)
    row = dict(phi=phi, stage_blocks=list(scaled.stage_blocks),
               base_channels=scaled.base_channels, input_size=side,
               depth=scaled.depth, width=scaled.width, resolution=side / size,
               params=counted['params'], flops=counted['flops'])
    if by_module:
        row['flops_by_module'] = counted['flops_by_module']
    return row


def flops_depth(reference, stage_blocks):
    """Depth factor in FLOPs: the model with ``stage_blocks`` over ``reference``
    (phi = 0, counted by module) at the same width and resolution. Added blocks
    repeat each stage's last block, so they cost what it costs; a stage's first
    block (stride, projection shortcut) is never repeated, which is why this is
    below the block-count factor."""
    by_module = reference['flops_by_module']
    added = sum((new - old) * by_module[f'backbone.layer{i + 1}.{old - 1}']
                for i, (old, new) in enumerate(zip(reference['stage_blocks'], stage_blocks)))
    return 1 + added / reference['flops']


def sweep(backbone_cfg, phis, size=224, scope='mmdet', alpha=1.2, beta=1.1, gamma=1.15):
    """One row per phi (phi = 0 is always counted, as the reference) with the
    measured ratios to phi = 0, the nominal ``(alpha * beta**2 * gamma**2)**phi``,
    the block-count product ``depth * width**2 * resolution**2`` and the realised
    product, whose depth factor is counted in FLOPs (:func:`flops_depth`)."""
    nominal = alpha * beta**2 * gamma**2
    phis = sorted(set(float(phi) for phi in phis) - {0.0})
    base = measure(backbone_cfg, 0.0, size, scope, by_module=True,
                   alpha=alpha, beta=beta, gamma=gamma)
    points = [base] + [measure(backbone_cfg, phi, size, scope, alpha=alpha, beta=beta, gamma=gamma)
                       for phi in phis]
    rows = []
    for point in points:
        row = {key: value for key, value in point.items() if key != 'flops_by_module'}
        row.update(flops_ratio=row['flops'] / base['flops'],
                   params_ratio=row['params'] / base['params'],
                   nominal=nominal**row['phi'],
                   block_product=row['depth'] * row['width']**2 * row['resolution']**2,
                   flops_depth=flops_depth(base, row['stage_blocks']))
        row['realised'] = row['flops_depth'] * row['width']**2 * row['resolution']**2
        for key in ('realised', 'block_product', 'nominal'):
            row[f'off_{key}'] = row['flops_ratio'] / row[key] - 1
        rows.append(row)
    return rows


def table3(size=224):
    """ResNet-50 at the Table-3-like multipliers under each rounding, and the closest."""
    resnet50 = complexity.PAPER_TABLE['resnet50']['cfg']
    rows = []
    for label, multipliers in TABLE3_MULTIPLIERS:
        for rounding, depth_round, divisor, size_divisor in TABLE3_ROUNDINGS:
            row = measure(resnet50, size=size, depth_round=depth_round, divisor=divisor,
                          size_divisor=size_divisor, **multipliers)
            rows.append(dict(row, multipliers=label, rounding=rounding,
                             off_table3=row['flops'] / TABLE3_FLOPS - 1))
    closest = min(rows, key=lambda row: abs(row['off_table3']))
    return dict(paper_flops=TABLE3_FLOPS, rows=rows,
                closest=dict(multipliers=closest['multipliers'], rounding=closest['rounding'],
                             flops=closest['flops'], off_table3=closest['off_table3']))


def format_rows(name, rows):
    lines = [f'## {name}',
             '| phi | blocks | base ch. | side | params (M) | GFLOPs | FLOPs ratio | '
             'realised d_F w^2 r^2 | blocks d w^2 r^2 | nominal 1.92^phi |',
             '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|']
    for row in rows:
        lines.append(f"| {row['phi']:g} | {'/'.join(map(str, row['stage_blocks']))} | "
                     f"{row['base_channels']} | {row['input_size']} | {row['params'] / 1e6:.2f} | "
                     f"{row['flops'] / 1e9:.3f} | {row['flops_ratio']:.3f} | "
                     + ' | '.join(f"{row[key]:.3f} ({100 * row['off_' + key]:+.1f} %)"
                                  for key in ('realised', 'block_product', 'nominal')) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    targets = []
    for target in args.backbones:
        targets.extend(ALL if target == 'all' else [target])
    results = dict(alpha=args.alpha, beta=args.beta, gamma=args.gamma, size=args.size,
                   size_divisor=scaling.SIZE_DIVISOR, backbones={})
    for target in targets:
        name, cfg, scope = backbone_config(target)
        rows = sweep(cfg, args.phi, args.size, scope, args.alpha, args.beta, args.gamma)
        results['backbones'][name] = dict(config=cfg, rows=rows)
        print(format_rows(name, rows), flush=True)
    if args.table3:
        results['table3'] = table3(args.size)
        closest = results['table3']['closest']
        print(f"Table 3 (16.7 GFLOPs): closest {closest['multipliers']}, {closest['rounding']}: "
              f"{closest['flops'] / 1e9:.2f} GFLOPs ({100 * closest['off_table3']:+.1f} %)")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
