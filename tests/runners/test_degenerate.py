"""Definitions guarded: settings that make one optimizer exactly another are refused (a one-line
ParamError, exit 2 in the CLI) unless ``allow_degenerate``; each refused setting really does
collapse (checked here on a noisy problem, so that no exact-oracle identity hides a difference),
and the non-degenerate neighbours really differ."""

from __future__ import annotations

import numpy as np
import pytest

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from runner_fixtures import noisy_lsq  # noqa: E402

import problems
import runners
from problems import ParamError

STEPS = 20
PL_MVR1 = dict(lr_schedule="power", lr_p=0.3333, beta=0.0, beta_q=0.6667)  # the PL preset's schedule


def _final(name, **hp):
    return runners.run(noisy_lsq(), runners.make(name, **hp), steps=STEPS, seed=[0, 1], log_points=3).params


def _momentum_free_muon(**sched):
    return _final("muon", lr=0.02, beta=0.0, nesterov=False, orth="svd", **sched)


def test_mvr1_with_gamma_above_zero_is_not_momentum_free_muon():
    """gamma > 0 with a momentum (constant, or the PL preset's beta_q schedule from beta_1 > 0)."""
    free = _momentum_free_muon()[0]
    for gamma in (0.025, 0.5, 1.0):
        for hp in (dict(beta=0.9), dict(lr_schedule="power", lr_p=0.3333, beta=0.1, beta_q=0.6667)):
            sched = {k: v for k, v in hp.items() if k in ("lr_schedule", "lr_p")}
            a = _final("muon_mvr1", lr=0.02, gamma=gamma, orth="svd", **hp)[0]
            assert not np.allclose(a, _momentum_free_muon(**sched)[0] if sched else free, rtol=1e-3)


def test_mvr1_at_gamma_one_and_beta1_zero_is_momentum_free_muon():
    """PAPERS.md: with gamma = 1 and beta_1 = 0, M_t - G_t = beta_t (M_{t-1} - G_{t-1}) and M_1 = G_1,
    so M_t = G_t. Exact in exact arithmetic; in floating point M_t = beta M + (1 - beta) C rounds,
    so under the beta_q schedule the iterates agree to rounding (float64), and with beta = 0
    throughout (C = G, M = 0 M + 1 C) bit for bit."""
    sched = dict(lr_schedule="power", lr_p=0.3333)
    a = _final("muon_mvr1", lr=0.02, gamma=1.0, orth="svd", allow_degenerate=True, **PL_MVR1)[0]
    np.testing.assert_allclose(a, _momentum_free_muon(**sched)[0], rtol=1e-9, atol=1e-12)
    b = _final("muon_mvr1", lr=0.02, gamma=1.0, beta=0.0, orth="svd", allow_degenerate=True)[0]
    np.testing.assert_array_equal(b, _momentum_free_muon()[0])


@pytest.mark.parametrize(
    "name,hp,field",
    [
        ("muon_mvr1", dict(gamma=1.0, **PL_MVR1), "gamma"),
        ("muon_mvr1", dict(gamma=1.0, beta=0.0), "beta"),  # beta = 0 throughout: degenerate whatever gamma
        ("muon_mvr1", dict(gamma=0.0), "gamma"),
        ("muon_mvr2", dict(gamma=0.0), "gamma"),
        ("muon_mvr2", dict(beta=0.0), "beta"),
        ("storm", dict(beta=0.0), "beta"),
        ("gluon_mvr1", dict(beta=0.0), "beta"),
        ("gluon_mvr2", dict(q=1.0), "q"),
        ("gluon_mvr2", dict(beta=0.0), "beta"),
    ],
)
def test_degenerate_settings_are_refused_unless_allowed(name, hp, field):
    with pytest.raises(ParamError, match=rf"^{field}: got .*; allowed: .*allow_degenerate = true") as e:
        runners.make(name, **hp)
    assert "\n" not in str(e.value)
    runners.make(name, allow_degenerate=True, **hp)


