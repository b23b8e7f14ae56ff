"""Dilated (output stride 8) DeepLabV3 configs: every convdense backbone gives
features at strides 4/8/8/8 with ResNet's widths, its stage-3/4 spatial convs are
dilated 2/4 with stride 1 and "same" padding, and the segmentor's heads run on them."""
import math
import os.path as osp

import pytest
import torch
from torch import nn

from tests.helpers.e2e import REPO
from tests.models.backbone_checks import RESNET_CHANNELS, _build_model_from_config

BASELINE = 'deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py'
CONFIGS = {
    'Res2Net': 'deeplabv3_res2net-50-d8_4xb4-80k_ade20k-512x512.py',
    'OctResNet': 'deeplabv3_oct-resnet-50-d8_4xb4-80k_ade20k-512x512.py',
    'HetConvResNet': 'deeplabv3_hetconv-resnet-50-d8_4xb4-80k_ade20k-512x512.py',
    'ACNet': 'deeplabv3_acnet-50-d8_4xb4-80k_ade20k-512x512.py',
}
#: Output strides of a dilated ResNet (D8).
D8_STRIDES = (4, 8, 8, 8)


def _config(name):
    from mmengine.config import Config
    return Config.fromfile(osp.join(REPO, 'configs/segmentation', name))


@pytest.fixture(scope='module')
def upstream_backbone():
    """The upstream R-50-D8 backbone settings, through the baseline config that
    inherits them unchanged."""
    return _config(BASELINE).model.backbone


@pytest.mark.parametrize('backbone_class', sorted(CONFIGS))
def test_dilated_deeplabv3_gives_stride_8_features(backbone_class, upstream_backbone):
    """The config's backbone has upstream's D8 strides and dilations; its four outputs
    are at strides 4/8/8/8 with ResNet's widths; every spatial conv of stages 3 and 4
    is dilated 2 / 4 at stride 1 with "same" padding; and DeepLabV3's ASPP head (stage
    4) and FCN auxiliary head (stage 3) give per-class logits at stride 8."""
    path = osp.join(REPO, 'configs/segmentation', CONFIGS[backbone_class])
    cfg, model = _build_model_from_config(path, 'mmseg')
    assert cfg.model.backbone.type == f'convdense.{backbone_class}'
    assert tuple(cfg.model.backbone.strides) == tuple(upstream_backbone.strides) == (1, 2, 1, 1)
    assert tuple(cfg.model.backbone.dilations) == tuple(upstream_backbone.dilations) == (1, 1, 2, 4)
    backbone = model.backbone
    assert type(backbone).__name__ == backbone_class

    height, width = 75, 102  # odd sizes: every stride rounds up
    with torch.no_grad():
        outputs = backbone(torch.randn(1, 3, height, width))
    shapes = [tuple(out.shape) for out in outputs]
    assert shapes == [(1, channels, math.ceil(height / stride), math.ceil(width / stride))
                      for channels, stride in zip(RESNET_CHANNELS, D8_STRIDES)]
    for stage, dilation in ((3, 2), (4, 4)):
        spatial = [(name, m) for name, m in getattr(backbone, f'layer{stage}').named_modules()
                   if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 1]
        assert spatial, f'layer{stage} has no spatial conv'
        for name, conv in spatial:
            assert conv.dilation == (dilation, dilation), (stage, name, conv.dilation)
            assert conv.stride == (1, 1), (stage, name, conv.stride)
            assert conv.padding == (dilation * (conv.kernel_size[0] - 1) // 2,) * 2, (stage, name)

    height, width = 64, 96
    with torch.no_grad():
        features = model.extract_feat(torch.randn(1, 3, height, width))
        logits, aux = model.decode_head(features), model.auxiliary_head(features)
    expected = (1, cfg.model.decode_head.num_classes, height // 8, width // 8)
    assert tuple(logits.shape) == tuple(aux.shape) == expected


def test_baseline_is_upstream_d8_with_the_plain_stem_and_torchvision_weights():
    """The plain 7x7 stem of the Oct-ResNet, ACNet and HetConv releases (mmseg's
    ResNet, not upstream's deep-stem ResNetV1c), started from torchvision's weights."""
    cfg = _config(BASELINE)
    assert cfg.model.pretrained == 'torchvision://resnet50'
    assert cfg.model.backbone.type == 'ResNet' and cfg.model.backbone.contract_dilation
    for name in ('OctResNet', 'HetConvResNet', 'ACNet'):
        assert not _config(CONFIGS[name]).model.backbone.get('deep_stem'), name
    res2net = _config(CONFIGS['Res2Net']).model.backbone  # its v1b release's stem
    assert res2net.deep_stem and res2net.avg_down
