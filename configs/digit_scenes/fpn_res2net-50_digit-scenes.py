# Semantic FPN on the digit scenes with the paper's Res2Net-50 (26w x 4s, plain stem);
# everything else, the other backbone arguments included, is fpn_r50_digit-scenes.py's.
_base_ = './fpn_r50_digit-scenes.py'

model = dict(backbone=dict(type='convdense.Res2Net', scales=4, base_width=26))
