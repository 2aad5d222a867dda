"""The statistics every other analysis module uses, defined once: the bootstrap confidence
interval, the log-ratio of two criteria, the tie rule and the pairwise verdict.

Infinite scores (diverged runs, missed targets) take part as a large finite sentinel inside the
bootstrap, so that a median over seeds is +inf exactly when more than half the seeds are, and a
CI bound that lands on the sentinel is reported as +inf again.
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

TINY = 1e-30  # floor before taking logs (a gap can reach exactly zero)
BIG = 1e300  # stands in for +inf inside the bootstrap
_LOG_BIG = np.log10(BIG)
LEVEL = 0.95
N_RESAMPLES = 999


def _finite(x) -> np.ndarray:
    x = np.asarray(x, float)
    return np.where(np.isnan(x) | (x > BIG), BIG, np.maximum(x, -BIG))


def _back(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, float)
    return np.where(v >= BIG / 10, np.inf, v)


def _median(x, axis=-1):
    """``np.median`` along ``axis``; of three values (three seeds, the common case of the bootstrap's
    resamples) the middle one picked by elementwise min / max, the same value without the
    partition's cost (NaN propagates as in ``np.median``)."""
    x = np.asarray(x)
    if x.ndim and x.shape[axis] == 3:
        a, b, c = np.moveaxis(x, axis, 0)
        return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
    return np.median(x, axis=axis)


def _log10_ratio_of_medians(a, b, axis=-1):
    return np.log10(np.maximum(_median(a, axis=axis), TINY)) - np.log10(np.maximum(_median(b, axis=axis), TINY))


