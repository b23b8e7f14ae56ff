"""Config loading shared by the tools: overrides, work dir, remote checkpoints."""
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


def test_remote_checkpoint_named_in_error(tmp_path):
    config = tmp_path / 'upstream.py'
    config.write_text("_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'\n")
    with pytest.raises(launch.ConfigError, match='model.backbone.init_cfg.checkpoint'):
        launch.load_config(str(config))


def test_missing_base_file_is_named(tmp_path):
    config = tmp_path / 'broken.py'
    config.write_text("_base_ = './no_such_base.py'\n")
    with pytest.raises(launch.ConfigError, match='no_such_base.py'):
        launch.load_config(str(config))
