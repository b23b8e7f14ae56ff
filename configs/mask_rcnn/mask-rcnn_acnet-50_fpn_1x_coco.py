# Mask R-CNN with the paper's dataset-aware ACNet-ResNet50 (adaptive self/local/global
# 3x3 convs), started from the official tensorpack ImageNet release converted by
#   python tools/model_converters/acnet_tensorpack.py acnet_resnet50.npz checkpoints/acnet50_dataset.pth
# (github.com/wanggrun/Adaptively-Connected-Neural-Networks). strided_padding='tf_same'
# pads the strided layers as TensorFlow did in training, which its weights need
# (docs/model_zoo.md). The rest of the backbone settings (out_indices, frozen_stages=1,
# norm_eval=True) and everything else come from the ResNet-50 baseline. The pixel-aware
# ACNet has no converted release: configs/scratch/.
_base_ = './mask-rcnn_r50_fpn_1x_coco.py'

model = dict(backbone=dict(
    type='convdense.ACNet', mode='dataset', strided_padding='tf_same',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/acnet50_dataset.pth')))
