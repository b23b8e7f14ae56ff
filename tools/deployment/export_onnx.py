"""Export a backbone or a joint-upsampling model to ONNX, and optionally trace it to TorchScript.

    python tools/deployment/export_onnx.py CONFIG [CHECKPOINT] --shape H W --out M.onnx \
        [--static] [--exact] [--opset 18] [--verify [--verify-shape H W]] \
        [--torchscript OUT.pt] [--json OUT.json]

CONFIG is either
  * an mmdet/mmseg config: its ``model.backbone`` is exported. Input ``image``
    (1, 3, H, W); outputs ``feat0``, ``feat1``... (one per ``out_indices``). H and W
    stay dynamic in multiples of 32 (the backbone's stride) unless ``--static``.
  * a joint-upsampling config (``JointUpsampler``): the de-normalised upsampling of
    ``tools/upsample.py``. Inputs ``low`` (1, C, H/f, W/f) in target units and
    ``guide`` (1, 3, H, W) RGB in [0, 1]; output ``high`` (1, C, H, W) in target
    units. ``low`` stays dynamic and ``guide`` follows it at f times its size.
``--shape H W`` is the image (guide) size of the example input. CHECKPOINT: a
checkpoint of the whole model (a detector's or segmentor's ``backbone.*`` weights
are picked out) or of the backbone alone; without it the weights are the config's
random initialisation. The model is exported in deploy mode
(:func:`convdense.deploy.switch_to_deploy`: re-parameterised layers, batch norms
folded); ``--exact`` exports the training graph instead. ``--verify`` runs the
ONNX file with onnxruntime on the CPU at ``--shape`` and, for dynamic exports, at
``--verify-shape`` (default: one stride taller), and the TorchScript module at
``--shape``, against PyTorch's inference of the exact (training-form) model; it
exits 1 when an output differs by more than ``--rtol`` (1e-4) of that output's
largest magnitude. Design notes: docs/deployment.md.
"""
import argparse
import copy
import json
import os.path as osp
import sys
import time
import warnings

import torch
import torch.nn as nn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from convdense import launch  # noqa: E402

DEFAULT_OPSET = 18
BACKBONE_STRIDE = 32


class BackboneForExport(nn.Module):
    """``image (1, 3, H, W) -> tuple of feature maps``; H, W dynamic in multiples of 32."""

    input_names = ('image', )

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.size_divisor = BACKBONE_STRIDE
        self.output_names = tuple(f'feat{i}' for i in range(len(backbone.out_indices)))

    def forward(self, image):
        return tuple(self.backbone(image))

    def example_inputs(self, height, width, seed=0):
        generator = torch.Generator().manual_seed(seed)
        return (torch.randn(1, 3, height, width, generator=generator), )

    def dynamic_shapes(self):
        steps = (torch.export.Dim('image_h32', min=1), torch.export.Dim('image_w32', min=1))
        return {'image': {2: BACKBONE_STRIDE * steps[0], 3: BACKBONE_STRIDE * steps[1]}}


class UpsamplerForExport(nn.Module):
    """``low (1, C, h, w), guide (1, 3, f*h, f*w) -> high (1, C, f*h, f*w)`` in target units."""

    input_names = ('low', 'guide')
    output_names = ('high', )

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.size_divisor = model.factor
        self.channels = getattr(model.net, 'channels', 1)

    def forward(self, low, guide):
        return self.model.upsample(low, guide)

    def example_inputs(self, height, width, seed=0):
        """A smooth positive target (depth-like) and a random guide of the given size."""
        generator = torch.Generator().manual_seed(seed)
        factor = self.model.factor
        low = 1.0 + torch.rand(1, self.channels, height // factor, width // factor,
                               generator=generator) * 4.0
        guide = torch.rand(1, 3, height, width, generator=generator)
        return low, guide

    def dynamic_shapes(self):
        factor = self.model.factor
        low_h, low_w = torch.export.Dim('low_h', min=2), torch.export.Dim('low_w', min=2)
        return {'low': {2: low_h, 3: low_w}, 'guide': {2: factor * low_h, 3: factor * low_w}}


