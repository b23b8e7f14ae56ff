"""A backbone as a digit classifier (backbone -> global average pool -> fc), and
its top-1 metric: the pre-training step of the digit-scene recipe. The backbone
dict is the detection/segmentation configs' own, so ``backbone.*`` of a
classifier checkpoint initialises their backbones (``init_cfg`` with
``prefix='backbone.'``)."""
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from torch import nn

from ..registry import METRICS, MODELS, build_model


@MODELS.register_module()
class DigitClassifier(BaseModel):
    """``backbone`` (any config dict returning a feature tuple), global average
    pooling of its last output (``in_channels`` wide), one linear layer.

    ``forward(inputs [B, 3, H, W], data_samples=[class index, ...], mode)``:
    ``'loss'`` gives the cross-entropy, ``'predict'`` a list of
    ``dict(pred=..., gt=...)``, ``'tensor'`` the logits [B, num_classes].
    """

    def __init__(self, backbone, num_classes=10, in_channels=2048, data_preprocessor=None,
                 init_cfg=None):
        if data_preprocessor is None:
            # RGB crops, normalised as the detection/segmentation configs normalise
            data_preprocessor = dict(type='ImgDataPreprocessor', mean=[123.675, 116.28, 103.53],
                                     std=[58.395, 57.12, 57.375])
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = build_model(backbone)
        self.head = nn.Linear(in_channels, num_classes)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        logits = self.head(self.backbone(inputs)[-1].mean((2, 3)))
        if mode == 'tensor':
            return logits
        labels = torch.as_tensor(data_samples, device=logits.device)
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, labels))
        if mode == 'predict':
            return [dict(pred=int(p), gt=int(g)) for p, g in zip(logits.argmax(1), labels)]
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")


@METRICS.register_module()
class DigitAccuracy(BaseMetric):
    """Top-1 accuracy (a 0-1 fraction) of ``DigitClassifier`` predictions."""

    default_prefix = 'digits'

    def process(self, data_batch, data_samples):
        self.results.extend(int(s['pred'] == s['gt']) for s in data_samples)

    def compute_metrics(self, results):
        return dict(top1=sum(results) / max(1, len(results)))
