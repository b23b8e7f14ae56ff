"""Adaptively connected conv and ACNet backbone: numerics against plain-torch
references, gates, ResNet conventions, paper-table params, configs."""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convdense.ops.adaptive_conv import AdaptiveConv2d

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


# ---------------------------------------------------------------- operator --
def _reference_adaptive(layer, x):
    """The three branches and the gate predictor, written out literally
    (explicit per-sample pooling, broadcast global map, concatenation)."""
    stride, padding, dilation = (layer.local_branch.stride, layer.local_branch.padding,
                                 layer.local_branch.dilation)
    local = F.conv2d(x, layer.local_branch.weight, stride=stride, padding=padding,
                     dilation=dilation)
    own = F.conv2d(x, layer.self_branch.weight, stride=stride)
    pooled = torch.stack([sample.reshape(sample.shape[0], -1).mean(1) for sample in x])
    hidden = pooled @ layer.global_fc1.weight.T + layer.global_fc1.bias
    glob = hidden.clamp(min=0) @ layer.global_fc2.weight.T + layer.global_fc2.bias
    glob = glob[:, :, None, None].expand_as(local)
    if layer.mode == 'dataset':
        gates = torch.softmax(layer.gate_logits, 0).view(1, 3, 1, 1)
    else:
        both = torch.cat([local, glob], dim=1)
        hidden = F.relu(F.conv2d(both, layer.gate_hidden.weight))
        gates = torch.softmax(F.conv2d(hidden, layer.gate_out.weight, layer.gate_out.bias), 1)
    return gates[:, 0:1] * own + gates[:, 1:2] * local + gates[:, 2:3] * glob


@pytest.mark.parametrize('mode', ['dataset', 'pixel'])
@pytest.mark.parametrize('stride,dilation', [(1, 1), (2, 1), (1, 2)])
def test_adaptive_conv_matches_reference(mode, stride, dilation):
    torch.manual_seed(0)
    layer = AdaptiveConv2d(6, 8, 3, stride=stride, padding=dilation, dilation=dilation,
                           mode=mode).double()
    if mode == 'dataset':
        nn.init.normal_(layer.gate_logits)
    x = torch.randn(2, 6, 11, 14, dtype=torch.double)
    out = layer(x)
    assert out.shape == (2, 8, math.ceil(11 / stride), math.ceil(14 / stride))
    torch.testing.assert_close(out, _reference_adaptive(layer, x))


def _force(layer, branch):
    """Make the gate of ``branch`` (0 self, 1 local, 2 global) exactly 1."""
    logits = torch.full((3, ), -1e4)
    logits[branch] = 1e4
    with torch.no_grad():
        if layer.mode == 'dataset':
            layer.gate_logits.copy_(logits)
        else:
            layer.gate_out.weight.zero_()
            layer.gate_out.bias.copy_(logits)


@pytest.mark.parametrize('mode', ['dataset', 'pixel'])
def test_beta_forced_to_one_is_the_local_conv(mode):
    torch.manual_seed(0)
    layer = AdaptiveConv2d(8, 8, 3, stride=2, padding=1, mode=mode)
    _force(layer, 1)
    x = torch.randn(2, 8, 13, 9)
    plain = nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False)
    plain.weight.data.copy_(layer.local_branch.weight)
    torch.testing.assert_close(layer(x), plain(x))
    gates = layer.last_gates
    assert torch.all(gates[..., 1] == 1) if mode == 'dataset' else torch.all(gates[:, 1] == 1)


def test_alpha_and_gamma_forced_give_self_and_global_branches():
    torch.manual_seed(0)
    layer = AdaptiveConv2d(4, 6, 3, padding=1)
    x = torch.randn(2, 4, 7, 5)
    _force(layer, 0)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.self_branch.weight))
    _force(layer, 2)
    out = layer(x)
    assert torch.allclose(out, out[..., :1, :1].expand_as(out))  # constant over the map
    expected = layer.global_fc2(F.relu(layer.global_fc1(x.mean((2, 3)))))
    torch.testing.assert_close(out[..., 0, 0], expected)


def test_gates_do_not_depend_on_input_size():
    torch.manual_seed(0)
    dataset = AdaptiveConv2d(4, 4, 3, padding=1, mode='dataset')
    nn.init.normal_(dataset.gate_logits)
    pixel = AdaptiveConv2d(4, 4, 3, padding=1, mode='pixel')
    shapes = []
    for size in ((5, 7), (32, 19)):
        x = torch.randn(1, 4, *size)
        dataset(x)
        pixel(x)
        shapes.append(pixel.last_gates.shape)
        torch.testing.assert_close(dataset.last_gates, torch.softmax(dataset.gate_logits, 0))
        torch.testing.assert_close(pixel.last_gates.sum(1), torch.ones(1, *size))
    assert shapes == [(1, 3, 5, 7), (1, 3, 32, 19)]


