"""The official dataset-aware ACNet-ResNet50 (tensorpack ``.npz``,
wanggrun/Adaptively-Connected-Neural-Networks) as a ``convdense.ACNet`` state
dict; the command line is ``tools/model_converters/acnet_tensorpack.py``.

Name mapping (TF layouts: conv ``W`` is ``[kh, kw, in, out]``, fc ``W`` ``[in, out]``)::

    conv0/W, conv0/bn/*                      -> conv1.weight, bn1.*  (input channels BGR -> RGB)
    groupG/blockB/conv1/W, .../conv1/bn/*    -> layer{G+1}.B.conv1.weight, bn1.*
    .../conv2/z3/W   (3x3, local)            -> conv2.local_branch.weight
    .../conv2/z1/W   (1x1, self)             -> conv2.self_branch.weight
    .../conv2/fc1/{W,b}, .../conv2/fc3/{W,b} -> conv2.global_fc1.*, conv2.global_fc2.*
    .../conv2/PPP    [3, 1, H, W]            -> conv2.gate_logits (3,)  (see below)
    .../conv2/sum/bn/*                       -> bn2.*
    .../conv3/W, .../conv3/bn/*              -> conv3.weight, bn3.*
    .../convshortcut/W, .../convshortcut/bn/* -> downsample.0.weight, downsample.1.*
    BN gamma, beta, mean/EMA, variance/EMA   -> weight, bias, running_mean, running_var
    linear/{W,b}                             -> dropped (classifier)

Gates. The release learns a logit per branch and *output position* (``PPP``,
order local, self, global, softmax over the branch axis), tied to 224x224 input;
convdense keeps three logits per layer (order self, local, global) so any input
size works. ``gates='prob'`` (default) sets them to the log of the position-mean
of the release's softmax gates, so each branch keeps its average share;
``gates='logit'`` averages the logits. Neither is exact when ``PPP`` varies over
positions; docs/model_zoo.md reports what each changes.

Colour and padding. tensorpack feeds BGR images (normalised with the same
ImageNet mean/std as mmdet, in BGR order), so ``conv0/W``'s input channels are
reversed. Its convolutions and max-pool use TF "SAME" padding: with stride 2 on an
even side that pads less before than after (the window is shifted by one pixel
against PyTorch's symmetric padding); no weight change can express that, so the
written backbone config sets ``strided_padding='tf_same'``, with which
convdense.ACNet pads the stem, the max-pool and the three strided 3x3 convs as
TF does (and runs the strided layers' 1x1 self branch apart from the 3x3, as
their centres then differ). :mod:`.acnet_tensorpack_reference` evaluates the
release's graph in plain torch, either way, to measure it: with ``tf_same`` and scalar gates the
converted model computes it exactly.

The pixel-aware release (no self branch, a sigmoid gate on the global branch)
has no counterpart in convdense.ACNet's three softmax gates and is refused.
"""
import re

import torch

from .common import blocks_per_stage, depth_of

BN_FIELDS = {'gamma': 'weight', 'beta': 'bias', 'mean/EMA': 'running_mean',
             'variance/EMA': 'running_var'}
#: release layer name inside a block -> (our conv key, our norm prefix)
BLOCK_LAYERS = {'conv1': ('conv1.weight', 'bn1'), 'conv3': ('conv3.weight', 'bn3'),
                'convshortcut': ('downsample.0.weight', 'downsample.1'),
                'conv2/sum': (None, 'bn2')}
CONV2_PARTS = {'z3/W': 'local_branch.weight', 'z1/W': 'self_branch.weight',
               'fc1/W': 'global_fc1.weight', 'fc1/b': 'global_fc1.bias',
               'fc3/W': 'global_fc2.weight', 'fc3/b': 'global_fc2.bias'}
#: release gate order (local, self, global) -> ours (self, local, global)
GATE_ORDER = (1, 0, 2)
#: training-only variables a tensorpack export may hold
NON_WEIGHTS = re.compile(r'(global_step|learning_rate|.*/Momentum|.*/Adam(_1)?|EMA/.*)$')


def to_torch(value):
    """TF conv ``[kh, kw, in, out]`` -> ``[out, in, kh, kw]``; fc ``[in, out]`` -> ``[out, in]``."""
    if value.dim() == 4:
        return value.permute(3, 2, 0, 1).contiguous()
    if value.dim() == 2:
        return value.t().contiguous()
    return value


def gate_logits(ppp, gates='prob'):
    """Three scalar logits (order self, local, global) from a release ``PPP``
    ``[3, 1, H, W]`` (order local, self, global), averaged over positions."""
    per_position = ppp.reshape(3, -1).double()
    if gates == 'prob':
        logits = torch.log(torch.softmax(per_position, dim=0).mean(dim=1))
    elif gates == 'logit':
        logits = per_position.mean(dim=1)
    else:
        raise ValueError(f"gates must be 'prob' or 'logit', got {gates!r}")
    return logits[list(GATE_ORDER)].float()


def convert(state, gates='prob'):
    """``(ACNet state, dropped keys, backbone config)``; ``gates`` ('prob' or
    'logit') is how per-position gates become per-layer scalars."""
    if not any(key.endswith('/PPP') for key in state):
        raise ValueError('no groupG/blockB/conv2/PPP gates: not a dataset-aware ACNet '
                         'tensorpack export (the pixel-aware release is not supported)')
    out, dropped = {}, []
    for key, value in state.items():
        new_key = None
        block = re.fullmatch(r'group(\d)/block(\d+)/(.+)', key)
        if key == 'conv0/W':
            new_key, value = 'conv1.weight', to_torch(value).flip(1)
        elif key.startswith('conv0/bn/') and key[len('conv0/bn/'):] in BN_FIELDS:
            new_key = f'bn1.{BN_FIELDS[key[len("conv0/bn/"):]]}'
        elif block:
            prefix = f'layer{int(block.group(1)) + 1}.{block.group(2)}'
            new_key, value = block_key(prefix, block.group(3), value, gates)
        if new_key is None:
            dropped.append(key)
            if not (key.startswith('linear/') or NON_WEIGHTS.match(key)):
                raise ValueError(f'{key} (shape {tuple(value.shape)}) maps to no ACNet '
                                 'parameter: not a dataset-aware ACNet-ResNet export')
            continue
        out[new_key] = value
    depth = depth_of(blocks_per_stage(out))
    return out, dropped, dict(type='convdense.ACNet', depth=depth, mode='dataset',
                              strided_padding='tf_same')


def block_key(prefix, name, value, gates):
    """Our key and value for the variable ``name`` of block ``prefix``, or (None, value)."""
    if name == 'conv2/PPP':
        return f'{prefix}.conv2.gate_logits', gate_logits(value, gates)
    if name.startswith('conv2/') and name[len('conv2/'):] in CONV2_PARTS:
        return f'{prefix}.conv2.{CONV2_PARTS[name[len("conv2/"):]]}', to_torch(value)
    for layer, (conv_key, norm) in BLOCK_LAYERS.items():
        if name == f'{layer}/W' and conv_key is not None:
            return f'{prefix}.{conv_key}', to_torch(value)
        field = name[len(layer) + len('/bn/'):]
        if name.startswith(f'{layer}/bn/') and field in BN_FIELDS:
            return f'{prefix}.{norm}.{BN_FIELDS[field]}', value
    return None, value

