"""Compatibility fixes between current torch/numpy and the OpenMMLab 2.x stack.

This is the only module that papers over version gaps; each fix is applied once,
on ``import convdense``, and each has a test in ``tests/test_compat.py`` showing
the failure it removes. Nothing here edits installed files: the fixes act on the
running interpreter only.

1. ``torch.load`` defaults to ``weights_only=True`` since torch 2.6, but mmengine
   0.10.7 saves numpy arrays, numpy scalars and its own ``HistoryBuffer`` in every
   checkpoint (the message hub), so ``--resume`` and ``load_from`` fail with
   ``Unsupported global: numpy._core...``. mmengine's local checkpoint loader
   now keeps the safe unpickler and allows exactly those types while it loads
   (instead of ``weights_only=False``, which would execute arbitrary pickles).
2. mmengine's ``init_dist`` for the ``pytorch`` and ``slurm`` launchers calls
   ``torch.cuda.set_device`` unconditionally, which raises on the CPU wheel, and
   upstream runtimes ask for the ``nccl`` backend. On a machine without CUDA we
   skip ``set_device`` and use ``gloo`` (the slurm path keeps mmengine's reading
   of ``SLURM_*`` into ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...).
3. The Runner's default DDP wrapper passes ``device_ids=[LOCAL_RANK]``, which
   DistributedDataParallel rejects for a CPU module; :func:`cpu_ddp_wrapper_cfg`
   gives the wrapper config to use instead.
4. mmengine's local file backend writes checkpoints (and ``last_checkpoint``) in
   place, so a run killed mid-write leaves a truncated ``iter_N.pth`` under the
   final name, which ``--resume`` then trips over. Writes now go to a temporary
   file in the same directory and are renamed over the target (atomic on POSIX).
5. Upstream base configs initialise backbones from ``torchvision://``,
   ``open-mmlab://`` or ``http(s)://`` checkpoints, which mmengine downloads with
   no timeout (a closed network hangs the run); :func:`find_remote_checkpoints`
   lists them so :mod:`convdense.remote_checkpoints` downloads them first, with a
   bounded wait and a one-line error naming the config key.
6. With ``max_keep_ckpts``, mmengine's ``CheckpointHook`` deletes the oldest
   checkpoint *before* writing the new one (so the kept-ids list stored in the new
   checkpoint is already up to date); with ``max_keep_ckpts=1`` a save that fails
   leaves no checkpoint at all. The hook's bookkeeping is kept as is, but the
   deletions it asks for are deferred until the new checkpoint is on disk; if
   saving raises they are dropped and the kept-ids list is restored.
7. PyPI's torchvision wheel is linked against the CUDA build of torch, so beside
   the CPU wheel its ``_C`` extension does not load; torchvision then skips its
   C++ ops, except two unguarded ``register_fake("torchvision::nms"/"qnms")``
   that make ``import torchvision`` (and so timm and pytorch-grad-cam) raise
   "operator torchvision::nms does not exist". When the extension cannot load,
   those two operators are declared here (schemas only), so torchvision, timm and
   pytorch-grad-cam import; ``torchvision.ops`` still reports its C++ ops missing.
8. Checkpoints carry the global random state, which a resumed run restores
   (:func:`resume_random_state`).
9. mmcv's CPU ``nms`` and ``roi_align`` kernels take float32 only; under CPU bf16
   autocast (``tools/train.py --amp``) a detector hands them bf16 scores and
   features. They now get float32 copies on the CPU (test in
   ``tests/reliability/test_amp.py``).
10. mmengine downloads ``http(s)://`` checkpoints (and the ``torchvision://`` /
    ``open-mmlab://`` names it maps to them) through ``torch.hub`` with no socket
    timeout, so a closed network hangs whatever builds a model from such a config.
    Its http loader now downloads through :func:`convdense.remote_checkpoints.download`
    first (the same cache file, every network wait bounded); ``tools/train.py``
    does this before building, to name the config key in its error.
"""
import functools
import os
import re

import numpy as np
import torch

_APPLIED = False


def _mmengine_checkpoint_globals():
    """What mmengine 0.10.7 pickles into a checkpoint besides tensors: numpy
    arrays and scalars, and ``HistoryBuffer`` (whose statistics methods are
    pickled as ``getattr(HistoryBuffer, 'mean')``)."""
    from mmengine.logging.history_buffer import HistoryBuffer
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    dtype_classes = [getattr(np.dtypes, name) for name in dir(np.dtypes)
                     if name.endswith('DType')]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype,
            *dtype_classes, HistoryBuffer, getattr]


