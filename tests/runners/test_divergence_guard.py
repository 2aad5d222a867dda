"""The divergence guard with SVD-based steps (issue 13, Li & Hong): a run whose iterates and
momentum overflow between logged steps (spectral SD and EF-Muon at lr = 1 here turn non-finite at
steps 22 and 138, no logged step) is frozen and flagged diverged, and its neighbours' results are
bit-identical to a batch without it, with the finiteness flags synced every step (NumPy) or kept
on the device (the GPU path), and with lanes. The SVD (polar factor, nuclear norm) of the
non-finite momentum would raise in LAPACK and end the whole batch; runners.orth.finite_runs
gives that run NaN instead (since 475f82e), and this test pins the behaviour at the loop level."""

import numpy as np
import pytest

import problems
import runners
from problems.backend import get_backend
from runners.loop import _run_batch

BK = get_backend("numpy", "float64")
KW = dict(m=6, n=6, hidden=6, noise="minibatch", label_noise=1.0, batch_size=2)
GOOD = np.array([1e-2, 3e-3, 3e-2])


def _batch(opt, hp, lrs, seeds, sync, accumulate=()):
    seeds = np.asarray(seeds)
    P = problems.make("linear_net", runs=len(lrs), seed=seeds, backend=BK, **KW)
    return _run_batch(
        P,
        runners.make(opt, lr=np.asarray(lrs), **hp),
        seeds.astype(np.int64),
        steps=200,
        log_points=5,
        divergence_factor=1e6,
        target=1e-2,
        accumulate=accumulate,
        sync_every_step=sync,
    )


@pytest.mark.parametrize(
    "opt,hp,bad_lr",
    [
        ("spectral_sd", dict(beta=0.9), 1.0),
        ("ef_muon", dict(beta=0.9), 1.0),
        ("muon", dict(beta=0.9, orth="svd"), 1e3),
    ],
)
@pytest.mark.parametrize("sync", [True, False])
def test_one_huge_lr_run_is_flagged_and_leaves_its_neighbours_bit_identical(opt, hp, bad_lr, sync):
    lrs = np.insert(GOOD, 1, bad_lr)  # the bad run sits between good ones
    with_bad = _batch(opt, hp, lrs, [0, 0, 1, 0], sync, ("grad_fro",))
    without = _batch(opt, hp, GOOD, [0, 1, 0], sync, ("grad_fro",))
    assert list(with_bad.status) == ["ok", "diverged", "ok", "ok"]
    assert with_bad.diverged_step[1] >= 1
    if opt != "muon":  # caught by the every-step finiteness check, between logged steps
        assert with_bad.diverged_step[1] not in set(with_bad.steps.tolist())
    keep = [0, 2, 3]
    for k in with_bad.curves:
        assert np.array_equal(with_bad.curves[k][:, keep], without.curves[k], equal_nan=True), k
    for a, b in zip(with_bad.params, without.params):
        assert np.array_equal(a[keep], b)
    assert all(np.isfinite(x[1]).all() for x in with_bad.params)  # frozen at finite parameters


def test_lanes_do_not_change_a_batch_with_a_diverging_run():
    lrs = np.insert(GOOD, 1, 1.0)
    seeds = np.arange(4) % 2
    res = [
        runners.run(
            problems.make("linear_net", runs=4, seed=seeds, backend=BK, **KW),
            runners.make("spectral_sd", lr=lrs, beta=0.9),
            steps=200,
            seed=seeds,
            log_points=5,
            lanes=lanes,
        )
        for lanes in (1, 2)
    ]
    assert list(res[1].status) == ["ok", "diverged", "ok", "ok"]
    assert np.array_equal(res[0].diverged_step, res[1].diverged_step)
    for k in res[0].curves:
        assert np.array_equal(res[0].curves[k], res[1].curves[k], equal_nan=True), k
