"""The bound rules (analysis/bounds.py, analysis/rules/bounds.py) on constructed sweeps with known
answers, including sweeps on which each rule must fail."""

import numpy as np
import pandas as pd
import pytest

from analysis import bounds as B

from analysis.bounds_figures import horizon_scan_figure
from analysis.rules import RULES

STEPS = np.unique(np.round(np.logspace(0, 4, 33)).astype(int))  # 8 per decade: 1, 1.33, ... 10^4
LRS = list(10.0 ** np.arange(-3, 0.01, 0.25))
FAST = dict(n_resamples=199)


class Tables:
    def __init__(self, **tables):
        self.tables = tables

    def table(self, name):
        if name not in self.tables:
            raise FileNotFoundError(name)
        return self.tables[name]


def sweep(fn, lrs=LRS, seeds=range(5), cells=(0,), opt="muon", noise=0.05, steps=STEPS, diverged=None):
    """runs / curves of a sweep whose quantity avg_grad_fro is fn(T, lr) * exp(noise * z), z a
    standard normal per (cell, seed, step), shared by every lr (common random numbers).
    ``diverged(lr, seed)`` -> the step the run diverged at (or -1)."""
    runs, curves, rid = [], [], 0
    for c in cells:
        for lr in lrs:
            for s in seeds:
                z = np.random.default_rng(1000 * c + s).standard_normal(len(steps))
                q = fn(steps.astype(float), lr) * np.exp(noise * z)
                ds = diverged(lr, s) if diverged else -1
                runs.append(
                    {
                        "run_id": rid,
                        "cell_id": c,
                        "p_x": float(c),
                        "optimizer": opt,
                        "h_lr": lr,
                        "seed": s,
                        "status": "ok" if ds < 0 else "diverged",
                        "diverged_step": ds,
                    }
                )
                curves.append(pd.DataFrame({"run_id": rid, "step": steps, "avg_grad_fro": q}))
                rid += 1
    return pd.DataFrame(runs), pd.concat(curves, ignore_index=True)


def bowl(p, lr_star=10**-1.5):
    """Q = T^p (1 + log10(lr / lr*)^2): an interior optimum that does not move with T."""
    return lambda T, lr: T**p * (1 + np.log10(lr / lr_star) ** 2)


def sgd_tradeoff(T, lr):
    """Constant-lr SGD's bias + floor, 1/(lr T) + lr: the best lr is T^-1/2 and the best value 2 T^-1/2."""
    return 1.0 / (lr * T) + lr


# --- the horizon grid ---------------------------------------------------------------------------
def test_geometric_horizons_four_per_decade():
    got = B.geometric_horizons(np.arange(0, 10001), t_min=100, per_decade=4)
    assert list(got) == [round(10 ** (2 + j / 4)) for j in range(9)]
    default = B.geometric_horizons(STEPS, per_decade=2)  # last two decades of the logged steps
    assert default[0] == 100 and default[-1] == 10000 and len(default) == 5


# --- exponents on constructed curves ------------------------------------------------------------
def test_exponent_of_a_power_law_and_its_verdicts():
    runs, curves = sweep(bowl(-0.5))
    tuned, fits = B.exponents(B.horizon_scan(runs, curves, "avg_grad_fro"), **FAST)
    f = fits.iloc[0]
    assert f["slope_ci_low"] <= -0.5 <= f["slope_ci_high"] and f["slope_ci_high"] - f["slope_ci_low"] < 0.1
    assert np.allclose(tuned["h_lr"], 10**-1.5) and not tuned["lr_at_edge"].any()
    d = Tables(runs=runs, curves=curves)
    status, text, nums = RULES["bound_rate"](d, optimizer="muon", bound=-0.25, **FAST)
    assert status == "reproduced" and "faster than the bound" in nums["per_group"]  # faster is consistent
    assert RULES["bound_tight"](d, optimizer="muon", bound=-0.25, **FAST)[0] == "not reproduced"
    assert RULES["bound_tight"](d, optimizer="muon", bound=-0.5, **FAST)[0] == "reproduced"
    assert nums["exponent_ci_low"] <= -0.5 <= nums["exponent_ci_high"]


def test_slower_than_the_bound_fails():
    runs, curves = sweep(bowl(-0.1))
    d = Tables(runs=runs, curves=curves)
    status, _, nums = RULES["bound_rate"](d, optimizer="muon", bound=-0.25, **FAST)
    assert status == "not reproduced" and "slower than the bound" in nums["per_group"]
    assert nums["exponent_ci_low"] <= -0.1 <= nums["exponent_ci_high"]
    assert RULES["bound_rate"](d, optimizer="muon", bound=-0.1, **FAST)[0] == "reproduced"


