"""tools/upsample.py always writes what the method produced: a 16-bit PNG clips values
outside its range and says how many, ``.npy`` / ``.pfm`` keep every value, and each
format reads back through the project's readers."""
import os.path as osp
import sys

import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))
import upsample  # noqa: E402

from convdense import launch  # noqa: E402
from convdense.datasets.readers import read_flow, read_target  # noqa: E402


def _guide(tmp_path, size):
    import imageio.v3 as iio
    rng = np.random.default_rng(0)
    path = tmp_path / 'guide.png'
    iio.imwrite(path, (rng.random((size, size, 3)) * 255).astype(np.uint8))
    return str(path)


def _upsample(capsys, *args):
    upsample.main(['--method', 'bicubic'] + [str(a) for a in args])
    return capsys.readouterr().out


def test_png_clips_out_of_range_depth_with_a_count_and_npy_keeps_it(tmp_path, capsys):
    # 0.5 m and 80 m at scale 1000: 80 000 does not fit in 16 bits
    low = np.where(np.arange(8)[None, :] < 4, 0.5, 80.0).repeat(8, 0).astype(np.float32)
    np.save(tmp_path / 'low.npy', low)
    guide = _guide(tmp_path, 32)
    common = ('--guide', guide, '--low', tmp_path / 'low.npy', '--kind', 'depth', '--scale', 1000)
    out = _upsample(capsys, *common, '--out', tmp_path / 'raw.npy')
    assert 'warning' not in out
    raw = np.load(tmp_path / 'raw.npy')
    assert raw.shape == (32, 32) and raw.max() > 65.535  # bicubic keeps (and overshoots) 80 m
    out = _upsample(capsys, *common, '--out', tmp_path / 'clipped.png')
    high, below = int((raw * 1000 > 65535).sum()), int((raw < 0).sum())
    assert 0 < high < raw.size
    assert f'warning: {high + below} of {raw.size} pixels' in out
    assert f'{high} above 65.535 written as 65535' in out and 'write .npy or .pfm' in out
    import imageio.v3 as iio
    png = iio.imread(tmp_path / 'clipped.png')
    assert png.dtype == np.uint16
    np.testing.assert_array_equal(png, np.round(np.clip(raw.astype(np.float64) * 1000, 0, 65535)))
    # the PFM holds the same unclipped values as the .npy
    _upsample(capsys, *common, '--out', tmp_path / 'raw.pfm')
    np.testing.assert_array_equal(read_target(str(tmp_path / 'raw.pfm'), 'depth')[..., 0], raw)


def test_in_range_png_prints_no_warning(tmp_path, capsys):
    np.save(tmp_path / 'low.npy', np.full((8, 8), 2.0, np.float32))
    out = _upsample(capsys, '--guide', _guide(tmp_path, 32), '--low', tmp_path / 'low.npy',
                    '--scale', 1000, '--out', tmp_path / 'out.png')
    assert 'warning' not in out
    assert read_target(str(tmp_path / 'out.png'), 'depth', 1000) == pytest.approx(2.0)


def test_flow_written_as_flo_npy_and_pfm_reads_back_the_same(tmp_path, capsys):
    rng = np.random.default_rng(1)
    np.save(tmp_path / 'low.npy', (rng.standard_normal((8, 8, 2)) * 3).astype(np.float32))
    guide = _guide(tmp_path, 32)
    flows = {}
    for ext in ('flo', 'npy', 'pfm'):
        _upsample(capsys, '--guide', guide, '--low', tmp_path / 'low.npy', '--kind', 'flow',
                  '--out', tmp_path / f'out.{ext}')
        flows[ext] = read_flow(str(tmp_path / f'out.{ext}'))
    assert flows['npy'].shape == (32, 32, 2)
    np.testing.assert_array_equal(flows['flo'], flows['npy'])
    np.testing.assert_array_equal(flows['pfm'], flows['npy'])


@pytest.mark.parametrize('kind, out', [('flow', 'out.png'), ('depth', 'out.flo'), ('depth', 'out.tif')])
def test_unsupported_output_format_is_refused_before_any_work(tmp_path, kind, out):
    with pytest.raises(launch.ConfigError, match=f'--kind {kind} is written as'):
        upsample.main(['--method', 'bicubic', '--guide', 'missing.png', '--low', 'missing.npy',
                       '--kind', kind, '--out', str(tmp_path / out)])


