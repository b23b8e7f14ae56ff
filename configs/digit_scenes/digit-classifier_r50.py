# Pre-training step of the digit-scene recipe: the detection/segmentation backbone
# (mmdet's ResNet-50, same arguments) as a digit classifier on 64x64 crops around the
# digits of the train scenes; val crops pick the best checkpoint, test crops give
# top-1. The convdense configs beside this one change model.backbone only.
# Its checkpoint initialises Mask R-CNN and Semantic FPN:
#   --cfg-options model.backbone.init_cfg.type=Pretrained \
#       model.backbone.init_cfg.checkpoint=CKPT model.backbone.init_cfg.prefix=backbone.
default_scope = 'convdense'
custom_imports = dict(imports=['convdense', 'convdense.datasets.digit_scenes',
                               'convdense.models.digit_classifier'],
                      allow_failed_imports=False)

data_root = 'data/digit_scenes/'
crop_size = 64
model = dict(
    type='DigitClassifier', num_classes=10, in_channels=2048,
    backbone=dict(type='mmdet.ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
                  frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True),
                  norm_eval=False, style='pytorch', init_cfg=None))

pipeline = [dict(type='LoadDigitCrop', crop_size=crop_size)]
train_dataloader = dict(
    batch_size=32, num_workers=0, sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='DigitCropDataset', data_root=data_root,
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='images/train/'), pipeline=pipeline))
val_dataloader = dict(
    batch_size=64, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='DigitCropDataset', data_root=data_root,
                 ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='images/val/'), pipeline=pipeline))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], ann_file='annotations/instances_test.json',
                 data_prefix=dict(img='images/test/')))
val_evaluator = dict(type='DigitAccuracy')
test_evaluator = val_evaluator

max_iters = 600
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=200)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# AdamW: SGD at lr 0.1 (batch 32) diverged in its first 30 iterations (loss 2.3 -> 8);
# AdamW at 1e-3 is what the over-fit tests (tests/helpers/e2e.py) train with.
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=1e-4, by_epoch=False, begin=0,
         end=max_iters),
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=1,
                    save_best='digits/top1', rule='greater'))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
