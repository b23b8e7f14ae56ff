# Bundled flow data (data/flow, MPI-Sintel layout): real Middlebury frames with an
# exactly known piecewise-smooth motion (see data/README.md). Split three ways:
#   train: the top 65 % of Dimetrodon, Hydrangea and RubberWhale (random 64x64 crops);
#   val:   the bottom 25 % of the same three (a 10 % margin, >= 19 px; checkpoints are chosen here);
#   test:  Grove2, a whole scene held out (reported once).
# EPE in pixels over valid pixels.
_base_ = ['./joint_upsampling_data.py']
data_root = 'data/flow'
factor = 4
test_scenes = ['Grove2']
train_region = (0.0, 0.0, 0.65, 1.0)
val_region = (0.75, 0.0, 1.0, 1.0)
train_pipeline = [
    dict(type='LoadJointUpsamplingSample'),
    dict(type='RandomJointCrop', crop_size=64),
    dict(type='RandomJointFlip', prob=0.5),
    dict(type='MakeLowResolution'),
    dict(type='PackJointUpsamplingInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(type='SintelFlowDataset', data_root=data_root, val_scenes=test_scenes, factor=factor,
                 split='train', region_frac=train_region, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(type='SintelFlowDataset', data_root=data_root, val_scenes=test_scenes, factor=factor,
                 split='train', region_frac=val_region))
test_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(type='SintelFlowDataset', data_root=data_root, val_scenes=test_scenes, factor=factor,
                 split='val'))
val_evaluator = dict(type='FlowEPE')
test_evaluator = val_evaluator
