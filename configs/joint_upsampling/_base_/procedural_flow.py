# Train flow upsamplers on procedural optical flow only (convdense/datasets/procedural_flow.py:
# FlyingChairs-style layers cut from scikit-image's photos, each with its own affine and
# mild non-rigid motion, log-uniform translations of 0.1-32 px, occlusion, brightness
# change and noise), and select and test them on *real* flow only:
#   val:  ONE bundled Middlebury stereo scene read as flow (left -> right view: u = -d,
#         v = 0; unknown and stereo-occluded pixels invalid), the whole image
#         (checkpoints and PAC variants are chosen here);
#   test: the OTHER stereo scene read as flow, the whole image (never trained or
#         selected on);
#   further_tests: the bundled known-motion flow frames (data/flow, all four scenes;
#         real frames, synthetic per-segment motion), reported beside the test scene.
# Defaults: select on Aloe, test on Motorcycle; `tools/demo.py --procedural` runs both
# ways by overriding the scenes. EPE in pixels over valid pixels.
_base_ = ['./joint_upsampling_data.py']
factor = 4
middlebury_root = 'data/middlebury'
val_scene = 'aloe'
test_scene = 'motorcycle'
train_pipeline = [
    dict(type='LoadJointUpsamplingSample'),
    dict(type='RandomJointCrop', crop_size=64),
    dict(type='RandomJointFlip', prob=0.5),
    dict(type='MakeLowResolution'),
    dict(type='PackJointUpsamplingInputs'),
]
# 4000 fixed pairs (sample i from seed (0, i)); 500 iterations x 4 draw 2000 of them
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(type='ProceduralFlowDataset', num_samples=4000, seed=0, factor=factor,
                 generator=dict(size=(128, 128)), pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(type='MiddleburyStereoFlowDataset', data_root=middlebury_root, scenes=[val_scene],
                 disparity_scale=2.0, factor=factor))
test_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(type='MiddleburyStereoFlowDataset', data_root=middlebury_root, scenes=[test_scene],
                 disparity_scale=2.0, factor=factor))
# read by tools/demo.py: each replaces test_dataloader.dataset for one more test column
further_tests = {'bundled flow frames': dict(type='SintelFlowDataset', data_root='data/flow', split='all',
                                             factor=factor, pipeline={{_base_.test_pipeline}})}
val_evaluator = dict(type='FlowEPE')
test_evaluator = val_evaluator
