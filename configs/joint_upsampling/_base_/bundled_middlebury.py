# Bundled real data (data/README.md): data/middlebury/aloe (Middlebury 2006 "Aloe", half
# size 641x555, 2005/2006 layout: disp1.png = 2 x disparity) and data/middlebury/motorcycle
# (Middlebury 2014 "Motorcycle", 741x500, disp0.pfm). Training crops come from the left 55%
# of each image, evaluation uses the held-out right 40% (never seen in training).
# RMSE in disparity pixels on valid pixels, 6-pixel border ignored, per image then averaged.
_base_ = ['./joint_upsampling_data.py']
data_root = 'data/middlebury'
factor = 8
train_region = (0.0, 0.0, 1.0, 0.55)
test_region = (0.0, 0.6, 1.0, 1.0)
train_pipeline = [
    dict(type='LoadJointUpsamplingSample'),
    dict(type='RandomJointCrop', crop_size=64, min_valid=0.8),
    dict(type='RandomJointFlip', prob=0.5),
    dict(type='MakeLowResolution'),
    dict(type='PackJointUpsamplingInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(type='MiddleburyDataset', data_root=data_root, factor=factor, disparity_scale=2.0,
                 region_frac=train_region, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(type='MiddleburyDataset', data_root=data_root, factor=factor, disparity_scale=2.0,
                 region_frac=test_region))
test_dataloader = val_dataloader
val_evaluator = dict(type='DepthRMSE', border=6, scale=1.0, unit='px')
test_evaluator = val_evaluator
