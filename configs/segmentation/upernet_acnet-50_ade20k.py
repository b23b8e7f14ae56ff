# UPerNet on ADE20K with a dataset-aware ACNet-ResNet50 backbone, started from
# the official tensorpack ImageNet release (plain stem, as the baseline's),
# converted by
#   python tools/model_converters/acnet_tensorpack.py acnet_resnet50.npz checkpoints/acnet50_dataset.pth
# (github.com/wanggrun/Adaptively-Connected-Neural-Networks); strided_padding='tf_same'
# pads the strided layers as TensorFlow did in training (docs/model_zoo.md).
# Nothing frozen, norms trained, as the baseline.
_base_ = './upernet_r50_ade20k.py'
# norm_cfg is written out: {{_base_.norm_cfg}} carries mmseg's _scope_ key,
# which mmcv's build_norm_layer would pass on to SyncBatchNorm. model.pretrained
# (the baseline's torchvision weights) is reset: init_cfg names this backbone's.

model = dict(pretrained=None, backbone=dict(
    _delete_=True, type='convdense.ACNet', depth=50, mode='dataset', strided_padding='tf_same',
    out_indices=(0, 1, 2, 3), strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1),
    norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False, style='pytorch',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/acnet50_dataset.pth')))
