"""Evaluate a checkpoint of any mmdet, mmseg or convdense config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR]
        [--cfg-options key=value ...] [--out FILE.json] [--deploy]

Prints the metrics of the config's ``test_evaluator`` and, with ``--out``, writes
them as JSON. CHECKPOINT may be a file or a URL (``https://``, ``torchvision://``,
``open-mmlab://``), downloaded first with each network wait bounded by
``CONVDENSE_DOWNLOAD_TIMEOUT`` seconds (default 30). Remote checkpoints in the
config's ``init_cfg`` are not needed for testing and are not downloaded.
``--deploy`` evaluates the model in deploy mode
(:func:`convdense.deploy.switch_to_deploy`, applied after the checkpoint loads).
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from convdense import launch  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a checkpoint')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file or URL')
    parser.add_argument('--work-dir', help='where the evaluation logs go')
    parser.add_argument('--show-dir', help='write visualised predictions here (mmdet: relative to '
                        'the run\'s timestamped log dir; mmseg: as given), as upstream tools do')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    parser.add_argument('--deploy', action='store_true',
                        help='evaluate the deployed (re-parameterised) model')
    return launch.parse_with_common_options(parser, argv)


def enable_show_dir(cfg, show_dir):
    """Turn on the task's visualization hook to save images, the way each
    upstream does it: mmdet's hook takes ``test_out_dir`` (relative to the run's
    log dir); mmseg's hook draws through the visualizer, whose ``save_dir`` is set."""
    import inspect

    from mmengine.registry import HOOKS
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise launch.ConfigError('--show-dir: the config has no default_hooks.visualization hook')
    with HOOKS.switch_scope_and_registry(cfg.get('default_scope')) as registry:
        hook_class = registry.get(hook['type'])
    hook['draw'] = True
    hook['interval'] = 1
    if 'test_out_dir' in inspect.signature(hook_class).parameters:
        hook['test_out_dir'] = show_dir
    elif cfg.get('visualizer') is not None:
        cfg.visualizer['save_dir'] = show_dir
    else:
        raise launch.ConfigError(f"--show-dir: don't know where {hook['type']} saves images")


def main(argv=None):
    args = parse_args(argv)
    checkpoint = args.checkpoint
    if launch.is_remote(checkpoint):
        checkpoint = launch.fetch_checkpoint(checkpoint, 'checkpoint')
    elif not osp.isfile(checkpoint):
        raise launch.ConfigError(f'checkpoint not found: {checkpoint}')
    cfg = launch.load_config(args.config, args.cfg_options, args.work_dir)
    launch.prepare_launcher(cfg, args.launcher)
    cfg.load_from = checkpoint
    cfg.resume = False
    if args.show_dir:
        enable_show_dir(cfg, args.show_dir)
    if args.deploy:
        cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [dict(type='convdense.DeployHook')]
    runner = launch.build_runner(cfg)
    metrics = runner.test()
    from mmengine.dist import is_main_process
    if args.out and is_main_process():  # every process has the metrics; one writes them
        with open(args.out, 'w') as f:
            json.dump({k: float(v) if isinstance(v, (int, float)) else v
                       for k, v in metrics.items()}, f, indent=2)
    return metrics


if __name__ == '__main__':
    launch.run_cli(main)
