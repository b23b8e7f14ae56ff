# Semantic FPN on the digit scenes with the paper's dataset-aware ACNet-ResNet50 (adaptive
# self/local/global 3x3 convs); everything else, the other backbone arguments included, is
# fpn_r50_digit-scenes.py's.
_base_ = './fpn_r50_digit-scenes.py'

model = dict(backbone=dict(type='convdense.ACNet', mode='dataset'))
