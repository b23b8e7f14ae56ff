"""How closely each converted backbone computes its source, per stage.

    python tools/model_converters/fidelity_report.py [--out benchmarks/results/model_converters.json]

No released checkpoint can be downloaded here, so each source is a random network
of the release's architecture (BN statistics calibrated on random images, so
features have the scale trained ones have); the numbers measure the conversions
and the architectural differences, not ImageNet weights. Relative error of a
stage = ||ours - source|| / ||source|| (Frobenius, batch of 2 at 224x224):

* ``res2net``: convdense.Res2Net on converted timm weights vs timm's
  ``features_only`` model (should be ~1e-7);
* ``hetconv_from_resnet50``: HetConv-ResNet-50 inflated from ResNet-50 vs that
  ResNet-50, for P = 1, 2, 4 (P = 1 must be 0: nothing is dropped);
* ``oct_release_layer4_pooling``: the d-li14 release's forward (plain torch,
  ``convdense.models.converters.oct_resnet_dli14_reference``) on a release-layout
  copy of a random convdense.OctResNet vs convdense.OctResNet on the converted
  copy, with the default
  ``strided_downsample='conv'`` (``layer4.0.conv2`` a stride-2 conv, the release's a
  2x2 average pool + conv) and with ``'avgpool'`` (float32 rounding only, up to ~1e-4
  at stage 4 for these random weights; 0 in float64, also recorded);
* ``acnet``: convdense.ACNet on converted weights vs the tensorpack release's graph
  (per-position gates, TF "SAME" padding) and each difference alone, for both
  gate averagings, with the default symmetric padding and with
  ``strided_padding='tf_same'`` (its ``padding_only`` should be ~1e-7).
"""
import argparse
import json
import os.path as osp
import platform
import sys

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from convdense.models.converters import (  # noqa: E402
    acnet_tensorpack, acnet_tensorpack_reference, oct_resnet_dli14, oct_resnet_dli14_reference,
    res2net as res2net_converter, resnet_to_hetconv, verify_loads)


def relative_errors(ours, source):
    return [round(((a - b).norm() / b.norm()).item(), 7) for a, b in zip(ours, source)]


def calibrate_norms(model, images):
    """Set every BN's running statistics to the batch statistics of ``images``
    (a random network's features then have unit scale, as a trained one's)."""
    model.eval()  # returns None for mmdet's ResNet
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:  # train mode for the norms only (mmdet's norm_eval would keep them frozen)
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        model(images)
    for m in norms:
        m.eval()
    return model


def res2net(images):
    import timm
    rows = {}
    for name in ('res2net50_26w_4s', 'res2net50_48w_2s', 'res2next50', 'res2net101_26w_4s'):
        torch.manual_seed(0)
        reference = calibrate_norms(timm.create_model(
            name, pretrained=False, features_only=True, out_indices=(1, 2, 3, 4)), images)
        state, _, cfg = res2net_converter.convert(dict(reference.state_dict()))
        ours = verify_loads(cfg, state)
        with torch.no_grad():
            rows[name] = relative_errors(ours(images), reference(images))
    return dict(timm=timm.__version__, relative_error_per_stage=rows)


def hetconv(images):
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    resnet = calibrate_norms(ResNet(depth=50, zero_init_residual=False), images)
    with torch.no_grad():
        source = resnet(images)
    rows = {}
    for part in (1, 2, 4):
        state, _, cfg = resnet_to_hetconv.convert(resnet.state_dict(), part=part)
        with torch.no_grad():
            rows[f'P={part}'] = relative_errors(verify_loads(cfg, state)(images), source)
    return dict(source='mmdet ResNet-50, random init, BN calibrated on the inputs',
                relative_error_per_stage=rows)


def oct_pooling(images):
    from convdense.models.complexity import build_backbone
    torch.manual_seed(0)
    ours = calibrate_norms(build_backbone(dict(type='convdense.OctResNet', depth=50,
                                               zero_init_residual=False)), images)
    release = oct_resnet_dli14_reference.release_state(ours)
    state, _, cfg = oct_resnet_dli14.convert(release)
    rows = {}
    with torch.no_grad():
        reference = oct_resnet_dli14_reference.release_forward(release, images)
        for mode in ('conv', 'avgpool'):
            converted = verify_loads(dict(cfg, strided_downsample=mode), state)
            rows[f'strided_downsample={mode}'] = relative_errors(converted(images), reference)
        # float32 rounding alone, amplified by the calibrated random weights: in float64
        # the option's error is exactly 0.
        double = {k: v.double() if v.is_floating_point() else v for k, v in release.items()}
        rows['strided_downsample=avgpool, float64'] = relative_errors(
            converted.double()(images.double()),
            oct_resnet_dli14_reference.release_forward(double, images.double()))
    return dict(what="release forward (every stride-2 conv is 2x2 avg-pool + conv) vs "
                     "convdense.OctResNet on the converted weights; 'conv' runs "
                     "layer4.0.conv2 (alphas 0) as a stride-2 conv",
                relative_error_per_stage=rows)


def acnet(images, gate_spread=0.5):
    reference = acnet_tensorpack_reference
    params = {k: torch.from_numpy(v) for k, v in
              reference.synthetic_release(images.shape[-1], gate_spread).items()}
    bgr = images.flip(1)
    with torch.no_grad():
        release = reference.release_forward(params, bgr)
        rows = {}
        scalar_gates = reference.release_forward(params, bgr, same_padding=True,
                                                 per_position_gates=False)
        for gates in ('prob', 'logit'):
            state, _, cfg = acnet_tensorpack.convert(params, gates=gates)
            ours = verify_loads(dict(cfg, strided_padding='symmetric'), state)(images)
            rows[f'gates={gates}'] = dict(
                total=relative_errors(ours, release),
                padding_only=relative_errors(ours, scalar_gates) if gates == 'prob' else None,
                gates_only=relative_errors(ours, reference.release_forward(
                    params, bgr, same_padding=False, per_position_gates=True)))
            ours = verify_loads(dict(cfg, strided_padding='tf_same'), state)(images)
            rows[f'gates={gates}, strided_padding=tf_same'] = dict(
                total=relative_errors(ours, release),
                padding_only=relative_errors(ours, scalar_gates) if gates == 'prob' else None)
    return dict(source=f'synthetic release arrays, PPP = 1 + N(0, {gate_spread})',
                relative_error_per_stage=rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--out', default=osp.join(ROOT, 'benchmarks/results/model_converters.json'))
    parser.add_argument('--size', type=int, default=224)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    images = torch.randn(2, 3, args.size, args.size)
    results = dict(input=[2, 3, args.size, args.size], torch=torch.__version__,
                   machine=platform.machine(), stages='layer1..layer4',
                   res2net=res2net(images), hetconv_from_resnet50=hetconv(images),
                   oct_release_layer4_pooling=oct_pooling(images), acnet=acnet(images))
    with open(args.out, 'w') as f:
        json.dump(results, f, indent=1)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
