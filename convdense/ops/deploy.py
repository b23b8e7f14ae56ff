"""Deploy mode of the convdense layers: one explicit rewrite into the inference form.

As mmpretrain's RepVGG / MobileOne ``switch_to_deploy()`` and timm's
``reparameterize_model()``: after training, ``layer.switch_to_deploy()`` replaces
the layer's training parameters by the weights its inference computation uses
(an octave conv's weight blocks, HetConv's dense pointwise weight, ACNet's folded
kernel), held as ordinary buffers, so nothing is derived per forward and the
state dict, ``pickle``, ``copy.deepcopy`` and ``.to()`` carry them like any
buffer. A deployed layer computes the function its exact (training) path
computed, is inference-only (``train(True)`` and backward raise) and stays
deployed; calling ``switch_to_deploy()`` again does nothing.
"""
import torch
from torch import Tensor, nn


def _refusal(name: str) -> str:
    return (f'{name} is deployed (inference only): train and backpropagate through the model '
            'before switch_to_deploy')


class _NoBackward(torch.autograd.Function):
    """Identity whose backward raises: what a deployed layer puts on an output
    that requires grad (its input did), so backward fails with one line."""

    @staticmethod
    def forward(ctx, x, name):
        ctx.name = name
        return x.clone()  # not a view: later layers may work in place

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError(_refusal(ctx.name))


def refuse_backward(x, name: str):
    """``x`` (a tensor, ``None`` or a tuple of them), with backward refused
    where it requires grad."""
    if isinstance(x, tuple):
        return tuple(refuse_backward(t, name) for t in x)
    if x is not None and x.requires_grad:
        return _NoBackward.apply(x, name)
    return x


class DeployableMixin:
    """``deploy`` flag, ``train`` refusal and the ``switch_to_deploy`` protocol of
    a convdense layer. A subclass implements :meth:`_build_deploy`, which turns
    the layer into its inference form (register buffers, drop training params)."""

    deploy = False
    #: whether :meth:`fuse_norm` can fold a following batch norm into the deploy form
    folds_norm = True

    def switch_to_deploy(self) -> nn.Module:
        """Rewrite into the inference form (idempotent); returns ``self``."""
        if not self.deploy:
            with torch.no_grad():
                self._build_deploy()
            self.deploy = True
            nn.Module.train(self, False)
        return self

    def _build_deploy(self) -> None:
        raise NotImplementedError

    def train(self, mode: bool = True):
        if mode and self.deploy:
            raise RuntimeError(_refusal(type(self).__name__))
        return super().train(mode)

    def _deploy_buffer(self, name: str, value) -> None:
        """Register ``value`` (detached, contiguous) as a persistent buffer."""
        self.register_buffer(name, None if value is None else value.detach().contiguous().clone())


def scale_rows(weight: Tensor, scale: Tensor) -> Tensor:
    """``weight * scale`` per output channel (dim 0)."""
    return weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))


def norm_affine(norm: nn.Module):
    """``(scale, shift)`` of an eval-mode batch norm, ``y = scale * x + shift``."""
    if not isinstance(norm, nn.modules.batchnorm._BatchNorm) or not norm.track_running_stats:
        raise TypeError(f'cannot fold {type(norm).__name__}: only batch norms with running '
                        'statistics fold into a deployed conv')
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    return scale.detach(), shift.detach()
