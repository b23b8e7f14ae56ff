"""The one inference-cache mechanism (convdense.ops.inference.DerivedWeightCache)
as used by the octave, HetConv and ACNet layers: the cached weight follows
every way a parameter can change, and inference tensors are never keyed."""
import copy
import gc
import pickle

import pytest
import torch
import torch.nn as nn

from convdense.ops.adaptive_conv import AdaptiveConv2d
from convdense.ops.hetconv import HetConv2d
from convdense.ops.inference import DerivedWeightCache
from convdense.ops.octconv import OctaveConv2d


def _octave():
    return OctaveConv2d(8, 8, 3, padding=1), lambda x: (x[:, :4], x[:, 4:, ::2, ::2]), 'weight'


def _hetconv():
    return HetConv2d(8, 8, 3, part=4), lambda x: x, 'pointwise.weight'


def _acnet():
    layer = AdaptiveConv2d(8, 8, 3, padding=1)
    nn.init.normal_(layer.gate_logits)
    return layer, lambda x: x, 'local_branch.weight'


LAYERS = {'octave': _octave, 'hetconv': _hetconv, 'acnet': _acnet}


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def _exact(layer, x):
    """The grad-enabled path, which never reads the cache."""
    with torch.enable_grad():
        return _first(layer(x)).detach()


def _cached(layer, x):
    with torch.no_grad():
        return _first(layer(x))


def _cache_of(layer):
    return next(v for v in vars(layer).values() if isinstance(v, DerivedWeightCache))


def _owner_and_name(layer, dotted):
    owner = layer
    *path, name = dotted.split('.')
    for part in path:
        owner = getattr(owner, part)
    return owner, name


@pytest.fixture(params=sorted(LAYERS))
def case(request):
    torch.manual_seed(0)
    layer, adapt, weight_name = LAYERS[request.param]()
    x = torch.randn(2, 8, 10, 10)
    return layer, (lambda: adapt(x)), weight_name


def test_cache_is_reused_while_nothing_changes(case):
    layer, inputs, _ = case
    first = _cached(layer, inputs())
    built = _cache_of(layer)._value
    torch.testing.assert_close(_cached(layer, inputs()), first)
    assert _cache_of(layer)._value is built
    torch.testing.assert_close(first, _exact(layer, inputs()), rtol=1e-5, atol=1e-5)


def test_model_built_in_inference_mode(case):
    """Its parameters are inference tensors, which have no version counter
    (what the old keys read): it runs inside and outside inference_mode, and
    nothing is cached."""
    layer, inputs, _ = case
    with torch.inference_mode():
        built = copy.deepcopy(layer)
        for module in built.modules():
            for name, param in list(module.named_parameters(recurse=False)):
                setattr(module, name, nn.Parameter(param.detach().clone()))
        assert all(p.is_inference() for p in built.parameters())
        with pytest.raises(RuntimeError, match='version counter'):
            next(built.parameters())._version
        inside = _first(built(inputs()))
    outside = _cached(built, inputs())
    assert _cache_of(built)._key is None
    expected = _exact(layer, inputs())
    torch.testing.assert_close(inside, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outside, expected, rtol=1e-5, atol=1e-5)


def test_in_place_update_rebuilds(case):
    layer, inputs, weight_name = case
    before = _cached(layer, inputs())
    owner, name = _owner_and_name(layer, weight_name)
    with torch.no_grad():
        getattr(owner, name).mul_(-2.0)  # as an optimizer step does
    after = _cached(layer, inputs())
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, _exact(layer, inputs()), rtol=1e-5, atol=1e-5)


def test_load_state_dict_rebuilds(case):
    layer, inputs, _ = case
    _cached(layer, inputs())
    other = copy.deepcopy(layer)
    with torch.no_grad():
        for p in other.parameters():
            p.copy_(torch.randn_like(p))
    layer.load_state_dict(other.state_dict())
    torch.testing.assert_close(_cached(layer, inputs()), _exact(other, inputs()),
                               rtol=1e-5, atol=1e-5)


def test_parameter_replaced_at_the_same_address_rebuilds(case):
    """A new parameter object at the freed address with the same version
    counter (0) matched the old ``(version, data_ptr)`` keys."""
    layer, inputs, weight_name = case
    owner, name = _owner_and_name(layer, weight_name)
    shape = getattr(owner, name).shape
    setattr(owner, name, nn.Parameter(torch.randn(shape)))  # version 0
    _cached(layer, inputs())
    old_ptr, old_version = getattr(owner, name).data_ptr(), getattr(owner, name)._version
    delattr(owner, name)
    gc.collect()
    candidates = [torch.randn(shape) for _ in range(2000)]  # one lands at the freed address
    reused = [t for t in candidates if t.data_ptr() == old_ptr]
    if not reused:
        pytest.skip('the allocator did not reuse the address')
    setattr(owner, name, nn.Parameter(reused[0]))
    assert reused[0]._version == old_version
    torch.testing.assert_close(_cached(layer, inputs()), _exact(layer, inputs()),
                               rtol=1e-5, atol=1e-5)


def test_dtype_move_rebuilds(case):
    layer, inputs, _ = case
    _cached(layer, inputs())
    layer.double()
    x = inputs()
    x = tuple(t.double() for t in x) if isinstance(x, tuple) else x.double()
    out = _cached(layer, x)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, _exact(layer, x))


def test_device_move_rebuilds(case):
    """'meta' stands in for a second device: the cached weight must follow."""
    layer, inputs, _ = case
    _cached(layer, inputs())
    layer.to('meta')
    x = inputs()
    x = tuple(t.to('meta') for t in x) if isinstance(x, tuple) else x.to('meta')
    with torch.no_grad():
        out = _first(layer(x))
    assert out.device.type == 'meta'
    assert all(t.device.type == 'meta' for t in torch.utils._pytree.tree_leaves(
        _cache_of(layer)._value))


def test_copies_do_not_share_the_cache(case):
    layer, inputs, _ = case
    _cached(layer, inputs())
    assert _cache_of(copy.deepcopy(layer))._key is None
    assert _cache_of(pickle.loads(pickle.dumps(layer)))._key is None


def test_a_new_tensor_object_at_the_same_address_and_version_is_a_miss():
    """Deterministic form of the replacement above: two views of one storage
    share address, layout and version counter, yet are different tensors."""
    cache, builds = DerivedWeightCache(), []
    storage = torch.randn(10)

    def build():
        builds.append(1)
        return len(builds)

    first = storage[:4]
    with torch.no_grad():
        assert cache.get((first,), build) == 1
        assert cache.get((first,), build) == 1
        del first
        second = storage[:4]
        assert cache.get((second,), build) == 2
        storage.add_(1)  # bumps the shared version counter
        assert cache.get((second,), build) == 3
    assert cache.get((second,), build) == 4 and cache._key is None  # grad mode: no cache


def test_no_fast_path_while_a_graph_is_recorded():
    """torch.export and the ONNX exporters may run under no_grad without tracing
    (torch.jit.is_tracing() is False there): the exact path must be recorded."""
    from unittest import mock

    from convdense.ops.inference import fast_inference
    with torch.no_grad():
        assert fast_inference()
        with mock.patch.object(torch.onnx, 'is_in_onnx_export', lambda: True):
            assert not fast_inference()
        with mock.patch.object(torch.compiler, 'is_compiling', lambda: True):
            assert not fast_inference()
