"""The deploy A/B benchmark's pieces: the plain-kernel variant computes the same
outputs without a direct oneDNN call, and the ONNX Runtime profile sums kernel time
per op type; timings are its output, never a test's assertion."""
import copy

import pytest
import torch
from torch import nn

from convdense.ops.hetconv import HetConv2d
from convdense.ops.octconv import OctaveConv2d
from tests.helpers.e2e import load_script


@pytest.fixture(scope='module')
def ab():
    return load_script('benchmarks/bench_deploy_ab.py')


class _Layers(nn.Module):
    def __init__(self):
        super().__init__()
        self.octave = OctaveConv2d(8, 8, 3, 0.0, 0.5, padding=1)
        self.hetconv = HetConv2d(8, 8, 3, part=4)

    def forward(self, x):
        return self.octave(x)[0], self.hetconv(x)


def test_plain_kernels_same_outputs_and_no_direct_onednn_call(ab, monkeypatch):
    torch.manual_seed(0)
    model = _Layers().eval()
    for layer in (model.octave, model.hetconv):
        layer.switch_to_deploy()
    image = torch.randn(1, 8, 12, 10)
    expected = model(image)
    calls = []
    real = torch.mkldnn_convolution
    monkeypatch.setattr(torch, 'mkldnn_convolution', lambda *a: calls.append(1) or real(*a))
    model(image)
    assert calls  # the deployed layers call oneDNN directly ...
    calls.clear()
    got = ab.plain_kernels(model, image)
    assert not calls  # ... and the plain variant does not
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def test_op_type_profile_sums_kernel_time_per_op(ab, tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()).eval()
    path = str(tmp_path / 'tiny.onnx')
    with torch.no_grad():
        torch.onnx.export(copy.deepcopy(model), (torch.randn(1, 3, 16, 16),), path, dynamo=True,
                          input_names=['image'])
    profile = ab.op_type_profile(path, {'image': torch.randn(1, 3, 16, 16).numpy()}, threads=1)
    assert 'Conv' in profile and all(ms >= 0 for ms in profile.values())
