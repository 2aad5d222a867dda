"""Every-step accumulators against a slow reference: a plain Python loop that runs the same
optimizer one step at a time on each run alone and keeps the history of every iterate's gap,
sqrt(gap), ||grad f||_F and ||grad f||_* (the nuclear norm from NumPy's SVD, not from the loop's
Gram eigenvalues), then takes min and mean itself."""

import math

import numpy as np
import pytest

import problems
import runners
from lab.config import parse_config
from problems.backend import RunRNG, get_backend
from runners.loop import Oracle

ALL = ["gap", "grad_fro", "grad_nuc"]
BK = get_backend("numpy", "float64")
CASES = {
    # deterministic: exact oracle
    "quadratic": (dict(m=4, n=5), "muon", dict(orth="svd"), [3e-3, 1e-2, 3e-2]),
    # stochastic, two layers
    "linear_net": (dict(m=4, n=5, hidden=3, noise="gaussian", sigma=0.3), "muon_mvr2", dict(), [3e-3, 1e-2, 3e-2]),
}


def _problem(kind, kw, seeds):
    return problems.make(kind, runs=len(seeds), seed=np.asarray(seeds), backend=BK, **kw)


def _reference_history(kind, kw, opt_name, hp, lr, seed, steps):
    """Per iterate X_0..X_steps of one run alone: [gap, sqrt gap, fro, nuc] (plain Python)."""
    P = _problem(kind, kw, [seed])
    opt = runners.make(opt_name, lr=lr, **hp)
    bound = opt.bind(1, BK)
    rng = RunRNG(np.array([seed]), BK, stream=1)
    params = P.init(RunRNG(np.array([seed]), BK, stream=2))
    state = opt.init(params, bound, np)
    hist = []
    for t in range(steps + 1):
        gap = float(P.gap(params)[0])
        grads = P.grad(params)
        fro = math.sqrt(sum(float((g[0] ** 2).sum()) for g in grads))
        nuc = sum(float(np.linalg.svd(g[0], compute_uv=False).sum()) for g in grads)
        hist.append((gap, math.sqrt(max(gap, 0.0)), fro, nuc))
        if t < steps:
            params, state = opt.step(params, state, Oracle(P, P.sample(rng)), t + 1, bound)
    return hist


@pytest.mark.parametrize("kind", list(CASES))
@pytest.mark.parametrize("lanes", [1, 3])
def test_accumulators_match_a_per_step_reference(kind, lanes):
    kw, opt_name, hp, lrs = CASES[kind]
    seeds, steps = [0, 1, 2], 25
    res = runners.run(
        _problem(kind, kw, seeds),
        runners.make(opt_name, lr=np.array(lrs), **hp),
        steps=steps,
        seed=seeds,
        log_points=6,
        lanes=lanes,
        accumulate=ALL,
    )
    assert (res.status == "ok").all()
    for b, (lr, seed) in enumerate(zip(lrs, seeds)):
        hist = _reference_history(kind, kw, opt_name, hp, lr, seed, steps)
        for k, t in enumerate(res.steps):
            if t == 0:
                assert all(np.isnan(res.curves[c][0, b]) for c in runners.accumulate.columns(ALL))
                continue
            seen = hist[:t]  # X_0..X_{t-1}
            for j, q in enumerate(("gap", "sqrt_gap", "grad_fro", "grad_nuc")):
                vals = [h[j] for h in seen]
                np.testing.assert_allclose(res.curves[f"min_{q}"][k, b], min(vals), rtol=1e-9, err_msg=f"min_{q} t={t}")
                np.testing.assert_allclose(
                    res.curves[f"avg_{q}"][k, b], sum(vals) / t, rtol=1e-9, err_msg=f"avg_{q} t={t}"
                )
        for c in runners.accumulate.columns(ALL):
            assert res.final[c][b] == res.curves[c][-1, b]


