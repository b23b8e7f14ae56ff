"""Remote checkpoints: downloaded into mmengine's cache with a bounded wait, or a
one-line error naming the config key and the URL. Every server here listens on
127.0.0.1; nothing leaves the machine."""
import functools
import hashlib
import http.server
import os
import os.path as osp
import socket
import threading
import time

import pytest
import torch
import torch.hub

from convdense import launch, remote_checkpoints

KEY = 'model.backbone.init_cfg.checkpoint'


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A fresh ``$TORCH_HOME``, so the hub cache starts empty."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    return tmp_path / 'torch_home' / 'hub' / 'checkpoints'


class _Server:
    """``http.server`` in a thread, serving ``root`` on 127.0.0.1; counts GETs."""

    def __init__(self, root):
        self.gets = 0
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                server.gets += 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ('127.0.0.1', 0), functools.partial(Handler, directory=str(root)))
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}'
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / 'served'
    root.mkdir()
    srv = _Server(root)
    srv.root = root
    yield srv
    srv.close()


@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def refused_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def tiny_resnet_state(seed=0):
    from mmdet.models.backbones import ResNet
    torch.manual_seed(seed)
    backbone = ResNet(depth=18, base_channels=8)
    for param in backbone.parameters():
        torch.nn.init.normal_(param)
    for name, buffer in backbone.named_buffers():
        if buffer.is_floating_point():
            buffer.uniform_(0.5, 1.5)
    return {k: v.clone() for k, v in backbone.state_dict().items()}


