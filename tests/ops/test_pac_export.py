"""The PAC export path (convdense/ops/pac_export.py): the unfold formulation equals
the tiled engine and the per-tap kernel loop, it is what tracing and ONNX export
record, and an exported PAC network runs in onnxruntime at other sizes."""
import warnings
from unittest import mock

import onnxruntime
import pytest
import torch

from convdense.ops import pac, pac_kernel
from convdense.ops.pac import (PacConv2d, PacConvTranspose2d, PacPool2d, pac_conv2d,
                               pac_conv_transpose2d, pac_kernel2d, pac_pool2d)
from convdense.ops.inference import recording_graph
from tests.ops.test_pac import single_thread  # noqa: F401  (autouse: one thread for tiny ops)

RTOL = 1e-5


def as_if_exporting():
    """Both PAC dispatch points take the export path, outside any tracer."""
    stack = mock.patch.object(pac, 'recording_graph', lambda: True)
    kernel = mock.patch.object(pac_kernel, 'recording_graph', lambda: True)
    return stack, kernel


def both_paths(fn):
    expected = fn()
    stack, kernel = as_if_exporting()
    with stack, kernel:
        got = fn()
    return expected, got


def assert_close(expected, got):
    assert got.shape == expected.shape
    assert (got - expected).abs().max() <= RTOL * expected.abs().max()


KERNELS = [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=5, stride=2, padding=2, dilation=2, normalize=True, mask='mask'),
    dict(kernel_size=3, padding='same', channel_wise=True, kernel_type='inv_1_2'),
    dict(kernel_size=(3, 5), stride=(1, 2), padding=(1, 2), kernel_type='inv_0.5_1'),
    dict(kernel_size=5, stride=2, padding=2, output_padding=1, transposed=True, normalize=True,
         mask='mask'),
]


@pytest.mark.parametrize('options', KERNELS)
def test_unfolded_kernel_equals_the_tap_loop(options):
    torch.manual_seed(0)
    guide = torch.randn(2, 3, 10, 12)
    options = dict(options)
    if options.get('mask') == 'mask':
        in_size = (5, 6) if options.get('transposed') else (10, 12)
        options['mask'] = (torch.rand(2, 1, *in_size) > 0.3).float()
    assert_close(*both_paths(lambda: pac_kernel2d(guide, **options)))


def test_unfolded_kernel_normalises_windows_whose_valid_taps_are_all_far_in_guide_space():
    """A masked window whose known taps all lie 20 away in guide space: each float32
    Gaussian underflows to 0, so only a kernel taken relative to the window's nearest
    known tap gives the float64 answer (here uniform over the 8 known taps) on both paths."""
    guide = torch.zeros(1, 1, 5, 5)
    guide[0, 0, 2, 2] = 20.0
    mask = torch.ones(1, 1, 5, 5)
    mask[0, 0, 2, 2] = 0
    expected, got = both_paths(lambda: pac_kernel2d(guide, 3, padding=1, normalize=True,
                                                    mask=mask))
    reference = torch.full((3, 3), 1 / 8)
    reference[1, 1] = 0
    torch.testing.assert_close(got[0, 0, :, :, 2, 2], reference)
    assert_close(expected, got)


@pytest.mark.parametrize('stride, padding, dilation', [(1, 1, 1), (2, 2, 2), (1, 'same', 1)])
@pytest.mark.parametrize('channel_wise', [False, True])
def test_unfolded_conv_and_pool_equal_the_tiled_engine(stride, padding, dilation, channel_wise):
    torch.manual_seed(1)
    x, guide = torch.randn(2, 4, 9, 11), torch.randn(2, 4, 9, 11)
    kernel = pac_kernel2d(guide, 3, stride, padding, dilation, normalize=True,
                          channel_wise=channel_wise)
    weight, bias = torch.randn(5, 4, 3, 3), torch.randn(5)
    assert_close(*both_paths(lambda: pac_conv2d(x, kernel, weight, bias, stride, padding,
                                                dilation)))
    assert_close(*both_paths(lambda: pac_pool2d(x, kernel, 3, stride, padding, dilation)))


@pytest.mark.parametrize('shared', [False, True])
def test_unfolded_transposed_conv_equals_the_tiled_engine(shared):
    torch.manual_seed(2)
    up = PacConvTranspose2d(4, 4 if shared else 3, 5, stride=2, padding=2, output_padding=1,
                            shared_filters=shared, kernel_type='inv_1_1')
    x, guide = torch.randn(2, 4, 5, 6), torch.randn(2, 2, 10, 12)
    assert_close(*both_paths(lambda: up(x, guide)))
    kernel = up.compute_kernel(guide)
    assert_close(*both_paths(lambda: pac_conv_transpose2d(
        x, kernel, up.weight, up.bias, 2, 2, 1, shared_filters=shared)))


def test_tracing_records_the_export_path():
    conv = PacConv2d(4, 6, 3, padding=1).eval()
    x, guide = torch.randn(1, 4, 8, 10), torch.randn(1, 2, 8, 10)
    assert not recording_graph()
    seen = []
    original = pac.pac_unfolded

    def spy(*args):
        seen.append(recording_graph())
        return original(*args)

    with mock.patch.object(pac, 'pac_unfolded', spy), warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        traced = torch.jit.trace(conv, (x, guide))
    assert seen and all(seen)  # every recorded call (trace and its check run)
    kinds = {node.kind() for node in traced.inlined_graph.nodes()}
    assert 'prim::PythonOp' not in kinds and 'aten::im2col' in kinds
    with torch.no_grad():
        assert_close(conv(x, guide), traced(x, guide))


class PacStack(torch.nn.Module):
    """An inverse-kernel conv, then a channel-wise pooling, each adapted by the guide
    (the transposed conv is exported by the upsampler tests in tests/tools)."""

    def __init__(self):
        super().__init__()
        self.conv = PacConv2d(4, 2, 3, padding=1, kernel_type='inv_1_1')
        self.pool = PacPool2d(3, stride=2, padding=1, channel_wise=True)

    def forward(self, x, guide):
        return self.pool(self.conv(x, guide), guide)


def test_onnx_export_with_dynamic_size_matches_pytorch(tmp_path):
    torch.manual_seed(3)
    model = PacStack().eval()
    height, width = torch.export.Dim('h', min=3), torch.export.Dim('w', min=3)
    dynamic = {'x': {2: height, 3: width}, 'guide': {2: height, 3: width}}
    path = str(tmp_path / 'pac.onnx')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(model, (torch.randn(1, 4, 8, 10), torch.randn(1, 2, 8, 10)), path,
                          dynamo=True, opset_version=18, input_names=['x', 'guide'],
                          dynamic_shapes=dynamic, external_data=False, optimize=False,
                          verbose=False)
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    for h, w in ((8, 10), (13, 7)):
        inputs = (torch.randn(1, 4, h, w), torch.randn(1, 2, h, w))
        got = session.run(None, {'x': inputs[0].numpy(), 'guide': inputs[1].numpy()})[0]
        with torch.no_grad():
            expected = model(*inputs)
        assert_close(expected, torch.from_numpy(got))
