"""The from-scratch configs (configs/scratch/, and configs/scaling/ built on them)
build and run: Mask R-CNN with its norm (GN or SyncBN) in the backbone, the FPN and
both RoI heads, no BatchNorm left where GN is asked for; UPerNet / DeepLabV3 with
every backbone at 160k iterations. How they train (no frozen stage, norms trained, no
weights) is checked for every config in tests/reliability/test_checked_configs.py."""
import glob
import os.path as osp

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from tests.helpers.e2e import REPO
from tests.models import backbone_checks as checks

SCRATCH = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs/scratch/*.py')))
DETECTORS = [c for c in SCRATCH if 'mask-rcnn' in c]
SEGMENTORS = [c for c in SCRATCH if 'mask-rcnn' not in c]
CLASS = {'r50': 'ResNet', 'res2net': 'Res2Net', 'oct-resnet': 'OctResNet',
         'hetconv-resnet': 'HetConvResNet', 'acnet': 'ACNet'}


def _backbone_class(config):
    name = osp.basename(config).split('_')[1]
    return next(cls for key, cls in CLASS.items() if name.startswith(key))


def test_every_backbone_has_scratch_configs():
    assert len(DETECTORS) == 8 and len(SEGMENTORS) == 12
    for detector in ('r50', 'res2net-50', 'oct-resnet-50', 'hetconv-resnet-50',
                     'acnet-50-dataset', 'acnet-50-pixel'):
        assert any(f'mask-rcnn_{detector}-scratch_' in c for c in DETECTORS), detector


@pytest.mark.parametrize('config', DETECTORS)
def test_scratch_detector_builds_with_its_norm_everywhere(config):
    cfg, model = checks._build_model_from_config(osp.join(REPO, config), 'mmdet')
    checks.assert_detector_config_works(osp.join(REPO, config), _backbone_class(config))
    assert cfg.model.roi_head.bbox_head.type == 'Shared4Conv1FCBBoxHead'  # upstream's GN head
    groups = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    batch = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    ours = groups if '_gn-all_' in config else batch  # SyncBN is reverted to BN to build
    for part in ('backbone', 'neck', 'roi_head.bbox_head', 'roi_head.mask_head'):
        module = model.get_submodule(part)
        assert any(m in ours for m in module.modules()), f'{config}: no norm in {part}'
    if '_gn-all_' in config:
        assert batch == [], f'{config}: BatchNorm left in a GN-everywhere model'


@pytest.mark.parametrize('config', SEGMENTORS)
def test_scratch_segmentor_builds_and_runs(config):
    """Per-class logits at stride 4 (UPerNet) or 8 (DeepLabV3, dilated), 160k iterations,
    upstream's deep stem (ResNetV1c's, or written out for the convdense backbones)."""
    cfg, model = checks._build_model_from_config(osp.join(REPO, config), 'mmseg')
    expected_class = 'ResNetV1c' if '_r50' in config else _backbone_class(config)
    assert type(model.backbone).__name__ == expected_class
    stride = 8 if 'deeplabv3' in config else 4
    with torch.no_grad():
        logits = model._forward(torch.randn(1, 3, 64, 96))
    assert tuple(logits.shape) == (1, cfg.model.decode_head.num_classes, 64 // stride, 96 // stride)
    assert cfg.train_cfg.max_iters == 160000
    assert model.backbone.deep_stem, config
