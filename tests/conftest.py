"""Shared fixtures. ``backend``: the name of every array backend of :mod:`problems.backend`
('numpy', and 'cupy' where a GPU is visible; skipped with the reason otherwise), so a test that
takes it runs once per backend without listing them."""

from __future__ import annotations

import pytest

from problems.backend import BACKENDS, available_backends

_AVAILABLE = available_backends()


@pytest.fixture(params=list(BACKENDS))
def backend(request) -> str:
    if request.param not in _AVAILABLE:
        pytest.skip(f"{request.param}: not usable on this machine (no CuPy or no visible GPU)")
    return request.param
