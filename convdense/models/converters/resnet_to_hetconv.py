"""A ResNet checkpoint inflated into a HetConv-ResNet (no HetConv weights were ever
released); the command line is ``tools/model_converters/resnet_to_hetconv.py``.

Every bottleneck ``conv2`` (``(N, M, 3, 3)``) becomes a HetConv with part P: each
filter block keeps the ResNet kernels on its own input block as its ``3 x 3``
part and takes the centre taps of the ResNet kernels on the other blocks as its
``1 x 1`` part (what a ``3 x 3`` kernel does at its centre); the rest of each
such kernel, its 8 outer taps, is what P > 1 drops. Every other tensor is copied.
P = 1 reproduces the ResNet exactly. Input: torchvision's or mmdet's
ResNet layout (``layerN.i.conv2.weight``, ``bn2``/``norm`` names as mmdet's
ResNet loads them).
"""
import re

from .common import blocks_per_stage, depth_of, split_head

CONV2 = r'(layer\d\.\d+)\.conv2\.weight'


def split_kernel(weight, part):
    """A dense ``(N, M, k, k)`` kernel as HetConv parts: ``spatial`` ``(N, M/P, k, k)``
    (filter block g on input block g) and ``pointwise`` ``(N, M - M/P, 1, 1)``
    (filter block g on blocks g+1, ..., g+P-1 mod P, centre taps), the layout of
    :class:`convdense.ops.hetconv.HetConv2d`; ``pointwise`` is None for P = 1."""
    out_channels, in_channels, k, _ = weight.shape
    if in_channels % part or out_channels % part:
        raise ValueError(f'part P={part} must divide the {out_channels}x{in_channels} '
                         'conv2 channels')
    block_in, block_out = in_channels // part, out_channels // part
    spatial = weight.new_empty(out_channels, block_in, k, k)
    pointwise = weight.new_empty(out_channels, in_channels - block_in, 1, 1)
    for g in range(part):
        rows = slice(g * block_out, (g + 1) * block_out)
        spatial[rows] = weight[rows, g * block_in:(g + 1) * block_in]
        for slot, shift in enumerate(range(1, part)):
            source = (g + shift) % part
            pointwise[rows, slot * block_in:(slot + 1) * block_in] = \
                weight[rows, source * block_in:(source + 1) * block_in, k // 2:k // 2 + 1,
                       k // 2:k // 2 + 1]
    return spatial, (pointwise if part > 1 else None)


def convert(state, part=4):
    """``(HetConv-ResNet state, dropped keys, backbone config)`` with HetConv part
    ``part`` (4, the paper's main model; 1 = the ResNet)."""
    kept, dropped = split_head(state)
    if not any(re.fullmatch(CONV2, key) for key in kept):
        raise ValueError('no layerN.i.conv2.weight keys: not a plain ResNet checkpoint')
    out = {}
    for key, value in kept.items():
        match = re.fullmatch(CONV2, key)
        if not match:
            out[key] = value
            continue
        spatial, pointwise = split_kernel(value, part)
        out[f'{match.group(1)}.conv2.spatial.weight'] = spatial
        if pointwise is not None:
            out[f'{match.group(1)}.conv2.pointwise.weight'] = pointwise
    depth = depth_of(blocks_per_stage(out))
    return out, dropped, dict(type='convdense.HetConvResNet', depth=depth, part=part)

