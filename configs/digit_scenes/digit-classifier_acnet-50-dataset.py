# The digit classifier (pre-training) on the digit scenes with the paper's dataset-aware
# ACNet-ResNet50 (adaptive self/local/global 3x3 convs); everything else, the other backbone
# arguments included, is digit-classifier_r50.py's.
_base_ = './digit-classifier_r50.py'

model = dict(backbone=dict(type='convdense.ACNet', mode='dataset'))
