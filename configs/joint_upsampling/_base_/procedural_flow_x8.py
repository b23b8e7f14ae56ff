# _base_/procedural_flow.py at x8: 128x128 procedural pairs used whole (16x16 low-res
# inputs; the generator is random, so a crop would add nothing).
_base_ = ['./procedural_flow.py']
factor = 8
train_pipeline = [dict(type='LoadJointUpsamplingSample'), dict(type='RandomJointFlip', prob=0.5),
                  dict(type='MakeLowResolution'), dict(type='PackJointUpsamplingInputs')]
train_dataloader = dict(dataset=dict(factor=factor, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(factor=factor))
test_dataloader = dict(dataset=dict(factor=factor))
further_tests = {'bundled flow frames': dict(factor=factor)}
