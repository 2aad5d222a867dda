"""Every registered optimizer gives the same iterates on every non-NumPy backend as on NumPy
(float64, a few steps from the same seeds, exact and stochastic oracles): the NumPy path is the
reference the rest of the suite checks against closed forms and per-run loops, so agreement to
rounding carries those checks over to torch (and CuPy where a GPU is visible)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import problems
import runners
from problems.backend import get_backend

NAMES = sorted(runners.REGISTRY)
# two layers (the layer-wise methods take one norm per layer): a deep linear network, with the
# minibatch oracle and with Gaussian gradient noise. Every layer's gradient statistics have full
# rank: SOAP's eigenbasis of a singular G G^T is not unique on its null space, and two LAPACKs
# pick different ones (an m=4, hidden=2 layer gave torch and NumPy SOAP iterates 2x apart).
CASES = (
    dict(m=3, n=3, hidden=3, noise="minibatch", batch_size=4, sigma=0.4),
    dict(m=3, n=4, hidden=3, noise="gaussian", sigma=0.3),
)
SEEDS = np.array([3, 4, 5])


def _run(name, backend, case):
    P = problems.make("linear_net", runs=len(SEEDS), seed=SEEDS, backend=backend, dtype="float64", **case)
    return runners.run(P, runners.make(name, **runners.get(name).TEST_HPARAMS), steps=8, seed=SEEDS, log_points=4)


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("name", NAMES)
def test_optimizer_matches_numpy_on_every_backend(name, case, other_backend):
    backend = other_backend
    ref, got = _run(name, "numpy", CASES[case]), _run(name, backend, CASES[case])
    assert np.array_equal(ref.status, got.status)
    for x_ref, x_got in zip(ref.params, got.params):
        assert isinstance(x_got, np.ndarray)
        np.testing.assert_allclose(x_got, x_ref, rtol=1e-7, atol=1e-9 * np.abs(x_ref).max())
    for k in ("gap", "grad_fro", "grad_nuc", "grad_op", "dist_fro"):
        np.testing.assert_allclose(got.curves[k], ref.curves[k], rtol=1e-6, atol=1e-12, err_msg=k)
    assert got.oracle_calls_per_step == ref.oracle_calls_per_step


def test_a_diverging_run_on_the_backend_is_flagged_and_leaves_its_neighbours_alone(other_backend):
    backend = other_backend
    # lr 1e6 diverges, lr 1e-2 does not; the same split on every backend, the others unchanged
    lr = np.array([1e-2, 1e6, 1e-2])
    out = {}
    for bk in ("numpy", backend):
        P = problems.make("linear_net", runs=3, seed=SEEDS, backend=bk, dtype="float64", **CASES[0])
        out[bk] = runners.run(P, runners.make("gd", lr=lr), steps=30, seed=SEEDS, log_points=5)
    assert list(out[backend].status) == ["ok", "diverged", "ok"]
    ok = out[backend].status == "ok"
    np.testing.assert_allclose(out[backend].final["gap"][ok], out["numpy"].final["gap"][ok], rtol=1e-9)


def test_backend_info_names_the_library_and_its_switches(backend):
    info = get_backend(backend, "float32").info
    assert info["backend"] == backend and info["dtype"] == "float32"
    if backend != "numpy":
        assert info[backend].split("+")[0].count(".") >= 1  # a version string
        assert info["device"] in ("cpu", "cuda")
        assert "tf32_matmul" in info


@pytest.mark.parametrize("precision", ["native", "fp32", "tf32", "bf16", "fp16"])
@pytest.mark.parametrize("orth", ["ns_keller", "polar_express", "svd"])
def test_orthogonalization_formats_match_numpy_on_every_backend(orth, precision, other_backend):
    # float32 products accumulate in a different order in each BLAS: native float32 iterates differ
    # by rounding amplified by the polynomial (seen: 7e-7 Keller, 6e-6 Polar Express, whose first
    # coefficients are ~20); in the emulated formats a stored value may round the other way
    # (seen: bitwise equal here), so within a few units of the format's roundoff
    backend = other_backend
    from runners.orth import orthogonalize
    from runners.precision import FORMATS

    u = np.random.default_rng(1).standard_normal((4, 6, 9)).astype(np.float32)
    bk = get_backend(backend, "float32")
    ref = orthogonalize(u, orth, precision=precision)
    got = bk.to_host(orthogonalize(bk.asarray(u), orth, precision=precision))
    assert got.dtype == np.float32
    if precision in ("native", "fp32") or orth == "svd":  # float32 arithmetic throughout
        assert np.abs(got - ref).max() <= 1e-4
    else:
        assert np.abs(got - ref).max() <= 4 * FORMATS.get(precision).eps


def test_lanes_split_only_batches_whose_lanes_hold_enough_entries(backend, monkeypatch):
    # two lanes asked for: NumPy always splits (lane_min_elements 0); torch keeps one lane where a
    # lane's largest layer holds fewer than 2^17 entries (32 runs x 3 x 4 here) and splits at
    # 32 runs x 64 x 64 = 2^17
    monkeypatch.setenv("MUONLAB_LANES", "2")
    bk = get_backend(backend, "float32")
    if not bk.on_host:
        pytest.skip("lanes run on the host only")
    small = dict(m=3, n=4, hidden=3)
    big = dict(m=64, n=64, hidden=64)
    want = {"numpy": {"small": 2, "big": 2}, "torch": {"small": 1, "big": 2}}[backend]
    for label, shape in (("small", small), ("big", big)):
        P = problems.make("linear_net", runs=64, seed=np.arange(64), backend=bk, **shape)
        res = runners.run(P, runners.make("gd", lr=1e-3), steps=1, seed=np.arange(64), log_points=1)
        assert res.extra["lanes"] == want[label], label


# --- a device stand-in: torch's "meta" device (shapes only, no values) ---------------------------
# No GPU is needed to find an array created on the CPU and mixed with device arrays: torch refuses
# to mix meta and CPU tensors ("Tensor on device cpu is not on the expected device meta"), as it
# refuses CPU and CUDA. Reading a value (a host decision such as finite_runs' any()) is refused
# too; those methods are exercised up to that read.
HOST_READ = "cannot be called on meta tensors"


def _meta_backend():
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as xp

    from problems.backend import Backend

    return Backend("torch", xp, torch.float32, module=torch, device="meta")


@pytest.mark.parametrize("name", NAMES)
def test_optimizer_steps_keep_every_array_on_the_device(name):
    from problems.backend import RunRNG
    from runners.loop import Oracle

    bk = _meta_backend()
    P = problems.make("linear_net", runs=3, seed=SEEDS, backend=bk, **CASES[1])
    opt = runners.make(name, **runners.get(name).TEST_HPARAMS)
    hp = opt.bind(3, bk)
    params = P.init(RunRNG(SEEDS, bk, stream=2))
    state = opt.init(params, hp, bk.xp)
    rng = RunRNG(SEEDS, bk, stream=1)
    try:
        for t in (1, 2):
            params, state = opt.step(params, state, Oracle(P, P.sample(rng)), t, hp)
    except RuntimeError as exc:
        assert HOST_READ in str(exc), exc  # a device mix is a failure; a host read is allowed
        return
    assert all(x.device.type == "meta" for x in params)


@pytest.mark.parametrize("kind", sorted(problems.REGISTRY))
def test_problem_oracles_keep_every_array_on_the_device(kind):
    """Every example, and the same with per-run parameters that differ between runs (a per-run
    minibatch size takes RunRNG.normal_ragged's path)."""
    from problems.backend import RunRNG

    sys.path.insert(0, str(Path(__file__).parents[1] / "problems"))
    from contract_checks import varied  # noqa: PLC0415

    bk = _meta_backend()
    for example in problems.get(kind).cls.EXAMPLES:
        for params in (example, varied(kind, example)):
            P = problems.make(kind, runs=3, seed=SEEDS, backend=bk, **params)
            x = P.init(RunRNG(SEEDS, bk, stream=2))
            out = [*P.grad(x), P.gap(x), P.loss(x), *P.optimum()[0]]
            xi = P.sample(RunRNG(SEEDS, bk, stream=1))
            out += list(P.stoch_grad(x, xi))
            out += list(P.extra_metrics(x).values())
            assert all(a.device.type == "meta" for a in out), params
