"""Joint upsamplers: shapes, parameter counts, JBU vs a slow reference, normalisation, masked loss, training."""
import math

import pytest
import torch

from convdense.models.upsamplers import (DJF, JBU, Bicubic, JointUpsampler, PacJointUpsample,
                                         PacJointUpsampleLite)


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('factor', [4, 8, 16])
@pytest.mark.parametrize('net_type', [PacJointUpsample, PacJointUpsampleLite, DJF, JBU, Bicubic])
def test_output_shapes(net_type, factor):
    torch.manual_seed(0)
    net = net_type(factor, channels=2)
    low, guide = torch.rand(2, 2, 3, 2), torch.rand(2, 3, 3 * factor, 2 * factor)
    out = net(low, guide)
    assert out.shape == (2, 2, 3 * factor, 2 * factor)
    assert torch.isfinite(out).all()


def test_parameter_counts_follow_the_architectures():
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    # DJF: two (9, 1, 5) branches of widths (96, 48, 1), fusion (64, 32, 1) on 2 channels
    djf = (conv(1, 96, 9) + conv(96, 48, 1) + conv(48, 1, 5) + conv(3, 96, 9) + conv(96, 48, 1)
           + conv(48, 1, 5) + conv(2, 64, 9) + conv(64, 32, 1) + conv(32, 1, 5))
    assert _count(DJF(4)) == djf == 56_323
    for factor in (4, 8, 16):
        n_up = int(math.log2(factor))
        pac = (conv(1, 32, 5) + 2 * conv(32, 32, 5) + conv(3, 32, 5) + conv(32, 32, 5) + conv(32, 16 * n_up, 5)
               + n_up * conv(32, 32, 5) + conv(32, 32, 5) + conv(32, 1, 5))
        assert _count(PacJointUpsample(factor)) == pac
    assert 180_000 < _count(PacJointUpsample(4)) < 186_000  # the paper's PAC x4 net: 183K
    # Lite: the reference code's per-factor widths (target, guide, kernel slices, PAC stages, fusion)
    lite = {4: ((12, 16, 22), (12, 22), 12, (12, 16), 22), 8: ((12, 16, 16), (12, 16), 12, (12, 16, 16), 20),
            16: ((8, 16, 16), (8, 16), 10, (8, 16, 16, 16), 16)}
    for factor, (target, guide, kernel, up, fusion) in lite.items():
        expected = (sum(conv(a, b, 5) for a, b in zip((1,) + target, target))
                    + sum(conv(a, b, 5) for a, b in zip((3,) + guide, guide + (kernel * len(up),)))
                    + sum(conv(a, b, 5) for a, b in zip(target[-1:] + up, up))
                    + conv(up[-1], fusion, 5) + conv(fusion, 1, 5))
        assert _count(PacJointUpsampleLite(factor)) == expected
        # DJF-sized at every factor, not growing by a PAC stage per doubling
        assert abs(expected - djf) / djf < 0.02, (factor, expected)


def test_lite_rejects_factors_without_a_width_table():
    with pytest.raises(ValueError, match='factors 4, 8 and 16'):
        PacJointUpsampleLite(32)


@pytest.mark.parametrize('guide_resize', ['bilinear', 'area'])
def test_guidance_slices_are_resized_as_stated(guide_resize, monkeypatch):
    """Stage i sees its slice resized to its own output size: bilinear (the reference) or area."""
    torch.manual_seed(0)
    net = PacJointUpsample(8, guide_resize=guide_resize)
    seen = []
    for up_conv in net.up_convs:
        original = up_conv.forward
        monkeypatch.setattr(up_conv, 'forward', lambda x, g, _f=original: (seen.append(g), _f(x, g))[1])
    low, guide = torch.rand(1, 1, 3, 4), torch.rand(1, 3, 24, 32)
    net(low, guide)
    features = net.branch_guide(guide)
    for i, adapting in enumerate(seen):
        size = (3 * 2 ** (i + 1), 4 * 2 ** (i + 1))
        piece = features[:, 16 * i:16 * (i + 1)]
        if guide_resize == 'area':
            expected = piece.unflatten(2, (size[0], -1)).unflatten(4, (size[1], -1)).mean((3, 5))
        else:
            expected = torch.nn.functional.interpolate(piece, scale_factor=2 ** (i + 1) / 8, mode='bilinear',
                                                       align_corners=False)
        torch.testing.assert_close(adapting, expected)
    with pytest.raises(ValueError, match='guide_resize'):
        PacJointUpsample(8, guide_resize='nearest')


