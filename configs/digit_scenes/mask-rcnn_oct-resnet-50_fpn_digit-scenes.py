# Mask R-CNN on the digit scenes with the paper's Oct-ResNet-50 (alpha=0.5 in stages 1-3,
# last stage plain); everything else, the other backbone arguments included, is mask-
# rcnn_r50_fpn_digit-scenes.py's.
_base_ = './mask-rcnn_r50_fpn_digit-scenes.py'

model = dict(backbone=dict(type='convdense.OctResNet', alpha=0.5))
