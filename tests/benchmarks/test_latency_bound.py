"""The FLOP-proportional latency estimate of ``benchmarks/latency_bound.py``:
the formula, the module-name alignment it relies on, and the timing shares
(never a timing value)."""
import pytest
import torch

from tests.helpers.e2e import load_script


@pytest.fixture(scope='module')
def bound():
    return load_script('benchmarks/latency_bound.py')


@pytest.fixture(scope='module')
def models(bound):
    models, unavailable = bound.build_models(
        ['resnet50', 'hetconv-resnet50_p4', 'oct-resnet50_a0.5', 'res2net50_26w4s'])
    assert not unavailable
    return models


def test_formula_weights_each_module_by_its_share(bound):
    shares = {'a': 0.3, 'b': 0.2}
    reference = {'a': 90, 'b': 10}
    # a drops to a third of its multiply-adds, b is unchanged: 1 - 0.3 * 2/3.
    assert bound.flop_proportional_ratio(shares, reference, {'a': 30, 'b': 10}) == \
        pytest.approx(0.8)
    assert bound.flop_proportional_ratio(shares, reference, reference) == pytest.approx(1.0)
    with pytest.raises(KeyError, match="'b'"):
        bound.flop_proportional_ratio(shares, reference, {'a': 30})


def test_module_flops_align_with_resnet_names(bound, models):
    image = torch.zeros(1, 3, 64, 64)
    names = bound.stage_convs(models['resnet50'])
    assert len(names) == 3 * 16 + 4  # three convs per bottleneck and four shortcuts
    reference = bound.module_flops(models['resnet50'], image)
    het = bound.module_flops(models['hetconv-resnet50_p4'], image)
    octave = bound.module_flops(models['oct-resnet50_a0.5'], image)
    for name in names:
        # HetConv P=4 keeps 1/4 of each filter's 3x3 kernels: (9/4 + 3/4) / 9 of the 3x3 conv.
        expected = 1 / 3 if name.endswith('conv2') else 1.0
        assert het[name] / reference[name] == pytest.approx(expected, rel=1e-6), name
    # Inside a stage each octave conv at alpha=.5 keeps (1-a)^2 + (2a(1-a) + a^2)/4 = 7/16.
    assert octave['layer2.1.conv2'] / reference['layer2.1.conv2'] == pytest.approx(7 / 16)
    assert octave['layer2.1.conv3'] / reference['layer2.1.conv3'] == pytest.approx(7 / 16)
    # The last stage is a plain ResNet stage after its first block.
    assert octave['layer4.1.conv2'] == reference['layer4.1.conv2']
    with pytest.raises(KeyError):
        bound.flop_proportional_ratio({name: 0.01 for name in names}, reference,
                                      bound.module_flops(models['res2net50_26w4s'], image))


def test_conv_shares_are_fractions_of_the_forward(bound, models):
    model = models['resnet50']
    names = bound.stage_convs(model)
    image = torch.randn(1, 3, 64, 64)
    total, shares = bound.conv_shares(model, image, names, warmup=1, repeats=3)
    assert total > 0 and set(shares) == set(names)
    assert all(0 < share < 1 for share in shares.values())
    assert 0 < sum(shares.values()) < 1
    # The hooks are removed afterwards.
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
