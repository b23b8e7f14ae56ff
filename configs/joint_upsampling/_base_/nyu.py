# NYU Depth v2 labeled set: first 1000 images train, last 449 test; RMSE in cm
# on valid pixels, 6-pixel border ignored, per image then averaged.
data_root = 'data/nyu_depth_v2'
factor = 8
train_pipeline = [
    dict(type='LoadJointUpsamplingSample'),
    dict(type='RandomJointCrop', crop_size=256),
    dict(type='RandomJointFlip', prob=0.5),
    dict(type='MakeLowResolution'),
    dict(type='PackJointUpsamplingInputs'),
]
test_pipeline = [
    dict(type='LoadJointUpsamplingSample'),
    dict(type='MakeLowResolution'),
    dict(type='PackJointUpsamplingInputs'),
]
train_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='NYUDepthV2Dataset', data_root=data_root, split='train', factor=factor,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='NYUDepthV2Dataset', data_root=data_root, split='test', factor=factor,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='DepthRMSE', border=6, scale=100.0, unit='cm')
test_evaluator = val_evaluator
