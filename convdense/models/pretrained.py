"""Checked loading of pretrained weights into a convdense backbone.

mmengine's ``Pretrained`` initialiser loads with ``strict=False`` and only logs
the keys that do not fit, so a checkpoint of another backbone (or of the same one
with another ``alpha``, ``part``, ``scales``, ``mode`` or depth) trains on with
layers left at their random initialisation. :func:`load_pretrained` reads the
same file the same way (``prefix``, ``state_dict`` wrapper, ``module.`` keys) and
raises one ``ValueError`` line naming the first missing, unexpected and
mis-shaped keys and the likely cause. Two mismatches are expected and only
logged: the ImageNet classifier (``fc.*``), which a backbone has no use for, and
the new parameters of a variant loaded from a plain ResNet checkpoint when the
backbone declares them (ACNet's self and global branches and gates), which keep
their initialisation.
"""
import os.path as osp
import re
from typing import Dict, List, NamedTuple, Optional, Sequence

from torch import Tensor, nn

from ..errors import MissingFileError
from .converters import blocks_per_stage

#: Unexpected keys that are an ImageNet classifier head, dropped with a log line.
CLASSIFIER_KEY = re.compile(r'^(fc|linear|head|classifier)\.')

#: Key patterns that tell which layout a state dict has, most specific first:
#: name -> (pattern, converter or None when it loads as it is).
LAYOUTS = {
    'tensorpack (ACNet release)': (r'^(group\d|conv0)/', 'tools/model_converters/acnet_tensorpack.py'),
    'octconv.pytorch (Oct-ResNet release)': (r'\.conv_[hl]2[hl]\.',
                                             'tools/model_converters/oct_resnet_dli14.py'),
    'convdense.OctResNet': (r'\.bn\d\.(high|low)\.', None),
    'convdense.ACNet': (r'\.conv2\.local_branch\.', None),
    'convdense.HetConvResNet': (r'\.conv2\.spatial\.', None),
    'convdense.Res2Net': (r'\.convs\.\d+\.weight$', None),
    'plain ResNet': (r'^layer\d\.\d+\.conv2\.weight$', None),
}


class Release(NamedTuple):
    """Published ImageNet weights of a backbone and the converter that makes a
    convdense checkpoint of them (``python CONVERTER SOURCE DST OPTIONS``)."""
    source: str  # the released file
    url: str  # where it is published
    converter: str  # tools/model_converters/NAME.py
    options: str = ''

    def command(self, dst: str) -> str:
        return ' '.join(filter(None, ('python', self.converter, self.source, dst, self.options)))


def check_checkpoint_file(checkpoint: str, backbone: str, release: Optional[Release]):
    """Raise :class:`~convdense.errors.MissingFileError` (a ``FileNotFoundError``, one
    line, printed as ``error: ...`` by the tools) when a local ``checkpoint`` does not
    exist, with the command that makes it from ``release`` and where that is
    published (or, with no ``release``, that none exists). Remote ``scheme://``
    checkpoints are left to mmengine."""
    if '://' in str(checkpoint) or osp.isfile(checkpoint):
        return
    if release is None:
        how = ('no released ImageNet weights are known for this backbone; train it '
               'from scratch (configs/scratch/) or set init_cfg=None')
    else:
        how = (f'make it with: {release.command(checkpoint)} '
               f'({release.source} is published at {release.url})')
    raise MissingFileError(f'{backbone}: pretrained checkpoint {checkpoint} not found; {how}')


class KeyReport(NamedTuple):
    """What loading a state dict into a module left unmatched."""
    missing: List[str]
    unexpected: List[str]
    mismatched: List[str]  # torch's 'size mismatch for KEY: ...' messages
    loaded: int  # parameters and buffers of the module that got a value


def checkpoint_state_dict(checkpoint: str, prefix: Optional[str] = None,
                          map_location='cpu') -> Dict[str, Tensor]:
    """The state dict mmengine's ``Pretrained`` initialiser would load from
    ``checkpoint``: unwrapped from ``state_dict``, ``module.`` stripped, and, with
    ``prefix`` (e.g. ``'backbone'``), only the keys under it, prefix removed."""
    from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_with_prefix
    if prefix is not None:
        return _load_checkpoint_with_prefix(prefix, checkpoint, map_location=map_location)
    loaded = _load_checkpoint(checkpoint, map_location=map_location)
    if not isinstance(loaded, dict):
        raise ValueError(f'{checkpoint}: no state dict in the checkpoint '
                         f'(a {type(loaded).__name__})')
    state = loaded.get('state_dict', loaded)
    return {re.sub(r'^module\.', '', key): value for key, value in state.items()}


def load_state_dict_reporting(module: nn.Module, state: Dict[str, Tensor]) -> KeyReport:
    """Load ``state`` into ``module`` like ``module.load_state_dict(strict=False)``
    (each module's ``_load_from_state_dict`` may rename keys, as ``OctaveNorm`` and
    ``AdaptiveConv2d`` do) but return the size mismatches instead of raising."""
    missing, unexpected, errors = [], [], []

    def load(child: nn.Module, local_state: dict, prefix: str):
        child._load_from_state_dict(local_state, prefix, {}, True, missing, unexpected, errors)
        for name, grandchild in child._modules.items():
            if grandchild is not None:
                child_prefix = f'{prefix}{name}.'
                load(grandchild, {k: v for k, v in local_state.items()
                                  if k.startswith(child_prefix)}, child_prefix)

    load(module, dict(state), '')
    loaded = len(module.state_dict()) - len(missing)
    missing = [key for key in missing if not key.endswith('num_batches_tracked')]
    return KeyReport(missing, unexpected, errors, loaded)


