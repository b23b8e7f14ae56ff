"""The ImageNet Oct-ResNet-50 (alpha = 0.5) of d-li14/octconv.pytorch, the only
ImageNet-trained PyTorch Oct-ResNet release, as a ``convdense.OctResNet`` state
dict; the command line is ``tools/model_converters/oct_resnet_dli14.py``.

The release keeps the four octave paths as separate convs
(``layerN.i.convK.conv.conv_{h2h,h2l,l2h,l2l}.weight``) and two norms per layer
(``convK.bn_h``, ``convK.bn_l``; shortcut ``downsample.0.conv.*``,
``downsample.0.bn_*``). convdense's ``OctaveConv2d`` holds the same weights as one
plain ``(C_out, C_in, k, k)`` tensor, high channels first on both axes:
``[[h2h, l2h], [h2l, l2l]]``, and its norms are ``bnK.high`` / ``bnK.low``
(shortcut ``downsample.0``, ``downsample.1.high/low``). Stem and ``fc`` keys are
plain (``fc`` is dropped). The ratios are read from the shapes; the release's
layout is stage alphas ``(.5, .5, .5, 0)``, convdense.OctResNet's default.

Downsampling. In the release every stride-2 conv (``OctaveConv`` with
``stride=2``: ``layerN.0.conv2`` and ``layerN.0.downsample.0`` of stages 2-4) is
2x2 average pooling + a stride-1 conv. convdense.OctResNet does the same for
every conv with a low-frequency group, but by default runs the one with
alpha_in = alpha_out = 0, ``layer4.0.conv2``, as a stride-2 conv (as a ResNet
does); ``strided_downsample='avgpool'`` pools there too. The written backbone
config (printed, and in the file's ``meta``) sets it: with it the converted
model computes the release's function (:mod:`.oct_resnet_dli14_reference`,
tested to 1e-5); without it stage 4 differs (docs/model_zoo.md).
"""
import re

from .common import blocks_per_stage, depth_of, split_head

#: a release layer: ``layerN.i.convK.`` or ``layerN.0.downsample.0.``
LAYER = re.compile(r'(layer\d\.\d+)\.(conv[123]|downsample\.0)\.')
NORM_NAMES = {'bn_h': 'high', 'bn_l': 'low'}


def assemble(paths):
    """One ``(C_out, C_in, k, k)`` weight from the octave paths
    ``{'h2h': ..., 'h2l': ..., 'l2h': ..., 'l2l': ...}`` (absent ones omitted):
    rows high outputs then low, columns high inputs then low."""
    h2h = paths['h2h']
    in_low = paths['l2h'].shape[1] if 'l2h' in paths else 0
    out_low = paths['h2l'].shape[0] if 'h2l' in paths else 0
    out_high, in_high, kh, kw = h2h.shape
    weight = h2h.new_zeros(out_high + out_low, in_high + in_low, kh, kw)
    weight[:out_high, :in_high] = h2h
    for name, rows, cols in (('l2h', slice(None, out_high), slice(in_high, None)),
                             ('h2l', slice(out_high, None), slice(None, in_high)),
                             ('l2l', slice(out_high, None), slice(in_high, None))):
        if name in paths:
            weight[rows, cols] = paths[name]
    return weight


def our_layer(block, layer):
    """Our conv key prefix and norm prefix for a release ``convK`` / ``downsample.0``."""
    if layer == 'downsample.0':
        return f'{block}.downsample.0', f'{block}.downsample.1'
    return f'{block}.{layer}', f'{block}.bn{layer[-1]}'


def convert(state):
    """``(OctResNet state, dropped keys, backbone config)``."""
    kept, dropped = split_head(state)
    if not any('.conv.conv_h2h.' in key for key in kept):
        raise ValueError('no layerN.i.convK.conv.conv_h2h keys: not an octconv.pytorch '
                         'Oct-ResNet checkpoint')
    out, paths, unmatched = {}, {}, []
    for key, value in kept.items():
        match = LAYER.match(key)
        if match is None:
            if re.match(r'(conv1|bn1)\.', key):  # the plain stem
                out[key] = value
            else:
                unmatched.append(key)
            continue
        conv, norm = our_layer(match.group(1), match.group(2))
        rest = key[match.end():]
        path = re.fullmatch(r'conv\.conv_([hl]2[hl])\.weight', rest)
        if path:
            paths.setdefault(conv, {})[path.group(1)] = value
            continue
        group, _, field = rest.partition('.')
        if group not in NORM_NAMES:
            unmatched.append(key)
            continue
        out[f'{norm}.{NORM_NAMES[group]}.{field}'] = value
    if unmatched:
        raise ValueError(f'{len(unmatched)} keys of no known Oct-ResNet layer: '
                         f'{", ".join(unmatched[:3])}')
    for conv, parts in paths.items():
        out[f'{conv}.weight'] = assemble(parts)
    return out, dropped, backbone_config(out)


def stage_alpha(state, stage):
    """Low-frequency ratio of a stage, from its last block's ``bn2`` split."""
    last = max(int(k.split('.')[1]) for k in state if k.startswith(f'layer{stage}.'))
    low = state.get(f'layer{stage}.{last}.bn2.low.weight')
    high = state[f'layer{stage}.{last}.bn2.high.weight']
    return 0.0 if low is None else low.numel() / (low.numel() + high.numel())


def backbone_config(state):
    """The ``convdense.OctResNet`` config of a converted ``state``: depth and stage
    alphas from its shapes, every strided conv pooled as in the release."""
    depth = depth_of(blocks_per_stage(state))
    alphas = tuple(stage_alpha(state, stage) for stage in range(1, 5))
    return dict(type='convdense.OctResNet', depth=depth, alpha=alphas[0],
                stage_alphas=alphas, strided_downsample='avgpool')

