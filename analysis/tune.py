"""Fair per-cell tuning: every optimizer's hyperparameter grid is scored by the same criterion,
the median over seeds picks the best point per (cell, optimizer), and its seeds give a bootstrap
confidence interval. A best learning rate at the edge of its grid is flagged, not hidden."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

CRITERIA = {
    "final_gap": "final_gap",
    "best_gap": "best_gap",
    "steps_to_target": "steps_to_target",
}
BIG = 1e300  # stands in for +inf inside the bootstrap (diverged runs and missed targets)


def criterion(runs: pd.DataFrame, name: str) -> pd.Series:
    """Per-run score, lower is better; diverged runs score +inf."""
    if name not in CRITERIA:
        raise ValueError(f"criterion: unknown {name!r}; allowed: {', '.join(CRITERIA)}")
    v = runs[CRITERIA[name]].astype(float).where(runs["status"] == "ok", np.inf)
    return v.fillna(np.inf)


def hparam_columns(runs: pd.DataFrame) -> list[str]:
    return [c for c in runs.columns if c.startswith("h_")]


def tuned_columns(runs: pd.DataFrame) -> list[str]:
    """Hyperparameters that take more than one value for some optimizer (the tuning grid)."""
    cols = []
    for c in hparam_columns(runs):
        if (runs.groupby("optimizer")[c].nunique(dropna=True) > 1).any():
            cols.append(c)
    return cols


def bootstrap_median_ci(samples: np.ndarray, level: float = 0.95, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI of the median along the last axis (rows: independent groups)."""
    x = np.where(np.isfinite(samples), samples, BIG)
    if x.shape[-1] < 2:
        return samples[..., 0].copy(), samples[..., 0].copy()
    res = stats.bootstrap((x,), np.median, axis=-1, vectorized=True, n_resamples=999, method="percentile",
                          confidence_level=level, rng=np.random.default_rng(seed))
    lo, hi = res.confidence_interval
    return np.where(lo >= BIG, np.inf, lo), np.where(hi >= BIG, np.inf, hi)


def sensitivity(runs: pd.DataFrame, crit: str) -> pd.DataFrame:
    """Median criterion over seeds for every (cell, optimizer, hyperparameter point): the
    learning-rate sensitivity curves, kept as part of the answer."""
    df = runs.assign(score=criterion(runs, crit))
    keys = ["cell_id", "optimizer", *hparam_columns(runs)]
    g = df.groupby(keys, dropna=False, sort=True)
    out = g["score"].agg(median="median", n_seeds="size").reset_index()
    out["n_diverged"] = g["status"].agg(lambda s: int((s != "ok").sum())).to_numpy()
    return out


def tune(runs: pd.DataFrame, crit: str = "final_gap", level: float = 0.95) -> pd.DataFrame:
    """One row per (cell, optimizer): the best hyperparameter point by median criterion over
    seeds, its median and bootstrap CI, and the ``lr_at_edge`` flag."""
    sens = sensitivity(runs, crit)
    hcols = hparam_columns(runs)
    best = sens.sort_values(["cell_id", "optimizer", "median", "h_lr"], kind="stable").groupby(["cell_id", "optimizer"]).head(1)
    lr_grid = runs.groupby(["cell_id", "optimizer"])["h_lr"].agg(["min", "max", "nunique"])
    best = best.join(lr_grid, on=["cell_id", "optimizer"])
    best["lr_at_edge"] = (best["nunique"] > 1) & ((best["h_lr"] == best["min"]) | (best["h_lr"] == best["max"]))
    best = best.drop(columns=["min", "max", "nunique"]).reset_index(drop=True)

    # the seeds of each chosen point -> bootstrap CI of the median
    scored = runs.assign(score=criterion(runs, crit))
    chosen = scored.merge(best[["cell_id", "optimizer", *hcols]], on=["cell_id", "optimizer", *hcols])
    per = chosen.sort_values("seed").groupby(["cell_id", "optimizer"])["score"].apply(np.asarray)
    lo = np.empty(len(per))
    hi = np.empty(len(per))
    by_n: dict[int, list[int]] = {}
    for i, arr in enumerate(per):
        by_n.setdefault(len(arr), []).append(i)
    for n, idx in by_n.items():
        l, h = bootstrap_median_ci(np.stack([per.iloc[i] for i in idx]), level)
        lo[idx], hi[idx] = l, h
    ci = pd.DataFrame({"ci_low": lo, "ci_high": hi}, index=per.index).reset_index()
    best = best.merge(ci, on=["cell_id", "optimizer"])
    best.insert(2, "criterion", crit)
    return best
