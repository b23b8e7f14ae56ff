"""Every shipped config reads its data through the checks of
convdense.datasets.upstream_checks (or through a convdense dataset, which checks
its own files): mmdet COCO datasets are ``convdense.CheckedCocoDataset``, mmseg
pipelines run ``CheckSegLabels`` right after ``LoadAnnotations`` with the decode
head's classes and ignore index. A config that inherits an upstream dataset
without the check fails here, naming the config and the split.

Every shipped backbone is also trained as its starting point allows: one that
starts from no weights freezes no stage and trains its norms (a frozen random
stem, or BatchNorm kept at mean 0 / variance 1, would never learn); one that
freezes or evaluates norms names its weights, and a missing local checkpoint is
a one-line error giving the converter command that makes it.
"""
import functools
import glob
import inspect
import json
import os.path as osp

import pytest

import convdense  # noqa: F401  (before mmdet/mmseg imports: compat fixes)
from convdense.datasets.upstream_checks import with_seg_label_check

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(osp.relpath(path, REPO)
                 for path in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in path)
SPLITS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _dataset_class(type_name, default_scope):
    """The class a dataset ``type`` names (``'convdense.X'``, ``'mmdet.X'``, or a
    name in the config's ``default_scope``), and the scope it was found in."""
    from mmdet.registry import DATASETS as MMDET
    from mmseg.registry import DATASETS as MMSEG

    from convdense.registry import DATASETS as CONVDENSE
    scope, _, name = type_name.rpartition('.')
    registries = {'convdense': [CONVDENSE], 'mmdet': [MMDET], 'mmseg': [MMSEG]}[
        scope or default_scope]
    for registry in registries:
        cls = registry.get(name)  # imports the registry's locations first
        if cls is not None:
            return cls, registry.scope
    raise AssertionError(f'unknown dataset type {type_name!r}')


def _innermost(dataset):
    while 'dataset' in dataset:  # RepeatDataset / ClassBalancedDataset wrappers
        dataset = dataset['dataset']
    return dataset


@functools.lru_cache(maxsize=None)
def _load(config):
    """``config`` read once per test process (read-only use: tests must not modify it)."""
    from mmengine.config import Config
    return Config.fromfile(osp.join(REPO, config))


def test_every_config_is_found():
    assert len(CONFIGS) >= 50 and any(c.startswith('configs/digit_scenes/') for c in CONFIGS)


@pytest.mark.parametrize('config', CONFIGS)
def test_shipped_config_reads_data_through_the_checks(config):
    from mmseg.datasets import BaseSegDataset
    cfg = _load(config)
    for split in SPLITS:
        if cfg.get(split) is None:
            continue
        dataset = _innermost(cfg[split]['dataset'])
        cls, scope = _dataset_class(dataset['type'], cfg.get('default_scope', 'mmdet'))
        where = f'{config} {split}'
        if 'mask-rcnn' in config:  # the COCO configs (and the scaling ones computed from them)
            assert dataset['type'] == 'convdense.CheckedCocoDataset', where
        if scope == 'convdense':
            continue  # convdense's own datasets check their files (tests/datasets)
        assert scope == 'mmseg' and issubclass(cls, BaseSegDataset), \
            f"{where}: unchecked dataset {dataset['type']!r} (use 'convdense.CheckedCocoDataset')"
        head = cfg.model.decode_head
        head = head[-1] if isinstance(head, list) else head
        steps = [dict(step) for step in dataset['pipeline']]
        for step in steps:  # CheckSegLabels' default ignore index, written out
            if step['type'].split('.')[-1] == 'CheckSegLabels':
                step.setdefault('ignore_index', 255)
        expected = with_seg_label_check(steps, head.num_classes, head.get('ignore_index', 255))
        assert steps == expected, f'{where}: CheckSegLabels(num_classes={head.num_classes}) ' \
            f"missing after LoadAnnotations: {[s['type'] for s in steps]}"


