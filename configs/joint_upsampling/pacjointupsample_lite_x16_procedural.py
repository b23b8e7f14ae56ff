# pacjointupsample_lite_x8_procedural.py at x16, with 128x128 crops (8x8 low-res inputs):
# the same model and procedural protocol.
_base_ = ['./pacjointupsample_lite_x8_procedural.py']
factor = 16
model = dict(net=dict(factor=factor))
train_pipeline = [
    dict(type='LoadJointUpsamplingSample'),
    dict(type='RandomJointCrop', crop_size=128, min_valid=0.8),
    dict(type='RandomJointFlip', prob=0.5),
    dict(type='MakeLowResolution'),
    dict(type='PackJointUpsamplingInputs'),
]
train_dataloader = dict(dataset=dict(factor=factor, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(factor=factor))
test_dataloader = dict(dataset=dict(factor=factor))
