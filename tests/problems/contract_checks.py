"""The checks of the problem contract (docs/design.md), shared by the generic contract test
(test_contract.py, over every registered kind's ``EXAMPLES``) and the property tests
(test_properties.py, over random parameters). Every check takes a built problem or the arguments
of ``problems.make`` and asserts a property that must hold for every valid instance; none uses a
value computed by the code under test as its expectation except through an identity (the gap is
the loss minus f*, the gradient is the derivative of the loss, ...)."""

from __future__ import annotations

import numpy as np
from scipy import stats

import problems
from problems.backend import RunRNG

TOL = 1e-9  # relative tolerance of identities in float64
# the L_* chain, in the order the values must be: mu <= L <= L_star_low <= L_star <= L_star_high
CHAIN = ("mu", "L", "L_star_low", "L_star", "L_star_high")
L_STAR_KEYS = ("L_star_low", "L_star", "L_star_high")


def cases() -> list[tuple[str, int, dict]]:
    """(kind, index, params) for every example of every registered kind (no hand list)."""
    return [(kind, i, dict(ex)) for kind in problems.REGISTRY for i, ex in enumerate(problems.get(kind).cls.EXAMPLES)]


def build(kind, params, seeds, backend="numpy", dtype="float64"):
    seeds = np.asarray(seeds, np.int64).reshape(-1)
    return problems.make(kind, runs=len(seeds), seed=seeds, backend=backend, dtype=dtype, **params)


def host(P, arrays) -> tuple:
    return tuple(np.asarray(P.backend.to_host(a), np.float64) for a in arrays)


def dev(P, arrays) -> tuple:
    return tuple(P.backend.asarray(a) for a in arrays)


def scalar_host(P, a) -> np.ndarray:
    return np.asarray(P.backend.to_host(P.backend.xp.asarray(a)), np.float64).reshape(-1)


def random_points(P, rng, scales=(0.1, 1.0, 3.0)) -> list[tuple]:
    """Host points: Gaussian layers at several scales (about the scale of X* for the kinds here)."""
    return [tuple(s * rng.standard_normal((P.runs, *shape)) for shape in P.layer_shapes) for s in scales]


def sample_points(P, rng) -> list[tuple]:
    """Random points, the problem's initial point, and points near X* (where X* exists)."""
    pts = random_points(P, rng)
    pts.append(host(P, P.init(RunRNG(P.seeds, P.backend, stream=2))))
    xs = host(P, P.optimum()[0])
    if all(np.isfinite(x).all() for x in xs):
        pts += [tuple(x + eps * rng.standard_normal(x.shape) for x in xs) for eps in (1e-6, 1e-2)]
    return pts


# --- the checks --------------------------------------------------------------------------------------


def check_finite_data(P) -> None:
    """Shapes and finiteness of what a kind generates: X0, X*, f*, losses and gradients, spectra;
    constants are per-run (B,) and finite or NaN ('not defined'), never infinite."""
    B = P.runs
    x0 = host(P, P.init(RunRNG(P.seeds, P.backend, stream=2)))
    assert [x.shape for x in x0] == [(B, *s) for s in P.layer_shapes]
    assert all(np.isfinite(x).all() for x in x0)
    xs, fstar = P.optimum()
    xs, fstar = host(P, xs), scalar_host(P, fstar)
    assert [x.shape for x in xs] == [(B, *s) for s in P.layer_shapes] and fstar.shape == (B,)
    assert np.isfinite(fstar).all()
    for x in xs:  # X* exists (finite), or the infimum is not attained (all NaN, e.g. assoc_memory)
        assert np.isfinite(x).all() or np.isnan(x).all()
    for pt in [x0] + random_points(P, np.random.default_rng(1)):
        loss = scalar_host(P, P.loss(dev(P, pt)))
        assert loss.shape == (B,) and np.isfinite(loss).all()
        g = host(P, P.grad(dev(P, pt)))
        assert [gi.shape for gi in g] == [x.shape for x in pt] and all(np.isfinite(gi).all() for gi in g)
    for k, v in P.constants().items():
        assert np.shape(v) == (B,), k
        assert not np.isinf(v).any(), (k, v)
    for k, v in P.spectra().items():
        assert v.shape[0] == B and np.isfinite(v).all(), k


