# Mask R-CNN with the paper's Res2Net-50 (26w x 4s, plain stem); the rest of the
# backbone settings (out_indices, frozen_stages, norm_eval, init_cfg=None) and
# everything else come from the ResNet-50 baseline.
_base_ = './mask-rcnn_r50_fpn_1x_coco.py'

model = dict(backbone=dict(type='convdense.Res2Net', scales=4, base_width=26))
