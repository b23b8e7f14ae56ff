# pacjointupsample_lite_x8_procedural.py at x4: the same model and procedural protocol
# (trained on procedural RGB-D scenes only, selected on one real scene, tested on the other).
_base_ = ['./pacjointupsample_lite_x8_procedural.py']
factor = 4
model = dict(net=dict(factor=factor))
train_dataloader = dict(dataset=dict(factor=factor))
val_dataloader = dict(dataset=dict(factor=factor))
test_dataloader = dict(dataset=dict(factor=factor))
