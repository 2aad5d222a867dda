"""The run loop: batching invariance, divergence isolation, random-stream properties."""

import numpy as np
import pytest

import problems
import runners
from problems.backend import RunRNG, get_backend

LR = {"gd": 0.3, "signsgd": 3e-3, "muon": 2e-2}
ALPHAS = np.array([0.0, 1.0, 2.0, 1.0])
SEEDS = np.array([0, 1, 2, 1])


def _problem(idx, **kw):
    return problems.make(
        "power_law_lsq",
        runs=len(idx),
        seed=SEEDS[idx],
        alpha=ALPHAS[idx],
        beta=1.0,
        m=6,
        n=10,
        batch_size=4,
        noise="minibatch",
        label_noise=0.2,
        rotate=True,
        **kw,
    )


@pytest.mark.parametrize("name", ["gd", "signsgd", "muon"])
def test_batching_invariance(name):
    """B runs in one job give the same curves as the same runs one at a time."""
    lrs = LR[name] * np.array([0.5, 1.0, 2.0, 1.5])
    idx = np.arange(4)
    together = runners.run(_problem(idx), runners.make(name, lr=lrs), steps=40, seed=SEEDS, log_points=10)
    for b in range(4):
        alone = runners.run(
            _problem(idx[b : b + 1]), runners.make(name, lr=lrs[b]), steps=40, seed=SEEDS[b], log_points=10
        )
        for metric in ("gap", "grad_fro", "dist_fro"):
            np.testing.assert_allclose(together.curves[metric][:, b], alone.curves[metric][:, 0], rtol=2e-5, atol=1e-7)
        np.testing.assert_allclose(together.params[0][b], alone.params[0][0], rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["gd", "signsgd", "muon"])
def test_divergent_run_is_flagged_and_isolated(name):
    """A run with a huge lr is frozen and flagged diverged; the other runs' results are
    bit-identical to a batch without it."""
    idx = np.arange(4)
    lrs = LR[name] * np.array([0.5, 1.0, 2.0, 1.5])
    base = runners.run(_problem(idx), runners.make(name, lr=lrs), steps=30, seed=SEEDS, log_points=8)
    idx5 = np.array([0, 1, 2, 3, 1])
    lrs5 = np.append(lrs, 1e12)
    P5 = problems.make(
        "power_law_lsq",
        runs=5,
        seed=SEEDS[idx5],
        alpha=ALPHAS[idx5],
        beta=1.0,
        m=6,
        n=10,
        batch_size=4,
        noise="minibatch",
        label_noise=0.2,
        rotate=True,
    )
    with_bad = runners.run(P5, runners.make(name, lr=lrs5), steps=30, seed=SEEDS[idx5], log_points=8)
    assert list(with_bad.status) == ["ok"] * 4 + ["diverged"]
    assert with_bad.diverged_step[4] >= 1 and (with_bad.diverged_step[:4] == -1).all()
    assert np.all(np.isfinite(with_bad.curves["gap"]))
    for metric in runners.METRICS:
        assert np.array_equal(with_bad.curves[metric][:, :4], base.curves[metric])
    assert np.array_equal(with_bad.params[0][:4], base.params[0])


def test_non_finite_is_caught_every_step():
    """A NaN appearing in the parameters between logged steps freezes the run at once."""
    P = problems.make("power_law_lsq", runs=2, seed=0, m=3, n=4, dtype="float64")
    res = runners.run(P, runners.make("gd", lr=np.array([0.5, 1e200])), steps=50, seed=0, log_points=3)
    assert list(res.status) == ["ok", "diverged"]
    assert np.all(np.isfinite(res.params[0]))


def test_log_steps():
    for steps, pts in [(1, 5), (10, 30), (1000, 25), (7, 2)]:
        s = runners.log_steps(steps, pts)
        assert s[0] == 0 and s[-1] == steps and np.all(np.diff(s) > 0)
        assert len(s) <= pts + 1
    s = runners.log_steps(1000, 25)
    ratios = s[2:] / s[1:-1]
    assert ratios.max() < 2.5  # roughly geometric, no large holes


def test_run_rng_streams_do_not_depend_on_batch_or_block():
    bk = get_backend("numpy", "float64")
    a = RunRNG(np.array([5, 7, 5]), bk, block=32)
    b = RunRNG(np.array([7]), bk, block=3)
    draws_a = [a.normal((2, 3)) for _ in range(10)]
    draws_b = [b.normal((2, 3)) for _ in range(10)]
    for da, db in zip(draws_a, draws_b):
        assert np.array_equal(da[1], db[0])  # seed 7 in a batch of 3 vs alone, other block size
        assert np.array_equal(da[0], da[2])  # same seed -> same draws (common random numbers)
        assert not np.allclose(da[0], da[1])
    flat = np.stack(draws_a)[:, 0].ravel()
    assert abs(flat.mean()) < 0.5 and 0.5 < flat.std() < 1.5
