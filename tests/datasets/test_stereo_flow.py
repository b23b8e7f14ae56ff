"""A rectified stereo pair with ground-truth disparity read as real optical flow
(left view -> right view: u = -d, v = 0), with unknown and stereo-occluded pixels
invalid for the flow metric."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from convdense.datasets import MiddleburyStereoFlowDataset
from convdense.datasets.joint_upsampling import disparity_to_flow
from convdense.datasets.readers import read_depth, read_rgb

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MIDDLEBURY = osp.join(ROOT, 'data', 'middlebury')
PIPELINE = [dict(type='LoadJointUpsamplingSample'), dict(type='MakeLowResolution'),
            dict(type='PackJointUpsamplingInputs')]


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('convdense')


def test_step_disparity_gives_flow_and_an_occluded_strip_beside_the_jump():
    disparity = np.full((6, 40), 2.0, np.float32)
    disparity[:, 20:30] = 10.0  # a nearer object: the right view sees it 8 px further left
    disparity[0, 0] = np.nan
    flow = disparity_to_flow(disparity)
    known = np.isfinite(flow).all(axis=2)
    np.testing.assert_array_equal(flow[known, 0], -disparity[known])
    np.testing.assert_array_equal(flow[known, 1], 0)
    # background x in (12, 20) lands at x - 2 in (10, 18), strictly inside the object's
    # landing span [10, 20) (x = 12 lands exactly on the object's edge pixel: kept)
    expected = np.zeros((6, 40), bool)
    expected[:, 13:20] = True
    expected[0, 0] = True
    np.testing.assert_array_equal(~known, expected)
    assert np.isfinite(disparity_to_flow(disparity, mask_occluded=False)[1:]).all()


def test_bundled_motorcycle_flow_maps_the_left_view_onto_the_right_view():
    """Warping scikit-image's right view of the same scene by the flow reproduces the left
    view (photometric error far below the wrong sign's): u = -d is the real motion."""
    import skimage
    right_path = osp.join(osp.dirname(skimage.__file__), 'data', 'motorcycle_right.png')
    if not osp.isfile(right_path):
        pytest.skip('scikit-image without motorcycle_right.png')
    dataset = MiddleburyStereoFlowDataset(data_root=MIDDLEBURY, scenes=['motorcycle'], factor=8, pipeline=[])
    guide, flow = dataset.get_data_info(0)['loader']()
    right = read_rgb(right_path)
    assert right.shape == guide.shape and flow.shape == guide.shape[:2] + (2,)
    disparity = read_depth(osp.join(MIDDLEBURY, 'motorcycle', 'disp0.pfm'))
    known = np.isfinite(flow).all(axis=2)
    assert 0.8 < known.mean() < np.isfinite(disparity).mean()  # occlusions removed as well

    def error(u):
        height, width = u.shape
        yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                                torch.arange(width, dtype=torch.float64), indexing='ij')
        grid = torch.stack([(xx + torch.from_numpy(u)) * 2 / (width - 1) - 1, yy * 2 / (height - 1) - 1], -1)
        source = torch.from_numpy(right.astype(np.float64)).permute(2, 0, 1)[None]
        warped = torch.nn.functional.grid_sample(source, grid[None], align_corners=True)[0].permute(1, 2, 0)
        return float(np.abs(warped.numpy() - guide).mean(axis=2)[known].mean())

    u = np.nan_to_num(flow[..., 0].astype(np.float64))
    assert error(u) < 0.5 * error(-u)
    assert error(u) < 0.5 * error(np.zeros_like(u))


def test_dataset_feeds_the_flow_pipeline_with_unknown_pixels_invalid():
    dataset = MiddleburyStereoFlowDataset(data_root=MIDDLEBURY, scenes=['aloe'], disparity_scale=2.0, factor=8,
                                          pipeline=PIPELINE)
    assert dataset.target_kind == 'flow' and len(dataset) == 1
    sample = dataset[0]
    gt, valid = sample['data_samples']['gt'], sample['data_samples']['valid']
    assert sample['data_samples']['kind'] == 'flow'
    assert tuple(gt.shape[:1]) == (2,) and tuple(sample['inputs']['low'].shape[:1]) == (2,)
    disparity = read_depth(osp.join(MIDDLEBURY, 'aloe', 'disp1.png'), scale=2.0)
    height, width = gt.shape[1:]
    crop = disparity[:height, :width]
    mask = valid[0].numpy()
    assert not mask[~np.isfinite(crop)].any() and mask.mean() > 0.8
    np.testing.assert_allclose(gt[0].numpy()[mask], -crop[mask])
    assert float(gt[1].abs().max()) == 0
