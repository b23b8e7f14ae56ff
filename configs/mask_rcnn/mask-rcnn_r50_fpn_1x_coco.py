# ResNet-50 baseline: upstream Mask R-CNN, trained from scratch unless a local
# checkpoint is given (the upstream torchvision:// weights would download).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['convdense'], allow_failed_imports=False)

model = dict(backbone=dict(init_cfg=None))
