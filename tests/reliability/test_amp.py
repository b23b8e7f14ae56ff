"""Mixed precision: every convdense op and model under ``torch.autocast`` (bf16 on
the CPU, fp16 on CUDA where there is one), and ``tools/train.py --amp`` on the CPU.

Tolerances. bf16 keeps 8 significant bits (relative spacing 2^-8 = 0.39 %);
under autocast each conv/matmul rounds its inputs and its output to bf16 and
accumulates in fp32. One layer is therefore off by a few roundings of its
largest terms: ``OP_TOL = 2^-6`` (1.6 %) of the fp32 output's largest value
(fp16 has 3 more bits, so the bound holds there too). A whole network stacks
~50 such layers with normalisation in between, and the rounding errors add up
like a random walk rather than compound: ``MODEL_TOL = 4 %`` relative
(Frobenius) error per output. Both bounds leave a margin of 2-4x over the
errors these tests see; a path that computes in the wrong dtype (fp32 where
autocast asks bf16) is caught by the dtype checks, not by the tolerance.
"""
import copy
import os.path as osp

import pytest
import torch

from convdense.ops.adaptive_conv import AdaptiveConv2d
from convdense.ops.deploy import DeployableMixin
from convdense.ops.hetconv import HetConv2d
from convdense.ops.octconv import OctaveConv2d
from convdense.ops.pac import PacConv2d, PacConvTranspose2d, PacPool2d
from tests.helpers import e2e

OP_TOL = 2 ** -6
MODEL_TOL = 0.04

DEVICES = [pytest.param('cpu', id='cpu-bf16'),
           pytest.param('cuda', id='cuda-fp16', marks=[pytest.mark.cuda, pytest.mark.skipif(
               not torch.cuda.is_available(), reason='needs a CUDA device')])]
AUTOCAST_DTYPE = dict(cpu=torch.bfloat16, cuda=torch.float16)


def _tensors(out):
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for t in out if t is not None]


def _op_cases():
    """(name, module, inputs) with inputs a tuple of positional args."""
    x, guide = torch.randn(2, 8, 12, 10), torch.randn(2, 3, 12, 10)
    octave_in = (x[:, :4], x[:, 4:, ::2, ::2])
    dataset_gates = AdaptiveConv2d(8, 8, 3, padding=1)
    torch.nn.init.normal_(dataset_gates.gate_logits)
    return [
        ('PacConv2d', PacConv2d(8, 6, 3, padding=1), (x, guide)),
        ('PacConv2d-shared', PacConv2d(8, 8, 5, padding=2, shared_filters=True,
                                       kernel_type='inv_1_1'), (x, guide)),
        ('PacConvTranspose2d', PacConvTranspose2d(8, 6, 5, stride=2, padding=2,
                                                  output_padding=1),
         (x, torch.randn(2, 3, 24, 20))),
        ('PacPool2d', PacPool2d(3, padding=1), (x, guide)),
        ('OctaveConv2d', OctaveConv2d(8, 8, 3, padding=1), (octave_in, )),
        ('OctaveConv2d-stride2', OctaveConv2d(8, 8, 3, stride=2, padding=1), (octave_in, )),
        ('OctaveConv2d-1x1', OctaveConv2d(8, 16, 1, alpha_in=0.5, alpha_out=0.0), (octave_in, )),
        ('HetConv2d', HetConv2d(8, 8, 3, part=4), (x, )),
        ('HetConv2d-stride2', HetConv2d(8, 16, 3, part=2, stride=2), (x, )),
        ('AdaptiveConv2d-dataset', dataset_gates, (x, )),
        ('AdaptiveConv2d-pixel', AdaptiveConv2d(8, 8, 3, padding=1, mode='pixel'), (x, )),
    ]


OP_NAMES = [name for name, _, _ in _op_cases()]


