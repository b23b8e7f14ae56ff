# Shared runtime for joint upsampling: iteration-based training with mmengine's Runner.
default_scope = 'convdense'
custom_imports = dict(imports=['convdense'], allow_failed_imports=False)

model = dict(type='JointUpsampler', net=dict(type='PacJointUpsample', factor=8))

# The reference protocol: Adam 1e-4, batch 1, l2 on normalised targets, a long
# schedule with x0.1 steps (here 500 epochs of NYU's 1000 training images).
train_cfg = dict(type='IterBasedTrainLoop', max_iters=500_000, val_interval=50_000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, milestones=[300_000, 400_000], gamma=0.1)
]

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=50_000, max_keep_ckpts=2,
                    save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # a diverged run stops with one line instead of training on NaN
    finite_loss=dict(type='StopOnNonFiniteLoss'),
)
custom_hooks = [dict(type='JointUpsamplingPanelHook', max_panels=4)]
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'),
               dist_cfg=dict(backend='gloo'))
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