def _load_local_mmengine_checkpoint(filename, map_location=None):
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    with torch.serialization.safe_globals(_mmengine_checkpoint_globals()):
        return torch.load(filename, map_location=map_location, weights_only=True)


def allow_mmengine_checkpoints_in_safe_load():
    """Let mmengine load its own checkpoints with torch's safe unpickler (fix 1).

    The extra allow-list is scoped to mmengine's local checkpoint loader (the
    ``''`` scheme of ``CheckpointLoader``), not added to ``torch.load`` globally.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=_load_local_mmengine_checkpoint,
                                     force=True)


def _init_dist_pytorch_cpu_aware(original, backend='nccl', init_backend='torch', **kwargs):
    if torch.cuda.is_available():
        return original(backend, init_backend=init_backend, **kwargs)
    if init_backend != 'torch':
        raise ValueError(f"init_backend={init_backend!r} needs CUDA; on CPU only 'torch' works")
    import torch.distributed as torch_dist
    if backend == 'nccl':
        backend = 'gloo'
    torch_dist.init_process_group(backend=backend, **kwargs)


def _init_dist_slurm_cpu_aware(original, backend='nccl', port=None, init_backend='torch',
                               **kwargs):
    if torch.cuda.is_available():
        return original(backend, port, init_backend=init_backend, **kwargs)
    if init_backend != 'torch':
        raise ValueError(f"init_backend={init_backend!r} needs CUDA; on CPU only 'torch' works")
    set_device = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        original('gloo' if backend == 'nccl' else backend, port, init_backend=init_backend, **kwargs)
    finally:
        torch.cuda.set_device = set_device


def make_init_dist_cpu_aware():
    """Patch mmengine's pytorch- and slurm-launcher initialisation for CPU-only torch (fix 2)."""
    from mmengine.dist import utils as dist_utils
    for name, wrapper in (('_init_dist_pytorch', _init_dist_pytorch_cpu_aware),
                          ('_init_dist_slurm', _init_dist_slurm_cpu_aware)):
        original = getattr(dist_utils, name)
        if getattr(original, '_convdense_cpu_aware', False):
            continue
        patched = functools.partial(wrapper, original)
        patched._convdense_cpu_aware = True
        setattr(dist_utils, name, patched)


def cpu_ddp_wrapper_cfg(cfg):
    """Return ``cfg.model_wrapper_cfg`` suited to a CPU-only distributed run (fix 3).

    The Runner passes ``device_ids=[LOCAL_RANK]`` as a default argument to any
    DistributedDataParallel wrapper; an explicit ``device_ids=None`` in the
    wrapper config overrides it. A user's own wrapper config keeps its settings.
    """
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        wrapper = dict(type='MMDistributedDataParallel', broadcast_buffers=False,
                       find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper = dict(wrapper)
    wrapper.setdefault('device_ids', None)
    return wrapper


REMOTE_CHECKPOINT = re.compile(r'^(torchvision|modelzoo|open-mmlab|openmmlab|mmcls|mmpretrain|https?)://')


def find_remote_checkpoints(cfg, prefix=''):
    """List ``(key, url)`` of every checkpoint in a config that would be downloaded (fix 5)."""
    found = []
    if isinstance(cfg, dict):
        items = cfg.items()
    elif isinstance(cfg, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(cfg))
    else:
        return found
    for key, value in items:
        path = f'{prefix}.{key}' if prefix else str(key)
        if isinstance(value, str) and REMOTE_CHECKPOINT.match(value) and (
                path.endswith(('checkpoint', 'pretrained', 'load_from'))):
            found.append((path, value))
        else:
            found.extend(find_remote_checkpoints(value, path))
    return found


def _atomic_write(filepath, data, mode, encoding=None):
    import tempfile
    directory = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(filepath) + '.', dir=directory)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def make_local_writes_atomic():
    """Route mmengine's LocalBackend writes through write-to-temp + rename (fix 4)."""
    from mmengine.fileio.backends.local_backend import LocalBackend
    if getattr(LocalBackend.put, '_convdense_atomic', False):
        return

    def put(self, obj, filepath):
        _atomic_write(str(filepath), obj, 'wb')

    def put_text(self, obj, filepath, encoding='utf-8'):
        _atomic_write(str(filepath), obj, 'w', encoding=encoding)

    put._convdense_atomic = put_text._convdense_atomic = True
    LocalBackend.put, LocalBackend.put_text = put, put_text