def _slow_jbu(low, guide, factor, sigma_spatial, sigma_color, mask=None):
    """Joint bilateral upsampling by explicit loops over output pixels and low-res samples.

    With ``mask`` ``(h, w)`` bool, unknown samples get no weight, and a pixel without a
    known sample in its window takes the nearest known sample of its low-res cell."""
    _, _, height, width = guide.shape
    offset = (factor - 1) // 2
    out = torch.zeros(low.shape[1], height, width, dtype=torch.float64)
    g = guide[0].double()
    if mask is not None:
        from scipy import ndimage
        _, (near_y, near_x) = ndimage.distance_transform_edt(~mask.numpy(), return_indices=True)
    for y in range(height):
        for x in range(width):
            num = torch.zeros(low.shape[1], dtype=torch.float64)
            den = 0.0
            for j in range(low.shape[2]):
                for i in range(low.shape[3]):
                    sy, sx = factor * j + offset, factor * i + offset
                    if abs(sy - y) > factor or abs(sx - x) > factor or (mask is not None and not mask[j, i]):
                        continue
                    w = math.exp(-((sy - y) ** 2 + (sx - x) ** 2) / (2 * sigma_spatial ** 2)
                                 - float(((g[:, sy, sx] - g[:, y, x]) ** 2).sum()) / (2 * sigma_color ** 2))
                    num += w * low[0, :, j, i].double()
                    den += w
            if den == 0:
                cy, cx = y // factor, x // factor
                num, den = low[0, :, near_y[cy, cx], near_x[cy, cx]].double(), 1.0
            out[:, y, x] = num / den
    return out


@pytest.mark.parametrize('factor', [2, 4])
def test_jbu_matches_the_bilateral_formula(factor):
    torch.manual_seed(1)
    low, guide = torch.rand(1, 2, 3, 4), torch.rand(1, 3, 3 * factor, 4 * factor)
    net = JBU(factor, sigma_spatial=1.5, sigma_color=0.3)
    expected = _slow_jbu(low, guide, factor, 1.5, 0.3)
    torch.testing.assert_close(net(low, guide)[0].double(), expected, rtol=1e-4, atol=1e-5)


def test_masked_jbu_matches_the_bilateral_formula_over_known_samples():
    torch.manual_seed(4)
    low, guide = torch.rand(1, 1, 5, 6), torch.rand(1, 3, 20, 24)
    mask = torch.rand(5, 6) > 0.3
    mask[2:, :3] = False  # a hole wider than the window: nearest-known fallback
    net = JBU(4, sigma_spatial=1.5, sigma_color=0.3)
    out = net(low, guide, mask[None, None])
    expected = _slow_jbu(low, guide, 4, 1.5, 0.3, mask)
    torch.testing.assert_close(out[0].double(), expected, rtol=1e-4, atol=1e-5)
    for hole_value in (0.0, 1e4):
        other = torch.where(mask, low, torch.tensor(hole_value))
        assert torch.equal(net(other, guide, mask[None, None]), out)


NETS_WITH_MASKS = [
    dict(type='PacJointUpsampleLite', factor=8, residual='jbu', learnable_jbu=dict(guide_widths=(16, 16))),
    dict(type='PacJointUpsampleLite', factor=8),
    dict(type='PacJointUpsample', factor=4, residual='bilinear'),
    dict(type='DJF', factor=4), dict(type='DJF', factor=4, residual=True),
    dict(type='JBU', factor=4), dict(type='Bicubic', factor=8)]


@pytest.mark.parametrize('cfg', NETS_WITH_MASKS, ids=lambda c: c['type'] + str(c.get('residual', '')))
def test_all_known_mask_is_the_unmasked_net_and_hole_values_never_matter(cfg):
    """Existing checkpoints behave the same (all-known mask), and a hole's value is never read."""
    from convdense.registry import build_model
    torch.manual_seed(0)
    net = build_model(dict(cfg, channels=2) if cfg['type'] == 'PacJointUpsampleLite' else cfg).eval()
    factor = net.factor
    low, guide = torch.rand(2, 2, 5, 4), torch.rand(2, 3, 5 * factor, 4 * factor)
    ones = torch.ones(2, 1, 5, 4, dtype=torch.bool)
    mask = ones.clone()
    mask[0, 0, 1:4, :2] = False
    mask[1, 0, 4, 3] = False
    with torch.no_grad():
        assert torch.equal(net(low, guide, ones), net(low, guide))
        outs = [net(torch.where(mask, low, torch.tensor(v)), guide, mask) for v in (0.0, 1e4)]
    assert torch.equal(outs[0], outs[1]) and torch.isfinite(outs[0]).all()
    assert not torch.equal(outs[0], net(low, guide))  # the mask does change what the net computes
    model = JointUpsampler(net, low_mask=True).eval()
    with torch.no_grad():
        assert torch.equal(model.upsample(low, guide, ones), model.upsample(low, guide))
        assert torch.equal(model(dict(guide=guide, low=low, low_valid=ones)), model(dict(guide=guide, low=low)))