def serve_checkpoint(server, state, stem='tiny_r18'):
    """Save ``state`` under a torchvision-style name carrying its sha256 prefix."""
    path = server.root / f'{stem}.pth'
    torch.save(state, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    named = path.rename(server.root / f'{stem}-{digest}.pth')
    return f'{server.url}/{named.name}'


def write_config(tmp_path, url):
    config = tmp_path / 'mask_rcnn_tiny_r18.py'
    config.write_text(
        "_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'\n"
        'model = dict(\n'
        f"    backbone=dict(depth=18, base_channels=8, init_cfg=dict(type='Pretrained', checkpoint='{url}')),\n"
        '    neck=dict(in_channels=[8, 16, 32, 64]))\n')
    return str(config)


def one_line_config_error(cfg):
    with pytest.raises(launch.ConfigError) as info:
        launch.fetch_checkpoints(cfg)
    message = str(info.value)
    assert '\n' not in message
    return message


def test_download_into_the_hub_cache_then_the_model_gets_exactly_those_weights(tmp_path, hub,
                                                                               server):
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    state = tiny_resnet_state()
    url = serve_checkpoint(server, state)
    cfg = launch.load_config(write_config(tmp_path, url))

    fetched = launch.fetch_checkpoints(cfg)
    assert [(k, u) for k, u, _ in fetched] == [(KEY, url)]
    assert fetched[0][2] == str(hub / osp.basename(url)) and osp.isfile(fetched[0][2])
    assert server.gets == 1
    assert os.listdir(hub) == [osp.basename(url)]  # no partial file left beside it

    server.close()  # from here on, the network is gone: mmengine must read the cache
    assert launch.fetch_checkpoints(cfg)[0][2] == fetched[0][2]
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    model.init_weights()
    loaded = model.backbone.state_dict()
    assert loaded.keys() == state.keys()
    for name, value in state.items():
        assert torch.equal(loaded[name], value), name


def test_a_named_checkpoint_whose_hash_does_not_match_is_refused(hub, server, monkeypatch):
    """As torchvision does for its weights: a table's file name carries its sha256 prefix."""
    from mmengine.runner import checkpoint
    path = server.root / 'tiny_r18-00000000.pth'
    torch.save({'w': torch.ones(3)}, path)
    url = f'{server.url}/{path.name}'
    monkeypatch.setattr(checkpoint, 'get_torchvision_models', lambda: {'tiny_r18': url})
    message = one_line_config_error({'load_from': 'torchvision://tiny_r18'})
    assert "config key 'load_from'" in message and f'torchvision://tiny_r18 (= {url})' in message
    assert 'invalid hash value' in message
    assert not hub.exists() or os.listdir(hub) == []


def test_refused_port_is_a_one_line_error_naming_key_and_url(hub):
    url = f'http://127.0.0.1:{refused_port()}/resnet50-0676ba61.pth'
    message = one_line_config_error({'model': {'backbone': {'init_cfg': {'checkpoint': url}}}})
    assert f"config key '{KEY}'" in message and url in message
    assert 'refused' in message.lower()


def test_a_server_that_never_answers_fails_after_the_bounded_wait(hub, silent_port, monkeypatch):
    monkeypatch.setenv(remote_checkpoints.TIMEOUT_ENV, '1')
    url = f'http://127.0.0.1:{silent_port}/resnet50-0676ba61.pth'
    start = time.monotonic()
    message = one_line_config_error({'model': {'pretrained': url}})
    elapsed = time.monotonic() - start
    assert 0.9 <= elapsed < 10, elapsed
    assert "config key 'model.pretrained'" in message and url in message
    assert 'no answer (waited 1 s' in message


def test_default_timeout_and_bad_values(monkeypatch):
    monkeypatch.delenv(remote_checkpoints.TIMEOUT_ENV, raising=False)
    assert remote_checkpoints.download_timeout() == remote_checkpoints.DEFAULT_TIMEOUT
    for bad in ('0', '-3', 'soon', 'inf', 'nan'):
        monkeypatch.setenv(remote_checkpoints.TIMEOUT_ENV, bad)
        with pytest.raises(remote_checkpoints.RemoteCheckpointError, match='positive number'):
            remote_checkpoints.download_timeout()


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('a download was attempted')
    monkeypatch.setattr(torch.hub, 'urlopen', refuse)


def test_named_checkpoints_resolve_to_the_file_mmengine_loads(hub, no_network):
    """``torchvision://`` and ``open-mmlab://`` names go through mmengine's tables to
    the same cache file mmengine's loader reads: once cached, neither downloads."""
    from mmengine.runner.checkpoint import CheckpointLoader
    names = ['torchvision://resnet50', 'open-mmlab://resnet50_v1c']
    states = {}
    for i, name in enumerate(names):
        target = remote_checkpoints.resolve(name)
        assert target.startswith('https://')
        states[name] = {'marker': torch.full((2,), float(i))}
        path = remote_checkpoints.cache_path(target)
        os.makedirs(osp.dirname(path), exist_ok=True)
        torch.save(states[name], path)
    cfg = {'model': {'backbone': {'init_cfg': {'checkpoint': names[0]}}},
           'load_from': names[1]}
    fetched = launch.fetch_checkpoints(cfg)
    assert [(k, u) for k, u, _ in fetched] == [(KEY, names[0]), ('load_from', names[1])]
    for name in names:
        loaded = CheckpointLoader.load_checkpoint(name, map_location='cpu')
        assert torch.equal(loaded['marker'], states[name]['marker'])


def test_unknown_name_is_a_one_line_error(hub, no_network):
    message = one_line_config_error({'model': {'backbone': {'init_cfg': {
        'checkpoint': 'torchvision://resnet_nope'}}}})
    assert f"config key '{KEY}'" in message
    assert "no torchvision:// checkpoint named 'resnet_nope'" in message


def test_only_the_first_process_of_a_node_downloads(hub, no_network, monkeypatch):
    cfg = {'load_from': 'http://127.0.0.1:9/x.pth'}
    monkeypatch.setenv('LOCAL_RANK', '1')
    assert launch.fetch_checkpoints(cfg) == []
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setenv('SLURM_PROCID', '3')
    monkeypatch.setenv('SLURM_LOCALID', '1')
    assert launch.fetch_checkpoints(cfg) == []


def test_mmengines_own_loader_waits_no_longer_than_the_bound(hub, silent_port, monkeypatch):
    """Whatever builds a model without tools/train.py (a notebook, a demo script) loads
    through mmengine's CheckpointLoader; its http download is bounded too (compat fix 10)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    monkeypatch.setenv(remote_checkpoints.TIMEOUT_ENV, '1')
    url = f'http://127.0.0.1:{silent_port}/resnet50-0676ba61.pth'
    start = time.monotonic()
    with pytest.raises(remote_checkpoints.RemoteCheckpointError, match='no answer'):
        CheckpointLoader.load_checkpoint(url, map_location='cpu')
    assert time.monotonic() - start < 10


def test_mmengines_loader_reads_what_was_downloaded_once(hub, server):
    state = {'w': torch.arange(4.0)}
    url = serve_checkpoint(server, state)
    from mmengine.runner.checkpoint import CheckpointLoader
    for _ in range(2):
        loaded = CheckpointLoader.load_checkpoint(url, map_location='cpu')
        assert torch.equal(loaded['w'], state['w'])
    assert server.gets == 1