def _save_then_prune(original, hook, runner, step, meta):
    import copy
    backend = hook.file_backend
    deferred = []
    kept = copy.copy(getattr(hook, 'keep_ckpt_ids', None))
    backend.remove = lambda path: deferred.append((type(backend).remove, path))
    backend.rmtree = lambda path: deferred.append((type(backend).rmtree, path))
    try:
        original(hook, runner, step, meta)
    except BaseException:
        if kept is not None:  # the old checkpoint is still there: keep tracking it
            hook.keep_ckpt_ids = kept
            runner.message_hub.update_info('keep_ckpt_ids', list(kept))
        raise
    finally:
        del backend.remove, backend.rmtree  # back to the class methods
    for remove, path in deferred:  # only reached once the new checkpoint is saved
        remove(backend, path)


def prune_checkpoints_after_saving():
    """Make ``CheckpointHook`` delete old checkpoints only after saving the new one (fix 6)."""
    from mmengine.hooks import CheckpointHook
    original = CheckpointHook._save_checkpoint_with_step
    if getattr(original, '_convdense_save_first', False):
        return

    @functools.wraps(original)
    def save_checkpoint_with_step(self, runner, step, meta):
        _save_then_prune(original, self, runner, step, meta)

    save_checkpoint_with_step._convdense_save_first = True
    CheckpointHook._save_checkpoint_with_step = save_checkpoint_with_step


def capture_random_state():
    """The global random state of python, numpy, torch and (if initialised) CUDA (fix 8)."""
    import random
    state = dict(python=random.getstate(), numpy=np.random.get_state(),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state):
    """Set the global random state saved by :func:`capture_random_state`."""
    import random
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class _RestoreRandomStateAfterReplay:
    """Wraps a train loop's data iterator: passes ``replayed`` batches through
    (mmengine's skip of already-trained batches), then restores ``state`` just
    before the first new batch and puts the loop's own iterator back."""

    def __init__(self, loop, replayed, state):
        self.loop, self.inner, self.replayed, self.state = loop, loop.dataloader_iterator, replayed, state

    def __iter__(self):
        return self

    def __next__(self):
        if self.replayed == 0:
            restore_random_state(self.state)
            self.loop.dataloader_iterator = self.inner
        else:
            self.replayed -= 1
        return next(self.inner)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _save_checkpoint_with_random_state(original, runner, *args, **kwargs):
    import inspect
    call = inspect.signature(original).bind(runner, *args, **kwargs)
    call.arguments['meta'] = dict(call.arguments.get('meta') or {},
                                  random_state=capture_random_state())
    return original(*call.args, **call.kwargs)


def _resume_with_random_state(original, runner, *args, **kwargs):
    loaded = []
    load_checkpoint = runner.load_checkpoint

    def load_and_keep(*load_args, **load_kwargs):
        loaded.append(load_checkpoint(*load_args, **load_kwargs))
        return loaded[-1]

    runner.load_checkpoint = load_and_keep
    try:
        result = original(runner, *args, **kwargs)
    finally:
        del runner.load_checkpoint  # back to the class method
    runner._convdense_resumed_random_state = loaded[-1].get('meta', {}).get('random_state')
    return result


def _train_loop_run_restoring_random_state(original, loop):
    state = getattr(loop.runner, '_convdense_resumed_random_state', None)
    loop.runner._convdense_resumed_random_state = None
    if state is not None:
        if hasattr(loop, 'dataloader_iterator'):  # IterBasedTrainLoop replays loop._iter batches
            loop.dataloader_iterator = _RestoreRandomStateAfterReplay(loop, loop._iter, state)
        else:  # EpochBasedTrainLoop starts a fresh epoch
            restore_random_state(state)
    return original(loop)


def _validation_keeping_random_state(original, loop):
    state = capture_random_state()
    try:
        return original(loop)
    finally:
        restore_random_state(state)


def _wrap(owner, name, replacement):
    """Replace ``owner.name`` by ``replacement(original, *args, **kwargs)``, once."""
    original = getattr(owner, name)
    if getattr(original, '_convdense_wrapped', False):
        return

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        return replacement(original, *args, **kwargs)

    wrapper._convdense_wrapped = True
    setattr(owner, name, wrapper)


def resume_random_state():
    """Fix 8: mmengine's resume restores iteration, optimizer, schedulers and the
    sampler seed, and ``IterBasedTrainLoop`` replays the loader up to the resumed
    iteration, but the global random state is not saved, so after a resume Mask
    R-CNN's RoI sampling (and any random op) draws other numbers than the
    uninterrupted run. Checkpoints now carry it in ``meta['random_state']``; the
    resumed loop restores it just before its first new batch (after the replay,
    whose augmentations consume numpy's state), and validation keeps it, so a
    resumed run that skips a validation stays in step."""
    from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop, Runner, ValLoop
    _wrap(Runner, 'save_checkpoint', _save_checkpoint_with_random_state)
    _wrap(Runner, 'resume', _resume_with_random_state)
    _wrap(IterBasedTrainLoop, 'run', _train_loop_run_restoring_random_state)
    _wrap(EpochBasedTrainLoop, 'run', _train_loop_run_restoring_random_state)
    _wrap(ValLoop, 'run', _validation_keeping_random_state)


