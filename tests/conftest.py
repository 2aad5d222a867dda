"""Shared fixtures. ``backend``: the name of every array backend of :mod:`problems.backend`
('numpy'; 'torch' where PyTorch is installed, the 'torch' extra; 'cupy' where a GPU is visible;
skipped with the reason otherwise), so a test that takes it runs once per backend without listing
them; ``other_backend``: the same without NumPy, for tests that compare a backend with NumPy."""

from __future__ import annotations

import pytest

from problems.backend import BACKENDS, available_backends

_AVAILABLE = available_backends()


def _usable(name: str) -> str:
    if name not in _AVAILABLE:
        why = "no CuPy or no visible GPU" if name == "cupy" else "PyTorch is not installed"
        pytest.skip(f"{name}: not usable on this machine ({why})")
    return name


@pytest.fixture(params=list(BACKENDS))
def backend(request) -> str:
    return _usable(request.param)


@pytest.fixture(params=[b for b in BACKENDS if b != "numpy"])
def other_backend(request) -> str:
    """Every backend but NumPy, the reference that parity tests compare it with."""
    return _usable(request.param)