def bootstrap_ci(
    samples: "np.ndarray | Sequence[np.ndarray]",
    statistic: Callable = _median,
    level: float = LEVEL,
    paired: bool = False,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI (``scipy.stats.bootstrap``) of ``statistic`` along the last axis.

    ``samples`` is one array of shape (G, n) (G independent groups of n values) or a tuple of
    such arrays for a k-sample statistic (``paired=True`` resamples the same indices in each,
    e.g. seeds shared through common random numbers). ``statistic(*arrays, axis=-1)`` must be
    vectorized. Returns (low, high), each of shape (G,). With n = 1 the interval is the point.

    Note: with n values the percentile interval of the median lies within [min, max] of the
    sample, whose coverage of the true median is 1 - 2^(1-n) (75 % at n = 3): a nominal 95 %
    level is reached only from about n = 6 seeds (see docs/protocol.md).
    """
    arrays = (samples,) if isinstance(samples, np.ndarray) else tuple(samples)
    arrays = tuple(_finite(a) for a in arrays)
    if any(a.ndim != 2 for a in arrays):
        raise ValueError("bootstrap_ci: each sample array must have shape (groups, n)")
    if any(a.shape[-1] < 2 for a in arrays):
        point = _back(statistic(*arrays, axis=-1))
        return point.copy(), point.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate groups (all seeds equal) give a zero-width CI
        res = stats.bootstrap(
            arrays,
            statistic,
            axis=-1,
            vectorized=True,
            paired=paired,
            n_resamples=n_resamples,
            method="percentile",
            confidence_level=level,
            rng=np.random.default_rng(seed),
        )
    lo, hi = (np.asarray(v, float) for v in res.confidence_interval)
    return _back(lo), _back(hi)


def _ragged(groups: Sequence[np.ndarray]) -> dict[int, list[int]]:
    by_n: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        by_n.setdefault(len(g), []).append(i)
    return by_n


def median_ci(
    groups: Sequence[np.ndarray], level: float = LEVEL, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and its bootstrap CI for each of a list of 1-D samples (any lengths).
    Returns (median, low, high) with +inf where the sentinel was hit."""
    k = len(groups)
    med, lo, hi = np.full(k, np.nan), np.full(k, np.nan), np.full(k, np.nan)
    for n, idx in _ragged(groups).items():
        if n == 0:
            continue
        x = np.stack([np.asarray(groups[i], float) for i in idx])
        med[idx] = np.median(_finite(x), axis=-1)
        lo[idx], hi[idx] = bootstrap_ci(x, _median, level, seed=seed)
    return _back(med), _back(lo), _back(hi)


def log10_ratio(a, b) -> np.ndarray:
    """log10(a / b) of criteria (lower is better, so negative = ``a`` better); both infinite ->
    NaN, one infinite -> +-inf. Gaps floored at ``TINY``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.log10(np.maximum(a, TINY)) - np.log10(np.maximum(b, TINY))
    return np.where(np.isinf(a) & np.isinf(b), np.nan, r)


def log10_ratio_ci(
    a_groups: Sequence[np.ndarray],
    b_groups: Sequence[np.ndarray],
    level: float = LEVEL,
    paired: "bool | Sequence[bool]" = False,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap CI of ``log10(median(a) / median(b))`` for each pair of samples. Pairs marked
    ``paired`` (same seeds, same order) are resampled jointly."""
    k = len(a_groups)
    paired = [paired] * k if isinstance(paired, bool) else list(paired)
    lo, hi = np.full(k, np.nan), np.full(k, np.nan)
    keys: dict[tuple, list[int]] = {}
    for i in range(k):
        keys.setdefault(
            (len(a_groups[i]), len(b_groups[i]), bool(paired[i]) and len(a_groups[i]) == len(b_groups[i])), []
        ).append(i)
    for (na, nb, pr), idx in keys.items():
        if na == 0 or nb == 0:
            continue
        a = np.stack([np.asarray(a_groups[i], float) for i in idx])
        b = np.stack([np.asarray(b_groups[i], float) for i in idx])
        lo[idx], hi[idx] = bootstrap_ci((a, b), _log10_ratio_of_medians, level, paired=pr, seed=seed)
    lim = _LOG_BIG / 2  # a bound beyond this came from the +inf sentinel
    lo = np.where(lo > lim, np.inf, np.where(lo < -lim, -np.inf, lo))
    hi = np.where(hi > lim, np.inf, np.where(hi < -lim, -np.inf, hi))
    return lo, hi


def loglog_fits(keys, t, v) -> pd.DataFrame:
    """Least-squares line of log10 v against log10 t for each group of ``keys`` (the one power-law
    fit of the lab, in closed form so that thousands of runs fit at once). Points with t <= 0 or a
    non-finite or non-positive v are left out. Returns a DataFrame indexed by key with ``slope``,
    ``intercept`` (log10 of the prefactor) and ``n`` (points used); NaN slope below 3 points."""
    keys, t, v = np.asarray(keys), np.asarray(t, float), np.asarray(v, float)
    ok = (t > 0) & np.isfinite(t) & np.isfinite(v) & (v > 0)
    x = np.log10(np.where(ok, t, 1.0))
    y = np.log10(np.where(ok, v, 1.0))
    w = ok.astype(float)
    d = pd.DataFrame({"k": keys, "n": w, "sx": w * x, "sy": w * y, "sxx": w * x * x, "sxy": w * x * y})
    s = d.groupby("k", sort=False).sum()
    den = s["n"] * s["sxx"] - s["sx"] ** 2
    good = (s["n"] >= 3) & (den > 1e-12 * np.maximum(s["n"] * s["sxx"], 1e-300))
    slope = ((s["n"] * s["sxy"] - s["sx"] * s["sy"]) / den).where(good)
    intercept = ((s["sy"] - slope * s["sx"]) / s["n"]).where(good)
    return pd.DataFrame({"slope": slope, "intercept": intercept, "n": s["n"].astype(int)})


def loglog_fit(t, v) -> tuple[float, float, int]:
    """:func:`loglog_fits` for one set of points: (slope, intercept, n_points)."""
    r = loglog_fits(np.zeros(len(np.atleast_1d(t)), int), t, v)
    if r.empty:
        return np.nan, np.nan, 0
    return float(r["slope"].iloc[0]), float(r["intercept"].iloc[0]), int(r["n"].iloc[0])


def cis_overlap(lo1, hi1, lo2, hi2) -> np.ndarray:
    """True where the intervals [lo1, hi1] and [lo2, hi2] intersect (the tie rule). Two intervals
    both at +inf (both methods failed) overlap."""
    lo1, hi1, lo2, hi2 = (np.asarray(v, float) for v in (lo1, hi1, lo2, hi2))
    return (lo1 <= hi2) & (lo2 <= hi1)


def verdict(a: str, b: str, a_lo, a_hi, b_lo, b_hi, a_med, b_med) -> str:
    """Pairwise outcome of a lower-is-better comparison: ``a``, ``b`` or ``"tie"`` (CIs overlap,
    or both medians +inf)."""
    if not (np.isfinite(a_med) or np.isfinite(b_med)) or bool(cis_overlap(a_lo, a_hi, b_lo, b_hi)):
        return "tie"
    return a if a_med < b_med else b


def seed_note(n_seeds: int, exact: bool, level: float = LEVEL) -> "tuple[str, str] | None":
    """The analysis note on too few seeds per point, as (level, text), or None with 6 or more.
    A bootstrap CI of the median of n values cannot be wider than their range, which covers the
    median with probability 1 - 2^(1 - n); one seed gives one value and no interval at all, which
    is no defect when the oracle is ``exact`` (no noise: each run is then deterministic)."""
    if n_seeds == 1:
        if exact:
            return "info", (
                "1 seed per point: the oracle is exact (noise = 'none'), so each run is deterministic given its "
                "seed's instance and start, and no confidence interval over seeds is drawn"
            )
        return "warning", "only 1 seed per point with a noisy oracle: the CIs are single values; give more seeds"
    if 1 < n_seeds < 6:
        return "warning", (
            f"only {n_seeds} seeds per point: the bootstrap CI of the median cannot be wider than the seeds' range, "
            f"whose coverage is {100 * (1 - 2.0 ** (1 - n_seeds)):.0f}%, so the CIs cover less than the nominal "
            f"{100 * level:.0f}%"
        )
    return None


def nanmedian(a, axis=0) -> np.ndarray:
    """``np.nanmedian`` without its "All-NaN slice" warning: a slice with no value gives NaN,
    which the callers handle (e.g. a mode no run of a method resolved)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        return np.nanmedian(a, axis=axis)
