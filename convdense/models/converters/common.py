"""What every checkpoint converter shares: reading, renaming, verifying, writing.

A converter reads a released checkpoint, renames and reshapes its tensors into a
convdense backbone's state dict, drops the classifier head, and proves the result
by loading it into the backbone it names with no missing, unexpected or
mis-shaped key (:func:`verify_loads`) before writing it (:func:`save_converted`).
The written file is what ``init_cfg=dict(type='Pretrained', checkpoint=DST)``
loads.
"""
import pickle
import re
import zipfile
from typing import Callable, Dict, Iterable, List, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

StateDict = Dict[str, Tensor]


def read_checkpoint(path: str) -> StateDict:
    """A released checkpoint as a flat ``{name: tensor}`` dict: a ``.npz`` file
    (tensorpack, MXNet exports) or a torch file, unwrapped from ``state_dict`` /
    ``model`` and with DataParallel's ``module.`` prefix removed. A file neither
    reader can read raises a one-line ``ValueError``."""
    if str(path).endswith('.npz'):
        try:
            with np.load(path) as arrays:
                return {re.sub(r':0$', '', name): torch.from_numpy(np.array(arrays[name]))
                        for name in arrays.files}
        except (zipfile.BadZipFile, EOFError, ValueError) as error:
            raise ValueError(f'not a readable .npz file ({str(error) or "empty"})') from error
    try:
        loaded = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message is a paragraph; its cause follows 'WeightsUnpickler error:'
        cause = str(error).partition('WeightsUnpickler error:')[2].strip()
        cause = re.split(r'\.\s|\n', cause)[0] if cause else 'not a torch file'
        raise ValueError(f'torch.load(weights_only=True) cannot read it: {cause}') from error
    except EOFError as error:
        raise ValueError('empty or truncated file') from error
    for wrapper in ('state_dict', 'model'):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
    if not isinstance(loaded, dict):
        raise ValueError(f'{path}: expected a state dict, got a {type(loaded).__name__}')
    return {re.sub(r'^module\.', '', key): value for key, value in loaded.items()
            if isinstance(value, Tensor)}


def rename(state: StateDict, rules: Sequence[Tuple[str, str]],
           transform: Callable[[str, Tensor], Tensor] = None) -> Tuple[StateDict, List[str]]:
    """Apply the first matching ``(pattern, replacement)`` regex rule to every key.

    Returns the renamed dict (values passed through ``transform(new_key, value)``
    when given) and the keys no rule matched, in their original order.
    """
    renamed, unmatched = {}, []
    for key, value in state.items():
        for pattern, replacement in rules:
            if re.fullmatch(pattern, key):
                new_key = re.sub(pattern, replacement, key)
                renamed[new_key] = transform(new_key, value) if transform else value
                break
        else:
            unmatched.append(key)
    return renamed, unmatched


def blocks_per_stage(keys: Iterable[str], pattern: str = r'layer(\d)\.(\d+)\.',
                     first_stage: int = 1) -> tuple:
    """Number of residual blocks in each of the four stages, from the keys whose
    ``pattern`` groups are (stage number counted from ``first_stage``, block
    index); e.g. ``(3, 4, 6, 3)``."""
    counts = [0, 0, 0, 0]
    for key in keys:
        match = re.match(pattern, key)
        if match and 0 <= int(match.group(1)) - first_stage < 4:
            stage = int(match.group(1)) - first_stage
            counts[stage] = max(counts[stage], int(match.group(2)) + 1)
    return tuple(counts)


def depth_of(blocks: Sequence[int]) -> int:
    """ResNet depth of a stage layout (``(3, 4, 6, 3)`` -> 50)."""
    depths = {(2, 2, 2, 2): 26, (3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}
    blocks = tuple(blocks)
    if blocks not in depths:
        raise ValueError(f'blocks per stage {blocks} are no ResNet depth '
                         f'(known: {sorted(depths.values())})')
    return depths[blocks]


def split_head(state: StateDict, head: str = r'(fc|linear)\.') -> Tuple[StateDict, List[str]]:
    """``state`` without the ImageNet classifier (keys matching ``head``), and the
    dropped keys."""
    kept = {k: v for k, v in state.items() if not re.match(head, k)}
    return kept, [k for k in state if k not in kept]


def verify_loads(backbone_cfg: dict, state: StateDict):
    """Build ``backbone_cfg`` and load ``state`` into it; raise ``ValueError`` (one
    line, see :mod:`convdense.models.pretrained`) unless every parameter and
    buffer is matched with its shape. Returns the loaded backbone (eval mode)."""
    from convdense.models.complexity import build_backbone
    from convdense.models.pretrained import check_report, load_state_dict_reporting
    backbone = build_backbone(backbone_cfg)
    report = load_state_dict_reporting(backbone, state)
    check_report(backbone, list(state), report, 'converted')
    backbone.eval()  # mmdet's ResNet.train() returns None
    return backbone


def save_converted(state: StateDict, path: str, backbone_cfg: dict, source: str) -> None:
    """Write ``{'state_dict': ..., 'meta': ...}``; ``meta`` records the source file
    and the backbone config the weights load into."""
    torch.save(dict(state_dict=state, meta=dict(source=str(source), backbone=backbone_cfg)),
               path)


def summary(backbone_cfg: dict, state: StateDict, dropped: Sequence[str], dst: str) -> str:
    """The lines a converter prints on success."""
    arguments = ', '.join(f'{k}={v!r}' for k, v in backbone_cfg.items() if k != 'type')
    lines = [f'{len(state)} tensors load into {backbone_cfg["type"]}({arguments}) '
             'with no missing, unexpected or mis-shaped key']
    if dropped:
        lines.append(f'dropped (classifier head and non-weights): {", ".join(dropped)}')
    lines.append(f"use: init_cfg=dict(type='Pretrained', checkpoint='{dst}')")
    return '\n'.join(lines)

