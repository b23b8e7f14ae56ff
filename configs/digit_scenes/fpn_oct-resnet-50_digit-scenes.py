# Semantic FPN on the digit scenes with the paper's Oct-ResNet-50 (alpha=0.5 in stages 1-3,
# last stage plain); everything else, the other backbone arguments included, is
# fpn_r50_digit-scenes.py's.
_base_ = './fpn_r50_digit-scenes.py'

model = dict(backbone=dict(type='convdense.OctResNet', alpha=0.5))
