# Bundled real data (data/README.md): data/middlebury/aloe (Middlebury 2006 "Aloe", half
# size 641x555, 2005/2006 layout: disp1.png = 2 x disparity) and data/middlebury/motorcycle
# (Middlebury 2014 "Motorcycle", 741x500, disp0.pfm).
# Each scene is split three ways, with a margin of 5 % of the image (25-37 px) between parts:
#   train: the top 70 % of the left 55 % (random 64x64 crops, never outside it);
#   val:   the bottom 25 % of the left 55 % (checkpoints and PAC variants are chosen here);
#   test:  the right 40 % (reported once, never used to choose anything).
# RMSE in disparity pixels on valid pixels, 6-pixel border ignored, per image then averaged.
_base_ = ['./joint_upsampling_data.py']
data_root = 'data/middlebury'
factor = 8
scenes = ['aloe', 'motorcycle']
train_region = (0.0, 0.0, 0.7, 0.55)  # (top, left, bottom, right) fractions of the image
val_region = (0.75, 0.0, 1.0, 0.55)
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
    dataset=dict(type='MiddleburyDataset', data_root=data_root, scenes=scenes, factor=factor,
                 disparity_scale=2.0, region_frac=train_region, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(type='MiddleburyDataset', data_root=data_root, scenes=scenes, factor=factor,
                 disparity_scale=2.0, region_frac=val_region))
test_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(type='MiddleburyDataset', data_root=data_root, scenes=scenes, factor=factor,
                 disparity_scale=2.0, region_frac=test_region))
val_evaluator = dict(type='DepthRMSE', border=6, scale=1.0, unit='px')
test_evaluator = val_evaluator
