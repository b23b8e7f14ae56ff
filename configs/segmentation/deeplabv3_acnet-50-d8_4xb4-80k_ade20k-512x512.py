# DeepLabV3 on ADE20K with a dilated dataset-aware ACNet-ResNet50 backbone: output stride 8 with the
# upstream R-50-D8 strides and dilations (read from the base, not retyped). Unlike
# ResNetV1c (contract_dilation=True), every block of a dilated stage uses the stage's
# dilation, as mmdet's ResNet does. Started from
# the official tensorpack ImageNet release (plain stem, as the baseline's),
# converted by
#   python tools/model_converters/acnet_tensorpack.py acnet_resnet50.npz checkpoints/acnet50_dataset.pth
# (github.com/wanggrun/Adaptively-Connected-Neural-Networks); strided_padding='tf_same'
# pads the strided layers as TensorFlow did in training (docs/model_zoo.md).
# Nothing frozen, norms trained, as the baseline.
_base_ = './deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py'
# norm_cfg is written out: {{_base_.norm_cfg}} carries mmseg's _scope_ key,
# which mmcv's build_norm_layer would pass on to SyncBatchNorm. model.pretrained
# (the baseline's torchvision weights) is reset: init_cfg names this backbone's.

model = dict(pretrained=None, backbone=dict(
    _delete_=True, type='convdense.ACNet', depth=50, mode='dataset', strided_padding='tf_same',
    out_indices=(0, 1, 2, 3),
    strides=_base_.model.backbone.strides, dilations=_base_.model.backbone.dilations,
    norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False, style='pytorch',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/acnet50_dataset.pth')))
