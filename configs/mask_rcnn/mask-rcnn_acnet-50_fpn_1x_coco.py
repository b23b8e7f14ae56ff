# Mask R-CNN with the paper's dataset-aware ACNet-ResNet50 (adaptive self/local/global
# 3x3 convs); the rest of the backbone settings (out_indices, frozen_stages,
# norm_eval, init_cfg=None) and everything else come from the ResNet-50 baseline.
_base_ = './mask-rcnn_r50_fpn_1x_coco.py'

model = dict(backbone=dict(type='convdense.ACNet', mode='dataset'))
