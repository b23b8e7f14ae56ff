"""What ``tools/train.py`` and ``tools/test.py`` share: loading a config with
clear errors, and building mmengine's Runner for mmdet, mmseg or convdense
configs alike (the config's ``default_scope`` picks the registries).

Errors a user can fix (a missing file, a misspelt key, a remote checkpoint that
cannot be downloaded) are raised as :class:`ConfigError` with a one-line
message; the tools print it and exit with status 2.
"""
import os
import os.path as osp

from mmengine.config import Config, DictAction  # noqa: F401  (DictAction for the tools)

from . import compat
from .errors import DataError, UserError


class ConfigError(UserError, ValueError):
    """A problem in a config or its command-line overrides, stated in one line."""


def _has_path(cfg, dotted):
    node = cfg._cfg_dict if isinstance(cfg, Config) else cfg
    for part in dotted.split('.'):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def check_override_keys(cfg, overrides):
    """Reject ``--cfg-options`` whose parent key does not exist in the config.

    A new leaf under an existing dict is allowed (``model.backbone.frozen_stages``
    may be absent from a base and still be a valid argument); a misspelt parent
    (``model.backbon.depth``) is not, because mmengine would silently create it.
    """
    for key in overrides or {}:
        parent = key.rsplit('.', 1)[0] if '.' in key else None
        if parent is not None and not _has_path(cfg, parent):
            raise ConfigError(f"unknown config key '{parent}' (from --cfg-options {key}=...)")


