"""d-li14/octconv.pytorch's Oct-ResNet forward in plain torch, on the release's own
state dict: the reference the conversion in :mod:`.oct_resnet_dli14` is tested
and measured against (tests, ``tools/model_converters/fidelity_report.py``), as
the release's code is no installable package; and the release's layout of a
convdense.OctResNet's weights, a source of known weights to convert."""
import re

import torch
import torch.nn.functional as F

from .common import blocks_per_stage


def release_forward(state, image):
    """The release's ``OctResNet.forward`` (its ``oct_resnet.py`` / ``octconv.py``)
    in plain torch on a release state dict (eval-mode BN, eps 1e-5): the four stage
    outputs, each low group upsampled (nearest) after its high group, as
    convdense.OctResNet hands its stages out."""
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
    for stage, blocks in enumerate(blocks_per_stage(state), 1):
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


def release_state(model):
    """A convdense.OctResNet's weights in the d-li14 release's layout (the inverse
    of :func:`.oct_resnet_dli14.convert`): octave weights split into their four
    paths, norms renamed ``convK.bn_h`` / ``bn_l``; a release-layout source of
    known weights for measuring the conversion."""
    from convdense.models.backbones.oct_resnet import OctaveNorm
    from convdense.ops.octconv import OctaveConv2d
    state = {k: v for k, v in model.state_dict().items() if k.split('.')[0] in ('conv1', 'bn1')}
    for name, module in model.named_modules():
        if isinstance(module, OctaveConv2d):
            name = name.replace('downsample.0', 'downsample.0.conv')
            (out_high, _), (in_high, _) = module.out_split, module.in_split
            rows = {'h': slice(None, out_high), 'l': slice(out_high, None)}
            cols = {'h': slice(None, in_high), 'l': slice(in_high, None)}
            for path in ('h2h', 'h2l', 'l2h', 'l2l'):
                block = module.weight.detach()[rows[path[2]], cols[path[0]]]
                if block.numel():
                    prefix = name if name.endswith('.conv') else f'{name}.conv'
                    state[f'{prefix}.conv_{path}.weight'] = block.clone()
        elif isinstance(module, OctaveNorm):
            prefix = re.sub(r'\.bn(\d)$', r'.conv\1', name).replace('downsample.1',
                                                                     'downsample.0')
            for group, part in (('h', module.high), ('l', module.low)):
                if part is not None:
                    state.update({f'{prefix}.bn_{group}.{k}': v
                                  for k, v in part.state_dict().items()})
    return state
