# UPerNet on ADE20K with an Oct-ResNet-50 (alpha=0.5) backbone trained from scratch as the
# ResNet-50 baseline it inherits: its deep stem and geometry (scratch_backbone), no
# weights, nothing frozen, norms trained, 160k iterations; only the blocks differ.
_base_ = './upernet_r50-scratch_4xb4-160k_ade20k-512x512.py'

model = dict(backbone=dict(_delete_=True, type='convdense.OctResNet', depth=50, alpha=0.5,
                           strides=_base_.model.backbone.strides,
                           dilations=_base_.model.backbone.dilations, **_base_.scratch_backbone))
