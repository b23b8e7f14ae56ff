"""Classifier-equivalent params/FLOPs (convdense.models.complexity) against the
papers' tables, and the tools/analysis/model_stats.py CLI."""
import json
import os.path as osp

import pytest

pytest.importorskip('mmdet.models')
pytest.importorskip('mmseg.models')

from convdense.models import complexity  # noqa: E402
from tests.helpers.e2e import load_tool  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def measured():
    """Measure each row once per module (a ResNet-50 trace takes seconds)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = complexity.compare_with_paper(name)
        return cache[name]
    return get


@pytest.mark.parametrize('name', ['resnet50', 'res2net50_26w4s', 'hetconv-resnet50_p4',
                                  'hetconv-resnet50_p1'])
def test_paper_table_rows_within_two_percent(measured, name):
    row = measured(name)
    assert row['paper_flops'] is not None
    for kind in ('params', 'flops'):
        rel = row[f'{kind}_rel']
        if rel is not None:
            assert abs(rel) <= complexity.PAPER_TOLERANCE, \
                f'{name} {kind}: {row[kind]:,} vs paper {row["paper_" + kind]:,.0f} ({rel:+.2%})'


def test_resnet50_is_the_torchvision_classifier_count(measured):
    """ResNet-50 + fc-1000 has exactly 25,557,032 parameters."""
    assert measured('resnet50')['params'] == 25_557_032


def test_hetconv_p1_is_exactly_resnet50_and_p4_really_drops_flops(measured):
    resnet, p1, p4 = (measured(n) for n in ('resnet50', 'hetconv-resnet50_p1',
                                           'hetconv-resnet50_p4'))
    assert (p1['params'], p1['flops']) == (resnet['params'], resnet['flops'])
    # The paper's saving: 16 bottleneck 3x3 convs, each 115.6 M multiply-adds at
    # 224x224 in ResNet-50, cost 1/4 + 3/4 * 1/9 = 1/3 of that with P = 4.
    saved = resnet['flops'] - p4['flops']
    assert saved == pytest.approx(16 * 115_605_504 * (1 - 1 / 3), rel=1e-6)


def test_res2net_costs_more_than_resnet_but_within_the_table(measured):
    res2net, resnet = measured('res2net50_26w4s'), measured('resnet50')
    assert res2net['flops'] > resnet['flops'] and res2net['params'] > resnet['params']


def test_flops_scale_with_input_size():
    cfg = complexity.PAPER_TABLE['hetconv-resnet50_p4']['cfg']
    small = complexity.classifier_complexity(cfg, 64)  # sides divisible by 32:
    large = complexity.classifier_complexity(cfg, (128, 256))  # no padding effects
    assert small['params'] == large['params']
    # Convolutions scale with pixels (8x); the fc layer (2.05 M) does not.
    fc = 2048 * 1000
    assert (large['flops'] - fc) / (small['flops'] - fc) == pytest.approx(8, rel=0.01)


def test_accepts_mmdet_and_convdense_types_and_rejects_bad_ones():
    with pytest.raises(TypeError, match='must be a dict with a "type"'):
        complexity.classifier_complexity(dict(depth=50))
    with pytest.raises(KeyError, match='unknown paper-table row'):
        complexity.compare_with_paper('resnet51')


def test_model_stats_cli_rows_json_and_check(tmp_path, capsys):
    tool = load_tool('analysis/model_stats')
    out = tmp_path / 'stats.json'
    config = osp.join(REPO, 'configs/mask_rcnn/mask-rcnn_res2net-50_fpn_1x_coco.py')
    assert tool.main(['res2net50_26w4s', config, '--json', str(out), '--check']) == 0
    printed = capsys.readouterr().out
    assert 'res2net50_26w4s' in printed and '4.20' in printed  # the paper column
    rows = json.loads(out.read_text())
    assert [row['name'] for row in rows] == ['res2net50_26w4s', osp.basename(config)]
    # The config's backbone is the paper's model: identical counts.
    assert rows[0]['params'] == rows[1]['params'] and rows[0]['flops'] == rows[1]['flops']


def test_model_stats_cli_segmentation_config_and_errors(tmp_path, capsys):
    tool = load_tool('analysis/model_stats')
    config = osp.join(REPO, 'configs/segmentation/upernet_hetconv-resnet-50_ade20k.py')
    assert tool.main([config]) == 0
    assert tool.main(['no-such-model']) == 1
    assert 'neither a config file nor a PAPER_TABLE row' in capsys.readouterr().out


def test_check_flags_rows_off_the_paper(monkeypatch, capsys):
    tool = load_tool('analysis/model_stats')
    row = dict(complexity.PAPER_TABLE['hetconv-resnet50_p1'], flops=3.0e9)
    monkeypatch.setitem(complexity.PAPER_TABLE, 'hetconv-resnet50_p1', row)
    assert tool.main(['hetconv-resnet50_p1', '--check']) == 1
    assert 'more than 2% off the paper' in capsys.readouterr().err
