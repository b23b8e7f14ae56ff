# ResNet-50 baseline: upstream DeepLabV3 with a dilated backbone (output stride 8:
# strides (1, 2, 1, 1), dilations (1, 1, 2, 4)) on ADE20K, with the plain 7x7 stem
# (mmseg's ResNet instead of upstream's deep-stem ResNetV1c), started from torchvision's
# ImageNet ResNet-50 (torchvision://resnet50, downloaded by mmengine): the stem the
# Oct-ResNet, ACNet and HetConv releases have (see upernet_r50_ade20k.py). Nothing
# frozen, norms trained (SyncBN), as upstream; mmengine reverts SyncBN to BN in a
# single-process run. From scratch: configs/scratch/.
_base_ = 'mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['convdense'], allow_failed_imports=False)

model = dict(pretrained='torchvision://resnet50', backbone=dict(type='ResNet'))

# convdense.CheckSegLabels after LoadAnnotations: a label outside the classes fails, naming the PNG.
from convdense.datasets.upstream_checks import checked_seg_pipelines  # noqa: E402

train_pipeline, test_pipeline = checked_seg_pipelines(_base_)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
