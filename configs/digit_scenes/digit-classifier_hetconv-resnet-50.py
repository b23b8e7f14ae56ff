# The digit classifier (pre-training) on the digit scenes with the paper's HetConv ResNet-50
# (P=4 in every bottleneck 3x3 conv); everything else, the other backbone arguments
# included, is digit-classifier_r50.py's.
_base_ = './digit-classifier_r50.py'

model = dict(backbone=dict(type='convdense.HetConvResNet', part=4))