def test_normalisation_spans_known_pixels_and_low_mask_decides_what_the_net_sees():
    torch.manual_seed(0)
    low, guide = torch.rand(1, 1, 4, 4) + 1, torch.rand(1, 3, 16, 16)
    mask = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    mask[..., 0, :2] = False
    seen = []

    class Spy(torch.nn.Module):
        factor = 4

        def forward(self, low, guide, mask=None):
            seen.append((low.clone(), mask))
            return torch.nn.functional.interpolate(low, scale_factor=4)

    for hole_value in (0.0, 1e4):
        JointUpsampler(Spy()).upsample(torch.where(mask, low, torch.tensor(hole_value)), guide, mask)
    (first, no_mask), (second, _) = seen
    assert no_mask is None and torch.equal(first, second)  # hole values filled before normalising
    assert first.min() == 0 and first.max() == 1  # min/max of the known samples
    JointUpsampler(Spy(), low_mask=True).upsample(low, guide, mask)
    assert torch.equal(seen[-1][1], mask)


def test_learnable_jbu_starts_as_jbu_and_learns_its_bandwidths():
    torch.manual_seed(2)
    low, guide = torch.rand(1, 1, 4, 5), torch.rand(1, 3, 16, 20)
    learnable = JBU(4, sigma_spatial=1.5, sigma_color=0.3, learnable=True)
    torch.testing.assert_close(learnable(low, guide), JBU(4, sigma_spatial=1.5, sigma_color=0.3)(low, guide))
    assert sum(p.numel() for p in learnable.parameters()) == 10
    learnable(low, guide).pow(2).sum().backward()
    assert learnable.log_sigma_spatial.grad.abs() > 0
    assert learnable.color_transform.grad.abs().sum() > 0
    # a different bandwidth is the fixed layer at that bandwidth
    with torch.no_grad():
        learnable.log_sigma_spatial.fill_(math.log(3.0))
    torch.testing.assert_close(learnable(low, guide), _slow_jbu(low, guide, 4, 3.0, 0.3)[None].float(),
                               rtol=1e-4, atol=1e-5)


def test_jbu_with_a_guide_net_starts_as_jbu_and_its_guide_net_gets_gradients():
    torch.manual_seed(3)
    low, guide = torch.rand(2, 1, 4, 4), torch.rand(2, 3, 16, 16)
    net = JBU(4, learnable=True, guide_widths=(8, 8))
    torch.testing.assert_close(net(low, guide), JBU(4)(low, guide))
    net(low, guide).pow(2).sum().backward()
    # the guide net's last conv starts at zero; the colour term keeps that from being a saddle point
    assert net.guide_net[-1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='learnable'):
        JBU(4, guide_widths=(8,))


