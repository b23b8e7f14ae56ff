# ResNet-50 baseline: upstream Mask R-CNN as it is, started from torchvision's ImageNet
# ResNet-50 (torchvision://resnet50, downloaded by mmengine), stem and stage 1 frozen
# and norms in eval mode as upstream (they keep the ImageNet statistics). The
# from-scratch recipe is configs/scratch/mask-rcnn_r50-scratch_fpn_gn-all_6x_coco.py.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['convdense'], allow_failed_imports=False)

# mmdet's CocoDataset, checked before loading (convdense.datasets.upstream_checks): a
# malformed json or a missing image is a one-line error naming the file, and what mmdet
# skips is counted in the log. Only the type changes; the rest is upstream's.
train_dataloader = dict(dataset=dict(type='convdense.CheckedCocoDataset'))
val_dataloader = dict(dataset=dict(type='convdense.CheckedCocoDataset'))
test_dataloader = dict(dataset=dict(type='convdense.CheckedCocoDataset'))
