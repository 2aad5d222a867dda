"""The run loop's speed paths change no value: lanes (sub-batches in threads), the device-side
divergence flags (the GPU path, exercised here on NumPy) and the per-run finiteness reduction."""

import numpy as np
import pytest

import problems
import runners
from runners import loop, orth

SEEDS = np.array([0, 1, 2, 1, 0, 3, 2])


def _problem(kind="power_law_lsq"):
    if kind == "power_law_lsq":
        return problems.make(
            kind,
            runs=7,
            seed=SEEDS,
            alpha=np.linspace(0, 2, 7),
            beta=1.0,
            m=6,
            n=10,
            batch_size=4,
            noise="minibatch",
            label_noise=0.2,
            rotate=True,
        )
    return problems.make(kind, runs=7, seed=SEEDS, m=5, n=12, samples=20, alpha=np.linspace(0, 2, 7), label_noise=0.3)


def _lrs(name):
    base = {"gd": 0.3, "signsgd": 3e-3, "muon": 2e-2}[name]
    lrs = base * np.array([0.5, 1.0, 2.0, 1.5, 1.0, 0.7, 1.2])
    lrs[3] = 1e12  # one run diverges
    return lrs


def _same(a, b):
    for k in a.curves:
        np.testing.assert_array_equal(a.curves[k], b.curves[k], err_msg=k)
    for k in a.final:
        np.testing.assert_array_equal(a.final[k], b.final[k], err_msg=k)
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_array_equal(a.diverged_step, b.diverged_step)
    for x, y in zip(a.params, b.params):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kind", ["power_law_lsq", "sample_lsq"])
@pytest.mark.parametrize("name", ["gd", "signsgd", "muon"])
def test_lanes_change_no_value(kind, name):
    opt = runners.make(name, lr=_lrs(name))
    one = runners.run(_problem(kind), opt, steps=25, seed=SEEDS, log_points=6, lanes=1)
    three = runners.run(_problem(kind), opt, steps=25, seed=SEEDS, log_points=6, lanes=3)
    assert three.extra["lanes"] == 3 and list(one.status).count("diverged") == 1
    _same(one, three)


def test_lanes_change_no_logged_metric_where_lapack_uses_blas_threads():
    """At 256 x 256 LAPACK's eigvalsh (the logged grad_nuc, grad_op, orth_err) gave other bits
    with 2 BLAS threads (one lane) than with 1 (each of 2 lanes), ~1e-11 on grad_nuc, until
    problems.backend.batched_linalg ran every call on one BLAS thread."""
    P = problems.make("sample_lsq", runs=4, seed=np.arange(4), m=256, n=256, samples=64, alpha=1.0)
    opt = runners.make("muon")
    one = runners.run(P, opt, steps=4, seed=np.arange(4), log_points=2, lanes=1)
    two = runners.run(P, opt, steps=4, seed=np.arange(4), log_points=2, lanes=2)
    assert two.extra["lanes"] == 2
    _same(one, two)


@pytest.mark.parametrize("name", ["gd", "muon"])
def test_device_side_divergence_flags_equal_host_flags(name):
    """The path that keeps the flags on the device between logged steps (used on GPUs) gives the
    same results as checking on the host every step."""
    kw = dict(seeds=SEEDS, steps=30, log_points=4, divergence_factor=1e6, target=1e-2)
    opt = runners.make(name, lr=_lrs(name))
    host = loop._run_batch(_problem(), opt, sync_every_step=True, **kw)
    dev = loop._run_batch(_problem(), opt, sync_every_step=False, **kw)
    assert host.diverged_step[3] >= 1
    _same(host, dev)


def test_nan_between_logged_steps_freezes_on_the_device_path():
    P = problems.make("power_law_lsq", runs=2, seed=0, m=3, n=4, dtype="float64")
    res = loop._run_batch(
        P,
        runners.make("gd", lr=np.array([0.5, 1e200])),
        seeds=np.zeros(2, np.int64),
        steps=50,
        log_points=3,
        divergence_factor=1e6,
        target=1e-2,
        sync_every_step=False,
    )
    assert list(res.status) == ["ok", "diverged"] and 1 <= res.diverged_step[1] < 50
    assert np.all(np.isfinite(res.params[0]))


def test_finite_runs_flags_nan_and_inf_per_run():
    x = np.ones((4, 3, 2))
    x[1, 0, 0] = np.nan
    x[2, 2, 1] = -np.inf
    assert list(loop._finite_runs((x, np.ones((4, 2, 2))), np)) == [True, False, False, True]


def test_timer_counts_calls():
    before = dict(loop.TIMER)
    runners.run(_problem(), runners.make("gd", lr=0.1), steps=3, log_points=2)
    assert loop.TIMER["calls"] == before["calls"] + 1 and loop.TIMER["seconds"] > before["seconds"]


@pytest.mark.parametrize("shape", [(5, 9), (9, 5), (6, 6)])
def test_singular_values_match_svd_and_nan_for_non_finite(shape):
    rng = np.random.default_rng(1)
    g = rng.standard_normal((4, *shape)).astype(np.float32)
    g[2] *= 1e-3
    g[3, 1, 1] = np.inf
    sv = orth.singular_values(g)
    ref = np.linalg.svd(g[:3].astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(sv[:3], ref, rtol=1e-6, atol=1e-7 * ref.max())
    assert np.all(np.isnan(sv[3]))


def test_run_rng_draws_equal_the_generator_and_survive_refills():
    """Each run's draws are its own generator's successive standard normals (float32), whatever
    the block size; a draw handed out earlier is not overwritten by a later refill."""
    from problems.backend import RunRNG, get_backend, host_rng

    bk = get_backend("numpy", "float32")
    rng = RunRNG(np.array([4, 9, 4]), bk, stream=1, block=3)
    auto = RunRNG(np.array([9]), bk, stream=1)
    draws = [rng.normal((2, 5)) for _ in range(7)]
    ref = host_rng(9, 1, 2, 5).standard_normal((7, 2, 5), dtype=np.float32)
    for t, d in enumerate(draws):
        assert d.shape == (3, 2, 5) and d.dtype == np.float32
        np.testing.assert_array_equal(d[1], ref[t])
        np.testing.assert_array_equal(d[0], d[2])
        np.testing.assert_array_equal(auto.normal((2, 5))[0], ref[t])
