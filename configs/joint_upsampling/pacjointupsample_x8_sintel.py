# PacJointUpsample x8 on MPI-Sintel flow (paper's Table 2 protocol; EPE in px).
# u and v go through the network as two single-channel images with shared weights.
_base_ = ['./_base_/runtime.py', './_base_/sintel.py']
factor = 8
model = dict(net=dict(type='PacJointUpsample', factor=factor, channels=2), values_scale_with_resolution=True)
train_dataloader = dict(dataset=dict(factor=factor))
val_dataloader = dict(dataset=dict(factor=factor))
test_dataloader = val_dataloader
