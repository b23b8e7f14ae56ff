"""Every shipped config reads its data through the checks of
convdense.datasets.upstream_checks (or through a convdense dataset, which checks
its own files): mmdet COCO datasets are ``convdense.CheckedCocoDataset``, mmseg
pipelines run ``CheckSegLabels`` right after ``LoadAnnotations`` with the decode
head's classes and ignore index. A config that inherits an upstream dataset
without the check fails here, naming the config and the split."""
import glob
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


def test_every_config_is_found():
    assert len(CONFIGS) >= 50 and any(c.startswith('configs/digit_scenes/') for c in CONFIGS)


@pytest.mark.parametrize('config', CONFIGS)
def test_shipped_config_reads_data_through_the_checks(config):
    from mmengine.config import Config
    from mmseg.datasets import BaseSegDataset
    cfg = Config.fromfile(osp.join(REPO, config))
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
