"""Checkpoint converters (convdense.models.converters, run through their command
lines in tools/model_converters/) and checked pretrained loading.

Each converter is proven against the release it converts: Res2Net against timm's
own model (outputs equal), HetConv P = 1 against mmdet's ResNet (outputs equal),
Oct-ResNet against a key/shape table and the octave-conv semantics read from the
release's model code (weaker: no installable implementation exists), ACNet against
the release's graph evaluated in plain torch on a synthetic npz with the release's
names and shapes. BN weights, biases and statistics are randomised everywhere so a
dropped or swapped norm shows.
"""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import convdense  # noqa: F401,E402  (its compat fixes before mmdet/timm import torchvision)

pytest.importorskip('mmdet.models')

from convdense.models.converters import (  # noqa: E402
    acnet_tensorpack, acnet_tensorpack_reference, oct_resnet_dli14, oct_resnet_dli14_reference)
from tests.helpers.e2e import REPO, load_script  # noqa: E402
from tests.models import backbone_checks as checks  # noqa: E402
from tests.models.test_res2net import _randomise_norms  # noqa: E402

STAGES = (1, 2, 3, 4)


def _convert(name, src, dst, *options):
    """Run a converter's command line in-process; returns (exit status, stdout)."""
    import contextlib
    import io
    script = load_script(f'tools/model_converters/{name}.py')
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = script.main([str(src), str(dst), *options])
    return status, out.getvalue()


def _load_converted(cfg, dst):
    """Build ``cfg`` with ``init_cfg=Pretrained(dst)`` and initialise it (eval mode)."""
    backbone = checks.build(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=str(dst))))
    backbone.init_weights()
    backbone.eval()  # mmdet's ResNet.train() returns None
    return backbone


def _assert_close_relative(ours, theirs, tolerance=1e-5):
    for stage, (a, b) in enumerate(zip(ours, theirs), 1):
        assert a.shape == b.shape, f'stage {stage}: {tuple(a.shape)} vs {tuple(b.shape)}'
        error = ((a - b).abs().max() / b.abs().max()).item()
        assert error < tolerance, f'stage {stage}: relative error {error:.2e}'


# ------------------------------------------------------------------ Res2Net vs timm

@pytest.mark.parametrize('name,expected', [
    ('res2net50_26w_4s', dict(depth=50, scales=4, base_width=26, groups=1)),
    ('res2net50_48w_2s', dict(depth=50, scales=2, base_width=48, groups=1)),
    ('res2next50', dict(depth=50, scales=4, base_width=4, groups=8)),
    ('res2net101_26w_4s', dict(depth=101, scales=4, base_width=26, groups=1)),
    # the v1b layout: deep stem conv1.0/1/3/4/6 + bn1, average-pool shortcuts
    ('res2net50d', dict(depth=50, scales=4, base_width=26, groups=1, deep_stem=True,
                        avg_down=True, stem_channels=64)),
])
def test_res2net_conversion_reproduces_timm_features(name, expected, tmp_path):
    timm = pytest.importorskip('timm')
    torch.manual_seed(0)
    reference = timm.create_model(name, pretrained=False, features_only=True,
                                  out_indices=STAGES).eval()  # timm's eval returns the model
    _randomise_norms(reference)  # timm zero-inits bn3, which would hide a swapped norm
    release = dict(reference.state_dict())
    release['fc.weight'], release['fc.bias'] = torch.randn(1000, 2048), torch.zeros(1000)
    src, dst = tmp_path / f'{name}.pth', tmp_path / 'converted.pth'
    torch.save(release, src)

    status, printed = _convert('res2net', src, dst)
    assert status == 0, printed
    assert 'dropped' in printed and 'fc.weight' in printed
    meta = torch.load(dst, weights_only=False)['meta']['backbone']
    assert {k: meta[k] for k in expected} == expected
    ours = _load_converted(meta, dst)
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        _assert_close_relative(ours(image), reference(image))


def test_mmdets_res2net_cannot_take_these_checkpoints():
    """docs/model_zoo.md: mmdet's Res2Net is always v1b and skips layer1.0's pool."""
    from mmdet.models.backbones import Res2Net
    mmdet_res2net = Res2Net(depth=50, deep_stem=False, avg_down=False, base_channels=16)
    assert mmdet_res2net.deep_stem and mmdet_res2net.avg_down  # the arguments are overridden
    keys = set(mmdet_res2net.state_dict())
    assert 'stem.0.weight' in keys and 'conv1.weight' not in keys
    assert getattr(mmdet_res2net.layer1[0], 'pool', None) is None
    ours = checks.build(dict(type='convdense.Res2Net', depth=50, base_channels=16))
    assert ours.layer1[0].pool is not None


