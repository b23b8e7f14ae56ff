"""Every convdense backbone builds and trains with GroupNorm, as the from-scratch
configs (configs/scratch/, mmdet's GN-everywhere recipe) build them: each norm
layer of the BN build is a GN of the same width (none is left BatchNorm), a
batch of one trains (GN has no batch statistics), and every parameter gets a
gradient. Res2Net's 26-channel splits take no 32-group GN: a one-line error."""
import re

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from tests.models import backbone_checks as checks

GN = dict(type='GN', num_groups=32, requires_grad=True)
BACKBONES = {
    'ResNet': dict(type='ResNet'),
    'OctResNet': dict(type='convdense.OctResNet', alpha=0.5),
    'HetConvResNet': dict(type='convdense.HetConvResNet', part=4),
    'ACNet-dataset': dict(type='convdense.ACNet', mode='dataset'),
    'ACNet-pixel': dict(type='convdense.ACNet', mode='pixel'),
}


def _norm_widths(backbone, kind):
    """``{module name: channels}`` of the ``kind`` (GroupNorm / _BatchNorm) layers,
    named as the BN build names them (mmcv calls a GN ``gnK`` where a BN is ``bnK``)."""
    return {re.sub(r'(^|\.)gn(\d*)(\.|$)', r'\1bn\2\3', name):
            (m.num_channels if isinstance(m, nn.GroupNorm) else m.num_features)
            for name, m in backbone.named_modules() if isinstance(m, kind)}


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_backbone_builds_and_trains_with_group_norm(name):
    base = dict(BACKBONES[name], depth=50, zero_init_residual=False, frozen_stages=-1,
                norm_eval=False)
    with_bn = checks.build(base)
    with_gn = checks.build(dict(base, norm_cfg=GN))
    bn_widths = _norm_widths(with_bn, _BatchNorm)
    assert bn_widths and _norm_widths(with_gn, _BatchNorm) == {}
    assert _norm_widths(with_gn, nn.GroupNorm) == bn_widths
    assert all(m.num_groups == 32 for m in with_gn.modules() if isinstance(m, nn.GroupNorm))
    checks.assert_output_shapes(with_gn, (97, 131))
    with_gn.train()
    outputs = with_gn(torch.randn(1, 3, 64, 64))  # a batch of one trains under GN
    assert [o.shape[1] for o in outputs] == list(checks.RESNET_CHANNELS)
    checks.assert_all_params_get_grad(with_gn)


def test_res2net_refuses_group_counts_that_do_not_divide_its_splits():
    with pytest.raises(ValueError, match=r'GN num_groups=32 does not divide the '
                                         r'26-channel splits \(104 channels in all\)'):
        checks.build(dict(type='convdense.Res2Net', depth=50, norm_cfg=GN))
    # two groups divide every Res2Net-50 width (26 * 2**i splits, 64 stem, 256 * 2**i)
    res2net = checks.build(dict(type='convdense.Res2Net', depth=50, zero_init_residual=False,
                                norm_cfg=dict(GN, num_groups=2), norm_eval=False))
    assert _norm_widths(res2net, _BatchNorm) == {}
    checks.assert_all_params_get_grad(res2net)
