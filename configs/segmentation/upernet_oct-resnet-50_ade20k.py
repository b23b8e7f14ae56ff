# UPerNet on ADE20K with an Oct-ResNet-50 (alpha=0.5) backbone, started from
# d-li14/octconv.pytorch's ImageNet release (plain stem, as the baseline's),
# converted by
#   python tools/model_converters/oct_resnet_dli14.py oct_resnet50_cosine.pth checkpoints/oct_resnet50_a0.5.pth
# strided_downsample='avgpool' runs stride-2 convs as the release does (docs/model_zoo.md).
# Nothing frozen, norms trained, as the baseline.
_base_ = './upernet_r50_ade20k.py'
# norm_cfg is written out: {{_base_.norm_cfg}} carries mmseg's _scope_ key,
# which mmcv's build_norm_layer would pass on to SyncBatchNorm. model.pretrained
# (the baseline's torchvision weights) is reset: init_cfg names this backbone's.

model = dict(pretrained=None, backbone=dict(
    _delete_=True, type='convdense.OctResNet', depth=50, alpha=0.5, strided_downsample='avgpool',
    out_indices=(0, 1, 2, 3), strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1),
    norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False, style='pytorch',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/oct_resnet50_a0.5.pth')))
