"""convdense.Res2Net / Res2NeXt: block numerics vs a plain-torch reference,
ResNet conventions, registry scoping, configs and one end-to-end run each."""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('mmdet.models')
pytest.importorskip('mmseg.models')

from tests.models import backbone_checks as checks  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RES2NET50 = dict(type='convdense.Res2Net', depth=50)
RES2NEXT50 = dict(type='convdense.Res2Net', depth=50, groups=8, base_width=4, scales=4)


def _randomise_norms(module, seed=0):
    """Non-trivial BN statistics and affine, so a reference that skips a BN fails."""
    generator = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)


def _bn(x, m):
    return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)


def reference_block(block, x, first_of_stage, stride, scales, groups):
    """Res2Net bottleneck from the paper / official code, eval-mode BN, plain torch:
    y_1 = K_1(x_1); y_i = K_i(x_i + y_{i-1}) (first block of a stage: K_i(x_i));
    the last split passes unchanged (first block: 3x3 average pool)."""
    y = F.relu(_bn(F.conv2d(x, block.conv1.weight), block.norm1))
    width = y.shape[1] // scales
    xs = [y[:, i * width:(i + 1) * width] for i in range(scales)]
    ys = []
    for i in range(scales - 1):
        inp = xs[i] if (i == 0 or first_of_stage) else xs[i] + ys[-1]
        conv = F.conv2d(inp, block.convs[i].weight, stride=stride, padding=1, groups=groups)
        ys.append(F.relu(_bn(conv, block.bns[i])))
    ys.append(F.avg_pool2d(xs[-1], 3, stride, 1) if first_of_stage else xs[-1])
    out = _bn(F.conv2d(torch.cat(ys, 1), block.conv3.weight), block.norm3)
    if block.se is not None:
        squeeze = out.mean(dim=(2, 3), keepdim=True)
        hidden = F.relu(F.conv2d(squeeze, block.se.conv1.conv.weight, block.se.conv1.conv.bias))
        out = out * torch.sigmoid(F.conv2d(hidden, block.se.conv2.conv.weight,
                                           block.se.conv2.conv.bias))
    identity = x
    if first_of_stage:
        identity = _bn(F.conv2d(x, block.downsample[0].weight, stride=stride),
                       block.downsample[1])
    return F.relu(out + identity)


@pytest.mark.parametrize('cfg', [
    RES2NET50,
    RES2NEXT50,
    dict(RES2NET50, with_se=True, scales=6, base_width=14),
], ids=['res2net', 'res2next', 'res2net-se-6s'])
def test_blocks_match_plain_torch_reference(cfg):
    torch.manual_seed(0)
    backbone = checks.build(cfg)
    backbone.eval()
    _randomise_norms(backbone)
    scales, groups = cfg.get('scales', 4), cfg.get('groups', 1)
    cases = [('layer1', 0, 64, 1, True),   # first block, stride 1: pooled last split
             ('layer2', 0, 256, 2, True),  # first block, stride 2
             ('layer2', 1, 512, 1, False)]  # hierarchical block
    for layer, index, channels, stride, first in cases:
        block = getattr(backbone, layer)[index]
        x = torch.randn(2, channels, 15, 11)
        with torch.no_grad():
            expected = reference_block(block, x, first, stride, scales, groups)
            torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-5)


def test_split_widths_follow_the_paper():
    """width = floor(planes * w / 64) * c per split; conv1 gives s splits."""
    res2net = checks.build(RES2NET50)
    res2next = checks.build(RES2NEXT50)
    for i, planes in enumerate((64, 128, 256, 512)):
        block = getattr(res2net, f'layer{i + 1}')[1]
        assert block.width == math.floor(planes * 26 / 64)
        assert block.conv1.out_channels == 4 * block.width
        assert len(block.convs) == 3 and block.convs[0].groups == 1
        nxt = getattr(res2next, f'layer{i + 1}')[1]
        assert nxt.width == math.floor(planes * 4 / 64) * 8
        assert nxt.convs[0].groups == 8


@pytest.mark.parametrize('cfg', [RES2NET50, RES2NEXT50, dict(RES2NET50, with_se=True)],
                         ids=['res2net', 'res2next', 'se'])
@pytest.mark.parametrize('size', checks.ODD_SIZES[:2])
def test_output_shapes_at_odd_sizes(cfg, size):
    checks.assert_output_shapes(checks.build(cfg), size)


def test_out_indices_and_caffe_style_and_dilation():
    backbone = checks.build(dict(RES2NET50, out_indices=(1, 3), style='caffe'))
    checks.assert_output_shapes(backbone, (45, 61), out_indices=(1, 3))
    dilated = checks.build(dict(RES2NET50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)))
    checks.assert_output_shapes(dilated, (64, 64), strides=(4, 8, 8, 8))