def test_every_step_min_is_below_every_logged_value():
    """The every-step min at step t bounds every logged gap before t (same arithmetic)."""
    kw, opt_name, hp, lrs = CASES["linear_net"]
    res = runners.run(
        _problem("linear_net", kw, [0, 1, 2]),
        runners.make(opt_name, lr=np.array(lrs), **hp),
        steps=40,
        seed=[0, 1, 2],
        log_points=8,
        lanes=1,
        accumulate=["gap"],
    )
    for k in range(1, len(res.steps)):
        assert np.all(res.curves["min_gap"][k] <= res.curves["gap"][:k].min(axis=0))


@pytest.mark.parametrize("sync", [True, False])
def test_diverged_run_accumulates_up_to_its_divergence_step(sync):
    """A run frozen at step d accumulates X_0..X_{d-1} and then stays constant; the others are
    unaffected (bit-identical to a batch without it). Both finiteness-sync modes of the loop."""
    from runners.loop import _run_batch

    kind = "quadratic"
    kw, opt_name, hp, _ = CASES[kind]
    steps = 30
    lrs = np.array([1e-2, 3e-2, 30.0])

    def go(sel):
        seeds = np.zeros(len(sel), np.int64)
        return _run_batch(
            _problem(kind, kw, seeds),
            runners.make("gd", lr=lrs[sel]),
            seeds,
            steps=steps,
            log_points=6,
            divergence_factor=1e6,
            target=1e-2,
            accumulate=tuple(ALL),
            sync_every_step=sync,
        )

    res, base = go(np.arange(3)), go(np.arange(2))
    assert list(res.status) == ["ok", "ok", "diverged"]
    d = int(res.diverged_step[2])
    assert d >= 1
    hist = _reference_history(kind, kw, "gd", {}, lrs[2], 0, d - 1)  # X_0..X_{d-1}
    after = res.steps >= d
    for j, q in enumerate(("gap", "sqrt_gap", "grad_fro", "grad_nuc")):
        vals = [h[j] for h in hist]
        np.testing.assert_allclose(res.curves[f"min_{q}"][after, 2], min(vals), rtol=1e-9)
        np.testing.assert_allclose(res.curves[f"avg_{q}"][after, 2], sum(vals) / d, rtol=1e-9)
    for c in res.curves:
        assert np.array_equal(res.curves[c][:, :2], base.curves[c], equal_nan=True), c


def test_accumulate_off_changes_nothing_and_on_only_adds_columns():
    kw, opt_name, hp, lrs = CASES["linear_net"]
    args = dict(steps=20, seed=[0, 1, 2], log_points=5, lanes=1)
    off = runners.run(_problem("linear_net", kw, [0, 1, 2]), runners.make(opt_name, lr=np.array(lrs), **hp), **args)
    on = runners.run(
        _problem("linear_net", kw, [0, 1, 2]),
        runners.make(opt_name, lr=np.array(lrs), **hp),
        accumulate=["grad_fro"],
        **args,
    )
    assert set(on.curves) - set(off.curves) == {"min_grad_fro", "avg_grad_fro"}
    for k in off.curves:
        assert np.array_equal(on.curves[k], off.curves[k], equal_nan=True)  # orth_err is NaN at step 0
    for k in off.final:
        assert np.array_equal(on.final[k], off.final[k])


def test_accumulate_rejects_unknown_names():
    P = _problem("quadratic", CASES["quadratic"][0], [0])
    with pytest.raises(ValueError, match="accumulate: got 'loss'; allowed: gap, grad_fro, grad_nuc"):
        runners.run(P, runners.make("gd", lr=0.1), steps=2, accumulate=["loss"])


def test_config_field_is_off_by_default_and_leaves_the_hash_alone():
    base = {"steps": 5, "seeds": [0], "problem": {"kind": "quadratic"}, "optimizers": [{"name": "gd", "lr": 0.1}]}
    plain, on = parse_config(base), parse_config({**base, "accumulate": ["gap"]})
    assert plain.accumulate == [] and "accumulate" not in plain.model_dump()
    assert on.digest() != plain.digest()
    from lab.errors import ConfigError

    with pytest.raises(ConfigError, match="accumulate"):
        parse_config({**base, "accumulate": ["gap", "gap"]})