def _load_weights(module, checkpoint, prefix=None):
    """Load ``checkpoint`` into ``module``; with ``prefix`` ('backbone.') keys under it are
    taken from a whole-model checkpoint. A weight the module needs but the file lacks is
    an error (an export with random layers would look like a working model)."""
    from mmengine.runner.checkpoint import _load_checkpoint
    if not osp.isfile(checkpoint):
        raise launch.ConfigError(f'checkpoint not found: {checkpoint}')
    state = _load_checkpoint(checkpoint, map_location='cpu')
    state = state.get('state_dict', state)
    if prefix and any(key.startswith(prefix) for key in state):
        state = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    own = module.state_dict()
    for key, value in state.items():
        if key in own and tuple(value.shape) != tuple(own[key].shape):
            raise launch.ConfigError(f'{checkpoint}: {key!r} has shape {tuple(value.shape)}, the '
                                     f'model needs {tuple(own[key].shape)}')
    result = module.load_state_dict(state, strict=False)
    if result.missing_keys:
        raise launch.ConfigError(
            f'{checkpoint} lacks {len(result.missing_keys)} weights of the model, e.g. '
            f'{result.missing_keys[0]!r}')


def build_exportable(config, checkpoint=None, cfg_options=None):
    """The config's backbone or joint upsampler wrapped for export, in eval mode."""
    from mmengine.model import revert_sync_batchnorm
    cfg = launch.load_config(config, cfg_options, work_dir='')
    model_cfg = cfg.get('model')
    if not model_cfg:
        raise launch.ConfigError(f'{config}: config has no model')
    if 'backbone' in model_cfg:
        from convdense.models.complexity import build_backbone
        scope = cfg.get('default_scope', 'mmdet')
        backbone_cfg = copy.deepcopy(model_cfg.backbone.to_dict())
        backbone_cfg['init_cfg'] = None  # weights come from CHECKPOINT, never a download
        module = BackboneForExport(revert_sync_batchnorm(build_backbone(backbone_cfg, scope)))
        if checkpoint:
            _load_weights(module.backbone, checkpoint, prefix='backbone.')
    elif model_cfg.get('type') == 'JointUpsampler':
        from mmengine.registry import DefaultScope

        from convdense.registry import MODELS
        with DefaultScope.overwrite_default_scope('convdense'):
            module = UpsamplerForExport(MODELS.build(copy.deepcopy(model_cfg.to_dict())))
        if checkpoint:
            _load_weights(module.model, checkpoint)
    else:
        raise launch.ConfigError(f'{config}: model has neither a backbone nor type '
                                 f"'JointUpsampler' (got type {model_cfg.get('type')!r})")
    return module.eval()


def check_shape(module, shape, dynamic):
    """Raise a one-line error for an image size the exported model cannot take."""
    height, width = shape
    divisor = module.size_divisor
    if min(height, width) < 1:
        raise launch.ConfigError(f'--shape: H and W must be positive, got {height} {width}')
    upsampler = isinstance(module, UpsamplerForExport)
    if (upsampler or dynamic) and (height % divisor or width % divisor):
        why = (f'the guide must be {divisor}x the low-res input' if upsampler else
               f'a dynamic backbone input takes multiples of its stride {divisor} '
               f'(--static exports any size)')
        raise launch.ConfigError(f'--shape: {height}x{width} is not a multiple of {divisor}: {why}')


def export_onnx(module, shape, out, dynamic=True, opset=DEFAULT_OPSET, optimize=True):
    """Export with torch.export-based ``torch.onnx.export`` (``dynamo=True``):
    the module as it is (deployed or exact), in standard ops."""
    check_shape(module, shape, dynamic)
    inputs = module.example_inputs(*shape)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # exporter progress notes and deprecations
        torch.onnx.export(module, inputs, out, dynamo=True, opset_version=opset,
                          input_names=list(module.input_names),
                          output_names=list(module.output_names),
                          dynamic_shapes=module.dynamic_shapes() if dynamic else None,
                          external_data=False, optimize=optimize)
    return out


def trace_torchscript(module, shape, out):
    """``torch.jit.trace`` at ``shape`` (the traced module is specialised to it) and save."""
    check_shape(module, shape, dynamic=False)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        traced = torch.jit.trace(module, module.example_inputs(*shape), check_trace=False)
    traced.save(out)
    return out


def _as_tuple(outputs):
    return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs, )


def compare(expected, got, names):
    """Per output: max |got - expected| relative to max |expected|."""
    rows = []
    for name, ref, value in zip(names, expected, got):
        ref = ref.detach().float()
        value = torch.as_tensor(value).float()
        if tuple(value.shape) != tuple(ref.shape):
            raise ValueError(f'{name}: shape {tuple(value.shape)} differs from PyTorch\'s '
                             f'{tuple(ref.shape)}')
        scale = ref.abs().max().item()
        error = (value - ref).abs().max().item()
        rows.append(dict(output=name, shape=tuple(ref.shape), max_abs_error=error,
                         rel_error=error / scale if scale > 0 else error))
    return rows


def reference_outputs(module, inputs):
    """PyTorch's inference outputs of ``module`` for ``inputs``."""
    with torch.no_grad():
        return _as_tuple(module(*inputs))


