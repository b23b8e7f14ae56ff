"""Sensor-like holes in the low-res input: the fraction asked for, more holes beside depth
edges (on the far side) than on flat surfaces, deterministic per seed, ground truth
untouched, and the holes config through one training step and its grouped metric."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from scipy import ndimage

from convdense.datasets.sensor_holes import AddSensorHoles, sensor_holes
from convdense.datasets.transforms import MakeLowResolution, PackJointUpsamplingInputs

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'joint_upsampling', 'pacjointupsample_lite_x8_procedural_holes.py')


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('convdense')


def _step_scene(size=64):
    """Depth in metres: a far wall (5 m) with near boxes (2 m); returns depth and the
    near/far sides of the depth edges (4-neighbours across a jump)."""
    depth = np.full((size, size), 5.0, np.float32)
    depth[8:30, 10:28] = 2.0
    depth[36:58, 34:60] = 2.0
    depth += np.linspace(0, 0.05, size, dtype=np.float32)[None]  # a gentle slope: no edge
    jump = np.zeros_like(depth, bool)
    jump[:, 1:] |= np.abs(np.diff(depth, axis=1)) > 1
    jump[:, :-1] |= np.abs(np.diff(depth, axis=1)) > 1
    jump[1:] |= np.abs(np.diff(depth, axis=0)) > 1
    jump[:-1] |= np.abs(np.diff(depth, axis=0)) > 1
    return depth, jump & (depth > 4), jump & (depth < 3)


@pytest.mark.parametrize('fraction', [0.0, 0.05, 0.2, 0.35, 0.5])
def test_the_unknown_fraction_is_the_one_asked_for(fraction):
    depth, _, _ = _step_scene()
    valid = np.ones(depth.shape, bool)
    valid[:3, :5] = False  # holes already there count towards the fraction
    for seed in range(3):
        mask = sensor_holes(depth, valid, np.random.default_rng(seed), fraction)
        assert not (mask & ~valid).any()  # only known samples become unknown
        expected = max(fraction, 15 / depth.size)
        assert abs((1 - mask.mean()) - expected) <= 1 / depth.size


def test_holes_gather_at_depth_edges_on_the_far_side():
    depth, far_edge, near_edge = _step_scene()
    distance = ndimage.distance_transform_edt(~(far_edge | near_edge))
    flat = distance > 6
    rates = {'far': [], 'near': [], 'flat': []}
    for seed in range(10):
        holes = ~sensor_holes(depth, np.ones(depth.shape, bool), np.random.default_rng(seed), 0.25)
        rates['far'].append(holes[far_edge].mean())
        rates['near'].append(holes[near_edge].mean())
        rates['flat'].append(holes[flat].mean())
    far, near, flat_rate = (float(np.mean(rates[k])) for k in ('far', 'near', 'flat'))
    assert far > 3 * flat_rate and far > 2 * near, (far, near, flat_rate)
    # disparity is the other way round: the far side has the smaller value
    disparity_holes = ~sensor_holes(1 / depth, np.ones(depth.shape, bool), np.random.default_rng(0), 0.25,
                                    kind='disparity')
    assert disparity_holes[far_edge].mean() > 2 * disparity_holes[near_edge].mean()


def test_out_of_range_and_blob_holes():
    depth, far_edge, near_edge = _step_scene()
    ones = np.ones(depth.shape, bool)
    only_range = ~sensor_holes(depth, ones, np.random.default_rng(1), 0.1, edge_share=0, range_share=1)
    dropped = depth[only_range]
    kept = depth[~only_range]
    assert dropped.min() >= kept.max() or dropped.max() <= kept.min()  # the farthest (or nearest) samples
    blobs = ~sensor_holes(depth, ones, np.random.default_rng(1), 0.2, edge_share=0, range_share=0)
    scattered = np.zeros(depth.size, bool)
    scattered[np.random.default_rng(0).choice(depth.size, int(blobs.sum()), replace=False)] = True
    # connected blobs: far fewer pieces than the same number of scattered holes
    assert ndimage.label(blobs)[1] < 0.3 * ndimage.label(scattered.reshape(depth.shape))[1]


def test_transform_is_deterministic_per_seed_and_leaves_the_target_alone():
    rng = np.random.default_rng(0)
    target = (2 + rng.random((64, 64, 1))).astype(np.float32)
    target[40:, :20] = np.nan

    def run(seed, name='scene', fraction=0.3):
        results = MakeLowResolution(8)(dict(guide=np.zeros((64, 64, 3), np.float32), target=target.copy(),
                                            target_kind='depth', name=name))
        before = results['low'].copy()
        results = AddSensorHoles(fraction=fraction, seed=seed)(results)
        return results, before

    first, before = run(3)
    again, _ = run(3)
    np.testing.assert_array_equal(first['low_valid'], again['low_valid'])
    np.testing.assert_array_equal(first['low'], again['low'])
    assert not np.array_equal(run(4)[0]['low_valid'], first['low_valid'])
    assert not np.array_equal(run(3, name='other')[0]['low_valid'], first['low_valid'])
    np.testing.assert_array_equal(first['target'], target)  # the ground truth is whole
    assert first['low_hole_fraction'] == pytest.approx(0.3, abs=1 / 64)
    assert first['name'] == 'scene_holes30'
    valid = first['low_valid']
    np.testing.assert_array_equal(first['low'][valid], before[valid])  # known samples untouched
    assert np.isfinite(first['low']).all()
    packed = PackJointUpsamplingInputs()(first)
    assert torch.equal(packed['inputs']['low_valid'][0], torch.from_numpy(valid))
    # seed=None follows numpy's global generator, which mmengine seeds per run
    np.random.seed(5)
    a = run(None)[0]['low_valid']
    np.random.seed(5)
    np.testing.assert_array_equal(run(None)[0]['low_valid'], a)
    for fraction in (0.7, (0.1, 0.2, 0.3), (0.3, 0.1)):
        with pytest.raises(ValueError, match='fraction'):
            AddSensorHoles(fraction=fraction)
    with pytest.raises(TypeError):
        AddSensorHoles(edge_width_px=2)


def test_make_low_resolution_emits_the_validity_mask_and_fills_the_values():
    target = np.arange(64, dtype=np.float32).reshape(8, 8, 1)
    target[1, 1] = np.nan
    results = MakeLowResolution(4)(dict(guide=np.zeros((8, 8, 3), np.float32), target=target))
    np.testing.assert_array_equal(results['low_valid'], [[False, True], [True, True]])
    assert np.isfinite(results['low']).all()  # unmasked models see today's nearest-known fill


def test_holes_config_trains_with_masks_and_reports_sensor_like_and_clean():
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner

    from convdense import launch
    from convdense.registry import DATASETS, METRICS, MODELS
    cfg = launch.load_config(CONFIG)
    assert cfg.model.low_mask
    cfg.train_dataloader.dataset.num_samples = 8
    cfg.train_dataloader.dataset.generator = dict(size=(96, 96))
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader, seed=0)))
    holes = 1 - batch['inputs']['low_valid'].float().mean(dim=(1, 2, 3))
    assert holes.max() > 0.05 and holes.max() <= 0.5 + 1 / 64
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = [p.detach().clone() for p in model.parameters()]
    model.train_step(batch, optim_wrapper)
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))

    # val: the real scene clean and with two fixed sensor-like hole sets
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    metric = METRICS.build(cfg.val_evaluator)
    names = []
    model.eval()
    for i in range(len(dataset)):
        sample = dataset[i]
        data = dict(inputs={k: v[None] for k, v in sample['inputs'].items()},
                    data_samples=dict(gt=sample['data_samples']['gt'][None],
                                      valid=sample['data_samples']['valid'][None],
                                      name=[sample['data_samples']['name']]))
        with torch.no_grad():
            metric.process(None, model(**data, mode='predict'))
        names.append(sample['data_samples']['name'])
    assert names == ['aloe', 'aloe_holes15', 'aloe_holes45']
    rmse = [r['rmse'] for r in metric.results]
    metrics = metric.compute_metrics(metric.results)
    assert list(metrics) == ['rmse_px', 'rmse_px_sensor_like', 'rmse_px_clean']
    assert metrics['rmse_px_clean'] == rmse[0]
    assert metrics['rmse_px_sensor_like'] == pytest.approx((rmse[1] + rmse[2]) / 2)