def test_with_seg_label_check_inserts_once_after_load_annotations():
    pipeline = [dict(type='LoadImageFromFile'), dict(type='mmseg.LoadAnnotations'),
                dict(type='PackSegInputs')]
    checked = with_seg_label_check(pipeline, 150)
    check = dict(type='convdense.CheckSegLabels', num_classes=150, ignore_index=255)
    assert checked == [pipeline[0], pipeline[1], check, pipeline[2]]
    assert with_seg_label_check(checked, 150) == checked
    assert with_seg_label_check(checked, 11, 0)[2] == dict(check, num_classes=11, ignore_index=0)
    assert pipeline[2] == dict(type='PackSegInputs') and len(pipeline) == 3  # not modified


def test_digit_crop_dataset_checks_its_json(tmp_path):
    """The digit classifier's dataset reads the same COCO json: a malformed one is
    the checker's one-line error, not a KeyError."""
    from convdense.registry import DATASETS
    path = tmp_path / 'instances.json'
    path.write_text(json.dumps(dict(images=[dict(id=1, file_name='a.png', width=8, height=8)],
                                    annotations=[dict(id=1, image_id=1, category_id=1, area=4)],
                                    categories=[dict(id=1, name='0')])))
    with pytest.raises(ValueError, match=r"instances.json: annotation 1 lacks \['bbox'\]"):
        DATASETS.build(dict(type='convdense.DigitCropDataset', ann_file=str(path),
                            data_prefix=dict(img=str(tmp_path))))


# ------------------------------------------------------- weights, frozen stages, norm_eval

def _backbone(model):
    """The backbone config, unwrapped from a compound-scaled ``StageBlocks``."""
    backbone = model.get('backbone') or {}
    while str(backbone.get('type', '')).split('.')[-1] == 'StageBlocks':
        backbone = backbone['backbone']
    return backbone


def backbone_weights(model):
    """The checkpoint a model's backbone starts from (``model.pretrained``,
    ``backbone.pretrained`` or a ``Pretrained`` ``init_cfg``), or None."""
    backbone = _backbone(model)
    for source in (model.get('pretrained'), backbone.get('pretrained')):
        if source:
            return source
    init = backbone.get('init_cfg')
    for entry in init if isinstance(init, list) else [init]:
        if isinstance(entry, dict) and entry.get('type') == 'Pretrained':
            return entry.get('checkpoint') or '<Pretrained without a checkpoint>'
    return None


def _argument(backbone, name, scope):
    """``backbone[name]``, or the default of the class its ``type`` names (mmdet's
    ResNet evaluates norms unless told otherwise, mmseg's does not); None when the
    class takes no such argument."""
    from convdense.models.scaling import resolve_backbone_class
    if name in backbone:
        return backbone[name]
    cls = resolve_backbone_class(backbone['type'], scope)
    for klass in cls.__mro__:
        parameter = inspect.signature(klass.__init__).parameters.get(name)
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    return None


def training_problems(cfg):
    """What is wrong with how a config's backbone trains from its starting point."""
    model = cfg.get('model') or {}
    backbone = _backbone(model)
    if 'type' not in backbone:
        return []
    scope = cfg.get('default_scope', 'mmdet')
    weights = backbone_weights(model)
    frozen = _argument(backbone, 'frozen_stages', scope)
    norm_eval = _argument(backbone, 'norm_eval', scope)
    if weights == '<Pretrained without a checkpoint>':
        return ['init_cfg Pretrained names no checkpoint']
    if weights is not None:
        return []
    problems = []
    if frozen is not None and frozen >= 0:
        problems.append(f'frozen_stages={frozen} on a backbone that starts from no weights')
    if norm_eval:
        problems.append('norm_eval=True on a backbone that starts from no weights')
    return problems


@pytest.mark.parametrize('config', CONFIGS)
def test_backbone_trains_as_its_starting_point_allows(config):
    assert training_problems(_load(config)) == [], config


