# Mask R-CNN with the paper's Oct-ResNet-50 (alpha=0.5 in stages 1-3, last stage
# plain); the rest of the backbone settings (out_indices, frozen_stages, norm_eval,
# init_cfg=None) and everything else come from the ResNet-50 baseline.
_base_ = './mask-rcnn_r50_fpn_1x_coco.py'

model = dict(backbone=dict(type='convdense.OctResNet', alpha=0.5))