def load_config(path, overrides=None, work_dir=None):
    """Load ``path``, apply ``--cfg-options`` overrides and pick a work dir."""
    if not osp.isfile(path):
        raise ConfigError(f'config file not found: {path}')
    try:
        cfg = Config.fromfile(path)
    except FileNotFoundError as exc:
        raise ConfigError(f'{path}: a file it names does not exist: {exc}') from exc
    except (SyntaxError, KeyError) as exc:
        raise ConfigError(f'{path}: {type(exc).__name__}: {exc}') from exc
    if overrides:
        check_override_keys(cfg, overrides)
        cfg.merge_from_dict(overrides)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def set_schedule(cfg, iters, val_interval=None):
    """Give ``cfg`` a schedule of ``iters`` iterations with the config's shape: the
    warm-up is kept (capped at a tenth of the run), later scheduler milestones and
    ends are scaled; validation (and best-checkpoint saving) every ``val_interval``."""
    if iters < 1:
        raise ValueError(f'iters must be positive, got {iters}')
    old = cfg.train_cfg.max_iters
    val_interval = val_interval or iters
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = val_interval
    for scheduler in cfg.param_scheduler:
        if scheduler.get('begin', 0) == 0 and scheduler.get('end', old) < old:  # warm-up
            scheduler['end'] = max(1, min(scheduler['end'], iters // 10))
            continue
        for key in ('begin', 'end'):
            if scheduler.get(key):
                scheduler[key] = round(scheduler[key] * iters / old)
        if 'T_max' in scheduler:
            scheduler['T_max'] = round(scheduler['T_max'] * iters / old)
        if 'milestones' in scheduler:
            scheduler['milestones'] = [round(m * iters / old) for m in scheduler['milestones']]
    cfg.default_hooks.checkpoint.interval = val_interval
    cfg.default_hooks.logger.interval = max(1, min(cfg.default_hooks.logger.interval, iters // 10))
    return cfg


def fetch_checkpoints(cfg):
    """Download the remote checkpoints ``cfg`` names (``torchvision://``,
    ``open-mmlab://``, ``http(s)://``) into mmengine's cache before the run, each
    network wait bounded (see :mod:`convdense.remote_checkpoints`)."""
    from . import remote_checkpoints
    try:
        return remote_checkpoints.fetch_remote_checkpoints(cfg)
    except remote_checkpoints.RemoteCheckpointError as exc:
        raise ConfigError(str(exc)) from exc


def is_remote(path):
    """Whether ``path`` is a checkpoint URL mmengine would download."""
    return bool(compat.REMOTE_CHECKPOINT.match(path))


def fetch_checkpoint(url, what):
    """One remote checkpoint (a command-line argument), downloaded as :func:`fetch_checkpoints` does."""
    from . import remote_checkpoints
    try:
        return remote_checkpoints.fetch(url, what)
    except remote_checkpoints.RemoteCheckpointError as exc:
        raise ConfigError(str(exc)) from exc


def prepare_launcher(cfg, launcher):
    """Set the launcher and, on CPU-only torch, a DDP wrapper that works there."""
    import torch
    cfg.launcher = launcher
    if launcher != 'none' and not torch.cuda.is_available():
        cfg.model_wrapper_cfg = compat.cpu_ddp_wrapper_cfg(cfg)
        env_cfg = cfg.setdefault('env_cfg', {})
        dist_cfg = env_cfg.setdefault('dist_cfg', {})
        if dist_cfg.get('backend', 'nccl') == 'nccl':
            dist_cfg['backend'] = 'gloo'
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = '0'


def enable_amp(cfg):
    """Switch the optimizer wrapper to mixed precision: with CUDA mmengine's
    ``AmpOptimWrapper`` (fp16, dynamic loss scaling), without it
    ``convdense.CpuAmpOptimWrapper`` (bf16 autocast on the CPU, no loss scaling;
    see :mod:`convdense.engine.amp`)."""
    import torch
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper in ('AmpOptimWrapper', 'CpuAmpOptimWrapper', 'convdense.CpuAmpOptimWrapper'):
        return
    if wrapper != 'OptimWrapper':
        raise ConfigError(f'--amp: optim_wrapper type {wrapper!r} is not OptimWrapper')
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    else:
        from .engine import amp  # noqa: F401  (registers the wrapper)
        cfg.optim_wrapper.type = 'convdense.CpuAmpOptimWrapper'
        cfg.optim_wrapper.dtype = 'bfloat16'


def _data_roots(node, key):
    """``(dotted key, data_root)`` of a dataloader's dataset and of any datasets it wraps."""
    if not isinstance(node, dict):
        return
    if isinstance(node.get('data_root'), str):
        yield f'{key}.data_root', node['data_root']
    if isinstance(node.get('dataset'), dict):
        yield from _data_roots(node['dataset'], f'{key}.dataset')
    for index, child in enumerate(node.get('datasets') or []):
        yield from _data_roots(child, f'{key}.datasets.{index}')


def check_data_roots(cfg):
    """Fail before anything is built when the ``data_root`` of a split the config runs
    (its dataloader and its ``{split}_cfg`` set) is a local folder that does not exist:
    the dataset would fail only after the model is built and the log is written."""
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader') if cfg.get(f'{split}_cfg') else None
        for key, root in _data_roots(loader.get('dataset') if loader else None,
                                     f'{split}_dataloader.dataset'):
            if root and '://' not in root and not osp.isdir(root):
                raise DataError(f'{root}: no such data folder ({key}); put the dataset there or '
                                f'set --cfg-options {key}=YOUR_FOLDER')


def enable_auto_scale_lr(cfg):
    """Turn on mmengine's linear learning-rate scaling (``Runner.scale_lr``: the
    optimizer's lr times world size x batch size / ``auto_scale_lr.base_batch_size``)."""
    auto = cfg.get('auto_scale_lr')
    if not isinstance(auto, dict) or auto.get('base_batch_size') is None:
        raise ConfigError('--auto-scale-lr: the config sets no auto_scale_lr.base_batch_size '
                          '(the total batch size its learning rate is meant for)')
    auto['enable'] = True


def build_runner(cfg):
    """mmengine's Runner, or the config's ``runner_type`` if it names one, after
    :func:`check_data_roots`."""
    check_data_roots(cfg)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    from mmengine.visualization import Visualizer
    visualizer = cfg.get('visualizer')
    if visualizer is not None and Visualizer.check_instance_created(visualizer.get('name', '')):
        # Upstream configs name their visualizer 'visualizer'; a second run in the
        # same process would get the first run's instance back, save_dir included.
        visualizer.pop('name')
    try:
        if 'runner_type' in cfg:
            return RUNNERS.build(cfg)
        return Runner.from_cfg(cfg)
    except KeyError as exc:
        # mmengine raises KeyError('X is not in the Y registry ...') for unknown types
        raise ConfigError(f'{exc.args[0] if exc.args else exc}') from exc


def parse_with_common_options(parser, argv=None):
    """Add the options every tool shares (``--cfg-options``, ``--launcher``,
    ``--local-rank``) to ``parser`` and parse ``argv``."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def one_line(exc):
    """The message of ``exc`` as one line. A data loader worker re-raises a worker's
    exception with the worker's traceback in its message; its last line is the message."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else type(exc).__name__
    last = lines[-1]
    prefix = f'{type(exc).__name__}: '
    return last.split(prefix, 1)[1] if prefix in last else last


def run_cli(main):
    """Run a tool's ``main``; print a :class:`~convdense.errors.UserError` (a
    :class:`ConfigError`, a :class:`~convdense.errors.DataError`) as one line and exit 2.
    Any other exception is a bug and keeps its traceback."""
    import sys
    try:
        main()
    except UserError as exc:
        print(f'error: {one_line(exc)}', file=sys.stderr)
        sys.exit(2)
    except TypeError as exc:
        if 'unexpected keyword argument' in str(exc):
            print(f'error: unknown config key: {exc}', file=sys.stderr)
            sys.exit(2)
        raise
