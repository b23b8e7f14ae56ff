"""Bad data gets a one-line error naming the file and what was expected, or a
documented skip with a count in the log; never a silent wrong result."""
import json
import logging
import os
import os.path as osp
import re

import imageio.v3 as iio
import numpy as np
import pytest

from convdense.datasets.readers import read_depth, write_flow
from convdense.datasets.upstream_checks import CheckSegLabels, check_coco_file
from tests.helpers.e2e import make_tiny_ade, make_tiny_coco


def _one_line(exc_info):
    message = str(exc_info.value)
    assert '\n' not in message, message
    return message


# ---------------------------------------------------------------- COCO (mmdet)

@pytest.fixture
def coco(tmp_path):
    root = make_tiny_coco(str(tmp_path / 'coco'), n_train=2, n_val=1)
    path = osp.join(root, 'annotations', 'instances_train2017.json')
    with open(path) as f:
        data = json.load(f)

    def write(mutate):
        """Write the train json changed by ``mutate(data, image_dir)``; return (json, image_dir)."""
        broken, image_dir = json.loads(json.dumps(data)), osp.join(root, 'train2017')
        mutate(broken, image_dir)
        with open(path, 'w') as f:
            json.dump(broken, f)
        return path, image_dir
    return write


def _drop_key(key):
    return lambda data, image_dir: data.pop(key)


def _set_first_annotation(**values):
    return lambda data, image_dir: data['annotations'][0].update(values)


def _remove_bbox(data, image_dir):
    del data['annotations'][1]['bbox']


def _remove_image_file(data, image_dir):
    os.remove(osp.join(image_dir, data['images'][1]['file_name']))


@pytest.mark.parametrize('mutate, expected', [
    (_drop_key('annotations'), "missing key 'annotations'"),
    (_drop_key('images'), "missing key 'images'"),
    (_remove_bbox, r"annotation 2 lacks \['bbox'\]"),
    (_set_first_annotation(bbox=[10.0, 10.0, -5.0, 20.0]),
     r'annotation 1: bbox \[10.0, 10.0, -5.0, 20.0\] has a negative width'),
    (_set_first_annotation(bbox=[10.0, 10.0, float('nan'), 20.0]), 'bbox must be 4 finite numbers'),
    (_set_first_annotation(image_id=99), 'annotation 1 refers to image_id 99'),
    (_set_first_annotation(category_id=999), 'annotation 1 has category_id 999'),
    (_set_first_annotation(segmentation=[[1.0, 2.0, 3.0]]), 'flat list of x, y pairs'),
    (_remove_image_file, r'1 of 2 image files are missing, first .*train2017/000000000002.jpg'),
], ids=['no-annotations', 'no-images', 'no-bbox', 'negative-box', 'nan-box', 'unknown-image',
        'unknown-category', 'odd-polygon', 'missing-image-file'])
def test_malformed_coco_is_one_line_naming_file_and_expectation(coco, mutate, expected):
    path, images = coco(mutate)
    with pytest.raises(ValueError) as exc_info:
        check_coco_file(path, images)
    message = _one_line(exc_info)
    assert message.startswith(path + ': '), message
    assert re.search(expected, message), message


def test_short_polygons_and_degenerate_boxes_are_counted_skips(coco):
    def degrade(data, image_dir):
        data['annotations'][0]['segmentation'] = [[1.0, 2.0, 3.0, 4.0]]  # 2 points
        data['annotations'][1]['bbox'][2] = 0.5  # narrower than 1 px
        data['annotations'][2]['bbox'][:2] = [500.0, 500.0]  # outside the 128x96 image
    path, images = coco(degrade)
    report = check_coco_file(path, images)
    assert report['skipped'] == dict(zero_size_box=1, box_outside_image=1, short_polygon=1)
    # only the dataset's classes count (make_tiny_coco draws persons and cars)
    assert check_coco_file(path, images, class_names=['bicycle'])['skipped'] == \
        dict(zero_size_box=0, box_outside_image=0, short_polygon=0)


