# What the from-scratch ADE20K configs share, as new keys their configs read: upstream's
# 160k-iteration schedule (mmseg::_base_/schedules/schedule_160k.py: the 80k one's, twice
# as long; a network trained from scratch needs more iterations than a fine-tuned one),
# and the backbone settings of the recipe: upstream ResNetV1c's deep stem, SyncBN (written
# out: {{_base_.norm_cfg}} carries mmseg's _scope_ key, which mmcv's build_norm_layer would
# pass on to SyncBatchNorm), nothing frozen, norms trained, no weights.
scratch_train_cfg = dict(max_iters=160000, val_interval=16000)
scratch_param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=160000,
                                by_epoch=False)]
scratch_checkpoint_interval = 16000
scratch_backbone = dict(
    deep_stem=True, out_indices=(0, 1, 2, 3), norm_cfg=dict(type='SyncBN', requires_grad=True),
    norm_eval=False, style='pytorch', init_cfg=None)