_TORCHVISION_LIBRARY = None


def declare_torchvision_ops_if_extension_missing():
    """Declare ``torchvision::nms`` and ``qnms`` when torchvision's C++ extension
    cannot load (see fix 7); returns whether they were declared. A no-op when torchvision is
    absent, already imported, or its extension loads."""
    global _TORCHVISION_LIBRARY
    import importlib.util
    import sys
    if _TORCHVISION_LIBRARY is not None or 'torchvision' in sys.modules:
        return False
    spec = importlib.util.find_spec('torchvision')
    if spec is None or not spec.submodule_search_locations:
        return False
    extension = [os.path.join(folder, name) for folder in spec.submodule_search_locations
                 for name in os.listdir(folder) if name.startswith('_C.') and name.endswith('.so')]
    try:
        for path in extension:
            torch.ops.load_library(path)
        if extension:
            return False
    except (ImportError, OSError):
        pass
    library = torch.library.Library('torchvision', 'DEF')
    for name in ('nms', 'qnms'):
        library.define(f'{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    _TORCHVISION_LIBRARY = library
    return True


_HALF_DTYPES = (torch.float16, torch.bfloat16)


def _half_on_cpu(*tensors):
    return any(torch.is_tensor(t) and t.device.type == 'cpu' and t.dtype in _HALF_DTYPES
               for t in tensors)


def _nms_in_float(original, ctx, bboxes, scores, *args):
    if _half_on_cpu(bboxes, scores):
        bboxes, scores = bboxes.float(), scores.float()
    return original(ctx, bboxes, scores, *args)


def _roi_align_in_float(original, module, features, rois):
    if _half_on_cpu(features, rois):
        return original(module, features.float(), rois.float()).to(features.dtype)
    return original(module, features, rois)


def run_mmcv_cpu_kernels_in_float():
    """Fix 9: mmcv's CPU ``nms`` and ``roi_align`` kernels take float32 only, so
    a detector trained under CPU bf16 autocast (``tools/train.py --amp``) failed
    with "expected scalar type Float but found BFloat16" (bf16 scores, bf16 FPN
    features). On the CPU they now get float32 copies; RoIAlign returns the
    caller's dtype. CUDA inputs (whose kernels take fp16) are untouched."""
    from mmcv.ops import RoIAlign
    from mmcv.ops.nms import NMSop
    _wrap(NMSop, 'forward', _nms_in_float)
    _wrap(RoIAlign, 'forward', _roi_align_in_float)


def _load_from_http_bounded(original, filename, map_location=None, model_dir=None, **kwargs):
    if model_dir is None and os.environ.get('LOCAL_RANK', '0') == '0':
        from .remote_checkpoints import download
        download(filename)  # into the file torch.hub's loader reads; a cached one is kept
    return original(filename, map_location=map_location, model_dir=model_dir, **kwargs)


def bound_checkpoint_downloads():
    """Fix 10: mmengine's http(s) checkpoint loader downloads with a bounded wait.
    The first process of a node downloads; mmengine's own rank-0 download and
    barrier then find the file cached."""
    from mmengine.runner import checkpoint as ckpt
    original = ckpt.load_from_http
    if getattr(original, '_convdense_bounded', False):
        return
    patched = functools.update_wrapper(functools.partial(_load_from_http_bounded, original),
                                       original)  # mmengine logs the loader's __name__
    patched._convdense_bounded = True
    ckpt.load_from_http = patched  # load_from_torchvision / openmmlab / mmcls call it by name
    ckpt.CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), loader=patched,
                                          force=True)


def apply():
    """Apply every fix once; safe to call repeatedly."""
    global _APPLIED
    if _APPLIED:
        return
    allow_mmengine_checkpoints_in_safe_load()
    make_init_dist_cpu_aware()
    make_local_writes_atomic()
    prune_checkpoints_after_saving()
    declare_torchvision_ops_if_extension_missing()
    resume_random_state()
    run_mmcv_cpu_kernels_in_float()
    bound_checkpoint_downloads()
    _APPLIED = True


if os.environ.get('CONVDENSE_NO_COMPAT') != '1':
    apply()
