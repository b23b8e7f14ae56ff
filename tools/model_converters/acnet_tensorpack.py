"""Convert the official dataset-aware ACNet-ResNet50 (tensorpack ``.npz``,
wanggrun/Adaptively-Connected-Neural-Networks) for ``convdense.ACNet``.

    python tools/model_converters/acnet_tensorpack.py acnet_resnet50.npz acnet50.pth [--gates prob|logit]

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
size works. ``--gates prob`` (default) sets them to the log of the position-mean
of the release's softmax gates, so each branch keeps its average share;
``--gates logit`` averages the logits. Neither is exact when ``PPP`` varies over
positions; docs/model_zoo.md reports what each changes.

Colour and padding. tensorpack feeds BGR images (normalised with the same
ImageNet mean/std as mmdet, in BGR order), so ``conv0/W``'s input channels are
reversed. Its convolutions and max-pool use TF "SAME" padding: with stride 2 on an
even side that pads less before than after (the window is shifted by one pixel
against PyTorch's symmetric padding); no weight change can express that, so the
written backbone config sets ``strided_padding='tf_same'``, with which
convdense.ACNet pads the stem, the max-pool and the three strided 3x3 convs as
TF does (and runs the strided layers' 1x1 self branch apart from the 3x3, as
their centres then differ). :func:`release_forward` evaluates the release's graph
in plain torch, either way, to measure it: with ``tf_same`` and scalar gates the
converted model computes it exactly.

The pixel-aware release (no self branch, a sigmoid gate on the global branch)
has no counterpart in convdense.ACNet's three softmax gates and is refused.
"""
import os.path as osp
import re
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from convdense.models import converters  # noqa: E402

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


def convert(state, args=None):
    """``(ACNet state, dropped keys, backbone config)``."""
    gates = getattr(args, 'gates', 'prob')
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
    depth = converters.depth_of(converters.blocks_per_stage(out))
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


