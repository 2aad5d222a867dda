"""Properties every registered optimizer must have (parametrized over runners.REGISTRY): a zero
gradient gives a zero step and no NaN; batching invariance; per-run hyperparameter arrays equal
separate runs; convergence on a well-conditioned quadratic under the class's own TEST_HPARAMS;
determinism by seed; the declared ORACLE_CALLS is the measured number of oracle calls per step."""

from __future__ import annotations

import numpy as np
import pytest

import runners
from problems.backend import get_backend, host_rng
from problems import Param, Problem

NAMES = sorted(runners.REGISTRY)
SHAPES = ((4, 3), (3, 5))


class TwoLayerQuadratic(Problem):
    """f = 1/2 sum_l sum h_l (X_l - S_l)^2 with h in [1, 2] (condition number <= 2), two layers;
    the oracle adds sigma * N(0, I) per entry (drawn from xi, the same at every point)."""

    kind = "test_two_layer_quadratic"
    PARAMS = {"sigma": Param(0.0, float, low=0.0)}

    def __init__(self, runs, seed, backend, **params):
        super().__init__(runs, seed, backend, **params)
        self.layer_shapes = SHAPES
        h = [np.empty((self.runs, m, n)) for m, n in SHAPES]
        s = [np.empty((self.runs, m, n)) for m, n in SHAPES]
        for r, sd in enumerate(self.seeds):
            rng = host_rng(sd, 99)
            for l, (m, n) in enumerate(SHAPES):
                h[l][r] = rng.uniform(1.0, 2.0, (m, n))
                s[l][r] = rng.standard_normal((m, n)) / np.sqrt(m * n)
        self.h = tuple(backend.asarray(a) for a in h)
        self.s = tuple(backend.asarray(a) for a in s)
        self.sigma = self.p("sigma")
        self.sig = backend.asarray(self.sigma[:, None, None])

    def loss(self, params):
        return sum((0.5 * h * (x - s) ** 2).sum(axis=(1, 2)) for h, s, x in zip(self.h, self.s, params))

    def grad(self, params):
        return tuple(h * (x - s) for h, s, x in zip(self.h, self.s, params))

    def sample(self, rng):
        if not np.any(self.sigma > 0):
            return None
        return [rng.normal(shape) for shape in SHAPES]

    def stoch_grad(self, params, xi):
        g = self.grad(params)
        return g if xi is None else tuple(gi + self.sig * z for gi, z in zip(g, xi))

    def optimum(self):
        return self.s, self.xp.zeros(self.runs, dtype=self.dtype)

    def constants(self):
        return {}


def problem(runs, seed, sigma=0.0, dtype="float64"):
    return TwoLayerQuadratic(runs, seed, get_backend("numpy", dtype), sigma=sigma)


def sane(name: str) -> dict:
    """The class's own test hyperparameters (``TEST_HPARAMS``, declared next to its HPARAMS)."""
    return dict(runners.get(name).TEST_HPARAMS)


@pytest.mark.parametrize("name", NAMES)
def test_every_optimizer_declares_valid_test_hyperparameters(name):
    cls = runners.get(name)
    assert "TEST_HPARAMS" in vars(cls), f"{name}: declare TEST_HPARAMS on the class itself (not inherited)"
    assert "lr" in cls.TEST_HPARAMS
    runners.make(name, **cls.TEST_HPARAMS)  # valid: raises on an unknown or out-of-range value


class ZeroOracle:
    xp, calls = np, 0

    def __call__(self, params):
        self.calls += 1
        return tuple(np.zeros_like(x) for x in params)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("variant", ["defaults", "sane"])
def test_zero_gradient_gives_zero_step_and_no_nan(name, variant):
    hp = {} if variant == "defaults" else sane(name)
    if name.startswith("gluon") and variant == "sane":
        hp = {**hp, "step": "l0l1", "l1": 1.0}
    opt = runners.make(name, **hp)
    bk = get_backend("numpy", "float32")
    rng = np.random.default_rng(0)
    x0 = tuple(rng.standard_normal((2, m, n)).astype(np.float32) for m, n in SHAPES)
    bound = opt.bind(2, bk)
    params, state = x0, opt.init(x0, bound, np)
    with np.errstate(all="raise"):  # no 0/0, no overflow
        for t in range(1, 4):
            params, state = opt.step(params, state, ZeroOracle(), t, bound)
    for a, b in zip(params, x0):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)


def _run(name, hp, prob, steps, seed):
    return runners.run(prob, runners.make(name, **hp), steps=steps, seed=seed, log_points=4)


@pytest.mark.parametrize("name", NAMES)
def test_batching_invariance(name):
    seeds = np.array([0, 1, 2])
    together = _run(name, sane(name), problem(3, seeds, sigma=0.3), 12, seeds)
    for r, sd in enumerate(seeds):
        alone = _run(name, sane(name), problem(1, sd, sigma=0.3), 12, sd)
        for a, b in zip(together.params, alone.params):
            np.testing.assert_allclose(a[r], b[0], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", NAMES)
def test_per_run_hyperparameter_arrays_equal_separate_runs(name):
    decl = runners.hparams(name)
    base = sane(name)
    per_run = {"lr": np.array([1.0, 0.6, 0.3]) * base["lr"]}
    if "beta" in decl:
        per_run["beta"] = np.array([0.0, 0.5, 0.8])
        if "allow_degenerate" in decl:  # beta = 0 collapses the MVR methods: covered here on purpose
            base["allow_degenerate"] = True
    if "weight_decay" in decl:
        per_run["weight_decay"] = np.array([0.0, 0.1, 0.2])
    seeds = np.zeros(3, np.int64)
    together = _run(name, {**base, **per_run}, problem(3, seeds, sigma=0.3), 12, seeds)
    for r in range(3):
        alone = _run(name, {**base, **{k: float(v[r]) for k, v in per_run.items()}}, problem(1, 0, sigma=0.3), 12, 0)
        for a, b in zip(together.params, alone.params):
            np.testing.assert_allclose(a[r], b[0], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", NAMES)
def test_converges_on_a_well_conditioned_quadratic(name):
    res = _run(name, sane(name), problem(2, [0, 1]), 200, [0, 1])
    assert (res.status == "ok").all()
    assert np.all(res.final["gap"] <= 1e-3 * res.curves["gap"][0]), res.final["gap"] / res.curves["gap"][0]


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_by_seed(name):
    a = _run(name, sane(name), problem(2, [0, 1], sigma=0.3), 6, [0, 1])
    b = _run(name, sane(name), problem(2, [0, 1], sigma=0.3), 6, [0, 1])
    c = _run(name, sane(name), problem(2, [0, 1], sigma=0.3), 6, [5, 6])
    for x, y, z in zip(a.params, b.params, c.params):
        np.testing.assert_array_equal(x, y)
        assert not np.allclose(x, z)


@pytest.mark.parametrize("name", NAMES)
def test_docstring_cites_a_source(name):
    import re

    assert re.search(r"arXiv \d{4}\.\d{4,5}|K\. Jordan|Robbins|Polyak|seed 00\d", runners.get(name).__doc__ or "")


@pytest.mark.parametrize("name", NAMES)
def test_declared_oracle_calls_equal_the_measured_ones(name):
    steps = 7
    res = _run(name, sane(name), problem(2, [0, 1], sigma=0.3), steps, [0, 1])
    assert res.oracle_calls_per_step == runners.get(name).ORACLE_CALLS
