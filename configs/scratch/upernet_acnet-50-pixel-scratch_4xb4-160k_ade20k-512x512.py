# UPerNet on ADE20K with a pixel-aware ACNet-ResNet50 backbone (gates predicted at every
# pixel; no converted ImageNet release exists for it) trained from scratch as the
# dataset-aware one it inherits.
_base_ = './upernet_acnet-50-dataset-scratch_4xb4-160k_ade20k-512x512.py'

model = dict(backbone=dict(mode='pixel'))
