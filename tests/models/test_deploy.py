"""Deploy mode (``convdense.deploy``): every convdense layer and backbone, once
deployed, computes the exact model's function (float32, odd sizes, folded batch
norms included); a deployed model is inference-only, idempotent, and pickles,
deep-copies and loads its own state dict; ONNX Runtime on a deployed export
equals PyTorch; a deployed Mask R-CNN gives the exact model's detections."""
import copy
import math
import os.path as osp
import pickle

import pytest
import torch
from torch import nn

from convdense.ops.adaptive_conv import AdaptiveConv2d
from convdense.ops.hetconv import HetConv2d
from convdense.ops.octconv import OctaveConv2d

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SIZES = ((8, 8), (7, 9), (5, 12))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _random_norm(channels):
    norm = nn.BatchNorm2d(channels)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
    return norm.eval()


def _octave_input(layer, size, batch=2):
    in_high, in_low = layer.in_split
    x_high = torch.randn(batch, in_high, *size)
    if not in_low:
        return x_high
    return x_high, torch.randn(batch, in_low, *(math.ceil(s / 2) for s in size))


def _octave(alphas, stride, kernel, dilation=1, strided_downsample='conv'):
    def make():
        layer = OctaveConv2d(32, 24, kernel, *alphas, stride=stride,
                             padding=dilation * (kernel // 2), dilation=dilation, bias=True,
                             strided_downsample=strided_downsample)
        nn.init.uniform_(layer.bias, -1, 1)
        return layer, lambda size: _octave_input(layer, size)
    return make


def _hetconv(part, stride, bias=False, dilation=1):
    def make():
        layer = HetConv2d(16, 24, 3, part=part, stride=stride, dilation=dilation, bias=bias)
        if bias:
            nn.init.uniform_(layer.spatial.bias, -1, 1)
        return layer, lambda size: torch.randn(2, 16, *size)
    return make


def _acnet(mode, stride, strided_padding='symmetric'):
    def make():
        layer = AdaptiveConv2d(16, 24, 3, stride, 1, mode=mode, strided_padding=strided_padding)
        with torch.no_grad():
            for param in layer.parameters():
                param.normal_(0, 0.3)
        return layer, lambda size: torch.randn(2, 16, *size)
    return make


LAYERS = {
    **{f'octave_{a_in}_{a_out}_s{stride}_k{kernel}': _octave((a_in, a_out), stride, kernel)
       for a_in, a_out in ((0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 0.0), (0.25, 0.75))
       for stride in (1, 2) for kernel in (1, 3)},
    'octave_dilated': _octave((0.5, 0.5), 1, 3, dilation=2),
    'octave_avgpool_s2': _octave((0.0, 0.0), 2, 3, strided_downsample='avgpool'),
    **{f'hetconv_p{part}_s{stride}': _hetconv(part, stride, bias=part == 4)
       for part in (1, 2, 4) for stride in (1, 2)},
    'hetconv_dilated': _hetconv(4, 1, dilation=2),
    **{f'acnet_{mode}_s{stride}_{pad}': _acnet(mode, stride, pad)
       for mode in ('dataset', 'pixel') for stride in (1, 2)
       for pad in ('symmetric', 'tf_same')},
}


def _pairs(a, b):
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    assert len(a) == len(b)
    return zip(a, b)


def _assert_same(got, expected):
    for g, e in _pairs(got, expected):
        assert (g is None) == (e is None)
        if e is not None:
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_deployed_layer_equals_exact_layer(name):
    layer, inputs = LAYERS[name]()
    layer.eval()
    deployed = copy.deepcopy(layer).switch_to_deploy()
    assert deployed.deploy and not any(True for _ in deployed.parameters(recurse=False))
    for size in SIZES:
        x = inputs(size)
        with torch.no_grad():
            expected = layer(x)
        _assert_same(deployed(x), expected)


def _norms_for(layer):
    if isinstance(layer, OctaveConv2d):
        high, low = layer.out_split
        return (_random_norm(high), _random_norm(low) if low else None)
    return (_random_norm(layer.out_channels),)


@pytest.mark.parametrize('name', sorted(n for n in LAYERS if 'pixel' not in n))
def test_batch_norm_folds_into_the_deployed_layer(name):
    layer, inputs = LAYERS[name]()
    layer.eval()
    norms = _norms_for(layer)
    deployed = copy.deepcopy(layer).switch_to_deploy()
    deployed.fuse_norm(*norms)
    x = inputs(SIZES[1])
    with torch.no_grad():
        out = layer(x)
        out = out if isinstance(out, tuple) else (out,)
        expected = tuple(None if o is None else n(o) for o, n in zip(out, norms))
    _assert_same(deployed(x), expected if len(expected) > 1 else expected[0])


@pytest.mark.parametrize('name', ['octave_0.5_0.5_s1_k3', 'hetconv_p4_s1',
                                  'acnet_dataset_s1_symmetric', 'acnet_pixel_s2_tf_same'])
def test_deployed_layer_is_inference_only_idempotent_and_serialisable(name):
    layer, inputs = LAYERS[name]()
    layer.eval()
    deployed = copy.deepcopy(layer).switch_to_deploy()
    x = inputs(SIZES[1])
    expected = deployed(x)
    state = copy.deepcopy(deployed.state_dict())
    assert deployed.switch_to_deploy() is deployed  # idempotent: same buffers
    assert list(deployed.state_dict()) == list(state)
    with pytest.raises(RuntimeError, match='is deployed \\(inference only\\)'):
        deployed.train()
    deployed.eval()  # train(False) is fine
    for clone in (copy.deepcopy(deployed), pickle.loads(pickle.dumps(deployed))):
        _assert_same(clone(x), expected)
    fresh = copy.deepcopy(layer).switch_to_deploy()
    for value in fresh.state_dict().values():
        value.zero_()
    fresh.load_state_dict(state)
    _assert_same(fresh(x), expected)
    # backward through a deployed layer fails with the same one line
    first = x[0] if isinstance(x, tuple) else x
    first.requires_grad_(True)
    out = deployed(x)
    out = out[0] if isinstance(out, tuple) else out
    with pytest.raises(RuntimeError, match='is deployed \\(inference only\\)'):
        out.sum().backward()


def test_deployed_octave_layer_loads_no_training_checkpoint():
    layer = OctaveConv2d(8, 8, 3, 0.5, 0.5, padding=1)
    deployed = copy.deepcopy(layer).switch_to_deploy()
    with pytest.raises(RuntimeError, match='Missing key'):
        deployed.load_state_dict(layer.state_dict())


# ------------------------------------------------------------------ backbones --
pytest.importorskip('mmdet.models')

from tests.models import backbone_checks as checks  # noqa: E402

BACKBONES = {
    'oct-resnet': dict(type='convdense.OctResNet', depth=50),
    'oct-resnet-avgpool': dict(type='convdense.OctResNet', depth=50,
                               strided_downsample='avgpool'),
    'hetconv-resnet': dict(type='convdense.HetConvResNet', depth=50),
    'acnet-dataset': dict(type='convdense.ACNet', depth=50),
    'acnet-pixel': dict(type='convdense.ACNet', depth=50, mode='pixel'),
    'acnet-tf-same': dict(type='convdense.ACNet', depth=50, strided_padding='tf_same'),
    'res2net': dict(type='convdense.Res2Net', depth=50),
}


def _backbone(name, **overrides):
    model = checks.build(dict(BACKBONES[name], zero_init_residual=False, **overrides))
    model.init_weights()
    return checks.randomise_norms(model).eval()


@pytest.mark.parametrize('name', sorted(BACKBONES))
@pytest.mark.parametrize('size', [(64, 64), (61, 75)])
def test_deployed_backbone_equals_exact_backbone(name, size):
    """Whole backbone (random norms, so nothing is zero-initialised away), every
    batch norm folded. In float64 the deployed model is the exact model's function
    to 1e-10; in float32 it is as close to that float64 result as the float32
    exact model is (within 1e-5 of the largest output, or 3x the exact model's own
    float32 error where that is larger: the pixel-aware ACNet's random gates)."""
    from convdense.deploy import is_deployed
    model = _backbone(name)
    deployed = copy.deepcopy(model).switch_to_deploy()
    assert is_deployed(deployed) == (name != 'res2net')
    if name.startswith(('oct', 'hetconv', 'acnet-dataset', 'res2net')):
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in deployed.modules())
    x = torch.randn(1, 3, *size)
    model64 = copy.deepcopy(model).double()
    with torch.no_grad():
        expected = model(x)
        reference = model64(x.double())
    deployed64 = copy.deepcopy(model64).switch_to_deploy()(x.double())
    got = deployed(x)
    for g, e, r, g64 in zip(got, expected, reference, deployed64):
        scale = r.abs().max()
        torch.testing.assert_close(g64 / scale, r / scale, rtol=0, atol=1e-10)
        own_error = ((e.double() - r).abs().max() / scale).item()
        error = ((g.double() - r).abs().max() / scale).item()
        assert error <= max(1e-5, 3 * own_error), (error, own_error)


