"""A user's mistake (missing data, a bad config) is one ``error: ...`` line and exit
status 2 from every tool; a bug keeps its traceback."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from convdense import launch
from convdense.errors import DataError, UserError

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
MASK_RCNN = osp.join(REPO, 'configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')


def test_train_without_the_coco_data_is_one_line_before_anything_is_built(tmp_path):
    done = subprocess.run([sys.executable, osp.join(REPO, 'tools/train.py'), MASK_RCNN,
                           '--work-dir', str(tmp_path / 'work')], cwd=tmp_path, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=REPO))
    assert done.returncode == 2, done.stderr[-2000:]
    assert 'Traceback' not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        'error: data/coco/: no such data folder (train_dataloader.dataset.data_root); put the dataset '
        'there or set --cfg-options train_dataloader.dataset.data_root=YOUR_FOLDER')
    assert not (tmp_path / 'work').exists()  # failed before the Runner made its work dir


def test_data_roots_of_wrapped_datasets_are_checked(tmp_path):
    (tmp_path / 'real').mkdir()
    cfg = Config(dict(train_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
        dict(type='A', data_root=str(tmp_path / 'real')),
        dict(type='RepeatDataset', dataset=dict(type='B', data_root=str(tmp_path / 'gone')))])),
        val_dataloader=dict(dataset=dict(type='C', data_root='s3://bucket/remote')), test_dataloader=None,
        train_cfg=dict(max_iters=1), val_cfg=dict(), test_cfg=dict()))
    with pytest.raises(DataError, match=r'gone: no such data folder '
                                        r'\(train_dataloader.dataset.datasets.1.dataset.data_root\)'):
        launch.check_data_roots(cfg)
    cfg.train_cfg = None
    launch.check_data_roots(cfg)  # a split the config does not run is not checked
    cfg.train_cfg = dict(max_iters=1)
    cfg.train_dataloader.dataset.datasets.pop()
    launch.check_data_roots(cfg)  # a local folder that exists, a remote one: nothing to say


def _run(main, capsys):
    with pytest.raises(SystemExit) as exit_info:
        launch.run_cli(main)
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize('error', [DataError('a.json: no such annotation file'),
                                   launch.ConfigError('a.json: no such annotation file')])
def test_user_errors_are_one_line(error, capsys):
    def main():
        raise error
    assert isinstance(error, UserError) and isinstance(error, ValueError)
    assert _run(main, capsys) == (2, 'error: a.json: no such annotation file\n')


def test_a_data_loader_workers_error_is_its_last_line(capsys):
    """torch's DataLoader re-raises a worker's exception as the same class with the
    worker's traceback in the message; only the message is printed."""
    from torch.utils.data import DataLoader, Dataset

    class Bad(Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, index):
            raise DataError('x.png: labels [7] are outside 0..3')

    def main():
        next(iter(DataLoader(Bad(), num_workers=1)))
    assert _run(main, capsys) == (2, 'error: x.png: labels [7] are outside 0..3\n')


def test_a_bug_keeps_its_traceback():
    def main():
        raise ValueError('a bug')
    with pytest.raises(ValueError, match='a bug'):
        launch.run_cli(main)


def test_a_missing_pretrained_checkpoint_is_one_line_with_the_command_that_makes_it(tmp_path):
    """The backbone's check in init_weights raises a UserError, which run_cli prints as one line."""
    from convdense.errors import MissingFileError
    from convdense.models.pretrained import check_checkpoint_file
    from convdense.registry import MODELS
    backbone = MODELS.build(dict(type='convdense.Res2Net', depth=50, init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'res2net.pth'))))
    with pytest.raises(MissingFileError) as caught:
        backbone.init_weights()
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, UserError)
    assert 'make it with: python tools/model_converters/res2net.py' in str(caught.value)
    done = subprocess.run([sys.executable, '-c', (
        'from convdense import launch\n'
        'from convdense.models.pretrained import check_checkpoint_file\n'
        f'launch.run_cli(lambda: check_checkpoint_file({str(tmp_path / "x.pth")!r}, "Res2Net", None))')],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO))
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert done.stderr.strip().startswith('error: Res2Net: pretrained checkpoint') and '\n' not in done.stderr.strip()
    check_checkpoint_file('torchvision://resnet50', 'ResNet', None)  # remote: left to mmengine


def test_upsample_on_a_corrupt_flo_is_one_line(tmp_path):
    """The readers raise DataError (a ValueError naming the file), which the tools print as one line."""
    bad = tmp_path / 'bad.flo'
    bad.write_bytes(b'xx')
    guide = osp.join(REPO, 'data', 'middlebury', 'motorcycle', 'im0.png')
    done = subprocess.run([sys.executable, osp.join(REPO, 'tools/upsample.py'), '--method', 'bicubic',
                           '--guide', guide, '--low', str(bad), '--kind', 'flow', '--out', str(tmp_path / 'o.flo')],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO))
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert done.stderr.strip() == f'error: {bad}: corrupt .flo file (only 2 bytes, header needs 12)'
