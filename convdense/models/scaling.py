"""EfficientNet compound scaling (Tan & Le, ICML 2019) for the ResNet-family backbones.

One coefficient ``phi`` scales depth by ``alpha**phi``, width by ``beta**phi``
and input resolution by ``gamma**phi`` (defaults 1.2 / 1.1 / 1.15, EfficientNet's
grid-searched values, alpha * beta**2 * gamma**2 ~= 1.92: FLOPs ~ 1.92**phi).
Rounding follows EfficientNet's reference code:

* depth: blocks per stage ``ceil(blocks * alpha**phi)`` (``round_repeats``);
* width: ``base_channels`` (and the stem) by ``round_filters``, a multiple of
  the divisor (8), never more than 10 % below the exact product. All stage
  widths are ``base_channels * 2**i``, so every stage is scaled by the same
  realised factor, and each backbone's inner widths (Res2Net's splits,
  Oct-ResNet's low/high groups, HetConv's 3x3 kernels) follow by its own rule;
* resolution: ``gamma**phi`` is returned; :func:`scale_size` and
  :func:`scale_pipeline` round scaled image sizes to a multiple of 32, what
  FPN / mmdet's data preprocessor pad to anyway.

The backbones keep their own constructors: width goes through their
``base_channels`` / ``stem_channels`` arguments and depth through the
``convdense.StageBlocks`` builder, which builds any ResNet-family backbone with
other blocks per stage than its ``depth`` names. The scaled config therefore
reads as plain numbers once dumped. Output channels change with width; the
config-time result carries them (:attr:`ScaledBackbone.out_channels`) and
:meth:`ScaledBackbone.model_overrides` writes them into the FPN neck and the
decode / auxiliary heads, so no ``in_channels`` is ever typed by hand.
Design notes and measured FLOPs: ``docs/scaling.md``.
"""
import copy
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple, Optional, Sequence, Tuple

from convdense.registry import MODELS

#: EfficientNet's coefficients (alpha, beta, gamma) from its grid search at phi = 1.
EFFICIENTNET_COEFFICIENTS = (1.2, 1.1, 1.15)
#: What scaled image sides are rounded to (FPN and mmdet's data preprocessor pad to 32).
SIZE_DIVISOR = 32
#: Transforms whose sizes :func:`scale_pipeline` scales, and the keys holding them.
_SIZE_KEYS = {'Resize': ('scale',), 'RandomResize': ('scale',), 'RandomChoiceResize': ('scales',),
              'RandomCrop': ('crop_size',)}


def round_filters(filters: int, multiplier: float, divisor: int = 8) -> int:
    """EfficientNet's ``round_filters``: ``filters * multiplier`` to the nearest
    multiple of ``divisor`` (at least ``divisor``), one ``divisor`` more when
    rounding went more than 10 % below the product."""
    scaled = filters * multiplier
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, multiplier: float) -> int:
    """EfficientNet's ``round_repeats``: ``ceil(repeats * multiplier)``."""
    return int(math.ceil(repeats * multiplier))


#: How :func:`compound_scale` rounds blocks per stage.
DEPTH_ROUNDING = {'ceil': round_repeats,
                  'nearest': lambda repeats, multiplier: max(1, round(repeats * multiplier))}


def scale_size(size, multiplier: float, divisor: int = SIZE_DIVISOR):
    """An image side, or a tuple / list of sides, times ``multiplier``, each rounded
    to the nearest multiple of ``divisor`` (at least ``divisor``)."""
    if isinstance(size, (tuple, list)):
        return type(size)(scale_size(side, multiplier, divisor) for side in size)
    if not isinstance(size, (int, float)) or size <= 0:
        raise ValueError(f'image size must be a positive number, got {size!r}')
    return max(divisor, int(size * multiplier / divisor + 0.5) * divisor)


def scale_pipeline(pipeline: Sequence[dict], multiplier: float,
                   divisor: int = SIZE_DIVISOR) -> list:
    """A copy of an mmcv / mmdet / mmseg data pipeline with every image size
    (``Resize`` / ``RandomResize`` ``scale``, ``RandomChoiceResize`` ``scales``,
    ``RandomCrop`` ``crop_size``, also inside ``TestTimeAug``) scaled by
    :func:`scale_size`. Ratios (``ratio_range``) and everything else stay."""

    def visit(node):
        if isinstance(node, dict):
            node = {key: visit(value) for key, value in node.items()}
            for key in _SIZE_KEYS.get(node.get('type'), ()):
                if key in node:
                    node[key] = scale_size(node[key], multiplier, divisor)
            return node
        if isinstance(node, (list, tuple)):
            return type(node)(visit(item) for item in node)
        return node

    if not isinstance(pipeline, (list, tuple)):
        raise TypeError('pipeline must be a list of transform dicts, '
                        f'got {type(pipeline).__name__}')
    return list(visit(_plain(pipeline)))


