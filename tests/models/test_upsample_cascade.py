"""JointUpsampleCascade: one stage is that stage, two stages are the nets run by hand
(each through its own wrapper's normalisation), the samples land where the protocol
takes them, and factors that do not multiply to the total are refused."""
import pytest
import torch

from convdense.models.upsamplers import JointUpsampler, PacJointUpsampleLite
from convdense.models.upsamplers.cascade import JointUpsampleCascade, protocol_shift
from convdense.registry import MODELS



@pytest.fixture(autouse=True)
def convdense_scope():
    """Build in the convdense scope whatever scope an earlier test in this process left
    (a registry builds nested configs in the current default scope)."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('convdense'):
        yield


LITE = dict(type='PacJointUpsampleLite', factor=4, residual='jbu', learnable_jbu=dict(guide_widths=(16, 16)))


def _trained_looking(net, seed):
    """Perturb every parameter, so the residual branch is not the zero it starts as."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net.eval()


def _area(guide, k):
    """Plain-torch area resize by an integer ``k``: the mean of each k x k block."""
    b, c, h, w = guide.shape
    return guide.reshape(b, c, h // k, k, w // k, k).mean(dim=(3, 5))


def _shift_by_index(image, s):
    """``out[y, x] = image[clamp(y - s), clamp(x - s)]`` by gathering indices."""
    h, w = image.shape[2:]
    rows = (torch.arange(h) - s).clamp(0, h - 1)
    cols = (torch.arange(w) - s).clamp(0, w - 1)
    return image[:, :, rows][:, :, :, cols]


@pytest.mark.parametrize('flow', [False, True])
def test_one_stage_is_that_stage_exactly(flow):
    torch.manual_seed(0)
    net = _trained_looking(PacJointUpsampleLite(4, residual='jbu', learnable_jbu=True), 1)
    single = JointUpsampler(net, values_scale_with_resolution=flow, low_mask=True)
    cascade = JointUpsampler(JointUpsampleCascade([net], factor=4), values_scale_with_resolution=flow,
                             low_mask=True)
    low, guide = torch.rand(2, 2 if flow else 1, 6, 5) * 30, torch.rand(2, 3, 24, 20)
    mask = torch.rand(2, 1, 6, 5) > 0.3
    with torch.no_grad():
        assert torch.equal(cascade.upsample(low, guide), single.upsample(low, guide))
        assert torch.equal(cascade.upsample(low, guide, mask), single.upsample(low, guide, mask))


@pytest.mark.parametrize('flow', [False, True])
def test_two_stages_are_the_two_nets_run_by_hand(flow):
    torch.manual_seed(0)
    cascade = MODELS.build(dict(type='JointUpsampler', values_scale_with_resolution=flow, low_mask=True,
                                net=dict(type='JointUpsampleCascade', factor=16, stages=[LITE, LITE])))
    first, second = (_trained_looking(stage, seed) for seed, stage in enumerate(cascade.net.stages))
    by_hand = [JointUpsampler(net, values_scale_with_resolution=flow, low_mask=True) for net in (first, second)]
    channels = 2 if flow else 1
    low, guide = torch.rand(1, channels, 5, 4) * 50 + 10, torch.rand(1, 3, 80, 64)
    mask = torch.rand(1, 1, 5, 4) > 0.25
    mask[0, 0, 0, 0] = True
    with torch.no_grad():
        # x4 then x4 puts low-res pixel j at 16j + 5; the protocol samples it at 16j + 7
        shifted = _shift_by_index(guide, -2)
        middle = by_hand[0].upsample(low, _area(shifted, 4), mask)
        expected = _shift_by_index(by_hand[1].upsample(middle, shifted), 2)
        got = cascade.upsample(low, guide, mask)
    assert got.shape == (1, channels, 80, 64)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    assert (got - middle.repeat_interleave(4, 2).repeat_interleave(4, 3)).abs().max() > 1e-2  # stage 2 acts


class _Place(torch.nn.Module):
    """Puts input pixel j at output ``f*j + (f-1)//2`` (the protocol's geometry), zeros elsewhere."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, low, guide, mask=None):
        f = self.factor
        out = low.new_zeros(*low.shape[:2], low.shape[2] * f, low.shape[3] * f)
        out[:, :, (f - 1) // 2::f, (f - 1) // 2::f] = low
        return out


@pytest.mark.parametrize('factors', [(4, 4), (2, 8), (8, 2), (2, 2, 4)])
def test_aligned_chain_puts_the_samples_where_the_protocol_took_them(factors):
    total = 1
    for f in factors:
        total *= f
    cascade = JointUpsampleCascade([_Place(f) for f in factors], factor=total)
    low = torch.rand(1, 1, 4, 4) + 1
    out = cascade(low, torch.rand(1, 3, 4 * total, 4 * total))
    o = (total - 1) // 2
    assert torch.equal(out[:, :, o::total, o::total], low)
    assert protocol_shift([4, 4]) == 2 and protocol_shift([16]) == 0
    unaligned = JointUpsampleCascade([_Place(f) for f in factors], factor=total, align=False)
    assert unaligned.shift == 0 and (protocol_shift(factors) == 0 or not torch.equal(
        unaligned(low, torch.rand(1, 3, 4 * total, 4 * total))[:, :, o::total, o::total], low))


def test_factors_that_do_not_multiply_to_the_total_are_refused():
    with pytest.raises(ValueError, match=r"^stage factors 4 x 4 = 16, not the cascade's factor 8$"):
        MODELS.build(dict(type='JointUpsampleCascade', factor=8, stages=[LITE, LITE]))
    with pytest.raises(ValueError, match='at least one'):
        JointUpsampleCascade([], factor=4)
    cascade = JointUpsampleCascade([_Place(4), _Place(4)], factor=16)
    with pytest.raises(ValueError, match='x16 needs 32x32'):
        cascade(torch.rand(1, 1, 2, 2), torch.rand(1, 3, 16, 16))
