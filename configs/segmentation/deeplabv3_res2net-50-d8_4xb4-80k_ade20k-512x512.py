# DeepLabV3 on ADE20K with a dilated Res2Net-50 (26w x 4s) backbone: output stride 8 with the
# upstream R-50-D8 strides and dilations (read from the base, not retyped). Unlike
# ResNetV1c (contract_dilation=True), every block of a dilated stage uses the stage's
# dilation, as mmdet's ResNet does. Started from
# its official v1b ImageNet release (deep stem: three 3x3 convs; average-pool
# shortcuts: deep_stem=True, avg_down=True), converted by
#   python tools/model_converters/res2net.py res2net50_v1b_26w_4s-3cf99910.pth checkpoints/res2net50_v1b_26w_4s.pth
# (github.com/Res2Net/Res2Net-PretrainedModels). Its stem and shortcuts differ from the
# plain-stem baseline's; for a like-for-like comparison use the plain release instead
# (res2net50_26w_4s-06e79181.pth, same converter, deep_stem=False, avg_down=False).
# Nothing frozen, norms trained, as the baseline.
_base_ = './deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py'
# norm_cfg is written out: {{_base_.norm_cfg}} carries mmseg's _scope_ key,
# which mmcv's build_norm_layer would pass on to SyncBatchNorm. model.pretrained
# (the baseline's torchvision weights) is reset: init_cfg names this backbone's.

model = dict(pretrained=None, backbone=dict(
    _delete_=True, type='convdense.Res2Net', depth=50, scales=4, base_width=26,
    deep_stem=True, avg_down=True,
    out_indices=(0, 1, 2, 3),
    strides=_base_.model.backbone.strides, dilations=_base_.model.backbone.dilations,
    norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False, style='pytorch',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/res2net50_v1b_26w_4s.pth')))
