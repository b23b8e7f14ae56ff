"""CAMs (tools/analysis/visualize_cam.py, convdense/visualization/cam.py) and the
pointing game (tools/analysis/cam_pointing_game.py).

A colour classifier with hand-set weights (class 0 fires on red, class 1 on green)
is the model whose right answer is known: its CAMs must sit on the red/green
shapes through a resizing test pipeline and a padding preprocessor, follow a shape
that moves, and win the pointing game on the tiny COCO scenes.
"""
import json
import os.path as osp

import convdense  # noqa: F401  (before torchvision / pytorch_grad_cam: compat fix 7)
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from PIL import Image

from convdense import launch
from convdense.visualization import cam as cams
from tests.helpers import e2e

REPO = e2e.REPO
visualize_cam = e2e.load_script('tools/analysis/visualize_cam.py')
pointing_game = e2e.load_script('tools/analysis/cam_pointing_game.py')


@MODELS.register_module(name='CAMTestColourClassifier', force=True)
class ColourClassifier(BaseModel):
    """One 1x1-conv "stage" with a red and a green detector channel, global
    average pooling, and the identity as classifier: logit 0 = mean redness."""

    def __init__(self, data_preprocessor=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = nn.Module()
        self.backbone.res_layers = ['layer1']
        self.backbone.layer1 = nn.Conv2d(3, 2, 1)
        self.fc = nn.Linear(2, 2)

    def set_colour_weights(self):
        with torch.no_grad():
            self.backbone.layer1.weight.copy_(torch.tensor(
                [[1., -1., 0.], [-1., 1., 0.]]).view(2, 3, 1, 1))  # R - G, G - R
            self.backbone.layer1.bias.zero_()
            self.fc.weight.copy_(torch.eye(2))
            self.fc.bias.zero_()
        return self

    def forward(self, inputs, data_samples=None, mode='tensor'):
        features = torch.relu(self.backbone.layer1(inputs))
        return self.fc(features.mean((2, 3)))


def colour_config(tmp_path, scale=(150, 90)):
    """A config file for the colour classifier: keep-ratio resize in the test
    pipeline and padding to a multiple of 32 in the preprocessor, so that a
    wrong map-back misplaces the peak."""
    cfg = Config(dict(
        default_scope='mmdet',
        model=dict(type='CAMTestColourClassifier', data_preprocessor=dict(
            type='DetDataPreprocessor', mean=[0, 0, 0], std=[255, 255, 255],
            bgr_to_rgb=True, pad_size_divisor=32)),
        test_dataloader=dict(dataset=dict(
            type='CocoDataset', metainfo=dict(classes=('person', 'car')), pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=scale, keep_ratio=True),
                dict(type='LoadAnnotations', with_bbox=True),
                dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                      'img_shape', 'scale_factor'))]))))
    path = str(tmp_path / 'colour_classifier.py')
    cfg.dump(path)
    return path


