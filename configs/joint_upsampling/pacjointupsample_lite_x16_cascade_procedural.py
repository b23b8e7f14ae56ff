# x16 depth with no x16 training: the x4 procedural model (pacjointupsample_lite_x4_procedural.py)
# applied twice (JointUpsampleCascade: x4, then x4 guided by the full image). Its checkpoint holds
# one x4 run's weights in both stages (`python tools/make_shipped_upsamplers.py --models depth-x16
# [--seed N]` writes it from the shipped x4 model or seed N's x4 run, scores it on the same
# protocol as the trained models and ships the cascade best on its own x16 val). Why not train
# x16 directly: docs/joint_upsampling.md (the cost of the x16 learnable JBU base on CPU).
_base_ = ['./pacjointupsample_lite_x4_procedural.py']
factor = 16
model = dict(net=dict(_delete_=True, type='JointUpsampleCascade', factor=factor,
                      stages=[{{_base_.model.net}}, {{_base_.model.net}}]))
train_dataloader = dict(dataset=dict(factor=factor))
val_dataloader = dict(dataset=dict(factor=factor))
test_dataloader = dict(dataset=dict(factor=factor))