def _to(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    return tuple(_to(v, device) for v in value)


def _assert_close_to_fp32(low, reference, tol, what):
    for a, b in zip(_tensors(low), _tensors(reference)):
        assert a.shape == b.shape, what
        assert torch.isfinite(a).all(), what
        error = (a.float() - b.float()).abs().max().item()
        assert error <= tol * b.abs().max().item(), \
            f'{what}: max error {error:.3g} vs fp32 scale {b.abs().max().item():.3g}'


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('name', OP_NAMES)
def test_op_under_autocast_is_low_precision_and_close_to_fp32(name, device):
    """Training (grad) and inference (the deployed layer, or no-grad for layers
    without a deploy form) both compute in the autocast dtype, as F.conv2d does,
    within OP_TOL of fp32."""
    torch.manual_seed(0)
    _, module, inputs = next(case for case in _op_cases() if case[0] == name)
    module, inputs = module.to(device), _to(inputs, device)
    low_dtype = AUTOCAST_DTYPE[device]
    reference = module(*inputs)
    inference = module
    if isinstance(module, DeployableMixin):
        inference = copy.deepcopy(module).switch_to_deploy()
    with torch.autocast(device, dtype=low_dtype):
        trained = module(*inputs)
        with torch.no_grad():
            inferred = inference(*inputs)
    for path, out in (('grad path', trained), ('inference', inferred)):
        _assert_close_to_fp32(out, reference, OP_TOL, f'{name} {path}')
    # the conv-type output is in the autocast dtype, on both paths alike
    first_trained, first_inferred = _tensors(trained)[0], _tensors(inferred)[0]
    assert first_inferred.dtype == first_trained.dtype
    if not name.startswith('AdaptiveConv2d'):  # its gates mix in fp32 (softmax is fp32)
        assert first_trained.dtype == low_dtype
    if not list(module.parameters()):  # PacPool2d
        return
    # gradients flow back to the fp32 parameters
    sum(t.float().sum() for t in _tensors(trained)).backward()
    grads = [p.grad for p in module.parameters() if p.requires_grad]
    assert grads and all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all()
                         for g in grads)


BACKBONES = [
    dict(type='convdense.OctResNet', depth=50),
    dict(type='convdense.HetConvResNet', depth=50),
    dict(type='convdense.Res2Net', depth=50),
    dict(type='convdense.ACNet', depth=50),
    dict(type='convdense.ACNet', depth=50, mode='pixel'),
]


def _relative_error(low, reference):
    return ((low.float() - reference).norm() / reference.norm()).item()


@pytest.mark.slow
@pytest.mark.parametrize('cfg', BACKBONES, ids=lambda c: c['type'].split('.')[1] + c.get('mode', ''))
def test_backbone_under_autocast_matches_fp32(cfg):
    from tests.models.backbone_checks import build
    torch.manual_seed(0)
    backbone = build(dict(cfg))
    backbone.eval()  # mmdet's ResNet.train() returns None
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        reference = backbone(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            low = backbone(x)
    for index, (a, b) in enumerate(zip(low, reference)):
        assert a.shape == b.shape and a.dtype == torch.bfloat16
        error = _relative_error(a, b)
        assert error <= MODEL_TOL, f'{cfg["type"]} output {index}: relative error {error:.3f}'


@pytest.mark.parametrize('net', [
    dict(type='PacJointUpsample', factor=4),
    dict(type='PacJointUpsampleLite', factor=8, residual='jbu', learnable_jbu=dict(guide_widths=(8, ))),
    dict(type='DJF', factor=4),
    dict(type='JBU', factor=4),
    dict(type='Bicubic', factor=4),
], ids=lambda n: n['type'] + ('-jbu' if n.get('residual') else ''))
def test_upsampler_under_autocast_matches_fp32(net):
    from convdense.registry import build_model
    torch.manual_seed(0)
    model = build_model(net).eval()
    factor = net['factor']
    low, guide = torch.rand(1, 1, 6, 5), torch.rand(1, 3, 6 * factor, 5 * factor)
    with torch.no_grad():
        reference = model(low, guide)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = model(low, guide)
    assert out.shape == reference.shape and torch.isfinite(out).all()
    error = _relative_error(out, reference)
    assert error <= MODEL_TOL, f'{net["type"]}: relative error {error:.3f}'


# ------------------------------------------------------------- tools/train.py --amp

def test_enable_amp_picks_the_cpu_wrapper_without_cuda(monkeypatch):
    from mmengine.config import Config

    from convdense import launch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))))
    launch.enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'convdense.CpuAmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))))
    launch.enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    with pytest.raises(launch.ConfigError, match='is not OptimWrapper'):
        launch.enable_amp(Config(dict(optim_wrapper=dict(type='ZeroRedundancy'))))


