"""Input checks for the upstream (mmdet COCO, mmseg) datasets.

mmdet and mmseg read malformed data without a word: a COCO annotation without
``bbox`` is a ``KeyError`` deep inside ``parse_data_info``, a negative box or a
polygon with fewer than 3 points is silently dropped, a missing image shows up
hours later, and a segmentation label outside ``num_classes`` is silently
left out of ``IoUMetric``'s histogram (a wrong mIoU) or crashes the loss. The
checks here fail early with a one-line ``DataError`` (a ``ValueError``) naming the file and what
was expected, or skip what mmdet legitimately skips and say how many in the log.

``CheckedCocoDataset`` (``type='convdense.CheckedCocoDataset'``) is mmdet's
``CocoDataset`` with :func:`check_coco_file` run before loading;
``CheckSegLabels`` (``type='convdense.CheckSegLabels'``) goes right after mmseg's
``LoadAnnotations`` in a pipeline; :func:`with_seg_label_check` puts it there in
a pipeline inherited from an upstream ``_base_`` config.
"""
import functools
import json
import logging
import math
import os.path as osp

import numpy as np

from ..errors import DataError
from ..registry import DATASETS, TRANSFORMS

_IMAGE_KEYS = ('id', 'file_name', 'width', 'height')
_ANNOTATION_KEYS = ('id', 'image_id', 'category_id', 'bbox', 'area')

#: What :func:`check_coco_file` skips (as mmdet does) instead of failing, with the reason.
COCO_SKIPS = {
    'zero_size_box': 'box narrower or lower than 1 px, or of zero area (mmdet drops it)',
    'box_outside_image': 'box does not overlap its image (mmdet drops it)',
    'short_polygon': 'polygon with fewer than 3 points (mmdet drops it; an instance left '
                     'without a polygon is ignored in training)',
}


def _load_json(path):
    if not osp.isfile(path):
        raise DataError(f'{path}: no such annotation file')
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(f'{path}: not valid JSON ({exc})') from None


def _check_polygons(path, ann, skipped):
    segmentation = ann['segmentation']
    if isinstance(segmentation, dict):  # RLE (crowd regions)
        if 'counts' not in segmentation or 'size' not in segmentation:
            raise DataError(f"{path}: annotation {ann['id']}: RLE segmentation needs "
                            f"'counts' and 'size', got keys {sorted(segmentation)}")
        return
    if not isinstance(segmentation, list):
        raise DataError(f"{path}: annotation {ann['id']}: segmentation must be a list of "
                        f'polygons or an RLE dict, got {type(segmentation).__name__}')
    for polygon in segmentation:
        if not isinstance(polygon, list) or len(polygon) % 2:
            raise DataError(f"{path}: annotation {ann['id']}: a polygon must be a flat list "
                            f'of x, y pairs, got {str(polygon)[:60]}')
        if len(polygon) < 6:
            skipped['short_polygon'] += 1


