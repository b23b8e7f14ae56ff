"""Parameter and FLOP counts of backbones as ImageNet classifiers, next to the papers' tables.

Papers report a backbone's complexity as the ImageNet classifier built on it
(backbone + global average pool + fc-1000 at 224x224), so that is what
:func:`classifier_complexity` measures. FLOPs are multiply-adds counted by
mmengine's :class:`~mmengine.analysis.FlopAnalyzer` (fvcore's counter: one
fused multiply-add is one FLOP, the convention of every paper below), parameters
by :func:`~mmengine.analysis.parameter_count`. Nothing is counted by hand.

:data:`PAPER_TABLE` holds, for each short name, the backbone config that should
reproduce a published row (each backbone's *default* arguments give the paper's
main model) and the published figures.
"""
import copy

import torch
import torch.nn as nn

#: Relative difference to a paper figure that still counts as reproducing it.
PAPER_TOLERANCE = 0.02

_M = 1e6
_G = 1e9

#: name -> dict(cfg=backbone config, params=published count or None,
#: flops=published multiply-adds or None, source=where the figures come from).
PAPER_TABLE = {
    'resnet50': dict(
        cfg=dict(type='ResNet', depth=50),
        params=25.56 * _M, flops=4.1 * _G,
        source='He et al. 2016 (ResNet-50, torchvision count)'),
    'res2net50_26w4s': dict(
        cfg=dict(type='convdense.Res2Net', depth=50),
        params=25.7 * _M, flops=4.2 * _G,
        source='Gao et al. TPAMI 2019, Table 1 (Res2Net-50, 26w x 4s)'),
    'oct-resnet50_a0.5': dict(
        cfg=dict(type='convdense.OctResNet', depth=50),
        params=25.6 * _M, flops=2.4 * _G,
        source='Chen et al. ICCV 2019, Table 3 (Oct-ResNet-50, alpha=0.5)'),
    'oct-resnet50_a0.125': dict(
        cfg=dict(type='convdense.OctResNet', depth=50, alpha=0.125),
        params=None, flops=3.6 * _G,
        source='Chen et al. ICCV 2019, Table 3 (Oct-ResNet-50, alpha=0.125)'),
    'oct-resnet50_a0.25': dict(
        cfg=dict(type='convdense.OctResNet', depth=50, alpha=0.25),
        params=None, flops=3.1 * _G,
        source='Chen et al. ICCV 2019, Table 3 (Oct-ResNet-50, alpha=0.25)'),
    'oct-resnet50_a0.75': dict(
        cfg=dict(type='convdense.OctResNet', depth=50, alpha=0.75),
        params=None, flops=1.9 * _G,
        source='Chen et al. ICCV 2019, Table 3 (Oct-ResNet-50, alpha=0.75)'),
    'hetconv-resnet50_p4': dict(
        cfg=dict(type='convdense.HetConvResNet', depth=50),
        params=None, flops=2.85 * _G,
        source='Singh et al. CVPR 2019, Table 6 (ResNet-50 HetConv P4)'),
    'hetconv-resnet50_p1': dict(
        cfg=dict(type='convdense.HetConvResNet', depth=50, part=1),
        params=None, flops=4.09 * _G,
        source='Singh et al. CVPR 2019, Table 6 (ResNet-50, P1 = plain conv)'),
    'acnet50_dataset': dict(
        cfg=dict(type='convdense.ACNet', depth=50, mode='dataset'),
        params=29.38 * _M, flops=None,
        source='Wang et al. CVPR 2019, Table 4 (ACNet-ResNet50, dataset-aware)'),
    'acnet50_pixel': dict(
        cfg=dict(type='convdense.ACNet', depth=50, mode='pixel'),
        params=31.85 * _M, flops=None,
        source='Wang et al. CVPR 2019, Table 4 (ACNet-ResNet50, pixel-aware)'),
}


class ImageNetClassifier(nn.Module):
    """A backbone's last output, global-average-pooled, then a linear classifier.

    Input ``(N, 3, H, W)``; output logits ``(N, num_classes)``.
    """

    def __init__(self, backbone, last_channels, num_classes=1000):
        super().__init__()
        self.backbone = backbone
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(last_channels, num_classes)

    def forward(self, images):
        last = self.backbone(images)[-1]
        return self.fc(torch.flatten(self.pool(last), 1))


