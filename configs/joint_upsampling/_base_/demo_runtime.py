_base_ = ['./runtime.py']
# A few CPU minutes instead of the paper's days: a 10x larger learning rate
# than the paper's 1e-4 and one x0.1 step late in the run. The model is scored
# on the validation split every 100 iterations and the best of those checkpoints
# (lowest validation error) is the one tested.
max_iters = 500
val_interval = 100
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[int(max_iters * 0.8)], gamma=0.1)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1,
                    save_last=True, save_best='auto', rule='less'))