def test_pac_lite_without_checkpoint_names_the_command_that_trains_a_missing_model(tmp_path, monkeypatch):
    monkeypatch.setattr(upsample, 'SHIPPED_DIR', str(tmp_path / 'none'))
    np.save(tmp_path / 'low.npy', np.ones((8, 8, 2), np.float32))
    with pytest.raises(launch.ConfigError) as info:
        upsample.main(['--method', 'pac-lite', '--guide', _guide(tmp_path, 32), '--low', str(tmp_path / 'low.npy'),
                       '--kind', 'flow', '--out', str(tmp_path / 'out.flo')])
    message = str(info.value)
    assert '\n' not in message and 'pac-lite flow x4 model is not trained yet' in message
    assert '`python tools/make_shipped_upsamplers.py --models flow-x4`' in message
    assert 'configs/joint_upsampling/pacjointupsample_lite_x4_flow_procedural.py' in message
    with pytest.raises(launch.ConfigError, match=r'--models depth-x16` \(config configs/joint_upsampling/'
                                                 r'pacjointupsample_lite_x16_cascade_procedural.py\)'):
        upsample.shipped_model('depth', 16)
    with pytest.raises(launch.ConfigError, match=r'no shipped pac-lite model for depth x2 \(shipped: x4, x8, x16\)'):
        upsample.shipped_model('depth', 2)


def test_pac_lite_without_checkpoint_uses_the_shipped_model_for_kind_and_factor(tmp_path, monkeypatch, capsys):
    """A checkpoint in the shipped folder is picked by the input's kind and factor and its
    weights are the ones applied (perturbed weights, so a fresh model would differ)."""
    import torch
    from mmengine.registry import init_default_scope

    from convdense.datasets.readers import read_rgb
    from convdense.registry import MODELS
    init_default_scope('convdense')
    config = osp.join(ROOT, 'configs', 'joint_upsampling', upsample.SHIPPED[('flow', 8)])
    torch.manual_seed(0)
    model = MODELS.build(launch.load_config(config).model).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    monkeypatch.setattr(upsample, 'SHIPPED_DIR', str(tmp_path))
    torch.save(dict(state_dict=model.state_dict()), tmp_path / 'pacjointupsample_lite_x8_flow_procedural.pth')
    low = np.random.default_rng(0).standard_normal((4, 4, 2)).astype(np.float32)
    np.save(tmp_path / 'low.npy', low)
    guide = _guide(tmp_path, 32)
    upsample.main(['--method', 'pac-lite', '--guide', guide, '--low', str(tmp_path / 'low.npy'),
                   '--kind', 'flow', '--out', str(tmp_path / 'out.npy')])
    assert 'wrote' in capsys.readouterr().out
    with torch.no_grad():
        expected = model.upsample(torch.from_numpy(low.transpose(2, 0, 1))[None],
                                  torch.from_numpy(read_rgb(guide).transpose(2, 0, 1))[None])
    np.testing.assert_allclose(np.load(tmp_path / 'out.npy'), expected[0].numpy().transpose(1, 2, 0), atol=1e-5)
    bilinear = torch.nn.functional.interpolate(torch.from_numpy(low.transpose(2, 0, 1))[None] * 8, scale_factor=8,
                                               mode='bilinear', align_corners=False)
    assert not np.allclose(expected.numpy(), bilinear.numpy(), atol=1e-2)


