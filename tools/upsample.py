"""Upsample one low-res depth/disparity/flow map guided by its high-res RGB image.

    python tools/upsample.py --method pac|pac-lite|djf|jbu|bicubic \
        [--config CFG --checkpoint CKPT] --guide RGB.png \
        (--low LOW.png | --gt GT.png --factor F) [--kind depth|disparity|flow] \
        [--scale S] --out OUT.png|OUT.flo|OUT.npy|OUT.pfm [--panel PANEL.png]

``--low`` is the user's own low-res input (its size times the factor must be the
guide's size); ``--gt`` makes the low-res input from a full-resolution ground
truth with the benchmark protocol and prints the error on valid pixels as the
last line (``RMSE <value>`` in the target's units, or ``EPE <value>`` in pixels).
The output format follows ``--out``'s extension: depth/disparity as 16-bit PNG
(``value * scale``, 0 = unknown; values outside the 16-bit range are clipped and
the count is printed) or, unscaled and unclipped, ``.npy`` / ``.pfm``; flow as
``.flo``, ``.npy`` or ``.pfm``. What the model produced is always written.
Formats read: 8/16-bit PNG, .npy, .npz, .pfm, .flo. PNG values (read and
written) are ``value * --scale`` (e.g. 1000 for millimetre depth, 256 for
KITTI-style disparity); float formats hold the values themselves.
``--method pac-lite`` without ``--checkpoint`` uses the shipped model for the kind
and factor (``checkpoints/<config name>.pth``: PAC lite trained on procedural data
only, depth x4/x8 and flow x4/x8, and depth x16 = an x4 depth model applied twice;
see docs/joint_upsampling.md); a missing one is an error naming the command that
makes it. Otherwise the learned methods need
``--checkpoint`` (``make demo`` prints one: PAC lite x8 on disparity and x4 on flow)
and, unless it is a demo model, ``--config``.
Unknown low-res samples (0 in a PNG, NaN/inf in float formats: sensor holes) are a
validity mask: bicubic and JBU give them no weight, and a learned model whose config
sets ``model.low_mask`` (``*_holes.py``) gets the mask; other learned models see holes
filled from the nearest known sample. The tool prints how many samples are unknown.
"""
import argparse
import json
import os.path as osp
import sys

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from convdense import launch  # noqa: E402

NETS = dict(pac='PacJointUpsample', **{'pac-lite': 'PacJointUpsampleLite'}, djf='DJF', jbu='JBU', bicubic='Bicubic')
DEMO_CONFIGS = {'pac-lite': 'configs/joint_upsampling/pacjointupsample_lite_x8_demo.py',
                'djf': 'configs/joint_upsampling/djf_x8_demo.py'}
#: PAC lite models shipped in checkpoints/ for --method pac-lite without --checkpoint:
#: (kind, factor) -> config in configs/joint_upsampling/; the checkpoint is checkpoints/<config stem>.pth.
#: Depth x16 is a cascade of an x4 depth model (tools/make_shipped_upsamplers.py COMPOSED); no x16
#: net is trained yet (its training cost per factor: docs/joint_upsampling.md)
SHIPPED_DIR = osp.join(ROOT, 'checkpoints')
SHIPPED_RESULTS = osp.join(ROOT, 'benchmarks', 'results', 'shipped_upsamplers.json')
SHIPPED = {('depth', 4): 'pacjointupsample_lite_x4_procedural.py',
           ('depth', 8): 'pacjointupsample_lite_x8_procedural.py',
           ('depth', 16): 'pacjointupsample_lite_x16_cascade_procedural.py',
           ('flow', 4): 'pacjointupsample_lite_x4_flow_procedural.py',
           ('flow', 8): 'pacjointupsample_lite_x8_flow_procedural.py'}