def test_one_degenerate_run_in_a_per_run_grid_is_refused():
    with pytest.raises(ParamError, match="^gamma: got 1.0"):
        runners.make("muon_mvr1", gamma=np.array([0.5, 1.0]), beta=np.array([0.0, 0.0]), beta_q=0.5)
    runners.make("muon_mvr1", gamma=np.array([0.5, 1.0]), beta=np.array([0.0, 0.9]), beta_q=0.5)


def test_neighbours_of_the_refused_settings_are_allowed():
    runners.make("muon_mvr1", gamma=1.0, beta=0.9)  # gamma = 1 with momentum at t = 1
    runners.make("muon_mvr2", gamma=1.0, **PL_MVR1)  # STORM on M: the theory's MVR2
    runners.make("storm", beta=0.0, beta_q=0.5)
    runners.make("gluon_mvr2", q=0.9, beta=0.0, beta_q=0.5)


@pytest.mark.parametrize(
    "name,hp,other,other_hp",
    [
        ("storm", dict(lr=0.3, beta=0.0), "gd", dict(lr=0.3)),
        ("gluon_mvr2", dict(lr=0.05, q=1.0, beta=0.9, orth="svd"), "gluon", dict(lr=0.05, beta=0.9, orth="svd")),
        ("gluon_mvr2", dict(lr=0.05, q=0.25, beta=0.0, orth="svd"), "gluon_mvr1", dict(lr=0.05, beta=0.75, orth="svd")),
        ("gluon_mvr1", dict(lr=0.05, beta=0.0, orth="svd"), "gluon", dict(lr=0.05, beta=0.0, orth="svd")),
        (
            "muon_mvr2",
            dict(lr=0.02, beta=0.0, gamma=0.5, orth="svd"),
            "muon",
            dict(lr=0.02, beta=0.0, nesterov=False, orth="svd"),
        ),
    ],
)
def test_each_refused_setting_is_exactly_the_other_method(name, hp, other, other_hp):
    a = _final(name, allow_degenerate=True, **hp)[0]
    np.testing.assert_array_equal(a, _final(other, **other_hp)[0])


def test_gluon_mvr1_radius_step_is_muon_mvr2_at_gamma_one_to_rounding():
    """Not refused: two papers' names for one method (STORM momentum, spectral LMO). MVR2 at gamma = 1:
    M = beta M + (1 - beta) G + beta (G - G_last) = G + beta (M - G_last), the STORM recursion of
    gluon_mvr1. The starts differ (MVR2: M_1 = (1 - beta_1) G_1; gluon_mvr1: M_1 = G_1), so they
    coincide where beta_1 = 0, as in the nonconvex preset's schedule; equal up to rounding there
    (square layers: Muon's shape scale is 1), and different with beta_1 > 0."""
    P = problems.make(
        "power_law_lsq",
        runs=2,
        seed=[0, 1],
        m=5,
        n=5,
        batch_size=3,
        noise="minibatch",
        label_noise=0.5,
        dtype="float64",
    )

    def pair(**hp):
        a = runners.run(P, runners.make("gluon_mvr1", lr=0.02, orth="svd", **hp), steps=STEPS, seed=[0, 1]).params[0]
        b = runners.run(
            P, runners.make("muon_mvr2", lr=0.02, gamma=1.0, orth="svd", **hp), steps=STEPS, seed=[0, 1]
        ).params[0]
        return a, b

    np.testing.assert_allclose(*pair(**PL_MVR1), rtol=1e-8, atol=1e-11)
    assert not np.allclose(*pair(beta=0.9), rtol=1e-3)


def test_a_degenerate_config_is_a_one_line_cli_error(tmp_path, capsys):
    from lab.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'steps = 3\nseeds = [0]\n[problem]\nkind = "quadratic"\nfixed = { m = 3, n = 3 }\n'
        '[[optimizers]]\nname = "muon_mvr1"\nlr = 0.01\nhparams = { gamma = 1.0, beta = 0.0, beta_q = 0.5 }\n'
    )
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("muonlab: error: optimizers.0.hparams.gamma: got 1.0; allowed: ") and "\n" not in err
    assert not (tmp_path / "out").exists()
