# ResNet-50 baseline: upstream UPerNet on ADE20K with the plain 7x7 stem (mmseg's
# ResNet instead of upstream's deep-stem ResNetV1c), started from torchvision's
# ImageNet ResNet-50 (torchvision://resnet50, downloaded by mmengine). The plain stem is
# the one the Oct-ResNet, ACNet and HetConv releases have (HetConv starts from these
# same weights), so those comparisons differ only in the blocks; the Res2Net config
# keeps its v1b release's deep stem (see it). Nothing frozen, norms trained (SyncBN),
# as upstream; mmengine reverts SyncBN to BN in a single-process run.
# From scratch: configs/scratch/upernet_r50-scratch_4xb4-160k_ade20k-512x512.py.
_base_ = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['convdense'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(pretrained='torchvision://resnet50', backbone=dict(type='ResNet'))

# convdense.CheckSegLabels after LoadAnnotations: a label outside the classes fails, naming the PNG.
from convdense.datasets.upstream_checks import checked_seg_pipelines  # noqa: E402

train_pipeline, test_pipeline = checked_seg_pipelines(_base_)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
