# The digit classifier (pre-training) on the digit scenes with the paper's Oct-ResNet-50
# (alpha=0.5 in stages 1-3, last stage plain); everything else, the other backbone arguments
# included, is digit-classifier_r50.py's.
_base_ = './digit-classifier_r50.py'

model = dict(backbone=dict(type='convdense.OctResNet', alpha=0.5))
