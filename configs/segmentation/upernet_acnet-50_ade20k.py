# UPerNet on ADE20K with a dataset-aware ACNet-ResNet50 backbone. The stem is the
# baseline ResNetV1c's deep stem, so only the bottleneck 3x3 convs differ.
_base_ = './upernet_r50_ade20k.py'
# norm_cfg is written out: {{_base_.norm_cfg}} carries mmseg's _scope_ key,
# which mmcv's build_norm_layer would pass on to SyncBatchNorm.

model = dict(backbone=dict(
    _delete_=True, type='convdense.ACNet', depth=50, mode='dataset',
    deep_stem=True, out_indices=(0, 1, 2, 3), strides=(1, 2, 2, 2),
    dilations=(1, 1, 1, 1), norm_cfg=dict(type='SyncBN', requires_grad=True),
    norm_eval=False, style='pytorch', init_cfg=None))
