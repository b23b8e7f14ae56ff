# ResNet-50 baseline: upstream Mask R-CNN, trained from scratch unless a local
# checkpoint is given (the upstream torchvision:// weights would download).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['convdense'], allow_failed_imports=False)

model = dict(backbone=dict(init_cfg=None))

# mmdet's CocoDataset, checked before loading (convdense.datasets.upstream_checks): a
# malformed json or a missing image is a one-line error naming the file, and what mmdet
# skips is counted in the log. Only the type changes; the rest is upstream's.
train_dataloader = dict(dataset=dict(type='convdense.CheckedCocoDataset'))
val_dataloader = dict(dataset=dict(type='convdense.CheckedCocoDataset'))
test_dataloader = dict(dataset=dict(type='convdense.CheckedCocoDataset'))
