"""Adaptively connected conv and ACNet backbone: numerics against plain-torch
references, gates, ResNet conventions, paper-table params, configs."""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convdense.ops.adaptive_conv import AdaptiveConv2d

pytest.importorskip('mmdet.models')
pytest.importorskip('mmseg.models')

from tests.models import backbone_checks as checks  # noqa: E402

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


def test_folded_weight_follows_parameter_updates():
    """No cache: the dataset-mode forward folds the current parameters, with or
    without autograd (an optimizer's in-place update is seen at once)."""
    torch.manual_seed(0)
    layer = AdaptiveConv2d(4, 6, 3, padding=1)
    x = torch.randn(1, 4, 9, 7)
    with torch.no_grad():
        first = layer(x)
        layer.gate_logits.add_(torch.tensor([1.0, -1.0, 0.5]))  # in-place, like an optimizer
        layer.self_branch.weight.mul_(3.0)
        updated = layer(x)
    assert not torch.allclose(updated, first)
    torch.testing.assert_close(updated, _reference_adaptive(layer, x))
    torch.testing.assert_close(layer(x), updated)


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


@pytest.mark.parametrize('size,kernel,stride,dilation,pads', [
    (224, 7, 2, 1, (2, 3)), (112, 3, 2, 1, (0, 1)), (57, 3, 2, 1, (1, 1)),
    (56, 1, 2, 1, (0, 0)), (55, 3, 1, 1, (1, 1)), (56, 3, 1, 2, (2, 2))])
def test_tf_same_pads_follow_tensorflows_rule(size, kernel, stride, dilation, pads):
    """TF pads to an output of ``ceil(size / stride)``, the smaller half first."""
    from convdense.ops.padding import tf_same_pads
    assert tf_same_pads(size, kernel, stride, dilation) == pads
    effective = dilation * (kernel - 1) + 1
    assert (size + sum(pads) - effective) // stride + 1 == math.ceil(size / stride)


@pytest.mark.parametrize('mode', ['dataset', 'pixel'])
@pytest.mark.parametrize('size', [(10, 14), (11, 14), (11, 13)])
def test_tf_same_padding_pads_the_local_branch_only_on_even_sides(mode, size):
    """Reference: the local 3x3 stride-2 branch padded 0 / 1 on an even side, 1 / 1 on
    an odd one (TF "SAME"); the 1x1 self branch unpadded, as in the tensorpack graph."""
    torch.manual_seed(0)
    layer = AdaptiveConv2d(6, 8, 3, stride=2, padding=1, mode=mode,
                           strided_padding='tf_same').double()
    if mode == 'dataset':
        nn.init.normal_(layer.gate_logits)
    x = torch.randn(2, 6, *size, dtype=torch.double)
    pads = [size[1] % 2, 1, size[0] % 2, 1]  # [left, right, top, bottom]
    local = F.conv2d(F.pad(x, pads), layer.local_branch.weight, stride=2)
    own = F.conv2d(x, layer.self_branch.weight, stride=2)
    glob = layer.global_branch(x).expand_as(local)
    if mode == 'dataset':
        gates = torch.softmax(layer.gate_logits, 0).view(1, 3, 1, 1)
    else:
        gates = layer.predict_pixel_gates(local, glob[:, :, :1, :1])
    expected = gates[:, 0:1] * own + gates[:, 1:2] * local + gates[:, 2:3] * glob
    out = layer(x)
    torch.testing.assert_close(out, expected)
    symmetric = AdaptiveConv2d(6, 8, 3, stride=2, padding=1, mode=mode).double()
    symmetric.load_state_dict(layer.state_dict())
    assert torch.allclose(out, symmetric(x)) == (size == (11, 13))


def test_adaptive_conv_rejects_bad_arguments():
    with pytest.raises(ValueError, match="strided_padding must be one of .*'same'"):
        AdaptiveConv2d(4, 4, strided_padding='same')
    with pytest.raises(ValueError, match="mode must be one of .*'channel'"):
        AdaptiveConv2d(4, 4, mode='channel')
    with pytest.raises(ValueError, match='odd kernel and "same" padding'):
        AdaptiveConv2d(4, 4, 3, padding=0)


# ---------------------------------------------------------------- backbone --
ACNET50 = dict(type='convdense.ACNet', depth=50)
DET_CONFIG = osp.join(REPO, 'configs/mask_rcnn/mask-rcnn_acnet-50_fpn_1x_coco.py')
SEG_CONFIG = osp.join(REPO, 'configs/segmentation/upernet_acnet-50_ade20k.py')


def _build(**cfg):
    return checks.build(dict(ACNET50, **cfg))


@pytest.mark.parametrize('mode', ['dataset', 'pixel'])
@pytest.mark.parametrize('size', checks.ODD_SIZES[:2])
def test_outputs_have_resnet_strides_and_widths(mode, size):
    checks.assert_output_shapes(_build(mode=mode), size)


