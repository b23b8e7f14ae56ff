"""Backbones: one paper per file, all reusing mmdet's ResNet scaffolding."""
from . import acnet, hetconv_resnet, oct_resnet, res2net  # noqa: F401
