# DeepLabV3 on ADE20K with a dilated dataset-aware ACNet-ResNet50 backbone: output stride 8 with the
# upstream R-50-D8 strides and dilations (read from the base, not retyped) and the
# baseline ResNetV1c's deep stem. Unlike ResNetV1c (contract_dilation=True), every
# block of a dilated stage uses the stage's dilation, as mmdet's ResNet does.
_base_ = './deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py'
# norm_cfg is written out: {{_base_.norm_cfg}} carries mmseg's _scope_ key,
# which mmcv's build_norm_layer would pass on to SyncBatchNorm.

model = dict(backbone=dict(
    _delete_=True, type='convdense.ACNet', depth=50, mode='dataset',
    deep_stem=True, out_indices=(0, 1, 2, 3),
    strides=_base_.model.backbone.strides, dilations=_base_.model.backbone.dilations,
    norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False, style='pytorch',
    init_cfg=None))
