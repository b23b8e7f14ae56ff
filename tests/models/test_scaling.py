"""EfficientNet compound scaling of the ResNet-family backbones: rounding rules,
backbone constraints, measured FLOPs against the realised factors, and the
compound-scaled Mask R-CNN configs (build, follow the widths, train one iteration)."""
import math
import os.path as osp

import pytest
import torch
from torch import nn

from convdense.models import scaling
from convdense.models.complexity import PAPER_TABLE, build_backbone
from tests.helpers import e2e

REPO = e2e.REPO
SWEEP = e2e.load_script('tools/analysis/scale_sweep.py')

#: The five ResNet-family backbones at their papers' defaults.
BACKBONES = {name: PAPER_TABLE[name]['cfg'] for name in SWEEP.ALL}
SCALING_CONFIGS = {
    'Res2Net': 'configs/scaling/mask-rcnn_res2net-50-phi1-scratch_fpn_syncbn-all_6x_coco.py',
    'OctResNet': 'configs/scaling/mask-rcnn_oct-resnet-50-phi1-scratch_fpn_syncbn-all_6x_coco.py',
}


def _reference_round_filters(filters, width_coefficient, divisor=8):
    """EfficientNet's reference ``round_filters`` (tensorflow/tpu efficientnet_model.py)."""
    filters *= width_coefficient
    new_filters = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    if new_filters < 0.9 * filters:
        new_filters += divisor
    return int(new_filters)


def test_round_filters_gives_efficientnet_b0_to_b7_stems():
    # EfficientNet-B0..B7 width coefficients and their stem widths (timm / the paper's code).
    widths = (1.0, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0)
    assert [scaling.round_filters(32, w) for w in widths] == [32, 32, 32, 40, 48, 48, 56, 64]
    for filters in (16, 24, 40, 64, 80, 112, 192, 320, 1280):
        for w in widths + (1.21, 1.331, 0.5):
            expected = _reference_round_filters(filters, w)
            assert scaling.round_filters(filters, w) == expected, (filters, w)
            assert expected % 8 == 0 and expected >= 0.9 * filters * w


def test_round_filters_agrees_with_timm_make_divisible():
    timm_layers = pytest.importorskip('timm.layers')
    for filters in range(8, 400, 7):
        for w in (1.1, 1.21, 1.331, 1.4641):
            assert scaling.round_filters(filters, w) == timm_layers.make_divisible(filters * w, 8)


def test_depth_and_size_rounding():
    assert scaling.round_repeats(3, 1.2) == 4 and scaling.round_repeats(6, 1.44) == 9
    assert scaling.scale_size((1333, 800), 1.15) == (1536, 928)
    assert scaling.scale_size(224, 1.15**2) == 288
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=(1333, 800), keep_ratio=True),
                dict(type='TestTimeAug', transforms=[[dict(type='RandomChoiceResize',
                                                           scales=[(640, 480), (320, 240)])]])]
    scaled = scaling.scale_pipeline(pipeline, 1.15)
    assert scaled[1]['scale'] == (1536, 928) and scaled[1]['keep_ratio'] is True
    assert scaled[2]['transforms'][0][0]['scales'] == [(736, 544), (384, 288)]
    assert pipeline[1]['scale'] == (1333, 800), 'the input pipeline must not change'


@pytest.mark.parametrize('phi', (1, 2))
def test_compound_scale_rounds_resnet50_as_efficientnet(phi):
    scaled = scaling.compound_scale(BACKBONES['resnet50'], phi)
    assert scaled.stage_blocks == tuple(math.ceil(n * 1.2**phi) for n in (3, 4, 6, 3))
    assert scaled.base_channels == _reference_round_filters(64, 1.1**phi)
    assert scaled.out_channels == tuple(4 * scaled.base_channels * 2**i for i in range(4))
    assert scaled.resolution == pytest.approx(1.15**phi)
    assert scaled.depth == pytest.approx(sum(scaled.stage_blocks) / 16)


def _convs(module):
    """``name -> out_channels`` of every convolution with a weight (HetConv, octave
    and adaptive convs hold theirs in ``nn.Conv2d`` children)."""
    return {name: m.out_channels for name, m in module.named_modules() if isinstance(m, nn.Conv2d)}


