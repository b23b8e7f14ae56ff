# Mask R-CNN with the Res2Net-50 (26w x 4s, plain stem) trained from scratch as the SyncBN
# ResNet-50 recipe it inherits: SyncBN in the backbone, FPN and heads, nothing frozen,
# norms trained, no weights, the 6x schedule. Only the backbone type and its arguments change.
# Not GN: its 32 groups do not divide Res2Net's 26-channel splits (nor the 104 channels
# that feed them), and no group count divides all of Res2Net-50's widths but 1 and 2.
_base_ = './mask-rcnn_r50-scratch_fpn_syncbn-all_6x_coco.py'

model = dict(backbone=dict(type='convdense.Res2Net', scales=4, base_width=26))
