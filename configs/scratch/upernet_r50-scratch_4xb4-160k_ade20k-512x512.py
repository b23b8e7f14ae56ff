# ResNet-50 baseline UPerNet on ADE20K trained from scratch: the ImageNet-initialised
# baseline it inherits (checked data, SyncBN, nothing frozen, norms trained) without
# weights, with upstream's ResNetV1c deep stem, on the 160k schedule
# (_base_/seg_scratch_160k.py).
_base_ = ['../segmentation/upernet_r50_ade20k.py', './_base_/seg_scratch_160k.py']

model = dict(pretrained=None, backbone=dict(type='ResNetV1c'))
train_cfg = _base_.scratch_train_cfg
param_scheduler = _base_.scratch_param_scheduler
default_hooks = dict(checkpoint=dict(interval=_base_.scratch_checkpoint_interval))
