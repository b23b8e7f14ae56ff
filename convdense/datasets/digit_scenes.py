"""Digit crops cut from the digit scenes, for pre-training a backbone as a digit
classifier before detection and segmentation (the small-scale analogue of
ImageNet -> COCO pre-training). The crops come from one split's scenes, so a
classifier trained on the train split has seen only train digits."""
import json
import os.path as osp

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from PIL import Image

from ..registry import DATASETS, TRANSFORMS
from .upstream_checks import check_coco_file


@DATASETS.register_module()
class DigitCropDataset(BaseDataset):
    """One sample per instance of a COCO json (``ann_file``): the image path, the
    digit's box (x, y, w, h) and its class (``category_id - 1``). Images are looked
    up under ``data_prefix['img']``, as mmdet's ``CocoDataset`` does. The json and
    its images are checked first (:func:`~.upstream_checks.check_coco_file`): a
    malformed file is a one-line error naming it, not a ``KeyError``."""

    METAINFO = dict(classes=tuple(str(digit) for digit in range(10)))

    def __init__(self, ann_file, data_prefix=dict(img=''), **kwargs):
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def load_data_list(self):
        prefix = self.data_prefix.get('img', '')
        check_coco_file(self.ann_file, prefix, with_mask=False)
        with open(self.ann_file) as f:
            coco = json.load(f)
        images = {image['id']: image for image in coco['images']}
        return [dict(img_path=osp.join(prefix, images[ann['image_id']]['file_name']),
                     bbox=[float(v) for v in ann['bbox']], gt_label=int(ann['category_id']) - 1)
                for ann in coco['annotations']]


@TRANSFORMS.register_module()
class LoadDigitCrop(BaseTransform):
    """Read the image and cut the square of side ``context`` x the box's longer side
    centred on the box (zero-padded past the border), resized to ``crop_size``.
    Packs ``inputs`` (uint8 tensor 3 x crop_size x crop_size, RGB) and
    ``data_samples`` (the class index)."""

    def __init__(self, crop_size=64, context=1.25):
        if crop_size < 8 or context < 1:
            raise ValueError(f'crop_size must be >= 8 and context >= 1, got {crop_size}, {context}')
        self.crop_size = crop_size
        self.context = context

    def transform(self, results):
        image = np.asarray(Image.open(results['img_path']).convert('RGB'))
        x, y, w, h = results['bbox']
        side = max(1, int(round(max(w, h) * self.context)))
        x0, y0 = int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2))
        crop = np.zeros((side, side, 3), np.uint8)
        height, width = image.shape[:2]
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
        crop[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
        crop = Image.fromarray(crop).resize((self.crop_size, self.crop_size), Image.BILINEAR)
        return dict(inputs=torch.from_numpy(np.asarray(crop).copy()).permute(2, 0, 1).contiguous(),
                    data_samples=results['gt_label'])