def check_gap(P, rng) -> None:
    """gap >= 0 at every sampled point, gap = loss - f*, and gap(X*) = 0 (within rounding)."""
    xs, fstar = P.optimum()
    fstar = scalar_host(P, fstar)
    for pt in sample_points(P, rng):
        gap = scalar_host(P, P.gap(dev(P, pt)))
        loss = scalar_host(P, P.loss(dev(P, pt)))
        scale = 1 + np.abs(loss) + np.abs(fstar)
        assert np.all(gap >= -TOL * scale), gap
        np.testing.assert_array_less(np.abs(gap - (loss - fstar)), TOL * scale)
    if all(np.isfinite(x).all() for x in host(P, xs)):
        assert np.all(np.abs(scalar_host(P, P.gap(xs))) <= TOL * (1 + np.abs(fstar)))


def check_gradient(P, rng) -> None:
    """The gradient is the derivative of the loss: central differences along random directions
    at random points (away from the kinks of a nonsmooth kind, almost surely)."""
    for pt in random_points(P, rng):
        v = tuple(rng.standard_normal(x.shape) for x in pt)
        nv = np.sqrt(sum((vi**2).sum(axis=(1, 2)) for vi in v))
        v = tuple(vi / nv[:, None, None] for vi in v)
        h = 1e-5 * (1 + np.sqrt(sum((x**2).sum(axis=(1, 2)) for x in pt)))
        plus = scalar_host(P, P.loss(dev(P, tuple(x + h[:, None, None] * vi for x, vi in zip(pt, v)))))
        minus = scalar_host(P, P.loss(dev(P, tuple(x - h[:, None, None] * vi for x, vi in zip(pt, v)))))
        g = host(P, P.grad(dev(P, pt)))
        dd = sum((gi * vi).sum(axis=(1, 2)) for gi, vi in zip(g, v))
        gnorm = np.sqrt(sum((gi**2).sum(axis=(1, 2)) for gi in g))
        np.testing.assert_array_less(np.abs((plus - minus) / (2 * h) - dd), 1e-5 * (1 + gnorm))


def check_constants(P) -> None:
    """mu <= L <= L_star_low <= L_star <= L_star_high <= min(m, n) L, for the values a kind
    defines (finite). L_* <= min(m, n) L is the valid bound (L_* <= rank(H) L is false in general,
    docs/problems.md); L_* is defined for one layer only."""
    c = P.constants()
    tol = 1 + TOL
    present = [k for k in CHAIN if k in c]
    for i, a in enumerate(present):
        for b in present[i + 1 :]:
            ok = np.isfinite(c[a]) & np.isfinite(c[b])
            assert np.all(c[a][ok] <= c[b][ok] * tol + TOL), (a, b, c[a], c[b])
    if len(P.layer_shapes) > 1:
        assert all(np.isnan(c[k]).all() for k in L_STAR_KEYS if k in c)
        return
    p = min(P.layer_shapes[0])
    for k in L_STAR_KEYS:
        if k in c and "L" in c:
            ok = np.isfinite(c[k]) & np.isfinite(c["L"])
            assert np.all(c[k][ok] <= p * c["L"][ok] * tol), (k, c[k], c["L"])