def check_coco_file(path, image_dir=None, with_mask=True, class_names=None):
    """Check a COCO instances file (and that its images exist) before mmdet reads it.

    Args:
        path: the annotation json.
        image_dir: folder the ``file_name`` entries are relative to; ``None``
            skips the image-file check (e.g. for remote storage).
        with_mask: every non-crowd annotation needs a ``segmentation``.
        class_names: the dataset's classes; annotations of other categories are
            skipped by mmdet on purpose and not counted. ``None``: all categories.

    Returns:
        ``dict(images=..., annotations=..., skipped={reason: count})`` with the
        reasons of :data:`COCO_SKIPS`.

    Raises:
        DataError: naming the file (and image / annotation id) and what was expected.
    """
    data = _load_json(path)
    if not isinstance(data, dict):
        raise DataError(f'{path}: expected a JSON object with images, annotations and '
                        f'categories, got a {type(data).__name__}')
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(data.get(key), list):
            raise DataError(f"{path}: missing key '{key}' (a COCO instances file has lists "
                            f"'images', 'annotations' and 'categories')")
    categories = {c.get('id') for c in data['categories'] if isinstance(c, dict)}
    class_ids = None if class_names is None else {
        c.get('id') for c in data['categories'] if c.get('name') in set(class_names)}
    images = {}
    for index, image in enumerate(data['images']):
        missing = [k for k in _IMAGE_KEYS if k not in image]
        if missing:
            raise DataError(f'{path}: images[{index}] lacks {missing} (each image needs '
                            f'{list(_IMAGE_KEYS)})')
        images[image['id']] = image
    skipped = dict.fromkeys(COCO_SKIPS, 0)
    for index, ann in enumerate(data['annotations']):
        missing = [k for k in _ANNOTATION_KEYS if k not in ann]
        if with_mask and not ann.get('iscrowd') and 'segmentation' not in ann:
            missing.append('segmentation')
        if missing:
            name = f"annotation {ann['id']}" if 'id' in ann else f'annotations[{index}]'
            raise DataError(f'{path}: {name} lacks {missing} (each annotation needs '
                            f"{list(_ANNOTATION_KEYS)}{' and segmentation' if with_mask else ''})")
        name = f"annotation {ann['id']}"
        if ann['image_id'] not in images:
            raise DataError(f"{path}: {name} refers to image_id {ann['image_id']}, which is "
                            f"not in 'images'")
        if ann['category_id'] not in categories:
            raise DataError(f"{path}: {name} has category_id {ann['category_id']}, which is "
                            f"not in 'categories'")
        box = ann['bbox']
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box)):
            raise DataError(f'{path}: {name}: bbox must be 4 finite numbers [x, y, w, h], '
                            f'got {box!r}')
        x, y, w, h = box
        if w < 0 or h < 0:
            raise DataError(f'{path}: {name}: bbox {box} has a negative width or height '
                            f'(COCO boxes are [x, y, w, h] with w, h >= 0)')
        if class_ids is not None and ann['category_id'] not in class_ids:
            continue
        image = images[ann['image_id']]
        if min(x + w, image['width']) - max(x, 0) <= 0 or \
                min(y + h, image['height']) - max(y, 0) <= 0:
            skipped['box_outside_image'] += 1
        elif w < 1 or h < 1 or ann['area'] <= 0:
            skipped['zero_size_box'] += 1
        if with_mask and 'segmentation' in ann:
            _check_polygons(path, ann, skipped)
    if image_dir is not None:
        absent = [osp.join(image_dir, image['file_name']) for image in images.values()
                  if not osp.isfile(osp.join(image_dir, image['file_name']))]
        if absent:
            raise DataError(f'{path}: {len(absent)} of {len(images)} image files are missing, '
                            f'first {absent[0]}')
    return dict(images=len(images), annotations=len(data['annotations']), skipped=skipped)


@functools.lru_cache(maxsize=None)
def _checked_coco_dataset_class():
    """The subclass of mmdet's ``CocoDataset``, made on first use so that
    importing convdense's datasets does not import mmdet."""
    from mmdet.datasets import CocoDataset
    from mmengine.logging import print_log
    from mmengine.registry import DefaultScope

    class CheckedCocoDataset(CocoDataset):
        __doc__ = _CheckedCocoDatasetEntry.__doc__

        def __init__(self, *args, with_mask=True, **kwargs):
            self.with_mask = with_mask
            with DefaultScope.overwrite_default_scope('mmdet'):
                super().__init__(*args, **kwargs)

        def load_data_list(self):
            image_dir = self.data_prefix.get('img')
            if image_dir is not None and '://' in str(image_dir):
                image_dir = None  # remote storage: mmdet's loader reports a missing file
            report = check_coco_file(self.ann_file, image_dir, self.with_mask,
                                     self.metainfo.get('classes'))
            skips = [f'{n} x {COCO_SKIPS[reason]}' for reason, n in report['skipped'].items() if n]
            if skips:
                print_log(f"{self.ann_file}: skipped {'; '.join(skips)}", logger='current',
                          level=logging.WARNING)
            return super().load_data_list()

    return CheckedCocoDataset


