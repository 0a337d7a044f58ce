import numpy as np
import pytest

import tse


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _grad_mode_restored():
    """A failing test must not leave grad mode off for the next one."""
    yield
    tse._C._set_grad_enabled(True)
