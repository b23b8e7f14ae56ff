"""Fuzzed samples through the joint-upsampling training pipeline: random sizes,
factors, crop sizes and holes (NaN = invalid target pixel, whole invalid
regions included). A sample comes out packed with a finite low-res input and
at least one valid ground-truth pixel, or is skipped (``None``, counted), or
the configuration is refused with a ValueError; never a crash."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from convdense.datasets.transforms import (MakeLowResolution, PackJointUpsamplingInputs,
                                           RandomJointCrop, RandomJointFlip)

from .fuzz_contract import FUZZ


def _sample(rng, height, width, channels, invalid_fraction, invalid_block):
    target = rng.uniform(0.5, 5.0, (height, width, channels)).astype(np.float32)
    target[rng.random((height, width)) < invalid_fraction] = np.nan
    if invalid_block:  # a whole invalid region, as under a depth sensor's shadow
        target[:height // 2 + 1] = np.nan
    return dict(guide=rng.random((height, width, 3), dtype=np.float32), target=target,
                target_kind='flow' if channels == 2 else 'depth', name='fuzzed')


@FUZZ
@given(data=st.data())
def test_fuzz_training_pipeline(data):
    draw = data.draw
    factor = draw(st.sampled_from([2, 4, 8]))
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    crop = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    channels = draw(st.sampled_from([1, 2]))
    invalid_fraction = draw(st.sampled_from([0.0, 0.5, 0.95, 1.0]))
    sample = _sample(np.random.default_rng(draw(st.integers(0, 99))), height, width, channels,
                     invalid_fraction, draw(st.booleans()))
    np.random.seed(draw(st.integers(0, 99)))
    cropper, lowres = RandomJointCrop(crop, min_valid=0.5), MakeLowResolution(factor)
    steps = [cropper, RandomJointFlip(vertical=True), lowres, PackJointUpsamplingInputs()]
    results = sample
    try:
        for step in steps:
            results = step(results)
            if results is None:
                break
    except ValueError as exc:
        # only configuration errors: a crop larger than the image, an image
        # smaller than the factor, or a whole image without a valid pixel
        assert (crop[0] > height or crop[1] > width or min(crop) < factor
                or 'no valid pixel' in str(exc)), exc
        return
    if results is None:
        assert cropper.skipped + lowres.skipped == 1
        return
    inputs, samples = results['inputs'], results['data_samples']
    h, w = (crop[0] // factor) * factor, (crop[1] // factor) * factor
    assert inputs['guide'].shape == (3, h, w) and samples['gt'].shape == (channels, h, w)
    assert inputs['low'].shape == (channels, h // factor, w // factor)
    assert torch.isfinite(inputs['low']).all() and torch.isfinite(samples['gt']).all()
    assert samples['valid'].any()


def test_a_window_without_valid_pixels_is_skipped_and_counted():
    sample = _sample(np.random.default_rng(0), 32, 32, 1, 0.0, False)
    sample['target'][:, :] = np.nan
    sample['target'][0, 0] = 1.0  # one valid pixel, which no 8x8 window at (>=8, >=8) covers
    cropper = RandomJointCrop(8, max_tries=3)
    np.random.seed(0)
    outcomes = [cropper(dict(sample)) for _ in range(20)]
    skipped = sum(out is None for out in outcomes)
    assert skipped == cropper.skipped > 0
    for out in outcomes:
        if out is not None:  # kept windows are those that cover the valid pixel
            assert np.isfinite(out['target']).any()


def test_a_whole_image_without_valid_pixels_is_an_error_naming_it():
    sample = _sample(np.random.default_rng(0), 16, 16, 1, 1.0, False)
    with pytest.raises(ValueError, match='fuzzed: target has no valid pixel'):
        MakeLowResolution(4)(sample)


def test_dataset_draws_another_sample_when_the_pipeline_skips_one():
    """mmengine's BaseDataset re-draws on ``None`` in training: a dataset whose
    first sample is all-invalid in every window still yields valid batches."""
    from convdense.datasets.joint_upsampling import JointUpsamplingDataset
    rng = np.random.default_rng(0)
    good = _sample(rng, 32, 32, 1, 0.0, False)
    bad = _sample(rng, 32, 32, 1, 0.0, False)
    bad['target'][:] = np.nan
    bad['target'][0, 0] = 1.0
    bad['name'] = 'mostly invalid'

    class InMemory(JointUpsamplingDataset):
        def list_samples(self):
            return [dict(bad), dict(good)]

    pipeline = [dict(type='convdense.LoadJointUpsamplingSample'),
                dict(type='convdense.RandomJointCrop', crop_size=16),
                dict(type='convdense.MakeLowResolution'),
                dict(type='convdense.PackJointUpsamplingInputs')]
    dataset = InMemory(factor=4, pipeline=pipeline, serialize_data=False)
    np.random.seed(0)
    for _ in range(5):
        item = dataset[0]
        assert item['data_samples']['valid'].float().mean() >= 0.5
    cropper = dataset.pipeline.transforms[1]
    assert cropper.skipped >= 1
