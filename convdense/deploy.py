"""Deploy mode: rewrite a trained model into its inference form, once, explicitly.

    from convdense.deploy import switch_to_deploy
    switch_to_deploy(model)          # or backbone.switch_to_deploy()

The ecosystem's pattern for re-parameterised layers (mmpretrain's RepVGG /
MobileOne ``switch_to_deploy()``, timm's ``reparameterize_model()``): after
training, every convdense layer (:class:`~convdense.ops.deploy.DeployableMixin`:
octave, HetConv and ACNet convolutions) replaces its training parameters by the
weights its inference computation uses, held as buffers; with
``fuse_norms=True`` (default) each eval-mode batch norm right after such a layer
is folded into it, as is every plain conv + batch norm pair (mmcv's
``fuse_conv_bn``, what ONNX Runtime does to ResNet-50 on its own) and every pair
a block names through ``fold_paired_norms()`` (Res2Net's ``convs.i`` / ``bns.i``,
which are not consecutive children). The model
computes the same function (the tests compare it with the exact model) and is
inference-only: ``train(True)`` and backward raise a one-line error, ``eval()``
is fine. Calling it again does nothing; the deployed model pickles, deep-copies
and loads its own state dict. Load a training checkpoint *before* deploying.
"""
from torch import nn

from convdense.ops.deploy import DeployableMixin


def _is_norm(module) -> bool:
    """A batch norm, or an octave pair of them (``OctaveNorm``: ``high``/``low``)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return True
    return (hasattr(module, 'high') and isinstance(module.high, nn.modules.batchnorm._BatchNorm)
            and (module.low is None or isinstance(module.low, nn.modules.batchnorm._BatchNorm)))


def _fold(layer, norm) -> None:
    if isinstance(norm, nn.modules.batchnorm._BatchNorm):
        layer.fuse_norm(norm)
    else:
        layer.fuse_norm(norm.high, norm.low)


def fuse_layer_norms(module: nn.Module) -> int:
    """Fold each norm that directly follows a deployed convdense layer (the next
    child of the same parent, the order mmdet's blocks and mmcv's
    ``fuse_conv_bn`` rely on) into that layer; the norm becomes ``nn.Identity``.
    Returns how many were folded."""
    folded, last = 0, None
    for name, child in list(module.named_children()):
        if last is not None and _is_norm(child):
            _fold(last, child)
            setattr(module, name, nn.Identity())
            folded += 1
            last = None
        elif isinstance(child, DeployableMixin):
            last = child if child.deploy and child.folds_norm else None
        else:
            last = None
            folded += fuse_layer_norms(child)
    return folded


def switch_to_deploy(model: nn.Module, fuse_norms: bool = True) -> nn.Module:
    """Put ``model`` in eval mode and rewrite every convdense layer into its
    deploy form (and fold batch norms, see the module docstring). Idempotent;
    returns ``model``."""
    model.eval()
    for module in model.modules():
        if isinstance(module, DeployableMixin):
            module.switch_to_deploy()
    if fuse_norms:
        fuse_layer_norms(model)
        for module in model.modules():
            if hasattr(module, 'fold_paired_norms'):
                module.fold_paired_norms()
        from mmcv.cnn import fuse_conv_bn
        fuse_conv_bn(model)
    model.requires_grad_(False)  # inference only: outputs need no graph
    return model


def is_deployed(model: nn.Module) -> bool:
    """Whether ``model`` holds a deployed convdense layer."""
    return any(isinstance(m, DeployableMixin) and m.deploy for m in model.modules())
