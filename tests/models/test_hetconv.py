"""HetConv op (convdense.ops.hetconv) and the HetConv-ResNet backbone."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from convdense.ops.hetconv import HetConv2d, dense_pointwise_weight, hetconv_kernel_mask


def paper_cyclic_mask(in_channels, out_channels, kernel_size, part):
    """The paper's pattern written from its definition: filter ``j`` has full
    ``k x k`` kernels on input channels ``c`` with ``(c - j) % P == 0`` and a
    ``1 x 1`` (centre tap) on every other channel."""
    mask = torch.zeros(out_channels, in_channels, kernel_size, kernel_size, dtype=torch.bool)
    centre = kernel_size // 2
    for j in range(out_channels):
        for c in range(in_channels):
            if (c - j) % part == 0:
                mask[j, c] = True
            else:
                mask[j, c, centre, centre] = True
    return mask


# ---------------------------------------------------------------- the op

@pytest.mark.parametrize('part,stride,dilation,kernel', [
    (2, 1, 1, 3), (4, 1, 1, 3), (4, 2, 1, 3), (4, 1, 2, 3), (8, 2, 1, 5)])
def test_hetconv_matches_masked_dense_conv(part, stride, dilation, kernel):
    """Slow reference: one dense conv whose weight is zero off the HetConv pattern."""
    torch.manual_seed(0)
    layer = HetConv2d(16, 24, kernel, part=part, stride=stride, dilation=dilation).double()
    x = torch.randn(2, 16, 13, 10, dtype=torch.double)
    dense = layer.dense_weight()
    assert torch.equal(dense != 0, hetconv_kernel_mask(16, 24, kernel, part))
    expected = F.conv2d(x, dense, stride=stride, padding=dilation * (kernel // 2),
                        dilation=dilation)
    out = layer(x)
    assert out.shape == expected.shape == (2, 24, -(-13 // stride), -(-10 // stride))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize('part,stride,dilation,kernel,bias', [
    (2, 1, 1, 3, False), (4, 1, 1, 3, True), (4, 2, 1, 3, False), (4, 1, 2, 3, False),
    (8, 2, 1, 5, True)])
@pytest.mark.parametrize('size', [(13, 10), (7, 7), (16, 16)])
def test_deployed_layer_matches_exact_layer(part, stride, dilation, kernel, bias, size):
    """The deploy form runs one dense pointwise conv (zeros on each filter
    block's own input block) instead of the gather + grouped conv; same outputs,
    and those of the equivalent dense conv."""
    import copy
    torch.manual_seed(0)
    layer = HetConv2d(32, 24, kernel, part=part, stride=stride, dilation=dilation, bias=bias)
    if bias:
        nn.init.uniform_(layer.spatial.bias, -1, 1)
    x = torch.randn(2, 32, *size)
    exact = layer(x)
    deployed = copy.deepcopy(layer).switch_to_deploy()(x)
    torch.testing.assert_close(deployed, exact.detach(), rtol=1e-5, atol=1e-5)
    reference = F.conv2d(x, layer.dense_weight(), layer.spatial.bias, stride=stride,
                         padding=dilation * (kernel // 2), dilation=dilation)
    torch.testing.assert_close(deployed, reference.detach(), rtol=1e-5, atol=1e-5)


def test_dense_pointwise_weight_is_the_centre_taps_off_the_own_blocks():
    torch.manual_seed(0)
    layer = HetConv2d(16, 8, 3, part=4).double()
    dense = layer.dense_weight().detach()
    expected = dense[:, :, 1:2, 1:2].clone()
    for g in range(4):  # own blocks hold the 3x3 kernels, not 1x1 ones
        expected[2 * g:2 * g + 2, 4 * g:4 * g + 4] = 0
    assert torch.equal(dense_pointwise_weight(layer.pointwise.weight.detach(), 4), expected)
    mask = hetconv_kernel_mask(16, 8, 3, 4)
    assert int((expected != 0).sum()) == int(mask[:, :, 1, 1].sum()) - 16 * 8 // 4


def test_inference_weight_cache_follows_weight_updates():
    torch.manual_seed(0)
    layer = HetConv2d(8, 8, 3, part=4)
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        before = layer(x)
        layer.pointwise.weight.mul_(2.0)  # an in-place optimizer step
        after = layer(x)
    torch.testing.assert_close(after, layer(x).detach())
    assert not torch.allclose(before, after)


def test_hetconv_p1_equals_plain_conv():
    torch.manual_seed(0)
    plain = nn.Conv2d(8, 12, 3, stride=2, padding=1, bias=True)
    het = HetConv2d(8, 12, 3, part=1, stride=2, bias=True)
    het.spatial.load_state_dict(plain.state_dict())
    assert het.pointwise is None
    x = torch.randn(2, 8, 11, 9)
    torch.testing.assert_close(het(x), plain(x), rtol=0, atol=0)


@pytest.mark.parametrize('part', [2, 4])
def test_kernel_pattern_is_the_papers_cyclic_shift_up_to_channel_relabelling(part):
    """Paper channel c is block (c % P), slot (c // P) here; likewise for filters."""
    in_channels, out_channels = 8, 12
    mask = hetconv_kernel_mask(in_channels, out_channels, 3, part)

    def to_ours(c, n):
        return (c % part) * (n // part) + c // part

    ours_in = torch.tensor([to_ours(c, in_channels) for c in range(in_channels)])
    ours_out = torch.tensor([to_ours(j, out_channels) for j in range(out_channels)])
    relabelled = mask[ours_out][:, ours_in]
    assert torch.equal(relabelled, paper_cyclic_mask(in_channels, out_channels, 3, part))
    # Per filter: M/P full kernels, M - M/P centre taps.
    full = mask.all(dim=(2, 3)).sum(dim=1)
    assert (full == in_channels // part).all()
    assert (mask.sum(dim=(1, 2, 3)) == in_channels // part * 9 + in_channels
            - in_channels // part).all()


def test_flops_are_the_papers_formula_not_a_dense_pointwise():
    """Counted multiply-adds = N * H'W' * (M/P * k^2 + M - M/P) (paper, Sec. 3)."""
    from mmengine.analysis import FlopAnalyzer
    in_channels, out_channels, part, side = 64, 64, 4, 14
    layer = HetConv2d(in_channels, out_channels, 3, part=part).eval()
    analyzer = FlopAnalyzer(layer, torch.randn(1, in_channels, side, side))
    analyzer.unsupported_ops_warnings(False)
    paper = out_channels * side * side * (in_channels // part * 9 + in_channels
                                          - in_channels // part)
    assert analyzer.total() == paper
    plain = out_channels * side * side * in_channels * 9
    assert analyzer.total() / plain == pytest.approx(1 / part + (1 - 1 / part) / 9)
    n_params = sum(p.numel() for p in layer.parameters())
    assert n_params == int(hetconv_kernel_mask(in_channels, out_channels, 3, part).sum())


def test_gradients_match_the_dense_reference():
    """Input and weight gradients equal those of the masked dense conv (whose
    weight is assembled differentiably from the same two parameters)."""
    torch.manual_seed(0)
    layer = HetConv2d(8, 12, 3, part=4, stride=2).double()
    x = torch.randn(2, 8, 9, 7, dtype=torch.double, requires_grad=True)
    upstream = torch.randn(2, 12, 5, 4, dtype=torch.double)
    params = [x, layer.spatial.weight, layer.pointwise.weight]
    grads = torch.autograd.grad((layer(x) * upstream).sum(), params)
    dense_out = F.conv2d(x, layer.dense_weight(), stride=2, padding=1)
    expected = torch.autograd.grad((dense_out * upstream).sum(), params)
    for got, want in zip(grads, expected):
        assert got.abs().sum() > 0
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize('kwargs,message', [
    (dict(in_channels=10, out_channels=8, part=4), 'must divide'),
    (dict(in_channels=8, out_channels=8, part=0), 'positive int'),
    (dict(in_channels=8, out_channels=8, part=4, kernel_size=2), 'odd'),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HetConv2d(**kwargs)


def test_wrong_input_channels_is_named():
    layer = HetConv2d(8, 8, 3, part=4)
    with pytest.raises(ValueError, match='input has 12 channels'):
        layer(torch.randn(1, 12, 5, 5))



# ---------------------------------------------------------------- the backbone

def _mm():
    pytest.importorskip('mmdet.models')
    pytest.importorskip('mmseg.models')
    from tests.models import backbone_checks
    return backbone_checks


HETCONV50 = dict(type='convdense.HetConvResNet', depth=50)


@pytest.mark.parametrize('size', [(97, 131), (64, 80)])
@pytest.mark.parametrize('part', [4, 8])
def test_backbone_output_shapes_at_odd_sizes(part, size):
    checks = _mm()
    backbone = checks.build(dict(HETCONV50, part=part))
    assert backbone.layer3[2].conv2.part == part
    checks.assert_output_shapes(backbone, size)


def test_backbone_with_part_1_is_mmdets_resnet50():
    """Same weights (``conv2.weight`` -> ``conv2.spatial.weight``), same outputs."""
    checks = _mm()
    torch.manual_seed(0)
    resnet = checks.build(dict(type='ResNet', depth=50, zero_init_residual=False))
    resnet.init_weights()
    hetconv = checks.build(dict(HETCONV50, part=1))
    state = {key.replace('conv2.weight', 'conv2.spatial.weight'): value
             for key, value in resnet.state_dict().items()}
    hetconv.load_state_dict(state)
    x = torch.randn(1, 3, 75, 99)
    resnet.eval(), hetconv.eval()
    with torch.no_grad():
        for ours, theirs in zip(hetconv(x), resnet(x)):
            torch.testing.assert_close(ours, theirs)


def test_every_conv2_is_a_hetconv_and_strided_ones_keep_their_stride():
    checks = _mm()
    backbone = checks.build(HETCONV50)
    blocks = [block for name in backbone.res_layers for block in getattr(backbone, name)]
    assert len(blocks) == 16
    assert all(isinstance(block.conv2, HetConv2d) and block.conv2.part == 4 for block in blocks)
    assert [block.conv2.stride for block in blocks if block.conv2.stride != 1] == [2, 2, 2]


@pytest.mark.parametrize('frozen_stages', [1, 3])
def test_backbone_frozen_stages(frozen_stages):
    checks = _mm()
    backbone = checks.build(dict(HETCONV50, frozen_stages=frozen_stages, norm_eval=False))
    checks.assert_frozen_stages(backbone, frozen_stages)


def test_backbone_norm_eval():
    checks = _mm()
    checks.assert_norm_eval(checks.build(dict(HETCONV50, norm_eval=True)))


def test_backbone_every_parameter_gets_a_gradient():
    checks = _mm()
    backbone = checks.build(dict(HETCONV50, norm_eval=False, zero_init_residual=False))
    backbone.init_weights()
    checks.assert_all_params_get_grad(backbone)


def test_backbone_zero_init_residual_and_checkpoint_loading(tmp_path):
    checks = _mm()
    backbone = checks.build(HETCONV50)
    backbone.init_weights()
    assert all(block.norm3.weight.abs().sum() == 0 for block in backbone.layer2)
    assert backbone.layer2[0].conv2.pointwise.weight.abs().sum() > 0
    checks.assert_loads_prefixed_checkpoint(HETCONV50, tmp_path)


def test_backbone_builds_in_mmseg_scope():
    checks = _mm()
    backbone = checks.build_in_scope(dict(HETCONV50, deep_stem=True), 'mmseg')
    assert type(backbone).__name__ == 'HetConvResNet'
    checks.assert_output_shapes(backbone, (33, 47))


@pytest.mark.parametrize('part', [3, 0, 128])
def test_backbone_part_must_divide_the_stage_widths(part):
    checks = _mm()
    with pytest.raises(ValueError, match='part must be a positive int dividing'):
        checks.build(dict(HETCONV50, part=part))


DET_CONFIG = 'configs/mask_rcnn/mask-rcnn_hetconv-resnet-50_fpn_1x_coco.py'
SEG_CONFIG = 'configs/segmentation/upernet_hetconv-resnet-50_ade20k.py'


def _config(path):
    import os.path as osp
    return osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), path)


def test_configs_build_and_feed_their_heads():
    checks = _mm()
    checks.assert_detector_config_works(_config(DET_CONFIG), 'HetConvResNet')
    checks.assert_segmentor_config_works(_config(SEG_CONFIG), 'HetConvResNet')


# HetConv's train -> checkpoint -> tools/test.py run is the Mask R-CNN over-fit check in
# tests/tools/test_overfit_convdense.py (it must also learn); segmentation through the
# tools is covered once, with ResNet-50.
