# Semantic FPN on the digit scenes with the pixel-aware ACNet-ResNet50 (per-pixel gates);
# everything else, the other backbone arguments included, is fpn_r50_digit-scenes.py's.
_base_ = './fpn_r50_digit-scenes.py'

model = dict(backbone=dict(type='convdense.ACNet', mode='pixel'))
