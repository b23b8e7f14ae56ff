# Train on procedural RGB-D scenes only (convdense/datasets/procedural_rgbd.py: occluding
# layers textured with scikit-image's photos, piecewise-smooth disparity of 8-80 px), and
# evaluate on the bundled real Middlebury scenes only, leave-one-scene-out style:
#   val:  ONE real scene's val region (checkpoints and PAC variants are chosen here);
#   test: the OTHER real scene's test region (never trained or selected on; the same
#         pixels as the regions and leave-one-scene-out tables of tools/demo.py).
# Defaults: select on Aloe, test on Motorcycle; `tools/demo.py --procedural` runs both ways
# by overriding the scenes. Crops, batch and the low-res protocol are the demo's.
_base_ = ['./bundled_middlebury.py']
val_scene = 'aloe'
test_scene = 'motorcycle'
# 4000 fixed scenes (sample i from seed (0, i)); the demo's 500 iterations x 4 draw 2000 of them
train_dataloader = dict(
    dataset=dict(_delete_=True, type='ProceduralRGBDDataset', num_samples=4000, seed=0,
                 factor={{_base_.factor}}, generator=dict(size=(256, 256)),
                 pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(scenes=[val_scene]))
test_dataloader = dict(dataset=dict(scenes=[test_scene]))
