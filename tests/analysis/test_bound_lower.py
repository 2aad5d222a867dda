"""bound_lower (analysis/rules/bounds.py) on constructed sweeps: a decay slower than or at the
lower bound passes, a faster one fails, a wide CI is not evidence, too few seeds not testable."""

import numpy as np
import pandas as pd

from analysis.rules import RULES

STEPS = np.unique(np.round(np.logspace(0, 4, 33)).astype(int))
LRS = list(10.0 ** np.arange(-3, 0.01, 0.25))
FAST = dict(n_resamples=199, quantity="gap")


class Tables:
    def __init__(self, **tables):
        self.tables = tables

    def table(self, name):
        return self.tables[name]


def sweep(p, seeds=range(5), noise=0.05, lr_star=10**-1.5):
    """gap = T^p (1 + log10(lr / lr*)^2) exp(noise z): the tuned exponent is p."""
    runs, curves = [], []
    for rid, (lr, s) in enumerate((lr, s) for lr in LRS for s in seeds):
        z = np.random.default_rng(s).standard_normal(len(STEPS))
        q = STEPS.astype(float) ** p * (1 + np.log10(lr / lr_star) ** 2) * np.exp(noise * z)
        runs.append(
            {
                "run_id": rid,
                "cell_id": 0,
                "p_x": 0.0,
                "optimizer": "gd",
                "h_lr": lr,
                "seed": s,
                "status": "ok",
                "diverged_step": -1,
            }
        )
        curves.append(pd.DataFrame({"run_id": rid, "step": STEPS, "gap": q}))
    return Tables(runs=pd.DataFrame(runs), curves=pd.concat(curves, ignore_index=True))


def test_slower_or_equal_decay_meets_the_lower_bound():
    st, _, nums = RULES["bound_lower"](sweep(-0.2), optimizer="gd", bound=-0.5, **FAST)
    assert st == "reproduced" and "slower than the lower bound" in nums["per_group"]
    st, _, nums = RULES["bound_lower"](sweep(-0.5), optimizer="gd", bound=-0.5, **FAST)
    assert st == "reproduced" and "consistent with the lower bound" in nums["per_group"]
    assert nums["exponent_ci_low"] <= -0.5 <= nums["exponent_ci_high"]


def test_faster_decay_breaks_the_lower_bound():
    st, _, nums = RULES["bound_lower"](sweep(-1.0), optimizer="gd", bound=-0.5, **FAST)
    assert st == "not reproduced" and "faster than the lower bound" in nums["per_group"]
    assert RULES["bound_rate"](sweep(-1.0), optimizer="gd", bound=-0.5, **FAST)[0] == "reproduced"  # the other side


def test_wide_ci_and_few_seeds_are_not_testable():
    assert (
        RULES["bound_lower"](sweep(-0.5, noise=3.0), optimizer="gd", bound=-0.5, max_ci_width=0.05, **FAST)[0]
        == "not testable"
    )
    assert RULES["bound_lower"](sweep(-0.5, seeds=range(2)), optimizer="gd", bound=-0.5, **FAST)[0] == "not testable"
