"""Theory predictions computed from the problem constants (runs.csv ``c_*``) and the seed papers,
each with its source and how far it was verified (see ../shared/PAPERS.md).

1. Shen et al., "On the Convergence Analysis of Muon" (arXiv 2505.23737; seeds 001/004).
   GD is analysed with the Frobenius-norm smoothness L, Muon with the spectral-to-nuclear
   smoothness L_* = sup ||H[D]||_* / ||D||_op. For a stationarity target measured in the nuclear
   norm, ||G||_* <= sqrt(r) ||G||_F turns GD's bound into one scaling with r L while Muon's scales
   with L_*; the secondary summary in PAPERS.md gives the stochastic complexities
   O(r^2 L sigma^2 Delta eps^-4) (GD) and O(r L_* sigma^2 Delta eps^-4) (Muon) -- **unverified**
   (secondary source). Both give the bound ratio A = r L / L_* (GD bound / Muon bound), where r
   bounds the rank of the gradients. :func:`shen_advantage` takes r = ``c_rank`` when the problem
   reports it, else min(m, n); with r = min(m, n), L_* <= r L gives A >= 1 in every cell (A = 1 for an isotropic
   Hessian), so no winner is predicted from it. The analysis uses A with the rank of the
   gradients seen (:func:`analysis.trend.seen_rank_advantage`) and a two-sided trend test of the
   measured advantage against it (:func:`analysis.trend.trend_test`; docs/protocol.md section 7).
2. Paquette et al., "Phases of Muon" (arXiv 2605.09552; cited in seed 001): at large batch SignSVD
   (which Muon approximates) does a square-root preconditioning of the data covariance, so mode j
   of the error decays at a rate ~ lambda_j^(1/2), against ~ lambda_j for SGD; SignSGD does no
   preconditioning (rate ~ lambda_j). :func:`mode_exponents` measures the exponent on the
   ``mode_err_<j>`` curves of power_law_lsq, with lambda_j read from the problem's own ``cov``
   spectrum in spectra.csv (problems/power_law_lsq.py writes it).
3. Reference rates from seed 000 (Muon-MVR, arXiv 2509.15816) and seed 003 (Gluon-MVR,
   arXiv 2512.16598): :data:`REFERENCE_RATES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .stats import loglog_fit

SHEN = "Shen et al. 2025 (arXiv 2505.23737): A = r*L/L_star"
SHEN_STATUS = "bound ratio; the complexities are from a secondary summary (unverified, PAPERS.md)"
PHASES = "Paquette et al., Phases of Muon (arXiv 2605.09552): SignSVD mode rate ~ lambda^(1/2), SGD ~ lambda"

# Exponents p of the rate T^p (upper bounds) stated by the seed papers; ``status`` says where from.
REFERENCE_RATES = pd.DataFrame(
    [
        {
            "method": "muon",
            "setting": "stochastic non-convex (ergodic average)",
            "quantity": "gradient norm",
            "exponent": -1 / 4,
            "source": "arXiv 2509.15816 v5",
            "status": "abstract",
        },
        {
            "method": "mvr2",
            "setting": "stochastic non-convex, horizon-free (anytime)",
            "quantity": "gradient norm",
            "exponent": -1 / 3,
            "source": "arXiv 2509.15816 v5",
            "status": "abstract (up to logs)",
        },
        {
            "method": "mvr1",
            "setting": "PL, best iterate",
            "quantity": "E sqrt gap",
            "exponent": -1 / 4,
            "source": "arXiv 2509.15816 v5",
            "status": "abstract (up to logs)",
        },
        {
            "method": "mvr2",
            "setting": "PL, best iterate",
            "quantity": "E sqrt gap",
            "exponent": -1 / 3,
            "source": "arXiv 2509.15816 v5",
            "status": "abstract (up to logs)",
        },
        {
            "method": "mvr1",
            "setting": "PL, last iterate, uniform gradient bound",
            "quantity": "gap",
            "exponent": -1 / 4,
            "source": "arXiv 2509.15816 v5",
            "status": "abstract (v3-era reviews quote -1/2: another version)",
        },
        {
            "method": "mvr2",
            "setting": "PL, last iterate, uniform gradient bound",
            "quantity": "gap",
            "exponent": -1 / 3,
            "source": "arXiv 2509.15816 v5",
            "status": "abstract (v3-era reviews quote -2/3: another version)",
        },
        {
            "method": "gluon",
            "setting": "non-convex, layer-wise (L0,L1)-smooth",
            "quantity": "gradient norm",
            "exponent": -1 / 4,
            "source": "seed 003 (arXiv 2512.16598)",
            "status": "seed abstract",
        },
        {
            "method": "gluon_mvr",
            "setting": "non-convex, layer-wise (L0,L1)-smooth",
            "quantity": "gradient norm",
            "exponent": -1 / 3,
            "source": "seed 003 (arXiv 2512.16598)",
            "status": "seed abstract",
        },
        {
            "method": "gluon_mvr",
            "setting": "star-convex",
            "quantity": "gap",
            "exponent": -1 / 2,
            "source": "seed 003 (arXiv 2512.16598)",
            "status": "secondary review, unverified",
        },
    ]
)


# Which row of REFERENCE_RATES an optimizer kind (exact registry name) takes: the paper's method.
RATE_METHODS = {
    "muon": "muon",
    "muon_mvr1": "mvr1",
    "muon_mvr2": "mvr2",
    "gluon": "gluon",
    "gluon_mvr1": "gluon_mvr",
    "gluon_mvr2": "gluon_mvr",
}


def reference_slope(kind: str, metric: str) -> tuple[float, str]:
    """The reference exponent for an optimizer kind (exact registry name, :data:`RATE_METHODS`)
    and a curve metric, and its source; NaN and '' where the seeds state none. Gradient-norm
    metrics take the non-convex rates (Muon-MVR1 takes Muon's: seed 000 states no better one for
    it), ``gap`` the PL last-iterate rates (Muon-MVR1/2) or the star-convex one (Gluon-MVR)."""
    grad = metric.startswith("grad")
    method = RATE_METHODS.get(kind)
    if method is None or (metric != "gap" and not grad):
        return np.nan, ""
    t = REFERENCE_RATES
    if grad:
        sel = t[(t["method"] == method) & (t["quantity"] == "gradient norm")]
        if sel.empty and method == "mvr1":
            sel = t[(t["method"] == "muon") & (t["quantity"] == "gradient norm")]
    else:
        sel = t[(t["method"] == method) & (t["quantity"] == "gap")]
    if sel.empty:
        return np.nan, ""
    r = sel.iloc[0]
    return float(r["exponent"]), f"{r['source']}, {r['setting']} ({r['status']})"


# --- Shen et al.: L_star versus r * L -----------------------------------------------------------
SHEN_GD_KINDS = ("gd", "sgd")  # the rivals whose bound scales with r L: (stochastic) gradient descent, exact names
SHEN_FOCUS_FAMILIES = ("spectral",)  # the focus methods whose bound scales with L_star (runs.csv optimizer_family)


def shen_advantage(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell: r, L, L_star (or its bounds) and A = r L / L_star with its range
    (``theory_advantage_low`` / ``_high`` from ``c_L_star_high`` / ``_low`` when reported).
    Constants are medians over the cell's runs (they vary with the seed for random instances).
    Empty when the problem reports no ``c_L`` or no L_star."""
    has_point = "c_L_star" in runs
    has_bounds = "c_L_star_low" in runs and "c_L_star_high" in runs
    if "c_L" not in runs or not (has_point or has_bounds):
        return pd.DataFrame()
    cols = ["c_L", *(["c_L_star"] if has_point else []), *(["c_L_star_low", "c_L_star_high"] if has_bounds else [])]
    if "c_rank" in runs:
        cols.append("c_rank")
    elif "p_m" in runs and "p_n" in runs:
        runs = runs.assign(c_rank=np.minimum(runs["p_m"].astype(float), runs["p_n"].astype(float)))
        cols.append("c_rank")
    else:
        return pd.DataFrame()
    c = runs.groupby("cell_id")[cols].median()
    rl = c["c_rank"] * c["c_L"]
    out = pd.DataFrame({"cell_id": c.index, "theory_rank": c["c_rank"].to_numpy(), "theory_L": c["c_L"].to_numpy()})
    lo_star = c["c_L_star_low"] if has_bounds else c["c_L_star"]
    hi_star = c["c_L_star_high"] if has_bounds else c["c_L_star"]
    point = c["c_L_star"] if has_point else np.sqrt(lo_star * hi_star)
    out["theory_L_star"] = point.to_numpy()
    out["theory_advantage"] = (rl / point).to_numpy()
    out["theory_advantage_low"] = (rl / hi_star).to_numpy()
    out["theory_advantage_high"] = (rl / lo_star).to_numpy()
    return out.reset_index(drop=True)