def test_cpu_amp_wrapper_runs_the_forward_in_bf16_and_keeps_fp32_state():
    from mmengine.registry import OPTIM_WRAPPERS
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 1))
    wrapper = OPTIM_WRAPPERS.build(dict(type='convdense.CpuAmpOptimWrapper',
                                        optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    before = [p.detach().clone() for p in model.parameters()]
    with wrapper.optim_context(model):
        out = model(torch.randn(2, 3, 8, 8))
        loss = out.float().square().mean()
    assert out.dtype == torch.bfloat16
    wrapper.update_params(loss)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    with pytest.raises(ValueError, match='bfloat16'):
        OPTIM_WRAPPERS.build(dict(type='convdense.CpuAmpOptimWrapper', dtype='float16',
                                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))


def test_mmcv_cpu_kernels_take_half_precision_inputs():
    """compat fix 9: mmcv's CPU nms/roi_align kernels are float32-only; bf16
    scores and features (CPU autocast) raised "expected scalar type Float"."""
    from mmcv.ops import RoIAlign, nms
    torch.manual_seed(0)
    boxes = torch.tensor([[0., 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(boxes, scores.bfloat16(), 0.5)[1].tolist() == nms(boxes, scores, 0.5)[1].tolist()
    features, rois = torch.randn(1, 4, 16, 16, requires_grad=True), torch.tensor([[0., 1, 1, 9, 9]])
    layer = RoIAlign((3, 3), 1.0, 2)
    reference = layer(features, rois)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low = layer(features.bfloat16(), rois)
    assert low.dtype == torch.bfloat16
    _assert_close_to_fp32(low, reference, OP_TOL, 'RoIAlign')
    low.float().sum().backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()


def _train_amp(cfg, work_dir):
    """Dump ``cfg``, train it with ``tools/train.py --amp``; return the logged losses."""
    path = osp.join(work_dir, 'tiny_config.py')
    cfg.dump(path)
    e2e.load_tool('train').main([path, '--work-dir', work_dir, '--amp'])
    return e2e.read_losses(work_dir)


def _assert_trained(losses, iters):
    assert len(losses) == iters and all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU (bf16) path')
@pytest.mark.parametrize('config,kind', [
    ('configs/mask_rcnn/mask-rcnn_oct-resnet-50_fpn_1x_coco.py', 'det'),
    ('configs/segmentation/upernet_hetconv-resnet-50_ade20k.py', 'seg'),
], ids=['det-oct', 'seg-hetconv'])
def test_train_amp_on_cpu(tmp_path, config, kind):
    data_root = str(tmp_path / 'data')
    (e2e.make_tiny_coco if kind == 'det' else e2e.make_tiny_ade)(data_root, n_train=2, n_val=1)
    cfg = e2e.shrink_config(osp.join(e2e.REPO, config), data_root, kind, iters=2)
    _assert_trained(_train_amp(cfg, str(tmp_path)), 2)


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU (bf16) path')
def test_train_amp_on_cpu_pac_config(tmp_path):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(e2e.REPO, 'configs/joint_upsampling/pacjointupsample_lite_x8_demo.py'))
    cfg.train_cfg.update(max_iters=3, val_interval=100)
    cfg.param_scheduler = []
    cfg.train_dataloader.batch_size = 2
    cfg.train_dataloader.dataset.data_root = osp.join(e2e.REPO, 'data/middlebury')
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=3)
    cfg.custom_hooks = []
    cfg.log_processor = dict(type='LogProcessor', window_size=1, by_epoch=False)
    _assert_trained(_train_amp(cfg, str(tmp_path)), 3)
