# _base_/procedural_flow.py at x8: larger procedural pairs and crops (16x16 low-res inputs).
_base_ = ['./procedural_flow.py']
factor = 8
train_pipeline = [
    dict(type='LoadJointUpsamplingSample'),
    dict(type='RandomJointCrop', crop_size=128),
    dict(type='RandomJointFlip', prob=0.5),
    dict(type='MakeLowResolution'),
    dict(type='PackJointUpsamplingInputs'),
]
train_dataloader = dict(dataset=dict(factor=factor, generator=dict(size=(192, 192)), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(factor=factor))
test_dataloader = dict(dataset=dict(factor=factor))
further_tests = {'bundled flow frames': dict(type='SintelFlowDataset', data_root='data/flow', split='all',
                                             factor=factor, pipeline={{_base_.test_pipeline}})}
