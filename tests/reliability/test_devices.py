"""The ops and models give the same values and gradients on every device.

The PAC ops take the ``device`` fixture: in float32 on the CPU and on CUDA
they must match a float64 CPU run. The models (backbones, the joint upsampler)
are compared CUDA against CPU and carry the ``cuda`` marker only: on a
CPU-only machine they are reported as skipped ("needs a CUDA device"); on a
GPU runner ``pytest -m cuda`` (``tools/run_gpu_checks.sh``) runs them.
"""
import copy

import pytest
import torch

from tests.conftest import requires_cuda

on_cuda = [pytest.mark.cuda, requires_cuda]


def _same_on_both(module_ref, inputs_ref, device, atol, rtol=1e-4, dtype=torch.float32,
                  grad_rtol=1e-3):
    """Forward + backward of a sum of squares with ``module_ref`` on ``inputs_ref``
    and with a copy in ``dtype`` on ``device``; compare outputs and every gradient."""
    # TF32 (cuDNN's default for convolutions on Ampere and later) rounds products to
    # 10 mantissa bits: off for the comparison, so CUDA is held to float32 accuracy.
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    module_gpu = copy.deepcopy(module_ref).to(device, dtype)
    inputs_gpu = [x.detach().to(device, dtype).requires_grad_(x.requires_grad)
                  for x in inputs_ref]
    module_cpu, inputs_cpu = module_ref, inputs_ref
    out_cpu, out_gpu = module_cpu(*inputs_cpu), module_gpu(*inputs_gpu)
    if isinstance(out_cpu, (tuple, list)):
        out_cpu, out_gpu = torch.cat([o.flatten() for o in out_cpu]), \
            torch.cat([o.flatten() for o in out_gpu])
    torch.testing.assert_close(out_gpu.cpu().to(out_cpu.dtype), out_cpu, atol=atol, rtol=rtol)
    out_cpu.square().sum().backward()
    out_gpu.square().sum().backward()
    for (name, p_cpu), (_, p_gpu) in zip(module_cpu.named_parameters(),
                                         module_gpu.named_parameters()):
        if p_cpu.grad is not None:
            _close_in_norm(p_gpu.grad, p_cpu.grad, grad_rtol, f'gradient of {name}')
    for index, (x_cpu, x_gpu) in enumerate(zip(inputs_cpu, inputs_gpu)):
        if x_cpu.requires_grad:
            _close_in_norm(x_gpu.grad, x_cpu.grad, grad_rtol, f'gradient of input {index}')


def _close_in_norm(actual, expected, rtol, what):
    """``|actual - expected| <= rtol * |expected|`` in the 2-norm: a deep network's
    gradients span orders of magnitude, so an elementwise tolerance is either
    meaningless for the large entries or fails on the float32 noise of tiny ones."""
    actual = actual.detach().cpu().to(expected.dtype)
    error, scale = (actual - expected).norm().item(), expected.norm().item()
    assert error <= rtol * scale, f'{what}: |difference| {error:.3g} > {rtol} * |expected| {scale:.3g}'



@pytest.mark.parametrize('name, args, kwargs, shapes', [
    ('PacConv2d', (4, 6, 5), dict(padding=2), [(2, 4, 20, 24), (2, 3, 20, 24)]),
    ('PacConv2d', (4, 6, 3), dict(padding=1, kernel_type='inv_0.5_1', normalize_kernel=True),
     [(2, 4, 17, 13), (2, 3, 17, 13)]),
    ('PacConvTranspose2d', (4, 3, 5), dict(stride=2, padding=2, output_padding=1),
     [(2, 4, 9, 11), (2, 3, 18, 22)]),
    ('PacPool2d', (3,), dict(padding=1), [(2, 4, 16, 16), (2, 3, 16, 16)]),
], ids=['conv', 'conv-inv-normalized', 'transposed', 'pool'])
def test_pac_ops_in_float32_on_each_device_match_float64(device, name, args, kwargs, shapes):
    from convdense.ops import pac
    torch.manual_seed(0)
    module = getattr(pac, name)(*args, **kwargs).double()
    inputs = [torch.randn(shape, dtype=torch.float64, requires_grad=True) for shape in shapes]
    _same_on_both(module, inputs, device, atol=1e-4)


@pytest.mark.parametrize('backbone', [
    dict(type='convdense.Res2Net', depth=50), dict(type='convdense.OctResNet', depth=50),
    dict(type='convdense.HetConvResNet', depth=50), dict(type='convdense.ACNet', depth=50)],
    ids=lambda cfg: cfg['type'])
@pytest.mark.parametrize('device', [pytest.param(torch.device('cuda'), marks=on_cuda)])
def test_backbones_on_cuda_match_cpu(device, backbone):
    from tests.models.backbone_checks import build
    torch.manual_seed(0)
    model = build(dict(backbone, init_cfg=None)).eval()  # eval: BN uses running statistics
    _same_on_both(model, [torch.randn(2, 3, 64, 96)], device, atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize('device', [pytest.param(torch.device('cuda'), marks=on_cuda)])
def test_joint_upsampler_loss_on_cuda_matches_cpu(device):
    from convdense.registry import build_model
    torch.manual_seed(0)
    model = build_model(dict(type='JointUpsampler', net=dict(
        type='PacJointUpsampleLite', factor=4, channels=1, residual='jbu')))
    guide, low = torch.rand(2, 3, 32, 32), torch.rand(2, 1, 8, 8)
    samples = dict(gt=torch.rand(2, 1, 32, 32), valid=torch.ones(2, 1, 32, 32, dtype=torch.bool))
    gpu_model = copy.deepcopy(model).to(device)
    loss_cpu = model(dict(guide=guide, low=low), samples, mode='loss')['loss']
    loss_gpu = gpu_model(dict(guide=guide.to(device), low=low.to(device)),
                         {k: v.to(device) for k, v in samples.items()}, mode='loss')['loss']
    torch.testing.assert_close(loss_gpu.cpu(), loss_cpu, atol=1e-5, rtol=1e-4)
