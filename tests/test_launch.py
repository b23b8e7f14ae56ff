"""Config loading shared by the tools: overrides, work dir, remote checkpoints, --auto-scale-lr."""
import os.path as osp

import pytest

from convdense import launch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
BASELINE = osp.join(REPO, 'configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')


def test_overrides_of_existing_and_new_leaves_apply():
    cfg = launch.load_config(BASELINE, {'model.backbone.depth': 101,
                                        'model.backbone.frozen_stages': 2,
                                        'train_cfg.max_epochs': 3,
                                        'brand_new_top_level': 1})
    assert cfg.model.backbone.depth == 101 and cfg.train_cfg.max_epochs == 3
    assert cfg.brand_new_top_level == 1
    assert cfg.work_dir == osp.join('./work_dirs', 'mask-rcnn_r50_fpn_1x_coco')


@pytest.mark.parametrize('key, parent', [('model.backbon.depth', 'model.backbon'),
                                         ('trian_cfg.max_epochs', 'trian_cfg'),
                                         ('model.roi_head.bbox_head.x.y', 'model.roi_head.bbox_head.x')])
def test_override_under_a_missing_parent_is_refused(key, parent):
    with pytest.raises(launch.ConfigError, match=f"unknown config key '{parent}'"):
        launch.load_config(BASELINE, {key: 1})


def test_work_dir_argument_wins(tmp_path):
    assert launch.load_config(BASELINE, work_dir=str(tmp_path)).work_dir == str(tmp_path)


def _upstream(tmp_path, extra=''):
    config = tmp_path / 'upstream.py'
    config.write_text("_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'\n" + extra)
    return str(config)


def test_loading_a_config_with_a_remote_checkpoint_keeps_it(tmp_path):
    """Loading never touches the network: ``fetch_checkpoints`` downloads, for training
    (tests/test_remote_checkpoints.py)."""
    cfg = launch.load_config(_upstream(tmp_path))
    assert cfg.model.backbone.init_cfg.checkpoint == 'torchvision://resnet50'


def test_auto_scale_lr_is_enabled_where_the_config_names_its_batch_size(tmp_path):
    cfg = launch.load_config(_upstream(tmp_path))
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=16)  # upstream's default
    launch.enable_auto_scale_lr(cfg)
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=16)
    for extra in ('auto_scale_lr = None\n', 'auto_scale_lr = dict(_delete_=True, enable=False)\n'):
        cfg = launch.load_config(_upstream(tmp_path, extra))
        with pytest.raises(launch.ConfigError, match='auto_scale_lr.base_batch_size'):
            launch.enable_auto_scale_lr(cfg)


def test_missing_base_file_is_named(tmp_path):
    config = tmp_path / 'broken.py'
    config.write_text("_base_ = './no_such_base.py'\n")
    with pytest.raises(launch.ConfigError, match='no_such_base.py'):
        launch.load_config(str(config))