def test_unknown_low_res_samples_are_a_mask_for_the_baselines(tmp_path, capsys):
    """0 in a 16-bit PNG is unknown: bicubic and JBU give it no weight, whatever the sample
    would have held, and the tool says how many samples are unknown."""
    import imageio.v3 as iio
    import torch
    from mmengine.registry import init_default_scope

    from convdense.datasets.readers import read_rgb
    from convdense.registry import MODELS
    init_default_scope('convdense')
    rng = np.random.default_rng(2)
    depth = (1000 + 2000 * rng.random((8, 8))).astype(np.uint16)
    depth[2:4, 3:6] = 0
    iio.imwrite(tmp_path / 'low.png', depth)
    guide = _guide(tmp_path, 32)
    for method in ('bicubic', 'jbu'):
        upsample.main(['--method', method, '--guide', guide, '--low', str(tmp_path / 'low.png'), '--scale', '1000',
                       '--out', str(tmp_path / f'{method}.npy')])
        assert 'low-res input: 6 of 64 samples unknown (9.4 %), passed to the model as a validity mask' \
            in capsys.readouterr().out
        # the tool's output is the masked baseline's, which a hole's value cannot change
        net = MODELS.build(dict(type=upsample.NETS[method], factor=4))
        low = torch.from_numpy(depth / 1000.0).float()[None, None]
        mask = low > 0
        guide_t = torch.from_numpy(read_rgb(guide).transpose(2, 0, 1))[None]
        for hole in (0.0, 50.0):
            expected = net(torch.where(mask, low, torch.tensor(hole)), guide_t, mask)
            np.testing.assert_allclose(np.load(tmp_path / f'{method}.npy'), expected[0, 0].numpy(), rtol=1e-5)


def test_a_shipped_model_behind_jbu_says_so_from_its_results_file(tmp_path):
    """The note comes from the results file: behind a baseline -> one line naming the
    baselines ahead and the best; ahead of both or not recorded -> nothing."""
    import json

    def record(pac, jbu):
        rows = [dict(method=m, test={'Motorcycle': dict(mean=v)})
                for m, v in (('bicubic', 0.25), ('JBU', jbu), ('PAC (lite)', pac))]
        return dict(test_scene='motorcycle', metric='epe_px', rows=rows, gain_over_jbu={'Motorcycle': 1 - pac / jbu})
    results = tmp_path / 'shipped.json'
    results.write_text(json.dumps({'flow-x4': record(0.284, 0.264), 'depth-x8': record(0.2, 0.3)}))
    note = upsample.shipped_standing('flow', 4, str(results))
    assert note.startswith('note: on the real scene it was tested on (Motorcycle) the shipped flow x4 model '
                           '(EPE 0.284 px) is behind bicubic (0.250) and JBU (0.264)')
    assert note.endswith('--method bicubic may serve you better') and '\n' not in note
    assert upsample.shipped_standing('depth', 8, str(results)) is None
    assert upsample.shipped_standing('depth', 4, str(results)) is None
    assert upsample.shipped_standing('depth', 4, str(tmp_path / 'none.json')) is None


def test_depth_x16_works_out_of_the_box_with_the_shipped_cascade(tmp_path, capsys):
    """x16 depth is the shipped x4 model applied twice: on a 128x160 crop of a bundled real
    scene (8x10 low-res samples) it needs no checkpoint argument, beats bicubic there,
    and prints the results file's note exactly when a baseline is ahead of it."""
    if not osp.isfile(upsample.shipped_checkpoint('depth', 16)):
        pytest.skip('the x16 depth model is not shipped in this checkout')
    import imageio.v3 as iio
    scene = osp.join(ROOT, 'data', 'middlebury', 'motorcycle')
    iio.imwrite(tmp_path / 'guide.png', iio.imread(osp.join(scene, 'im0.png'))[64:192, 520:680])
    np.save(tmp_path / 'gt.npy', read_target(osp.join(scene, 'disp0.pfm'), 'disparity')[64:192, 520:680])
    rmse, printed = {}, {}
    for method in ('bicubic', 'pac-lite'):
        upsample.main(['--method', method, '--guide', str(tmp_path / 'guide.png'), '--gt', str(tmp_path / 'gt.npy'),
                       '--factor', '16', '--kind', 'disparity', '--out', str(tmp_path / f'{method}.npy')])
        printed[method] = capsys.readouterr().out
        last = printed[method].strip().splitlines()[-1]
        assert last.startswith('RMSE ')
        rmse[method] = float(last.split()[1])
    pred = np.load(tmp_path / 'pac-lite.npy')
    assert pred.shape == (128, 160) and np.isfinite(pred).all()
    assert rmse['pac-lite'] < 0.9 * rmse['bicubic']  # 4.63 vs 5.45 px when written
    standing = upsample.shipped_standing('depth', 16)
    assert (standing is not None and standing in printed['pac-lite']) or \
        (standing is None and 'note:' not in printed['pac-lite'])
