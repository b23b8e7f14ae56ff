"""tools/train.py and tools/test.py turn user mistakes into one-line errors."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# a config without remote weights: these tests check errors that come before any download
BASELINE = 'configs/scratch/mask-rcnn_r50-scratch_fpn_gn-all_6x_coco.py'


def run_tool(*args):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith('error:')]
    assert len(lines) == 1, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_missing_config_file():
    assert_one_line_error(run_tool('tools/train.py', 'configs/nope.py'),
                          'config file not found', 'configs/nope.py')


def test_misspelt_override_parent_key():
    assert_one_line_error(run_tool('tools/train.py', BASELINE, '--cfg-options',
                                   'model.backbon.depth=101'), "'model.backbon'")


def test_unknown_argument_of_a_module(tmp_path):
    result = run_tool('tools/train.py', BASELINE, '--work-dir', str(tmp_path),
                      '--cfg-options', 'model.backbone.no_such_option=1')
    assert_one_line_error(result, "unexpected keyword argument 'no_such_option'")


def test_upstream_config_that_would_download_is_refused(tmp_path):
    config = tmp_path / 'upstream.py'
    config.write_text("_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'\n")
    result = run_tool('tools/train.py', str(config), '--work-dir', str(tmp_path))
    assert_one_line_error(result, 'model.backbone.init_cfg.checkpoint', 'torchvision://resnet50')


def test_missing_checkpoint_for_test_tool():
    assert_one_line_error(run_tool('tools/test.py', BASELINE, 'missing.pth'),
                          'checkpoint not found', 'missing.pth')
