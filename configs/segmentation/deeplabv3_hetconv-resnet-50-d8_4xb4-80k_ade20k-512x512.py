# DeepLabV3 on ADE20K with a dilated HetConv ResNet-50 (P=4) backbone: output stride 8 with the
# upstream R-50-D8 strides and dilations (read from the base, not retyped). Unlike
# ResNetV1c (contract_dilation=True), every block of a dilated stage uses the stage's
# dilation, as mmdet's ResNet does. Started from
# the baseline's own torchvision ResNet-50 weights (plain stem) inflated to
# HetConv, as no HetConv ImageNet weights were ever released:
#   python tools/model_converters/resnet_to_hetconv.py resnet50-0676ba61.pth checkpoints/hetconv_r50_p4.pth --part 4
# (https://download.pytorch.org/models/resnet50-0676ba61.pth).
# Nothing frozen, norms trained, as the baseline.
_base_ = './deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py'
# norm_cfg is written out: {{_base_.norm_cfg}} carries mmseg's _scope_ key,
# which mmcv's build_norm_layer would pass on to SyncBatchNorm. model.pretrained
# (the baseline's torchvision weights) is reset: init_cfg names this backbone's.

model = dict(pretrained=None, backbone=dict(
    _delete_=True, type='convdense.HetConvResNet', depth=50, part=4,
    out_indices=(0, 1, 2, 3),
    strides=_base_.model.backbone.strides, dilations=_base_.model.backbone.dilations,
    norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False, style='pytorch',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/hetconv_r50_p4.pth')))
