"""PAC operators against slow loop references, gradcheck, nn.Conv2d equivalence
and input validation."""
import contextlib
import importlib.util
import math
import zlib
from pathlib import Path
from unittest import mock

import pytest
import torch
import torch.nn as nn

from convdense.ops.pac import (PacConv2d, PacConvTranspose2d, PacPool2d, pac_conv2d,
                               pac_conv_transpose2d, pac_kernel2d, pac_pool2d,
                               parse_kernel_type)

TOL = 1e-5


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    """These shapes are tiny; on a shared 2-core box every multi-threaded op
    waits at an OpenMP barrier for a descheduled thread, which made this file
    6x slower without changing any result."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ---------------------------------------------------------------------------
# Slow references: plain Python loops over output pixels and taps (conv), or
# over input pixels scattering into the output (transposed conv).
# ---------------------------------------------------------------------------
def ref_kernel_value(centre, neighbour, kernel_type, channel_wise):
    """centre, neighbour: [B, C_g] -> K: [B, 1 or C_g]."""
    family, alpha, lam, _ = parse_kernel_type(kernel_type)
    sq = (centre - neighbour) ** 2
    if not channel_wise:
        sq = sq.sum(dim=1, keepdim=True)
    if family == 'gaussian':
        return torch.exp(-0.5 * sq)
    return (alpha + sq) ** (-lam)


def guide_at(guide, y, x):
    """Guide feature at (y, x); the nearest border pixel's outside the image."""
    y = min(max(y, 0), guide.shape[2] - 1)
    x = min(max(x, 0), guide.shape[3] - 1)
    return guide[:, :, y, x]


def apply_taps(out, oy, ox, values, weight, weight_index, shared):
    """values: [B, C_in] already multiplied by K; adds W[tap] @ values."""
    if shared:
        out[:, :, oy, ox] += weight[0, 0][weight_index] * values
    else:
        out[:, :, oy, ox] += values @ weight[(slice(None), slice(None)) + weight_index].t()