def test_channels_are_independent_images_with_shared_weights():
    torch.manual_seed(0)
    net = PacJointUpsampleLite(4, channels=2)
    low, guide = torch.rand(1, 2, 4, 4), torch.rand(1, 3, 16, 16)
    both = net(low, guide)
    torch.testing.assert_close(both[:, :1], net(low[:, :1], guide), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(both[:, 1:], net(low[:, 1:], guide), rtol=1e-5, atol=1e-6)


def test_normalisation_makes_prediction_affine_equivariant():
    torch.manual_seed(0)
    model = JointUpsampler(dict(type='PacJointUpsampleLite', factor=4)).eval()
    low, guide = torch.rand(1, 1, 4, 4) + 1, torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        base = model.upsample(low, guide)
        scaled = model.upsample(3.0 * low + 7.0, guide)  # depth in other units, other offset
    torch.testing.assert_close(scaled, 3.0 * base + 7.0, rtol=1e-4, atol=1e-4)


def test_loss_ignores_invalid_pixels_and_rejects_empty_masks():
    torch.manual_seed(0)
    model = JointUpsampler(dict(type='DJF', factor=4))
    inputs = dict(guide=torch.rand(1, 3, 16, 16), low=torch.rand(1, 1, 4, 4))
    gt = torch.rand(1, 1, 16, 16)
    valid = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    valid[..., :4, :] = False
    corrupted = gt.clone()
    corrupted[..., :4, :] = 1e6
    loss = model(inputs, dict(gt=gt, valid=valid), mode='loss')['loss']
    assert model(inputs, dict(gt=corrupted, valid=valid), mode='loss')['loss'].item() == pytest.approx(loss.item())
    with pytest.raises(ValueError, match='no valid'):
        model(inputs, dict(gt=gt, valid=torch.zeros_like(valid)), mode='loss')


def test_loss_span_bounds_a_crop_whose_input_range_collapsed():
    """'input_or_target' measures each sample's error in the larger of its input's and its
    ground truth's range: a sample whose low-res range is near zero while its ground truth
    spans an edge no longer dominates the batch; a sample whose ground truth stays within
    the input's range is scored exactly as the reference protocol scores it; inference is
    unchanged."""
    torch.manual_seed(0)
    reference = JointUpsampler(dict(type='DJF', factor=4))
    robust = JointUpsampler(dict(type='DJF', factor=4), loss_span='input_or_target')
    robust.load_state_dict(reference.state_dict())
    guide = torch.rand(2, 3, 16, 16)
    low = torch.stack([torch.rand(1, 4, 4) * 10, 5 + 1e-3 * torch.rand(1, 4, 4)])  # sample 1: flat input
    gt = torch.nn.functional.interpolate(low, size=(16, 16), mode='nearest')
    gt[1, :, :, 8:] += 40.0                                         # ... under an edge it cannot see
    valid = torch.ones(2, 1, 16, 16, dtype=torch.bool)
    inputs = dict(guide=guide, low=low)

    def loss(model, i):
        return model(dict(guide=guide[i:i + 1], low=low[i:i + 1]), dict(gt=gt[i:i + 1], valid=valid[i:i + 1]),
                     mode='loss')['loss'].item()
    # the reference loss of the flat sample is its error in units of ~1e-3: enormous
    assert loss(reference, 1) > 1e6 * loss(reference, 0)
    # in units of the ground truth's own range it is of order one
    assert loss(robust, 1) < 1.0
    # the ordinary sample: the ground truth (nearest-upsampled input) is within the input's range
    assert loss(robust, 0) == pytest.approx(loss(reference, 0), rel=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(robust(inputs), reference(inputs))
    with pytest.raises(ValueError, match='loss_span must be one of'):
        JointUpsampler(dict(type='DJF', factor=4), loss_span='target')


def test_mismatched_guide_is_a_clear_error():
    model = JointUpsampler(dict(type='Bicubic', factor=8))
    with pytest.raises(ValueError, match='x8 needs 32x32'):
        model(dict(guide=torch.rand(1, 3, 30, 32), low=torch.rand(1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r'mask: expected shape \(1, 1, 4, 4\)'):
        model(dict(guide=torch.rand(1, 3, 32, 32), low=torch.rand(1, 1, 4, 4),
                   low_valid=torch.ones(1, 1, 4, 3, dtype=torch.bool)))
    with pytest.raises(ValueError, match='mask: expected shape'):
        PacJointUpsampleLite(8)(torch.rand(1, 1, 4, 4), torch.rand(1, 3, 32, 32), torch.ones(1, 4, 4))


def test_short_training_lowers_the_loss():
    torch.manual_seed(0)
    model = JointUpsampler(dict(type='PacJointUpsampleLite', factor=4))  # the reference design
    # a step edge in the target that the guide shows too: learnable from the guide
    guide = torch.zeros(4, 3, 32, 32)
    guide[..., 13:] = 1.0
    guide += 0.05 * torch.rand_like(guide)
    gt = guide[:, :1].clone() + 0.5
    low = gt[..., 1::4, 1::4]
    data = dict(inputs=dict(guide=guide, low=low), data_samples=dict(gt=gt, valid=torch.ones_like(gt, dtype=torch.bool)))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(25):
        loss = model(**data, mode='loss')['loss']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_flow_values_scale_with_resolution():
    # low-res flow is in low-res pixels: a uniform 1-pixel motion is 4 pixels at x4
    model = JointUpsampler(dict(type='Bicubic', factor=4), values_scale_with_resolution=True)
    low = torch.ones(1, 2, 3, 3)
    torch.testing.assert_close(model.upsample(low, torch.rand(1, 3, 12, 12)), torch.full((1, 2, 12, 12), 4.0))
    gt = torch.full((1, 2, 12, 12), 4.0)
    data_samples = dict(gt=gt, valid=torch.ones(1, 1, 12, 12, dtype=torch.bool))
    loss = model(dict(guide=torch.rand(1, 3, 12, 12), low=low + 0.5 * torch.rand_like(low)), data_samples, mode='loss')
    assert loss['loss'].item() < 1.0  # compared in low-res units, not off by the factor


@pytest.mark.parametrize('residual,learnable_jbu', [('bilinear', False), ('jbu', False), ('jbu', True)])
def test_untrained_residual_net_is_exactly_its_base(residual, learnable_jbu):
    torch.manual_seed(0)
    net = PacJointUpsample(4, channels=2, residual=residual, learnable_jbu=learnable_jbu).eval()
    low, guide = torch.rand(1, 2, 4, 4), torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        out = net(low, guide)
        if residual == 'bilinear':
            base = torch.nn.functional.interpolate(low, scale_factor=4, mode='bilinear', align_corners=False)
        else:
            base = torch.cat([JBU(4)(low[:, c:c + 1], guide) for c in range(2)], dim=1)
    torch.testing.assert_close(out, base)
    with pytest.raises(ValueError, match='residual'):
        PacJointUpsample(4, residual='bicubic')
