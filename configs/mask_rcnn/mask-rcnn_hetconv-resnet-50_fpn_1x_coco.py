# Mask R-CNN with the paper's HetConv ResNet-50 (P=4 in every bottleneck 3x3 conv).
# No HetConv ImageNet weights were ever released: it starts from the baseline's own
# torchvision ResNet-50 weights, inflated to HetConv (each filter keeps its 3x3 kernels
# on its own input block and the centre taps elsewhere) by
#   python tools/model_converters/resnet_to_hetconv.py resnet50-0676ba61.pth checkpoints/hetconv_r50_p4.pth --part 4
# (resnet50-0676ba61.pth: https://download.pytorch.org/models/resnet50-0676ba61.pth).
# The rest of the backbone settings (out_indices, frozen_stages=1, norm_eval=True) and
# everything else come from the ResNet-50 baseline. From scratch: configs/scratch/.
_base_ = './mask-rcnn_r50_fpn_1x_coco.py'

model = dict(backbone=dict(
    type='convdense.HetConvResNet', part=4,
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/hetconv_r50_p4.pth')))
