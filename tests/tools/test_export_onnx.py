"""tools/deployment/export_onnx.py: every backbone variant and every joint upsampler
exports, deployed, to ONNX with dynamic H/W and traces to TorchScript; onnxruntime's
and the traced module's outputs match the exact model's eager inference at two
input sizes."""
import contextlib
import copy
import os
import subprocess
import sys
from unittest import mock

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from tests.helpers.e2e import REPO, load_script
from tests.models.backbone_checks import randomise_norms
from tests.ops.test_pac import single_thread  # noqa: F401  (autouse: one thread for tiny ops)

SHAPES = ((64, 64), (96, 64))
# A dynamic export is costly (torch.export's symbolic shapes, then the ONNX
# translation): `make test` exports the PAC upsampler and JBU; CONVDENSE_EXPORT_ALL=1
# adds every backbone variant and the other upsamplers (docs/deployment.md).
EXPORT_ALL = os.environ.get('CONVDENSE_EXPORT_ALL') == '1'
full_matrix = pytest.mark.skipif(not EXPORT_ALL, reason='set CONVDENSE_EXPORT_ALL=1')
DEFAULT_UPSAMPLERS = ('pac', 'jbu')
RTOL = 1e-4
MASK_RCNN = 'configs/mask_rcnn/'
JOINT = 'configs/joint_upsampling/'

BACKBONES = {
    'resnet-50': (MASK_RCNN + 'mask-rcnn_r50_fpn_1x_coco.py', None),
    'res2net-50': (MASK_RCNN + 'mask-rcnn_res2net-50_fpn_1x_coco.py', None),
    'res2next-50': (MASK_RCNN + 'mask-rcnn_res2net-50_fpn_1x_coco.py',
                    {'model.backbone.groups': 8, 'model.backbone.base_width': 4}),
    # the configs run Oct-ResNet and ACNet as their converted releases need
    # (strided_downsample='avgpool', strided_padding='tf_same'); the defaults too
    'oct-resnet-50': (MASK_RCNN + 'mask-rcnn_oct-resnet-50_fpn_1x_coco.py',
                      {'model.backbone.strided_downsample': 'conv'}),
    'oct-resnet-50-avgpool': (MASK_RCNN + 'mask-rcnn_oct-resnet-50_fpn_1x_coco.py', None),
    'hetconv-resnet-50': (MASK_RCNN + 'mask-rcnn_hetconv-resnet-50_fpn_1x_coco.py', None),
    'acnet-50-dataset': (MASK_RCNN + 'mask-rcnn_acnet-50_fpn_1x_coco.py',
                         {'model.backbone.strided_padding': 'symmetric'}),
    'acnet-50-pixel': (MASK_RCNN + 'mask-rcnn_acnet-50_fpn_1x_coco.py',
                       {'model.backbone.mode': 'pixel',
                        'model.backbone.strided_padding': 'symmetric'}),
    'acnet-50-tf-same': (MASK_RCNN + 'mask-rcnn_acnet-50_fpn_1x_coco.py', None),
}

UPSAMPLERS = {
    'pac': (JOINT + 'pacjointupsample_x4_nyu.py', None),
    'pac-lite-flow': (JOINT + 'pacjointupsample_lite_x4_flow_demo.py', None),
    'pac-residual-learned-jbu': (JOINT + 'pacjointupsample_x4_nyu.py',
                                 {'model.net.residual': 'jbu', 'model.net.learnable_jbu': True}),
    'djf': (JOINT + 'djf_x4_nyu.py', None),
    'jbu': (JOINT + 'djf_x4_nyu.py', {'model.net.type': 'JBU'}),
    'bicubic': (JOINT + 'djf_x4_nyu.py', {'model.net.type': 'Bicubic'}),
}


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/deployment/export_onnx.py')


@contextlib.contextmanager
def one_block_per_stage():
    """ResNet-50's stages with one block each: every distinct block (each stage's
    strided, downsampling first block; Oct-ResNet's transitions into and out of
    octave features) at about a quarter of the export time of all 16."""
    from mmdet.models.backbones import ResNet

    from convdense.models.backbones.acnet import ACNet
    from convdense.models.backbones.hetconv_resnet import HetConvResNet
    from convdense.models.backbones.oct_resnet import OctResNet
    from convdense.models.backbones.res2net import Res2Net
    with contextlib.ExitStack() as stack:
        for cls in (ResNet, Res2Net, OctResNet, HetConvResNet, ACNet):
            block = cls.arch_settings[50][0]
            stack.enter_context(mock.patch.dict(cls.arch_settings, {50: (block, (1, 1, 1, 1))}))
        yield


