"""End-to-end harness: tiny datasets in the real upstream layouts, and a
train → checkpoint → test run of any mmdet/mmseg config through our tools.

The datasets are generated (coloured shapes with exact polygon / label-map
annotations), written as the real files mmdet's ``CocoDataset`` and mmseg's
``ADE20KDataset`` read: COCO json + JPEGs, ADE ``images/`` + ``annotations/`` PNGs.
"""
import glob
import json
import os
import os.path as osp
import sys

import numpy as np
from PIL import Image, ImageDraw

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

COCO_CLASSES = None


def _coco_classes():
    global COCO_CLASSES
    if COCO_CLASSES is None:
        from mmdet.datasets import CocoDataset
        COCO_CLASSES = CocoDataset.METAINFO['classes']
    return COCO_CLASSES


def _shapes(rng, width, height, n):
    """``n`` random axis-aligned boxes of at least 16 px, as (x0, y0, x1, y1)."""
    boxes = []
    for _ in range(n):
        w, h = rng.integers(16, width // 2), rng.integers(16, height // 2)
        x0, y0 = rng.integers(0, width - w), rng.integers(0, height - h)
        boxes.append((int(x0), int(y0), int(x0 + w), int(y0 + h)))
    return boxes


def make_tiny_coco(root, n_train=4, n_val=2, size=(128, 96), seed=0):
    """Write a COCO-format dataset (``annotations/instances_{train,val}2017.json``,
    ``{train,val}2017/*.jpg``) with triangle and rectangle instances. Returns ``root``."""
    rng = np.random.default_rng(seed)
    width, height = size
    categories = [dict(id=i + 1, name=name, supercategory='thing')
                  for i, name in enumerate(_coco_classes())]
    used_categories = (1, 3)  # person, car: rectangle vs triangle, told apart by shape and colour
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for split, count in (('train2017', n_train), ('val2017', n_val)):
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, annotations = [], []
        for index in range(count):
            image = Image.new('RGB', size, tuple(int(c) for c in rng.integers(0, 60, 3)))
            draw = ImageDraw.Draw(image)
            for box in _shapes(rng, width, height, 2):
                category = int(rng.choice(used_categories))
                x0, y0, x1, y1 = box
                if category == 1:
                    polygon = [x0, y0, x1, y0, x1, y1, x0, y1]
                    colour = (220, 60, 60)
                else:
                    polygon = [x0, y1, (x0 + x1) // 2, y0, x1, y1]
                    colour = (60, 200, 80)
                draw.polygon(polygon, fill=colour)
                xs, ys = polygon[0::2], polygon[1::2]
                area = float(0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=index + 1, category_id=category,
                    segmentation=[[float(v) for v in polygon]], area=area,
                    bbox=[float(min(xs)), float(min(ys)), float(max(xs) - min(xs)),
                          float(max(ys) - min(ys))], iscrowd=0))
            file_name = f'{index + 1:012d}.jpg'
            image.save(osp.join(root, split, file_name), quality=95)
            images.append(dict(id=index + 1, file_name=file_name, width=width, height=height))
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return root


def make_tiny_ade(root, n_train=4, n_val=2, size=(96, 64), seed=0):
    """Write an ADE20K-layout dataset (``images/{training,validation}/*.jpg``,
    ``annotations/{training,validation}/*.png``; 0 = unlabelled, classes 1..150).
    Returns ``root``."""
    rng = np.random.default_rng(seed)
    width, height = size
    palette = {1: (120, 120, 120), 3: (6, 230, 230), 5: (204, 5, 255)}
    for split, count in (('training', n_train), ('validation', n_val)):
        os.makedirs(osp.join(root, 'images', split), exist_ok=True)
        os.makedirs(osp.join(root, 'annotations', split), exist_ok=True)
        for index in range(count):
            labels = np.full((height, width), 1, np.uint8)  # "wall" everywhere
            for box in _shapes(rng, width, height, 2):
                x0, y0, x1, y1 = box
                labels[y0:y1, x0:x1] = rng.choice((3, 5))
            labels[:2, :] = 0  # a strip of unlabelled pixels, ignored by the metric
            image = np.zeros((height, width, 3), np.uint8)
            for label, colour in palette.items():
                image[labels == label] = colour
            image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
            name = f'ADE_{split[:5]}_{index + 1:08d}'
            Image.fromarray(image).save(osp.join(root, 'images', split, name + '.jpg'), quality=95)
            Image.fromarray(labels).save(osp.join(root, 'annotations', split, name + '.png'))
    return root


def _walk(node, visit):
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _walk(value, visit)


def shrink_config(config_path, data_root, kind, iters=4, image_size=(128, 96), lr=None):
    """Load ``config_path`` and make it a seconds-long CPU run on ``data_root``.

    Only sizes, schedule and paths change; model, pipeline order and metric stay
    the upstream ones, except that the backbone starts from its initialisation:
    the suite never downloads and holds no converted ImageNet checkpoint.
    Returns an mmengine ``Config``.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(config_path)
    if 'pretrained' in cfg.model:
        cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None

    def small_sizes(node):
        kind_of = node.get('type')
        if kind_of in ('Resize', 'RandomResize') and 'scale' in node:
            node['scale'] = tuple(image_size)
        if kind_of == 'RandomCrop' and 'crop_size' in node:
            node['crop_size'] = (image_size[1] // 2, image_size[0] // 2)
        if kind_of == 'RandomChoiceResize':
            node['scales'] = [tuple(image_size)]

    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[split]
        loader.batch_size = 2 if split == 'train_dataloader' else 1
        loader.num_workers = 0
        loader.persistent_workers = False
        dataset = loader.dataset
        while 'dataset' in dataset:  # RepeatDataset / ConcatDataset wrappers
            dataset = dataset.dataset
        dataset.data_root = data_root
        _walk(dataset.pipeline, small_sizes)
    if kind == 'det':
        for evaluator in ('val_evaluator', 'test_evaluator'):
            cfg[evaluator].ann_file = osp.join(data_root, 'annotations/instances_val2017.json')
        # An untrained detector scores every box low; keep them so both COCO metrics run.
        cfg.model.test_cfg.rcnn.score_thr = 0.0
        # Fewer proposals, sampled RoIs and kept detections: on a CPU the RoI heads'
        # cost is per box, not per pixel, and dominates a tiny image (the mask head
        # on 100 detections alone is ~46 GMACs).
        cfg.model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
        cfg.model.train_cfg.rcnn.sampler.num = 64
        cfg.model.test_cfg.rpn.update(nms_pre=200, max_per_img=100)
        cfg.model.test_cfg.rcnn.max_per_img = 10
    elif kind == 'seg':
        crop = (image_size[1] // 2, image_size[0] // 2)
        cfg.model.data_preprocessor.size = crop
    else:
        raise ValueError(f"kind must be 'det' or 'seg', got {kind!r}")

    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    cfg.param_scheduler = []
    if lr is not None:
        cfg.optim_wrapper.optimizer.lr = lr
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=iters, by_epoch=False)
    cfg.log_processor = dict(type='LogProcessor', window_size=1, by_epoch=False)
    cfg.randomness = dict(seed=0)
    return cfg


def read_losses(work_dir):
    """The training ``loss`` of every logged iteration, from mmengine's scalars.json."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    losses = []
    for path in files:
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'loss' in record:
                    losses.append(record['loss'])
    return losses


def load_script(relative_path):
    """Import a script of the repository (``tools/`` and ``benchmarks/`` are no
    packages) as a module, e.g. ``load_script('benchmarks/latency_bound.py')``."""
    import importlib.util
    name = 'convdense_' + osp.splitext(relative_path)[0].replace('/', '_')
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, relative_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_tool(name):
    """Import ``tools/<name>.py`` as a module."""
    return load_script(f'tools/{name}.py')


def train_and_test(config_path, work_dir, kind, iters=4, data_root=None, **shrink):
    """Shrink ``config_path``, train it with ``tools/train.py``, then evaluate the
    last checkpoint with ``tools/test.py``.

    Returns ``dict(metrics=..., losses=[...], checkpoint=path, config=path)``.
    """
    os.makedirs(work_dir, exist_ok=True)
    if data_root is None:
        data_root = osp.join(work_dir, 'data')
        (make_tiny_coco if kind == 'det' else make_tiny_ade)(data_root)
    cfg = shrink_config(config_path, data_root, kind, iters=iters, **shrink)
    return train_and_test_config(cfg, work_dir, iters)


# --- digit scenes: real MNIST digits on photographs (tools/make_digit_scenes.py) ---

DIGIT_CONFIGS = {'det': 'configs/digit_scenes/mask-rcnn_{}_fpn_digit-scenes.py',
                 'seg': 'configs/digit_scenes/fpn_{}_digit-scenes.py'}


def make_digit_scenes(root, scenes=(2, 1, 1), seed=0):
    """Write a few digit scenes (train, val, test counts) under ``root``; returns ``root``."""
    return load_tool('make_digit_scenes').make_digit_scenes(str(root), seed=seed, scenes=scenes)


#: the over-fit runs' optimizer (SGD 0.02 predicted only background after 40 steps)
OVERFIT_OPTIMIZER = dict(type='AdamW', lr=1e-3, weight_decay=1e-4)


def assert_mask_rcnn_overfits(backbone, data_root, work_dir, iters):
    """Mask R-CNN with ``backbone`` trained ``iters`` steps on the digit scenes of
    ``data_root`` and scored on them by tools/test.py reaches bbox AP >= 0.5 (COCO
    AP, IoU 0.50:0.95: the benchmark's original goal) and a mask AP clearly above zero.

    The learning rate is annealed to zero: at a constant one the last iterate's AP on
    two scenes swings with the seeded run's float rounding (R-50 on an AVX2 CPU: 0.30,
    0.63, 0.50 after 60, 90, 120 steps; annealed: 0.75 after 60)."""
    cfg = overfit_digit_config('det', backbone, data_root, iters, OVERFIT_OPTIMIZER, anneal=True)
    metrics = train_and_test_config(cfg, work_dir, iters)['metrics']
    assert metrics['coco/bbox_mAP'] >= 0.5, metrics
    assert metrics['coco/segm_mAP'] > 0.1, metrics


def overfit_digit_config(kind, backbone, data_root, iters, optimizer=None, anneal=False):
    """The digit-scene config for ``kind`` ('det'/'seg') and ``backbone`` ('r50',
    'hetconv-resnet-50', ...), trained for ``iters`` iterations on the train scenes
    of ``data_root`` (one batch: all of them) and evaluated on those same scenes.

    Only data, batch, schedule (a short warm-up, then a constant learning rate, or with
    ``anneal`` a cosine decay to zero) and ``optimizer`` (a dict replacing the config's)
    change. Returns an mmengine ``Config``.
    """
    from mmengine.config import Config
    if kind not in DIGIT_CONFIGS:
        raise ValueError(f"kind must be 'det' or 'seg', got {kind!r}")
    cfg = Config.fromfile(osp.join(REPO, DIGIT_CONFIGS[kind].format(backbone)))
    data_root = str(data_root).rstrip('/') + '/'
    with open(osp.join(data_root, 'meta.json')) as f:
        n_train = json.load(f)['scenes'][0]
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[split]
        loader.batch_size = n_train
        dataset = loader.dataset
        dataset.data_root = data_root
        if kind == 'det':
            dataset.ann_file = 'annotations/instances_train.json'
            dataset.data_prefix = dict(img='images/train/')
        else:
            dataset.data_prefix = dict(img_path='images/train', seg_map_path='annotations/train')
    if kind == 'det':
        for evaluator in ('val_evaluator', 'test_evaluator'):
            cfg[evaluator].ann_file = osp.join(data_root, 'annotations/instances_train.json')
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    warmup = max(1, iters // 10)
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                                end=warmup)]
    if anneal:
        cfg.param_scheduler.append(dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup,
                                        end=iters, T_max=iters - warmup, eta_min=0.0))
    if optimizer is not None:
        cfg.optim_wrapper.optimizer = optimizer
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=max(1, iters // 10))
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=iters, by_epoch=False)
    cfg.log_processor = dict(type='LogProcessor', window_size=1, by_epoch=False)
    cfg.randomness = dict(seed=0)
    return cfg


def train_and_test_config(cfg, work_dir, iters):
    """Train ``cfg`` (an mmengine ``Config`` of ``iters`` iterations) with
    ``tools/train.py``, then evaluate its last checkpoint with ``tools/test.py``.

    Returns ``dict(metrics=..., losses=[...], checkpoint=path, config=path)``.
    """
    train_tool, test_tool = load_tool('train'), load_tool('test')
    os.makedirs(work_dir, exist_ok=True)
    config = osp.join(work_dir, 'run_config.py')
    cfg.dump(config)
    train_tool.main([config, '--work-dir', work_dir])
    checkpoint = osp.join(work_dir, f'iter_{iters}.pth')
    assert osp.isfile(checkpoint), f'no checkpoint at {checkpoint}'
    metrics = test_tool.main([config, checkpoint, '--work-dir', osp.join(work_dir, 'test')])
    return dict(metrics=metrics, losses=read_losses(work_dir), checkpoint=checkpoint, config=config)