def layout_of(keys: Sequence[str]) -> Optional[str]:
    """The name in :data:`LAYOUTS` whose pattern the most ``keys`` match, or None."""
    counts = {name: sum(bool(re.search(pattern, key)) for key in keys)
              for name, (pattern, _) in LAYOUTS.items()}
    best = max(counts, key=counts.get)
    return best if counts[best] else None


def likely_cause(backbone: nn.Module, checkpoint_keys: Sequence[str],
                 report: KeyReport) -> str:
    """A short guess of why ``checkpoint_keys`` do not fit ``backbone``."""
    name = type(backbone).__name__
    model_keys = list(backbone.state_dict())
    if any(key.startswith('backbone.') for key in checkpoint_keys):
        return "a detector checkpoint: pass prefix='backbone'"
    ours, theirs = layout_of(model_keys), layout_of(checkpoint_keys)
    accepted = (ours,) + tuple(getattr(backbone, 'compatible_layouts', ()))
    if theirs is not None and theirs not in accepted:
        converter = LAYOUTS[theirs][1]
        hint = f'; convert it with {converter}' if converter else ''
        if theirs == 'plain ResNet' and name == 'HetConvResNet':
            hint = '; convert it with tools/model_converters/resnet_to_hetconv.py'
        return f'a {theirs} checkpoint, not a {ours or name} one{hint}'
    if report.loaded == 0:
        return f'no key of {name} is in the checkpoint (keys like {checkpoint_keys[0]!r})'
    ours_blocks, theirs_blocks = blocks_per_stage(model_keys), blocks_per_stage(checkpoint_keys)
    if any(theirs_blocks) and ours_blocks != theirs_blocks:
        return (f'another depth: the checkpoint has {theirs_blocks} blocks per stage, '
                f'this backbone {ours_blocks}')
    arguments = getattr(backbone, 'shape_arguments', ())
    if arguments:
        values = {**{a: getattr(backbone, a, None) for a in arguments},
                  **getattr(backbone, 'block_kwargs', {})}
        return (f'the same backbone with other {"/".join(arguments)} than this one '
                f'({", ".join(f"{a}={values[a]!r}" for a in arguments)})')
    return 'another architecture or other block arguments'


def _first(keys: Sequence[str], count: int = 3) -> str:
    shown = ', '.join(keys[:count])
    return shown + (f', ... ({len(keys)} in all)' if len(keys) > count else '')


def check_report(backbone: nn.Module, checkpoint_keys: Sequence[str], report: KeyReport,
                 source: str, optional_missing: Sequence[str] = ()) -> List[str]:
    """Raise ``ValueError`` (one line) unless ``report`` only lists a classifier
    head among the unexpected keys and, among the missing keys, ``optional_missing``
    patterns the checkpoint has no key for. Returns the notes to log
    (dropped head, parameters left at their initialisation)."""
    notes = []
    unexpected = [key for key in report.unexpected if not CLASSIFIER_KEY.match(key)]
    head = [key for key in report.unexpected if CLASSIFIER_KEY.match(key)]
    if head:
        notes.append(f'classifier head dropped: {_first(head)}')
    missing = report.missing
    for pattern in optional_missing:
        if not any(re.search(pattern, key) for key in checkpoint_keys):
            kept = [key for key in missing if re.search(pattern, key)]
            if kept:
                notes.append(f'{len(kept)} parameters absent from the checkpoint keep '
                             f'their initialisation ({_first(kept, 2)})')
            missing = [key for key in missing if not re.search(pattern, key)]
    if missing or unexpected or report.mismatched:
        parts = []
        if missing:
            parts.append(f'{len(missing)} missing keys ({_first(missing)})')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected keys ({_first(unexpected)})')
        if report.mismatched:
            parts.append(f'{len(report.mismatched)} shape mismatches '
                         f'({report.mismatched[0].replace("size mismatch for ", "")})')
        raise ValueError(f'{type(backbone).__name__}: checkpoint {source} does not fit: '
                         f'{"; ".join(parts)}. Likely cause: '
                         f'{likely_cause(backbone, list(checkpoint_keys), report)}')
    return notes


def load_pretrained(backbone: nn.Module, checkpoint: str, prefix: Optional[str] = None,
                    map_location='cpu', optional_missing: Sequence[str] = ()) -> List[str]:
    """Load ``checkpoint`` into ``backbone`` as ``init_cfg=dict(type='Pretrained',
    checkpoint=..., prefix=...)`` would, but raise ``ValueError`` (one line) when
    keys or shapes do not fit; see :func:`check_report`. Returns the notes."""
    state = checkpoint_state_dict(checkpoint, prefix, map_location)
    report = load_state_dict_reporting(backbone, state)
    source = checkpoint if prefix is None else f'{checkpoint} (prefix {prefix!r})'
    return check_report(backbone, list(state), report, source, optional_missing)
