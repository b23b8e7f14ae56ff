"""The convdense scope: reachable as ``convdense.NAME`` from mmdet and mmseg
registries, lazily imported, and never shadowing an upstream name."""
import subprocess
import sys

import pytest
import torch.nn as nn

from convdense.registry import MODELS


@MODELS.register_module(name='RegistryProbeBackbone')
class RegistryProbeBackbone(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.width = width

    def forward(self, x):
        return (x,)


@pytest.mark.parametrize('upstream', ['mmdet', 'mmseg'])
def test_convdense_type_resolves_from_upstream_scope(upstream):
    from mmengine.registry import DefaultScope
    registry = __import__(f'{upstream}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(upstream):
        built = registry.build(dict(type='convdense.RegistryProbeBackbone', width=7))
    assert isinstance(built, RegistryProbeBackbone) and built.width == 7


def test_unknown_convdense_type_is_a_clear_error():
    from mmdet.registry import MODELS as DET_MODELS
    with pytest.raises(KeyError, match='NoSuchBackbone'):
        DET_MODELS.build(dict(type='convdense.NoSuchBackbone'))


def test_registry_children_of_mmengine_roots():
    from mmengine.registry import MODELS as ROOT
    assert MODELS.parent is ROOT and MODELS.scope == 'convdense'
    assert ROOT.children['convdense'] is MODELS


def test_import_is_light_and_models_resolve_lazily():
    code = ("import sys, convdense; "
            "heavy = [m for m in ('convdense.models', 'mmdet', 'mmseg') if m in sys.modules]; "
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    code = ("import sys; from mmdet.registry import MODELS; "
            "MODELS.get('convdense.Res2Net'); assert 'convdense.models' in sys.modules")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_no_convdense_name_overrides_upstream():
    import convdense.models  # noqa: F401  registers everything of ours
    import mmdet.models  # noqa: F401
    import mmseg.models  # noqa: F401
    from mmdet.registry import MODELS as DET_MODELS
    from mmengine.registry import MODELS as ROOT
    from mmseg.registry import MODELS as SEG_MODELS
    # mmdet's own Res2Net is still what 'Res2Net' means in the mmdet scope
    assert DET_MODELS.get('Res2Net').__module__.startswith('mmdet.')
    assert MODELS.get('Res2Net').__module__.startswith('convdense.')
    for registry in (ROOT, DET_MODELS, SEG_MODELS):
        ours = [name for name, cls in registry.module_dict.items()
                if cls.__module__.startswith('convdense')]
        assert ours == [], f'convdense registered {ours} outside its scope'


def test_build_model_ignores_an_upstream_default_scope():
    """A convdense model that builds its parts from config must find them while an
    mmseg/mmdet run holds the default scope."""
    from mmengine.registry import DefaultScope

    from convdense.registry import build_model
    with DefaultScope.overwrite_default_scope('mmseg'):
        with pytest.raises(KeyError, match='mmseg'):
            MODELS.build(dict(type='RegistryProbeBackbone'))
        assert isinstance(build_model(dict(type='RegistryProbeBackbone')), RegistryProbeBackbone)
