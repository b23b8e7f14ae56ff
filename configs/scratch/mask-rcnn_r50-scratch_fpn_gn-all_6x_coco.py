# ResNet-50 Mask R-CNN trained from scratch, upstream's recipe as it is (He et al.,
# "Rethinking ImageNet Pre-training", ICCV 2019): GN in the backbone, FPN and heads,
# nothing frozen (frozen_stages=-1), norms trained, no weights (init_cfg=None), the 6x
# schedule (73 epochs). Only the datasets are convdense's checked COCO dataset.
_base_ = 'mmdet::scratch/mask-rcnn_r50-scratch_fpn_gn-all_6x_coco.py'
custom_imports = dict(imports=['convdense'], allow_failed_imports=False)

# Upstream keeps its base model's norm_eval=True, a no-op with GN (it only puts BatchNorm
# in eval mode); False here, as every backbone without weights must have (checked for
# every config by tests/reliability/test_checked_configs.py), so that swapping in BN
# (the SyncBN configs here) trains the norms.
model = dict(backbone=dict(norm_eval=False))

train_dataloader = dict(dataset=dict(type='convdense.CheckedCocoDataset'))
val_dataloader = dict(dataset=dict(type='convdense.CheckedCocoDataset'))
test_dataloader = dict(dataset=dict(type='convdense.CheckedCocoDataset'))