def check_unbiased(kind, params, backend="numpy", draws=12000, level=1e-4) -> None:
    """E[stoch_grad] = grad at a random point, by z-tests of the mean of ``draws`` independent
    oracle draws against the exact gradient at family-wise level ``level`` (half each): every
    entry (Bonferroni over the entries; a bias in a few entries), and the projection on the
    exact gradient's direction (a one-dimensional test with the power to see a wrongly scaled
    oracle, e.g. a minibatch mean off by 10%). An exact oracle (``sample`` gives None) must return
    the gradient itself. Kinds that document a biased oracle (``BIASED_ORACLE``) are exempt."""
    if problems.get(kind).cls.BIASED_ORACLE:
        return
    # one instance (one seed) repeated over a batch of ``runs``; each run draws its own oracle
    # stream, ``draws / runs`` successive draws each
    runs = 200
    P = build(kind, params, np.full(runs, 7), backend)
    pt = tuple(
        np.broadcast_to(np.random.default_rng(2).standard_normal((1, *s)), (runs, *s)).copy() for s in P.layer_shapes
    )
    x = dev(P, pt)
    exact = host(P, P.grad(x))
    rng = RunRNG(np.arange(runs), P.backend, stream=1)
    draw = []
    for _ in range(max(draws // runs, 1)):
        xi = P.sample(rng)
        g = host(P, P.stoch_grad(x, xi))
        if xi is None:
            for a, b in zip(g, exact):
                np.testing.assert_array_equal(a, b)
            return
        draw.append(np.concatenate([gi.reshape(runs, -1) for gi in g], axis=1))
    g = np.concatenate(draw)  # (draws, entries)
    draws = g.shape[0]
    e = np.concatenate([ei[0].reshape(-1) for ei in exact])
    n_entries = e.size
    z_entry = stats.norm.isf(level / 2 / (2 * n_entries))
    mean, se = g.mean(axis=0), g.std(axis=0, ddof=1) / np.sqrt(draws)
    err = np.abs(mean - e)
    floor = 1e-12 * (1 + np.abs(e))  # entries the noise does not reach: equal up to rounding
    assert np.all(err <= z_entry * se + floor), (kind, "entry", (err / np.maximum(se, 1e-300)).max(), z_entry)
    u = e / np.linalg.norm(e)
    proj = g @ u
    z = abs(proj.mean() - e @ u) / (proj.std(ddof=1) / np.sqrt(draws))
    assert z <= stats.norm.isf(level / 2 / 2), (kind, "projection on grad", z)


def varied(kind, params, runs: int = 3) -> dict:
    """``params`` with every per-run number (per_run, int or float, no choices) given as a list
    of ``runs`` values: the first run's moved within the parameter's bounds (int: +1, float:
    1.5 v + 0.25, kept <= high), the others as given; a parameter whose moved value does not
    build (a combination the kind refuses) keeps its one value."""
    decl = problems.get(kind).cls.PARAMS
    out = dict(params)
    for name, p in decl.items():
        if not p.per_run or p.type not in (int, float) or p.choices is not None:
            continue
        v = params.get(name, p.default)
        alt = v + 1 if p.type is int else 1.5 * v + 0.25
        if p.high is not None:
            alt = min(alt, p.high)
        if alt == v:
            continue
        trial = {**out, name: [alt] + [v] * (runs - 1)}
        try:
            build(kind, trial, np.arange(runs))
        except problems.ParamError:
            continue
        out = trial
    return out


def check_batching(kind, params, backend="numpy", seeds=(11, 4, 11)) -> None:
    """Run b of a batch equals the same seed and parameters built alone: instance (X*, f*,
    constants, spectra), X0, loss/grad/gap at a point, extra metrics, and the stochastic
    gradient under the run's own oracle stream. Per-run parameters may be lists (one value a
    run, :func:`varied`): run b alone then takes its own value."""
    seeds = np.asarray(seeds, np.int64)
    Pb = build(kind, params, seeds, backend)
    rng = np.random.default_rng(3)
    pt = tuple(rng.standard_normal((len(seeds), *s)) for s in Pb.layer_shapes)

    def everything(P, point):
        out = {}
        xs, fstar = P.optimum()
        out.update({f"xstar{i}": x for i, x in enumerate(host(P, xs))}, fstar=scalar_host(P, fstar))
        out.update({f"c_{k}": v for k, v in P.constants().items()})
        out.update({f"s_{k}": v for k, v in P.spectra().items()})
        out.update({f"x0_{i}": x for i, x in enumerate(host(P, P.init(RunRNG(P.seeds, P.backend, stream=2))))})
        x = dev(P, point)
        out.update(loss=scalar_host(P, P.loss(x)), gap=scalar_host(P, P.gap(x)))
        out.update({f"g{i}": g for i, g in enumerate(host(P, P.grad(x)))})
        out.update({f"m_{k}": scalar_host(P, v) for k, v in P.extra_metrics(x).items()})
        rr = RunRNG(P.seeds, P.backend, stream=1)
        for t in range(2):
            out.update({f"sg{t}_{i}": g for i, g in enumerate(host(P, P.stoch_grad(x, P.sample(rr))))})
        return out

    together = everything(Pb, pt)
    for r, s in enumerate(seeds):
        own = {k: v[r] if isinstance(v, list) else v for k, v in params.items()}
        alone = everything(build(kind, own, [s], backend), tuple(x[r : r + 1] for x in pt))
        assert set(alone) == set(together)
        for k in together:
            np.testing.assert_allclose(
                np.asarray(together[k])[r],
                np.asarray(alone[k])[0],
                rtol=1e-10,
                atol=1e-12,
                equal_nan=True,
                err_msg=f"{kind}: {k}",
            )


def check_instance(kind, params, seeds=(3, 8, 3), backend="numpy") -> None:
    """Every single-instance check on one batch (runs 0 and 2 share their seed)."""
    P = build(kind, params, seeds, backend)
    rng = np.random.default_rng(0)
    check_finite_data(P)
    check_gap(P, rng)
    check_gradient(P, rng)
    check_constants(P)
