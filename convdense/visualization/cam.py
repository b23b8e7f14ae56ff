"""Class activation maps for mmdet detectors, mmseg segmentors and classifiers.

The CAM arithmetic is pytorch-grad-cam's (``grad-cam`` 1.5.x); this module only
adapts OpenMMLab models to it:

* :class:`ModelOutputs` makes any of the three model kinds a module from the
  preprocessed image batch to per-image outputs a grad-cam target can score
  (detections as grad-cam's ``boxes``/``scores``/``labels`` dicts, segmentation
  logits, class logits).
* :class:`StageProbes` routes each target layer's output through an
  ``nn.Identity`` probe, which is what grad-cam hooks. A layer returning a tuple
  (Oct-ResNet's ``(high, low)`` stages) is merged into one tensor the way
  :func:`~convdense.ops.octconv.merge_octave` hands it to a neck, and split back
  so the next layer sees its usual input (grad-cam's own hooks skip tuples).
* Explicit targets (:func:`default_target`, :class:`DetectionCategoryTarget`)
  are always passed: grad-cam's ``targets=None`` path calls ``outputs.cpu()``.
* :func:`image_from_input_frame` maps a map on the padded network input back to the
  original image (undoes padding, resize and flip from the sample's metainfo).

Design notes: ``docs/cams.md``.
"""
import copy
import difflib
import os.path as osp

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

#: ``--method`` name -> pytorch-grad-cam class name. Methods that re-run the model
#: on batches of masked images (Score-CAM, Ablation-CAM) are left out: they need a
#: model whose batch output is one tensor, and cost hundreds of forwards per image.
METHODS = {
    'gradcam': 'GradCAM',
    'gradcam++': 'GradCAMPlusPlus',
    'xgradcam': 'XGradCAM',
    'hirescam': 'HiResCAM',
    'gradcamelementwise': 'GradCAMElementWise',
    'layercam': 'LayerCAM',
    'eigencam': 'EigenCAM',
    'eigengradcam': 'EigenGradCAM',
}


class CAMError(ValueError):
    """A problem with a CAM request (layer, method, target, image), in one line."""


# --------------------------------------------------------------------------- models

def model_kind(model):
    """``'det'`` for an mmdet detector, ``'seg'`` for an mmseg segmentor, else ``'cls'``."""
    from mmdet.models.detectors import BaseDetector
    if isinstance(model, BaseDetector):
        return 'det'
    try:
        from mmseg.models.segmentors import BaseSegmentor
    except ImportError:
        BaseSegmentor = ()
    if BaseSegmentor and isinstance(model, BaseSegmentor):
        return 'seg'
    return 'cls'


def load_model(config, checkpoint=None, cfg_options=None):
    """Build ``config``'s model on the CPU in eval mode, initialised as training
    would (``init_weights``) and then loaded from ``checkpoint`` if given.

    Returns ``(model, cfg)``; ``model.dataset_meta['classes']`` holds the class names
    (from the checkpoint, else the config's test dataset) when they are known.
    """
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS, DefaultScope
    from mmengine.runner import load_checkpoint

    from convdense import launch
    cfg = launch.load_config(config, cfg_options) if isinstance(config, str) else config
    scope = cfg.get('default_scope', 'mmdet')
    import importlib
    importlib.import_module(f'{scope}.registry' if scope != 'convdense' else 'convdense.registry')
    if scope in ('mmdet', 'mmseg'):
        importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(copy.deepcopy(cfg.model))
        with _quiet_current_logger():  # init_weights logs every parameter at INFO
            model.init_weights()
    model = revert_sync_batchnorm(model)
    meta = {}
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise CAMError(f'checkpoint not found: {checkpoint}')
        try:
            meta = load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                                   logger='silent').get('meta', {})
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0][:300]
            raise CAMError(f'{checkpoint} does not fit the model of {cfg.filename}: {first}') from exc
    classes = (meta.get('dataset_meta') or {}).get('classes') or _config_classes(cfg, scope)
    model.dataset_meta = dict(classes=tuple(classes)) if classes else {}
    model.cfg = cfg
    return model.eval(), cfg


