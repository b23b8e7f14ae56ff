"""Checks every convdense backbone must pass: mmdet/mmseg ResNet conventions.

Shared by the backbone test files. Each ``assert_*`` raises ``AssertionError``
naming the offending output, module or parameter. A backbone is anything built
on mmdet's ``ResNet`` (stem outside ``layer1..layer4``, stages named by
``res_layers``), built from a plain config dict with :func:`build`.

Typical use::

    from tests.models.backbone_checks import build, assert_output_shapes
    assert_output_shapes(build(dict(type='convdense.X', depth=50)), (97, 131))
"""
import math

import torch
from torch.nn.modules.batchnorm import _BatchNorm

#: Output channels and strides of a ResNet-50-style backbone, stages 0..3.
RESNET_CHANNELS = (256, 512, 1024, 2048)
RESNET_STRIDES = (4, 8, 16, 32)

#: Input sizes not divisible by 32 (nor by 2, for some) plus a square one.
ODD_SIZES = ((97, 131), (64, 80), (33, 45))


def build(cfg):
    """Build a backbone from a config dict via mmdet's registry (``'ResNet'`` or
    ``'convdense.X'``)."""
    from convdense.models.complexity import build_backbone
    return build_backbone(cfg)


def expected_side(side, stride):
    """Output side at ``stride``: every strided layer of a ResNet pads, so sides round up."""
    return math.ceil(side / stride)


def assert_output_shapes(backbone, input_hw, out_indices=(0, 1, 2, 3),
                         channels=RESNET_CHANNELS, strides=RESNET_STRIDES, batch=1):
    """Forward ``(batch, 3, H, W)`` zeros-and-noise in eval mode; check one NCHW map
    per ``out_indices`` entry with ResNet channels and ``ceil(side / stride)`` sides.

    Returns:
        tuple[Tensor]: the outputs, for further checks.
    """
    height, width = input_hw
    backbone.eval()
    with torch.no_grad():
        outputs = backbone(torch.randn(batch, 3, height, width))
    assert isinstance(outputs, tuple), f'backbone must return a tuple, got {type(outputs)}'
    assert len(outputs) == len(out_indices), \
        f'{len(outputs)} outputs for out_indices={out_indices}'
    for index, out in zip(out_indices, outputs):
        expected = (batch, channels[index], expected_side(height, strides[index]),
                    expected_side(width, strides[index]))
        assert isinstance(out, torch.Tensor), f'output {index} is {type(out)}, not a Tensor'
        assert tuple(out.shape) == expected, \
            f'output {index} at input {input_hw}: shape {tuple(out.shape)}, expected {expected}'
        assert torch.isfinite(out).all(), f'output {index} has non-finite values'
    return outputs


def _stage_names(backbone):
    return list(getattr(backbone, 'res_layers', [f'layer{i}' for i in range(1, 5)]))


def _stage_of(name, stage_names):
    """Index (1-based) of the stage a parameter/module name belongs to, 0 for the stem."""
    head = name.split('.', 1)[0]
    return stage_names.index(head) + 1 if head in stage_names else 0


def _weighted_sum(outputs, seed=0):
    """A loss that depends on every output element (a plain sum would give zero
    gradient through a train-mode BN)."""
    generator = torch.Generator().manual_seed(seed)
    return sum((out * torch.randn(out.shape, generator=generator)).sum() for out in outputs)


def assert_frozen_stages(backbone, frozen_stages, input_hw=(64, 64)):
    """In train mode, the stem and stages ``1..frozen_stages`` have no trainable
    parameter, their norms stay in eval mode (running stats unchanged by a
    forward) and receive no gradient; later stages train."""
    stage_names = _stage_names(backbone)
    backbone.train()
    for name, param in backbone.named_parameters():
        frozen = _stage_of(name, stage_names) <= frozen_stages
        assert param.requires_grad != frozen, \
            f'{name}: requires_grad={param.requires_grad} with frozen_stages={frozen_stages}'
    for name, module in backbone.named_modules():
        if isinstance(module, _BatchNorm) and _stage_of(name, stage_names) <= frozen_stages:
            assert not module.training, f'{name} is in train mode inside a frozen stage'
    before = {name: buf.clone() for name, buf in backbone.named_buffers()
              if 'running_mean' in name and _stage_of(name, stage_names) <= frozen_stages}
    _weighted_sum(backbone(torch.randn(2, 3, *input_hw))).backward()
    for name, buf in backbone.named_buffers():
        if name in before:
            assert torch.equal(buf, before[name]), f'{name} changed inside a frozen stage'
    for name, param in backbone.named_parameters():
        if _stage_of(name, stage_names) <= frozen_stages:
            assert param.grad is None, f'{name} got a gradient inside a frozen stage'


def assert_norm_eval(backbone, input_hw=(64, 64)):
    """With ``norm_eval=True``, ``train()`` leaves every BN in eval mode and a
    training forward leaves the running statistics unchanged."""
    backbone.train()
    norms = [(name, m) for name, m in backbone.named_modules() if isinstance(m, _BatchNorm)]
    assert norms, 'backbone has no BatchNorm layer to check'
    for name, module in norms:
        assert not module.training, f'{name} is in train mode despite norm_eval=True'
    before = [m.running_mean.clone() for _, m in norms]
    backbone(torch.randn(2, 3, *input_hw))
    for (name, module), mean in zip(norms, before):
        assert torch.equal(module.running_mean, mean), f'{name} running_mean changed'


