# ResNet-50 Mask R-CNN from scratch with SyncBN instead of GN in the backbone, FPN and
# heads (the other normalisation "Rethinking ImageNet Pre-training" trains from
# scratch with); otherwise upstream's GN recipe (nothing frozen, norms trained, no
# weights, 6x). It is the baseline of the backbones whose widths GN's 32 groups do not
# divide: Res2Net (26-channel splits) and the compound-scaled networks (configs/scaling/).
# mmengine reverts SyncBN to BN in a single-process run.
_base_ = './mask-rcnn_r50-scratch_fpn_gn-all_6x_coco.py'

# _delete_: replaced, not merged into the GN dicts (whose num_groups SyncBN rejects);
# dict(norm_cfg) gives each place its own copy, as merging consumes the _delete_ key.
norm_cfg = dict(_delete_=True, type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(norm_cfg=dict(norm_cfg)),
    neck=dict(norm_cfg=dict(norm_cfg)),
    roi_head=dict(bbox_head=dict(norm_cfg=dict(norm_cfg)),
                  mask_head=dict(norm_cfg=dict(norm_cfg))))