# --- per-mode (per-component) decay exponents ------------------------------------------------------
@dataclass(frozen=True)
class ModeTheory:
    """What a problem's ``mode_err_<j>`` curves are measured against: the spectrum (spectra.csv
    ``name``) whose entry j-1 is the weight of component j, its name on the axis, the predicted
    exponent q of rate_j ~ weight_j^q per optimizer kind (exact registry names), and the source."""

    source: str
    spectrum: str
    axis: str
    exponents: dict
    lines: tuple  # (slope, label) reference lines on the figure


ASSOC = "Muon in associative memory (arXiv 2602.05725; secondary summary): GD rate ~ frequency, Muon even"
MODE_THEORIES = {
    "power_law_lsq": ModeTheory(
        PHASES,
        "cov",
        "lambda_j (covariance eigenvalue, j^-alpha)",
        {"muon": 0.5, "gd": 1.0, "sgd": 1.0, "signsgd": 1.0},
        ((0.5, "1/2: SignSVD (Muon), large batch"), (1.0, "1: SGD / SignSGD")),
    ),
    "assoc_memory": ModeTheory(
        ASSOC,
        "freq",
        "p_j (item frequency, ~ j^-alpha)",
        {"muon": 0.0, "gd": 1.0, "sgd": 1.0},
        ((0.0, "0: Muon, even"), (1.0, "1: GD, proportional to frequency")),
    ),
}
PHASES_EXPONENT = MODE_THEORIES["power_law_lsq"].exponents
_MODE = re.compile(r"^mode_err_(\d+)$")


