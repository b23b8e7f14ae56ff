# pacjointupsample_lite_x8_procedural.py at x16: the same model and procedural protocol,
# trained on 128x128 procedural scenes used whole (8x8 low-res inputs; the generator is
# random, so a crop would add nothing).
_base_ = ['./pacjointupsample_lite_x8_procedural.py']
factor = 16
model = dict(net=dict(factor=factor))
train_pipeline = [dict(type='LoadJointUpsamplingSample'), dict(type='RandomJointFlip', prob=0.5),
                  dict(type='MakeLowResolution'), dict(type='PackJointUpsamplingInputs')]
train_dataloader = dict(dataset=dict(factor=factor, generator=dict(size=(128, 128)), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(factor=factor))
test_dataloader = dict(dataset=dict(factor=factor))
