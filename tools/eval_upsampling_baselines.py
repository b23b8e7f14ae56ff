"""Evaluate bicubic, JBU and learned joint upsamplers side by side (the paper's Table 1/2).

    python tools/eval_upsampling_baselines.py CONFIG \
        [--learned NAME CONFIG CHECKPOINT ...] [--work-dir DIR] [--out results.json]

CONFIG names the data and metric (any joint-upsampling config: its test set,
factor and evaluator are used); bicubic and JBU run on it through the same
Runner, test loop and metric as the learned models given with ``--learned``.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from convdense import launch  # noqa: E402

BASELINES = (('bicubic', 'Bicubic'), ('JBU', 'JBU'))


def count_parameters(cfg):
    from mmengine.registry import init_default_scope

    from convdense.registry import MODELS
    init_default_scope('convdense')
    return sum(p.numel() for p in MODELS.build(cfg.model.net).parameters())


def evaluate(config, work_dir, net=None, checkpoint=None, panels=True, quiet=True, overrides=None):
    """Run the config's test loop (optionally with another ``net`` or ``--cfg-options``-style
    ``overrides``) and return ``(metrics dict, parameter count)``."""
    cfg = launch.load_config(config, overrides, work_dir)
    if net is not None:
        factor = cfg.model.net.factor
        cfg.model.net = dict(type=net, factor=factor)  # values_scale_with_resolution is kept
    cfg.load_from = checkpoint
    cfg.resume = False
    if not panels:
        cfg.custom_hooks = []
    if quiet:
        cfg.log_level = 'WARNING'
    runner = launch.build_runner(cfg)
    metrics = runner.test()
    return {key: float(value) for key, value in metrics.items()}, count_parameters(cfg)


def format_table(rows, title=''):
    """rows: list of (method, params, {metric: value}) -> a Markdown table string."""
    metric_names = list(rows[0][2])
    lines = [title] if title else []
    lines.append('| method | params | ' + ' | '.join(_pretty(m) for m in metric_names) + ' |')
    lines.append('|---|---:|' + '---:|' * len(metric_names))
    for method, params, metrics in rows:
        lines.append(f'| {method} | {params:,} | ' + ' | '.join(f'{metrics[m]:.3f}' for m in metric_names) + ' |')
    return '\n'.join(lines)


def _pretty(metric):
    names = dict(rmse_cm='RMSE (cm)', rmse_px='RMSE (disparity px)', rmse_m='RMSE (m)', epe_px='EPE (px)')
    for group in ('sensor_like', 'clean'):  # DepthRMSE(sensor_like_holes=...)'s groups
        for key, name in list(names.items()):
            if key.startswith('rmse'):
                names[f'{key}_{group}'] = name.replace('RMSE', f"RMSE {group.replace('_', '-')}")
    return names.get(metric, metric)


def main(argv=None):
    parser = argparse.ArgumentParser(description='bicubic / JBU / learned joint upsamplers side by side')
    parser.add_argument('config', help='joint-upsampling config naming the test data and metric')
    parser.add_argument('--learned', nargs=3, action='append', default=[],
                        metavar=('NAME', 'CONFIG', 'CHECKPOINT'), help='a trained model to add')
    parser.add_argument('--work-dir', default='work_dirs/upsampling_baselines')
    parser.add_argument('--out', help='write the table as JSON here')
    args = parser.parse_args(argv)
    rows = []
    for name, net in BASELINES:
        metrics, params = evaluate(args.config, osp.join(args.work_dir, name), net=net, panels=False)
        rows.append((name, params, metrics))
    for name, config, checkpoint in args.learned:
        if not osp.isfile(checkpoint):
            raise launch.ConfigError(f'checkpoint not found: {checkpoint}')
        metrics, params = evaluate(config, osp.join(args.work_dir, name), checkpoint=checkpoint)
        rows.append((name, params, metrics))
    print(format_table(rows))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump([dict(method=m, params=p, **v) for m, p, v in rows], f, indent=2)


if __name__ == '__main__':
    launch.run_cli(main)
