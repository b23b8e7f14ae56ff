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
