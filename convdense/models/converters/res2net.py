"""Official Res2Net / Res2NeXt ImageNet checkpoints (or timm's ``res2net*``, same
keys), plain or v1b (deep stem), as ``convdense.Res2Net`` state dicts; the command
line is ``tools/model_converters/res2net.py``.

The plain release's keys (``conv1, bn1, layerN.i.{conv1,bn1,convs.k,bns.k,conv3,bn3,
downsample.0/1}, fc``) are convdense.Res2Net's, so only the classifier ``fc`` is
dropped; depth, ``scales``, ``base_width`` and ``groups`` are read from the shapes
(``scales`` = number of ``convs`` + 1, ``groups`` from the first split conv).

The v1b release (Res2Net-PretrainedModels ``res2net_v1b.py``; timm's ``res2net50d``
has its keys) has a deep stem, ``conv1`` = three 3x3 convs with two norms between
them (``conv1.0/1/3/4/6``) and ``bn1`` after the last, and average-pool shortcuts
(``downsample.0`` = pool, ``.1`` = conv, ``.2`` = norm). mmdet's ResNet builds the
same with ``deep_stem=True, avg_down=True``: its stem ``stem.0/1/3/4/6/7`` is the
release's ``conv1.0/1/3/4/6`` and ``bn1`` (renamed here), its shortcuts already have
the release's keys.
"""
from .common import blocks_per_stage, depth_of, rename, split_head

#: v1b deep stem -> mmdet's ``stem`` Sequential (conv, norm, relu) x 3.
DEEP_STEM_RULES = [(r'conv1\.([0-9])\.(.+)', r'stem.\1.\2'), (r'bn1\.(.+)', r'stem.7.\1'),
                   (r'(layer.+)', r'\1')]


def is_deep_stem(state):
    return 'conv1.0.weight' in state


def backbone_config(state):
    """The ``convdense.Res2Net`` config whose parameters have ``state``'s shapes
    (``state`` in convdense's names)."""
    deep = 'stem.0.weight' in state
    if not deep and ('conv1.weight' not in state or state['conv1.weight'].dim() != 4):
        raise ValueError('no stem: neither a plain conv1.weight nor a deep stem conv1.0.weight')
    if not any('.convs.' in key for key in state):
        raise ValueError('no layerN.i.convs.k keys: not a Res2Net checkpoint')
    depth = depth_of(blocks_per_stage(state))
    scales = 1 + len({key.split('.')[3] for key in state
                      if key.startswith('layer1.0.convs.')})
    width, width_per_group = state['layer1.0.convs.0.weight'].shape[:2]
    groups = width // width_per_group
    with_se = any('.se.' in key for key in state)
    cfg = dict(type='convdense.Res2Net', depth=depth, scales=scales,
               base_width=width // groups, groups=groups, with_se=with_se)
    if deep:
        cfg.update(deep_stem=True, avg_down=True, stem_channels=state['stem.6.weight'].shape[0])
    return cfg


def convert(state):
    """``(state without fc, dropped keys, backbone config)``."""
    kept, dropped = split_head(state)
    if is_deep_stem(kept):
        kept, unmatched = rename(kept, DEEP_STEM_RULES)
        if unmatched:
            raise ValueError(f'{len(unmatched)} keys of a deep-stem checkpoint map to no '
                             f'Res2Net parameter: {", ".join(unmatched[:3])}')
    return kept, dropped, backbone_config(kept)