def test_the_check_catches_upstream_freezing_without_weights():
    """Upstream's Mask R-CNN with its weights removed: a frozen random stem and
    norms evaluated from their initial statistics are both named."""
    from mmengine.config import Config
    cfg = Config(dict(default_scope='mmdet', model=dict(backbone=dict(
        type='ResNet', depth=50, frozen_stages=1, init_cfg=None))))
    assert training_problems(cfg) == [
        'frozen_stages=1 on a backbone that starts from no weights',
        'norm_eval=True on a backbone that starts from no weights']  # mmdet's default
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint='torchvision://resnet50')
    assert training_problems(cfg) == []
    cfg.model.backbone.init_cfg = dict(type='Pretrained')
    assert training_problems(cfg) == ['init_cfg Pretrained names no checkpoint']


#: Shipped configs that start from converted ImageNet weights under checkpoints/.
CONVERTED = [config for config in CONFIGS if config.startswith(('configs/mask_rcnn/',
                                                                 'configs/segmentation/'))]


def test_detection_and_segmentation_configs_start_from_imagenet():
    """The default configs of every backbone start from ImageNet weights: the
    ResNet-50 baselines from upstream's remote ones, the others from a converted
    checkpoint under checkpoints/ (git-ignored); from-scratch ones are in scratch/."""
    assert len(CONVERTED) == 15
    for config in CONVERTED:
        weights = backbone_weights(_load(config).model)
        if '_r50' in config:
            assert weights == 'torchvision://resnet50', config
        else:
            assert weights.startswith('checkpoints/') and weights.endswith('.pth'), config
    scratch = [c for c in CONFIGS if c.startswith(('configs/scratch/', 'configs/scaling/'))]
    assert len(scratch) >= 20
    assert all(backbone_weights(_load(config).model) is None for config in scratch)


@pytest.mark.parametrize('config', [c for c in CONVERTED if '_r50' not in c])
def test_missing_converted_checkpoint_names_the_converter_command(config):
    """Building the config's backbone and initialising it without the file raises one
    line with the command that makes it (a converter that exists, writing that path)
    and where its source is published. No download, no weights needed."""
    import shlex

    from convdense.models.complexity import build_backbone
    cfg = _load(config)
    weights = backbone_weights(cfg.model)
    if osp.exists(osp.join(REPO, weights)):
        pytest.skip(f'{weights} exists here')
    backbone_cfg = {k: v for k, v in cfg.model.backbone.items() if k != 'norm_cfg'}
    backbone = build_backbone(dict(backbone_cfg, norm_cfg=dict(type='BN')), cfg.default_scope)
    with pytest.raises(FileNotFoundError) as error:
        backbone.init_weights()
    message = str(error.value)
    assert '\n' not in message and f'pretrained checkpoint {weights} not found' in message
    command = message.split('make it with: ')[1].split(' (')[0]
    words = shlex.split(command)
    assert words[0] == 'python' and words[3] == weights, command
    assert osp.isfile(osp.join(REPO, words[1])), command
    assert ' is published at http' in message, message
    # the config's comment gives the same command
    assert command in open(osp.join(REPO, config)).read(), command


def test_missing_checkpoint_without_a_release_points_at_scratch():
    from convdense.models.complexity import build_backbone
    from convdense.models.pretrained import check_checkpoint_file
    check_checkpoint_file('torchvision://resnet50', 'ResNet', None)  # left to mmengine
    backbone = build_backbone(dict(type='convdense.ACNet', depth=50, mode='pixel', init_cfg=dict(
        type='Pretrained', checkpoint='checkpoints/acnet50_pixel.pth')))
    with pytest.raises(FileNotFoundError, match=r'^ACNet: pretrained checkpoint '
                       r'checkpoints/acnet50_pixel.pth not found; no released ImageNet weights '
                       r'are known for this backbone; train it from scratch \(configs/scratch/\)'):
        backbone.init_weights()