def test_out_indices_caffe_style_and_dilation():
    checks.assert_output_shapes(_build(out_indices=(1, 3), style='caffe'), (45, 61),
                                out_indices=(1, 3))
    dilated = _build(mode='pixel', strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4))
    checks.assert_output_shapes(dilated, (64, 64), strides=(4, 8, 8, 8))


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


@pytest.mark.parametrize('frozen_stages', [0, 2])
def test_frozen_stages(frozen_stages):
    checks.assert_frozen_stages(_build(frozen_stages=frozen_stages, norm_eval=False),
                                frozen_stages)


def test_norm_eval():
    checks.assert_norm_eval(_build(norm_eval=True))


@pytest.mark.parametrize('mode', ['dataset', 'pixel'])
def test_every_parameter_gets_a_gradient(mode):
    torch.manual_seed(0)
    backbone = _build(mode=mode, norm_eval=False, zero_init_residual=False)
    backbone.init_weights()
    checks.assert_all_params_get_grad(backbone)


def test_zero_init_residual_zeroes_norm3():
    backbone = _build()
    backbone.init_weights()
    assert all(block.norm3.weight.abs().sum() == 0
               for layer in backbone.res_layers for block in getattr(backbone, layer))
    assert backbone.layer1[0].norm2.weight.abs().sum() > 0


def test_loads_a_local_prefixed_checkpoint(tmp_path):
    checks.assert_loads_prefixed_checkpoint(ACNET50, tmp_path)


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


@pytest.mark.parametrize('size', [(64, 96), (45, 61)])
def test_tf_same_padding_keeps_resnet_strides_and_pads_the_stem(size):
    """Same output shapes; on even sides the stem conv sees the image padded 2 / 3
    and the max-pool 0 / 1 (TF "SAME"), checked on a stem-only network."""
    tf_same = _build(strided_padding='tf_same', zero_init_residual=False).eval()
    checks.assert_output_shapes(tf_same, size)
    image = torch.randn(1, 3, *size)
    with torch.no_grad():
        stem = tf_same.relu(tf_same.norm1(F.conv2d(
            F.pad(image, [2 + size[1] % 2, 3, 2 + size[0] % 2, 3]), tf_same.conv1.weight,
            stride=2)))
        height, width = stem.shape[-2:]
        pooled = F.max_pool2d(F.pad(stem, [width % 2, 1, height % 2, 1], value=float('-inf')),
                              3, 2)
        torch.testing.assert_close(tf_same.layer1(pooled), tf_same(image)[0])


def test_rejects_unsupported_options():
    with pytest.raises(ValueError, match="strided_padding must be one of .* got 'tf'"):
        _build(strided_padding='tf')
    with pytest.raises(ValueError, match="'tf_same' needs the plain 7x7 stem"):
        _build(strided_padding='tf_same', deep_stem=True)
    with pytest.raises(ValueError, match='mode must be one of'):
        _build(mode='image')
    with pytest.raises(ValueError, match='does not support dcn'):
        _build(dcn=dict(type='DCNv2', deform_groups=1))


@pytest.mark.parametrize('mode,current_scope', [('pixel', None), ('dataset', 'mmseg')])
def test_visualize_gates_tool_writes_a_png(mode, current_scope, tmp_path):
    """The tool builds ACNet whichever default scope an earlier mmseg/mmdet run
    in the same process left current (CI once failed on exactly that)."""
    import contextlib

    from mmengine.registry import DefaultScope
    from PIL import Image

    from tests.helpers.e2e import load_tool
    image = tmp_path / 'image.png'
    Image.fromarray((torch.rand(50, 70, 3) * 255).byte().numpy()).save(image)
    scope = (DefaultScope.overwrite_default_scope(current_scope) if current_scope
             else contextlib.nullcontext())
    with scope:
        out = load_tool('visualize_acnet_gates').main(
            [str(image), '--mode', mode, '--size', '96', '--out', str(tmp_path / 'gates.png')])
    with Image.open(out) as png:
        assert png.size[0] > 100 and png.size[1] > 100


# ------------------------------------------------------------- paper table --
@pytest.mark.parametrize('row', ['acnet50_dataset', 'acnet50_pixel'])
def test_paper_table_params(row):
    from convdense.models.complexity import PAPER_TOLERANCE, compare_with_paper
    result = compare_with_paper(row)
    assert abs(result['params_rel']) < PAPER_TOLERANCE, result
    # The reading documented in convdense.ops.adaptive_conv is closer than that.
    assert abs(result['params_rel']) < 0.003, result


# ----------------------------------------------------------------- configs --
def test_configs_build_and_feed_their_heads():
    checks.assert_detector_config_works(DET_CONFIG, 'ACNet')
    checks.assert_segmentor_config_works(SEG_CONFIG, 'ACNet')


# Segmentation through the tools is covered once, with ResNet-50 (tests/tools/
# test_upstream_e2e.py); every backbone's segmentor config runs forward above.
@pytest.mark.parametrize('config,kind', [(DET_CONFIG, 'det')], ids=['mask-rcnn'])
def test_train_checkpoint_test_end_to_end(config, kind, tmp_path):
    checks.assert_end_to_end(config, kind, tmp_path)
