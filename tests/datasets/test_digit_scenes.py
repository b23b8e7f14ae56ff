"""The digit-scene generator (tools/make_digit_scenes.py): masks are the visible
stroke pixels, the label maps agree with them, no digit is in two splits, and the
files load with pycocotools, mmdet's CocoDataset and mmseg's BaseSegDataset as
the digit-scene configs declare them."""
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from tests.helpers import e2e

make_digit_scenes = e2e.load_tool('make_digit_scenes')
COUNTS = (5, 3, 3)


@pytest.fixture(scope='module')
def mnist():
    return make_digit_scenes.load_mnist()


@pytest.fixture(scope='module')
def scenes(tmp_path_factory):
    return make_digit_scenes.make_digit_scenes(str(tmp_path_factory.mktemp('digits')), seed=3,
                                               scenes=COUNTS)


def _coco(root, split):
    with open(osp.join(root, 'annotations', f'instances_{split}.json')) as f:
        return json.load(f)


def test_file_is_sorted_by_class_and_split_within_each_class(mnist):
    digits, labels = mnist
    assert digits.shape == (5000, 28, 28) and digits.max() > 200
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 500))
    rows = make_digit_scenes.split_indices(labels)
    assert [len(rows[s]) for s in ('train', 'val', 'test')] == [4000, 500, 500]
    for split in rows:
        assert np.bincount(labels[rows[split]], minlength=10).tolist() == [len(rows[split]) // 10] * 10
    assert set(rows['train']).isdisjoint(rows['val']) and set(rows['train']).isdisjoint(rows['test'])
    assert set(rows['val']).isdisjoint(rows['test'])
    assert rows['val'][:50].tolist() == list(range(400, 450))  # class 0's digits 400..449


def test_no_digit_index_in_two_splits(scenes, mnist):
    _, labels = mnist
    rows = make_digit_scenes.split_indices(labels)
    used = {split: {a['digit_index'] for a in _coco(scenes, split)['annotations']}
            for split in ('train', 'val', 'test')}
    for split, indices in used.items():
        assert indices and indices <= set(rows[split].tolist()), split
    assert not used['train'] & used['val'] and not used['train'] & used['test']
    assert not used['val'] & used['test']


def test_masks_are_the_visible_stroke_pixels_and_label_map_agrees(scenes, mnist):
    """Each mask is re-derived from its MNIST digit and placement: its stroke minus
    the strokes of the digits pasted after it; the label map is 1 + digit there."""
    from pycocotools.coco import COCO
    digits, labels = mnist
    coco = COCO(osp.join(scenes, 'annotations', 'instances_test.json'))
    occluded = 0
    for image in coco.loadImgs(coco.getImgIds()):
        anns = sorted(coco.loadAnns(coco.getAnnIds(imgIds=image['id'])), key=lambda a: a['order'])
        assert 2 <= len(anns) <= 5
        strokes = []
        for ann in anns:
            _, stroke = make_digit_scenes.render_stroke(digits[ann['digit_index']], ann['angle'], ann['side'])
            canvas = np.zeros((image['height'], image['width']), bool)
            x0, y0 = ann['offset']
            canvas[y0:y0 + ann['side'], x0:x0 + ann['side']] = stroke
            strokes.append(canvas)
        label_map = np.asarray(Image.open(osp.join(scenes, 'annotations', 'test',
                                                   image['file_name'])))
        expected_map = np.zeros_like(label_map)
        for index, ann in enumerate(anns):
            visible = strokes[index].copy()
            for later in strokes[index + 1:]:
                visible &= ~later
            mask = coco.annToMask(ann).astype(bool)
            np.testing.assert_array_equal(mask, visible)
            occluded += int(strokes[index].sum() - visible.sum())
            assert mask.sum() >= 0.5 * strokes[index].sum()
            assert ann['category_id'] == labels[ann['digit_index']] + 1
            assert ann['area'] == mask.sum() and ann['iscrowd'] == 0
            ys, xs = np.nonzero(mask)
            assert ann['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            expected_map[mask] = ann['category_id']
        np.testing.assert_array_equal(label_map, expected_map)
    assert occluded > 0, 'no scene has an overlap; occlusion is untested'


def test_digits_are_drawn_on_photographs(scenes):
    """The background is a real photo, not a flat fill: thresholding the image does
    not recover the label map."""
    image = np.asarray(Image.open(osp.join(scenes, 'images', 'train', '000001.png')))
    label_map = np.asarray(Image.open(osp.join(scenes, 'annotations', 'train', '000001.png')))
    background = image[label_map == 0].astype(np.float32)
    assert background.std(0).mean() > 15
    assert set(np.unique(label_map)) - {0}


def test_same_seed_same_files_other_seed_other_scenes(scenes, tmp_path):
    again = make_digit_scenes.make_digit_scenes(str(tmp_path / 'again'), seed=3, scenes=COUNTS)
    assert _coco(again, 'val') == _coco(scenes, 'val')
    np.testing.assert_array_equal(np.asarray(Image.open(osp.join(again, 'images/val/000002.png'))),
                                  np.asarray(Image.open(osp.join(scenes, 'images/val/000002.png'))))
    other = make_digit_scenes.make_digit_scenes(str(tmp_path / 'other'), seed=4, scenes=(1, 1, 1))
    assert _coco(other, 'val')['annotations'] != _coco(scenes, 'val')['annotations'][:1]


def test_ensure_regenerates_only_when_arguments_change(scenes):
    stamp = osp.getmtime(osp.join(scenes, 'meta.json'))
    assert make_digit_scenes.ensure_digit_scenes(scenes, seed=3, scenes=COUNTS) == scenes
    assert osp.getmtime(osp.join(scenes, 'meta.json')) == stamp


@pytest.mark.parametrize('kwargs, message', [(dict(size=64), 'size must be at least 72'),
                                             (dict(scenes=(1, 0, 1)), 'three positive counts')])
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_digit_scenes.make_digit_scenes(str(tmp_path), **kwargs)


def test_bad_digit_file_is_named(tmp_path):
    import gzip
    path = tmp_path / 'bad.csv.gz'
    with gzip.open(path, 'wt') as f:
        f.write('1,2,3\n4,5,6\n')
    with pytest.raises(ValueError, match='784 pixels'):
        make_digit_scenes.load_mnist(str(path))


def _dataset(config, split, scenes, scope):
    from mmengine.registry import DATASETS
    cfg = Config.fromfile(osp.join(e2e.REPO, 'configs', 'digit_scenes', config))
    dataset_cfg = cfg[f'{split}_dataloader'].dataset
    dataset_cfg.data_root = scenes
    init_default_scope(scope)
    return DATASETS.build(dataset_cfg)


def test_mmdet_coco_dataset_reads_the_scenes_as_configured(scenes):
    from pycocotools.coco import COCO
    dataset = _dataset('mask-rcnn_r50_fpn_digit-scenes.py', 'train', scenes, 'mmdet')
    assert len(dataset) == COUNTS[0] and dataset.metainfo['classes'][3] == '3'
    coco = COCO(osp.join(scenes, 'annotations', 'instances_train.json'))
    sample = dataset[0]
    instances = sample['data_samples'].gt_instances
    anns = coco.loadAnns(coco.getAnnIds(imgIds=sample['data_samples'].img_id))
    assert sorted(instances.labels.tolist()) == sorted(a['category_id'] - 1 for a in anns)
    masks = instances.masks.to_ndarray().astype(bool)
    assert sorted(m.sum() for m in masks) == sorted(a['area'] for a in anns)


def test_mmseg_dataset_reads_the_label_maps_as_configured(scenes):
    dataset = _dataset('fpn_r50_digit-scenes.py', 'val', scenes, 'mmseg')
    assert len(dataset) == COUNTS[1] and len(dataset.metainfo['classes']) == 11
    sample = dataset[1]
    label_map = np.asarray(Image.open(osp.join(scenes, 'annotations', 'val', '000002.png')))
    np.testing.assert_array_equal(sample['data_samples'].gt_sem_seg.data[0].numpy(), label_map)


def test_digit_crop_is_the_square_around_the_box_zero_padded(tmp_path):
    from convdense.datasets.digit_scenes import LoadDigitCrop
    image = np.zeros((40, 50, 3), np.uint8)
    image[10:20, 30:36] = 200  # a 6 x 10 box at x=30, y=10
    Image.fromarray(image).save(tmp_path / 'a.png')
    packed = LoadDigitCrop(crop_size=10, context=1.0)(
        dict(img_path=str(tmp_path / 'a.png'), bbox=[30, 10, 6, 10], gt_label=7))
    crop = packed['inputs'].numpy()
    assert packed['data_samples'] == 7 and crop.shape == (3, 10, 10)
    assert (crop[:, :, 2:8] == 200).all() and (crop[:, :, :1] == 0).all()
    corner = LoadDigitCrop(crop_size=8, context=2.0)(
        dict(img_path=str(tmp_path / 'a.png'), bbox=[0, 0, 4, 4], gt_label=0))['inputs']
    assert corner.shape == (3, 8, 8) and (corner == 0).all()  # past the border: zeros
    with pytest.raises(ValueError, match='context'):
        LoadDigitCrop(context=0.5)


def test_digit_crop_dataset_has_one_sample_per_instance(scenes):
    from convdense.datasets.digit_scenes import DigitCropDataset
    coco = _coco(scenes, 'val')
    dataset = DigitCropDataset(ann_file='annotations/instances_val.json', data_root=scenes,
                               data_prefix=dict(img='images/val/'),
                               pipeline=[dict(type='convdense.LoadDigitCrop', crop_size=32)])
    assert len(dataset) == len(coco['annotations'])
    sample = dataset[0]
    assert sample['data_samples'] == coco['annotations'][0]['category_id'] - 1
    assert sample['inputs'].shape == (3, 32, 32)


@pytest.mark.slow
def test_digit_classifier_learns_crops_and_its_backbone_loads_into_detection(scenes):
    """A few steps on a batch of train crops fit it (top-1 >= 0.9 on them in eval mode, loss falls);
    ``backbone.*`` of its state dict is exactly what Mask R-CNN's backbone takes."""
    import torch
    from mmengine.registry import MODELS

    from convdense.datasets.digit_scenes import DigitCropDataset
    from convdense.models.digit_classifier import DigitAccuracy, DigitClassifier  # noqa: F401
    init_default_scope('convdense')
    torch.manual_seed(0)
    dataset = DigitCropDataset(ann_file='annotations/instances_train.json', data_root=scenes,
                               data_prefix=dict(img='images/train/'),
                               pipeline=[dict(type='convdense.LoadDigitCrop', crop_size=32)])
    batch = dict(inputs=[dataset[i]['inputs'] for i in range(len(dataset))],
                 data_samples=[dataset[i]['data_samples'] for i in range(len(dataset))])
    model = MODELS.build(dict(type='DigitClassifier', in_channels=512, backbone=dict(
        type='mmdet.ResNet', depth=18, norm_cfg=dict(type='BN', requires_grad=True))))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        data = model.data_preprocessor(batch, True)
        loss = model(**data, mode='loss')['loss']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    model.eval()
    with torch.no_grad():
        predictions = model(**model.data_preprocessor(batch, False), mode='predict')
    metric = DigitAccuracy()
    metric.process(None, predictions)
    assert metric.compute_metrics(metric.results)['top1'] >= 0.9, predictions  # chance: 0.1
    assert losses[-1] < 0.2 * losses[0]
    with pytest.raises(ValueError, match='mode'):
        model(**model.data_preprocessor(batch, False), mode='logits')

    cfg = Config.fromfile(osp.join(e2e.REPO, 'configs/digit_scenes/mask-rcnn_r50_fpn_digit-scenes.py'))
    classifier = MODELS.build(dict(type='DigitClassifier', backbone=cfg.model.backbone))
    init_default_scope('mmdet')
    detector = MODELS.build(cfg.model)
    backbone_state = {k[len('backbone.'):]: v for k, v in classifier.state_dict().items()
                      if k.startswith('backbone.')}
    assert backbone_state.keys() == detector.backbone.state_dict().keys()
