"""The deploy A/B benchmark's ONNX Runtime profile sums kernel time per op type;
timings are its output, never a test's assertion."""
import copy

import pytest
import torch
from torch import nn

from tests.helpers.e2e import load_script


@pytest.fixture(scope='module')
def ab():
    return load_script('benchmarks/bench_deploy_ab.py')


def test_op_type_profile_sums_kernel_time_per_op(ab, tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()).eval()
    path = str(tmp_path / 'tiny.onnx')
    with torch.no_grad():
        torch.onnx.export(copy.deepcopy(model), (torch.randn(1, 3, 16, 16),), path, dynamo=True,
                          input_names=['image'])
    profile = ab.op_type_profile(path, {'image': torch.randn(1, 3, 16, 16).numpy()}, threads=1)
    assert 'Conv' in profile and all(ms >= 0 for ms in profile.values())
