"""tools/test.py --deploy: the checkpoint loads into the exact model, mmengine's
Runner.test then evaluates the deployed model, with the exact model's metrics."""
import pytest
import torch

from tests.helpers import e2e
from tests.models.backbone_checks import randomise_norms

pytestmark = pytest.mark.slow


def test_deploy_flag_evaluates_the_deployed_model_with_the_exact_metrics(tmp_path,
                                                                          digit_scenes):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = e2e.overfit_digit_config('det', 'oct-resnet-50', digit_scenes, iters=1)
    cfg.model.test_cfg.rcnn.score_thr = 0.0  # a random model: keep every detection
    config = str(tmp_path / 'config.py')
    cfg.dump(config)
    torch.manual_seed(0)
    model = randomise_norms(MODELS.build(cfg.model))
    checkpoint = str(tmp_path / 'random.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    tool = e2e.load_tool('test')
    exact = tool.main([config, checkpoint, '--work-dir', str(tmp_path / 'exact')])
    deployed = tool.main([config, checkpoint, '--work-dir', str(tmp_path / 'deploy'), '--deploy'])
    assert set(deployed) == set(exact) and 'coco/bbox_mAP' in exact
    for key, value in exact.items():
        assert deployed[key] == pytest.approx(value, abs=1e-3), key
    logs = list((tmp_path / 'deploy').rglob('*.log'))
    assert any('deploy mode: MaskRCNN re-parameterised' in log.read_text() for log in logs)
