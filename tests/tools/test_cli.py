"""tools/train.py and tools/test.py turn user mistakes into one-line errors."""
import os
import socket
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# a config without remote weights: these tests check errors that come before any download
BASELINE = 'configs/scratch/mask-rcnn_r50-scratch_fpn_gn-all_6x_coco.py'


def run_tool(*args, env=None):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=None if env is None else dict(os.environ, **env))


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
    roots = [f'{split}_dataloader.dataset.data_root={tmp_path}' for split in ('train', 'val', 'test')]
    result = run_tool('tools/train.py', BASELINE, '--work-dir', str(tmp_path),
                      '--cfg-options', 'model.backbone.no_such_option=1', *roots)
    assert_one_line_error(result, "unexpected keyword argument 'no_such_option'")


def test_remote_checkpoint_that_does_not_answer_is_a_one_line_error_after_the_wait(tmp_path):
    """An upstream config whose ImageNet checkpoint sits behind a server that accepts
    and never answers (a closed network's symptom): the bounded wait, then one line."""
    config = tmp_path / 'upstream.py'
    config.write_text("_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'\n")
    with socket.socket() as silent:
        silent.bind(('127.0.0.1', 0))
        silent.listen(8)
        url = f'http://127.0.0.1:{silent.getsockname()[1]}/resnet50-0676ba61.pth'
        env = dict(CONVDENSE_DOWNLOAD_TIMEOUT='1', TORCH_HOME=str(tmp_path / 'torch'))
        # the data folders exist (a missing dataset fails first, before any download)
        roots = [f'{split}_dataloader.dataset.data_root={tmp_path}' for split in ('train', 'val', 'test')]
        result = run_tool('tools/train.py', str(config), '--work-dir', str(tmp_path), '--cfg-options',
                          f'model.backbone.init_cfg.checkpoint={url}', *roots, env=env)
        assert_one_line_error(result, "'model.backbone.init_cfg.checkpoint'", url, 'no answer')
        result = run_tool('tools/test.py', str(config), url, env=env)
        assert_one_line_error(result, 'checkpoint: cannot download', url, 'no answer (waited 1 s')


def test_auto_scale_lr_needs_a_base_batch_size(tmp_path):
    config = tmp_path / 'no_auto_scale.py'
    config.write_text(f"_base_ = '{REPO}/{BASELINE}'\nauto_scale_lr = None\n")
    result = run_tool('tools/train.py', str(config), '--auto-scale-lr', '--work-dir', str(tmp_path))
    assert_one_line_error(result, '--auto-scale-lr', 'auto_scale_lr.base_batch_size')


def test_missing_checkpoint_for_test_tool():
    assert_one_line_error(run_tool('tools/test.py', BASELINE, 'missing.pth'),
                          'checkpoint not found', 'missing.pth')
