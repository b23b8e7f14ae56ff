"""Fixtures of the reliability tests."""
import pytest


@pytest.fixture(scope='module')
def launcher():
    """Forks ``tools/train.py`` runs from one process with the stack imported (see train_runs)."""
    from tests.reliability.train_runs import Launcher
    launcher = Launcher()
    yield launcher
    launcher.close()
