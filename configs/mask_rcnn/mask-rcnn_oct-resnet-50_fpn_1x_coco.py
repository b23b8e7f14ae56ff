# Mask R-CNN with the paper's Oct-ResNet-50 (alpha=0.5 in stages 1-3, last stage plain),
# started from d-li14/octconv.pytorch's ImageNet release converted by
#   python tools/model_converters/oct_resnet_dli14.py oct_resnet50_cosine.pth checkpoints/oct_resnet50_a0.5.pth
# strided_downsample='avgpool' runs stride-2 convs as the release does (pool, then
# conv), which its weights need (docs/model_zoo.md). The rest of the backbone settings
# (out_indices, frozen_stages=1, norm_eval=True) and everything else come from the
# ResNet-50 baseline. From scratch: configs/scratch/.
_base_ = './mask-rcnn_r50_fpn_1x_coco.py'

model = dict(backbone=dict(
    type='convdense.OctResNet', alpha=0.5, strided_downsample='avgpool',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/oct_resnet50_a0.5.pth')))
