# ResNet-50 (V1c) baseline: upstream UPerNet on ADE20K, trained from scratch unless
# a local checkpoint is given (the upstream open-mmlab:// weights would download).
# SyncBN as upstream; mmengine reverts it to BN in a single-process run.
_base_ = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['convdense'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(pretrained=None)

# Labels outside the 150 classes that are not the ignore index fail in the pipeline,
# naming the PNG (convdense.CheckSegLabels after mmseg's LoadAnnotations); mmseg's
# IoUMetric would leave them out without a word. The pipelines are otherwise upstream's.
from convdense.datasets.upstream_checks import with_seg_label_check  # noqa: E402

train_pipeline = with_seg_label_check(_base_.train_pipeline, _base_.model.decode_head.num_classes,
                                      _base_.model.decode_head.get('ignore_index', 255))
test_pipeline = with_seg_label_check(_base_.test_pipeline, _base_.model.decode_head.num_classes,
                                     _base_.model.decode_head.get('ignore_index', 255))
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