def build_backbone(cfg, scope='mmdet'):
    """Build a backbone from the ``scope`` registry (``'mmdet'`` or ``'mmseg'``):
    ``type`` may be that library's own (``'ResNet'``, ``'ResNetV1c'``) or a
    convdense one (``'convdense.Res2Net'``), which either scope finds."""
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f'backbone config must be a dict with a "type", got {cfg!r}')
    if scope not in ('mmdet', 'mmseg'):
        raise ValueError(f"scope must be 'mmdet' or 'mmseg', got {scope!r}")
    import importlib

    import convdense.registry  # noqa: F401  (makes the convdense scope findable)
    from mmengine.registry import DefaultScope
    registry = importlib.import_module(f'{scope}.registry').MODELS
    # A default scope left by an earlier Runner would otherwise redirect the build.
    with DefaultScope.overwrite_default_scope(scope):
        return registry.build(copy.deepcopy(dict(cfg)))


def _as_hw(input_size):
    if isinstance(input_size, int):
        return input_size, input_size
    height, width = input_size
    return int(height), int(width)


def classifier_complexity(backbone_cfg, input_size=224, num_classes=1000, scope='mmdet',
                          by_module=False):
    """Count the parameters and multiply-adds of ``backbone_cfg`` as a classifier.

    Args:
        backbone_cfg (dict): backbone config, e.g. ``dict(type='ResNet', depth=50)``.
            Its ``out_indices`` is replaced by the last stage, which the
            classifier head reads.
        input_size (int | tuple[int, int]): side (or ``(H, W)``) of the one input image.
        num_classes (int): outputs of the fc layer (1000 for ImageNet).
        scope (str): registry for types without a prefix, ``'mmdet'`` or ``'mmseg'``.
        by_module (bool): also return ``flops_by_module``, FlopAnalyzer's count for
            every module name (``'backbone.layer3.5'``, ``'fc'``, ...).

    Returns:
        dict: ``params`` (int, backbone + fc) and ``flops`` (int, multiply-adds
        for one ``(1, 3, H, W)`` image).
    """
    cfg = copy.deepcopy(backbone_cfg)
    cfg['out_indices'] = (cfg.get('num_stages', 4) - 1, )
    from mmengine.model import revert_sync_batchnorm

    # SyncBN (mmseg configs) cannot run outside a process group; it counts as BN.
    backbone = revert_sync_batchnorm(build_backbone(cfg, scope))
    backbone.eval()  # not chained: mmdet's ResNet.train() returns None
    height, width = _as_hw(input_size)
    images = torch.zeros(1, 3, height, width)
    with torch.no_grad():
        last_channels = backbone(images)[-1].shape[1]
    model = ImageNetClassifier(backbone, last_channels, num_classes).eval()

    from mmengine.analysis import FlopAnalyzer, parameter_count
    analyzer = FlopAnalyzer(model, images)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        flops = int(analyzer.total())
    result = dict(params=int(parameter_count(model)['']), flops=flops)
    if by_module:
        result['flops_by_module'] = {name: int(count) for name, count in analyzer.by_module().items()}
    return result


def _relative(measured, published):
    if published is None:
        return None
    return (measured - published) / published


def compare_with_paper(name, input_size=224):
    """Measure the :data:`PAPER_TABLE` row ``name``.

    Returns:
        dict: ``name``, ``params``, ``flops`` (measured), ``paper_params``,
        ``paper_flops`` (published or None), ``params_rel``, ``flops_rel``
        (``(measured - published) / published`` or None) and ``source``.
    """
    if name not in PAPER_TABLE:
        raise KeyError(f'unknown paper-table row {name!r}; known: {", ".join(PAPER_TABLE)}')
    row = PAPER_TABLE[name]
    measured = classifier_complexity(row['cfg'], input_size)
    return dict(
        name=name,
        params=measured['params'], flops=measured['flops'],
        paper_params=row['params'], paper_flops=row['flops'],
        params_rel=_relative(measured['params'], row['params']),
        flops_rel=_relative(measured['flops'], row['flops']),
        source=row['source'])
