"""convdense: 2019's new convolutions (ACNet, Res2Net, OctConv, HetConv, PAC) for dense prediction.

Importing the package only sets up the ``convdense`` registry scope and the
compatibility fixes; models, datasets and metrics are imported lazily the first
time a registry is asked for one of their names.
"""
from . import compat  # noqa: F401  (applies the torch/OpenMMLab fixes once)
from .registry import SCOPE  # noqa: F401

__version__ = '0.1.0'
