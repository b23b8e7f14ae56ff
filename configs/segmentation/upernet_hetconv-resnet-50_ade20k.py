# UPerNet on ADE20K with a HetConv ResNet-50 (P=4) backbone, started from
# the baseline's own torchvision ResNet-50 weights (plain stem) inflated to
# HetConv, as no HetConv ImageNet weights were ever released:
#   python tools/model_converters/resnet_to_hetconv.py resnet50-0676ba61.pth checkpoints/hetconv_r50_p4.pth --part 4
# (https://download.pytorch.org/models/resnet50-0676ba61.pth).
# Nothing frozen, norms trained, as the baseline.
_base_ = './upernet_r50_ade20k.py'
# norm_cfg is written out: {{_base_.norm_cfg}} carries mmseg's _scope_ key,
# which mmcv's build_norm_layer would pass on to SyncBatchNorm. model.pretrained
# (the baseline's torchvision weights) is reset: init_cfg names this backbone's.

model = dict(pretrained=None, backbone=dict(
    _delete_=True, type='convdense.HetConvResNet', depth=50, part=4,
    out_indices=(0, 1, 2, 3), strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1),
    norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False, style='pytorch',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/hetconv_r50_p4.pth')))