@pytest.mark.parametrize('frozen_stages', [0, 2])
def test_frozen_stages(frozen_stages):
    backbone = checks.build(dict(RES2NET50, frozen_stages=frozen_stages, norm_eval=False))
    checks.assert_frozen_stages(backbone, frozen_stages)


def test_norm_eval():
    checks.assert_norm_eval(checks.build(dict(RES2NET50, norm_eval=True)))


@pytest.mark.parametrize('cfg', [RES2NET50, dict(RES2NEXT50, with_se=True)],
                         ids=['res2net', 'res2next-se'])
def test_every_parameter_gets_a_gradient(cfg):
    backbone = checks.build(dict(cfg, norm_eval=False, zero_init_residual=False))
    backbone.init_weights()
    checks.assert_all_params_get_grad(backbone)


def test_with_cp_gives_same_output_and_gradients():
    torch.manual_seed(0)
    plain = checks.build(dict(RES2NET50, norm_eval=True, zero_init_residual=False))
    checkpointed = checks.build(dict(RES2NET50, norm_eval=True, with_cp=True))
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 64, 64)
    plain.train(), checkpointed.train()
    out_plain, out_cp = plain(x)[-1], checkpointed(x)[-1]
    torch.testing.assert_close(out_cp, out_plain)
    out_plain.sum().backward(), out_cp.sum().backward()
    torch.testing.assert_close(checkpointed.layer1[0].convs[0].weight.grad,
                               plain.layer1[0].convs[0].weight.grad)


def test_zero_init_residual_zeroes_the_last_norm_of_every_block():
    backbone = checks.build(RES2NET50)
    backbone.init_weights()
    for layer in backbone.res_layers:
        for block in getattr(backbone, layer):
            assert block.norm3.weight.abs().sum() == 0
            assert block.bns[0].weight.abs().sum() > 0


def test_keys_match_the_official_checkpoint_layout():
    keys = set(checks.build(RES2NET50).state_dict())
    for key in ('conv1.weight', 'bn1.running_mean', 'layer1.0.conv1.weight', 'layer1.0.bn1.weight',
                'layer1.0.convs.2.weight', 'layer1.0.bns.2.running_var', 'layer1.0.conv3.weight',
                'layer1.0.bn3.bias', 'layer1.0.downsample.0.weight', 'layer4.2.convs.0.weight'):
        assert key in keys, key
    assert not any('conv2' in key or '.bn2.' in key for key in keys)


def test_loads_a_local_prefixed_checkpoint(tmp_path):
    checks.assert_loads_prefixed_checkpoint(RES2NET50, tmp_path)


def test_does_not_shadow_mmdets_res2net_and_builds_in_mmseg():
    from mmdet.models.backbones import Res2Net as MMDetRes2Net
    from mmdet.registry import MODELS as MMDET_MODELS

    from convdense.models.backbones.res2net import Res2Net
    from convdense.registry import MODELS
    assert MMDET_MODELS.get('Res2Net') is MMDetRes2Net
    assert MODELS.get('Res2Net') is Res2Net and Res2Net is not MMDetRes2Net
    assert MMDET_MODELS.get('convdense.Res2Net') is Res2Net
    assert type(checks.build(dict(type='Res2Net', depth=50))) is MMDetRes2Net
    seg = checks.build_in_scope(RES2NET50, 'mmseg')
    assert type(seg) is Res2Net
    checks.assert_output_shapes(seg, (33, 47))


@pytest.mark.parametrize('kwargs,message', [
    (dict(scales=1), 'scales >= 2'),
    (dict(depth=34), 'depth must be one of'),
    (dict(base_width=1, scales=4, depth=50, groups=1, base_channels=8), 'width is 0'),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(Exception, match=message):
        checks.build(dict(RES2NET50, **kwargs))


# ------------------------------------------------------------------ configs

DET_CONFIG = osp.join(REPO, 'configs/mask_rcnn/mask-rcnn_res2net-50_fpn_1x_coco.py')
SEG_CONFIG = osp.join(REPO, 'configs/segmentation/upernet_res2net-50_ade20k.py')


def test_configs_build_and_feed_their_heads():
    checks.assert_detector_config_works(DET_CONFIG, 'Res2Net')
    checks.assert_segmentor_config_works(SEG_CONFIG, 'Res2Net')


# Segmentation through the tools is covered once, with ResNet-50 (tests/tools/
# test_upstream_e2e.py); every backbone's segmentor config runs forward above.
@pytest.mark.parametrize('config,kind', [(DET_CONFIG, 'det')], ids=['mask-rcnn'])
def test_train_checkpoint_test_end_to_end(config, kind, tmp_path):
    checks.assert_end_to_end(config, kind, tmp_path)