def verify_onnx(module, path, shapes):
    """Run ``path`` with onnxruntime (CPU) at each (H, W) in ``shapes`` against PyTorch."""
    import onnxruntime
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    rows = []
    for shape in shapes:
        inputs = module.example_inputs(*shape, seed=1)
        got = session.run(None, {name: tensor.numpy()
                                 for name, tensor in zip(module.input_names, inputs)})
        for row in compare(reference_outputs(module, inputs), got, module.output_names):
            rows.append(dict(row, runtime='onnxruntime', input=shape))
    return rows


def verify_torchscript(module, path, shape):
    traced = torch.jit.load(path)
    inputs = module.example_inputs(*shape, seed=1)
    with torch.no_grad():
        got = _as_tuple(traced(*inputs))
    return [dict(row, runtime='torchscript', input=shape)
            for row in compare(reference_outputs(module, inputs), got, module.output_names)]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='weights (default: random initialisation)')
    parser.add_argument('--shape', type=int, nargs=2, required=True, metavar=('H', 'W'),
                        help='image (guide) size of the example input')
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument('--static', action='store_true', help='fix H and W to --shape')
    parser.add_argument('--exact', action='store_true',
                        help='export the training graph, not the deployed one')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help='ONNX opset (>= 17)')
    parser.add_argument('--torchscript', metavar='OUT.pt', help='also save a torch.jit.trace')
    parser.add_argument('--verify', action='store_true',
                        help='compare onnxruntime (and TorchScript) with PyTorch')
    parser.add_argument('--verify-shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='second size for --verify of a dynamic export '
                             '(default: one size step taller than --shape)')
    parser.add_argument('--rtol', type=float, default=1e-4,
                        help='largest error allowed, relative to the largest output magnitude')
    parser.add_argument('--json', metavar='OUT.json',
                        help='also write the export time and the --verify rows to this file')
    parser.add_argument('--cfg-options', nargs='+', action=launch.DictAction,
                        help='override config entries, key=value')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.opset < 17:
        raise launch.ConfigError(f'--opset: 17 or newer is supported, got {args.opset}')
    exact = build_exportable(args.config, args.checkpoint, args.cfg_options)
    module = exact
    if not args.exact:
        from convdense.deploy import switch_to_deploy
        module = switch_to_deploy(copy.deepcopy(exact))
    shape = tuple(args.shape)
    dynamic = not args.static
    started = time.perf_counter()
    export_onnx(module, shape, args.out, dynamic=dynamic, opset=args.opset)
    record = dict(config=args.config, checkpoint=args.checkpoint, shape=shape, dynamic=dynamic,
                  deploy=not args.exact,
                  opset=args.opset, export_seconds=round(time.perf_counter() - started, 1),
                  torch=torch.__version__, rows=[])
    print(f'wrote {args.out} ({"exact" if args.exact else "deployed"}, '
          f'{"dynamic" if dynamic else "static"} H/W, opset {args.opset}, '
          f'{record["export_seconds"]} s)')
    if args.torchscript:
        trace_torchscript(module, shape, args.torchscript)
        print(f'wrote {args.torchscript} (torch.jit.trace at {shape[0]}x{shape[1]})')
    if args.verify:
        record['rows'] = verify(module, args, shape, dynamic, reference=exact)
    if args.json:
        with open(args.json, 'w') as file:
            json.dump(record, file, indent=1)
    if args.verify and max(row['rel_error'] for row in record['rows']) > args.rtol:
        print(f'FAILED: an output differs by more than --rtol {args.rtol:g}', file=sys.stderr)
        sys.exit(1)
    if args.verify:
        print(f'verified: every output within {args.rtol:g} relative')


def verify(module, args, shape, dynamic, reference=None):
    """--verify: onnxruntime at one or two sizes, TorchScript at --shape, against
    ``reference`` (default ``module``) in PyTorch; prints the rows."""
    reference = module if reference is None else reference
    shapes = [shape]
    if dynamic:
        second = tuple(args.verify_shape or (shape[0] + module.size_divisor, shape[1]))
        check_shape(module, second, dynamic)
        shapes.append(second)
    rows = verify_onnx(reference, args.out, shapes)
    if args.torchscript:
        rows += verify_torchscript(reference, args.torchscript, shape)
    for row in rows:
        print(f"{row['runtime']:12s} {row['input'][0]}x{row['input'][1]} {row['output']:6s} "
              f"{str(row['shape']):18s} max abs err {row['max_abs_error']:.2e}  "
              f"relative {row['rel_error']:.2e}")
    return rows


if __name__ == '__main__':
    launch.run_cli(main)
