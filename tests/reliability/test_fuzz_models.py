"""Fuzzed inputs into every backbone (at small sizes) and every joint upsampler,
under the contract of fuzz_contract.py. Expected shapes come from ResNet's
``ceil(side / stride)`` and from ``factor x`` the low-res input."""
import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from .fuzz_contract import FUZZ, call_or_clear_error, poison

BACKBONES = {
    'OctResNet': dict(type='convdense.OctResNet', depth=50),
    'HetConvResNet': dict(type='convdense.HetConvResNet', depth=50),
    'Res2Net': dict(type='convdense.Res2Net', depth=50),
    'ACNet': dict(type='convdense.ACNet', depth=50),
    'ACNet-pixel': dict(type='convdense.ACNet', depth=50, mode='pixel'),
}
CHANNELS, STRIDES = (256, 512, 1024, 2048), (4, 8, 16, 32)


@functools.lru_cache(maxsize=None)
def _backbone(name):
    from tests.models.backbone_checks import build
    torch.manual_seed(0)
    backbone = build(dict(BACKBONES[name]))
    backbone.eval()  # mmdet's ResNet.train() returns None, so no chaining
    return backbone


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(BACKBONES))
@settings(FUZZ, max_examples=3)  # a ResNet-50 forward each
@given(data=st.data())
def test_fuzz_backbone(name, data):
    draw = data.draw
    backbone = _backbone(name)
    batch, height, width = draw(st.integers(1, 2)), draw(st.integers(1, 48)), draw(st.integers(1, 48))
    bad = draw(st.sampled_from([None, None, None, 'nan', 'inf']))
    x = poison(torch.randn(batch, 3, height, width), bad)
    expected = [(batch, c, -(-height // s), -(-width // s)) for c, s in zip(CHANNELS, STRIDES)]
    with torch.no_grad():
        call_or_clear_error(lambda: backbone(x), expected, bad is None, must_succeed=True)


UPSAMPLERS = {
    'PacJointUpsample': lambda f, c: dict(type='PacJointUpsample', factor=f, channels=c,
                                          target_widths=(4, 4), guide_widths=(4, ),
                                          kernel_channels=2, fusion_widths=(4, ), kernel_size=3),
    'PacJointUpsampleLite-jbu': lambda f, c: dict(type='PacJointUpsampleLite', factor=f, channels=c,
                                                  residual='jbu', learnable_jbu=True),
    'DJF': lambda f, c: dict(type='DJF', factor=f, channels=c, branch_widths=(4, 4, 1),
                             fusion_widths=(4, 4, 1)),
    'JBU': lambda f, c: dict(type='JBU', factor=f, channels=c),
    'JBU-learnable': lambda f, c: dict(type='JBU', factor=f, channels=c, learnable=True,
                                       guide_widths=(4, )),
    'Bicubic': lambda f, c: dict(type='Bicubic', factor=f, channels=c),
}


@pytest.mark.parametrize('name', sorted(UPSAMPLERS))
@settings(FUZZ, max_examples=12)
@given(data=st.data())
def test_fuzz_upsampler(name, data):
    """Through ``JointUpsampler`` (min/max normalisation, de-normalisation), in
    'tensor' mode, and the net alone."""
    from convdense.models.upsamplers import JointUpsampler
    draw = data.draw
    factor, channels = draw(st.sampled_from([4, 8])), draw(st.integers(1, 2))  # Lite: 4, 8, 16
    torch.manual_seed(0)
    model = JointUpsampler(UPSAMPLERS[name](factor, channels)).eval()
    batch, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    low = torch.rand(batch, channels, h, w) * draw(st.sampled_from([1.0, 1e-6, 1e4]))
    guide = torch.rand(batch, 3, h * factor, w * factor)
    broken = draw(st.sampled_from([None] * 6 + ['guide size', 'channels', '3d', 'int']))
    if broken == 'guide size':
        guide = guide[..., :-1]
    elif broken == 'channels':
        low = torch.rand(batch, channels + 1, h, w)
    elif broken == '3d':
        low = low[0]
    elif broken == 'int':
        low = (low * 10).long()
    bad = draw(st.sampled_from([None, None, 'nan', 'inf']))
    guide = poison(guide, bad)
    # the learned nets share weights over target channels and take any number
    out_channels = low.shape[1] if low.dim() == 4 else None
    valid = broken is None or (broken == 'channels' and not name.startswith(('JBU', 'Bicubic')))
    expected = [(batch, out_channels, h * factor, w * factor)] if valid else None
    with torch.no_grad():
        call_or_clear_error(lambda: model(dict(low=low, guide=guide)), expected, bad is None,
                            must_succeed=valid)
        call_or_clear_error(lambda: model.net(low, guide), expected, bad is None,
                            must_succeed=valid)


@pytest.mark.parametrize('net', ['Bicubic', 'JBU'])
def test_misspelt_argument_is_an_error(net):
    """``**unused`` used to swallow these."""
    from convdense.registry import build_model
    with pytest.raises(TypeError, match='sigma_colour|modes'):
        misspelt = {'sigma_colour': 0.1} if net == 'JBU' else {'modes': 'bilinear'}
        build_model(dict(type=net, factor=4, **misspelt))
