"""Fuzzed inputs into every backbone (at small sizes) and every joint upsampler,
under the contract of fuzz_contract.py. Expected shapes come from ResNet's
``ceil(side / stride)`` and from ``factor x`` the low-res input. Malformed
backbone inputs must be refused by ``ResNetVariant.check_input`` with the
error type and message it promises, before any convolution runs."""
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
    'ACNet-tf_same': dict(type='convdense.ACNet', depth=50, strided_padding='tf_same'),
}
CHANNELS, STRIDES = (256, 512, 1024, 2048), (4, 8, 16, 32)


@functools.lru_cache(maxsize=None)
def _backbone(name):
    from tests.models.backbone_checks import build
    torch.manual_seed(0)
    return build(dict(BACKBONES[name])).eval()


def test_every_convdense_backbone_is_fuzzed_and_eval_returns_it():
    """``build(cfg).eval()`` is the model (``ResNetVariant.train`` returns self;
    mmdet's ``ResNet.train`` returns None), for every ResNetVariant subclass."""
    from convdense.models.backbones.base import ResNetVariant
    variants = {cls.__name__ for cls in ResNetVariant.__subclasses__()}
    assert variants == {cfg['type'].split('.')[-1] for cfg in BACKBONES.values()}
    for name in sorted(BACKBONES):
        backbone = _backbone(name)
        try:
            assert backbone.train() is backbone and backbone.training, name
        finally:
            assert backbone.eval() is backbone and not backbone.training, name


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(BACKBONES))
@settings(FUZZ, max_examples=3)  # a ResNet-50 forward each
@given(data=st.data())
def test_fuzz_backbone(name, data):
    draw = data.draw
    backbone = _backbone(name)
    # every padded stage maps 1 x 1 to 1 x 1 and an empty batch to an empty batch
    batch = draw(st.integers(0, 2))
    height, width = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    bad = draw(st.sampled_from([None, None, None, 'nan', 'inf']))
    x = poison(torch.randn(batch, 3, height, width), bad)
    expected = [(batch, c, -(-height // s), -(-width // s)) for c, s in zip(CHANNELS, STRIDES)]
    with torch.no_grad():
        call_or_clear_error(lambda: backbone(x), expected, bad is None, must_succeed=True)


#: Malformed inputs: how to make one from a valid (B, 3, H, W) float tensor, and
#: the error it must raise (type, message pattern).
MALFORMED = {
    'list': (lambda x: x.tolist(), TypeError, r'expected a \(B, C, H, W\) tensor, got list'),
    'ndarray': (lambda x: x.numpy(), TypeError, r'tensor, got ndarray'),
    '3-d': (lambda x: x.sum(0), ValueError, r'expected a 4-D tensor \(B, C, H, W\), got \(3, '),
    '5-d': (lambda x: x[None], ValueError, r'expected a 4-D tensor \(B, C, H, W\), got \(1, '),
    'channels': (lambda x: x[:, :1], ValueError, r'has 1 channels, expected 3'),
    'channels+1': (lambda x: x.repeat(1, 2, 1, 1)[:, :4], ValueError,
                   r'has 4 channels, expected 3'),
    'uint8': (lambda x: (x * 50).to(torch.uint8), TypeError,
              r'expected a floating-point tensor, got torch.uint8'),
    'long': (lambda x: x.long(), TypeError, r'expected a floating-point tensor, got torch.int64'),
    'bool': (lambda x: x > 0, TypeError, r'expected a floating-point tensor, got torch.bool'),
    'float64': (lambda x: x.double(), TypeError,
                r"dtype torch.float64 differs from the parameters'"),
    'height 0': (lambda x: x[:, :, :0], ValueError, r'empty spatial size \(\d+, 3, 0, '),
    'width 0': (lambda x: x[..., :0], ValueError, r'empty spatial size \(\d+, 3, \d+, 0\)'),
}


@pytest.mark.parametrize('name', sorted(BACKBONES))
@settings(FUZZ, max_examples=24)  # refused before any convolution: cheap
@given(data=st.data())
def test_fuzz_backbone_malformed_input(name, data):
    """Each malformed input is a one-line ``TypeError``/``ValueError`` naming the
    backbone and the problem (never a RuntimeError from a kernel), in train
    mode as in eval mode, with or without gradients."""
    draw = data.draw
    backbone = _backbone(name)
    kind = draw(st.sampled_from(sorted(MALFORMED)))
    make, error, pattern = MALFORMED[kind]
    x = make(torch.randn(draw(st.integers(0, 2)), 3, draw(st.integers(1, 40)),
                         draw(st.integers(1, 40))))
    training, grad = draw(st.booleans()), draw(st.booleans())
    try:
        backbone.train(training)
        with torch.set_grad_enabled(grad), pytest.raises(error, match=pattern) as caught:
            backbone(x)
    finally:
        backbone.eval()
    message = str(caught.value)
    assert message.startswith(f'{type(backbone).__name__} input') and '\n' not in message, message


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
