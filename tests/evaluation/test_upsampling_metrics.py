"""DepthRMSE / FlowEPE against values computed by hand on tiny arrays."""
import math

import pytest
import torch

from convdense.evaluation import DepthRMSE, FlowEPE, depth_rmse, flow_epe_sum


def _sample(pred, gt, valid):
    return dict(pred=torch.tensor(pred, dtype=torch.float32), gt=torch.tensor(gt, dtype=torch.float32),
                valid=torch.tensor(valid))


def test_depth_rmse_uses_only_valid_pixels():
    pred = [[[1.0, 2.0], [3.0, 4.0]]]
    gt = [[[1.0, 1.0], [1.0, 100.0]]]
    valid = [[[True, True], [True, False]]]
    # errors on valid pixels: 0, 1, 2 -> sqrt((0 + 1 + 4) / 3)
    assert depth_rmse(torch.tensor(pred), torch.tensor(gt), torch.tensor(valid)) == pytest.approx(math.sqrt(5 / 3))


def test_depth_rmse_border_is_ignored():
    gt = torch.zeros(1, 5, 5)
    pred = torch.zeros(1, 5, 5)
    pred[0, 0, :] = 10.0  # only on the border
    pred[0, 2, 2] = 3.0
    valid = torch.ones(1, 5, 5, dtype=torch.bool)
    # inner 3x3 = 9 pixels, one error of 3 -> sqrt(9 / 9)
    assert depth_rmse(pred, gt, valid, border=1) == pytest.approx(1.0)
    assert depth_rmse(pred, gt, valid, border=0) > 4.0


def test_depth_metric_is_per_image_mean_in_cm():
    metric = DepthRMSE(border=0, scale=100.0, unit='cm')
    # image 1: errors 0.01 m on 1 pixel (RMSE 1 cm); image 2: errors 0.03 m on 4 pixels (RMSE 3 cm)
    metric.process({}, [_sample([[[0.01]]], [[[0.0]]], [[[True]]]),
                        _sample([[[0.03, 0.03], [0.03, 0.03]]], [[[0.0, 0.0], [0.0, 0.0]]],
                                [[[True, True], [True, True]]])])
    result = metric.compute_metrics(metric.results)
    assert list(result) == ['rmse_cm']
    assert result['rmse_cm'] == pytest.approx(2.0)  # (1 + 3) / 2, not pixel-weighted (2.8)


def test_depth_metric_refuses_image_without_valid_pixel():
    metric = DepthRMSE(border=0)
    with pytest.raises(ValueError, match='no valid'):
        metric.process({}, [_sample([[[1.0]]], [[[1.0]]], [[[False]]])])


def test_flow_epe_hand_computed_with_mask():
    pred = torch.zeros(2, 1, 3)
    gt = torch.tensor([[[3.0, 0.0, 7.0]], [[4.0, 1.0, 7.0]]])
    valid = torch.tensor([[[True, True, False]]])
    total, count = flow_epe_sum(pred, gt, valid)
    assert count == 2
    assert total == pytest.approx(5.0 + 1.0)
    metric = FlowEPE()
    metric.process({}, [dict(pred=pred, gt=gt, valid=valid),
                        dict(pred=torch.zeros(2, 1, 1), gt=torch.tensor([[[0.0]], [[2.0]]]),
                             valid=torch.ones(1, 1, 1, dtype=torch.bool))])
    # pixel-weighted over all valid pixels: (5 + 1 + 2) / 3
    assert metric.compute_metrics(metric.results)['epe_px'] == pytest.approx(8 / 3)


def test_flow_epe_rejects_bad_shapes_and_empty_masks():
    with pytest.raises(ValueError, match=r'\(2, H, W\)'):
        flow_epe_sum(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), torch.ones(1, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match='no valid'):
        flow_epe_sum(torch.zeros(2, 2, 2), torch.zeros(2, 2, 2), torch.zeros(1, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match='shape'):
        depth_rmse(torch.zeros(1, 2, 2), torch.zeros(1, 3, 3), torch.ones(1, 3, 3, dtype=torch.bool))


def test_depth_rmse_reports_sensor_like_and_clean_images_apart():
    gt = [[[0.0, 0.0], [0.0, 0.0]]]
    valid = [[[True, True], [True, True]]]
    samples = []
    for error, unknown in ((1.0, 0), (3.0, 1), (5.0, 2)):  # 0, 25 and 50 % of the low-res input unknown
        sample = _sample([[[error] * 2] * 2], gt, valid)
        sample['low_valid'] = torch.tensor([[True, True], [True, True]]).flatten()
        sample['low_valid'][:unknown] = False
        samples.append(sample)
    metric = DepthRMSE(border=0, scale=1.0, unit='px', sensor_like_holes=0.2)
    metric.process(None, samples)
    assert metric.compute_metrics(metric.results) == {'rmse_px': 3.0, 'rmse_px_sensor_like': 4.0,
                                                      'rmse_px_clean': 1.0}
    plain = DepthRMSE(border=0, scale=1.0, unit='px')  # without the threshold: one number, as before
    plain.process(None, samples)
    assert plain.compute_metrics(plain.results) == {'rmse_px': 3.0}
    with pytest.raises(ValueError, match='sensor_like_holes'):
        DepthRMSE(sensor_like_holes=1.5)