@pytest.mark.parametrize('name', SWEEP.ALL)
def test_scaled_backbone_blocks_widths_and_outputs(name):
    """Built from the scaled config: the stages have the rounded block counts, every
    conv is at least 90 % of beta**phi times its unscaled width (inner widths follow
    each backbone's own rule), and the outputs have the announced channels."""
    phi, cfg = 2, dict(BACKBONES[name], base_channels=32)  # a quarter of the weights to build
    scaled = scaling.compound_scale(cfg, phi)
    assert scaled.base_channels == 40
    original, backbone = build_backbone(cfg), build_backbone(scaled.backbone)
    assert type(backbone) is type(original)
    blocks = [len(getattr(backbone, layer)) for layer in backbone.res_layers]
    assert blocks == list(scaled.stage_blocks)
    before, after = _convs(original), _convs(backbone)
    assert len(after) > len(before)
    for conv, width in before.items():
        if width > 1000 or conv == 'conv1':  # not ACNet's gates (3 channels); the stem follows
            continue
        assert after[conv] >= 0.9 * 1.1**phi * width, (conv, width, after[conv])
        assert after[conv] <= 1.25 * 1.1**phi * width, (conv, width, after[conv])
    backbone.eval()
    with torch.no_grad():
        outputs = backbone(torch.randn(1, 3, 64, 96))
    assert [out.shape[1] for out in outputs] == list(scaled.out_channels)
    assert [tuple(out.shape[2:]) for out in outputs] == [(16, 24), (8, 12), (4, 6), (2, 3)]


def test_backbone_constraints_hold_after_rounding():
    # HetConv: P divides every width (the divisor becomes lcm(8, P)).
    het = scaling.compound_scale(dict(type='convdense.HetConvResNet', depth=50, part=16), 1)
    assert scaling.round_filters(64, 1.1) == 72 and het.base_channels == 64  # 72 % 16 != 0
    # Oct-ResNet: alpha * width is whole in every stage, so the split is exactly alpha.
    oct_scaled = scaling.compound_scale(dict(type='convdense.OctResNet', depth=50, alpha=0.3), 1)
    assert oct_scaled.base_channels % 40 == 0  # 0.3 = 3/10, lcm(8, 10) = 40
    backbone = build_backbone(oct_scaled.backbone)
    octave = [(name, m) for name, m in backbone.named_modules()
              if hasattr(m, 'out_split') and m.alpha_out > 0]
    assert octave
    for name, conv in octave:
        assert 10 * conv.out_split[1] == 3 * conv.out_channels, (name, conv.out_split)
    # Res2Net: the split width follows its own rule and must stay >= 1.
    with pytest.raises(ValueError, match='split width'):
        scaling.compound_scale(dict(type='convdense.Res2Net', depth=50, base_channels=8,
                                    base_width=2), 1)


@pytest.mark.parametrize('cfg, phi, error, match', [
    (dict(type='convdense.OctResNet', depth=50, alpha=0.1234567), 1, ValueError, 'alpha=0.1234567'),
    (dict(type='convdense.Res2Net', depth=50), -1, ValueError, 'phi'),
    (dict(type='convdense.Res2Net', depth=34), 1, ValueError, 'depth'),
    (dict(type='mmdet.SwinTransformer'), 1, TypeError, 'ResNet-family'),
    (dict(depth=50), 1, TypeError, 'type'),
    (dict(type='convdense.StageBlocks', backbone=dict(type='ResNet', depth=50),
          stage_blocks=(1, 1, 1, 1)), 1, ValueError, 'already compound-scaled'),
])
def test_bad_input_is_named(cfg, phi, error, match):
    with pytest.raises(error, match=match):
        scaling.compound_scale(cfg, phi)


def test_stage_blocks_rejects_a_wrong_count():
    with pytest.raises(ValueError, match='stage_blocks must be 4 positive ints'):
        build_backbone(dict(type='convdense.StageBlocks', backbone=dict(type='ResNet', depth=50),
                            stage_blocks=(2, 2, 2)))


def test_gamma_below_one_is_refused():
    with pytest.raises(ValueError, match='gamma'):
        scaling.compound_scale(BACKBONES['resnet50'], 1, gamma=0.9)


@pytest.mark.slow
@pytest.mark.parametrize('name', ('resnet50', 'res2net50_26w4s'))
def test_measured_flops_ratio_is_the_realised_product(name):
    """FlopAnalyzer's FLOPs ratio to phi = 0 is within 3 % of the realised product
    d_F * w**2 * r**2 (the rounded width and image side; depth counted as the added
    blocks' FLOPs); the block-count depth factor overshoots both alpha**phi and d_F."""
    rows = {row['phi']: row for row in SWEEP.sweep(BACKBONES[name], (1, 2), size=128)}
    assert rows[0]['flops_ratio'] == 1 and rows[0]['realised'] == pytest.approx(1)
    for phi in (1, 2):
        row = rows[phi]
        assert abs(row['off_realised']) < 0.03, row
        assert row['depth'] > 1.2**phi, row  # ceil overshoots alpha**phi
        # a stage's strided first block is never repeated: d_F is below the block count
        assert 1 < row['flops_depth'] < row['depth'], row


