"""Models in the ``convdense`` scope. Imported lazily by ``convdense.registry``."""
from . import backbones, layers, upsamplers  # noqa: F401
