"""Registers the pure-torch operator modules of ``convdense.ops`` in the
``convdense`` MODELS registry, so configs can name them (``type='convdense.PacConv2d'``)."""
