"""The problem contract, checked on every registered kind through the small valid parameter sets
its class declares (``EXAMPLES``): a new kind is tested by writing its file. Checks in
contract_checks.py: finite data; gap >= 0 at sampled points, gap = loss - f*, gap(X*) = 0; the
gradient is the loss's derivative; the stochastic gradient is unbiased (z-test at family-wise
level 1e-4 over 4000 draws); batching invariance; mu <= L <= L_* <= min(m, n) L where defined.
Each runs on every backend (the ``backend`` fixture)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import problems
import runners

sys.path.insert(0, str(Path(__file__).parent))
from contract_checks import build, cases, check_batching, check_instance, check_unbiased, varied  # noqa: E402

CASES = [pytest.param(kind, params, id=f"{kind}-{i}") for kind, i, params in cases()]


@pytest.mark.parametrize("kind", list(problems.REGISTRY))
def test_every_kind_declares_examples_covering_its_structural_variants(kind):
    """Each value of every structural choice (and both values of a structural flag) appears in
    some example; the examples are valid (they build)."""
    cls = problems.get(kind).cls
    assert "EXAMPLES" in vars(cls) and len(cls.EXAMPLES) >= 1, f"{kind}: declare EXAMPLES on the class"
    for name, decl in cls.PARAMS.items():
        if decl.per_run:
            continue
        values = {ex.get(name, decl.default) for ex in cls.EXAMPLES}
        if decl.choices is not None:
            assert values == set(decl.choices), (kind, name, set(decl.choices) - values)
        elif decl.type is bool:
            assert values == {False, True}, (kind, name)


@pytest.mark.parametrize("kind,params", CASES)
def test_contract_of_one_instance(kind, params, backend):
    check_instance(kind, params, backend=backend)


@pytest.mark.parametrize("kind,params", CASES)
def test_stochastic_gradient_is_unbiased(kind, params, backend):
    check_unbiased(kind, params, backend=backend)


@pytest.mark.parametrize("kind,params", CASES)
def test_batching_invariance(kind, params, backend):
    check_batching(kind, params, backend=backend)


@pytest.mark.parametrize("kind,params", CASES)
def test_batching_invariance_with_per_run_parameters(kind, params, backend):
    """The same, with the first run's per-run numbers (batch size, noise, exponents, ...) moved:
    a run's instance and oracle draws do not depend on its neighbours' parameters (per-run
    minibatch sizes once made every run draw the batch's largest size)."""
    check_batching(kind, varied(kind, params), backend=backend)


@pytest.mark.parametrize("kind,params", CASES)
def test_every_example_runs_through_the_run_loop_in_float32(kind, params, backend):
    P = build(kind, params, [0, 1], backend, dtype="float32")
    for name in ("gd", "signsgd", "muon"):
        res = runners.run(P, runners.make(name, lr=1e-3), steps=5, seed=[0, 1], log_points=3)
        assert np.all(np.isfinite(res.curves["gap"])), (kind, name)
        assert (res.status == "ok").all()
