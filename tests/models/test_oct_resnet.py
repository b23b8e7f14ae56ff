"""OctConv operator and Oct-ResNet backbone: numerics against plain-torch
references, ResNet conventions, paper-table complexity, configs."""
import copy
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convdense.ops.octconv import (OctaveConv2d, _add_resized, _pooled_cat, add_upsampled,
                                   add_upsampled_, downsample_by_two, merge_octave,
                                   octave_conv2d)

pytest.importorskip('mmdet.models')
pytest.importorskip('mmseg.models')

from tests.models import backbone_checks as checks  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


# ---------------------------------------------------------------- operator --
def _reference_pool(x):
    """2x2 mean over the pixels each window covers (ceil size), by loops."""
    n, c, h, w = x.shape
    out = torch.empty(n, c, math.ceil(h / 2), math.ceil(w / 2), dtype=x.dtype)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = x[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean(dim=(2, 3))
    return out


def _reference_upsample(x, size):
    return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)[..., :size[0], :size[1]]


def _reference_octave(x_high, x_low, weight, a_in, a_out, stride, padding):
    """The paper's four paths with separate nn.Conv2d layers."""
    c_out, c_in, k, _ = weight.shape
    in_low, out_low = int(a_in * c_in), int(a_out * c_out)
    in_high, out_high = c_in - in_low, c_out - out_low

    def conv(cin, cout, rows, cols, x):
        layer = nn.Conv2d(cin, cout, k, padding=padding, bias=False).double()
        layer.weight.data.copy_(weight[rows, cols])
        return layer(x)

    hi, hi_rows, lo_rows = slice(0, in_high), slice(0, out_high), slice(out_high, c_out)
    lo = slice(in_high, c_in)
    if stride == 2:
        x_high = _reference_pool(x_high)
    size = x_high.shape[-2:]
    y_high = conv(in_high, out_high, hi_rows, hi, x_high)
    y_low = conv(in_high, out_low, lo_rows, hi, _reference_pool(x_high)) if out_low else None
    if in_low:
        l2h = conv(in_low, out_high, hi_rows, lo, x_low)
        y_high = y_high + (l2h if stride == 2 else _reference_upsample(l2h, size))
        if out_low:
            y_low = y_low + conv(in_low, out_low, lo_rows, lo,
                                 _reference_pool(x_low) if stride == 2 else x_low)
    return y_high, y_low