@pytest.mark.slow
def test_checked_coco_dataset_errors_where_mmdet_is_silent_and_logs_skips(coco):
    from mmdet.datasets import CocoDataset
    from mmengine.logging import MMLogger

    from convdense.registry import DATASETS
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_mask=True)]

    def build(type_name, path):
        return DATASETS.build(dict(type=type_name, data_root=osp.dirname(osp.dirname(path)),
                                   ann_file='annotations/instances_train2017.json',
                                   data_prefix=dict(img='train2017/'), pipeline=pipeline))

    path, _ = coco(_set_first_annotation(bbox=[10.0, 10.0, -5.0, 20.0]))
    silent = CocoDataset(data_root=osp.dirname(osp.dirname(path)),
                         ann_file='annotations/instances_train2017.json',
                         data_prefix=dict(img='train2017/'), pipeline=[])
    assert sum(len(silent.get_data_info(i)['instances']) for i in range(len(silent))) == 3
    with pytest.raises(ValueError, match='negative width'):
        build('convdense.CheckedCocoDataset', path)

    path, _ = coco(_set_first_annotation(segmentation=[[1.0, 2.0, 3.0, 4.0]]))
    logger, messages = MMLogger.get_current_instance(), []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger.addHandler(handler)
    try:
        dataset = build('convdense.CheckedCocoDataset', path)
    finally:
        logger.removeHandler(handler)
    assert isinstance(dataset, CocoDataset)
    assert any('skipped 1 x polygon with fewer than 3 points' in m for m in messages), messages
    sample = dataset[0]  # the pipeline was built in the mmdet scope and runs
    assert sample['gt_ignore_flags'].tolist()[0]  # mmdet ignores the instance


# ---------------------------------------------------------------- ADE20K labels (mmseg)

@pytest.mark.parametrize('stored, reported', [(200, 199), (151, 150)])
def test_seg_label_outside_num_classes_names_the_file(tmp_path, stored, reported):
    from mmseg.datasets.transforms import LoadAnnotations
    root = make_tiny_ade(str(tmp_path / 'ade'), n_train=1, n_val=0)
    png = osp.join(root, 'annotations', 'training', 'ADE_train_00000001.png')
    labels = iio.imread(png)
    labels[10:12, 10:12] = stored
    iio.imwrite(png, labels)
    results = LoadAnnotations(reduce_zero_label=True)(
        dict(seg_map_path=png, reduce_zero_label=True, seg_fields=[]))
    with pytest.raises(ValueError) as exc_info:
        CheckSegLabels(num_classes=150)(results)
    message = _one_line(exc_info)
    assert message.startswith(png + ': labels [' + str(reported) + ']'), message
    assert 'outside 0..149' in message and 'ignore index 255' in message
    # the unlabelled strip (stored 0 -> 255 after reduce_zero_label) is fine
    labels[10:12, 10:12] = 3
    iio.imwrite(png, labels)
    CheckSegLabels(num_classes=150)(LoadAnnotations(reduce_zero_label=True)(
        dict(seg_map_path=png, reduce_zero_label=True, seg_fields=[])))
    # an inference pipeline (no LoadAnnotations, e.g. mmseg's inferencer) has no labels
    unlabelled = dict(img_path='x.jpg', img_shape=(4, 4))
    assert CheckSegLabels(num_classes=150)(unlabelled) is unlabelled


def test_without_the_check_mmseg_metric_silently_drops_out_of_range_labels():
    """Why CheckSegLabels exists: IoUMetric leaves such pixels out of its histogram."""
    import torch
    from mmseg.evaluation.metrics import IoUMetric
    label = torch.tensor([[0, 1], [1, 7]])  # 7 is outside 3 classes
    pred = torch.tensor([[0, 1], [1, 2]])
    area_intersect, area_union, area_pred, area_label = IoUMetric.intersect_and_union(
        pred, label, num_classes=3, ignore_index=255)
    assert area_label.sum().item() == 3  # four labelled pixels, one silently gone


