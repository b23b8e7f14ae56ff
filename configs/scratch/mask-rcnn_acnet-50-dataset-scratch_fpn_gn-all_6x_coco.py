# Mask R-CNN with the dataset-aware ACNet-ResNet50 trained from scratch as the ResNet-50
# recipe it inherits: GN in the backbone, FPN and heads, nothing frozen, norms trained,
# no weights, the 6x schedule. Only the backbone type and its arguments change.
_base_ = './mask-rcnn_r50-scratch_fpn_gn-all_6x_coco.py'

model = dict(backbone=dict(type='convdense.ACNet', mode='dataset'))