def _plain(node):
    """Deep copy with mmengine ``ConfigDict`` s turned into plain dicts."""
    if isinstance(node, dict):
        return {key: _plain(value) for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(_plain(item) for item in node)
    return copy.deepcopy(node)


def resolve_backbone_class(type_name: str, scope: Optional[str] = None):
    """The class a backbone ``type`` names: ``'convdense.Res2Net'``,
    ``'mmseg.ResNetV1c'``, or an unprefixed upstream name looked up in ``scope``
    (default: the current default scope, else ``'mmdet'``)."""
    from mmengine.registry import MODELS as ROOT_MODELS
    from mmengine.registry import DefaultScope
    if not isinstance(type_name, str):
        return type_name  # already a class
    if '.' not in type_name:
        if scope is None:
            current = DefaultScope.get_current_instance()
            scope = current.scope_name if current is not None else 'mmdet'
        if scope in ('mmengine', 'convdense'):
            scope = 'mmdet'
        type_name = f'{scope}.{type_name}'
    import convdense.registry  # noqa: F401  (makes the convdense scope findable)
    cls = ROOT_MODELS.get(type_name)
    if cls is None:
        raise ValueError(f'backbone type {type_name!r} is not registered')
    return cls


def _resnet_bases():
    from mmdet.models.backbones.resnet import ResNet as MMDetResNet
    from mmseg.models.backbones.resnet import ResNet as MMSegResNet
    return MMDetResNet, MMSegResNet


def _resnet_family_class(backbone_cfg, scope=None):
    if not isinstance(backbone_cfg, dict) or 'type' not in backbone_cfg:
        raise TypeError(f'backbone config must be a dict with a "type", got {backbone_cfg!r}')
    if backbone_cfg['type'] in ('StageBlocks', 'convdense.StageBlocks'):
        raise ValueError('this backbone config is already compound-scaled (convdense.StageBlocks); '
                         'scale the original config instead')
    cls = resolve_backbone_class(backbone_cfg['type'], scope)
    if not (isinstance(cls, type) and issubclass(cls, _resnet_bases())):
        raise TypeError(f'compound scaling needs a ResNet-family backbone (mmdet or mmseg ResNet '
                        f'or a subclass), got {backbone_cfg["type"]!r}')
    depth = backbone_cfg.get('depth')
    if depth not in cls.arch_settings:
        raise ValueError(f'{cls.__name__}: depth must be one of {sorted(cls.arch_settings)}, '
                         f'got {depth!r}')
    return cls


@MODELS.register_module(name='StageBlocks')
def build_with_stage_blocks(backbone: dict, stage_blocks: Sequence[int], **overrides):
    """Build a ResNet-family ``backbone`` config with ``stage_blocks`` blocks per stage
    instead of those its ``depth`` names (``(3, 4, 6, 3)`` for 50).

    ``overrides`` update the inner config (so ``out_indices`` etc. can be set on
    the outer dict, as :func:`~convdense.models.complexity.classifier_complexity`
    does). The result is the backbone itself (same class, same parameter names as
    a deeper model of that family), not a wrapper; its instance ``arch_settings``
    holds the new counts, which mmdet's / mmseg's ``ResNet.__init__`` reads.
    """
    cfg = dict(_plain(backbone), **overrides)
    cls = _resnet_family_class(cfg)
    num_stages = cfg.get('num_stages', 4)
    stage_blocks = tuple(stage_blocks)
    if (len(stage_blocks) != num_stages
            or not all(isinstance(n, int) and n >= 1 for n in stage_blocks)):
        raise ValueError(f'stage_blocks must be {num_stages} positive ints (one per stage), '
                         f'got {stage_blocks!r}')
    cfg.pop('type')
    depth = cfg.pop('depth')
    block = cls.arch_settings[depth][0]
    model = cls.__new__(cls)
    # ResNet.__init__ looks blocks up in self.arch_settings: an instance attribute
    # set before __init__ shadows the class table for this instance only.
    object.__setattr__(model, 'arch_settings', {depth: (block, stage_blocks)})
    model.__init__(depth, **cfg)
    return model


def _divisor_for(cls, cfg, divisor):
    """The width divisor that keeps ``cls``'s own channel constraints exact after
    rounding: HetConv's ``part`` must divide every width, Oct-ResNet's
    ``alpha * width`` must be whole (so the split is the nominal alpha)."""
    if issubclass(cls, resolve_backbone_class('convdense.HetConvResNet')):
        part = cfg.get('part', 4)
        if not isinstance(part, int) or part < 1:
            raise ValueError(f'HetConvResNet part must be a positive int, got {part!r}')
        return math.lcm(divisor, part)
    if issubclass(cls, resolve_backbone_class('convdense.OctResNet')):
        num_stages = cfg.get('num_stages', 4)
        alpha = cfg.get('alpha', 0.5)
        alphas = cfg.get('stage_alphas') or [alpha] * (num_stages - 1) + [0.0]
        for stage_alpha in alphas:
            fraction = Fraction(stage_alpha).limit_denominator(256)
            if abs(float(fraction) - stage_alpha) > 1e-9:
                raise ValueError(f'OctResNet alpha={stage_alpha} is no fraction p/q with q <= 256: '
                                 'no scaled width splits into exactly that low-frequency share')
            divisor = math.lcm(divisor, fraction.denominator)
    return divisor


def _check_res2net(cfg, base_channels, stages):
    """Res2Net's split width ``floor(planes * base_width / 64) * groups`` must stay >= 1."""
    base_width, groups = cfg.get('base_width', 26), cfg.get('groups', 1)
    for i in range(stages):
        planes = base_channels * 2**i
        if math.floor(planes * base_width / 64) * groups < 1:
            raise ValueError(f'Res2Net split width is 0 in stage {i + 1} at '
                             f'base_channels={base_channels}, base_width={base_width}')


@dataclass(frozen=True)
class ScaledBackbone:
    """The result of :func:`compound_scale`.

    Attributes:
        backbone: the scaled backbone config (``type='convdense.StageBlocks'``).
        out_channels: channels of each output, in ``out_indices`` order.
        resolution: ``gamma**phi``, the factor for image sizes (:func:`scale_size`).
        stage_blocks / base_channels: the rounded depth and width.
        depth / width: realised factors, total blocks and ``base_channels``
            over the original's (rounding makes them differ from alpha**phi, beta**phi).
    """
    backbone: dict
    out_channels: Tuple[int, ...]
    resolution: float
    stage_blocks: Tuple[int, ...]
    base_channels: int
    depth: float
    width: float
    phi: float

    def model_overrides(self, model_cfg: dict) -> dict:
        """The ``model`` dict of a child config of ``model_cfg``: the scaled backbone
        (replacing the base's) and ``in_channels`` that follow its outputs for a
        ``neck`` (FPN: one per output) and for mmseg's ``decode_head`` and
        ``auxiliary_head`` (the outputs their ``in_index`` picks)."""
        if not isinstance(model_cfg, dict):
            raise TypeError('model_cfg must be the base model dict, '
                            f'got {type(model_cfg).__name__}')
        overrides = dict(backbone=dict(_delete_=True, **self.backbone))
        neck = model_cfg.get('neck')
        if isinstance(neck, dict) and 'in_channels' in neck:
            overrides['neck'] = dict(in_channels=list(self.out_channels))
        for head in ('decode_head', 'auxiliary_head'):
            if isinstance(model_cfg.get(head), dict):
                overrides[head] = dict(in_channels=self.head_in_channels(model_cfg[head]))
        return overrides

    def head_in_channels(self, head_cfg: dict):
        """``in_channels`` for an mmseg head reading outputs ``head_cfg['in_index']``."""
        index = head_cfg.get('in_index', -1)
        if isinstance(index, (list, tuple)):
            return [self.out_channels[i] for i in index]
        return self.out_channels[index]


def compound_scale(backbone_cfg: dict, phi: float, alpha: float = 1.2, beta: float = 1.1,
                   gamma: float = 1.15, divisor: int = 8, depth_round: str = 'ceil',
                   scope: Optional[str] = None) -> ScaledBackbone:
    """Compound-scale a ResNet-family backbone config by ``phi``.

    Args:
        backbone_cfg: e.g. ``dict(type='convdense.Res2Net', depth=50)``; any
            mmdet/mmseg ``ResNet`` subclass (``ResNet``, ``ResNetV1c``,
            ``convdense.Res2Net`` / ``OctResNet`` / ``HetConvResNet`` / ``ACNet``).
        phi: the compound coefficient, >= 0 (0 returns the original widths and depths).
        alpha, beta, gamma: depth, width and resolution bases, each >= 1.
        divisor: widths are multiples of this (8), raised to a multiple of
            HetConv's ``part`` or of Oct-ResNet's alpha denominators.
        depth_round: ``'ceil'`` (EfficientNet) or ``'nearest'`` blocks per stage
            (for comparisons; at least one block either way).
        scope: registry scope for an unprefixed ``type`` (default: the current one).

    Returns:
        ScaledBackbone.

    Raises:
        ValueError / TypeError naming the argument or the constraint that fails.
    """
    if not isinstance(phi, (int, float)) or isinstance(phi, bool) or phi < 0:
        raise ValueError(f'phi must be a number >= 0, got {phi!r}')
    for name, value in (('alpha', alpha), ('beta', beta), ('gamma', gamma)):
        if not isinstance(value, (int, float)) or value < 1:
            raise ValueError(f'{name} must be a number >= 1, got {value!r}')
    if not isinstance(divisor, int) or divisor < 1:
        raise ValueError(f'divisor must be a positive int, got {divisor!r}')
    if depth_round not in DEPTH_ROUNDING:
        raise ValueError(f'depth_round must be one of {sorted(DEPTH_ROUNDING)}, '
                         f'got {depth_round!r}')
    cfg = _plain(backbone_cfg)
    cls = _resnet_family_class(cfg, scope)

    num_stages = cfg.get('num_stages', 4)
    block, blocks = cls.arch_settings[cfg['depth']]
    blocks = tuple(blocks[:num_stages])
    stage_blocks = tuple(DEPTH_ROUNDING[depth_round](n, alpha**phi) for n in blocks)
    base = cfg.get('base_channels', 64)
    stem = cfg.get('stem_channels') or base
    width_divisor = _divisor_for(cls, cfg, divisor)
    base_channels = round_filters(base, beta**phi, width_divisor)
    stem_channels = round_filters(stem, beta**phi, divisor)
    if cfg.get('deep_stem'):  # the deep stem's first two convs have stem / 2 channels
        stem_channels = round_filters(stem, beta**phi, 2 * divisor)
    if issubclass(cls, resolve_backbone_class('convdense.Res2Net')):
        _check_res2net(cfg, base_channels, num_stages)

    inner = dict(cfg, base_channels=base_channels, stem_channels=stem_channels)
    scaled = dict(type='convdense.StageBlocks', stage_blocks=stage_blocks, backbone=inner)
    expansion = getattr(block, 'expansion', 1)
    out_indices = cfg.get('out_indices', tuple(range(num_stages)))
    out_channels = tuple(expansion * base_channels * 2**i for i in out_indices)
    return ScaledBackbone(
        backbone=scaled, out_channels=out_channels, resolution=gamma**phi,
        stage_blocks=stage_blocks, base_channels=base_channels,
        depth=sum(stage_blocks) / sum(blocks), width=base_channels / base, phi=phi)


class ScaledConfig(NamedTuple):
    """The overrides :func:`compound_scale_config` returns, in config-variable order."""
    model: dict
    train_dataloader: dict
    val_dataloader: dict
    test_dataloader: dict


def _scaled_loader(loader: dict, multiplier: float) -> dict:
    """``dict(dataset=dict(pipeline=...))`` with the image sizes scaled, through
    dataset wrappers (``RepeatDataset`` etc. nest the real one under ``dataset``)."""
    dataset = loader['dataset']
    if 'pipeline' not in dataset and 'dataset' in dataset:
        return dict(dataset=_scaled_loader(dataset, multiplier))
    return dict(dataset=dict(pipeline=scale_pipeline(dataset['pipeline'], multiplier)))


def compound_scale_config(base_cfg: dict, phi: float, **scale_kw) -> ScaledConfig:
    """What a child config changes to compound-scale its mmdet / mmseg ``_base_``:
    the backbone, the neck / heads' ``in_channels`` (:meth:`ScaledBackbone.model_overrides`),
    the data preprocessor's fixed ``size`` if any, and every pipeline's image sizes
    (:func:`scale_pipeline`, ``gamma**phi``). A config reads::

        _base_ = '../mask_rcnn/mask-rcnn_res2net-50_fpn_1x_coco.py'
        from convdense.models.scaling import compound_scale_config
        model, train_dataloader, val_dataloader, test_dataloader = \\
            compound_scale_config(_base_, phi=1)

    ``scale_kw`` go to :func:`compound_scale`.
    """
    scaled = compound_scale(base_cfg['model']['backbone'], phi, **scale_kw)
    model = scaled.model_overrides(base_cfg['model'])
    preprocessor = base_cfg['model'].get('data_preprocessor') or {}
    if preprocessor.get('size') is not None:
        model['data_preprocessor'] = dict(size=scale_size(tuple(preprocessor['size']),
                                                          scaled.resolution))
    return ScaledConfig(model, *(_scaled_loader(base_cfg[loader], scaled.resolution)
                                 for loader in ScaledConfig._fields[1:]))