def test_plain_conv_state_dict_loads_into_local_branch():
    plain = nn.Conv2d(4, 4, 3, padding=1, bias=False)
    layer = AdaptiveConv2d(4, 4, 3, padding=1)
    missing, unexpected = layer.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and 'local_branch.weight' not in missing
    assert torch.equal(layer.local_branch.weight, plain.weight)


def test_adaptive_conv_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode must be one of .*'channel'"):
        AdaptiveConv2d(4, 4, mode='channel')
    with pytest.raises(ValueError, match='odd kernel and "same" padding'):
        AdaptiveConv2d(4, 4, 3, padding=0)


# ---------------------------------------------------------------- backbone --
def _build(**cfg):
    from convdense.registry import MODELS
    model = MODELS.build(dict(type='ACNet', depth=50, **cfg))
    model.train()  # mmdet's ResNet.train returns None, so no chained .eval()
    return model


@pytest.mark.parametrize('mode', ['dataset', 'pixel'])
@pytest.mark.parametrize('size', [(64, 64), (97, 131)])
def test_outputs_have_resnet_strides_and_widths(mode, size):
    model = _build(mode=mode)
    model.eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    assert len(outs) == 4
    for i, out in enumerate(outs):
        stride = 2 ** (i + 2)
        assert out.shape == (1, 256 * 2 ** i, math.ceil(size[0] / stride),
                             math.ceil(size[1] / stride)), (i, out.shape)


@pytest.mark.parametrize('mode', ['dataset', 'pixel'])
def test_last_gates_cover_every_block(mode):
    model = _build(mode=mode)
    model.eval()
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 96))
    gates = model.last_gates()
    assert len(gates) == 16 and 'layer3.5' in gates
    if mode == 'dataset':
        assert gates['layer1.0'].shape == (3, )
    else:
        assert gates['layer1.0'].shape == (2, 3, 16, 24)
        assert gates['layer4.2'].shape == (2, 3, 2, 3)


def test_frozen_stages_and_norm_eval():
    model = _build(frozen_stages=1, norm_eval=True)
    model.train()
    for name in ('conv1', 'bn1', 'layer1'):
        assert not any(p.requires_grad for p in getattr(model, name).parameters()), name
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert all(not m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    before = model.layer2[0].bn2.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(before, model.layer2[0].bn2.running_mean)


@pytest.mark.parametrize('mode', ['dataset', 'pixel'])
def test_gradient_reaches_every_parameter(mode):
    torch.manual_seed(0)
    model = _build(mode=mode, norm_eval=False)
    outs = model(torch.randn(2, 3, 64, 64))
    sum(o.square().mean() for o in outs).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing, missing


def test_resnet_checkpoint_loads_into_local_branches(tmp_path):
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    resnet = ResNet(depth=50)
    path = str(tmp_path / 'resnet50.pth')
    torch.save(resnet.state_dict(), path)
    model = _build(init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    torch.testing.assert_close(model.layer3[2].conv2.local_branch.weight,
                               resnet.layer3[2].conv2.weight)
    torch.testing.assert_close(model.layer3[2].conv3.weight, resnet.layer3[2].conv3.weight)
    torch.testing.assert_close(model.layer1[0].downsample[1].running_var,
                               resnet.layer1[0].downsample[1].running_var)


def test_rejects_unsupported_options():
    with pytest.raises(ValueError, match='mode must be one of'):
        _build(mode='image')
    with pytest.raises(ValueError, match='does not support dcn'):
        _build(dcn=dict(type='DCNv2', deform_groups=1))


# ------------------------------------------------------------- paper table --
@pytest.mark.parametrize('row', ['acnet50_dataset', 'acnet50_pixel'])
def test_paper_table_params(row):
    from convdense.models.complexity import PAPER_TOLERANCE, compare_with_paper
    result = compare_with_paper(row)
    assert abs(result['params_rel']) < PAPER_TOLERANCE, result
    # The reading documented in convdense.ops.adaptive_conv is closer than that.
    assert abs(result['params_rel']) < 0.003, result


# ----------------------------------------------------------------- configs --
@pytest.mark.parametrize('config,registry', [
    ('configs/mask_rcnn/mask-rcnn_acnet-50_fpn_1x_coco.py', 'mmdet'),
    ('configs/segmentation/upernet_acnet-50_ade20k.py', 'mmseg'),
])
def test_config_builds_and_runs_backbone(config, registry):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(osp.join(REPO, config))
    assert cfg.model.backbone.type == 'convdense.ACNet'
    init_default_scope(registry)
    if registry == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    from mmengine.model import revert_sync_batchnorm
    model = revert_sync_batchnorm(MODELS.build(cfg.model))  # as a 1-process Runner does
    model.eval()
    from convdense.models.backbones.acnet import ACNet
    assert isinstance(model.backbone, ACNet)
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(1, 3, 64, 96))
    assert len(feats) >= 4
