# ResNet-50 (V1c) baseline: upstream UPerNet on ADE20K, trained from scratch unless
# a local checkpoint is given (the upstream open-mmlab:// weights would download).
# SyncBN as upstream; mmengine reverts it to BN in a single-process run.
_base_ = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['convdense'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(pretrained=None)

# convdense.CheckSegLabels after LoadAnnotations: a label outside the classes fails, naming the PNG.
from convdense.datasets.upstream_checks import checked_seg_pipelines  # noqa: E402

train_pipeline, test_pipeline = checked_seg_pipelines(_base_)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
