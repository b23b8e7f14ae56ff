# Mask R-CNN R-50-FPN on the digit scenes (tools/make_digit_scenes.py): 128x128 real
# MNIST digits on photographs, 10 classes. The convdense configs beside this one
# change model.backbone only; schedule, seed, batch and pipeline are these.
# Sized for a CPU: the RoI heads, not the backbone, dominate a small image, so
# proposals and sampled RoIs are cut to what 2-5 digits need. The mask head is
# upstream's (4 convs x 256): a 2 x 128 head left val mask AP near zero after 300
# iterations where this one learns (benchmarks/results/digit_scenes_recipe.json).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['convdense'], allow_failed_imports=False)

data_root = 'data/digit_scenes/'
image_size = (128, 128)
metainfo = dict(
    classes=('0', '1', '2', '3', '4', '5', '6', '7', '8', '9'),
    palette=[(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
             (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)])

model = dict(
    # Trained from scratch (or from a digit-classifier checkpoint via init_cfg):
    # nothing frozen, BN in training mode.
    backbone=dict(_delete_=True, type='mmdet.ResNet', depth=50, num_stages=4,
                  out_indices=(0, 1, 2, 3), frozen_stages=-1,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
                  style='pytorch', init_cfg=None),
    roi_head=dict(
        # 2x2 samples per RoIAlign bin (upstream: adaptive, up to the RoI's size /
        # bin: mmcv's CPU RoIAlign backward then costs more than the bbox head)
        bbox_roi_extractor=dict(roi_layer=dict(sampling_ratio=2)),
        mask_roi_extractor=dict(roi_layer=dict(sampling_ratio=2)),
        bbox_head=dict(num_classes=10),
        mask_head=dict(num_classes=10)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(sampler=dict(num=32, pos_fraction=0.25))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    # no flips: a mirrored digit is another glyph
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor')),
]


# mmdet's CocoDataset checked before loading (convdense.datasets.upstream_checks):
# a malformed json or a missing image is a one-line error; same samples otherwise.
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    # infinite: mmengine's iteration loop sleeps 2 s at every pass over a finite sampler
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='convdense.CheckedCocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='images/train/'), pipeline=train_pipeline,
                 filter_cfg=dict(filter_empty_gt=True, min_size=8)))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(type='convdense.CheckedCocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='images/val/'), pipeline=test_pipeline, test_mode=True))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], ann_file='annotations/instances_test.json',
                 data_prefix=dict(img='images/test/')))
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json', metric=['bbox', 'segm'])
test_evaluator = dict(ann_file=data_root + 'annotations/instances_test.json', metric=['bbox', 'segm'])

max_iters = 3000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# AdamW (as the classifier pre-training and the over-fit tests); SGD at mmdet's 0.02
# is tuned for batch 16 from ImageNet weights, not batch 4 from a digit classifier.
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=3e-4, weight_decay=0.05),
                     clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=200),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75), int(max_iters * 0.9)], gamma=0.1),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=1,
                    save_best='coco/bbox_mAP', rule='greater'))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False)
