# Semantic FPN (mmseg's FPN neck + FPNHead) R-50 on the digit scenes
# (tools/make_digit_scenes.py): 128x128, background + 10 digit classes, label 0 is
# background (reduce_zero_label=False; 255 would be ignored, none is written).
# The backbone is the Mask R-CNN configs' one (mmdet's ResNet-50, plain stem), so a
# digit-classifier checkpoint initialises both tasks; the convdense configs beside
# this one change model.backbone only.
_base_ = ['mmseg::_base_/models/fpn_r50.py', 'mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['convdense'], allow_failed_imports=False)

data_root = 'data/digit_scenes/'
image_size = (128, 128)
metainfo = dict(
    classes=('background', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'),
    palette=[(0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
             (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60),
             (250, 190, 212)])

norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=image_size),
    pretrained=None,
    backbone=dict(_delete_=True, type='mmdet.ResNet', depth=50, num_stages=4,
                  out_indices=(0, 1, 2, 3), frozen_stages=-1,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
                  style='pytorch', init_cfg=None),
    decode_head=dict(num_classes=11, norm_cfg=norm_cfg))

# CheckSegLabels: a label PNG with a value outside 0..10 (255 aside) is a one-line
# error naming the file; mmseg's IoUMetric would leave such pixels out without a word.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='convdense.CheckSegLabels', num_classes=11),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    # no flips: a mirrored digit is another glyph
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='convdense.CheckSegLabels', num_classes=11),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
                 data_prefix=dict(img_path='images/train', seg_map_path='annotations/train'),
                 img_suffix='.png', seg_map_suffix='.png', reduce_zero_label=False,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(train_dataloader['dataset'], pipeline=test_pipeline,
                 data_prefix=dict(img_path='images/val', seg_map_path='annotations/val')))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'],
                 data_prefix=dict(img_path='images/test', seg_map_path='annotations/test')))
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

max_iters = 3000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=3e-4, weight_decay=0.05),
                     clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=200),
    dict(type='PolyLR', eta_min=1e-4, power=0.9, by_epoch=False, begin=200, end=max_iters),
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=1,
                    save_best='mIoU', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
