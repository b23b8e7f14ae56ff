"""Adaptively connected convolution (Wang et al., "Adaptively Connected Neural
Networks", CVPR 2019).

Each output pixel mixes three ways of connecting to the input::

    y = alpha * self(x) + beta * local(x) + gamma * global(x)

* ``self``: a 1x1 convolution (each pixel connected to itself);
* ``local``: the k x k convolution being replaced (its neighbourhood);
* ``global``: global average pooling -> fc(C_in -> C_out) -> ReLU ->
  fc(C_out -> C_out), broadcast over the output map (every pixel);
* ``alpha, beta, gamma`` sum to one (a softmax over three logits):

  - ``mode='dataset'``: three learnable logits per layer, shared by every
    pixel and image;
  - ``mode='pixel'``: logits predicted at every output pixel from the local
    and global branch outputs by 1x1 conv(2 C_out -> C_out) -> ReLU ->
    1x1 conv(C_out -> 3).

Which reading reproduces the paper's ACNet-ResNet50 sizes (29.38 M dataset-aware,
31.85 M pixel-aware, ResNet-50 being 25.56 M): with ``c`` the bottleneck width,
the extra parameters per bottleneck are ``c^2`` (self) + ``2 c^2`` (two fc
layers of width ``c``, the global branch reading the block input like the
other two) = ``3 c^2``, 3.77 M over ResNet-50's bottlenecks -> 29.34 M. The
remaining 0.04 M of the paper's figure are the authors' gate logits, which
their code stores per position (``3 x H x W`` per layer at 224 x 224); we keep
three scalars per layer so the gates do not depend on the input size. The
pixel-aware gate predictor adds ``2 c^2`` (+``3 c + 3``) -> 31.85 M. (The
authors' released pixel-aware code has the same ``5 c^2`` budget arranged
differently: no self branch, and a sigmoid gate on the global branch only; we
keep the paper's three softmax gates, which Fig. 3 visualises.)

In dataset mode the self and local branches run as one k x k convolution
(``beta * W_local`` plus ``alpha * W_self`` on the centre tap), which is the
same function at the cost of the plain convolution.

``strided_padding='tf_same'`` pads a strided layer's input as TensorFlow's
"SAME" does (more at the bottom / right, :mod:`convdense.ops.padding`) where that
differs from the symmetric padding, for the tensorpack release's weights. There the
1x1 self branch (no padding) and the padded k x k local branch no longer share a
centre, so the two run as separate convolutions, as in the release.

The gates of the last forward pass are kept, detached, in ``last_gates``:
``(3,)`` in dataset mode, ``(N, 3, H_out, W_out)`` in pixel mode, order
``(alpha, beta, gamma)``.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import check_feature_map
from .deploy import DeployableMixin, norm_affine, refuse_backward, scale_rows
from .padding import STRIDED_PADDINGS, tf_same_pad_if_different

ADAPTIVE_MODES = ('dataset', 'pixel')


def mix_branches(self_out: Tensor, local_out: Tensor, global_out: Tensor,
                 gates: Tensor) -> Tensor:
    """Gate-weighted sum of the three branches.

    Args:
        self_out, local_out: ``(N, C, H, W)``.
        global_out: ``(N, C, 1, 1)`` (broadcast over ``H, W``).
        gates: ``(3,)`` (one triple for all pixels) or ``(N, 3, H, W)``
            (one triple per pixel), order ``(alpha, beta, gamma)``.

    Returns:
        ``(N, C, H, W)``.
    """
    if gates.dim() == 1:
        alpha, beta, gamma = gates
    else:
        alpha, beta, gamma = gates[:, 0:1], gates[:, 1:2], gates[:, 2:3]
    return alpha * self_out + beta * local_out + gamma * global_out


class AdaptiveConv2d(DeployableMixin, nn.Module):
    """Drop-in replacement for a k x k ``nn.Conv2d`` (no bias, groups=1).

    Input ``(N, C_in, H, W)``; output ``(N, C_out, H', W')`` with ``H', W'``
    those of ``nn.Conv2d(C_in, C_out, k, stride, padding, dilation)``.

    A plain ``Conv2d`` state dict (key ``weight``) loads into the local branch,
    so an ImageNet ResNet checkpoint initialises the k x k convolutions.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 3,
                 stride: int = 1,
                 padding: int = 1,
                 dilation: int = 1,
                 mode: str = 'dataset',
                 strided_padding: str = 'symmetric'):
        super().__init__()
        if mode not in ADAPTIVE_MODES:
            raise ValueError(f'AdaptiveConv2d mode must be one of {ADAPTIVE_MODES}, got {mode!r}')
        if strided_padding not in STRIDED_PADDINGS:
            raise ValueError(f'strided_padding must be one of {STRIDED_PADDINGS}, '
                             f'got {strided_padding!r}')
        self.strided_padding = strided_padding
        if kernel_size % 2 == 0 or padding != dilation * (kernel_size - 1) // 2:
            raise ValueError('AdaptiveConv2d needs an odd kernel and "same" padding '
                             f'(dilation * (k - 1) / 2) so its branches align; got '
                             f'kernel_size={kernel_size}, padding={padding}, dilation={dilation}')
        self.mode = mode
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.local_branch = nn.Conv2d(in_channels, out_channels, kernel_size,
                                      stride=stride, padding=padding,
                                      dilation=dilation, bias=False)
        self.self_branch = nn.Conv2d(in_channels, out_channels, 1,
                                     stride=stride, bias=False)
        self.global_fc1 = nn.Linear(in_channels, out_channels)
        self.global_fc2 = nn.Linear(out_channels, out_channels)
        if mode == 'dataset':
            # zeros -> softmax gives 1/3 to each branch, as the authors' init.
            self.gate_logits = nn.Parameter(torch.zeros(3))
        else:
            self.gate_hidden = nn.Conv2d(2 * out_channels, out_channels, 1, bias=False)
            self.gate_out = nn.Conv2d(out_channels, 3, 1)
        self.last_gates: Optional[Tensor] = None

    def global_branch(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W) -> (N, C_out, 1, 1)``."""
        pooled = x.mean(dim=(2, 3))
        out = self.global_fc2(F.relu(self.global_fc1(pooled)))
        return out[:, :, None, None]

    def predict_pixel_gates(self, local_out: Tensor, global_out: Tensor) -> Tensor:
        """``(N, C, H, W), (N, C, 1, 1) -> (N, 3, H, W)`` softmax gates.

        Equals ``gate_out(relu(gate_hidden(cat([local, broadcast(global)]))))``;
        the global half of ``gate_hidden`` is applied once per image instead of
        at every pixel because its input is constant over the map.
        """
        weight = self.gate_hidden.weight
        hidden = F.conv2d(local_out, weight[:, :self.out_channels])
        hidden = hidden + F.conv2d(global_out, weight[:, self.out_channels:])
        return torch.softmax(self.gate_out(F.relu(hidden)), dim=1)

    def gates(self, local_out: Tensor, global_out: Tensor) -> Tensor:
        """``(3,)`` (dataset mode) or ``(N, 3, H, W)`` (pixel mode)."""
        if self.mode == 'dataset':
            return torch.softmax(self.gate_logits, dim=0)
        return self.predict_pixel_gates(local_out, global_out)

    def folded_weight(self) -> Tuple[Tensor, Tensor]:
        """Dataset mode: the gates ``(3,)`` and ``beta * W_local`` with
        ``alpha * W_self`` added on the centre tap, ``(C_out, C_in, k, k)``.

        ``alpha * conv1x1(x) + beta * convkxk(x)`` is one kxk conv with this
        weight (the 1x1 conv samples the kernel's centre), exactly and at the
        plain conv's cost; the deploy form keeps it as a buffer.
        """
        gates = torch.softmax(self.gate_logits, dim=0)
        k = self.local_branch.kernel_size[0]
        centre = F.pad(self.self_branch.weight, [k // 2] * 4)
        return gates, gates[1] * self.local_branch.weight + gates[0] * centre

    def tf_same_pads(self, x: Tensor):
        """``F.pad`` argument giving the local branch TF "SAME" padding, or None
        (symmetric padding, or where TF's equals it)."""
        conv = self.local_branch
        if self.strided_padding != 'tf_same' or conv.stride[0] == 1:
            return None
        return tf_same_pad_if_different(x, conv.kernel_size[0], conv.stride[0],
                                        conv.dilation[0], conv.padding[0])

    def forward(self, x: Tensor) -> Tensor:
        if self.deploy:
            check_feature_map(x, 'input', self.in_channels, self.global_fc1.weight)
            return refuse_backward(self._forward_deploy(x), type(self).__name__)
        check_feature_map(x, 'input', self.in_channels, self.local_branch.weight)
        global_out = self.global_branch(x)
        pads = self.tf_same_pads(x)
        if pads is not None:  # separate branches: their centres differ
            conv = self.local_branch
            local_out = F.conv2d(F.pad(x, pads), conv.weight, None, conv.stride, 0,
                                 conv.dilation)
            gates = self.gates(local_out, global_out)
            self.last_gates = gates.detach()
            return mix_branches(self.self_branch(x), local_out, global_out, gates)
        if self.mode == 'dataset':
            gates, weight = self.folded_weight()
            self.last_gates = gates.detach()
            conv = self.local_branch
            out = F.conv2d(x, weight, None, conv.stride, conv.padding, conv.dilation)
            return out + gates[2] * global_out
        local_out = self.local_branch(x)
        gates = self.gates(local_out, global_out)
        self.last_gates = gates.detach()
        return mix_branches(self.self_branch(x), local_out, global_out, gates)

    @property
    def folds_norm(self) -> bool:
        return self.mode == 'dataset'

    def _build_deploy(self) -> None:
        """Dataset mode: ``weight`` (folded, or ``beta * W_local`` with
        ``self_weight = alpha * W_self`` where TF padding separates the centres),
        ``bias`` (``None`` until a norm folds in), ``gate_values`` and the global fc2
        scaled by ``gamma``; the gate logits and branch convs go. Pixel mode:
        ``gate_hidden_local`` / ``gate_hidden_global``, the halves of
        ``gate_hidden``."""
        if self.mode == 'pixel':
            weight = self.gate_hidden.weight
            self._deploy_buffer('gate_hidden_local', weight[:, :self.out_channels])
            self._deploy_buffer('gate_hidden_global', weight[:, self.out_channels:])
            del self.gate_hidden
            return
        gates = torch.softmax(self.gate_logits, dim=0)
        if self.strided_padding == 'tf_same' and self.local_branch.stride[0] != 1:
            self._deploy_buffer('weight', gates[1] * self.local_branch.weight)
            self._deploy_buffer('self_weight', gates[0] * self.self_branch.weight)
        else:
            self._deploy_buffer('weight', self.folded_weight()[1])
            self.register_buffer('self_weight', None)
        self.register_buffer('bias', None)
        self._deploy_buffer('gate_values', gates)
        self.global_fc2.weight.mul_(gates[2])
        self.global_fc2.bias.mul_(gates[2])
        self.last_gates = self.gate_values.clone()
        del self.gate_logits, self.self_branch
        self.local_branch.weight = None  # keeps the conv's geometry for tf_same_pads

    @torch.no_grad()
    def fuse_norm(self, norm: nn.Module) -> None:
        """Fold an eval-mode batch norm applied to the output into the deploy
        form (dataset mode: the output is affine in the kernel and global fc)."""
        if not self.deploy or self.mode != 'dataset':
            raise RuntimeError('fuse_norm: a deployed dataset-mode layer only')
        scale, shift = norm_affine(norm)
        self.weight = scale_rows(self.weight, scale).contiguous()
        if self.self_weight is not None:
            self.self_weight = scale_rows(self.self_weight, scale).contiguous()
        self.global_fc2.weight.mul_(scale[:, None])
        self.global_fc2.bias.mul_(scale)
        self.bias = shift

    def _forward_deploy(self, x: Tensor) -> Tensor:
        global_out = self.global_branch(x)
        conv = self.local_branch
        pads = self.tf_same_pads(x)
        if self.mode == 'pixel':
            local_out = conv(x) if pads is None else F.conv2d(
                F.pad(x, pads), conv.weight, None, conv.stride, 0, conv.dilation)
            hidden = F.conv2d(local_out, self.gate_hidden_local)
            hidden = hidden + F.conv2d(global_out, self.gate_hidden_global)
            gates = torch.softmax(self.gate_out(F.relu(hidden)), dim=1)
            self.last_gates = gates.detach()
            return mix_branches(self.self_branch(x), local_out, global_out, gates)
        if pads is not None:
            out = F.conv2d(F.pad(x, pads), self.weight, self.bias, conv.stride, 0, conv.dilation)
        else:
            out = F.conv2d(x, self.weight, self.bias, conv.stride, conv.padding, conv.dilation)
        if self.self_weight is not None:  # TF padding: the 1x1 branch kept apart
            out = out + F.conv2d(x, self.self_weight, None, conv.stride)
        return out + global_out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        plain_key = prefix + 'weight'
        if plain_key in state_dict and not self.deploy:
            state_dict[prefix + 'local_branch.weight'] = state_dict.pop(plain_key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        extra = f'mode={self.mode!r}'
        if self.strided_padding != 'symmetric':
            extra += f', strided_padding={self.strided_padding!r}'
        if self.deploy:
            extra += ', deploy=True'
        return extra
