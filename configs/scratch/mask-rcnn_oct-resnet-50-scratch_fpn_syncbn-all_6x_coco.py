# Mask R-CNN with the Oct-ResNet-50 (alpha=0.5) trained from scratch as the SyncBN
# ResNet-50 recipe it inherits: SyncBN in the backbone, FPN and heads, nothing frozen,
# norms trained, no weights, the 6x schedule. Only the backbone type and its arguments change.
_base_ = './mask-rcnn_r50-scratch_fpn_syncbn-all_6x_coco.py'

model = dict(backbone=dict(type='convdense.OctResNet', alpha=0.5))