@DATASETS.register_module('CheckedCocoDataset')
class _CheckedCocoDatasetEntry:
    """mmdet's ``CocoDataset`` that runs :func:`check_coco_file` (images included)
    before loading and logs what mmdet skips, with counts. ``with_mask``
    (default True): non-crowd annotations need a ``segmentation``. The pipeline
    is built in the mmdet scope, so an mmdet config only changes the dataset's
    ``type`` to ``'convdense.CheckedCocoDataset'``."""

    def __new__(cls, *args, **kwargs):
        return _checked_coco_dataset_class()(*args, **kwargs)


@TRANSFORMS.register_module()
class CheckSegLabels:
    """Fail on a segmentation label that is neither a class nor the ignore index.

    Put it right after mmseg's ``LoadAnnotations``: ``results['gt_seg_map']`` then
    holds training labels (after ``reduce_zero_label``), which must lie in
    ``[0, num_classes)`` or equal ``ignore_index``. Anything else would be
    dropped from ``IoUMetric``'s histogram without a word (a wrong mIoU) or
    crash the cross-entropy loss far from the file that caused it. A sample
    without labels (an inference pipeline) passes unchecked.

    Args:
        num_classes: the decode head's number of classes (150 for ADE20K).
        ignore_index: the label excluded from loss and metric (mmseg: 255).
    """

    def __init__(self, num_classes, ignore_index=255):
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes must be a positive int, got {num_classes!r}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def __call__(self, results):
        if 'gt_seg_map' not in results:
            # inference pipelines (mmseg's inferencer, the CAM tools) drop
            # LoadAnnotations: there is nothing to check
            return results
        labels = np.asarray(results['gt_seg_map'])
        values = np.unique(labels)
        bad = values[((values < 0) | (values >= self.num_classes)) & (values != self.ignore_index)]
        if bad.size:
            name = results.get('seg_map_path', 'segmentation map')
            shift = ' (after reduce_zero_label: stored value - 1)' \
                if results.get('reduce_zero_label') else ''
            raise DataError(f'{name}: labels {bad[:8].tolist()}{shift} are outside 0..'
                            f'{self.num_classes - 1} and not the ignore index {self.ignore_index}')
        return results

    def __repr__(self):
        return f'{type(self).__name__}(num_classes={self.num_classes}, ignore_index={self.ignore_index})'


def with_seg_label_check(pipeline, num_classes, ignore_index=255):
    """A copy of ``pipeline`` (transform config dicts) with ``CheckSegLabels``
    right after each ``LoadAnnotations``, so that a config inheriting an upstream
    pipeline adds the check without restating the pipeline. Idempotent: checks
    already in ``pipeline`` are replaced."""
    checked = []
    for step in pipeline:
        if str(step.get('type', '')).split('.')[-1] == 'CheckSegLabels':
            continue
        checked.append(step)
        if str(step.get('type', '')).split('.')[-1] == 'LoadAnnotations':
            checked.append(dict(type='convdense.CheckSegLabels', num_classes=num_classes,
                                ignore_index=ignore_index))
    return checked


def checked_seg_pipelines(base):
    """``(train_pipeline, test_pipeline)`` of an mmseg config's ``_base_`` with
    :class:`CheckSegLabels` added for its decode head's classes and ignore index:
    what an ADE20K config here writes to keep upstream's pipelines and add the check."""
    head = base.model.decode_head
    num_classes, ignore_index = head.num_classes, head.get('ignore_index', 255)
    return (with_seg_label_check(base.train_pipeline, num_classes, ignore_index),
            with_seg_label_check(base.test_pipeline, num_classes, ignore_index))

