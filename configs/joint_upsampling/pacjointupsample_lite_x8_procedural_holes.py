# The procedural PAC lite model (pacjointupsample_lite_x8_procedural.py: learned JBU base,
# procedural RGB-D training scenes, one real scene for selection, the other for test) taught
# that sensor depth has holes:
#   - the net gets the low-res validity mask (model.low_mask): its target branch runs
#     normalised convolutions that skip unknown samples, and its JBU base renormalises over
#     known samples (convdense/ops/normalized_conv.py, convdense/ops/holes.py);
#   - training adds sensor-like holes to the LOW-RES input only (AddSensorHoles,
#     convdense/datasets/sensor_holes.py): far-side depth-edge bands, out-of-range samples and
#     random blobs, 0-50 % of the low-res samples unknown per crop; the ground truth stays whole;
#   - val and test each hold the real scene clean and twice with fixed sensor-like holes
#     (about 15 % and 45 % unknown, seeded), and DepthRMSE reports rmse_px (all three, what
#     selects the checkpoint), rmse_px_sensor_like and rmse_px_clean.
# Measured: `python benchmarks/bench_sensor_holes.py` -> benchmarks/results/joint_upsampling_holes.json.
_base_ = ['./pacjointupsample_lite_x8_procedural.py']
# The loss measures each crop's error in the larger of its input's and its ground truth's range
# (loss_span): with the input's range alone, a crop whose holes hide one side of a depth edge
# weighed hundreds of times more than its batch and took training to NaN (docs/joint_upsampling.md).
model = dict(low_mask=True, loss_span='input_or_target')
holes = dict(type='AddSensorHoles', fraction=(0.0, 0.5))
train_pipeline = [
    dict(type='LoadJointUpsamplingSample'),
    dict(type='RandomJointCrop', crop_size=64, min_valid=0.8),
    dict(type='RandomJointFlip', prob=0.5),
    dict(type='MakeLowResolution'),
    holes,
    dict(type='PackJointUpsamplingInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))


def _sensor_like(fraction, seed):
    """The test pipeline with fixed (seeded) sensor-like holes of about ``fraction``."""
    return [dict(type='LoadJointUpsamplingSample'), dict(type='MakeLowResolution'),
            dict(type='AddSensorHoles', fraction=fraction, seed=seed), dict(type='PackJointUpsamplingInputs')]


def _clean_and_sensor_like(dataset):
    return dict(_delete_=True, type='ConcatDataset', datasets=[
        dataset, dict(dataset, pipeline=_sensor_like(0.15, 1)), dict(dataset, pipeline=_sensor_like(0.45, 2))])


_scene = dict(type='MiddleburyDataset', data_root={{_base_.data_root}}, factor={{_base_.factor}},
              disparity_scale=2.0, pipeline={{_base_.test_pipeline}})
val_dataloader = dict(dataset=_clean_and_sensor_like(
    dict(_scene, scenes=[{{_base_.val_scene}}], region_frac={{_base_.val_region}})))
test_dataloader = dict(dataset=_clean_and_sensor_like(
    dict(_scene, scenes=[{{_base_.test_scene}}], region_frac={{_base_.test_region}})))
# the clean scenes' low-res inputs have up to about 8 % unknown samples (stereo occlusion)
val_evaluator = dict(type='DepthRMSE', border=6, scale=1.0, unit='px', sensor_like_holes=0.1)
test_evaluator = val_evaluator
