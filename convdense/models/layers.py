"""Registers the pure-torch operator modules of ``convdense.ops`` in the
``convdense`` MODELS registry, so configs can name them (``type='convdense.PacConv2d'``)."""
from convdense.ops.pac import PacConv2d, PacConvTranspose2d, PacPool2d
from convdense.registry import MODELS

MODELS.register_module(module=PacConv2d)
MODELS.register_module(module=PacConvTranspose2d)
MODELS.register_module(module=PacPool2d)
