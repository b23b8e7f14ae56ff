# Mask R-CNN with the paper's Res2Net-50 (26w x 4s, plain stem, as the baseline's),
# started from the official ImageNet release converted by
#   python tools/model_converters/res2net.py res2net50_26w_4s-06e79181.pth checkpoints/res2net50_26w_4s.pth
# (github.com/Res2Net/Res2Net-PretrainedModels). The rest of the backbone settings
# (out_indices, frozen_stages=1, norm_eval=True) and everything else come from the
# ResNet-50 baseline. From scratch: configs/scratch/.
_base_ = './mask-rcnn_r50_fpn_1x_coco.py'

model = dict(backbone=dict(
    type='convdense.Res2Net', scales=4, base_width=26,
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/res2net50_26w_4s.pth')))
