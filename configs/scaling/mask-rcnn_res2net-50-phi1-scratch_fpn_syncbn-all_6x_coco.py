# Mask R-CNN with Res2Net-50 (26w x 4s) compound-scaled as EfficientNet does, phi = 1:
# blocks per stage x 1.2 rounded up, widths x 1.1 rounded to a multiple of 8, image
# scale x 1.15 rounded to a multiple of 32 (convdense.models.scaling, docs/scaling.md).
# compound_scale_config computes them from the base config when this file is read:
# the backbone, the FPN's in_channels that follow its widths, and the scaled image
# scales of the train/val/test pipelines. Nothing below is a hand-typed width or size.
# No ImageNet weights exist for a scaled network, so it trains from scratch as its base
# does: SyncBN in the backbone, FPN and heads (GN's 32 groups do not divide the scaled
# widths, e.g. 72), nothing frozen, norms trained, the 6x schedule.
_base_ = '../scratch/mask-rcnn_res2net-50-scratch_fpn_syncbn-all_6x_coco.py'

from convdense.models.scaling import compound_scale_config  # noqa: E402

model, train_dataloader, val_dataloader, test_dataloader = compound_scale_config(_base_, phi=1)