@pytest.mark.parametrize('alphas', [(0.0, 0.5), (0.5, 0.5), (0.5, 0.0), (0.25, 0.75)])
@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('size', [(15, 12), (9, 13)])
@pytest.mark.parametrize('kernel', [1, 3])
def test_octave_conv_matches_four_path_reference(alphas, stride, size, kernel):
    torch.manual_seed(0)
    a_in, a_out = alphas
    layer = OctaveConv2d(16, 8, kernel, a_in, a_out, stride=stride, padding=kernel // 2).double()
    in_low = int(a_in * 16)
    x_high = torch.randn(2, 16 - in_low, *size, dtype=torch.double)
    x_low = torch.randn(2, in_low, *(math.ceil(s / 2) for s in size),
                        dtype=torch.double) if in_low else None
    y_high, y_low = layer((x_high, x_low) if in_low else x_high)
    ref_high, ref_low = _reference_octave(x_high, x_low, layer.weight.detach(),
                                          a_in, a_out, stride, kernel // 2)
    out_size = tuple(math.ceil(s / stride) for s in size)
    assert y_high.shape == (2, 8 - int(a_out * 8), *out_size)
    torch.testing.assert_close(y_high, ref_high)
    if a_out:
        assert y_low.shape[-2:] == tuple(math.ceil(s / 2) for s in out_size)
        torch.testing.assert_close(y_low, ref_low)
    else:
        assert y_low is None


@pytest.mark.parametrize('stride,dilation', [(1, 1), (2, 1), (1, 2)])
def test_octave_conv_alpha_zero_is_plain_conv(stride, dilation):
    torch.manual_seed(0)
    layer = OctaveConv2d(8, 12, 3, 0.0, 0.0, stride=stride, padding=dilation,
                         dilation=dilation, bias=True)
    x = torch.randn(2, 8, 17, 10)
    y_high, y_low = layer(x)
    assert y_low is None
    torch.testing.assert_close(y_high, F.conv2d(x, layer.weight, layer.bias, stride=stride,
                                                padding=dilation, dilation=dilation))


@pytest.mark.parametrize('alphas', [(0.0, 0.5), (0.5, 0.5), (0.5, 0.0), (0.25, 0.75)])
@pytest.mark.parametrize('stride,dilation', [(1, 1), (2, 1), (1, 2)])
@pytest.mark.parametrize('size', [(14, 12), (9, 13), (7, 7)])
@pytest.mark.parametrize('kernel', [1, 3])
def test_deployed_layer_matches_exact_layer(alphas, stride, dilation, size, kernel):
    """The deploy form (weight blocks per output frequency, oneDNN kernels,
    in-place upsample-add) gives the exact path's outputs, odd sides included."""
    torch.manual_seed(0)
    a_in, a_out = alphas
    padding = dilation * (kernel // 2)
    layer = OctaveConv2d(32, 24, kernel, a_in, a_out, stride=stride, padding=padding,
                         dilation=dilation, bias=True)
    in_low = int(a_in * 32)
    x_high = torch.randn(2, 32 - in_low, *size)
    x_low = torch.randn(2, in_low, *(math.ceil(s / 2) for s in size)) if in_low else None
    x = (x_high, x_low) if in_low else x_high
    exact = layer(x)
    deployed = copy.deepcopy(layer).switch_to_deploy()(x)
    for f, e in zip(deployed, exact):
        if e is None:
            assert f is None
        else:
            torch.testing.assert_close(f, e.detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('size', [(6, 8), (7, 8), (6, 9), (5, 5)])
def test_in_place_upsample_add_and_merge_give_the_same_numbers(size):
    high = torch.randn(2, 3, *size)
    low = torch.randn(2, 3, *(math.ceil(s / 2) for s in size))
    assert torch.equal(add_upsampled_(high.clone(), low), add_upsampled(high, low))
    assert torch.equal(add_upsampled(high, low), high + _reference_upsample(low, size))
    assert torch.equal(_add_resized(high, low), add_upsampled(high, low))
    assert torch.equal(merge_octave(high, low)[:, 3:], _reference_upsample(low, size))


@pytest.mark.parametrize('size', [(6, 8), (7, 8), (5, 5)])
def test_pooling_into_the_concatenated_buffer_gives_the_same_numbers(size):
    high = torch.randn(2, 3, *size)
    low = torch.randn(2, 4, *(math.ceil(s / 2) for s in size))
    pooled = F.avg_pool2d(high, 2, 2, ceil_mode=True)
    torch.testing.assert_close(downsample_by_two(high), pooled)
    buffer = torch.full((2, 7, *low.shape[-2:]), float('nan'))
    assert downsample_by_two(high, out=buffer[:, :3]).data_ptr() == buffer.data_ptr()
    torch.testing.assert_close(buffer[:, :3], pooled)
    for eager in (True, False):
        torch.testing.assert_close(_pooled_cat(high, low, eager), torch.cat([pooled, low], 1))
        torch.testing.assert_close(_pooled_cat(high, None, eager), pooled)


def test_octave_conv_bias_added_once_per_output_channel():
    layer = OctaveConv2d(8, 8, 1, 0.5, 0.5, bias=True)
    nn.init.zeros_(layer.weight)
    nn.init.constant_(layer.bias, 2.0)
    y_high, y_low = layer((torch.randn(1, 4, 6, 6), torch.randn(1, 4, 3, 3)))
    assert torch.all(y_high == 2.0) and torch.all(y_low == 2.0)


def test_octave_conv_gradcheck():
    torch.manual_seed(0)
    layer = OctaveConv2d(4, 2, 3, 0.5, 0.5, stride=2, padding=1).double()
    x_high = torch.randn(1, 2, 7, 5, dtype=torch.double, requires_grad=True)
    x_low = torch.randn(1, 2, 4, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda h, l, w: octave_conv2d(h, l, w, 0.5, 0.5, stride=2, padding=1),
        (x_high, x_low, layer.weight))


def test_merge_octave_crops_upsampled_low_group():
    high, low = torch.zeros(1, 3, 5, 7), torch.arange(24.).view(1, 2, 3, 4)
    merged = merge_octave(high, low)
    assert merged.shape == (1, 5, 5, 7)
    assert torch.equal(merged[:, 3:], _reference_upsample(low, (5, 7)))
    assert merged[0, 3, 4, 6].item() == low[0, 0, 2, 3].item()


@pytest.mark.parametrize('size', [(16, 10), (17, 9)])
def test_alpha_zero_avgpool_downsampling_is_pool_then_conv(size):
    """``strided_downsample='avgpool'``: the d-li14 release's strided conv, 2x2 average
    pooling (partial border windows averaging what they cover) + stride-1 conv."""
    torch.manual_seed(0)
    layer = OctaveConv2d(8, 12, 3, 0.0, 0.0, stride=2, padding=1, bias=True,
                         strided_downsample='avgpool')
    x = torch.randn(2, 8, *size)
    y_high, y_low = layer(x)
    assert y_low is None
    pooled = F.avg_pool2d(x, 2, ceil_mode=True)
    torch.testing.assert_close(y_high, F.conv2d(pooled, layer.weight, layer.bias, padding=1))
    torch.testing.assert_close(copy.deepcopy(layer).switch_to_deploy()(x)[0], y_high)
    # stride 1 and layers with a low group are unaffected by the option
    for args in ((0.0, 0.0, 1), (0.5, 0.5, 2)):
        a_in, a_out, stride = args
        plain = OctaveConv2d(8, 12, 3, a_in, a_out, stride=stride, padding=1)
        pooling = OctaveConv2d(8, 12, 3, a_in, a_out, stride=stride, padding=1,
                               strided_downsample='avgpool')
        pooling.load_state_dict(plain.state_dict())
        inputs = x if a_in == 0 else (x[:, :4, :16, :10], x[:, 4:, :8, :5])
        for a, b in zip(plain(inputs), pooling(inputs)):
            assert (a is None and b is None) or torch.equal(a, b)


def test_octave_conv_rejects_bad_arguments():
    with pytest.raises(ValueError, match="strided_downsample must be one of .* got 'pool'"):
        OctaveConv2d(8, 8, 3, padding=1, strided_downsample='pool')
    with pytest.raises(ValueError, match='alpha must be in'):
        OctaveConv2d(8, 8, 3, alpha_in=1.0)
    with pytest.raises(ValueError, match='stride 1 or 2'):
        OctaveConv2d(8, 8, 3, stride=3)
    layer = OctaveConv2d(8, 8, 3, 0.5, 0.5, padding=1)
    with pytest.raises(ValueError, match='x_high has 8 channels, expected 4'):
        layer((torch.randn(1, 8, 6, 6), torch.randn(1, 4, 3, 3)))
    with pytest.raises(ValueError, match='x_low has None channels'):
        layer(torch.randn(1, 4, 6, 6))


# ---------------------------------------------------------------- backbone --
OCT50 = dict(type='convdense.OctResNet', depth=50)
DET_CONFIG = osp.join(REPO, 'configs/mask_rcnn/mask-rcnn_oct-resnet-50_fpn_1x_coco.py')
SEG_CONFIG = osp.join(REPO, 'configs/segmentation/upernet_oct-resnet-50_ade20k.py')


def _build(**cfg):
    return checks.build(dict(OCT50, **cfg))


@pytest.mark.parametrize('alpha', [0.5, 0.25])
@pytest.mark.parametrize('size', checks.ODD_SIZES)
def test_outputs_have_resnet_strides_and_widths(alpha, size):
    checks.assert_output_shapes(_build(alpha=alpha), size)


def test_out_indices_subset_and_stage_alphas():
    model = _build(out_indices=(1, 3), stage_alphas=(0.5, 0.25, 0.125, 0.5))
    assert model.layer2[0].conv1.alpha_in == 0.5 and model.layer2[0].conv1.alpha_out == 0.25
    assert model.layer1[0].conv1.alpha_in == 0.0
    checks.assert_output_shapes(model, (65, 33), out_indices=(1, 3))


def test_caffe_style_and_dilation_and_deep_stem():
    checks.assert_output_shapes(_build(style='caffe', deep_stem=True), (45, 61))
    dilated = _build(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4))
    checks.assert_output_shapes(dilated, (64, 64), strides=(4, 8, 8, 8))


def test_paper_layout_last_stage_plain():
    model = _build()
    assert model.stage_alphas == (0.5, 0.5, 0.5, 0.0)
    first = model.layer4[0]
    assert (first.conv1.alpha_in, first.conv1.alpha_out) == (0.5, 0.0)
    assert first.downsample[0].alpha_in == 0.5
    assert all(m.alpha_in == m.alpha_out == 0 for m in model.layer4[1].modules()
               if isinstance(m, OctaveConv2d))


def _plain_resnet_checkpoint(tmp_path):
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    resnet = ResNet(depth=50)
    resnet.eval()
    for m in resnet.modules():  # non-trivial norm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    path = str(tmp_path / 'resnet50.pth')
    torch.save(dict(state_dict=resnet.state_dict()), path)
    return resnet, path


def test_alpha_zero_with_resnet_checkpoint_equals_mmdet_resnet(tmp_path):
    resnet, path = _plain_resnet_checkpoint(tmp_path)
    model = _build(alpha=0.0, init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    model.eval()
    x = torch.randn(2, 3, 75, 61)
    with torch.no_grad():
        for ours, theirs in zip(model(x), resnet(x)):
            torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_resnet_checkpoint_is_split_into_octave_norms(tmp_path):
    resnet, path = _plain_resnet_checkpoint(tmp_path)
    model = _build(init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    theirs = resnet.state_dict()
    torch.testing.assert_close(model.layer2[1].conv2.weight, theirs['layer2.1.conv2.weight'])
    norm = model.layer2[1].bn2
    torch.testing.assert_close(norm.high.running_var, theirs['layer2.1.bn2.running_var'][:64])
    torch.testing.assert_close(norm.low.weight, theirs['layer2.1.bn2.weight'][64:])
    torch.testing.assert_close(model.layer1[0].downsample[1].low.bias,
                               theirs['layer1.0.downsample.1.bias'][128:])


@pytest.mark.parametrize('frozen_stages', [0, 2])
def test_frozen_stages(frozen_stages):
    checks.assert_frozen_stages(_build(frozen_stages=frozen_stages, norm_eval=False),
                                frozen_stages)


def test_norm_eval():
    checks.assert_norm_eval(_build(norm_eval=True))


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    backbone = _build(norm_eval=False, zero_init_residual=False)
    backbone.init_weights()
    checks.assert_all_params_get_grad(backbone)


def test_zero_init_residual_zeroes_both_frequency_groups_of_norm3():
    backbone = _build()
    backbone.init_weights()
    block = backbone.layer2[1]
    assert block.norm3.high.weight.abs().sum() == 0 and block.norm3.low.weight.abs().sum() == 0
    assert block.norm2.low.weight.abs().sum() > 0


def test_loads_a_local_prefixed_checkpoint(tmp_path):
    checks.assert_loads_prefixed_checkpoint(OCT50, tmp_path)


def test_with_cp_matches_plain_forward_and_grads():
    torch.manual_seed(0)
    model = _build(norm_eval=False, num_stages=2, strides=(1, 2), dilations=(1, 1),
                   out_indices=(1, ))
    x = torch.randn(2, 3, 48, 40, requires_grad=True)
    model(x)[0].sum().backward()
    plain_grad = model.layer2[0].conv2.weight.grad.clone()
    model.zero_grad()
    for m in model.modules():
        if hasattr(m, 'with_cp'):
            m.with_cp = True
    model(x)[0].sum().backward()
    torch.testing.assert_close(model.layer2[0].conv2.weight.grad, plain_grad)


def test_rejects_unsupported_options():
    with pytest.raises(ValueError, match='alpha must be in'):
        _build(alpha=1.0)
    with pytest.raises(ValueError, match='does not support dcn'):
        _build(dcn=dict(type='DCNv2', deform_groups=1))
    with pytest.raises(ValueError, match='avg_down must be False'):
        _build(avg_down=True)
    with pytest.raises(ValueError, match='stage_alphas needs 4 values'):
        _build(stage_alphas=(0.5, 0.5))
    with pytest.raises(ValueError, match="strided_downsample must be one of .* got 'max'"):
        _build(strided_downsample='max')


def test_avgpool_downsampling_pools_only_the_plain_strided_convs():
    """Default layout: only ``layer4.0.conv2`` has alphas 0 and stride 2, so only
    stage 4 changes; with all alphas 0 every strided conv of stages 2-4 pools."""
    torch.manual_seed(0)
    image = torch.randn(1, 3, 64, 64)
    for alphas, first_changed in (((0.5, 0.5, 0.5, 0.0), 3), ((0.0,) * 4, 1)):
        strided = _build(stage_alphas=alphas, zero_init_residual=False).eval()
        pooled = _build(stage_alphas=alphas, strided_downsample='avgpool').eval()
        pooled.load_state_dict(strided.state_dict())
        with torch.no_grad():
            outs = list(zip(strided(image), pooled(image)))
        for stage, (a, b) in enumerate(outs):
            assert torch.equal(a, b) == (stage < first_changed), (alphas, stage)


def test_avgpool_downsampling_keeps_params_and_conv_flops():
    from convdense.models.complexity import classifier_complexity
    plain = classifier_complexity(OCT50, input_size=64)
    pooled = classifier_complexity(dict(OCT50, strided_downsample='avgpool'), input_size=64)
    assert pooled['params'] == plain['params']
    # the pooled conv runs stride 1 on the pooled map: the same multiply-adds
    assert pooled['flops'] == plain['flops']


# ------------------------------------------------------------- paper table --
@pytest.mark.parametrize('row', ['oct-resnet50_a0.5', 'oct-resnet50_a0.125',
                                 'oct-resnet50_a0.25', 'oct-resnet50_a0.75'])
def test_paper_table_params_and_flops(row):
    from convdense.models.complexity import PAPER_TABLE, PAPER_TOLERANCE, compare_with_paper
    result = compare_with_paper(row)
    assert abs(result['flops_rel']) < PAPER_TOLERANCE, result
    # OctConv partitions ResNet-50's weights: 25.56 M whatever alpha is.
    assert abs(result['params'] - 25.557e6) / 25.557e6 < 1e-3, result
    if PAPER_TABLE[row]['params'] is not None:
        assert abs(result['params_rel']) < PAPER_TOLERANCE, result


# ----------------------------------------------------------------- configs --
def test_configs_build_and_feed_their_heads():
    checks.assert_detector_config_works(DET_CONFIG, 'OctResNet')
    checks.assert_segmentor_config_works(SEG_CONFIG, 'OctResNet')


# Segmentation through the tools is covered once, with ResNet-50 (tests/tools/
# test_upstream_e2e.py); every backbone's segmentor config runs forward above.
@pytest.mark.parametrize('config,kind', [(DET_CONFIG, 'det')], ids=['mask-rcnn'])
def test_train_checkpoint_test_end_to_end(config, kind, tmp_path):
    checks.assert_end_to_end(config, kind, tmp_path)
