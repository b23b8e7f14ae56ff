"""The deploy A/B benchmark's ONNX Runtime profile sums kernel time per op type and
counts each convolution's work from its shapes; timings are its output, never a
test's assertion."""
import copy

import pytest
import torch
from torch import nn

from tests.helpers.e2e import load_script


@pytest.fixture(scope='module')
def ab():
    return load_script('benchmarks/bench_deploy_ab.py')


def _profiled(ab, model, channels, path):
    """ONNX Runtime's profiled nodes of ``model`` exported for a ``(1, channels, 16, 16)`` image."""
    with torch.no_grad():
        torch.onnx.export(copy.deepcopy(model), (torch.randn(1, channels, 16, 16),), path, dynamo=True,
                          input_names=['image'])
    return ab.profiled_nodes(path, {'image': torch.randn(1, channels, 16, 16).numpy()}, threads=1)


def test_op_type_profile_sums_kernel_time_per_op(ab, tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()).eval()
    profile = ab.op_type_profile(*_profiled(ab, model, 3, str(tmp_path / 'tiny.onnx')))
    assert 'Conv' in profile and all(ms >= 0 for ms in profile.values())


def test_conv_kernel_profile_counts_each_kernel_size_work(ab, tmp_path):
    """A 3x3 and a 1x1 conv on 16x16 maps, channels a multiple of every ORT block size:
    the profile's GMAC per kernel size are the layers' multiply-accumulates."""
    model = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 16, 1)).eval()
    profile = ab.conv_kernel_profile(*_profiled(ab, model, 16, str(tmp_path / 'two.onnx')))
    by_size = {}
    for kind, entry in profile.items():
        size = kind.split()[0]
        by_size[size] = by_size.get(size, 0.0) + entry['gmac']
        assert entry['nodes'] == 1 and entry['ms'] >= 0
    assert by_size == pytest.approx({'3x3': 32 * 16 * 16 * 16 * 9 / 1e9, '1x1': 16 * 16 * 16 * 32 / 1e9}, rel=1e-3)
