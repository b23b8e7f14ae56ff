"""Convert an official Res2Net / Res2NeXt ImageNet checkpoint (or timm's ``res2net*``,
same keys) for ``convdense.Res2Net``.

    python tools/model_converters/res2net.py res2net50_26w_4s-06e79181.pth res2net50_26w_4s.pth

The release's keys (``conv1, bn1, layerN.i.{conv1,bn1,convs.k,bns.k,conv3,bn3,
downsample.0/1}, fc``) are convdense.Res2Net's, so only the classifier ``fc`` is
dropped; depth, ``scales``, ``base_width`` and ``groups`` are read from the shapes
(``scales`` = number of ``convs`` + 1, ``groups`` from the first split conv). The
v1b checkpoints (``res2net50_v1b``: deep stem ``conv1.0/1/3/4/6``, average-pool
shortcuts) are another architecture and are refused.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from convdense.models import converters  # noqa: E402


def backbone_config(state):
    """The ``convdense.Res2Net`` config whose parameters have ``state``'s shapes."""
    if 'conv1.weight' not in state or state['conv1.weight'].dim() != 4:
        raise ValueError('no plain 7x7 stem conv1.weight: a v1b (deep stem) or '
                         'non-Res2Net checkpoint; convdense.Res2Net has the plain stem')
    if not any('.convs.' in key for key in state):
        raise ValueError('no layerN.i.convs.k keys: not a Res2Net checkpoint')
    depth = converters.depth_of(converters.blocks_per_stage(state))
    scales = 1 + len({key.split('.')[3] for key in state
                      if key.startswith('layer1.0.convs.')})
    width, width_per_group = state['layer1.0.convs.0.weight'].shape[:2]
    groups = width // width_per_group
    with_se = any('.se.' in key for key in state)
    return dict(type='convdense.Res2Net', depth=depth, scales=scales,
                base_width=width // groups, groups=groups, with_se=with_se)


def convert(state, args=None):
    """``(state without fc, dropped keys, backbone config)``."""
    kept, dropped = converters.split_head(state)
    return kept, dropped, backbone_config(kept)


if __name__ == '__main__':
    sys.exit(converters.main(convert, __doc__))