FLOW_DEMO_CONFIGS = {'pac-lite': 'configs/joint_upsampling/pacjointupsample_lite_x4_flow_demo.py',
                     'djf': 'configs/joint_upsampling/djf_x4_flow_demo.py'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--method', required=True, choices=sorted(NETS))
    parser.add_argument('--config', help='config of the learned model (default: the demo config for --kind)')
    parser.add_argument('--checkpoint', help='checkpoint of the learned model')
    parser.add_argument('--guide', required=True, help='high-resolution RGB image')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--low', help='low-resolution input to upsample')
    source.add_argument('--gt', help='full-resolution ground truth: make the low-res input and score')
    parser.add_argument('--factor', type=int, help='upsampling factor (needed with --gt; else inferred)')
    parser.add_argument('--kind', default='depth', choices=['depth', 'disparity', 'flow'])
    parser.add_argument('--scale', type=float, default=1.0, help='PNG value per unit (in and out)')
    parser.add_argument('--out', required=True,
                        help='output .png (depth/disparity, 16-bit, clipped), .flo (flow), or .npy / .pfm '
                             '(float32, either kind)')
    parser.add_argument('--panel', help='comparison panel PNG (default: OUT with _panel.png)')
    return parser.parse_args(argv)


def build_model(args, factor):
    from mmengine.registry import init_default_scope

    from convdense.registry import MODELS
    init_default_scope('convdense')
    if args.method in ('jbu', 'bicubic'):  # unknown low-res samples get no weight (low_mask)
        return MODELS.build(dict(type='JointUpsampler', net=dict(type=NETS[args.method], factor=factor),
                                 values_scale_with_resolution=args.kind == 'flow', low_mask=True))
    if not args.checkpoint and args.method == 'pac-lite' and not args.config:
        args.config, args.checkpoint = shipped_model(args.kind, factor)
    if not args.checkpoint:
        raise launch.ConfigError(f'--method {args.method} is learned: give --checkpoint (make demo prints one)')
    if not osp.isfile(args.checkpoint):
        raise launch.ConfigError(f'checkpoint not found: {args.checkpoint}')
    demo_configs = FLOW_DEMO_CONFIGS if args.kind == 'flow' else DEMO_CONFIGS
    config = args.config or osp.join(ROOT, demo_configs.get(args.method, ''))
    if not osp.isfile(config):
        raise launch.ConfigError(f'--method {args.method} needs --config (the config it was trained with)')
    cfg = launch.load_config(config)
    if cfg.model.net.factor != factor:
        raise launch.ConfigError(f'{config} is a x{cfg.model.net.factor} model but the input needs x{factor}')
    if cfg.model.get('values_scale_with_resolution', False) != (args.kind == 'flow'):
        raise launch.ConfigError(f'{config} was not trained on --kind {args.kind} targets')
    model = MODELS.build(cfg.model)
    from mmengine.runner import load_checkpoint
    load_checkpoint(model, args.checkpoint, map_location='cpu', logger='silent')
    return model.eval()


def shipped_checkpoint(kind, factor, directory=None):
    """Where the shipped model for ``kind`` ('depth' or 'flow') at ``factor`` lives:
    ``checkpoints/<config stem>.pth`` (``directory`` instead of ``checkpoints/``)."""
    return osp.join(directory or SHIPPED_DIR, osp.splitext(SHIPPED[kind, factor])[0] + '.pth')


def shipped_model(kind, factor):
    """(config, checkpoint) of the shipped PAC lite model for ``kind`` at ``factor``, or a
    one-line error saying which factors ship and how to train the missing model."""
    key = ('flow' if kind == 'flow' else 'depth', factor)
    if key not in SHIPPED:
        factors = sorted(f for k, f in SHIPPED if k == key[0])
        raise launch.ConfigError(f'no shipped pac-lite model for {kind} x{factor} (shipped: x'
                                 + ', x'.join(map(str, factors)) + '); give --config and --checkpoint')
    config = osp.join(ROOT, 'configs', 'joint_upsampling', SHIPPED[key])
    checkpoint = shipped_checkpoint(*key)
    if not osp.isfile(checkpoint):
        raise launch.ConfigError(
            f'the pac-lite {key[0]} x{factor} model is not trained yet ({osp.relpath(checkpoint, ROOT)} is '
            f'missing): make it with `python tools/make_shipped_upsamplers.py --models {key[0]}-x{factor}` '
            f'(config {osp.relpath(config, ROOT)}), or give --checkpoint')
    standing = shipped_standing(*key)
    if standing:
        print(standing)
    return config, checkpoint


def shipped_standing(kind, factor, results=SHIPPED_RESULTS):
    """A ``note:`` line when a classical baseline beats the shipped model on the real
    scene it was tested on (from ``benchmarks/results/shipped_upsamplers.json``), naming
    those baselines and the best of them; else None."""
    if not osp.isfile(results):
        return None
    with open(results) as f:
        record = json.load(f).get(f'{kind}-x{factor}')
    if record is None:
        return None
    column = record['test_scene'].capitalize()
    score = {row['method']: row['test'][column]['mean'] for row in record['rows']}
    pac = score.pop('PAC (lite)')
    better = sorted((value, method) for method, value in score.items() if value < pac)
    if not better:
        return None
    metric = dict(rmse_px='RMSE', epe_px='EPE')[record['metric']]
    return (f"note: on the real scene it was tested on ({column}) the shipped {kind} x{factor} model "
            f"({metric} {pac:.3f} px) is behind " + ' and '.join(f'{m} ({v:.3f})' for v, m in better)
            + f" ({osp.relpath(results, ROOT)}); --method {better[0][1].lower()} may serve you better")


def main(argv=None):
    from convdense.datasets.readers import TARGET_FORMATS, read_rgb, read_target, write_target
    from convdense.datasets.transforms import (crop_to_multiple, fill_invalid_nearest, low_res_validity,
                                               make_low_resolution)
    from convdense.evaluation import depth_rmse, flow_epe_sum

    args = parse_args(argv)
    if osp.splitext(args.out)[1].lower() not in TARGET_FORMATS[args.kind]:
        raise launch.ConfigError(f'--out {args.out}: --kind {args.kind} is written as '
                                 f'{", ".join(TARGET_FORMATS[args.kind])}')
    guide = read_rgb(args.guide)
    gt = None
    if args.gt:
        if not args.factor:
            raise launch.ConfigError('--gt needs --factor')
        gt = read_target(args.gt, args.kind, args.scale)
        if gt.shape[:2] != guide.shape[:2]:
            raise launch.ConfigError(f'{args.gt} is {gt.shape[1]}x{gt.shape[0]} but the guide '
                                     f'{args.guide} is {guide.shape[1]}x{guide.shape[0]}')
        guide, gt = crop_to_multiple(guide, args.factor), crop_to_multiple(gt, args.factor)
        if not np.isfinite(gt).all(axis=2).any():
            raise launch.ConfigError(f'{args.gt}: no valid pixel')
        low = make_low_resolution(gt, args.factor, args.kind)
        low_valid = low_res_validity(gt, args.factor, args.kind)
        factor = args.factor
    else:
        low = read_target(args.low, args.kind, args.scale)
        low_valid = np.isfinite(low).all(axis=2)
        if not low_valid.any():
            raise launch.ConfigError(f'{args.low}: no known pixel')
        low = fill_invalid_nearest(low)
        factor = guide.shape[0] // low.shape[0]
        if args.factor and args.factor != factor or factor < 2 or \
                (low.shape[0] * factor, low.shape[1] * factor) != guide.shape[:2]:
            raise launch.ConfigError(f'{args.low} is {low.shape[1]}x{low.shape[0]} and the guide is '
                                     f'{guide.shape[1]}x{guide.shape[0]}: not an integer factor'
                                     + (f' of {args.factor}' if args.factor else ''))
    model = build_model(args, factor)

    def chw(array):
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]

    unknown = int((~low_valid).sum())
    if unknown:
        use = 'passed to the model as a validity mask' if model.low_mask else \
            'filled from the nearest known sample (this model was trained without the mask)'
        print(f'low-res input: {unknown} of {low_valid.size} samples unknown '
              f'({100 * unknown / low_valid.size:.1f} %), {use}')
    with torch.no_grad():
        pred = model.upsample(chw(low), chw(guide), torch.from_numpy(low_valid)[None, None])[0]
    pred_hwc = pred.numpy().transpose(1, 2, 0)
    too_low, too_high = write_target(args.out, pred_hwc, args.kind, args.scale)
    if too_low or too_high:
        total = pred_hwc.shape[0] * pred_hwc.shape[1]
        print(f'warning: {too_low + too_high} of {total} pixels ({100 * (too_low + too_high) / total:.2f} %) '
              f'outside the 16-bit PNG range at --scale {args.scale:g} were clipped ({too_high} above '
              f'{65535 / args.scale:g} written as 65535, {too_low} below 0 written as 0 = unknown); '
              f'write .npy or .pfm to keep every value')
    print(f'wrote {args.out}')

    panel = args.panel or osp.splitext(args.out)[0] + '_panel.png'
    from convdense.visualization import make_panel
    if gt is not None:
        valid = np.isfinite(gt).all(axis=2)
        gt_chw = torch.from_numpy(np.where(valid[..., None], gt, 0).transpose(2, 0, 1).copy())
        valid_t = torch.from_numpy(valid)[None]
    else:
        gt_chw, valid_t = pred, torch.ones(1, *pred.shape[1:], dtype=torch.bool)
    shown_low = low if args.kind == 'flow' else np.where(low_valid[..., None], low, np.float32(np.nan))
    make_panel(panel, chw(guide)[0], chw(shown_low)[0], {args.method: pred}, gt_chw, valid_t, kind=args.kind,
               unit='' if args.kind == 'depth' else 'px',
               low_value_scale=model.value_scale, title=f'{args.method} x{factor}' + ('' if gt is not None else ' (no ground truth)'))
    print(f'wrote {panel}')
    if gt is not None:
        if args.kind == 'flow':
            total, count = flow_epe_sum(pred, gt_chw, valid_t)
            print(f'EPE {total / count:.4f}')
        else:
            print(f'RMSE {depth_rmse(pred, gt_chw, valid_t):.4f}')


if __name__ == '__main__':
    launch.run_cli(main)
