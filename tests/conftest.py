"""Shared fixtures. ``backend``: the name of every array backend of :mod:`problems.backend`
('numpy'; 'torch' where PyTorch is installed, the 'torch' extra; 'cupy' where a GPU is visible;
skipped with the reason otherwise), so a test that
takes it runs once per backend without listing them."""

from __future__ import annotations

import pytest

from problems.backend import BACKENDS, available_backends

_AVAILABLE = available_backends()


@pytest.fixture(params=list(BACKENDS))
def backend(request) -> str:
    if request.param not in _AVAILABLE:
        why = "no CuPy or no visible GPU" if request.param == "cupy" else "PyTorch is not installed"
        pytest.skip(f"{request.param}: not usable on this machine ({why})")
    return request.param
