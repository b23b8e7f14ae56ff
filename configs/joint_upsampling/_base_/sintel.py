# MPI-Sintel training set, clean pass, first frame as guide; EPE in pixels.
# The paper's split (908 train / 133 val) is a split file of '1'/'2' lines.
data_root = 'data/sintel'
split_file = 'data/sintel/sintel_train_val.txt'
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
    dataset=dict(type='SintelFlowDataset', data_root=data_root, split='train', split_file=split_file,
                 factor=factor, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='SintelFlowDataset', data_root=data_root, split='val', split_file=split_file,
                 factor=factor, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='FlowEPE')
test_evaluator = val_evaluator
