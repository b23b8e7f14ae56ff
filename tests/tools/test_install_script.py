"""``tools/install.sh detect``: which torch build ``make install`` picks from what
``nvidia-smi`` and ``nvcc`` report (stand-ins on PATH), and that a machine without
a GPU keeps the CPU path."""
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYSTEM_PATH = '/usr/bin:/bin'

NVIDIA_SMI = """#!/bin/sh
case "$1" in
-L) echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)"; echo "GPU 1: NVIDIA A100 (UUID: GPU-1)" ;;
--query-gpu=compute_cap) echo 9.0; echo 8.0; echo 9.0 ;;
*) echo "| NVIDIA-SMI 580.159.04   Driver Version: 580.159.04   CUDA Version: {driver} |" ;;
esac
"""


def detect(tmp_path, driver=None, nvcc=None, **env):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    tools = {}
    if driver:
        tools['nvidia-smi'] = NVIDIA_SMI.replace('{driver}', driver)
    if nvcc:
        tools['nvcc'] = f'#!/bin/sh\necho "Cuda compilation tools, release {nvcc}, V{nvcc}.1"\n'
    for name, text in tools.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    full_env = dict(PATH=f'{bin_dir}:{SYSTEM_PATH}', PYTHON=sys.executable,
                    CUDA_HOME=str(tmp_path / 'no_cuda'), HOME=str(tmp_path), **env)
    return subprocess.run(['bash', 'tools/install.sh', 'detect'], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=60)


def detected(result):
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-1]


@pytest.mark.skipif(shutil.which('nvidia-smi', path=SYSTEM_PATH) is not None,
                    reason='this machine has an nvidia-smi of its own')
def test_no_gpu_keeps_the_cpu_wheel(tmp_path):
    assert detected(detect(tmp_path, nvcc='12.6')) == 'TORCH_CUDA=cpu TORCH_CUDA_ARCH_LIST='


@pytest.mark.parametrize('driver, nvcc, expected', [
    ('13.0', None, 'cu130'),    # the newest build the driver runs
    ('12.8', None, 'cu128'),
    ('13.0', '12.6', 'cu128'),  # nvcc 12.x can only build extensions for a CUDA 12 torch
    ('12.9', '12.6', 'cu128'),
    ('12.6', '12.6', 'cu126'),
])
def test_gpu_picks_the_newest_build_the_driver_and_nvcc_allow(tmp_path, driver, nvcc, expected):
    assert detected(detect(tmp_path, driver, nvcc)) == \
        f'TORCH_CUDA={expected} TORCH_CUDA_ARCH_LIST=8.0;9.0'


def test_named_build_and_architectures_win(tmp_path):
    result = detect(tmp_path, '12.8', '12.8', TORCH_CUDA='cu126', TORCH_CUDA_ARCH_LIST='8.6')
    assert detected(result) == 'TORCH_CUDA=cu126 TORCH_CUDA_ARCH_LIST=8.6'


def test_a_driver_too_old_for_every_build_is_a_clear_error(tmp_path):
    result = detect(tmp_path, '12.2', None)
    assert result.returncode == 2
    assert 'no CUDA build in TORCH_CUDA_CHOICES="cu130 cu128 cu126" fits driver CUDA 12.2' in result.stderr
    assert 'set TORCH_CUDA' in result.stderr