def test_check_seg_labels_arguments():
    with pytest.raises(ValueError, match='num_classes must be a positive int'):
        CheckSegLabels(num_classes=0)


# ---------------------------------------------------------------- depth, flow, pairs

@pytest.mark.parametrize('name, array, expected', [
    ('empty.npy', np.zeros((0, 5), np.float32), r'empty depth/disparity map \(shape \(0, 5\)\)'),
    ('all_nan.npy', np.full((4, 5), np.nan, np.float32), 'no valid pixel'),
    ('all_zero.npy', np.zeros((4, 5), np.float32), 'no valid pixel'),
    ('boolean.npy', np.ones((4, 5), bool), 'must hold integers or floats, got dtype bool'),
    ('complex.npy', np.ones((4, 5), np.complex64), 'got dtype complex64'),
    ('text.npy', np.array([['a', 'b']]), 'got dtype <U1'),
], ids=['empty', 'all-nan', 'all-zero', 'bool', 'complex', 'text'])
def test_bad_depth_maps_name_the_file(tmp_path, name, array, expected):
    path = str(tmp_path / name)
    np.save(path, array)
    with pytest.raises(ValueError) as exc_info:
        read_depth(path)
    message = _one_line(exc_info)
    assert message.startswith(path + ': ') and re.search(expected, message), message


def test_all_invalid_depth_png_names_the_file(tmp_path):
    path = str(tmp_path / 'disp.png')
    iio.imwrite(path, np.zeros((4, 5), np.uint16))
    with pytest.raises(ValueError, match=r'disp.png: no valid pixel .*all 0, NaN or inf'):
        read_depth(path)


def _sintel(tmp_path, flow_bytes=None, guide_size=(8, 8)):
    from convdense.datasets import SintelFlowDataset
    flow_dir = tmp_path / 'training' / 'flow' / 'alley_1'
    frame_dir = tmp_path / 'training' / 'clean' / 'alley_1'
    flow_dir.mkdir(parents=True)
    frame_dir.mkdir(parents=True)
    flow = str(flow_dir / 'frame_0001.flo')
    write_flow(flow, np.ones((8, 8, 2), np.float32))
    if flow_bytes is not None:
        with open(flow, 'rb') as f:
            data = f.read()
        with open(flow, 'wb') as f:
            f.write(flow_bytes(data))
    iio.imwrite(frame_dir / 'frame_0001.png', np.zeros(guide_size + (3,), np.uint8))
    pipeline = [dict(type=f'convdense.{name}') for name in (
        'LoadJointUpsamplingSample', 'MakeLowResolution', 'PackJointUpsamplingInputs')]
    return SintelFlowDataset(data_root=str(tmp_path), split='all', factor=2,
                             pipeline=pipeline), flow


@pytest.mark.parametrize('corrupt, expected', [
    (lambda data: b'XXXX' + data[4:], 'bad magic number'),
    (lambda data: data[:-16],
     r'truncated or corrupt .flo file \(508 bytes, a 8x8 flow needs 524\)'),
], ids=['bad-magic', 'truncated'])
def test_corrupt_flo_through_the_dataset_names_the_file(tmp_path, corrupt, expected):
    dataset, flow = _sintel(tmp_path, corrupt)
    with pytest.raises(ValueError) as exc_info:
        dataset[0]
    message = _one_line(exc_info)
    assert message.startswith(flow + ': ') and re.search(expected, message), message


def test_guide_and_target_of_different_sizes_name_the_target(tmp_path):
    dataset, flow = _sintel(tmp_path, guide_size=(8, 6))
    with pytest.raises(ValueError) as exc_info:
        dataset[0]
    assert _one_line(exc_info) == f'{flow}: guide is 8x6 but target is 8x8'
