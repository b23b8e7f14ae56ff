"""Convert the ImageNet Oct-ResNet-50 (alpha = 0.5) of d-li14/octconv.pytorch, the
only ImageNet-trained PyTorch Oct-ResNet release, for ``convdense.OctResNet``.

    python tools/model_converters/oct_resnet_dli14.py oct_resnet50_cosine.pth oct_resnet50_a0.5.pth

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
model computes the release's function (:func:`release_forward`, tested to
1e-5); without it stage 4 differs (docs/model_zoo.md).
"""
import os.path as osp
import re
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from convdense.models import converters  # noqa: E402

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


def convert(state, args=None):
    """``(OctResNet state, dropped keys, backbone config)``."""
    kept, dropped = converters.split_head(state)
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
    depth = converters.depth_of(converters.blocks_per_stage(state))
    alphas = tuple(stage_alpha(state, stage) for stage in range(1, 5))
    return dict(type='convdense.OctResNet', depth=depth, alpha=alphas[0],
                stage_alphas=alphas, strided_downsample='avgpool')


def release_forward(state, image):
    """The release's ``OctResNet.forward`` (its ``oct_resnet.py`` / ``octconv.py``)
    in plain torch on a release state dict (eval-mode BN, eps 1e-5): the four stage
    outputs, each low group upsampled (nearest) after its high group, as
    convdense.OctResNet hands its stages out. A reference for tests and
    tools/model_converters/fidelity_report.py."""
    def norm(x, prefix):
        return F.batch_norm(x, state[f'{prefix}.running_mean'], state[f'{prefix}.running_var'],
                            state[f'{prefix}.weight'], state[f'{prefix}.bias'], False, 0.0, 1e-5)

    def octave_conv_bn(prefix, x_high, x_low, stride):
        """``Conv_BN``: ``OctaveConv.forward`` on the paths present, then ``bn_h``/``bn_l``."""
        def conv(x, path):
            weight = state[f'{prefix}.conv.conv_{path}.weight']
            return F.conv2d(x, weight, padding=weight.shape[-1] // 2)

        def has(path):
            return f'{prefix}.conv.conv_{path}.weight' in state
        if stride == 2:  # every strided OctaveConv pools, whatever its alphas
            x_high = F.avg_pool2d(x_high, 2)
        high = conv(x_high, 'h2h')
        low = conv(F.avg_pool2d(x_high, 2), 'h2l') if has('h2l') else None
        if x_low is not None:
            from_low = conv(x_low, 'l2h')
            high = high + (from_low if stride == 2 else F.interpolate(from_low, scale_factor=2))
            if low is not None and has('l2l'):
                low = low + conv(F.avg_pool2d(x_low, 2) if stride == 2 else x_low, 'l2l')
            else:
                low = None
        return norm(high, f'{prefix}.bn_h'), None if low is None else norm(low, f'{prefix}.bn_l')

    def relu(pair):
        return tuple(None if t is None else F.relu(t) for t in pair)

    x = F.relu(norm(F.conv2d(image, state['conv1.weight'], stride=2, padding=3), 'bn1'))
    pair = (F.max_pool2d(x, 3, 2, padding=1), None)
    outputs = []
    for stage, blocks in enumerate(converters.blocks_per_stage(state), 1):
        for b in range(blocks):
            prefix, stride = f'layer{stage}.{b}', 2 if stage > 1 and b == 0 else 1
            out = relu(octave_conv_bn(f'{prefix}.conv1', *pair, 1))
            out = relu(octave_conv_bn(f'{prefix}.conv2', *out, stride))
            out = octave_conv_bn(f'{prefix}.conv3', *out, 1)
            if f'{prefix}.downsample.0.conv.conv_h2h.weight' in state:
                pair = octave_conv_bn(f'{prefix}.downsample.0', *pair, stride)
            pair = relu(tuple(None if o is None else o + i for o, i in zip(out, pair)))
        high, low = pair
        outputs.append(high if low is None else
                       torch.cat([high, F.interpolate(low, scale_factor=2)], dim=1))
    return tuple(outputs)


if __name__ == '__main__':
    sys.exit(converters.main(convert, __doc__))