def assert_all_params_get_grad(backbone, input_hw=(64, 64)):
    """A training step reaches every trainable parameter with a non-zero gradient,
    so no parameter is unused (DDP would need ``find_unused_parameters``).

    Build the backbone with ``zero_init_residual=False``: a zero-initialised last
    BN legitimately blocks the gradient of the convs before it.
    """
    backbone.train()
    backbone.zero_grad(set_to_none=True)
    _weighted_sum(backbone(torch.randn(2, 3, *input_hw))).backward()
    missing = [name for name, p in backbone.named_parameters()
               if p.requires_grad and p.grad is None]
    assert not missing, f'parameters without gradient (unused): {missing[:10]}'
    zero = [name for name, p in backbone.named_parameters()
            if p.requires_grad and not p.grad.abs().sum() > 0]
    assert not zero, f'parameters with an all-zero gradient: {zero[:10]}'


def assert_loads_prefixed_checkpoint(cfg, tmp_path, prefix='backbone.'):
    """``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)`` loads a local
    detector-style checkpoint (keys ``backbone.*``) into a fresh backbone."""
    source = build(cfg)
    state = {f'{prefix}{key}': value for key, value in source.state_dict().items()}
    state['neck.some.weight'] = torch.zeros(1)  # other keys must be ignored
    path = tmp_path / 'detector.pth'
    torch.save(dict(state_dict=state), path)
    target = build(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                           prefix=prefix.rstrip('.'))))
    target.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), f'{key} not loaded'


def build_in_scope(cfg, scope):
    """Build a backbone config from ``'mmdet'``'s or ``'mmseg'``'s registry."""
    from convdense.models.complexity import build_backbone
    return build_backbone(cfg, scope)


def _build_model_from_config(path, scope):
    import importlib

    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(path)
    assert cfg.get('default_scope') == scope, f'{path}: default_scope is {cfg.get("default_scope")}'
    registry = importlib.import_module(f'{scope}.registry').MODELS
    importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(cfg.model)
    # SyncBN (mmseg configs) only runs inside a process group.
    model = revert_sync_batchnorm(model)
    model.eval()
    return cfg, model


def assert_detector_config_works(path, backbone_class, input_hw=(96, 128)):
    """The Mask R-CNN config builds with ``backbone_class`` and its FPN neck takes
    the backbone's outputs unchanged: five 256-channel levels at strides 4..64."""
    cfg, model = _build_model_from_config(path, 'mmdet')
    assert type(model.backbone).__name__ == backbone_class, type(model.backbone)
    with torch.no_grad():
        features = model.extract_feat(torch.randn(1, 3, *input_hw))
    assert len(features) == 5
    for level, feature in enumerate(features):
        stride = 4 * 2 ** level
        expected = (1, 256, expected_side(input_hw[0], stride), expected_side(input_hw[1], stride))
        assert tuple(feature.shape) == expected, f'FPN level {level}: {tuple(feature.shape)}'


def assert_segmentor_config_works(path, backbone_class, input_hw=(64, 96)):
    """The segmentation config builds with ``backbone_class`` and its decode head
    gives per-class logits at stride 4."""
    cfg, model = _build_model_from_config(path, 'mmseg')
    assert type(model.backbone).__name__ == backbone_class, type(model.backbone)
    with torch.no_grad():
        logits = model._forward(torch.randn(1, 3, *input_hw))
    expected = (1, cfg.model.decode_head.num_classes, input_hw[0] // 4, input_hw[1] // 4)
    assert tuple(logits.shape) == expected, f'logits {tuple(logits.shape)}, expected {expected}'


#: Metric keys each task's evaluator must report.
METRIC_KEYS = {'det': ('coco/bbox_mAP', 'coco/segm_mAP'), 'seg': ('mIoU', 'aAcc')}


def assert_end_to_end(config, kind, work_dir, iters=6):
    """Train ``config`` on the tiny generated dataset of ``tests/helpers/e2e.py``, checkpoint, test the
    checkpoint with tools/test.py: the loss falls and the metrics are reported."""
    from tests.helpers.e2e import train_and_test
    result = train_and_test(str(config), str(work_dir), kind=kind, iters=iters)
    losses = result['losses']
    assert len(losses) == iters, f'logged {len(losses)} losses for {iters} iterations'
    assert all(math.isfinite(loss) for loss in losses), losses
    assert min(losses[-2:]) < losses[0], f'loss did not fall: {losses}'
    metrics = result['metrics']
    for key in METRIC_KEYS[kind]:
        assert key in metrics, f'{key} missing from test metrics {sorted(metrics)}'
        assert math.isfinite(metrics[key]), f'{key} = {metrics[key]}'
    return result


def randomise_norms(model):
    """Give every batch norm of ``model`` random affine parameters and running
    statistics (none zero-initialised away), so norm folding and residual
    branches are exercised; returns ``model``."""
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            with torch.no_grad():
                torch.nn.init.uniform_(module.weight, 0.5, 1.5)
                torch.nn.init.uniform_(module.bias, -0.2, 0.2)
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model
