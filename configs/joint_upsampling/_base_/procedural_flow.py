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
_base_ = ['./bundled_flow.py']  # its random 64x64 crops, flips and low-res protocol
middlebury_root = 'data/middlebury'
val_scene = 'aloe'
test_scene = 'motorcycle'
# 4000 fixed pairs (sample i from seed (0, i)); 500 iterations x 4 draw 2000 of them
train_dataloader = dict(
    dataset=dict(_delete_=True, type='ProceduralFlowDataset', num_samples=4000, seed=0,
                 factor={{_base_.factor}}, generator=dict(size=(128, 128)), pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='MiddleburyStereoFlowDataset', data_root=middlebury_root, scenes=[val_scene],
                 disparity_scale=2.0, factor={{_base_.factor}}, pipeline={{_base_.test_pipeline}}))
test_dataloader = dict(
    dataset=dict(_delete_=True, type='MiddleburyStereoFlowDataset', data_root=middlebury_root,
                 scenes=[test_scene], disparity_scale=2.0, factor={{_base_.factor}},
                 pipeline={{_base_.test_pipeline}}))
# read by tools/demo.py: each replaces test_dataloader.dataset for one more test column
further_tests = {'bundled flow frames': dict(type='SintelFlowDataset', data_root={{_base_.data_root}},
                                             split='all', factor={{_base_.factor}},
                                             pipeline={{_base_.test_pipeline}})}