def colour_checkpoint(tmp_path):
    model = ColourClassifier().set_colour_weights()
    path = str(tmp_path / 'colour.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)
    return path


def square_image(path, top_left, size=(100, 60), side=14):
    image = np.full((size[1], size[0], 3), 30, np.uint8)
    y, x = top_left
    image[y:y + side, x:x + side] = (220, 40, 40)
    Image.fromarray(image).save(path)
    return path


# --------------------------------------------------------------------------- scoring

def test_peak_and_hit_on_synthetic_maps():
    cam = np.zeros((20, 30), np.float32)
    cam[5, 7] = 1.0
    mask = np.zeros((20, 30), bool)
    mask[4:7, 6:9] = True
    assert pointing_game.peak(cam) == (5, 7)
    assert pointing_game.pointing_hit(cam, mask)
    assert not pointing_game.pointing_hit(cam, ~mask)
    # a peak 3 px right of the mask: a miss, a hit with a 3-px tolerance, not with 2
    shifted = np.roll(cam, 4, axis=1)
    assert not pointing_game.pointing_hit(shifted, mask)
    assert pointing_game.pointing_hit(shifted, mask, tolerance=3)
    assert not pointing_game.pointing_hit(shifted, mask, tolerance=2)
    # a constant map points nowhere: a miss even where the mask covers everything
    assert pointing_game.peak(np.full((4, 4), 0.3)) is None
    assert not pointing_game.pointing_hit(np.zeros((4, 4)), np.ones((4, 4), bool))
    with pytest.raises(ValueError, match='shape'):
        pointing_game.pointing_hit(cam, mask[:, :10])
    with pytest.raises(ValueError, match='NaN'):
        pointing_game.peak(np.full((3, 3), np.nan))


def test_chance_rate_is_mean_area_fraction_and_matches_random_peaks():
    rng = np.random.default_rng(0)
    masks = []
    for fraction in (0.1, 0.25, 0.5):
        mask = np.zeros((40, 50), bool)
        mask.ravel()[:int(fraction * mask.size)] = True
        masks.append(mask)
    assert pointing_game.chance_rate(masks) == pytest.approx((0.1 + 0.25 + 0.5) / 3)
    # uniformly random single-pixel peaks score the chance rate
    hits = [pointing_game.pointing_hit(np.eye(1, 2000, rng.integers(2000)).reshape(40, 50), m)
            for _ in range(1000) for m in masks]
    assert np.mean(hits) == pytest.approx(pointing_game.chance_rate(masks), abs=0.03)
    # tolerance grows the masks, so the chance rate too
    assert pointing_game.chance_rate(masks, 2) > pointing_game.chance_rate(masks)
    with pytest.raises(ValueError, match='no .image, category. pairs'):
        pointing_game.chance_rate([])


def test_category_regions_from_coco_masks_and_boxes(tmp_path):
    from pycocotools.coco import COCO
    rows, columns = pointing_game.box_mask([2, 1, 3, 2], 5, 8).nonzero()
    assert (rows.tolist(), columns.tolist()) == ([1, 1, 1, 2, 2, 2], [2, 3, 4, 2, 3, 4])
    root = e2e.make_tiny_coco(str(tmp_path / 'coco'), n_train=0, n_val=2)
    coco = COCO(osp.join(root, 'annotations/instances_val2017.json'))
    mapping = pointing_game.coco_to_model_classes(coco, ('person', 'car'))
    assert mapping == {1: 0, 3: 1}
    for image_id in coco.getImgIds():
        masks = pointing_game.category_masks(coco, image_id, mapping)
        boxes = pointing_game.category_masks(coco, image_id, mapping, region='box')
        assert masks.keys() == boxes.keys() and masks
        for index, mask in masks.items():
            assert mask.shape == (96, 128)
            assert (mask & ~boxes[index]).sum() <= 0.02 * mask.sum()  # a mask fills its box
    with pytest.raises(ValueError, match='person.*not among'):
        pointing_game.coco_to_model_classes(coco, ('car', 'bus'))


# --------------------------------------------------------------------------- tuples

def test_tuple_probe_keeps_values_and_gradients():
    """Merging (high, low) for the probe and splitting it back changes neither
    what the next layer computes nor the gradients the layer receives, and the
    probe's gradient is d/d(merge_octave) of the same function."""
    from convdense.ops.octconv import merge_octave
    torch.manual_seed(0)
    high = torch.randn(1, 3, 6, 8, requires_grad=True)
    low = torch.randn(1, 2, 3, 4, requires_grad=True)
    weights = torch.randn(1, 3, 6, 8), torch.randn(1, 2, 3, 4)

    def downstream(h, lo):
        return (h * weights[0]).sum() + (lo.exp() * weights[1]).sum()

    reference = downstream(high, low)
    grads_ref = torch.autograd.grad(reference, (high, low))
    merged, layout = cams.merge_feature_tuple((high, low))
    assert torch.equal(merged, merge_octave(high, low))
    captured = merged.detach().requires_grad_(True)
    out_high, out_low = cams.split_feature_tuple(captured * 1.0, (high, low), layout)
    assert torch.equal(out_high, high) and torch.equal(out_low, low)
    value = downstream(out_high, out_low)
    assert torch.equal(value, reference)
    (merged_grad,) = torch.autograd.grad(value, captured)
    # high channels: the plain gradient; low channels: nearest-upsampled / 4
    assert torch.allclose(merged_grad[:, :3], grads_ref[0])
    upsampled = grads_ref[1].repeat_interleave(2, 2).repeat_interleave(2, 3) / 4
    assert torch.allclose(merged_grad[:, 3:], upsampled)
    # and the gradient reaching the layer through the probe is the original one
    out_high, out_low = cams.split_feature_tuple(merged, (high, low), layout)
    grads = torch.autograd.grad(downstream(out_high, out_low), (high, low))
    assert all(torch.allclose(a, b) for a, b in zip(grads, grads_ref))
    # None entries (Oct-ResNet's last stage) pass through
    merged, layout = cams.merge_feature_tuple((high, None))
    assert cams.split_feature_tuple(merged, (high, None), layout)[1] is None


@pytest.mark.slow
def test_oct_resnet_classifier_cams_every_stage_without_changing_outputs():
    from convdense.models.complexity import ImageNetClassifier, build_backbone
    torch.manual_seed(0)
    backbone = build_backbone(dict(type='convdense.OctResNet', depth=50, out_indices=(3, )))
    model = ImageNetClassifier(backbone, 2048, num_classes=5).eval()
    image = torch.randn(1, 3, 64, 64)
    names = cams.default_target_layers(model)
    assert names == [f'backbone.layer{i}' for i in range(1, 5)]
    with torch.no_grad():
        plain = model(image)
        with cams.StageProbes(cams.resolve_layers(model, names)):
            probed = model(image)
    assert torch.equal(plain, probed)
    result = cams.compute_cams(model, image, None, names, 'gradcam', category=2)
    assert result['target'] == dict(target='class', category=2, logit=pytest.approx(
        float(plain[0, 2]), abs=1e-5))
    for name in names:  # stages 1-3 output (high, low) tuples
        cam = result['maps'][name]
        assert cam.shape == (64, 64) and cam.min() >= 0 and 0.5 < cam.max() <= 1  # not flat
    # the figure rebuilds grad-cam's aggregate from the saved stage maps
    rebuilt = cams.stage_mean(np.stack([result['maps'][name] for name in names]))
    np.testing.assert_allclose(rebuilt, result['mean'], atol=1e-5)


# --------------------------------------------------------------------------- layers

def test_bad_layer_names_are_one_line_errors(tmp_path):
    model = ColourClassifier()
    with pytest.raises(cams.CAMError, match="'backbone.layer9' is not a module.*closest: "
                                            'backbone.layer1'):
        cams.resolve_layers(model, ['backbone.layer9'])
    for bad in ('', ' backbone.layer1', None):
        with pytest.raises(cams.CAMError, match='module paths like'):
            cams.resolve_layers(model, [bad])
    with pytest.raises(cams.CAMError, match='repeat'):
        cams.resolve_layers(model, ['backbone.layer1', 'backbone.layer1'])
    with pytest.raises(cams.CAMError, match="unknown CAM method 'gradcam3'"):
        cams.cam_class('gradcam3')
    image = square_image(str(tmp_path / 'a.png'), (10, 10))
    with pytest.raises(launch.ConfigError) as error:
        visualize_cam.main([colour_config(tmp_path), '--img', image, '--out-dir',
                            str(tmp_path / 'out'), '--target-layers', 'backbone.layer4'])
    assert 'backbone.layer4' in str(error.value) and '\n' not in str(error.value)


# --------------------------------------------------------------------------- classifier

def test_classifier_cam_follows_the_object_through_resize_and_padding(tmp_path):
    config, checkpoint = colour_config(tmp_path), colour_checkpoint(tmp_path)
    model, cfg = cams.load_model(config, checkpoint)
    assert cams.model_kind(model) == 'cls'
    pipeline = cams.test_pipeline(cfg)
    peaks = []
    for corner in ((5, 8), (40, 70)):
        path = square_image(str(tmp_path / f'square_{corner[0]}.png'), corner)
        inputs, samples = cams.prepare_image(model, pipeline, path)
        assert inputs.shape[-2:] == (96, 160)  # resized x1.5 to 150 x 90, padded to /32
        result = cams.compute_cams(model, inputs, samples, ['backbone.layer1'], 'gradcam')
        assert result['target']['category'] == 0  # red
        cam = result['maps']['backbone.layer1']
        assert cam.shape == (60, 100)  # the original image
        # the two resizes blur the square's edge by a pixel: its core is hot, the
        # image two pixels away from it cold
        y, x = corner
        assert cam[y + 1:y + 13, x + 1:x + 13].min() > 0.8
        away = np.ones_like(cam, bool)
        away[max(0, y - 2):y + 16, max(0, x - 2):x + 16] = False
        assert cam[away].max() < 0.01
        peaks.append(pointing_game.peak(cam))
    assert peaks[0] != peaks[1]
    for peak, corner in zip(peaks, ((5, 8), (40, 70))):
        assert corner[0] <= peak[0] < corner[0] + 14 and corner[1] <= peak[1] < corner[1] + 14


def test_pointing_game_on_tiny_scenes_known_model_beats_chance(tmp_path, monkeypatch):
    root = e2e.make_tiny_coco(str(tmp_path / 'coco'), n_train=0, n_val=3)
    config, checkpoint = colour_config(tmp_path), colour_checkpoint(tmp_path)
    out = tmp_path / 'pointing.json'
    report = pointing_game.main([
        '--ann-file', osp.join(root, 'annotations/instances_val2017.json'),
        '--img-dir', osp.join(root, 'val2017'), '--model', 'colour', config, checkpoint,
        '--model', 'fresh', config, 'none', '--methods', 'gradcam', 'layercam',
        '--out', str(out)])
    assert json.loads(out.read_text()) == report
    assert report['images'] == 3 and report['pairs'] >= 3
    assert 0 < report['chance_rate'] < 0.5
    known = [r for r in report['results'] if r['model'] == 'colour']
    assert {(r['method'], r['layer']) for r in known} == {
        (m, layer) for m in ('gradcam', 'layercam') for layer in ('backbone.layer1', 'mean')}
    for record in known:
        assert record['pairs'] == report['pairs'] and record['accuracy'] == 1.0, record
    assert len(report['results']) == 8
    table = pointing_game.format_table(report).splitlines()
    assert table[0] == '| model | method | layer1 | mean |'
    assert '| colour | gradcam | 1.000 | 1.000 |' in table
    assert table[-1].startswith(f"{report['pairs']} instance/category pairs on 3 images")
    # the fresh model is built after --seed: the same seed, the same weights
    fresh_args = ['--ann-file', osp.join(root, 'annotations/instances_val2017.json'),
                  '--img-dir', osp.join(root, 'val2017'), '--model', 'fresh', config, 'none',
                  '--methods', 'gradcam', '--out', '']
    built, load_model = [], cams.load_model

    def recording_load_model(*args, **kwargs):
        model, cfg = load_model(*args, **kwargs)
        built.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
        return model, cfg

    monkeypatch.setattr(cams, 'load_model', recording_load_model)
    runs = [pointing_game.main(fresh_args + ['--seed', str(seed)]) for seed in (3, 3, 4)]
    assert [run['seed'] for run in runs] == [3, 3, 4]
    scored = built[1::2]  # main builds the first model once for its class names
    assert torch.equal(scored[0], scored[1]) and not torch.equal(scored[0], scored[2])


# --------------------------------------------------------------------------- det / seg

def _tiny_config(tmp_path, config, kind, image_size):
    root = str(tmp_path / ('coco' if kind == 'det' else 'ade'))
    (e2e.make_tiny_coco if kind == 'det' else e2e.make_tiny_ade)(root, n_train=1, n_val=1)
    cfg = e2e.shrink_config(osp.join(REPO, config), root, kind, image_size=image_size)
    path = str(tmp_path / f'{kind}_{osp.basename(config)}')
    cfg.dump(path)
    image_dir = osp.join(root, 'val2017') if kind == 'det' else osp.join(
        root, 'images', 'validation')
    return path, image_dir


@pytest.mark.slow
def test_detectors_side_by_side_with_tuple_stages_and_frozen_stem(tmp_path):
    """Oct-ResNet Mask R-CNN (tuple stages 1-3; stem and stage 1 frozen) next to
    ResNet-50: overlays per layer, raw maps at the original size, grid, summary."""
    oct_config, images = _tiny_config(
        tmp_path, 'configs/mask_rcnn/mask-rcnn_oct-resnet-50_fpn_1x_coco.py', 'det', (96, 64))
    r50_config, _ = _tiny_config(tmp_path, 'configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
                                 'det', (96, 64))
    out = tmp_path / 'cams'
    summary = visualize_cam.main([oct_config, '--img', images, '--compare', r50_config, 'none',
                                  '--names', 'oct', 'r50', '--out-dir', str(out)])
    layers = [f'backbone.layer{i}' for i in range(1, 5)]
    assert [m['name'] for m in summary['models']] == ['oct', 'r50']
    for record in summary['models']:
        assert record['kind'] == 'det' and record['layers'] == layers
        (entry,) = record['images']
        assert entry['target'] == 'box' and entry['score'] > 0
        maps = np.load(out / entry['maps'])
        assert maps.shape == (4, 96, 128)  # the tiny COCO image, not the 96x64 input
        assert (maps.reshape(4, -1).max(1) > 0.5).all()  # layer1 (frozen) gets gradients too
        for layer in layers:
            assert (out / record['name'] / f'000000000001_{layer}.png').is_file()
    assert (out / 'grid.png').is_file()
    assert json.loads((out / 'summary.json').read_text()) == summary


@pytest.mark.slow
def test_segmentor_category_cam(tmp_path):
    config, images = _tiny_config(tmp_path, 'configs/segmentation/upernet_r50_ade20k.py',
                                  'seg', (64, 48))
    out = tmp_path / 'cams'
    summary = visualize_cam.main([config, '--img', images, '--target-category', '3',
                                  '--method', 'gradcam++', '--out-dir', str(out)])
    (record,) = summary['models']
    (entry,) = record['images']
    assert record['kind'] == 'seg' and entry['category'] == 3
    assert entry['target'] in ('category-region', 'category-everywhere')
    assert np.load(out / entry['maps']).shape == (4, 64, 96)
    with pytest.raises(launch.ConfigError, match='out of range'):
        visualize_cam.main([config, '--img', images, '--target-category', '150',
                            '--out-dir', str(out)])
