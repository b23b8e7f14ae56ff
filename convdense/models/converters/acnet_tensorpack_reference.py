"""The dataset-aware ACNet-ResNet50 release's tensorpack graph in plain torch, on
its own npz arrays, and a synthetic copy of those arrays: the reference the
conversion in :mod:`.acnet_tensorpack` is tested and measured against (tests,
``tools/model_converters/fidelity_report.py``), as neither tensorpack nor the
released file can be installed or downloaded here."""
import numpy as np
import torch
import torch.nn.functional as F

from .acnet_tensorpack import GATE_ORDER, gate_logits, to_torch
from .common import blocks_per_stage


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
    ``per_position_gates=False`` uses the converter's ``gates='prob'`` scalars:
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
    blocks = blocks_per_stage(params, r'group(\d)/block(\d+)/', first_stage=0)
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
    export (TF layouts, ``PPP`` per output position of a square ``image_size``
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
