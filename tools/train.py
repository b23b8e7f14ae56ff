"""Train any mmdet, mmseg or convdense config with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--cfg-options key=value ...] [--launcher none|pytorch|slurm]

The config's ``default_scope`` picks the registries, so upstream configs and
configs that inherit them work unchanged. Remote checkpoints the config names
(``torchvision://``, ``open-mmlab://``, ``http(s)://``) are downloaded first, each
network wait bounded by ``CONVDENSE_DOWNLOAD_TIMEOUT`` seconds (default 30).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from convdense import launch  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', help='mixed precision: fp16 autocast with loss scaling on CUDA, bf16 autocast on the CPU')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help="scale the learning rate by (processes x batch size) / the config's "
                             'auto_scale_lr.base_batch_size, as mmengine does')
    return launch.parse_with_common_options(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = launch.load_config(args.config, args.cfg_options, args.work_dir)
    launch.prepare_launcher(cfg, args.launcher)
    if args.amp:
        launch.enable_amp(cfg)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise launch.ConfigError(f'--resume checkpoint not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume
    if args.auto_scale_lr:
        launch.enable_auto_scale_lr(cfg)
    launch.check_data_roots(cfg)  # a missing dataset fails before a long download
    launch.fetch_checkpoints(cfg)
    runner = launch.build_runner(cfg)
    runner.train()


if __name__ == '__main__':
    launch.run_cli(main)
