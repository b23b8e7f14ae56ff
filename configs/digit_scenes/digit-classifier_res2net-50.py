# The digit classifier (pre-training) on the digit scenes with the paper's Res2Net-50 (26w x
# 4s, plain stem); everything else, the other backbone arguments included, is digit-
# classifier_r50.py's.
_base_ = './digit-classifier_r50.py'

model = dict(backbone=dict(type='convdense.Res2Net', scales=4, base_width=26))
