# PacJointUpsample x16 on NYU Depth v2 (paper's Table 1 protocol; RMSE in cm).
_base_ = ['./_base_/runtime.py', './_base_/nyu.py']
factor = 16
model = dict(net=dict(type='PacJointUpsample', factor=factor, channels=1))
train_dataloader = dict(dataset=dict(factor=factor))
val_dataloader = dict(dataset=dict(factor=factor))
test_dataloader = val_dataloader
