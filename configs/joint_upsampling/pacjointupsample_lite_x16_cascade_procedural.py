# x16 depth with no x16 training: the x4 procedural model (pacjointupsample_lite_x4_procedural.py)
# applied twice (JointUpsampleCascade: x4, then x4 guided by the full image). Its checkpoint holds
# the shipped x4 weights in both stages (`python tools/make_shipped_upsamplers.py --models
# depth-x16` writes it and scores it on the same protocol as the trained models). Why not train
# x16 directly: docs/joint_upsampling.md (the cost of the x16 learnable JBU base on CPU).
_base_ = ['./pacjointupsample_lite_x4_procedural.py']
factor = 16
model = dict(net=dict(_delete_=True, type='JointUpsampleCascade', factor=factor,
                      stages=[{{_base_.model.net}}, {{_base_.model.net}}]))
train_dataloader = dict(dataset=dict(factor=factor))
val_dataloader = dict(dataset=dict(factor=factor))
test_dataloader = dict(dataset=dict(factor=factor))
