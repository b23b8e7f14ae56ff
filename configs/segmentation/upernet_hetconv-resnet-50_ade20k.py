# UPerNet on ADE20K with a HetConv ResNet-50 (P=4) backbone. The stem is the baseline
# ResNetV1c's deep stem, so only the bottleneck 3x3 convs differ from the baseline.
_base_ = './upernet_r50_ade20k.py'

model = dict(backbone=dict(
    _delete_=True, type='convdense.HetConvResNet', depth=50, part=4,
    deep_stem=True, out_indices=(0, 1, 2, 3), strides=(1, 2, 2, 2),
    dilations=(1, 1, 1, 1), norm_eval=False,
    norm_cfg=dict(type='SyncBN', requires_grad=True),  # as the baseline's norm_cfg
    style='pytorch', init_cfg=None))