def mode_theory(problem: str | None) -> "ModeTheory | None":
    """The per-mode theory of a problem kind (None where none is stated)."""
    return MODE_THEORIES.get(problem)


def mode_columns(curves: pd.DataFrame) -> list[tuple[int, str]]:
    """``(j, column)`` for every ``mode_err_<j>`` column, sorted by j."""
    found = [(int(m.group(1)), c) for c in curves.columns if (m := _MODE.match(c))]
    return sorted(found)


def predicted_mode_exponent(kind: str, theory: ModeTheory) -> float:
    """The theory's predicted exponent for optimizer ``kind`` (exact registry name; Phases of
    Muon: 1/2 for Muon at large batch, 1 for GD/SGD and SignSGD); NaN where it says nothing."""
    return theory.exponents.get(kind, np.nan)


def mode_decay_rates(curve: pd.DataFrame, cols: list[str], fold: float = np.e) -> np.ndarray:
    """For one run's curve (rows sorted by step), the decay rate of each mode: 1 / t_j, where t_j
    is the step at which the mode's error first falls to 1/``fold`` of its step-0 value (log-linear
    interpolation between logged steps); NaN for modes that never get there or start at zero."""
    t = curve["step"].to_numpy(float)
    out = np.full(len(cols), np.nan)
    for i, c in enumerate(cols):
        e = curve[c].to_numpy(float)
        if not (np.isfinite(e[0]) and e[0] > 0):
            continue
        thr = e[0] / fold
        below = np.nonzero(e <= thr)[0]
        if len(below) == 0 or below[0] == 0:
            continue
        k = below[0]
        le0, le1 = np.log(max(e[k - 1], 1e-300)), np.log(max(e[k], 1e-300))
        frac = (le0 - np.log(thr)) / (le0 - le1) if le0 != le1 else 1.0
        tj = t[k - 1] + frac * (t[k] - t[k - 1])
        out[i] = 1.0 / tj if tj > 0 else np.nan
    return out


def mode_weights(spectrum: np.ndarray, modes: list[int]) -> np.ndarray:
    """The weights of the logged modes j (counted from 1) from the problem's spectrum as written
    to spectra.csv (entry j-1 is mode j's: lambda_j of power_law_lsq, p_j of assoc_memory)."""
    j = np.asarray(modes, int)
    return (
        np.asarray(spectrum, float)[j - 1] if len(spectrum) >= (j.max() if j.size else 0) else np.full(j.size, np.nan)
    )


def spectra_by_instance(spectra: pd.DataFrame, name: str) -> dict:
    """{(cell_id, seed): spectrum array ordered by index} of one spectrum name."""
    s = spectra[spectra["name"] == name].sort_values(["cell_id", "seed", "index"])
    return {k: g["value"].to_numpy(float) for k, g in s.groupby(["cell_id", "seed"], sort=False)}


def mode_exponents(
    curves: pd.DataFrame,
    chosen: pd.DataFrame,
    runs: pd.DataFrame,
    spectra: pd.DataFrame,
    theory: ModeTheory,
    min_range: float = 10.0,
) -> pd.DataFrame:
    """Per tuned run (``chosen``): the fitted exponent q in rate_j ~ weight_j^q across modes (the
    weights read from spectra.csv, :class:`ModeTheory` ``spectrum``), next to the theory's
    prediction for its kind. Runs whose weights span less than ``min_range`` are skipped (no
    leverage for a slope). Empty when curves.csv has no ``mode_err_<j>`` columns."""
    mc = mode_columns(curves)
    if not mc:
        return pd.DataFrame()
    modes, cols = [j for j, _ in mc], [c for _, c in mc]
    spec = spectra_by_instance(spectra, theory.spectrum)
    info = runs.set_index("run_id")[["cell_id", "seed", "optimizer_kind"]]
    sel = chosen[chosen["status"] == "ok"] if "status" in chosen else chosen
    c = curves[curves["run_id"].isin(sel["run_id"])].sort_values(["run_id", "step"])
    rows = []
    for rid, g in c.groupby("run_id", sort=False):
        r = info.loc[rid]
        lam = spec.get((r["cell_id"], r["seed"]))
        if lam is None:
            continue
        lam = mode_weights(lam, modes)
        if not np.isfinite(lam).all() or lam.max() / lam.min() < min_range:
            continue
        rate = mode_decay_rates(g, cols)
        q, _, n = loglog_fit(lam, rate)
        rows.append(
            {"run_id": rid, "slope": q, "n_modes": n, "predicted": predicted_mode_exponent(r["optimizer_kind"], theory)}
        )
    if not rows:
        return pd.DataFrame()
    fits = pd.DataFrame(rows)
    return sel.merge(fits, on="run_id")
