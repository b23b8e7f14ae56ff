"""The procedural RGB-D generator (training data for joint upsampling):
deterministic per seed, depth edges only on layer boundaries, colour edges without
depth edges, Middlebury-like values, and it trains a PAC model through the real pipeline."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from convdense.datasets.procedural_rgbd import (ProceduralRGBDDataset, generate_rgbd, procedural_pair,
                                                stereo_occlusion)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'joint_upsampling', 'pacjointupsample_lite_x8_procedural.py')
SIZE = (128, 160)


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('convdense')


@pytest.fixture(scope='module')
def scenes():
    return [generate_rgbd((7, index), size=SIZE) for index in range(12)]


def _pairs(array):
    """Horizontal and vertical neighbour pairs of an (H, W) array, flattened: (a, b)."""
    return (np.concatenate([array[:, :-1].ravel(), array[:-1, :].ravel()]),
            np.concatenate([array[:, 1:].ravel(), array[1:, :].ravel()]))


def test_same_seed_same_scene_other_seed_other_scene():
    first, again, other = (generate_rgbd(seed, size=SIZE) for seed in ((3, 5), (3, 5), (3, 6)))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)  # NaN positions included
    assert not np.array_equal(first.guide, other.guide)
    guide, disparity = procedural_pair((3, 5), size=SIZE)
    np.testing.assert_array_equal(guide, first.guide)
    np.testing.assert_array_equal(disparity, first.disparity)


def test_shapes_types_and_value_range(scenes):
    unknown = []
    for scene in scenes:
        assert scene.guide.shape == SIZE + (3,) and scene.guide.dtype == np.float32
        assert scene.disparity.shape == SIZE + (1,) and scene.disparity.dtype == np.float32
        assert 0 <= scene.guide.min() and scene.guide.max() <= 1
        known = scene.disparity[np.isfinite(scene.disparity)]
        assert 8.0 <= known.min() and known.max() <= 80.0
        unknown.append(np.isnan(scene.disparity).mean())
    # Middlebury's bundled scenes: 4 % and 7 % unknown; several layers per scene spread the values
    assert 0.01 < np.mean(unknown) < 0.2
    values = np.concatenate([s.disparity[np.isfinite(s.disparity)] for s in scenes])
    assert np.percentile(values, 95) - np.percentile(values, 5) > 30
    narrow = generate_rgbd(1, size=SIZE, disparity_range=(2.0, 20.0)).disparity
    assert 2.0 <= np.nanmin(narrow) and np.nanmax(narrow) <= 20.0


def test_depth_edges_lie_on_layer_boundaries(scenes):
    boundary_jumps = []
    for scene in scenes:
        d_a, d_b = _pairs(scene.disparity[..., 0])
        l_a, l_b = _pairs(scene.layers)
        s_a, s_b = _pairs(scene.surfaces)
        known = np.isfinite(d_a) & np.isfinite(d_b)
        jump = np.abs(d_a - d_b)
        # inside one layer the surface is smooth (slopes <= 0.06 px/px): never a depth edge
        assert jump[known & (l_a == l_b)].max() < 0.2
        # every depth edge is a layer boundary
        assert np.all(l_a[known & (jump > 0.2)] != l_b[known & (jump > 0.2)])
        boundary_jumps.append(jump[known & (s_a != s_b)])
    # and boundaries between different surfaces are depth edges (surfaces touch only rarely)
    assert np.median(np.concatenate(boundary_jumps)) > 10.0


def test_some_colour_edges_carry_no_depth_edge(scenes):
    texture_edges = coplanar_edges = 0
    for scene in scenes:
        grey = scene.guide.mean(2)
        g_a, g_b = _pairs(grey)
        d_a, d_b = _pairs(scene.disparity[..., 0])
        l_a, l_b = _pairs(scene.layers)
        s_a, s_b = _pairs(scene.surfaces)
        colour_edge = np.abs(g_a - g_b) > 0.1
        flat_depth = np.abs(d_a - d_b) < 0.2
        texture_edges += np.sum(colour_edge & flat_depth & (l_a == l_b))  # texture inside a layer
        # the boundary of a layer that lies on its neighbour's surface
        coplanar_edges += np.sum(flat_depth & (l_a != l_b) & (s_a == s_b))
    assert texture_edges > 5000
    assert coplanar_edges > 500


def test_stereo_occlusion_matches_a_brute_force_reference():
    rng = np.random.default_rng(0)
    disparity = np.repeat(rng.uniform(1, 6, (4, 6)), 4, axis=1).astype(np.float32)  # (4, 24), steps
    expected = np.zeros(disparity.shape, bool)
    for row in range(disparity.shape[0]):
        for x in range(disparity.shape[1]):
            land = x - disparity[row, x]
            expected[row, x] = any(x2 - disparity[row, x2] < land - 1e-3
                                   for x2 in range(x + 1, disparity.shape[1]))
    np.testing.assert_array_equal(stereo_occlusion(disparity), expected)
    assert expected.any() and not expected.all()


@pytest.mark.parametrize('kwargs, message', [
    (dict(size=(8, 64)), r'size must be \(height, width\), ints >= 16'),
    (dict(num_layers=(3, 1)), r'num_layers must be \(min, max\) ints with 1 <= min <= max'),
    (dict(disparity_range=(10, 5)), r'disparity_range must be \(low, high\) with 0 < low < high'),
    (dict(coplanar_prob=1.5), r'coplanar_prob is a probability in \[0, 1\]'),
    (dict(noise_std=-1), r'noise_std must be >= 0'),
])
def test_bad_generator_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_rgbd(0, **kwargs)
    with pytest.raises(ValueError, match=message):
        ProceduralRGBDDataset(num_samples=2, generator=kwargs, pipeline=[])


def test_bad_dataset_arguments_are_named():
    with pytest.raises(ValueError, match=r"unknown generator arguments \['layers'\]"):
        ProceduralRGBDDataset(generator=dict(layers=3), pipeline=[])
    with pytest.raises(ValueError, match='num_samples must be a positive int, got 0'):
        ProceduralRGBDDataset(num_samples=0, pipeline=[])


def test_dataset_through_the_demo_pipeline_and_one_pac_training_iteration():
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner

    from convdense import launch
    from convdense.registry import MODELS
    cfg = launch.load_config(CONFIG)
    # the test scene is never trained or selected on
    assert cfg.train_dataloader.dataset.type == 'ProceduralRGBDDataset'
    assert cfg.val_dataloader.dataset.scenes != cfg.test_dataloader.dataset.scenes
    assert cfg.test_dataloader.dataset.region_frac == (0.0, 0.6, 1.0, 1.0)

    # sample i is generate_rgbd((seed, i)), whole, through the test pipeline
    plain = ProceduralRGBDDataset(num_samples=3, seed=4, factor=8, generator=dict(size=SIZE),
                                  pipeline=cfg.test_pipeline)
    packed = plain[2]
    scene = generate_rgbd((4, 2), size=SIZE)
    np.testing.assert_array_equal(packed['inputs']['guide'].numpy(), scene.guide.transpose(2, 0, 1))
    np.testing.assert_array_equal(packed['data_samples']['valid'][0].numpy(),
                                  np.isfinite(scene.disparity[..., 0]))
    assert tuple(packed['inputs']['low'].shape) == (1, SIZE[0] // 8, SIZE[1] // 8)
    assert torch.isfinite(packed['inputs']['low']).all()

    cfg.train_dataloader.dataset.num_samples = 8
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batch = next(iter(loader))
    assert tuple(batch['inputs']['guide'].shape) == (4, 3, 64, 64)
    assert tuple(batch['inputs']['low'].shape) == (4, 1, 8, 8)
    assert batch['data_samples']['valid'].float().mean() >= 0.8  # RandomJointCrop's min_valid
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = [p.detach().clone() for p in model.parameters()]
    losses = model.train_step(batch, optim_wrapper)
    assert all(torch.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