@contextlib.contextmanager
def eager_kernels_forbidden():
    """Make the deployed octave layers' eager-only arrangements (in-place
    upsample-add, pooling into a buffer) raise: a recorded graph must hold
    standard ops only."""
    def forbidden(*args, **kwargs):
        raise AssertionError('an eager-only arrangement ran while a graph was recorded')

    with mock.patch('convdense.ops.octconv.add_upsampled_', forbidden), \
            mock.patch('convdense.ops.octconv.downsample_by_two', forbidden):
        yield


def assert_dynamic_hw(path, opset_min=17):
    model = onnx.load(path)
    assert max(entry.version for entry in model.opset_import if entry.domain in ('', 'ai.onnx')) \
        >= opset_min
    for graph_input in model.graph.input:
        dims = graph_input.type.tensor_type.shape.dim
        assert dims[2].dim_param and dims[3].dim_param, f'{graph_input.name} has static H/W'


def export_and_check(tool, module, tmp_path, name):
    """Deploy a copy of ``module``, export it (dynamic) and trace it at 64x64; ORT at
    64x64 and 96x64, TorchScript at 64x64, all within RTOL of ``module`` (the exact
    model) in PyTorch."""
    from convdense.deploy import switch_to_deploy
    deployed = switch_to_deploy(copy.deepcopy(module))
    onnx_path, ts_path = str(tmp_path / f'{name}.onnx'), str(tmp_path / f'{name}.pt')
    with torch.no_grad(), eager_kernels_forbidden():
        tool.export_onnx(deployed, SHAPES[0], onnx_path, optimize=False)
        tool.trace_torchscript(deployed, SHAPES[0], ts_path)
    assert_dynamic_hw(onnx_path)
    rows = tool.verify_onnx(module, onnx_path, SHAPES)
    rows += tool.verify_torchscript(module, ts_path, SHAPES[0])
    assert {row['input'] for row in rows} == set(SHAPES)
    assert {row['runtime'] for row in rows} == {'onnxruntime', 'torchscript'}
    worst = max(rows, key=lambda row: row['rel_error'])
    assert worst['rel_error'] <= RTOL, worst
    return rows


@pytest.mark.slow
def test_deployed_oct_resnet_export_matches_the_exact_model(tool, tmp_path):
    """A static export at an odd size (the cropped upsampling): the deployed graph
    holds no batch norm and only standard ops, and onnxruntime on it gives the
    exact model's outputs."""
    from convdense.deploy import switch_to_deploy
    torch.manual_seed(0)
    with one_block_per_stage():
        exact = tool.build_exportable(BACKBONES['oct-resnet-50'][0])
    randomise_norms(exact)
    deployed = switch_to_deploy(copy.deepcopy(exact))
    path, shape = str(tmp_path / 'oct.onnx'), (61, 75)
    with torch.no_grad(), eager_kernels_forbidden():
        tool.export_onnx(deployed, shape, path, dynamic=False)
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert 'BatchNormalization' not in ops and {'Conv', 'Resize', 'AveragePool'} <= ops, ops
    rows = tool.verify_onnx(exact, path, [shape])
    worst = max(rows, key=lambda row: row['rel_error'])
    assert worst['rel_error'] <= RTOL, worst


@pytest.mark.slow
@full_matrix
@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_backbone_exports_and_matches_pytorch(tool, tmp_path, name):
    config, options = BACKBONES[name]
    with one_block_per_stage():
        module = tool.build_exportable(config, cfg_options=options)
    backbone = module.backbone
    assert [len(getattr(backbone, layer)) for layer in backbone.res_layers] == [1, 1, 1, 1]
    rows = export_and_check(tool, module, tmp_path, name)
    # the four ResNet stages at strides 4..32 of the second (dynamic) size
    shapes = [row['shape'] for row in rows if row['input'] == SHAPES[1]]
    assert shapes == [(1, 256, 24, 16), (1, 512, 12, 8), (1, 1024, 6, 4), (1, 2048, 3, 2)]


@pytest.mark.slow
@pytest.mark.parametrize('name', [
    name if name in DEFAULT_UPSAMPLERS else pytest.param(name, marks=full_matrix)
    for name in sorted(UPSAMPLERS)])
