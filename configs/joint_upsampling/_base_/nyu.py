# NYU Depth v2 labeled set: first 1000 images train, last 449 test; RMSE in cm
# on valid pixels, 6-pixel border ignored, per image then averaged.
_base_ = ['./joint_upsampling_data.py']
data_root = 'data/nyu_depth_v2'
train_dataloader = dict(dataset=dict(type='NYUDepthV2Dataset', data_root=data_root, split='train'))
val_dataloader = dict(dataset=dict(type='NYUDepthV2Dataset', data_root=data_root, split='test'))
test_dataloader = val_dataloader
val_evaluator = dict(type='DepthRMSE', border=6, scale=100.0, unit='cm')
test_evaluator = val_evaluator
