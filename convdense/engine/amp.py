"""Mixed-precision training on the CPU (``tools/train.py --amp`` without CUDA).

mmengine 0.10's ``AmpOptimWrapper`` asserts a GPU: its fp16 path needs a
``GradScaler``, because fp16's 5-bit exponent underflows small gradients.
On the CPU autocast computes in bfloat16, which has float32's exponent range,
so no loss scaling is needed: :class:`CpuAmpOptimWrapper` is mmengine's plain
``OptimWrapper`` whose ``optim_context`` (the forward and loss of
``train_step``) also enters ``torch.autocast('cpu', dtype=torch.bfloat16)``.
Parameters, gradients and optimizer state stay float32. With CUDA, ``--amp``
keeps mmengine's ``AmpOptimWrapper`` (fp16 with dynamic loss scaling); the
convdense ops take the same autocast code path on both devices.
"""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper

from ..registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CpuAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under CPU autocast in ``dtype``.

    Args:
        dtype (str | torch.dtype): ``'bfloat16'`` (the only low-precision CPU
            dtype that needs no loss scaling).
        **kwargs: as ``OptimWrapper`` (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).
    """

    def __init__(self, dtype='bfloat16', **kwargs):
        if dtype not in ('bfloat16', torch.bfloat16):
            raise ValueError(f"CpuAmpOptimWrapper: dtype must be 'bfloat16' (fp16 on the CPU would "
                             f'need loss scaling), got {dtype!r}')
        super().__init__(**kwargs)
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast('cpu', dtype=self.cast_dtype):
            yield
