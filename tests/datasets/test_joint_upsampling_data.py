"""Loaders on written upstream layouts (.mat, PNG folders, Middlebury, Sintel .flo) and the low-res protocol."""
import os

import imageio.v3 as iio
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from convdense.datasets import MiddleburyDataset, NYUDepthV2Dataset, SintelFlowDataset
from convdense.datasets.readers import read_depth, read_flow, read_target, write_pfm
from convdense.datasets.transforms import downsample_flow, subsample_depth

PIPELINE = [dict(type='LoadJointUpsamplingSample'), dict(type='MakeLowResolution'),
            dict(type='PackJointUpsamplingInputs')]


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('convdense')


def _write_flo(path, flow, magic=b'PIEH'):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    height, width = flow.shape[:2]
    with open(path, 'wb') as f:
        f.write(magic)
        f.write(np.array([width, height], np.int32).tobytes())
        f.write(flow.astype(np.float32).tobytes())


def test_nyu_mat_layout_split_and_units(tmp_path):
    h5py = pytest.importorskip('h5py')
    rng = np.random.default_rng(0)
    count, height, width = 3, 16, 24
    images = rng.integers(0, 256, (count, 3, width, height), dtype=np.uint8)  # MATLAB order seen by h5py
    depths = rng.uniform(1, 5, (count, width, height)).astype(np.float32)
    depths[2, 0, 0] = 0.0  # invalid
    with h5py.File(tmp_path / 'nyu_depth_v2_labeled.mat', 'w') as mat:
        mat['images'] = images
        mat['depths'] = depths
    train = NYUDepthV2Dataset(data_root=str(tmp_path), split='train', split_index=2, factor=4, pipeline=PIPELINE)
    test = NYUDepthV2Dataset(data_root=str(tmp_path), split='test', split_index=2, factor=4, pipeline=PIPELINE)
    assert len(train) == 2 and len(test) == 1
    sample = test[0]
    gt, valid = sample['data_samples']['gt'], sample['data_samples']['valid']
    assert tuple(gt.shape) == (1, height, width)
    np.testing.assert_allclose(gt[0, 3, 5].item(), depths[2, 5, 3])  # row 3, col 5 = depths[i, col, row]
    np.testing.assert_allclose(sample['inputs']['guide'][:, 3, 5].numpy(), images[2, :, 5, 3] / 255.0, rtol=1e-6)
    assert not valid[0, 0, 0] and valid.sum() == height * width - 1
    assert tuple(sample['inputs']['low'].shape) == (1, height // 4, width // 4)


def test_nyu_png_layout_reads_millimetres(tmp_path):
    for split in ('train', 'test'):
        os.makedirs(tmp_path / split / 'images')
        os.makedirs(tmp_path / split / 'depths')
        iio.imwrite(tmp_path / split / 'images' / '0001.png', np.full((8, 8, 3), 128, np.uint8))
        depth = np.full((8, 8), 2500, np.uint16)
        depth[0, 0] = 0
        iio.imwrite(tmp_path / split / 'depths' / '0001.png', depth)
    dataset = NYUDepthV2Dataset(data_root=str(tmp_path), split='test', mat_file=None, factor=2, pipeline=PIPELINE)
    sample = dataset[0]['data_samples']
    assert sample['gt'][0, 1, 1].item() == pytest.approx(2.5)
    assert not sample['valid'][0, 0, 0]


def test_middlebury_layouts(tmp_path):
    guide = np.zeros((8, 8, 3), np.uint8)
    os.makedirs(tmp_path / 'old')
    iio.imwrite(tmp_path / 'old' / 'view1.png', guide)
    disp = np.full((8, 8), 40, np.uint8)
    disp[2, 3] = 0
    iio.imwrite(tmp_path / 'old' / 'disp1.png', disp)
    os.makedirs(tmp_path / 'new')
    iio.imwrite(tmp_path / 'new' / 'im0.png', guide)
    pfm = np.full((8, 8), 12.5, np.float32)
    pfm[1, 1] = np.inf
    write_pfm(str(tmp_path / 'new' / 'disp0.pfm'), pfm)
    dataset = MiddleburyDataset(data_root=str(tmp_path), disparity_scale=4.0, factor=2, pipeline=PIPELINE)
    by_name = {dataset[i]['data_samples']['name']: dataset[i]['data_samples'] for i in range(len(dataset))}
    assert by_name['old']['gt'][0, 0, 0].item() == pytest.approx(10.0)
    assert not by_name['old']['valid'][0, 2, 3]
    assert by_name['new']['gt'][0, 0, 0].item() == pytest.approx(12.5)
    assert not by_name['new']['valid'][0, 1, 1] and by_name['new']['valid'].sum() == 63


def test_bundled_middlebury_scenes_load_in_disparity_pixels():
    root = os.path.join(os.path.dirname(__file__), '..', '..', 'data', 'middlebury')
    dataset = MiddleburyDataset(data_root=root, disparity_scale=2.0, factor=8, pipeline=PIPELINE)
    samples = {dataset[i]['data_samples']['name']: dataset[i] for i in range(len(dataset))}
    assert sorted(samples) == ['aloe', 'motorcycle']
    # Aloe: half size with 2005/2006 half-size disparities (PNG = 2 x disparity); Motorcycle: 741 px wide
    for name, (height, width), max_disparity in (('aloe', (552, 640), 106), ('motorcycle', (496, 736), 75)):
        sample = samples[name]
        gt, valid = sample['data_samples']['gt'], sample['data_samples']['valid']
        assert tuple(gt.shape[1:]) == (height, width) and sample['inputs']['guide'].shape[1:] == (height, width)
        assert 0.9 < valid.float().mean() < 1.0
        assert 5 < gt[valid].min() and gt[valid].max() < max_disparity


def test_sintel_layout_split_and_unknown_flow(tmp_path):
    pytest.importorskip('mmcv')
    for scene in ('alley_1', 'market_2'):
        for frame in (1, 2):
            path = tmp_path / 'training' / 'clean' / scene / f'frame_{frame:04d}.png'
            os.makedirs(path.parent, exist_ok=True)
            iio.imwrite(path, np.zeros((8, 8, 3), np.uint8))
        flow = np.full((8, 8, 2), 4.0, np.float32)
        flow[0, 0] = 1e9  # unknown
        _write_flo(str(tmp_path / 'training' / 'flow' / scene / 'frame_0001.flo'), flow)
    train = SintelFlowDataset(data_root=str(tmp_path), split='train', val_scenes=['market_2'], factor=4,
                              pipeline=PIPELINE)
    val = SintelFlowDataset(data_root=str(tmp_path), split='val', val_scenes=['market_2'], factor=4,
                            pipeline=PIPELINE)
    assert len(train) == 1 and len(val) == 1
    sample = val[0]
    assert sample['data_samples']['name'] == 'market_2/frame_0001'
    assert not sample['data_samples']['valid'][0, 0, 0]
    assert sample['data_samples']['gt'][:, 4, 4].tolist() == [4.0, 4.0]
    assert tuple(sample['inputs']['low'].shape) == (2, 2, 2)
    split_file = tmp_path / 'split.txt'
    split_file.write_text('2\n1\n')
    assert SintelFlowDataset(data_root=str(tmp_path), split='train', split_file=str(split_file),
                             pipeline=PIPELINE).get_data_info(0)['scene'] == 'market_2'


def test_corrupt_flo_files_name_the_file(tmp_path):
    pytest.importorskip('mmcv')
    good = tmp_path / 'good.flo'
    _write_flo(str(good), np.ones((3, 4, 2), np.float32))
    assert read_flow(str(good)).shape == (3, 4, 2)
    bad_magic = tmp_path / 'bad_magic.flo'
    _write_flo(str(bad_magic), np.ones((3, 4, 2), np.float32), magic=b'XXXX')
    with pytest.raises(ValueError, match='bad_magic.flo.*magic'):
        read_flow(str(bad_magic))
    truncated = tmp_path / 'truncated.flo'
    truncated.write_bytes(good.read_bytes()[:-8])
    with pytest.raises(ValueError, match='truncated.flo.*truncated'):
        read_flow(str(truncated))
    with pytest.raises(ValueError, match='no such file'):
        read_flow(str(tmp_path / 'missing.flo'))


def test_unreadable_depth_and_size_mismatch(tmp_path):
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not a png')
    with pytest.raises(ValueError, match='broken.png'):
        read_depth(str(broken))
    os.makedirs(tmp_path / 'scene')
    iio.imwrite(tmp_path / 'scene' / 'view1.png', np.zeros((8, 8, 3), np.uint8))
    iio.imwrite(tmp_path / 'scene' / 'disp1.png', np.ones((6, 8), np.uint8))
    dataset = MiddleburyDataset(data_root=str(tmp_path), factor=2, pipeline=PIPELINE)
    with pytest.raises(ValueError, match='guide is 8x8 but target is 6x8'):
        dataset[0]


def test_image_without_valid_depth_is_an_error(tmp_path):
    os.makedirs(tmp_path / 'scene')
    iio.imwrite(tmp_path / 'scene' / 'view1.png', np.zeros((8, 8, 3), np.uint8))
    iio.imwrite(tmp_path / 'scene' / 'disp1.png', np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match='no valid pixel'):
        MiddleburyDataset(data_root=str(tmp_path), factor=2, pipeline=PIPELINE)[0]


def test_low_res_protocols():
    depth = np.arange(64, dtype=np.float32).reshape(8, 8, 1)
    low = subsample_depth(depth, 4)
    # offset (4 - 1) // 2 = 1 inside each 4x4 block
    np.testing.assert_array_equal(low[..., 0], depth[[1, 5]][:, [1, 5], 0])
    depth[1, 1] = np.nan
    assert subsample_depth(depth, 4)[0, 0, 0] in (depth[1, 5, 0], depth[5, 1, 0])  # nearest valid sample
    flow = np.full((16, 16, 2), 8.0, np.float32)
    np.testing.assert_allclose(downsample_flow(flow, 8), 1.0)  # magnitudes shrink with the grid
    # unknown vectors (an occlusion hole) take their known neighbours' motion, not zero
    flow[4:12, 2:6] = np.nan
    np.testing.assert_allclose(downsample_flow(flow, 8), 1.0)
    flow[:, 8:] = -8.0  # a motion boundary: each side keeps its own motion away from the edge
    low = downsample_flow(flow, 4)
    np.testing.assert_allclose(low[:, 0], 2.0, rtol=1e-6)
    np.testing.assert_allclose(low[:, 3], -2.0, rtol=1e-6)
    with pytest.raises(ValueError, match='multiple'):
        subsample_depth(np.zeros((6, 8, 1), np.float32), 4)


def _split_boxes(regions, height, width):
    """Pixel boxes (top, left, bottom, right) that LoadJointUpsamplingSample keeps for each region."""
    from convdense.datasets.transforms import LoadJointUpsamplingSample
    ys, xs = np.mgrid[:height, :width].astype(np.float32)
    coords = np.stack([ys, xs, np.zeros_like(ys)], axis=-1)
    boxes = {}
    for split, region in regions.items():
        kept = LoadJointUpsamplingSample()(dict(guide=coords, target=np.zeros((height, width, 1), np.float32),
                                                region_frac=region))['guide']
        boxes[split] = (kept[..., 0].min(), kept[..., 1].min(), kept[..., 0].max() + 1, kept[..., 1].max() + 1)
    return boxes


@pytest.mark.parametrize('base', ['bundled_middlebury.py', 'bundled_flow.py'])
def test_bundled_train_val_test_splits_are_disjoint_with_a_margin(base):
    """No training crop, validation image or test image shares a pixel, and at least 3 low-res
    pixels (3 x factor) separate any two splits of the same scene."""
    from mmengine.config import Config

    from convdense.registry import DATASETS
    root = os.path.join(os.path.dirname(__file__), '..', '..')
    cfg = Config.fromfile(os.path.join(root, 'configs', 'joint_upsampling', '_base_', base))
    datasets = {split: DATASETS.build(dict(cfg[f'{split}_dataloader'].dataset,
                                           data_root=os.path.join(root, cfg.data_root), pipeline=[]))
                for split in ('train', 'val', 'test')}
    scenes = {split: {dataset[i]['name'] for i in range(len(dataset))} for split, dataset in datasets.items()}
    regions = {split: dataset.region_frac for split, dataset in datasets.items()}
    if base == 'bundled_flow.py':  # the test scene is a whole scene that neither train nor val sees
        assert scenes['train'] == scenes['val'] and not scenes['test'] & scenes['train']
        del regions['test']
    else:  # every scene is split three ways
        assert scenes['train'] == scenes['val'] == scenes['test'] == {'aloe', 'motorcycle'}
    for i in range(len(datasets['train'])):
        sample = datasets['train'][i]
        height, width = read_target(sample['target_path'], sample['target_kind']).shape[:2]
        boxes = _split_boxes(regions, height, width)
        names = sorted(boxes)
        for a in names:
            for b in names[names.index(a) + 1:]:
                (top_a, left_a, bottom_a, right_a), (top_b, left_b, bottom_b, right_b) = boxes[a], boxes[b]
                gap = max(top_b - bottom_a, top_a - bottom_b, left_b - right_a, left_a - right_b)
                assert gap >= 3 * cfg.factor, (sample['name'], a, b, gap)


@pytest.mark.parametrize('region,match', [((0.5, 0, 0.4, 1), 'top < bottom'), ((0, 0, 1, 1.2), 'right <= 1'),
                                          ((0, 0, 1), 'fractions'), ('left', 'fractions')])
def test_bad_region_frac_is_a_one_line_error(region, match):
    root = os.path.join(os.path.dirname(__file__), '..', '..', 'data', 'middlebury')
    with pytest.raises(ValueError, match=match):
        MiddleburyDataset(data_root=root, region_frac=region, pipeline=PIPELINE)
