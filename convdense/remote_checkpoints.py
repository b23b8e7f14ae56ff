"""Remote checkpoints in a config (``torchvision://``, ``open-mmlab://``,
``mmcls://``, ``http(s)://``), downloaded before training with a bounded wait.

mmengine downloads such a checkpoint only when the model's weights are
initialised, through ``torch.hub`` with no socket timeout: on a closed network
the run hangs there. :func:`fetch_remote_checkpoints` resolves each URL with
mmengine's own tables and downloads it into the same cache mmengine reads
(``torch.hub.get_dir()/checkpoints``, i.e. ``$TORCH_HOME/hub/checkpoints``), each
socket operation bounded by ``CONVDENSE_DOWNLOAD_TIMEOUT`` seconds (default
:data:`DEFAULT_TIMEOUT`). mmengine then loads the cached file; a cached file is
never downloaded again, so a second run needs no network. A failure is one line
naming the config key and the URL.
"""
import os
import os.path as osp
import socket
import urllib.error
from urllib.parse import urlparse

from .compat import find_remote_checkpoints

DEFAULT_TIMEOUT = 30.0
TIMEOUT_ENV = 'CONVDENSE_DOWNLOAD_TIMEOUT'


class RemoteCheckpointError(ValueError):
    """A remote checkpoint that cannot be resolved or downloaded, in one line."""


def download_timeout():
    """Seconds a download may wait for any one network operation."""
    value = os.environ.get(TIMEOUT_ENV)
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        timeout = float(value)
    except ValueError:
        timeout = -1
    if not 0 < timeout < float('inf'):
        raise RemoteCheckpointError(f'{TIMEOUT_ENV}={value!r}: expected a positive number of seconds')
    return timeout


def _table_entry(table, name, scheme):
    if name not in table:
        raise RemoteCheckpointError(f"mmengine knows no {scheme} checkpoint named '{name}'")
    return table[name]


def resolve(url):
    """The ``http(s)://`` URL (or, for an ``open-mmlab://`` name mapped to a file,
    the local path) that mmengine's ``CheckpointLoader`` loads for ``url``."""
    from mmengine.runner import checkpoint as ckpt
    if url.startswith(('torchvision://', 'modelzoo://')):
        scheme = url[:url.index('://') + 3]
        return _table_entry(ckpt.get_torchvision_models(), url[len(scheme):], scheme)
    if url.startswith(('open-mmlab://', 'openmmlab://')):
        scheme = url[:url.index('://') + 3]
        name = url[len(scheme):]
        name = ckpt.get_deprecated_model_names().get(name, name)
        target = _table_entry(ckpt.get_external_models(), name, scheme)
        if target.startswith(('http://', 'https://')):
            return target
        return osp.join(ckpt._get_mmengine_home(), target)
    if url.startswith('mmcls://'):
        return _table_entry(ckpt.get_mmcls_models(), url[len('mmcls://'):], 'mmcls://')
    if url.startswith(('http://', 'https://')):
        return url
    raise RemoteCheckpointError(f'{url}: mmengine cannot download this scheme before the run')


def cache_path(http_url):
    """Where ``torch.hub.load_state_dict_from_url`` (mmengine's ``load_url``) keeps ``http_url``."""
    import torch.hub
    return osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(urlparse(http_url).path))


def _reason(exc):
    if isinstance(exc, urllib.error.HTTPError):
        return f'HTTP {exc.code} {exc.reason}'
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return 'no answer'
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def download(http_url, timeout=None, check_hash=False):
    """Download ``http_url`` into the hub cache unless it is there; return the path.

    Every connect and read waits at most ``timeout`` seconds. With ``check_hash``
    the file name's hash (``name-<sha256 prefix>.pth``, torchvision's and
    OpenMMLab's convention) is checked, as torchvision does for its weights.
    """
    import torch.hub
    timeout = download_timeout() if timeout is None else timeout
    path = cache_path(http_url)
    if osp.isfile(path):
        return path
    os.makedirs(osp.dirname(path), exist_ok=True)
    match = torch.hub.HASH_REGEX.search(osp.basename(path)) if check_hash else None
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        torch.hub.download_url_to_file(http_url, path, match.group(1) if match else None,
                                       progress=False)
    except (OSError, RuntimeError) as exc:
        # torch writes to a temporary '.partial' file and renames it at the end:
        # a failed download leaves nothing under the cached name
        reason = _reason(exc)
        if reason == 'no answer':
            reason += f' (waited {timeout:g} s; {TIMEOUT_ENV} sets the wait)'
        raise RemoteCheckpointError(reason) from exc
    finally:
        socket.setdefaulttimeout(previous)
    return path


def _downloads_here():
    """Whether this process downloads: all but the first process of a node skip it
    (mmengine's loader downloads on rank 0 and the others read the cache after a barrier)."""
    local = os.environ.get('SLURM_LOCALID') if 'SLURM_PROCID' in os.environ else None
    return (local or os.environ.get('LOCAL_RANK') or '0') == '0'


def fetch(url, what, timeout=None):
    """Resolve and download one remote checkpoint; return its local path.
    ``what`` names it in the error (e.g. ``config key 'model.backbone.init_cfg.checkpoint'``).
    A name from mmengine's tables has its file's hash checked."""
    target = None
    try:
        target = resolve(url)
        if not target.startswith(('http://', 'https://')):
            return target
        return download(target, timeout, check_hash=target != url)
    except RemoteCheckpointError as exc:
        via = f' (= {target})' if target not in (None, url) else ''
        raise RemoteCheckpointError(f'{what}: cannot download {url}{via}: {exc}') from exc


def fetch_remote_checkpoints(cfg, timeout=None):
    """Download every remote checkpoint ``cfg`` names; return ``[(key, url, path)]``.

    Raises :class:`RemoteCheckpointError` naming the key and the URL when one
    cannot be resolved or downloaded.
    """
    remote = find_remote_checkpoints(cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg)
    if not _downloads_here():
        return []
    fetched = []
    for key, url in remote:
        try:
            fetched.append((key, url, fetch(url, f"config key '{key}'", timeout)))
        except RemoteCheckpointError as exc:
            raise RemoteCheckpointError(f'{exc}; set it to a local file or None') from exc
    return fetched