# ------------------------------------------------------------------ HetConv from ResNet

def _resnet50_checkpoint(tmp_path):
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    resnet = ResNet(depth=50)
    resnet.eval()
    _randomise_norms(resnet)
    path = tmp_path / 'resnet50.pth'
    torch.save(dict(resnet.state_dict(), **{'fc.weight': torch.zeros(1000, 2048)}), path)
    return resnet, path


def test_hetconv_part_1_reproduces_the_resnet(tmp_path):
    resnet, src = _resnet50_checkpoint(tmp_path)
    status, printed = _convert('resnet_to_hetconv', src, tmp_path / 'p1.pth', '--part', '1')
    assert status == 0, printed
    ours = _load_converted(dict(type='convdense.HetConvResNet', depth=50, part=1),
                           tmp_path / 'p1.pth')
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        _assert_close_relative(ours(image), resnet(image))


def test_hetconv_part_4_keeps_own_block_kernels_and_centre_taps(tmp_path):
    from convdense.ops.hetconv import hetconv_kernel_mask
    resnet, src = _resnet50_checkpoint(tmp_path)
    status, printed = _convert('resnet_to_hetconv', src, tmp_path / 'p4.pth')
    assert status == 0, printed
    ours = _load_converted(dict(type='convdense.HetConvResNet', depth=50, part=4),
                           tmp_path / 'p4.pth')
    for layer in ('layer1', 'layer3'):
        plain = getattr(resnet, layer)[1].conv2.weight
        het = getattr(ours, layer)[1].conv2
        mask = hetconv_kernel_mask(plain.shape[1], plain.shape[0], 3, 4)
        # The HetConv is the ResNet kernel with the 8 outer taps dropped off its own blocks.
        torch.testing.assert_close(het.dense_weight(), plain * mask, rtol=0, atol=0)
        assert (mask.sum(dim=(2, 3)) == 1).sum() == plain.shape[0] * plain.shape[1] * 3 // 4
    torch.testing.assert_close(ours.layer2[0].conv3.weight, resnet.layer2[0].conv3.weight)


# ------------------------------------------------------------------ Oct-ResNet (d-li14)

def release_oct_resnet50_shapes(alpha=0.5):
    """Key -> shape of d-li14/octconv.pytorch's ``oct_resnet50()`` state dict, derived
    from its model code (Bottleneck / Conv_BN(_ACT) / OctaveConv / _make_layer):
    stage 1 enters at alpha_in 0, stage 4 leaves at alpha_out 0 (``output=True``: its
    conv2/conv3 and later blocks at alpha 0), every other layer at 0.5."""
    shapes = {'conv1.weight': (64, 3, 7, 7), 'fc.weight': (1000, 2048), 'fc.bias': (1000,)}
    bn = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')

    def add_bn(prefix, channels):
        for field in bn:
            shapes[f'{prefix}.{field}'] = () if field == 'num_batches_tracked' else (channels,)

    def add_conv_bn(prefix, c_in, c_out, k, a_in, a_out):
        lo_in, lo_out = int(a_in * c_in), int(a_out * c_out)
        hi_in, hi_out = c_in - lo_in, c_out - lo_out
        for path, rows, cols in (('h2h', hi_out, hi_in), ('h2l', lo_out, hi_in),
                                 ('l2h', hi_out, lo_in), ('l2l', lo_out, lo_in)):
            if rows and cols:
                shapes[f'{prefix}.conv.conv_{path}.weight'] = (rows, cols, k, k)
        add_bn(f'{prefix}.bn_h', hi_out)
        if lo_out:
            add_bn(f'{prefix}.bn_l', lo_out)

    add_bn('bn1', 64)
    inplanes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), 1):
        output = stage == 4
        a_in0, a_out0 = (0 if stage == 1 else alpha), (0 if output else alpha)
        inner = 0 if output else alpha
        for b in range(blocks):
            prefix = f'layer{stage}.{b}'
            a_in, a_out = (a_in0, a_out0) if b == 0 else (inner, inner)
            add_conv_bn(f'{prefix}.conv1', inplanes, planes, 1, a_in, a_out)
            add_conv_bn(f'{prefix}.conv2', planes, planes, 3, inner, inner)
            add_conv_bn(f'{prefix}.conv3', planes, planes * 4, 1, inner, inner)
            if b == 0:
                add_conv_bn(f'{prefix}.downsample.0', inplanes, planes * 4, 1, a_in, a_out)
            inplanes = planes * 4
    return shapes


