# Mask R-CNN with the paper's HetConv ResNet-50 (P=4 in every bottleneck 3x3 conv);
# the rest of the backbone settings and everything else come from the ResNet-50 baseline.
_base_ = './mask-rcnn_r50_fpn_1x_coco.py'

model = dict(backbone=dict(type='convdense.HetConvResNet', part=4))