def test_upsampler_exports_and_matches_pytorch(tool, tmp_path, name):
    config, options = UPSAMPLERS[name]
    module = tool.build_exportable(config, cfg_options=options)
    rows = export_and_check(tool, module, tmp_path, name)
    channels = module.channels
    assert [row['shape'] for row in rows if row['runtime'] == 'onnxruntime'] == [
        (1, channels, 64, 64), (1, channels, 96, 64)]


def test_backbone_checkpoint_weights_are_taken_from_a_detector_checkpoint(tool, tmp_path):
    module = tool.build_exportable(BACKBONES['hetconv-resnet-50'][0])
    state = {f'backbone.{key}': torch.randn_like(value) if value.is_floating_point() else value
             for key, value in module.backbone.state_dict().items()}
    state['neck.lateral_convs.0.conv.weight'] = torch.zeros(1)
    checkpoint = tmp_path / 'detector.pth'
    torch.save({'state_dict': state, 'meta': {}}, checkpoint)
    loaded = tool.build_exportable(BACKBONES['hetconv-resnet-50'][0], str(checkpoint))
    for key, value in loaded.backbone.state_dict().items():
        assert torch.equal(value, state[f'backbone.{key}']), key


def test_checkpoint_missing_or_misshapen_weights_are_one_line_errors(tool, tmp_path):
    config = UPSAMPLERS['djf'][0]
    own = tool.build_exportable(config).model.state_dict()
    partial = tmp_path / 'partial.pth'
    torch.save({'state_dict': {'net.branch_target.0.weight': own['net.branch_target.0.weight']}},
               partial)
    with pytest.raises(tool.launch.ConfigError, match=r'lacks \d+ weights of the model'):
        tool.build_exportable(config, str(partial))
    misshapen = tmp_path / 'misshapen.pth'
    torch.save({'state_dict': dict(own, **{'net.branch_target.0.weight': torch.zeros(1)})},
               misshapen)
    with pytest.raises(tool.launch.ConfigError, match=r"'net.branch_target.0.weight' has shape"):
        tool.build_exportable(config, str(misshapen))
    with pytest.raises(tool.launch.ConfigError, match='checkpoint not found'):
        tool.build_exportable(config, str(tmp_path / 'missing.pth'))


def test_sizes_the_exported_model_cannot_take_are_refused(tool):
    upsampler = tool.build_exportable(UPSAMPLERS['bicubic'][0], cfg_options=UPSAMPLERS['bicubic'][1])
    with pytest.raises(tool.launch.ConfigError, match='not a multiple of 4: the guide'):
        tool.check_shape(upsampler, (66, 64), dynamic=True)

    class Backbone:
        size_divisor = 32

    with pytest.raises(tool.launch.ConfigError, match='not a multiple of 32.*--static'):
        tool.check_shape(Backbone(), (100, 64), dynamic=True)
    tool.check_shape(Backbone(), (100, 64), dynamic=False)  # a static export takes any size


def test_cli_exports_a_trained_upsampler_and_verifies(tool, tmp_path):
    """The command line end to end: a checkpoint's weights reach the ONNX file."""
    config = UPSAMPLERS['djf'][0]
    model = tool.build_exportable(config).model
    torch.manual_seed(3)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    checkpoint = tmp_path / 'djf.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    out = tmp_path / 'djf.onnx'
    result = subprocess.run(
        [sys.executable, 'tools/deployment/export_onnx.py', config, str(checkpoint), '--shape',
         '32', '48', '--out', str(out), '--verify', '--torchscript', str(tmp_path / 'djf.pt')],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'verified: every output within 0.0001 relative' in result.stdout
    assert '(deployed, dynamic H/W' in result.stdout
    low = torch.rand(1, 1, 10, 6) + 1.0
    guide = torch.rand(1, 3, 40, 24)
    session = onnxruntime.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    got = session.run(None, {'low': low.numpy(), 'guide': guide.numpy()})[0]
    with torch.no_grad():
        expected = model.eval().upsample(low, guide).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=RTOL * np.abs(expected).max())


def test_cli_bad_shape_is_a_one_line_error(tool, capsys):
    argv = [UPSAMPLERS['djf'][0], '--shape', '30', '48', '--out', '/nonexistent/x.onnx']
    with pytest.raises(SystemExit) as exit_info:
        tool.launch.run_cli(lambda: tool.main(argv))
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and '30x48 is not a multiple of 4' in errors[0], errors
