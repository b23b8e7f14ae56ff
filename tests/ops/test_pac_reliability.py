"""PAC engine edge cases: dtypes, double backward, a drifting learnable alpha."""
import pytest
import torch

from convdense.ops.pac import (PacConv2d, PacConvTranspose2d, PacPool2d, pac_conv2d,
                               pac_kernel2d)
from convdense.ops.pac_kernel import MIN_INV_ALPHA
from convdense.ops.pac_tiled import DOUBLE_BACKWARD_ERROR


def _layers():
    torch.manual_seed(0)
    x, guide = torch.randn(2, 4, 7, 6), torch.randn(2, 3, 7, 6)
    return [
        (PacConv2d(4, 5, 3, padding=1), x, guide),
        (PacConv2d(4, 4, 3, padding=1, shared_filters=True), x, guide),
        (PacConvTranspose2d(4, 5, 3, stride=2, padding=1, output_padding=1), x,
         torch.randn(2, 3, 14, 12)),
        (PacPool2d(3, padding=1), x, guide),
    ]


@pytest.mark.parametrize('index', range(4))
@pytest.mark.parametrize('loss', ['square', 'linear'])
def test_double_backward_names_the_limitation(index, loss):
    layer, x, guide = _layers()[index]
    x = x.clone().requires_grad_()
    out = layer(x, guide)
    value = out.square().sum() if loss == 'square' else out.sum()
    (grad_x, ) = torch.autograd.grad(value, x, create_graph=True)
    with pytest.raises(RuntimeError, match='first-order gradients only'):
        grad_x.sum().backward()
    # first-order gradients are unaffected by create_graph
    (plain, ) = torch.autograd.grad(layer(x, guide).square().sum() if loss == 'square'
                                    else layer(x, guide).sum(), x)
    torch.testing.assert_close(grad_x.detach(), plain)
    assert 'double backward' in DOUBLE_BACKWARD_ERROR


def test_mixed_or_integer_dtypes_are_a_type_error():
    layer, x, guide = _layers()[0]
    with pytest.raises(TypeError, match='same dtype'):
        layer(x.double(), guide)
    kernel = pac_kernel2d(guide, 3, padding=1)
    with pytest.raises(TypeError, match='floating-point'):
        pac_conv2d(x.long(), kernel, layer.weight.detach(), padding=1)
    # all float64: fine, and equal to float32 up to rounding
    torch.testing.assert_close(layer.double()(x.double(), guide.double()).float(),
                               layer.float()(x, guide), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('alpha', [0.0, -0.5])
def test_learnable_alpha_at_or_below_zero_keeps_the_kernel_finite(alpha):
    torch.manual_seed(0)
    layer = PacConv2d(4, 5, 3, padding=1, kernel_type='inv_1_1')
    with torch.no_grad():
        layer.inv_alpha.fill_(alpha)  # where an optimizer may drive it
    x, guide = torch.randn(1, 4, 6, 6), torch.randn(1, 3, 6, 6)
    out = layer(x, guide)
    out.square().sum().backward()
    assert torch.isfinite(out).all()
    assert torch.isfinite(layer.inv_lambda.grad) and layer.inv_alpha.grad == 0
    kernel = layer.compute_kernel(guide)
    assert kernel.max() <= MIN_INV_ALPHA ** -1 * (1 + 1e-6)


def test_non_positive_float_alpha_is_a_value_error():
    with pytest.raises(ValueError, match='alpha > 0'):
        pac_kernel2d(torch.randn(1, 3, 5, 5), 3, padding=1, kernel_type='inv_1_1', inv_alpha=0.0)


def test_normalised_masked_kernel_has_finite_gradients_when_valid_taps_are_far_in_guide_space():
    """A window whose valid taps all lie far from its centre in guide space: the float32
    Gaussian of each underflows towards 0, and ``K / total`` had a finite value but an
    infinite gradient (the NaN that stopped sensor-holes training). Normalised, the kernel
    is the float64 reference, with finite gradients."""
    from convdense.ops.pac_kernel import pac_kernel2d
    guide = torch.zeros(1, 1, 5, 5)
    guide[0, 0, 2, 2] = 13.5                      # the centre, 13.5 away from every other pixel
    mask = torch.ones(1, 1, 5, 5)
    mask[0, 0, 2, 2] = 0                          # the centre's own sample is unknown
    guide32 = guide.clone().requires_grad_(True)
    kernel = pac_kernel2d(guide32, 3, padding=1, normalize=True, mask=mask)
    (kernel[..., 2, 2] * torch.arange(9.).view(1, 1, 3, 3)).sum().backward()
    assert torch.isfinite(guide32.grad).all()
    g = guide.double()
    taps = torch.nn.functional.pad(g, (1, 1, 1, 1), mode='replicate')[0, 0, 2:5, 2:5]
    valid = torch.nn.functional.pad(mask.double(), (1, 1, 1, 1))[0, 0, 2:5, 2:5]
    reference = torch.exp(-0.5 * (taps - g[0, 0, 2, 2]) ** 2) * valid
    torch.testing.assert_close(kernel[0, 0, :, :, 2, 2].double(), reference / reference.sum(), rtol=1e-5, atol=1e-7)