def test_per_horizon_tuning_differs_from_a_fixed_lr():
    """Constant-lr SGD: the lr tuned at each T moves like T^-1/2, so the tuned curve falls like
    T^-1/2 (closed form: min_lr 1/(lr T) + lr = 2 T^-1/2), while the fixed lr tuned at T_max gives
    another slope (computed from the noise-free formula)."""
    lrs = list(10.0 ** np.arange(-3, 0.01, 0.125))
    runs, curves = sweep(sgd_tradeoff, lrs=lrs)
    scan = B.horizon_scan(runs, curves, "avg_grad_fro", t_min=100)
    tuned, fits = B.exponents(scan, **FAST)
    for _, r in tuned.iterrows():  # the tuned lr is the grid's argmin of the noise-free formula
        assert np.isclose(r["h_lr"], lrs[int(np.argmin([sgd_tradeoff(r["T"], lr) for lr in lrs]))])
    assert tuned["h_lr"].nunique() >= 4
    f = fits.iloc[0]
    assert f["slope_ci_low"] - 0.03 <= -0.5 <= f["slope_ci_high"] + 0.03
    by_lr = B.lr_neighbour_exponents(scan, **FAST).set_index("which")
    lr_t = by_lr.loc["tuned lr", "h_lr"]
    T = tuned["T"].to_numpy(float)
    fixed_truth = np.polyfit(np.log10(T), np.log10(sgd_tradeoff(T, lr_t)), 1)[0]
    assert abs(by_lr.loc["tuned lr", "slope"] - fixed_truth) < 0.03
    assert abs(fixed_truth - f["slope"]) > 0.2
    assert by_lr.loc["lower lr", "h_lr"] < lr_t < by_lr.loc["upper lr", "h_lr"]


def test_edge_optimum_flagged_and_excluded():
    runs, curves = sweep(lambda T, lr: T**-0.5 / lr)  # always best at the largest lr
    d = Tables(runs=runs, curves=curves)
    status, text, nums = RULES["bound_rate"](d, optimizer="muon", bound=-0.25, **FAST)
    assert status == "not testable" and "grid edge" in nums["per_group"]
    status, _, nums = RULES["bound_rate"](d, optimizer="muon", bound=-0.25, exclude_edge=False, **FAST)
    assert status == "reproduced" and abs(nums["exponent"] + 0.5) < 0.03
    # the optimum leaves the grid only at short horizons: those are flagged and left out of the fit
    runs, curves = sweep(lambda T, lr: sgd_tradeoff(T, lr), lrs=list(10.0 ** np.arange(-2, -0.99, 0.25)))
    tuned, fits = B.exponents(B.horizon_scan(runs, curves, "avg_grad_fro", t_min=10), min_horizons=3, **FAST)
    assert (tuned["lr_edge"] == "high").any() and (tuned["lr_edge"] == "").any()
    assert (tuned["in_fit"] == (tuned["lr_edge"] == "")).all()
    assert fits.iloc[0]["n_edge"] == (tuned["lr_edge"] != "").sum()


def test_diverged_runs_count_as_infinite_from_their_divergence():
    best = 10**-1.5
    runs, curves = sweep(bowl(-0.5), diverged=lambda lr, s: 1000 if np.isclose(lr, best) else -1)
    tuned, _ = B.exponents(B.horizon_scan(runs, curves, "avg_grad_fro"), **FAST)
    before, after = tuned[tuned["T"] < 1000], tuned[tuned["T"] >= 1000]
    assert np.allclose(before["h_lr"], best)
    assert not np.isclose(after["h_lr"], best).any() and np.isfinite(after["median"]).all()
    runs = runs.drop(columns="diverged_step")  # no step on record: the run counts at no horizon
    tuned, _ = B.exponents(B.horizon_scan(runs, curves, "avg_grad_fro"), n_resamples=19)
    assert not np.isclose(tuned["h_lr"], best).any()


def test_window_robustness_sees_a_break():
    """Q = T^-1/2 up to T = 1000, then T^-0.1 (continuous): the sub-windows find each slope."""

    def broken(T, lr):
        return np.where(T <= 1000, T**-0.5, 1000**-0.4 * T**-0.1) * (1 + np.log10(lr / 10**-1.5) ** 2)

    runs, curves = sweep(broken, noise=0.01)
    scan = B.horizon_scan(runs, curves, "avg_grad_fro")
    w = B.window_exponents(scan, **FAST).set_index("window")
    assert abs(w.loc["lower half", "slope"] + 0.5) < 0.02 and abs(w.loc["upper half", "slope"] + 0.1) < 0.02
    assert "last decade" not in w.index  # on two decades it is the upper half
    _, fits = B.exponents(scan, window=(1000, 10000), **FAST)
    assert fits.iloc[0]["slope_ci_low"] <= -0.1 <= fits.iloc[0]["slope_ci_high"]


def test_horizon_column_mode():
    """Horizon as an axis (e.g. a cosine schedule's h_horizon): each run's final value."""
    rows, rid = [], 0
    for T in (100, 300, 1000, 3000, 10000):
        for lr in LRS:
            for s in range(4):
                v = bowl(-1 / 3)(float(T), lr) * np.exp(0.03 * np.random.default_rng(s * 7 + T).standard_normal())
                rows.append(
                    {
                        "run_id": rid,
                        "cell_id": 0,
                        "optimizer": "mvr2",
                        "h_lr": lr,
                        "h_horizon": T,
                        "seed": s,
                        "status": "ok",
                        "final_avg_grad_fro": v,
                    }
                )
                rid += 1
    d = Tables(runs=pd.DataFrame(rows))
    status, _, nums = RULES["bound_rate"](d, optimizer="mvr2", bound=-1 / 3, horizon="h_horizon", **FAST)
    assert status == "reproduced" and nums["n_horizons"] == 5
    assert nums["exponent_ci_low"] <= -1 / 3 <= nums["exponent_ci_high"]
    with pytest.raises(ValueError, match="quantity: got 'nope'"):
        RULES["bound_rate"](d, optimizer="mvr2", bound=-1 / 3, horizon="h_horizon", quantity="nope", **FAST)