def _random_state(shapes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(100)
        elif key.endswith('running_var') or key.endswith('weight') and len(shape) == 1:
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=generator) * (2 / fan_in) ** 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.1
    return state


def test_oct_resnet_release_layout_converts_without_missing_keys(tmp_path):
    release = _random_state(release_oct_resnet50_shapes())
    src, dst = tmp_path / 'oct_resnet50.pth', tmp_path / 'converted.pth'
    torch.save(dict(epoch=120, state_dict={f'module.{k}': v for k, v in release.items()}), src)
    status, printed = _convert('oct_resnet_dli14', src, dst)
    assert status == 0, printed
    meta = torch.load(dst, weights_only=False)['meta']['backbone']
    assert meta['stage_alphas'] == (0.5, 0.5, 0.5, 0.0)
    ours = _load_converted(dict(type='convdense.OctResNet', depth=50), dst)
    conv = ours.layer2[1].conv2.weight  # [[h2h, l2h], [h2l, l2l]], 64 high / 64 low
    torch.testing.assert_close(conv[:64, 64:], release['layer2.1.conv2.conv.conv_l2h.weight'])
    torch.testing.assert_close(conv[64:, :64], release['layer2.1.conv2.conv.conv_h2l.weight'])
    torch.testing.assert_close(ours.layer1[0].downsample[1].low.running_var,
                               release['layer1.0.downsample.0.bn_l.running_var'])
    torch.testing.assert_close(ours.layer4[0].conv1.weight[:, 512:],
                               release['layer4.0.conv1.conv.conv_l2h.weight'])
    assert meta['strided_downsample'] == 'avgpool'


def test_oct_resnet_with_avgpool_downsampling_computes_the_release(tmp_path):
    """The converted checkpoint in OctResNet(strided_downsample='avgpool') equals the
    release's forward (re-implemented in plain torch from its model code) at every
    stage; with the default stride-2 conv only stage 4 (``layer4.0.conv2``) differs."""
    release = _random_state(release_oct_resnet50_shapes())
    src, dst = tmp_path / 'oct_resnet50.pth', tmp_path / 'converted.pth'
    torch.save(release, src)
    status, printed = _convert('oct_resnet_dli14', src, dst)
    assert status == 0 and "strided_downsample='avgpool'" in printed, printed
    image = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = oct_resnet_dli14_reference.release_forward(release, image)
        pooled = _load_converted(dict(type='convdense.OctResNet', depth=50,
                                      strided_downsample='avgpool'), dst)(image)
        strided = _load_converted(dict(type='convdense.OctResNet', depth=50), dst)(image)
    _assert_close_relative(pooled, reference)
    _assert_close_relative(strided[:3], reference[:3])
    error = ((strided[3] - reference[3]).abs().max() / reference[3].abs().max()).item()
    assert error > 1e-2


def test_oct_resnet_release_state_has_the_release_layout_and_converts_back():
    """``release_state`` (the fidelity report's release-layout source) writes the
    release's keys and shapes, and the converter maps them back to the model's."""
    torch.manual_seed(0)
    model = checks.build(dict(type='convdense.OctResNet', depth=50))
    _randomise_norms(model)
    release = oct_resnet_dli14_reference.release_state(model)
    shapes = {k: v for k, v in release_oct_resnet50_shapes().items() if not k.startswith('fc.')}
    assert {k: tuple(v.shape) for k, v in release.items()} == shapes
    state, dropped, cfg = oct_resnet_dli14.convert(release)
    assert dropped == [] and cfg['stage_alphas'] == (0.5, 0.5, 0.5, 0.0)
    expected = model.state_dict()
    assert set(state) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0, msg=key)