def ref_conv_out_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def ref_pac_conv_from_guide(x, guide, weight, bias, k, s, p, d, kernel_type='gaussian',
                            normalize=False, mask=None, shared=False, channel_wise=False,
                            pool=False):
    """PAC conv computed straight from the definition, one output pixel and
    one tap at a time."""
    b, c, h, w = x.shape
    ho, wo = ref_conv_out_size(h, k, s, p, d), ref_conv_out_size(w, k, s, p, d)
    out_channels = c if (shared or pool) else weight.shape[0]
    out = torch.zeros(b, out_channels, ho, wo, dtype=x.dtype)
    for oy in range(ho):
        for ox in range(wo):
            centre = guide_at(guide, oy * s - p + (k // 2) * d, ox * s - p + (k // 2) * d)
            taps, total = [], 0
            for ty in range(k):
                for tx in range(k):
                    iy, ix = oy * s - p + ty * d, ox * s - p + tx * d
                    if not (0 <= iy < h and 0 <= ix < w):
                        continue
                    kv = ref_kernel_value(centre, guide[:, :, iy, ix], kernel_type, channel_wise)
                    if mask is not None:
                        kv = kv * mask[:, :, iy, ix]
                    total = total + kv
                    taps.append((ty, tx, iy, ix, kv))
            for ty, tx, iy, ix, kv in taps:
                if normalize:
                    kv = kv / torch.where(total == 0, torch.ones_like(total), total)
                if pool:
                    out[:, :, oy, ox] += kv * x[:, :, iy, ix]
                else:
                    apply_taps(out, oy, ox, kv * x[:, :, iy, ix], weight, (ty, tx), shared)
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    return out


def ref_pac_conv_given_kernel(x, kernel, weight, bias, s, p, d, shared=False):
    b, c, h, w = x.shape
    k = kernel.shape[2]
    ho, wo = kernel.shape[-2:]
    out = torch.zeros(b, c if shared else weight.shape[0], ho, wo, dtype=x.dtype)
    for oy in range(ho):
        for ox in range(wo):
            for ty in range(k):
                for tx in range(k):
                    iy, ix = oy * s - p + ty * d, ox * s - p + tx * d
                    if 0 <= iy < h and 0 <= ix < w:
                        values = kernel[:, :, ty, tx, oy, ox] * x[:, :, iy, ix]
                        apply_taps(out, oy, ox, values, weight, (ty, tx), shared)
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    return out


def ref_transposed_out_size(n, k, s, p, op, d):
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def ref_pac_conv_transpose_from_guide(x, guide, weight, bias, k, s, p, op, d,
                                      kernel_type='gaussian', normalize=False, mask=None,
                                      shared=False, channel_wise=False):
    """Scatters every input pixel n through every filter tap a to output
    o = n * s - p + a * d, weighted by K(f_o, f_loc(n)) where input pixel n
    sits on the output grid at loc(n) = n * s - p + ceil((k - 1) * d / 2)."""
    b, c, h, w = x.shape
    ho, wo = guide.shape[2:]
    assert (ho, wo) == (ref_transposed_out_size(h, k, s, p, op, d),
                        ref_transposed_out_size(w, k, s, p, op, d))
    shift = (k - 1) * d - (k - 1) * d // 2
    contributions = []
    totals = {}
    for ny in range(h):
        for nx in range(w):
            f_input = guide_at(guide, ny * s - p + shift, nx * s - p + shift)
            for ay in range(k):
                for ax in range(k):
                    oy, ox = ny * s - p + ay * d, nx * s - p + ax * d
                    if not (0 <= oy < ho and 0 <= ox < wo):
                        continue
                    kv = ref_kernel_value(guide[:, :, oy, ox], f_input, kernel_type,
                                          channel_wise)
                    if mask is not None:
                        kv = kv * mask[:, :, ny, nx]
                    totals[oy, ox] = totals.get((oy, ox), 0) + kv
                    contributions.append((ny, nx, ay, ax, oy, ox, kv))
    out = torch.zeros(b, c if shared else weight.shape[1], ho, wo, dtype=x.dtype)
    for ny, nx, ay, ax, oy, ox, kv in contributions:
        if normalize:
            total = totals[oy, ox]
            kv = kv / torch.where(total == 0, torch.ones_like(total), total)
        values = kv * x[:, :, ny, nx]
        if shared:
            out[:, :, oy, ox] += weight[0, 0, ay, ax] * values
        else:
            out[:, :, oy, ox] += values @ weight[:, :, ay, ax]
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    return out


def ref_pac_conv_transpose_given_kernel(x, kernel, weight, bias, s, p, d, shared=False):
    """Scatter form with kernel tap (k-1-a) pairing filter tap a."""
    b, c, h, w = x.shape
    k = kernel.shape[2]
    ho, wo = kernel.shape[-2:]
    out = torch.zeros(b, c if shared else weight.shape[1], ho, wo, dtype=x.dtype)
    for ny in range(h):
        for nx in range(w):
            for ay in range(k):
                for ax in range(k):
                    oy, ox = ny * s - p + ay * d, nx * s - p + ax * d
                    if 0 <= oy < ho and 0 <= ox < wo:
                        values = kernel[:, :, k - 1 - ay, k - 1 - ax, oy, ox] * x[:, :, ny, nx]
                        if shared:
                            out[:, :, oy, ox] += weight[0, 0, ay, ax] * values
                        else:
                            out[:, :, oy, ox] += values @ weight[:, :, ay, ax]
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    return out


def random_mask(b, h, w, generator):
    return (torch.rand(b, 1, h, w, generator=generator) > 0.3).float()


# (kernel_size, stride, padding, dilation)
CONV_GEOMETRIES = [(3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 2, 2), (5, 2, 2, 1), (3, 2, 0, 2),
                   (2, 1, 0, 1), (3, 1, 0, 1)]
KERNEL_TYPES = ['gaussian', 'inv_1_1', 'inv_0.5_0.75']
OPTIONS = ['plain', 'normalize', 'mask', 'mask+normalize', 'shared', 'channel_wise']


def _option_flags(option):
    return dict(normalize='normalize' in option, use_mask='mask' in option,
                shared=option == 'shared', channel_wise=option == 'channel_wise')


@pytest.mark.parametrize('geometry', CONV_GEOMETRIES)
@pytest.mark.parametrize('kernel_type', KERNEL_TYPES)
@pytest.mark.parametrize('option', OPTIONS)
def test_pac_conv2d_matches_loop_reference(geometry, kernel_type, option):
    k, s, p, d = geometry
    flags = _option_flags(option)
    gen = torch.Generator().manual_seed(zlib.crc32(repr((geometry, kernel_type, option)).encode()))
    b, c, h, w = 2, 3, 7, 6
    x = torch.randn(b, c, h, w, generator=gen)
    guide = 0.7 * torch.randn(b, c if flags['channel_wise'] else 2, h, w, generator=gen)
    weight = torch.randn(1, 1, k, k, generator=gen) if flags['shared'] else torch.randn(
        4, c, k, k, generator=gen)
    bias = torch.randn(weight.shape[0] if not flags['shared'] else c, generator=gen)
    mask = random_mask(b, h, w, gen) if flags['use_mask'] else None

    kernel = pac_kernel2d(guide, k, s, p, d, kernel_type, flags['normalize'], mask,
                          channel_wise=flags['channel_wise'])
    out = pac_conv2d(x, kernel, weight, bias, s, p, d, shared_filters=flags['shared'])
    expected = ref_pac_conv_from_guide(x, guide, weight, bias, k, s, p, d, kernel_type,
                                       flags['normalize'], mask, flags['shared'],
                                       flags['channel_wise'])
    assert out.shape == expected.shape
    assert (out - expected).abs().max().item() <= TOL


@pytest.mark.parametrize('geometry', [(3, 1, 1, 1), (5, 2, 2, 1), (3, 1, 2, 2), (3, 3, 0, 1)])
@pytest.mark.parametrize('kernel_channels', [1, 3])
@pytest.mark.parametrize('shared', [False, True])
@pytest.mark.parametrize('chunk_elements', [1, 200, 10**9])
def test_pac_conv2d_given_kernel_matches_reference(geometry, kernel_channels, shared,
                                                   chunk_elements):
    k, s, p, d = geometry
    gen = torch.Generator().manual_seed(7)
    b, c, h, w = 2, 3, 8, 7
    ho, wo = ref_conv_out_size(h, k, s, p, d), ref_conv_out_size(w, k, s, p, d)
    x = torch.randn(b, c, h, w, generator=gen)
    kernel = torch.randn(b, kernel_channels, k, k, ho, wo, generator=gen)
    weight = torch.randn(1, 1, k, k, generator=gen) if shared else torch.randn(
        5, c, k, k, generator=gen)
    out = pac_conv2d(x, kernel, weight, None, s, p, d, shared_filters=shared,
                     chunk_elements=chunk_elements)
    expected = ref_pac_conv_given_kernel(x, kernel, weight, None, s, p, d, shared)
    assert (out - expected).abs().max().item() <= TOL


# (kernel_size, stride, padding, output_padding, dilation); the first is the
# upsampler's layer, the last crops (padding > (k - 1) * dilation).
TRANSPOSED_GEOMETRIES = [(5, 2, 2, 1, 1), (3, 2, 1, 1, 1), (3, 1, 1, 0, 1), (4, 2, 1, 0, 1),
                         (3, 2, 2, 1, 2), (3, 3, 1, 2, 1), (3, 2, 3, 0, 1)]


@pytest.mark.parametrize('geometry', TRANSPOSED_GEOMETRIES)
@pytest.mark.parametrize('kernel_type', KERNEL_TYPES)
@pytest.mark.parametrize('option', OPTIONS)
def test_pac_conv_transpose2d_matches_scatter_reference(geometry, kernel_type, option):
    k, s, p, op, d = geometry
    flags = _option_flags(option)
    gen = torch.Generator().manual_seed(zlib.crc32(repr((geometry, kernel_type, option)).encode()))
    b, c, h, w = 2, 3, 4, 5
    ho, wo = ref_transposed_out_size(h, k, s, p, op, d), ref_transposed_out_size(
        w, k, s, p, op, d)
    x = torch.randn(b, c, h, w, generator=gen)
    guide = 0.7 * torch.randn(b, c if flags['channel_wise'] else 2, ho, wo, generator=gen)
    weight = torch.randn(1, 1, k, k, generator=gen) if flags['shared'] else torch.randn(
        c, 4, k, k, generator=gen)
    bias = torch.randn(c if flags['shared'] else 4, generator=gen)
    mask = random_mask(b, h, w, gen) if flags['use_mask'] else None

    kernel = pac_kernel2d(guide, k, s, p, d, kernel_type, flags['normalize'], mask,
                          transposed=True, output_padding=op,
                          channel_wise=flags['channel_wise'])
    out = pac_conv_transpose2d(x, kernel, weight, bias, s, p, op, d,
                               shared_filters=flags['shared'])
    expected = ref_pac_conv_transpose_from_guide(x, guide, weight, bias, k, s, p, op, d,
                                                 kernel_type, flags['normalize'], mask,
                                                 flags['shared'], flags['channel_wise'])
    assert out.shape == expected.shape
    assert (out - expected).abs().max().item() <= TOL


@pytest.mark.parametrize('geometry', [(5, 2, 2, 1, 1), (3, 2, 2, 1, 2), (3, 2, 3, 0, 1)])
@pytest.mark.parametrize('shared', [False, True])
def test_pac_conv_transpose2d_given_kernel_matches_reference(geometry, shared):
    k, s, p, op, d = geometry
    gen = torch.Generator().manual_seed(11)
    b, c, h, w = 2, 3, 4, 3
    ho, wo = ref_transposed_out_size(h, k, s, p, op, d), ref_transposed_out_size(
        w, k, s, p, op, d)
    x = torch.randn(b, c, h, w, generator=gen)
    kernel = torch.randn(b, 1, k, k, ho, wo, generator=gen)
    weight = torch.randn(1, 1, k, k, generator=gen) if shared else torch.randn(
        c, 2, k, k, generator=gen)
    bias = None if shared else torch.randn(2, generator=gen)
    out = pac_conv_transpose2d(x, kernel, weight, bias, s, p, op, d, shared_filters=shared)
    expected = ref_pac_conv_transpose_given_kernel(x, kernel, weight, bias, s, p, d, shared)
    assert (out - expected).abs().max().item() <= TOL


@pytest.mark.parametrize('geometry', [(3, 1, 1, 1), (5, 2, 2, 1), (3, 1, 2, 2)])
@pytest.mark.parametrize('kernel_type', KERNEL_TYPES)
@pytest.mark.parametrize('option', ['plain', 'normalize', 'mask+normalize', 'channel_wise'])
def test_pac_pool2d_matches_loop_reference(geometry, kernel_type, option):
    k, s, p, d = geometry
    flags = _option_flags(option)
    gen = torch.Generator().manual_seed(3)
    b, c, h, w = 2, 3, 7, 6
    x = torch.randn(b, c, h, w, generator=gen)
    guide = torch.randn(b, c if flags['channel_wise'] else 2, h, w, generator=gen)
    mask = random_mask(b, h, w, gen) if flags['use_mask'] else None
    kernel = pac_kernel2d(guide, k, s, p, d, kernel_type, flags['normalize'], mask,
                          channel_wise=flags['channel_wise'])
    out = pac_pool2d(x, kernel, k, s, p, d)
    expected = ref_pac_conv_from_guide(x, guide, None, None, k, s, p, d, kernel_type,
                                       flags['normalize'], mask,
                                       channel_wise=flags['channel_wise'], pool=True)
    assert (out - expected).abs().max().item() <= TOL


def test_normalized_kernel_sums_to_one_over_valid_taps():
    gen = torch.Generator().manual_seed(0)
    guide = torch.randn(2, 3, 6, 5, generator=gen)
    mask = random_mask(2, 6, 5, gen)
    mask[0, 0, :3, :3] = 0  # makes (0, 0)'s 3x3 window empty
    kernel = pac_kernel2d(guide, 3, padding=1, normalize=True, mask=mask)
    sums = kernel.sum(dim=(2, 3))
    assert sums[0, 0, 0, 0] == 0
    nonempty = sums[0, 0] != 0
    assert torch.allclose(sums[0, 0][nonempty], torch.ones(()).expand(int(nonempty.sum())))
    assert torch.allclose(sums[1], torch.ones_like(sums[1]))


# ---------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------
def _double(*tensors):
    return [t.double().requires_grad_() for t in tensors]


@pytest.mark.parametrize('kernel_type', ['gaussian', 'inv_1_1'])
@pytest.mark.parametrize('option', ['plain', 'mask+normalize', 'shared', 'channel_wise'])
@pytest.mark.parametrize('chunk_elements', [10**9, 1, 100])
def test_gradcheck_pac_conv2d(kernel_type, option, chunk_elements):
    flags = _option_flags(option)
    gen = torch.Generator().manual_seed(1)
    c = 2
    x, guide = _double(torch.randn(1, c, 5, 4, generator=gen),
                       torch.randn(1, c, 5, 4, generator=gen))
    weight, = _double(torch.randn(1, 1, 3, 3, generator=gen) if flags['shared'] else
                      torch.randn(3, c, 3, 3, generator=gen))
    bias, = _double(torch.randn(c if flags['shared'] else 3, generator=gen))
    mask = random_mask(1, 5, 4, gen).double() if flags['use_mask'] else None
    alpha, lam = _double(torch.tensor(0.8), torch.tensor(1.3))
    inv = dict(inv_alpha=alpha, inv_lambda=lam) if kernel_type != 'gaussian' else {}

    def fn(x, guide, weight, bias, alpha, lam):
        kernel = pac_kernel2d(guide, 3, 2, 1, 1, kernel_type, flags['normalize'], mask,
                              channel_wise=flags['channel_wise'], **inv)
        return pac_conv2d(x, kernel, weight, bias, 2, 1, 1, shared_filters=flags['shared'],
                          chunk_elements=chunk_elements)

    assert torch.autograd.gradcheck(fn, (x, guide, weight, bias, alpha, lam))


@pytest.mark.parametrize('option', ['plain', 'mask+normalize', 'shared'])
@pytest.mark.parametrize('chunk_elements', [10**9, 1])
def test_gradcheck_pac_conv_transpose2d(option, chunk_elements):
    flags = _option_flags(option)
    gen = torch.Generator().manual_seed(2)
    c = 2
    k, s, p, op = 3, 2, 1, 1
    x, = _double(torch.randn(1, c, 3, 2, generator=gen))
    guide, = _double(torch.randn(1, 2, 6, 4, generator=gen))
    weight, = _double(torch.randn(1, 1, k, k, generator=gen) if flags['shared'] else
                      torch.randn(c, 3, k, k, generator=gen))
    mask = random_mask(1, 3, 2, gen).double() if flags['use_mask'] else None

    def fn(x, guide, weight):
        kernel = pac_kernel2d(guide, k, s, p, 1, 'gaussian', flags['normalize'], mask,
                              transposed=True, output_padding=op)
        return pac_conv_transpose2d(x, kernel, weight, None, s, p, op,
                                    shared_filters=flags['shared'],
                                    chunk_elements=chunk_elements)

    assert torch.autograd.gradcheck(fn, (x, guide, weight))


@pytest.mark.parametrize('geometry', [(3, 2, 2, 1, 2), (3, 3, 1, 2, 1), (3, 2, 3, 0, 1),
                                      (1, 2, 0, 1, 1)])
@pytest.mark.parametrize('shared', [False, True])
def test_gradcheck_strided_transpose_phases(geometry, shared):
    """The per-phase path of strided transposed PAC (dilation sharing a factor with the
    stride, stride 3, cropping, a 1x1 kernel whose odd phases read nothing): values of
    the zero-inserted formulation and its gradients."""
    k, s, p, op, d = geometry
    gen = torch.Generator().manual_seed(5)
    x, = _double(torch.randn(1, 2, 3, 4, generator=gen))
    ho, wo = ref_transposed_out_size(3, k, s, p, op, d), ref_transposed_out_size(4, k, s, p, op, d)
    kernel, = _double(torch.rand(1, 1, k, k, ho, wo, generator=gen))
    weight, = _double(torch.randn(1, 1, k, k, generator=gen) if shared else
                      torch.randn(2, 3, k, k, generator=gen))

    def fn(x, kernel, weight):
        return pac_conv_transpose2d(x, kernel, weight, None, s, p, op, d, shared_filters=shared)

    expected = ref_pac_conv_transpose_given_kernel(x, kernel, weight, None, s, p, d, shared)
    torch.testing.assert_close(fn(x, kernel, weight), expected)
    assert torch.autograd.gradcheck(fn, (x, kernel, weight))


@pytest.mark.parametrize('channel_wise', [False, True])
def test_pac_kernel2d_saves_no_per_tap_guide_differences(channel_wise):
    """Backward of ``pac_kernel2d`` keeps the guide and the kernel, not the C_g*k^2*H*W
    tap differences plain autograd over the taps would save (counted with autograd's
    saved-tensor hooks)."""
    channels, k, size = 16, 5, 32
    guide = torch.randn(1, channels, size, size, requires_grad=True)
    saved = []

    def pack(tensor):
        saved.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        kernel = pac_kernel2d(guide, k, padding=k // 2, channel_wise=channel_wise)
    differences = channels * k * k * size * size
    kernel_size = kernel.numel()
    assert sum(saved) < 4 * kernel_size + 2 * guide.numel()
    if not channel_wise:
        assert sum(saved) < differences / 2
    kernel.sum().backward()
    assert guide.grad is not None and torch.isfinite(guide.grad).all()


@pytest.mark.parametrize('kernel_type', ['gaussian', 'inv_0.5_1'])
def test_gradcheck_pac_pool2d(kernel_type):
    gen = torch.Generator().manual_seed(4)
    x, guide = _double(torch.randn(1, 2, 5, 5, generator=gen),
                       torch.randn(1, 3, 5, 5, generator=gen))

    def fn(x, guide):
        kernel = pac_kernel2d(guide, 3, 1, 1, 1, kernel_type, normalize=True)
        return pac_pool2d(x, kernel, 3, 1, 1, 1, chunk_elements=1)

    assert torch.autograd.gradcheck(fn, (x, guide))


def test_module_parameters_receive_gradients():
    layer = PacConv2d(2, 3, 3, padding=1, kernel_type='inv_1_1')
    fixed = PacConv2d(2, 3, 3, padding=1, kernel_type='inv_1_1_fixed')
    assert {n for n, _ in layer.named_parameters()} == {'weight', 'bias', 'inv_alpha',
                                                         'inv_lambda'}
    assert {n for n, _ in fixed.named_parameters()} == {'weight', 'bias'}
    layer(torch.randn(1, 2, 5, 5), torch.randn(1, 4, 5, 5)).square().sum().backward()
    for name, param in layer.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


# ---------------------------------------------------------------------------
# Constant guide == plain convolution
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('geometry', [(3, 1, 1, 1), (5, 2, 2, 1), (3, 2, 0, 2), (4, 1, 3, 1)])
@pytest.mark.parametrize('kernel_type', ['gaussian', 'inv_1_2'])
def test_constant_guide_equals_conv2d(geometry, kernel_type):
    k, s, p, d = geometry
    torch.manual_seed(0)
    pac = PacConv2d(3, 5, k, stride=s, padding=p, dilation=d, kernel_type=kernel_type)
    conv = nn.Conv2d(3, 5, k, stride=s, padding=p, dilation=d)
    conv.load_state_dict({'weight': pac.weight, 'bias': pac.bias})
    x = torch.randn(2, 3, 11, 9)
    guide = torch.full((2, 4, 11, 9), 0.3)
    # Both kernel types give K = 1 for equal features ('inv_1_2': 1 ** -2).
    assert (pac(x, guide) - conv(x)).abs().max().item() <= TOL


@pytest.mark.parametrize('geometry', [(5, 2, 2, 1, 1), (3, 2, 1, 1, 1), (4, 2, 1, 0, 1),
                                      (3, 3, 1, 2, 2), (3, 2, 3, 1, 1)])
def test_constant_guide_equals_conv_transpose2d(geometry):
    k, s, p, op, d = geometry
    torch.manual_seed(0)
    pac = PacConvTranspose2d(3, 5, k, stride=s, padding=p, output_padding=op, dilation=d)
    convt = nn.ConvTranspose2d(3, 5, k, stride=s, padding=p, output_padding=op, dilation=d)
    convt.load_state_dict({'weight': pac.weight, 'bias': pac.bias})
    x = torch.randn(2, 3, 6, 7)
    expected = convt(x)
    guide = torch.full((2, 4) + tuple(expected.shape[2:]), -1.5)
    assert (pac(x, guide) - expected).abs().max().item() <= TOL


def test_upsampler_layer_shapes_and_precomputed_kernel():
    layer = PacConvTranspose2d(32, 32, 5, stride=2, padding=2, output_padding=1)
    x, guide = torch.randn(1, 32, 8, 10), torch.randn(1, 16, 16, 20)
    out = layer(x, guide)
    assert out.shape == (1, 32, 16, 20)
    kernel = layer.compute_kernel(guide)
    assert kernel.shape == (1, 1, 5, 5, 16, 20)
    assert torch.equal(layer(x, kernel=kernel), out)


def test_shared_filters_module_and_pool_module():
    torch.manual_seed(0)
    shared = PacConv2d(3, 3, 3, padding='same', shared_filters=True, bias=False)
    assert shared.weight.shape == (1, 1, 3, 3)
    x, guide = torch.randn(1, 3, 6, 6), torch.randn(1, 2, 6, 6)
    expected = ref_pac_conv_from_guide(x, guide, shared.weight.detach(), None, 3, 1, 1, 1,
                                       shared=True)
    assert (shared(x, guide) - expected).abs().max().item() <= TOL
    pool = PacPool2d(3, padding=1)
    expected = ref_pac_conv_from_guide(x, guide, None, None, 3, 1, 1, 1, normalize=True,
                                       pool=True)
    assert (pool(x, guide) - expected).abs().max().item() <= TOL
    # A normalised pool of a constant image is that constant.
    assert torch.allclose(pool(torch.full_like(x, 2.5), guide), torch.full_like(x, 2.5))


# ---------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------
def test_guide_size_mismatch_is_reported():
    layer = PacConv2d(3, 4, 3, padding=1)
    with pytest.raises(ValueError, match=r'guide.*\(1, 3, 8, 8\).*\(1, 2, 7, 8\)'):
        layer(torch.randn(1, 3, 8, 8), torch.randn(1, 2, 7, 8))
    up = PacConvTranspose2d(3, 4, 5, stride=2, padding=2, output_padding=1)
    with pytest.raises(ValueError, match=r'guide.*\(16, 16\).*\(1, 3, 8, 8\).*\(1, 2, 8, 8\)'):
        up(torch.randn(1, 3, 8, 8), torch.randn(1, 2, 8, 8))


def test_wrong_kernel_shape_is_reported():
    x = torch.randn(1, 3, 8, 8)
    weight = torch.randn(4, 3, 3, 3)
    with pytest.raises(ValueError, match=r'kernel.*\(1, 1 or 3, 3, 3, 8, 8\).*'
                       r'\(1, 3, 8, 8\).*\(1, 1, 3, 3, 6, 6\)'):
        pac_conv2d(x, torch.rand(1, 1, 3, 3, 6, 6), weight, padding=1)
    with pytest.raises(ValueError, match=r'kernel.*\(1, 2, 3, 3, 8, 8\)'):
        pac_conv2d(x, torch.rand(1, 2, 3, 3, 8, 8), weight, padding=1)
    with pytest.raises(ValueError, match=r'kernel'):
        PacConvTranspose2d(3, 3, 3, stride=2, padding=1, output_padding=1)(
            x, kernel=torch.rand(1, 1, 3, 3, 8, 8))


def test_even_kernel_with_same_padding_is_rejected():
    with pytest.raises(ValueError, match=r"padding.*'same'.*kernel_size=\(4, 4\)"):
        PacConv2d(3, 4, 4, padding='same')
    with pytest.raises(ValueError, match=r"padding.*'same'.*kernel_size=\(2, 3\)"):
        pac_kernel2d(torch.randn(1, 2, 5, 5), (2, 3), padding='same')
    layer = PacConv2d(3, 4, 5, padding='same', dilation=2)
    assert layer.padding == (4, 4)
    assert layer(torch.randn(1, 3, 9, 9), torch.randn(1, 2, 9, 9)).shape == (1, 4, 9, 9)


@pytest.mark.parametrize('name, call', [
    ('input', lambda: pac_conv2d(torch.randn(3, 8, 8), torch.rand(1, 1, 3, 3, 6, 6),
                                 torch.randn(4, 3, 3, 3))),
    ('guide', lambda: pac_kernel2d(torch.randn(2, 8, 8), 3)),
    ('guide', lambda: PacConv2d(3, 4, 3)(torch.randn(1, 3, 8, 8), torch.randn(1, 1, 2, 8, 8))),
    ('input', lambda: PacConvTranspose2d(3, 4, 3)(torch.randn(3, 8, 8), torch.randn(1, 2, 10,
                                                                                      10))),
    ('input', lambda: pac_pool2d(torch.randn(8, 8), torch.rand(1, 1, 3, 3, 6, 6), 3)),
])
def test_non_4d_tensors_are_reported(name, call):
    with pytest.raises(ValueError, match=rf'^{name}: expected a 4-D tensor.*shape \('):
        call()


def test_other_bad_arguments_are_reported():
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r'weight.*\(4, 3, 3, 3\).*\(1, 3, 8, 8\).*\(4, 2, 3, 3\)'):
        pac_conv2d(x, torch.rand(1, 1, 3, 3, 6, 6), torch.randn(4, 2, 3, 3))
    with pytest.raises(ValueError, match=r'mask.*\(1, 1, 8, 8\).*\(1, 1, 4, 4\)'):
        pac_kernel2d(torch.randn(1, 2, 8, 8), 3, mask=torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r'kernel_type'):
        pac_kernel2d(torch.randn(1, 2, 8, 8), 3, kernel_type='laplace')
    with pytest.raises(ValueError, match=r'guide.*not reachable'):
        pac_kernel2d(torch.randn(1, 2, 9, 9), 5, 2, 2, transposed=True, output_padding=1)
    with pytest.raises(ValueError, match=r'smooth_kernel_type'):
        PacConv2d(3, 4, 3, smooth_kernel_type='gaussian')


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------
def _registry_with_pac_layers():
    """``convdense.MODELS`` after ``import convdense.models``.  While sibling
    model packages cannot import (their OpenMMLab dependency is missing),
    ``layers.py`` is executed on its own and the registry's automatic import
    of ``convdense.models`` is held off for the duration of the test."""
    from convdense.registry import MODELS
    try:
        import convdense.models  # noqa: F401
        return MODELS, contextlib.nullcontext()
    except ImportError:
        pass
    if 'PacConv2d' not in MODELS.module_dict:
        path = Path(__file__).resolve().parents[2] / 'convdense' / 'models' / 'layers.py'
        spec = importlib.util.spec_from_file_location('_pac_layers_standalone', path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return MODELS, mock.patch.object(MODELS, '_imported', True)


def test_modules_build_from_registry():
    MODELS, import_guard = _registry_with_pac_layers()
    with import_guard:
        _build_and_run(MODELS)


def _build_and_run(MODELS):
    conv = MODELS.build(dict(type='PacConv2d', in_channels=3, out_channels=4, kernel_size=3,
                             padding=1))
    assert isinstance(conv, PacConv2d)
    up = MODELS.build(dict(type='PacConvTranspose2d', in_channels=4, out_channels=2,
                           kernel_size=5, stride=2, padding=2, output_padding=1))
    pool = MODELS.build(dict(type='PacPool2d', kernel_size=3, padding=1))
    x, guide = torch.randn(1, 3, 6, 6), torch.randn(1, 2, 6, 6)
    y = up(conv(x, guide), torch.randn(1, 2, 12, 12))
    assert y.shape == (1, 2, 12, 12)
    assert pool(y, torch.randn(1, 2, 12, 12)).shape == (1, 2, 12, 12)
    assert math.isfinite(y.sum().item())
