# ResNet-50 (V1c) baseline: upstream DeepLabV3 with a dilated backbone (output stride 8:
# strides (1, 2, 1, 1), dilations (1, 1, 2, 4)) on ADE20K, trained from scratch unless a
# local checkpoint is given (the upstream open-mmlab:// weights would download).
# SyncBN as upstream; mmengine reverts it to BN in a single-process run.
_base_ = 'mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['convdense'], allow_failed_imports=False)

model = dict(pretrained=None)

# convdense.CheckSegLabels after LoadAnnotations: a label outside the classes fails, naming the PNG.
from convdense.datasets.upstream_checks import checked_seg_pipelines  # noqa: E402

train_pipeline, test_pipeline = checked_seg_pipelines(_base_)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
