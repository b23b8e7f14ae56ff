"""Write comparison panels (guide, low-res, bicubic, JBU, model, ground truth, error) for a test set.

    python tools/visualize_upsampling.py CONFIG [CHECKPOINT] [--out-dir DIR] [--max-panels N]

Runs the config's test loop (same data, factor and metric as tools/test.py) with the
``JointUpsamplingPanelHook``; without CHECKPOINT the config's net runs untrained
(useful for the non-learned ``Bicubic``/``JBU`` configs).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from convdense import launch  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?')
    parser.add_argument('--out-dir', default='work_dirs/upsampling_panels', help='panels go to OUT_DIR/panels')
    parser.add_argument('--max-panels', type=int, default=8)
    args = parser.parse_args(argv)
    if args.checkpoint and not osp.isfile(args.checkpoint):
        raise launch.ConfigError(f'checkpoint not found: {args.checkpoint}')
    cfg = launch.load_config(args.config, None, args.out_dir)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    cfg.custom_hooks = [dict(type='JointUpsamplingPanelHook', max_panels=args.max_panels)]
    cfg.log_level = 'WARNING'
    metrics = launch.build_runner(cfg).test()
    print(', '.join(f'{k} {v:.4f}' for k, v in metrics.items()))
    print(f"panels in {osp.join(args.out_dir, 'panels')}")


if __name__ == '__main__':
    launch.run_cli(main)
