"""``benchmarks/bench_gpu_train.py`` (run on a GPU by ``tools/run_gpu_checks.sh``): what
it reads from a run's mmengine scalars and how it judges the loss."""
import json
import math

import pytest

from tests.helpers.e2e import load_script


@pytest.fixture(scope='module')
def bench():
    return load_script('benchmarks/bench_gpu_train.py')


def _write_run(work_dir, records):
    path = work_dir / '20260101_000000' / 'vis_data'
    path.mkdir(parents=True)
    (path / 'scalars.json').write_text(''.join(json.dumps(r) + '\n' for r in records))


def test_loss_trend_metrics_and_memory_from_scalars(bench, tmp_path):
    losses = [2.0 - 0.1 * i for i in range(20)]  # tenths: mean(2.0, 1.9) and mean(0.2, 0.1)
    records = [dict(lr=1e-3, loss=v, time=0.1 + 0.01 * (i % 3), memory=100 + i, iter=i + 1, step=i + 1)
               for i, v in enumerate(losses)]
    records.append({'coco/bbox_mAP': 0.25, 'coco/segm_mAP': 0.2, 'data_time': 0.01, 'time': 0.2,
                    'step': 20})
    _write_run(tmp_path, records)
    summary = bench.summarise_run(bench.read_scalars(str(tmp_path)))
    assert summary['loss_first_tenth'] == pytest.approx(1.95)
    assert summary['loss_last_tenth'] == pytest.approx(0.15)
    assert summary['loss_fell'] and summary['losses_finite']
    assert summary['metrics'] == {'coco/bbox_mAP': 0.25, 'coco/segm_mAP': 0.2}
    assert summary['peak_memory_mib'] == 119 and summary['seconds_per_iter'] == pytest.approx(0.11)


@pytest.mark.parametrize('losses', [[1.0, 1.0, 1.1], [2.0, math.nan, 1.0]])
def test_flat_rising_or_non_finite_loss_is_not_a_fall(bench, losses):
    summary = bench.summarise_run([dict(loss=v) for v in losses])
    assert not summary['loss_fell']


@pytest.mark.parametrize('name, slug', [('NVIDIA H100 80GB HBM3', 'h100'), ('NVIDIA H200', 'h200'),
                                        ('NVIDIA A100-SXM4-80GB', 'a100'),
                                        ('Tesla V100-SXM2-32GB', 'v100')])
def test_results_file_is_named_after_the_gpu(bench, name, slug):
    assert bench.gpu_slug(name) == slug