class _quiet_current_logger:
    def __enter__(self):
        import logging

        from mmengine.logging import MMLogger
        self.logger = MMLogger.get_current_instance()
        self.level = self.logger.level
        self.logger.setLevel(logging.WARNING)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


def _config_classes(cfg, scope):
    """Class names of the config's test dataset: its ``metainfo``, else its class's."""
    from mmengine.registry import DATASETS
    loader = cfg.get('test_dataloader') or {}
    dataset = loader.get('dataset') or {}
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes or 'type' not in dataset:
        return classes
    with DATASETS.switch_scope_and_registry(scope) as registry:
        dataset_class = registry.get(dataset['type'])
    return getattr(dataset_class, 'METAINFO', {}).get('classes')


_ANNOTATION_LOADERS = ('LoadAnnotations', 'LoadPanopticAnnotations')


def test_pipeline(cfg):
    """The config's own test pipeline, without annotation loading (CAMs need
    images only), as a callable ``dict(img_path=...) -> packed sample``."""
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    if loader is None:
        raise CAMError('the config has no test_dataloader (its test pipeline is what '
                       'feeds the CAM)')
    dataset = loader['dataset']
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset['dataset']
    steps = [step for step in copy.deepcopy(dataset['pipeline'])
             if step['type'].split('.')[-1] not in _ANNOTATION_LOADERS]
    if not steps or not steps[0]['type'].split('.')[-1].startswith('LoadImageFrom'):
        # e.g. a classifier trained on crops cut around annotated boxes: the whole
        # image goes in instead (a global-pool classifier takes any size).
        return load_whole_image
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        return Compose(steps)


def load_whole_image(results):
    """The image file as an RGB ``(3, H, W)`` uint8 tensor, unresized: the input of
    a model whose test pipeline does not start by loading an image file."""
    import mmcv
    image = mmcv.imread(results['img_path'], channel_order='rgb')
    return dict(inputs=torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))))


def prepare_image(model, pipeline, image_path):
    """Run one image through the test pipeline and the model's own
    ``data_preprocessor``. Returns ``(inputs (1, 3, H, W), data_samples)``."""
    if not osp.isfile(image_path):
        raise CAMError(f'image not found: {image_path}')
    packed = pipeline(dict(img_path=image_path, img_id=0))
    batch = dict(inputs=[packed['inputs']], data_samples=[packed.get('data_samples')])
    if batch['data_samples'][0] is None:
        batch.pop('data_samples')
    data = model.data_preprocessor(batch, False)
    return data['inputs'], data.get('data_samples')


class ModelOutputs(nn.Module):
    """``model`` as a module from the preprocessed batch to per-image outputs.

    ``det``: a list of ``dict(boxes (K, 4), scores (K,), labels (K,))`` in the input
    frame (what grad-cam's ``FasterRCNNBoxScoreTarget`` reads); ``seg``: logits
    ``(N, C, H, W)`` at the input size; ``cls``: logits ``(N, C)``.
    """

    def __init__(self, model, data_samples=None):
        super().__init__()
        self.model = model
        self.kind = model_kind(model)
        self.data_samples = data_samples

    def forward(self, inputs):
        if self.kind == 'det':
            results = self.model.predict(inputs, copy.deepcopy(self.data_samples), rescale=False)
            return [dict(boxes=r.pred_instances.bboxes, scores=r.pred_instances.scores,
                         labels=r.pred_instances.labels) for r in results]
        if self.kind == 'seg':
            return self.model.inference(inputs, [s.metainfo for s in self.data_samples])
        from mmengine.model import BaseModel
        if isinstance(self.model, BaseModel):
            logits = self.model(inputs, self.data_samples, mode='tensor')
        else:
            logits = self.model(inputs)
        if not (torch.is_tensor(logits) and logits.dim() == 2):
            raise CAMError(f'a classifier must return (N, num_classes) logits; '
                           f'{type(self.model).__name__} returned {_describe(logits)}')
        return logits


def _describe(value):
    if torch.is_tensor(value):
        return f'a tensor of shape {tuple(value.shape)}'
    return f'a {type(value).__name__}'


# --------------------------------------------------------------------------- layers

