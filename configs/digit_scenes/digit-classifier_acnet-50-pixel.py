# The digit classifier (pre-training) on the digit scenes with the pixel-aware ACNet-
# ResNet50 (per-pixel gates); everything else, the other backbone arguments included, is
# digit-classifier_r50.py's.
_base_ = './digit-classifier_r50.py'

model = dict(backbone=dict(type='convdense.ACNet', mode='pixel'))
