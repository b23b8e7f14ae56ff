"""Layers for procedural training scenes: random shapes cut from real photographs.

Shared by the procedural RGB-D (:mod:`.procedural_rgbd`) and optical-flow
(:mod:`.procedural_flow`) generators. Photographs: every RGB/grey photo in
``skimage/data`` except ``motorcycle_left/right.png`` -- those are the Middlebury
*Motorcycle* scene, a bundled evaluation scene.
"""
import functools
import inspect
import os.path as osp

import numpy as np

from .joint_upsampling import JointUpsamplingDataset

#: scikit-image's bundled photographs used as textures (motorcycle_* excluded: a test scene)
PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'hubble_deep_field.jpg',
          'ihc.png', 'retina.jpg', 'camera.png', 'coins.png', 'moon.png', 'grass.png',
          'gravel.png', 'brick.png', 'cell.png', 'page.png', 'text.png')
SHAPES = ('ellipse', 'polygon', 'rectangle', 'blob', 'stroke')


def check_layout(size, num_layers, flat_prob, noise_std):
    """One-line ``ValueError`` unless the arguments every procedural generator shares are sane."""
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(v, (int, np.integer)) and v >= 16 for v in size)):
        raise ValueError(f'size must be (height, width), ints >= 16, got {size!r}')
    if (not isinstance(num_layers, (tuple, list)) or len(num_layers) != 2
            or not all(isinstance(v, (int, np.integer)) for v in num_layers)
            or not 1 <= num_layers[0] <= num_layers[1]):
        raise ValueError(f'num_layers must be (min, max) ints with 1 <= min <= max, got {num_layers!r}')
    check_probability('flat_prob', flat_prob)
    if not noise_std >= 0:
        raise ValueError(f'noise_std must be >= 0, got {noise_std!r}')


def check_range(name, value, unit=''):
    """One-line ``ValueError`` unless ``value`` is a (low, high) pair with 0 < low < high."""
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not 0 < value[0] < value[1]:
        raise ValueError(f'{name} must be (low, high){unit} with 0 < low < high, got {value!r}')


def check_probability(name, value):
    if not 0 <= value <= 1:
        raise ValueError(f'{name} is a probability in [0, 1], got {value!r}')


@functools.lru_cache(maxsize=1)
def load_textures():
    """The photographs as (float32 RGB in [0, 1], is-grey) pairs (read once per process)."""
    import skimage
    from PIL import Image
    folder = osp.join(osp.dirname(skimage.__file__), 'data')
    textures = []
    for name in PHOTOS:
        path = osp.join(folder, name)
        if osp.isfile(path):
            photo = np.asarray(Image.open(path).convert('RGB'), np.float32) / 255.0
            grey = bool(np.abs(photo - photo.mean(2, keepdims=True)).max() < 0.02)
            textures.append((photo, grey))
    if len(textures) < 4:
        raise FileNotFoundError(f'{folder}: procedural scenes need scikit-image\'s bundled photographs '
                                f'({", ".join(PHOTOS)})')
    return tuple(textures)