def default_target_layers(model):
    """The backbone's stages (``backbone.layer1`` ... for ResNet-family backbones)."""
    backbone = getattr(model, 'backbone', None)
    stages = getattr(backbone, 'res_layers', None)
    if not stages:
        raise CAMError(f'{type(model).__name__} has no backbone.res_layers to default to; '
                       f'name the layers with --target-layers')
    return [f'backbone.{name}' for name in stages]


def resolve_layers(model, names):
    """``[(name, module)]`` for dotted module paths, or a one-line :class:`CAMError`
    naming the bad path and the closest existing ones."""
    modules = dict(model.named_modules())
    resolved = []
    for name in names:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise CAMError(f"target layer names are module paths like 'backbone.layer4', "
                           f'got {name!r}')
        if name not in modules:
            close = difflib.get_close_matches(name, list(modules), n=3)
            hint = f'; closest: {", ".join(close)}' if close else ''
            raise CAMError(f"target layer '{name}' is not a module of "
                           f'{type(model).__name__}{hint}')
        resolved.append((name, modules[name]))
    if len(set(names)) != len(names):
        raise CAMError(f'target layers repeat a name: {", ".join(names)}')
    return resolved


def merge_feature_tuple(features):
    """One ``(N, sum C, H, W)`` map from a layer's tuple output of 4-D maps at
    integer-ratio resolutions (``None`` entries skipped): each map is nearest-
    upsampled to the largest and concatenated, as ``merge_octave`` does.

    Returns ``(merged, layout)``; ``layout`` lets :func:`split_feature_tuple` undo it.
    """
    present = [f for f in features if f is not None]
    if not present or any(not torch.is_tensor(f) or f.dim() != 4 for f in present):
        raise CAMError(f'a tuple-output layer must give 4-D feature maps (or None); '
                       f'got {", ".join(_describe(f) for f in features)}')
    height = max(f.shape[2] for f in present)
    width = max(f.shape[3] for f in present)
    parts, layout = [], []
    for feature in features:
        if feature is None:
            layout.append(None)
            continue
        factor = (-(-height // feature.shape[2]), -(-width // feature.shape[3]))
        if factor != (1, 1):
            feature = feature.repeat_interleave(factor[0], 2).repeat_interleave(factor[1], 3)
            feature = feature[:, :, :height, :width]
        layout.append(factor)
        parts.append(feature)
    return torch.cat(parts, 1), layout


def split_feature_tuple(merged, features, layout):
    """The tuple :func:`merge_feature_tuple` merged, with values equal to
    ``features`` and gradients flowing through ``merged``.

    A pooled-back map would differ from the original in the last bit, so the
    value is the original's and only the gradient path goes through the
    average pool (the adjoint of the nearest upsampling, up to the factor's area):
    the next layer computes exactly what it did without the probe.
    """
    outputs, start = [], 0
    for feature, factor in zip(features, layout):
        if feature is None:
            outputs.append(None)
            continue
        part = merged[:, start:start + feature.shape[1]]
        start += feature.shape[1]
        if factor != (1, 1):
            pooled = F.avg_pool2d(part, factor, factor, ceil_mode=True)
            part = feature.detach() + (pooled - pooled.detach())
        outputs.append(part)
    return type(features)(outputs) if not hasattr(features, '_fields') else type(features)(*outputs)


class StageProbes:
    """Context manager: each named layer's output passes through an ``nn.Identity``
    probe (``self.probes[name]``) that grad-cam can hook; tuple outputs are merged
    for the probe and split back for the rest of the network. Records the order
    the layers ran in (``self.order``) and how often."""

    def __init__(self, layers):
        self.layers = list(layers)
        self.probes = {name: nn.Identity() for name, _ in self.layers}
        self.order = []
        self._handles = []

    def _hook(self, name):
        def hook(module, args, output):
            self.order.append(name)
            probe = self.probes[name]
            if torch.is_tensor(output):
                return probe(output)
            if isinstance(output, (tuple, list)):
                merged, layout = merge_feature_tuple(output)
                return split_feature_tuple(probe(merged), output, layout)
            raise CAMError(f"target layer '{name}' returns {_describe(output)}; "
                           f'a CAM needs a feature map or a tuple of them')
        return hook

    def __enter__(self):
        self._handles = [module.register_forward_hook(self._hook(name))
                         for name, module in self.layers]
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def check_ran_once(self):
        """Raise if a layer did not run, or ran more than once, in the last forward."""
        for name, _ in self.layers:
            count = self.order.count(name)
            if count != 1:
                raise CAMError(f"target layer '{name}' ran {count} times in one forward "
                               f'pass; a CAM layer must run exactly once')


# --------------------------------------------------------------------------- targets

class DetectionCategoryTarget:
    """Sum of the scores of the detections labelled ``category`` (the config's own
    ``score_thr`` decides which boxes are detections)."""

    def __init__(self, category):
        self.category = int(category)

    def __call__(self, detections):
        return detections['scores'][detections['labels'] == self.category].sum()


def describe_categories(model):
    """The model's class names (``dataset_meta['classes']``), or ``[]``."""
    return list((getattr(model, 'dataset_meta', None) or {}).get('classes') or ())


def category_index(model, category):
    """An int index, or a class name looked up in the model's classes."""
    classes = describe_categories(model)
    if isinstance(category, str) and not category.lstrip('-').isdigit():
        if category not in classes:
            raise CAMError(f"unknown target category '{category}'; the model's classes: "
                           f'{", ".join(map(str, classes)) or "(none recorded)"}')
        return classes.index(category)
    index = int(category)
    count = _num_classes(model)
    if count is not None and not 0 <= index < count:
        raise CAMError(f'target category {index} is out of range for {count} classes')
    return index


def _num_classes(model):
    for owner in (getattr(getattr(model, 'roi_head', None), 'bbox_head', None),
                  getattr(model, 'bbox_head', None), getattr(model, 'decode_head', None)):
        if owner is not None and hasattr(owner, 'num_classes'):
            return int(owner.num_classes)
    classes = describe_categories(model)
    return len(classes) or None


def make_target(kind, output, category=None):
    """The grad-cam target for one image's ``output`` and a description of it.

    ``det``: without ``category`` the top-scoring detected box (grad-cam's
    ``FasterRCNNBoxScoreTarget``: its score plus IoU with the matching box),
    with it the summed scores of that category's detections. ``seg``: the class's
    logits over its predicted region (grad-cam's ``SemanticSegmentationTarget``;
    the most-predicted non-background class by default; the whole image when the
    class is predicted nowhere). ``cls``: the class logit (default: the top one).

    Returns ``(target, info)``; ``target`` is None when there is nothing to
    explain (a detector with no detection of the category).
    """
    from pytorch_grad_cam.utils.model_targets import (ClassifierOutputTarget,
                                                      FasterRCNNBoxScoreTarget,
                                                      SemanticSegmentationTarget)
    if kind == 'det':
        scores, labels = output['scores'].detach(), output['labels']
        if category is None:
            if len(scores) == 0:
                return None, dict(target='box', detections=0)
            top = int(scores.argmax())
            box = output['boxes'][top].detach().cpu().numpy()
            return (FasterRCNNBoxScoreTarget([int(labels[top])], [box]),
                    dict(target='box', category=int(labels[top]), score=float(scores[top]),
                         box=[round(float(v), 2) for v in box]))
        count = int((labels == category).sum())
        info = dict(target='category', category=int(category), detections=count,
                    score=float(scores[labels == category].sum()))
        return (DetectionCategoryTarget(category) if count else None), info
    if kind == 'seg':
        logits = output[0].detach()
        predicted = logits.argmax(0).cpu().numpy()
        if category is None:
            counts = np.bincount(predicted.ravel(), minlength=logits.shape[0])
            counts[0] = 0 if counts[1:].any() else counts[0]  # prefer a non-background class
            category = int(counts.argmax())
        region = (predicted == category)
        info = dict(target='category-region', category=int(category),
                    region_fraction=round(float(region.mean()), 6))
        if not region.any():
            region = np.ones_like(region)
            info['target'] = 'category-everywhere'
        return SemanticSegmentationTarget(int(category), region.astype(np.float32)), info
    logits = output[0].detach()
    if category is None:
        category = int(logits.argmax())
    return (ClassifierOutputTarget(int(category)),
            dict(target='class', category=int(category), logit=float(logits[category])))


# --------------------------------------------------------------------------- maps

def image_from_input_frame(cam, metainfo):
    """Map a ``(H_in, W_in)`` map on the (padded) network input back onto the
    original image: crop the padding, undo a flip, resize to ``ori_shape``."""
    import cv2
    if not metainfo:
        return cam
    height, width = metainfo.get('img_shape', cam.shape)[:2]
    cam = cam[:height, :width]
    if metainfo.get('flip'):
        direction = metainfo.get('flip_direction', 'horizontal')
        axes = {'horizontal': (1,), 'vertical': (0,), 'diagonal': (0, 1)}[direction]
        cam = np.flip(cam, axes)
    ori_height, ori_width = metainfo.get('ori_shape', (height, width))[:2]
    if (ori_height, ori_width) != cam.shape:
        cam = cv2.resize(np.ascontiguousarray(cam, dtype=np.float32), (ori_width, ori_height),
                         interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(cam, dtype=np.float32)


def cam_class(method):
    import pytorch_grad_cam
    if method not in METHODS:
        raise CAMError(f"unknown CAM method '{method}'; choose from {', '.join(METHODS)}")
    return getattr(pytorch_grad_cam, METHODS[method])


def stage_mean(maps):
    """pytorch-grad-cam's multi-layer aggregate of per-stage maps ``(S, H, W)``, each
    already scaled to [0, 1]: negatives clipped, the stages averaged, the result scaled
    to [0, 1] again (``scale_cam_image``) -> ``(H, W)``; what :func:`compute_cams`
    returns as ``mean``, rebuilt from saved stage maps."""
    from pytorch_grad_cam.utils.image import scale_cam_image
    maps = np.maximum(np.asarray(maps, np.float32), 0)
    return scale_cam_image(maps.mean(axis=0)[None])[0]


def compute_cams(model, inputs, data_samples, layer_names, method='gradcam', category=None):
    """CAMs of one preprocessed image for each named layer, on the original image.

    Returns ``dict(maps={layer: (H0, W0) float32 in [0, 1]}, mean=(H0, W0),
    target=info)``: grad-cam normalises each layer's map to [0, 1]; ``mean`` is
    grad-cam's multi-layer aggregate. Maps are all zero when there is nothing to
    explain (``info['target']`` says why).
    """
    if inputs.shape[0] != 1:
        raise CAMError(f'compute_cams takes one image, got a batch of {inputs.shape[0]}')
    layers = resolve_layers(model, layer_names)
    wrapped = ModelOutputs(model, data_samples).eval()
    kind = wrapped.kind
    if category is not None:
        category = category_index(model, category)
    metainfo = data_samples[0].metainfo if data_samples else {}
    with StageProbes(layers) as probes:
        with torch.no_grad():
            output = wrapped(inputs)
        probes.check_ran_once()
        target, info = make_target(kind, output[0] if kind == 'det' else output, category)
        classes = describe_categories(model)
        if info.get('category') is not None and info['category'] < len(classes):
            info['category_name'] = str(classes[info['category']])
        if 'box' in info and 'scale_factor' in metainfo:  # back onto the original image
            scale_x, scale_y = metainfo['scale_factor'][:2]
            info['box'] = [round(v / s, 2) for v, s in
                           zip(info['box'], (scale_x, scale_y, scale_x, scale_y))]
        order = list(probes.order)
        height, width = image_from_input_frame(np.zeros(inputs.shape[-2:], np.float32),
                                               metainfo).shape
        if target is None:
            zero = np.zeros((height, width), np.float32)
            return dict(maps={name: zero for name in order}, mean=zero, target=info)
        cam = cam_class(method)(wrapped, [probes.probes[name] for name in order])
        try:
            # Input gradients make every stage's output require grad, even frozen ones.
            image = inputs.detach().clone().requires_grad_(True)
            mean = cam(image, [target])
            per_layer = cam.compute_cam_per_layer(image, [target], False)
        finally:
            cam.activations_and_grads.release()
    maps = {name: image_from_input_frame(layer_map[0, 0], metainfo)
            for name, layer_map in zip(order, per_layer)}
    return dict(maps=maps, mean=image_from_input_frame(mean[0], metainfo), target=info)