def _same_pad(x, kernel, stride, value=0.0):
    """TF "SAME" padding: total ``max((ceil(s/stride) - 1) * stride + k - s, 0)``, the
    smaller half before."""
    pads = []
    for side in (x.shape[3], x.shape[2]):
        total = max((-(-side // stride) - 1) * stride + kernel - side, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value)


def release_forward(params, image_bgr, same_padding=True, per_position_gates=True):
    """The release's dataset-aware ACNet-ResNet graph in plain torch (a reference,
    NCHW, eval-mode BN with eps 1e-5 as tensorpack's), on the raw npz tensors.

    ``same_padding=False`` replaces TF "SAME" by PyTorch's symmetric padding and
    ``per_position_gates=False`` uses the converter's ``--gates prob`` scalars:
    with the gates off it is the function convdense.ACNet computes on the
    converted weights (with the image in RGB), with ``strided_padding='tf_same'``
    when ``same_padding`` is on, with the default padding when it is off.
    Returns the four stage outputs.
    """
    def conv(x, name, stride=1):
        weight = to_torch(params[name])
        k = weight.shape[-1]
        if same_padding:
            return F.conv2d(_same_pad(x, k, stride), weight, stride=stride)
        return F.conv2d(x, weight, stride=stride, padding=k // 2)

    def bn(x, name):
        return F.batch_norm(x, params[f'{name}/mean/EMA'], params[f'{name}/variance/EMA'],
                            params[f'{name}/gamma'], params[f'{name}/beta'], False, 0.0, 1e-5)

    def fc(x, name):
        return F.linear(x, to_torch(params[f'{name}/W']), params[f'{name}/b'])

    x = F.relu(bn(conv(image_bgr, 'conv0/W', 2), 'conv0/bn'))
    if same_padding:
        x = F.max_pool2d(_same_pad(x, 3, 2, float('-inf')), 3, 2)
    else:
        x = F.max_pool2d(x, 3, 2, padding=1)
    outputs = []
    blocks = converters.blocks_per_stage(params, r'group(\d)/block(\d+)/', first_stage=0)
    for group, count in enumerate(blocks):
        for b in range(count):
            name = f'group{group}/block{b}'
            stride = 2 if group > 0 and b == 0 else 1
            out = F.relu(bn(conv(x, f'{name}/conv1/W'), f'{name}/conv1/bn'))
            local = conv(out, f'{name}/conv2/z3/W', stride)
            self_ = conv(out, f'{name}/conv2/z1/W', stride)
            global_ = fc(F.relu(fc(out.mean(dim=(2, 3)), f'{name}/conv2/fc1')),
                         f'{name}/conv2/fc3')[:, :, None, None]
            ppp = params[f'{name}/conv2/PPP']
            if per_position_gates:
                p = torch.softmax(ppp, dim=0)
            else:
                p = torch.softmax(gate_logits(ppp), dim=0)[list(GATE_ORDER)].view(3, 1, 1, 1)
            mixed = p[0:1] * local + p[1:2] * self_ + p[2:3] * global_
            out = F.relu(bn(mixed, f'{name}/conv2/sum/bn'))
            out = bn(conv(out, f'{name}/conv3/W'), f'{name}/conv3/bn')
            shortcut = x
            if f'{name}/convshortcut/W' in params:
                shortcut = bn(conv(x, f'{name}/convshortcut/W', stride),
                              f'{name}/convshortcut/bn')
            x = F.relu(out + shortcut)
        outputs.append(x)
    return tuple(outputs)


def synthetic_release(image_size=224, gate_spread=0.5, seed=0):
    """Random arrays with the names and shapes of the release's ACNet-ResNet50
    export (TF layouts, ``PPP`` per output position of an ``image_size``\ :sup:`2`
    input: 56x56 ... 7x7 at 224, logits ``1 + N(0, gate_spread)``), with its
    classifier and a training counter: what the tests and the fidelity report
    convert, as no copy of the real file can be downloaded here."""
    rng = np.random.default_rng(seed)
    arrays = {}

    def conv(name, k, c_in, c_out):
        arrays[f'{name}/W'] = rng.normal(0, (2 / (k * k * c_in)) ** 0.5, (k, k, c_in, c_out))

    def bn(name, c):
        arrays.update({f'{name}/gamma': rng.uniform(0.5, 1.5, c),
                       f'{name}/beta': rng.normal(0, 0.1, c),
                       f'{name}/mean/EMA': rng.normal(0, 0.1, c),
                       f'{name}/variance/EMA': rng.uniform(0.5, 1.5, c)})

    conv('conv0', 7, 3, 64)
    bn('conv0/bn', 64)
    side, inplanes = image_size // 4, 64
    for group, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        for b in range(blocks):
            name = f'group{group}/block{b}'
            side = -(-side // 2) if group > 0 and b == 0 else side
            conv(f'{name}/conv1', 1, inplanes, planes)
            bn(f'{name}/conv1/bn', planes)
            conv(f'{name}/conv2/z3', 3, planes, planes)
            conv(f'{name}/conv2/z1', 1, planes, planes)
            for fc in ('fc1', 'fc3'):
                arrays[f'{name}/conv2/{fc}/W'] = rng.normal(0, planes ** -0.5, (planes, planes))
                arrays[f'{name}/conv2/{fc}/b'] = rng.normal(0, 0.1, planes)
            arrays[f'{name}/conv2/PPP'] = 1 + rng.normal(0, gate_spread, (3, 1, side, side))
            bn(f'{name}/conv2/sum/bn', planes)
            conv(f'{name}/conv3', 1, planes, planes * 4)
            bn(f'{name}/conv3/bn', planes * 4)
            if b == 0:
                conv(f'{name}/convshortcut', 1, inplanes, planes * 4)
                bn(f'{name}/convshortcut/bn', planes * 4)
            inplanes = planes * 4
    arrays['linear/W'] = rng.normal(0, 0.01, (2048, 1000))
    arrays['linear/b'] = np.zeros(1000)
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    arrays['global_step'] = np.array(450000)
    return arrays


def add_arguments(parser):
    parser.add_argument('--gates', choices=('prob', 'logit'), default='prob',
                        help='how per-position gates become per-layer scalars (prob)')


if __name__ == '__main__':
    sys.exit(converters.main(convert, __doc__, add_arguments=add_arguments))
