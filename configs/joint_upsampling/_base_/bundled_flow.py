# Bundled flow data (data/flow, MPI-Sintel layout): real Middlebury frames with an
# exactly known piecewise-smooth motion (see data/README.md). Three scenes train,
# Grove2 is held out for evaluation. EPE in pixels over valid pixels.
_base_ = ['./joint_upsampling_data.py']
data_root = 'data/flow'
factor = 4
val_scenes = ['Grove2']
train_pipeline = [
    dict(type='LoadJointUpsamplingSample'),
    dict(type='RandomJointCrop', crop_size=64),
    dict(type='RandomJointFlip', prob=0.5),
    dict(type='MakeLowResolution'),
    dict(type='PackJointUpsamplingInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(type='SintelFlowDataset', data_root=data_root, val_scenes=val_scenes, factor=factor,
                 split='train', pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(type='SintelFlowDataset', data_root=data_root, val_scenes=val_scenes, factor=factor,
                 split='val'))
test_dataloader = val_dataloader
val_evaluator = dict(type='FlowEPE')
test_evaluator = val_evaluator