def test_horizon_dependent_schedule_refused_in_logged_mode():
    runs, curves = sweep(bowl(-0.5), lrs=LRS[:3], seeds=range(2))
    with pytest.raises(ValueError, match="horizon: got 'logged'"):
        B.horizon_scan(runs.assign(h_lr_schedule="cosine"), curves)


def test_not_testable_with_too_few_seeds_or_horizons():
    runs, curves = sweep(bowl(-0.5), seeds=range(2))
    d = Tables(runs=runs, curves=curves)
    st, _, nums = RULES["bound_rate"](d, optimizer="muon", bound=-0.25, **FAST)
    assert st == "not testable" and "2 seeds < 3" in nums["per_group"]
    runs, curves = sweep(bowl(-0.5))
    d = Tables(runs=runs, curves=curves)
    assert RULES["bound_rate"](d, optimizer="muon", bound=-0.25, t_min=3000, **FAST)[0] == "not testable"
    assert RULES["bound_rate"](d, optimizer="other", bound=-0.25, **FAST)[0] == "not testable"


def test_wide_ci_is_not_evidence_of_consistency():
    runs, curves = sweep(bowl(-0.25), noise=1.0, seeds=range(3))
    d = Tables(runs=runs, curves=curves)
    st, _, nums = RULES["bound_rate"](d, optimizer="muon", bound=-0.25, max_ci_width=0.2, **FAST)
    width = nums["exponent_ci_high"] - nums["exponent_ci_low"]
    assert width > 0.2 and st == "not testable" and "wide" in nums["per_group"]
    assert RULES["bound_rate"](d, optimizer="muon", bound=-0.25, max_ci_width=width + 0.01, **FAST)[0] == "reproduced"


def test_several_cells_combine():
    runs, curves = sweep(lambda T, lr: bowl(-0.5)(T, lr), cells=(0, 1))
    runs2, curves2 = sweep(bowl(-0.05), cells=(1,))
    runs = pd.concat([runs[runs.cell_id == 0], runs2.assign(run_id=runs2.run_id + 10**6)])
    curves = pd.concat([curves[curves.run_id.isin(runs.run_id)], curves2.assign(run_id=curves2.run_id + 10**6)])
    d = Tables(runs=runs, curves=curves)
    assert RULES["bound_rate"](d, optimizer="muon", bound=-0.25, **FAST)[0] == "partly"
    assert RULES["bound_rate"](d, optimizer="muon", bound=-0.25, where={"x": 0.0}, **FAST)[0] == "reproduced"


@pytest.mark.parametrize(
    "ci,bound,one_sided,tight",
    [
        ((-0.52, -0.48), -0.25, B.FASTER, B.NOT_TIGHT),
        ((-0.27, -0.22), -0.25, B.CONSISTENT, B.TIGHT),
        ((-0.15, -0.05), -0.25, B.SLOWER, B.NOT_TIGHT),
        ((-0.40, -0.10), -0.25, B.CONSISTENT, B.UNDECIDED),
        ((-0.21, -0.10), -0.25, B.CONSISTENT, B.UNDECIDED),
        ((-0.19, -0.10), -0.25, B.SLOWER, B.NOT_TIGHT),
        ((np.nan, 0.1), -0.25, B.UNDEFINED, B.UNDEFINED),
    ],
)
def test_verdict_tables(ci, bound, one_sided, tight):
    assert B.bound_verdict(*ci, bound, tol=0.05) == one_sided
    assert B.tight_verdict(*ci, bound, tol=0.05) == tight


def test_bootstrap_is_reproducible_and_changes_with_its_seed():
    runs, curves = sweep(bowl(-0.5))
    scan = B.horizon_scan(runs, curves)
    a = B.exponents(scan, n_resamples=99, seed=1)
    b = B.exponents(scan, n_resamples=99, seed=1)
    c = B.exponents(scan, n_resamples=99, seed=2)
    assert a[0].equals(b[0]) and a[1].equals(b[1])
    assert not np.allclose(a[0][["ci_low", "ci_high"]], c[0][["ci_low", "ci_high"]])


def test_horizon_scan_figure(tmp_path):
    runs, curves = sweep(sgd_tradeoff, lrs=list(10.0 ** np.arange(-2, -0.99, 0.25)))
    tuned, fits = B.exponents(B.horizon_scan(runs, curves, t_min=10), min_horizons=3, n_resamples=49)
    p = horizon_scan_figure(tuned, fits, tmp_path / "scan.png", bound=-0.25)
    assert p.exists() and p.stat().st_size > 1000
