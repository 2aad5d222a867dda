"""Problems, fake oracles and the batched-vs-per-run comparison shared by the optimizer tests
(imported by path: tests are not a package)."""

import numpy as np

import problems
import runners
from problems.backend import get_backend

RUN_SCALES = (1.0, 0.1, 0.01)  # per-run gradient scales of ``fake_data``: clipping and eps act on some runs only


def noisy_lsq(runs=2, m=4, n=6, batch_size=3):
    """A tiny float64 minibatch least-squares problem with label noise: a stochastic oracle, so no
    exact-gradient identity can hide a difference between two methods."""
    return problems.make(
        "power_law_lsq",
        runs=runs,
        seed=list(range(runs)),
        m=m,
        n=n,
        batch_size=batch_size,
        noise="minibatch",
        label_noise=0.5,
        dtype="float64",
    )


class FakeOracle:
    """G_l = H_l * (X_l - S_l) + N_l, N the step's draw (the same at every point of that step)."""

    def __init__(self, h, s, noise):
        self.h, self.s, self.noise, self.xp, self.calls = h, s, noise, np, 0

    def __call__(self, params):
        self.calls += 1
        return tuple(h * (x - s) + n for h, s, n, x in zip(self.h, self.s, self.noise, params))


class FixedOracle:
    """The same gradient G at every point and step."""

    def __init__(self, g):
        self.g, self.xp, self.calls = g, np, 0

    def __call__(self, params):
        self.calls += 1
        return self.g


def fake_data(shapes, steps, seed=0):
    """(X_0, H, S, [N_t]) of ``FakeOracle`` for len(RUN_SCALES) runs; run r's H and N carry the
    scale RUN_SCALES[r]."""
    rng = np.random.default_rng(seed)
    b = len(RUN_SCALES)
    gs = np.array(RUN_SCALES)[:, None, None]
    x0 = tuple(rng.standard_normal((b, m, n)) for m, n in shapes)
    h = tuple(gs * rng.uniform(0.5, 2.0, (b, m, n)) for m, n in shapes)
    s = tuple(rng.standard_normal((b, m, n)) for m, n in shapes)
    noise = [tuple(gs * 0.3 * rng.standard_normal((b, m, n)) for m, n in shapes) for _ in range(steps)]
    return x0, h, s, noise


def assert_matches_per_run_reference(name, hp, data, reference, ref_state=None, backend=None):
    """Step ``name`` batched over the runs of ``data`` (``fake_data``'s tuple; a list in ``hp`` is
    one value per run) and check every step, run and layer against ``reference(h, xs, st, grad, t)``,
    a per-run loop returning the run's new layers. ``grad(points, lag=0)`` gives run r's gradients
    at ``points`` under step t's draw (lag 0) or step t - lag's; ``ref_state(state, r)`` is the
    reference's initial state for run r, given the batched initial state (default: empty)."""
    x0, h, s, noise = data
    steps, runs = len(noise), x0[0].shape[0]
    backend = backend or get_backend("numpy", "float64")
    opt = runners.make(name, **{k: np.asarray(v) if isinstance(v, list) else v for k, v in hp.items()})
    bound = opt.bind(runs, backend)
    params, state = x0, opt.init(x0, bound, np)
    state0, got = dict(state), []  # shallow: the initial arrays, whatever step rebinds
    for t in range(1, steps + 1):
        params, state = opt.step(params, state, FakeOracle(h, s, noise[t - 1]), t, bound)
        got.append(params)
    for r in range(runs):
        hr = {k: (v[r] if isinstance(v, list) else v) for k, v in hp.items()}
        xs = [x[r] for x in x0]
        st = ref_state(state0, r) if ref_state else {}
        for t in range(1, steps + 1):

            def grad(points, lag=0, t=t):
                return [h[l][r] * (p - s[l][r]) + noise[t - 1 - lag][l][r] for l, p in enumerate(points)]

            xs = reference(hr, xs, st, grad, t)
            for l in range(len(x0)):
                np.testing.assert_allclose(
                    got[t - 1][l][r], xs[l], rtol=1e-9, atol=1e-11, err_msg=f"{name} run {r} step {t} layer {l}"
                )


def assert_direction_survives_scale(name, hp, scale):
    """float32: the first step under gradient scale ``scale`` equals the step at unit scale, with no
    float warning (overflow, invalid, divide) on the way."""
    bk = get_backend("numpy", "float32")
    g = (np.random.default_rng(4).standard_normal((2, 6, 4)).astype(np.float32),)
    x0 = (np.zeros((2, 6, 4), np.float32),)
    opt = runners.make(name, **hp)
    bound = opt.bind(2, bk)
    ref = opt.step(x0, opt.init(x0, bound, np), FixedOracle(g), 1, bound)[0][0]
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = opt.step(x0, opt.init(x0, bound, np), FixedOracle((g[0] * np.float32(scale),)), 1, bound)[0][0]
    assert np.abs(ref).max() > 0
    np.testing.assert_allclose(got, ref, rtol=2e-4, atol=2e-5 * np.abs(ref).max())
