"""Visualisation helpers in the ``convdense`` scope."""
from .panels import make_panel  # noqa: F401