@pytest.mark.parametrize('key, base', [
    ('Res2Net', 'configs/scratch/mask-rcnn_res2net-50-scratch_fpn_syncbn-all_6x_coco.py'),
    ('OctResNet', 'configs/scratch/mask-rcnn_oct-resnet-50-scratch_fpn_syncbn-all_6x_coco.py')])
def test_scaling_config_follows_widths_and_image_scale(key, base):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, SCALING_CONFIGS[key]))
    base_cfg = Config.fromfile(osp.join(REPO, base))
    scaled = scaling.compound_scale(base_cfg.model.backbone, 1)
    assert cfg.model.backbone.type == 'convdense.StageBlocks'
    assert cfg.model.backbone.backbone.type == f'convdense.{key}'
    assert tuple(cfg.model.backbone.stage_blocks) == (4, 5, 8, 4)
    assert cfg.model.neck.in_channels == [4 * scaled.base_channels * 2**i for i in range(4)]
    assert cfg.model.neck.in_channels != base_cfg.model.neck.in_channels
    for loader, base_scale in (('train_dataloader', (1333, 800)), ('test_dataloader', (1333, 800))):
        resize = [t for t in cfg[loader].dataset.pipeline if t['type'] == 'Resize']
        assert resize and tuple(resize[0]['scale']) == (1536, 928) != base_scale
    # the dumped config is plain data: it reads back identically
    dumped = Config.fromstring(cfg.pretty_text, '.py')
    assert dumped.model.neck.in_channels == cfg.model.neck.in_channels


def test_scaled_segmentation_heads_follow_the_widths():
    """In an mmseg config the decode and auxiliary heads' in_channels follow the
    outputs their in_index reads, and the fixed crop size scales with the images."""
    from mmengine.config import Config
    base = Config.fromfile(osp.join(REPO, 'configs/segmentation/upernet_res2net-50_ade20k.py'))
    model, train_loader, _, _ = scaling.compound_scale_config(base, phi=2)
    widths = [4 * 80 * 2**i for i in range(4)]  # base_channels round_filters(64, 1.21) = 80
    assert model['decode_head']['in_channels'] == widths
    assert base.model.auxiliary_head.in_index == 2
    assert model['auxiliary_head']['in_channels'] == widths[2]
    assert model['data_preprocessor']['size'] == (672, 672)  # 512 * 1.3225 = 677 -> 672
    crop = [t for t in train_loader['dataset']['pipeline'] if t['type'] == 'RandomCrop']
    assert tuple(crop[0]['crop_size']) == (672, 672)


@pytest.mark.slow
@pytest.mark.parametrize('key', sorted(SCALING_CONFIGS))
def test_scaling_config_trains_one_iteration(key, tmp_path):
    """One mmengine ``train_step`` (data preprocessor, all Mask R-CNN losses, the
    config's optimizer) on a tiny COCO image: the scaled backbone's added blocks train."""
    from mmdet.utils import register_all_modules
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS, DefaultScope
    from mmengine.runner import Runner

    register_all_modules(init_default_scope=False)
    data_root = e2e.make_tiny_coco(str(tmp_path / 'data'), n_train=1, n_val=1)
    cfg = e2e.shrink_config(osp.join(REPO, SCALING_CONFIGS[key]), data_root, 'det', iters=1,
                            image_size=(96, 64))
    # One image and 8 sampled RoIs: the mask head's cost is per positive RoI.
    cfg.train_dataloader.batch_size = 1
    cfg.model.train_cfg.rcnn.sampler.num = 8
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
        batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    # layer3 has 8 blocks at phi = 1 (6 at phi = 0): block 7 exists only in the scaled model.
    assert len(model.backbone.layer3) == 8
    added = {name: p.detach().clone() for name, p in model.named_parameters()
             if name.startswith('backbone.layer3.7.') and p.requires_grad}
    model.train()
    losses = model.train_step(batch, optim_wrapper)
    for loss in ('loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask'):
        assert loss in losses, sorted(losses)
    params = dict(model.named_parameters())
    changed = [name for name, before in added.items() if not torch.equal(params[name], before)]
    assert changed, 'no weight of the added block changed in the training step'
