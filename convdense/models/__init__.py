"""Models in the ``convdense`` scope. Imported lazily by ``convdense.registry``."""
from . import backbones, layers, scaling, upsamplers  # noqa: F401
