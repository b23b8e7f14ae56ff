import pytest

from tests.helpers import e2e


@pytest.fixture(scope='module')
def digit_scenes(tmp_path_factory):
    """Two train scenes (and one val, one test) of the digit-scene benchmark."""
    return e2e.make_digit_scenes(tmp_path_factory.mktemp('digits'), scenes=(2, 1, 1))
