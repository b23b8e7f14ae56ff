"""Checkpoint converters: released ImageNet weights -> convdense backbone state dicts.

One module per release format, each with ``convert(state, **options)`` returning
``(state, dropped keys, backbone config)``: :mod:`.res2net`,
:mod:`.resnet_to_hetconv`, :mod:`.oct_resnet_dli14`, :mod:`.acnet_tensorpack`.
The releases' own forwards, in plain torch, are the references the conversions
are measured against: :mod:`.oct_resnet_dli14_reference`,
:mod:`.acnet_tensorpack_reference`. The command lines are
``tools/model_converters/NAME.py``.
"""
from .common import (StateDict, blocks_per_stage, depth_of, read_checkpoint,  # noqa: F401
                     rename, save_converted, split_head, summary, verify_loads)
