"""Fixtures shared by the whole suite.

``device`` runs a test once on the CPU and once on CUDA. The CUDA case carries
the ``cuda`` marker (``pytest -m cuda`` selects exactly the GPU checks, as
``tools/run_gpu_checks.sh`` does) and is skipped, with that reason in the
``-ra`` summary, only where torch sees no CUDA device.
"""
import pytest
import torch

# Before any test imports mmdet/mmseg/timm: PyPI's torchvision (which mmdet.models,
# timm and pytorch-grad-cam import) needs convdense.compat fix 7 beside the CPU torch.
import convdense  # noqa: F401,E402

CUDA_AVAILABLE = torch.cuda.is_available()
requires_cuda = pytest.mark.skipif(not CUDA_AVAILABLE, reason='needs a CUDA device')
DEVICES = ['cpu', pytest.param('cuda', marks=[pytest.mark.cuda, requires_cuda])]


@pytest.fixture(params=DEVICES)
def device(request):
    """``torch.device('cpu')``, then ``torch.device('cuda')`` where one is available."""
    return torch.device(request.param)
