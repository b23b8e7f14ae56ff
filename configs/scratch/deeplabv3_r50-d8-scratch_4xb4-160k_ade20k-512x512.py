# ResNet-50 baseline DeepLabV3 (dilated, output stride 8) on ADE20K trained from scratch:
# the ImageNet-initialised baseline it inherits (checked data, SyncBN, nothing frozen,
# norms trained) without weights, with upstream's ResNetV1c deep stem, on the 160k
# schedule (_base_/seg_scratch_160k.py).
_base_ = ['../segmentation/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py',
          './_base_/seg_scratch_160k.py']

model = dict(pretrained=None, backbone=dict(type='ResNetV1c'))
train_cfg = _base_.scratch_train_cfg
param_scheduler = _base_.scratch_param_scheduler
default_hooks = dict(checkpoint=dict(interval=_base_.scratch_checkpoint_interval))
