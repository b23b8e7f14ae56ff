# DeepLabV3 on ADE20K with a pixel-aware ACNet-ResNet50 backbone (gates predicted at every
# pixel; no converted ImageNet release exists for it) trained from scratch as the
# dataset-aware one it inherits.
_base_ = './deeplabv3_acnet-50-dataset-d8-scratch_4xb4-160k_ade20k-512x512.py'

model = dict(backbone=dict(mode='pixel'))