def shape_mask(rng, height, width):
    """A random shape's boolean mask on the canvas (may leave the frame, may be empty)."""
    import cv2
    mask = np.zeros((height, width), np.uint8)
    side = min(height, width)
    radius = side * float(np.exp(rng.uniform(np.log(0.08), np.log(0.45))))
    cy, cx = rng.uniform(-0.1, 1.1) * height, rng.uniform(-0.1, 1.1) * width
    kind = SHAPES[rng.choice(len(SHAPES), p=(0.25, 0.25, 0.15, 0.2, 0.15))]
    if kind == 'ellipse':
        axes = (max(1, int(radius)), max(1, int(radius * rng.uniform(0.3, 1.0))))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0, 360, 1, -1)
    elif kind == 'polygon':
        count = int(rng.integers(3, 10))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        radii = radius * rng.uniform(0.4, 1.0, count)
        points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    elif kind == 'rectangle':
        box = ((cx, cy), (2 * radius, 2 * radius * rng.uniform(0.15, 1.0)), rng.uniform(0, 180))
        cv2.fillPoly(mask, [np.round(cv2.boxPoints(box)).astype(np.int32)], 1)
    elif kind == 'blob':
        cells = int(rng.integers(3, 7))
        noise = rng.standard_normal((cells, cells)).astype(np.float32)
        diameter = max(4, int(2 * radius))
        field = cv2.resize(noise, (diameter, diameter), interpolation=cv2.INTER_CUBIC)
        yy, xx = np.mgrid[-1:1:diameter * 1j, -1:1:diameter * 1j]
        blob = (field + 1.5 * (1 - (xx ** 2 + yy ** 2)) > 1.0).astype(np.uint8)
        top, left = int(cy) - diameter // 2, int(cx) - diameter // 2
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + diameter, height), min(left + diameter, width)
        if y1 > y0 and x1 > x0:
            mask[y0:y1, x0:x1] = blob[y0 - top:y1 - top, x0 - left:x1 - left]
    else:  # a thick stroke: stems, poles, leaves
        count = int(rng.integers(2, 5))
        step = radius * rng.uniform(0.5, 1.0, count)
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.uniform(-0.6, 0.6, count))
        points = np.stack([cx + np.concatenate([[0], np.cumsum(step * np.cos(heading))]),
                           cy + np.concatenate([[0], np.cumsum(step * np.sin(heading))])], 1)
        cv2.polylines(mask, [np.round(points).astype(np.int32)], False, 1,
                      thickness=int(rng.integers(3, max(4, side // 16))))
    return mask.astype(bool)


def texture_window(rng, textures, height, width, box, flat_prob):
    """The ``box`` = (y0, y1, x0, x1) window of a canvas-sized texture: a jittered,
    rescaled crop of a photo, or flat shaded colour (only the window is computed)."""
    import cv2
    y0, y1, x0, x1 = box
    if rng.random() < flat_prob:
        colour = rng.uniform(0.05, 0.95, 3).astype(np.float32)
        yy, xx = np.ogrid[y0:y1, x0:x1]
        shade = (1 + rng.uniform(-0.25, 0.25) * (xx / width - 0.5)
                 + rng.uniform(-0.25, 0.25) * (yy / height - 0.5)).astype(np.float32)
        return np.clip(colour * shade[..., None], 0, 1)
    photo, grey = textures[rng.integers(len(textures))]
    photo_h, photo_w = photo.shape[:2]
    crop = int(min(photo_h, photo_w, max(16, max(height, width) * rng.uniform(0.5, 2.0))))
    top, left = rng.integers(0, photo_h - crop + 1), rng.integers(0, photo_w - crop + 1)
    # the crop resized to the canvas (bilinear, pixel centres aligned), sampled on the window only
    scale_y, scale_x = crop / height, crop / width
    warp = np.array([[scale_x, 0, left + (x0 + 0.5) * scale_x - 0.5],
                     [0, scale_y, top + (y0 + 0.5) * scale_y - 0.5]], np.float64)
    patch = cv2.warpAffine(photo, warp, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REFLECT)
    if grey:
        patch = patch[..., :1] * rng.uniform(0.3, 1.0, 3).astype(np.float32)
    gain = rng.uniform(0.6, 1.3, 3).astype(np.float32)
    return np.clip(patch * gain + np.float32(rng.uniform(-0.15, 0.15)), 0, 1)




class ProceduralDataset(JointUpsamplingDataset):
    """``num_samples`` generated samples, sample i from seed ``(seed, i)``, made on the fly.

    Each sample carries a ``loader`` (``load_pair`` bound to its seed and the
    ``generator`` keyword arguments), so ``LoadJointUpsamplingSample`` and the
    joint-upsampling pipelines run unchanged. Subclasses set ``generate`` (whose
    keyword arguments ``generator`` may set), ``load_pair`` (seed, **generator ->
    (guide, target)) and ``check_generator`` (raises ``ValueError`` on bad arguments).
    """
    generate = None
    load_pair = None

    @staticmethod
    def check_generator(**kwargs):
        pass

    def __init__(self, num_samples=2000, seed=0, generator=None, **kwargs):
        if not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise ValueError(f'num_samples must be a positive int, got {num_samples!r}')
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.generator = dict(generator or {})
        defaults = {name: p.default for name, p in inspect.signature(self.generate).parameters.items()
                    if name != 'seed'}
        unknown = sorted(set(self.generator) - set(defaults))
        if unknown:
            raise ValueError(f'{type(self).__name__}: unknown generator arguments {unknown}; '
                             f'known: {sorted(defaults)}')
        self.check_generator(**{**defaults, **self.generator})
        super().__init__(**kwargs)

    def list_samples(self):
        return [dict(loader=functools.partial(self.load_pair, (self.seed, index), **self.generator),
                     name=f'procedural_{self.seed}_{index:05d}') for index in range(self.num_samples)]
