"""The ResNet scaffolding every convdense backbone shares.

Each backbone is mmdet's ``ResNet`` with its own bottleneck; what they add on top
of mmdet is the same for all four, so it lives here once:

* block-specific keyword arguments passed to every block of every stage;
* zero-initialising each residual branch's last norm, as mmdet's ResNet does
  for its own ``Bottleneck`` only (its ``block is Bottleneck`` test skips
  subclasses);
* checked loading of ``init_cfg=dict(type='Pretrained', ...)``: a checkpoint whose
  keys or shapes do not fit raises one line naming the first offending keys and
  the likely cause (:mod:`convdense.models.pretrained`), where mmengine would
  only log them and leave the layers random; a missing local checkpoint raises
  one line with the converter command that makes it (:meth:`release`);
* an input check at the top of ``forward``: a malformed input is a one-line
  ``TypeError``/``ValueError`` here instead of a ``RuntimeError`` deep in a
  convolution.
"""
from typing import Optional, Sequence

import torch
from mmdet.models.backbones.resnet import ResNet
from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit

from convdense.models.pretrained import Release, check_checkpoint_file, load_pretrained
from convdense.ops.checks import check_feature_map


class ResNetVariant(ResNet):
    """mmdet's ResNet with block keyword arguments, zero-initialised last norms
    and checked pretrained loading.

    Subclasses set ``arch_settings`` and pass their block arguments as
    ``block_kwargs``; everything else (stem, stages, ``out_indices``,
    ``frozen_stages``, ``norm_eval``, ``with_cp``, ``init_cfg``) is mmdet's. A
    subclass that builds its stages itself overrides ``make_res_layer`` and gives
    its blocks :meth:`last_norm_init_cfg`; one that runs its stages itself
    overrides :meth:`forward_stages` (``forward`` checks the input first).
    """

    #: The norm closing each residual branch (``Bottleneck.norm3`` = ``bn3``).
    last_norm_name = 'norm3'
    #: Block arguments that change parameter shapes, named in mismatch errors.
    shape_arguments: Sequence[str] = ()
    #: Other state-dict layouts that load as they are (see ``pretrained.LAYOUTS``).
    compatible_layouts: Sequence[str] = ()
    #: Pattern of parameters a checkpoint may lack altogether (the variant's new
    #: parameters, absent from a plain ResNet checkpoint); they keep their init.
    new_parameters: Optional[str] = None

    def train(self, mode=True):
        """mmdet's ``ResNet.train`` (frozen stages, ``norm_eval``), returning ``self``
        as ``nn.Module.train`` does, so that ``build(cfg).eval()`` is the model."""
        super().train(mode)
        return self

    def switch_to_deploy(self, fuse_norms: bool = True):
        """Rewrite into the inference form (:func:`convdense.deploy.switch_to_deploy`);
        returns ``self``."""
        from convdense.deploy import switch_to_deploy
        return switch_to_deploy(self, fuse_norms)

    def forward(self, x):
        """Check ``x`` (:meth:`check_input`), then run the stem and stages."""
        self.check_input(x)
        return self.forward_stages(x)

    def forward_stages(self, x):
        """mmdet's ``ResNet.forward``: one output per ``out_indices`` entry."""
        return super().forward(x)

    def check_input(self, x):
        """Raise a one-line error unless ``x`` is a floating ``(B, C, H, W)``
        tensor with the stem's ``C`` (``in_channels``), ``H, W >= 1``, the
        parameters' dtype (or autocast on) and device.

        Every padded stage takes a 1 x 1 map to 1 x 1 and a batch of 0 to 0, so
        nothing smaller is needed. Only Python-level checks on static facts
        (type, rank, channels, dtype): a traced or exported graph records none
        of them and stays free in H and W.
        """
        name = f'{type(self).__name__} input'
        if not torch.is_tensor(x):
            raise TypeError(f'{name}: expected a (B, C, H, W) tensor, got {type(x).__name__}')
        stem = self.stem[0] if self.deep_stem else self.conv1
        check_feature_map(x, name, channels=stem.in_channels, like=stem.weight)
        if x.device != stem.weight.device:
            raise ValueError(f'{name} is on {x.device}, the backbone on {stem.weight.device} '
                             '(move one with .to())')
        return x

    def __init__(self, depth, block_kwargs=None, pretrained=None, init_cfg=None, **kwargs):
        if depth not in self.arch_settings:
            raise ValueError(f'{type(self).__name__}: depth must be one of '
                             f'{sorted(self.arch_settings)}, got {depth!r}')
        if kwargs.get('dcn') is not None:
            raise ValueError(f'{type(self).__name__} does not support dcn')
        self.block_kwargs = dict(block_kwargs or {})
        self.uses_default_init = init_cfg is None and pretrained is None
        super().__init__(depth, pretrained=pretrained, init_cfg=init_cfg, **kwargs)

    def release(self) -> Optional[Release]:
        """The published ImageNet weights this backbone's converted checkpoint is
        made from (named when the checkpoint is missing), or None."""
        return None

    def last_norm_init_cfg(self) -> Optional[dict]:
        """The block ``init_cfg`` that zero-initialises the last norm of every
        residual branch (each block then starts as the identity), or None when a
        checkpoint or a user ``init_cfg`` initialises the backbone or
        ``zero_init_residual`` is off."""
        if not (self.zero_init_residual and self.uses_default_init):
            return None
        return dict(type='Constant', val=0, override=dict(name=self.last_norm_name))

    def make_res_layer(self, **kwargs):
        """One stage: mmdet's ``ResLayer`` of this variant's blocks."""
        kwargs['init_cfg'] = self.last_norm_init_cfg()
        return super().make_res_layer(**kwargs, **self.block_kwargs)

    def init_weights(self):
        """mmengine's initialisation, with ``Pretrained`` entries of ``init_cfg``
        loaded by :func:`~convdense.models.pretrained.load_pretrained` (after the
        other entries, as mmengine orders them), which raises on keys that do not
        fit instead of logging them."""
        init_cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        pretrained = [cfg for cfg in init_cfgs if isinstance(cfg, dict)
                      and cfg.get('type') in ('Pretrained', PretrainedInit)]
        if not pretrained or self.is_init:
            return super().init_weights()
        for cfg in pretrained:  # before any work: a missing file is the likely mistake
            check_checkpoint_file(cfg['checkpoint'], type(self).__name__, self.release())
        original = self.init_cfg
        self.init_cfg = [cfg for cfg in init_cfgs if cfg not in pretrained] or None
        try:
            super().init_weights()
        finally:
            self.init_cfg = original
        optional = () if self.new_parameters is None else (self.new_parameters,)
        for cfg in pretrained:
            print_log(f'load model from: {cfg["checkpoint"]}', logger='current')
            notes = load_pretrained(self, cfg['checkpoint'], cfg.get('prefix'),
                                    cfg.get('map_location', 'cpu'), optional)
            for note in notes:
                print_log(f'{type(self).__name__}: {note}', logger='current')
