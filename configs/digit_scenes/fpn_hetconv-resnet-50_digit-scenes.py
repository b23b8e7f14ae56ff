# Semantic FPN on the digit scenes with the paper's HetConv ResNet-50 (P=4 in every
# bottleneck 3x3 conv); everything else, the other backbone arguments included, is
# fpn_r50_digit-scenes.py's.
_base_ = './fpn_r50_digit-scenes.py'

model = dict(backbone=dict(type='convdense.HetConvResNet', part=4))