def test_deployed_backbone_refuses_training_and_round_trips():
    model = _backbone('oct-resnet', frozen_stages=1, norm_eval=True)
    deployed = copy.deepcopy(model).switch_to_deploy()
    with pytest.raises(RuntimeError, match='is deployed \\(inference only\\): train'):
        deployed.train()
    assert deployed.eval() is deployed
    x = torch.randn(1, 3, 45, 61)
    expected = deployed(x)
    again = pickle.loads(pickle.dumps(deployed))
    other = copy.deepcopy(model).switch_to_deploy()
    other.load_state_dict(again.state_dict())
    for model_ in (again, other, deployed.switch_to_deploy()):
        for g, e in zip(model_(x), expected):
            assert torch.equal(g, e)


def test_deployed_mask_rcnn_gives_the_exact_detections():
    """mmdet's own inference (``init_detector`` / ``inference_detector``, which
    call ``eval()``) on a randomly initialised digit-scene Mask R-CNN with an
    Oct-ResNet-50: every score kept (``score_thr=0``), the deployed model returns
    the exact model's labels, scores, boxes and masks."""
    import numpy as np
    from mmdet.apis import inference_detector, init_detector

    from convdense.deploy import switch_to_deploy
    config = osp.join(REPO, 'configs/digit_scenes/mask-rcnn_oct-resnet-50_fpn_digit-scenes.py')
    model = init_detector(config, None, device='cpu',
                          cfg_options={'model.test_cfg.rcnn.score_thr': 0.0})
    checks.randomise_norms(model.backbone)
    image = (np.random.RandomState(0).rand(128, 128, 3) * 255).astype(np.uint8)
    exact = inference_detector(model, image).pred_instances
    deployed_model = switch_to_deploy(copy.deepcopy(model))
    got = inference_detector(deployed_model, image).pred_instances
    assert len(exact) == len(got) == 20
    assert torch.equal(got.labels, exact.labels)
    torch.testing.assert_close(got.scores, exact.scores, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(got.bboxes, exact.bboxes, rtol=1e-4, atol=1e-3)
    assert (got.masks == exact.masks).float().mean() > 0.999
