# Mask R-CNN with Oct-ResNet-50 (alpha = 0.5) compound-scaled as EfficientNet does, phi = 1:
# blocks per stage x 1.2 rounded up, widths x 1.1 rounded to a multiple of 8, image
# scale x 1.15 rounded to a multiple of 32 (convdense.models.scaling, docs/scaling.md).
# compound_scale computes the backbone and its output channels when the config is
# read; model_overrides writes them into the FPN's in_channels, the image scales
# follow through scale_pipeline. Nothing below is a hand-typed width or size.
_base_ = '../mask_rcnn/mask-rcnn_oct-resnet-50_fpn_1x_coco.py'

from convdense.models.scaling import compound_scale, scale_pipeline  # noqa: E402

_scaled = compound_scale(_base_.model.backbone, phi=1)
model = _scaled.model_overrides(_base_.model)
train_dataloader = dict(dataset=dict(
    pipeline=scale_pipeline(_base_.train_pipeline, _scaled.resolution)))
val_dataloader = dict(dataset=dict(
    pipeline=scale_pipeline(_base_.test_pipeline, _scaled.resolution)))
test_dataloader = val_dataloader
del _scaled  # config values must be plain data
