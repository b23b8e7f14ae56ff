"""Runner hooks in the ``convdense`` scope (imported lazily by the registry)."""
from .hooks import JointUpsamplingPanelHook  # noqa: F401
