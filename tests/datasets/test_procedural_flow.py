"""The procedural optical-flow generator (FlyingChairs-style training data for flow
upsamplers): frame 2 warped by the ground truth gives frame 1 back where nothing
occludes, the flow follows the configured motions and their heavy-tailed statistics,
occlusion is marked, and a seed fixes the pair."""
import numpy as np
import pytest
import torch
from scipy import stats

from convdense.datasets.procedural_flow import ProceduralFlowDataset, affine_flow, generate_flow

SIZE = (96, 128)
EXACT = dict(brightness=0.0, noise_std=0.0)  # photometric constancy, for the warping test


def _warp(image, flow):
    """``image(x + flow(x))``, bilinear, written here with torch's grid_sample (not the
    generator's cv2.remap)."""
    height, width = flow.shape[:2]
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                            torch.arange(width, dtype=torch.float64), indexing='ij')
    flow_t = torch.from_numpy(flow.astype(np.float64))
    grid = torch.stack([(xx + flow_t[..., 0]) * 2 / (width - 1) - 1,
                        (yy + flow_t[..., 1]) * 2 / (height - 1) - 1], dim=-1)[None]
    source = torch.from_numpy(image.astype(np.float64)).permute(2, 0, 1)[None]
    warped = torch.nn.functional.grid_sample(source, grid, mode='bilinear', align_corners=True)
    return warped[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_frame2_warped_by_the_ground_truth_is_frame1_where_not_occluded(seed):
    pair = generate_flow(seed, size=SIZE, **EXACT)
    error = np.abs(_warp(pair.frame2, pair.flow) - pair.frame1).max(axis=2)
    visible = ~pair.occluded
    assert visible.mean() > 0.3
    # bilinear interpolation of the same layer texture at the same point: equal up to
    # cv2's 1/32-pixel interpolation weights; the soft (blurred) layer edges differ more
    assert np.median(error[visible]) < 2e-3
    assert np.mean(error[visible]) < 0.02
    # occluded pixels do not come back: a wrong mask would leave them consistent too
    if pair.occluded[8:-8, 8:-8].sum() > 200:
        inner = np.zeros_like(visible)
        inner[8:-8, 8:-8] = True
        assert np.mean(error[pair.occluded & inner]) > 5 * np.mean(error[visible])


def test_a_wrong_flow_does_not_reproduce_frame1():
    """The warping test can fail: a flow off by a fraction of its own magnitude misses."""
    pair = generate_flow(0, size=SIZE, **EXACT)
    visible = ~pair.occluded
    good = np.abs(_warp(pair.frame2, pair.flow) - pair.frame1).mean(axis=2)[visible].mean()
    bad = np.abs(_warp(pair.frame2, pair.flow * 0.8 + 0.5) - pair.frame1).mean(axis=2)[visible].mean()
    assert bad > 3 * good


def test_brightness_change_and_noise_are_applied_to_the_frames():
    exact = generate_flow(5, size=SIZE, **EXACT)
    real = generate_flow(5, size=SIZE, brightness=0.2, noise_std=0.02)
    np.testing.assert_array_equal(exact.flow, real.flow)
    # frame 1: noise only, of the configured std (clipping at 0 and 1 aside)
    inner = (exact.frame1 > 0.1) & (exact.frame1 < 0.9)
    assert np.std((real.frame1 - exact.frame1)[inner]) == pytest.approx(0.02, rel=0.1)
    # frame 2: a per-channel gain/offset on top -> the residual's mean moves per channel
    means = [(real.frame2 - exact.frame2)[..., c].mean() for c in range(3)]
    assert max(abs(m) for m in means) > 0.01


def test_flow_is_each_visible_layers_configured_motion():
    pair = generate_flow(7, size=SIZE, nonrigid_prob=0.0, **EXACT)
    assert len(pair.motions) == pair.layers.max() + 1 or set(np.unique(pair.layers)) <= set(range(len(pair.motions)))
    for index, motion in enumerate(pair.motions):
        here = pair.layers == index
        if here.any():
            expected = affine_flow(motion, *SIZE)[here]
            np.testing.assert_allclose(pair.flow[here], expected, atol=1e-4)
    # motion boundaries: at least two layers with different motion are visible
    assert len(np.unique(pair.layers)) >= 2


def test_nonrigid_deformation_is_smooth_and_bounded():
    pair = generate_flow(3, size=SIZE, nonrigid=2.0, nonrigid_prob=1.0, **EXACT)
    for index, motion in enumerate(pair.motions):
        here = pair.layers == index
        if here.sum() > 50:
            residual = pair.flow[here] - affine_flow(motion, *SIZE)[here]
            assert np.abs(residual).max() <= motion.nonrigid + 1e-4
            assert motion.nonrigid <= 2.0


def test_translations_are_log_uniform_in_the_configured_range():
    low, high = 0.2, 20.0
    foreground, background = [], []
    for seed in range(60):
        pair = generate_flow(seed, size=(32, 32), translation=(low, high), background_scale=0.5)
        lengths = [float(np.hypot(*m.translation)) for m in pair.motions]
        background.append(lengths[0])
        foreground += lengths[1:]
    assert min(foreground) >= low and max(foreground) <= high
    assert min(background) >= low * 0.5 and max(background) <= high * 0.5
    scaled = (np.log(foreground) - np.log(low)) / (np.log(high) - np.log(low))
    assert stats.kstest(scaled, 'uniform').pvalue > 0.01
    # and not some other spread: log-normal around the middle is rejected
    assert stats.kstest(np.clip(0.5 + 0.15 * np.random.default_rng(0).standard_normal(200), 0, 1),
                        'uniform').pvalue < 0.01


def test_pixel_displacements_are_heavy_tailed_sub_pixel_to_tens_of_pixels():
    magnitudes = np.concatenate([np.hypot(*generate_flow(seed, size=(128, 128)).flow.reshape(-1, 2).T)
                                 for seed in range(12)])
    assert np.mean(magnitudes < 1) > 0.05
    assert np.mean(magnitudes > 10) > 0.05
    assert np.percentile(magnitudes, 99.5) > 20


def test_same_seed_same_pair_other_seed_other_pair():
    first, again, other = (generate_flow(s, size=(48, 64)) for s in ((1, 2), (1, 2), (1, 3)))
    for a, b in zip(first[:5], again[:5]):
        np.testing.assert_array_equal(a, b)
    assert first.motions == again.motions
    assert not np.array_equal(first.flow, other.flow)


def test_bad_arguments_give_one_line_errors():
    with pytest.raises(ValueError, match='translation must be'):
        generate_flow(0, translation=(5, 1))
    with pytest.raises(ValueError, match='num_layers must be'):
        generate_flow(0, num_layers=(0, 3))
    with pytest.raises(ValueError, match='unknown generator arguments'):
        ProceduralFlowDataset(generator=dict(layers=3), pipeline=[])
    with pytest.raises(ValueError, match='nonrigid_prob is a probability'):
        ProceduralFlowDataset(generator=dict(nonrigid_prob=2), pipeline=[])


def test_dataset_feeds_the_flow_pipeline():
    from mmengine.registry import init_default_scope
    init_default_scope('convdense')
    pipeline = [dict(type='LoadJointUpsamplingSample'), dict(type='RandomJointCrop', crop_size=32),
                dict(type='MakeLowResolution'), dict(type='PackJointUpsamplingInputs')]
    dataset = ProceduralFlowDataset(num_samples=2, seed=3, factor=4, generator=dict(size=(64, 64)),
                                    pipeline=pipeline)
    sample = dataset[1]
    low = sample['inputs']['low']
    assert tuple(low.shape) == (2, 8, 8)
    flow = generate_flow((3, 1), size=(64, 64)).flow
    assert float(low.abs().max()) <= np.abs(flow).max() / 4 + 1e-4