def release_octave_conv(x_high, x_low, paths, stride):
    """The release's ``OctaveConv.forward`` semantics (avg-pool 2x2 down, nearest x2
    up, stride 2 as pool + conv), on its separate path weights, 3x3 padding 1."""
    def conv(x, name):
        return F.conv2d(x, paths[name], padding=paths[name].shape[-1] // 2)
    if stride == 2:
        x_high = F.avg_pool2d(x_high, 2)
    high = conv(x_high, 'h2h')
    low = conv(F.avg_pool2d(x_high, 2), 'h2l')
    from_low = conv(x_low, 'l2h')
    high = high + (from_low if stride == 2 else F.interpolate(from_low, scale_factor=2))
    low = low + conv(F.avg_pool2d(x_low, 2) if stride == 2 else x_low, 'l2l')
    return high, low


@pytest.mark.parametrize('stride', [1, 2])
def test_assembled_octave_weight_computes_the_release_octave_conv(stride):
    from convdense.ops.octconv import OctaveConv2d
    torch.manual_seed(0)
    paths = {'h2h': torch.randn(6, 4, 3, 3), 'h2l': torch.randn(2, 4, 3, 3),
             'l2h': torch.randn(6, 4, 3, 3), 'l2l': torch.randn(2, 4, 3, 3)}
    ours = OctaveConv2d(8, 8, 3, alpha_in=0.5, alpha_out=0.25, stride=stride, padding=1)
    ours.weight.data.copy_(oct_resnet_dli14.assemble(paths))
    x_high, x_low = torch.randn(1, 4, 16, 16), torch.randn(1, 4, 8, 8)
    for a, b in zip(ours((x_high, x_low)), release_octave_conv(x_high, x_low, paths, stride)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ ACNet (tensorpack)

@pytest.fixture(scope='module')
def acnet_release(tmp_path_factory):
    arrays = acnet_tensorpack_reference.synthetic_release(image_size=64)
    path = tmp_path_factory.mktemp('acnet') / 'acnet_resnet50.npz'
    np.savez(path, **arrays)
    return path, {k: torch.from_numpy(v) for k, v in arrays.items()}


def test_acnet_conversion_computes_the_release_graph(acnet_release, tmp_path):
    reference = acnet_tensorpack_reference
    src, params = acnet_release
    dst = tmp_path / 'acnet50.pth'
    status, printed = _convert('acnet_tensorpack', src, dst)
    assert status == 0, printed
    assert 'linear/W' in printed and 'global_step' in printed
    assert "strided_padding='tf_same'" in printed
    ours = _load_converted(dict(type='convdense.ACNet', depth=50), dst)
    tf_same = _load_converted(dict(type='convdense.ACNet', depth=50,
                                   strided_padding='tf_same'), dst)
    rgb = torch.randn(1, 3, 64, 64)
    bgr = rgb.flip(1)
    with torch.no_grad():
        # The release's graph with PyTorch padding and the converter's scalar gates
        # is exactly what the converted ACNet computes (names, layouts, BGR, gate order).
        _assert_close_relative(ours(rgb), reference.release_forward(
            params, bgr, same_padding=False, per_position_gates=False))
        # With TF "SAME" padding, exactly what it computes with strided_padding='tf_same'.
        scalar_gates = reference.release_forward(params, bgr, per_position_gates=False)
        _assert_close_relative(tf_same(rgb), scalar_gates)
        # Without the option TF "SAME" moves the strided windows by a pixel: a real difference.
        release = reference.release_forward(params, bgr)
        for a, b in ((ours(rgb)[0], scalar_gates[0]), (tf_same(rgb)[0], release[0])):
            assert ((a - b).abs().max() / b.abs().max()).item() > 1e-3


def test_acnet_gates_map_release_order_to_ours(acnet_release):
    ppp = torch.zeros(3, 1, 4, 4)
    ppp[0] = 2.0  # release order (local, self, global): local dominates
    ppp[2, :, :2] = 1.0  # global varies over positions
    probs = torch.softmax(acnet_tensorpack.gate_logits(ppp, 'prob'), 0)
    torch.testing.assert_close(probs, torch.softmax(ppp, 0).mean(dim=(1, 2, 3))[[1, 0, 2]])
    assert probs.argmax() == 1  # ours (self, local, global): local
    logits = acnet_tensorpack.gate_logits(ppp, 'logit')
    torch.testing.assert_close(logits, torch.tensor([0.0, 2.0, 0.5]))


def test_acnet_refuses_an_unknown_variable(tmp_path):
    arrays = acnet_tensorpack_reference.synthetic_release(image_size=64)
    arrays['group0/block0/conv2/gate/W'] = np.zeros((1, 1, 64, 64), np.float32)
    path = tmp_path / 'pixel.npz'
    np.savez(path, **arrays)
    status, printed = _convert('acnet_tensorpack', path, tmp_path / 'out.pth')
    assert status == 2 and printed.startswith('error: ') and printed.count('\n') == 1
    assert 'group0/block0/conv2/gate/W' in printed


# ------------------------------------------------------------------ configs and errors

@pytest.mark.parametrize('name,content,cause', [
    ('garbage.pth', b'not a checkpoint', 'torch.load(weights_only=True) cannot read it'),
    ('empty.pth', b'', 'empty or truncated file'),
    ('garbage.npz', b'not a zip', 'not a readable .npz file'),
])
def test_unreadable_source_is_one_error_line(name, content, cause, tmp_path):
    src = tmp_path / name
    src.write_bytes(content)
    status, printed = _convert('res2net', src, tmp_path / 'out.pth')
    assert status == 2 and printed.startswith(f'error: {src}: {cause}'), printed
    assert printed.count('\n') == 1 and not (tmp_path / 'out.pth').exists()


def test_converted_checkpoint_initialises_a_detector_config(tmp_path):
    from mmengine.config import Config
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    resnet, src = _resnet50_checkpoint(tmp_path)
    dst = tmp_path / 'hetconv_p4.pth'
    assert _convert('resnet_to_hetconv', src, dst)[0] == 0
    cfg = Config.fromfile(f'{REPO}/configs/mask_rcnn/mask-rcnn_hetconv-resnet-50_fpn_1x_coco.py')
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(dst))
    register_all_modules(init_default_scope=False)
    model = MMDET_MODELS.build(cfg.model)
    model.init_weights()
    expected = torch.load(dst, weights_only=False)['state_dict']
    for key in ('layer3.4.conv2.pointwise.weight', 'layer1.0.bn3.running_var', 'conv1.weight'):
        torch.testing.assert_close(model.backbone.state_dict()[key], expected[key])


def _save(tmp_path, cfg, name, wrap=None):
    torch.manual_seed(0)
    state = checks.build(cfg).state_dict()
    if wrap:
        state = {f'{wrap}{k}': v for k, v in state.items()}
    path = tmp_path / f'{name}.pth'
    torch.save(dict(state_dict=state), path)
    return str(path)


#: Narrow ResNet-50s (base_channels=16) keep the mismatch tests cheap.
NARROW = dict(depth=50, base_channels=16)


@pytest.mark.parametrize('saved,loaded,cause', [
    (dict(type='convdense.Res2Net'), dict(type='convdense.Res2Net', scales=6),
     'other scales/base_width/groups/with_se'),
    (dict(type='convdense.OctResNet'), dict(type='convdense.OctResNet', alpha=0.25),
     'other alpha/stage_alphas'),
    (dict(type='convdense.HetConvResNet', part=2), dict(type='convdense.HetConvResNet'),
     'other part'),
    (dict(type='convdense.ACNet', mode='pixel'), dict(type='convdense.ACNet'), 'other mode'),
    (dict(type='convdense.Res2Net'), dict(type='convdense.OctResNet'),
     'a convdense.Res2Net checkpoint, not a convdense.OctResNet one'),
    (dict(type='convdense.Res2Net', depth=101), dict(type='convdense.Res2Net'), 'another depth'),
    (dict(type='ResNet'), dict(type='convdense.HetConvResNet'), 'resnet_to_hetconv.py'),
])
def test_mismatched_checkpoint_is_named_on_one_line(saved, loaded, cause, tmp_path):
    path = _save(tmp_path, {**NARROW, **saved}, 'saved')
    backbone = checks.build(dict(NARROW, **loaded,
                                 init_cfg=dict(type='Pretrained', checkpoint=path)))
    with pytest.raises(ValueError) as error:
        backbone.init_weights()
    message = str(error.value)
    assert '\n' not in message and cause in message, message
    assert re.search(r'(missing|unexpected) keys \(layer|shape mismatches \(', message), message


def test_detector_checkpoint_without_prefix_is_named(tmp_path):
    cfg = dict(NARROW, type='convdense.Res2Net')
    path = _save(tmp_path, cfg, 'detector', wrap='backbone.')
    with pytest.raises(ValueError, match="pass prefix='backbone'"):
        checks.build(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=path))).init_weights()


def test_classifier_head_and_plain_resnet_into_acnet_still_load(tmp_path):
    from mmengine.logging import MMLogger
    _, src = _resnet50_checkpoint(tmp_path)  # has fc.weight
    logger = MMLogger.get_current_instance()
    records = []
    handler = type('Catch', (__import__('logging').Handler,),
                   {'emit': lambda self, record: records.append(record.getMessage())})()
    logger.addHandler(handler)
    try:
        backbone = checks.build(dict(type='convdense.ACNet', depth=50,
                                     init_cfg=dict(type='Pretrained', checkpoint=str(src))))
        backbone.init_weights()
    finally:
        logger.removeHandler(handler)
    assert any('classifier head dropped: fc.weight' in r for r in records), records
    assert any('keep their initialisation' in r and 'self_branch' in r for r in records), records
