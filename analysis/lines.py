"""Line figures: curves of the tuned runs in chosen cells, performance profiles, rate fits with
reference slopes, per-mode decay against the per-mode theory, envelopes over a whole grid and the
measured advantage against a claim's variable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .figstyle import cell_title, linestyles, loglog, palette, plt, save, sns, with_cells
from .stats import loglog_fit, nanmedian
from .theory import REFERENCE_SLOPES, ModeTheory, mode_columns, mode_decay_rates


def curves_figure(
    curves: pd.DataFrame,
    chosen: pd.DataFrame,
    cells: pd.DataFrame,
    cell_ids: list,
    swept: list[str],
    optimizers: list[str],
    path: Path,
    metric: str = "gap",
) -> Path | None:
    """The tuned runs' ``metric`` curves in the chosen cells: median over seeds, band min-max."""
    if not cell_ids:
        return None
    pal = palette(optimizers)
    n = len(cell_ids)
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.8 * nrow), squeeze=False)
    sel = chosen[chosen["cell_id"].isin(cell_ids)]
    c = curves[curves["run_id"].isin(sel["run_id"])].merge(sel[["run_id", "cell_id", "optimizer"]], on="run_id")
    c = c[c["step"] > 0]
    for ax, cid in zip(axes.ravel(), cell_ids):
        d = c[c["cell_id"] == cid]
        for o in optimizers:
            e = d[d["optimizer"] == o].groupby("step")[metric].agg(["median", "min", "max"])
            if e.empty:
                continue
            ax.fill_between(e.index, e["min"], e["max"], color=pal[o], alpha=0.2, lw=0)
            ax.plot(e.index, e["median"], color=pal[o], lw=1.3, label=o)
        loglog(ax)
        ax.set_title(cell_title(cells, cid, swept), fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylabel("gap f - f*" if metric == "gap" else metric)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7, frameon=False)
    fig.suptitle(f"{metric} of the tuned runs: median over seeds, band = min..max", fontsize=9)
    fig.subplots_adjust(hspace=0.5, wspace=0.35)
    return save(fig, path)


def profile_figure(profile: pd.DataFrame, optimizers: list[str], path: Path, criterion: str) -> Path | None:
    """Performance profiles: fraction of cells where each method is within a factor tau of the best."""
    if profile.empty:
        return None
    pal = palette(optimizers)
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for o in optimizers:
        d = profile[profile["optimizer"] == o].sort_values("tau")
        if not d.empty:
            ax.step(d["tau"], d["fraction"], where="post", color=pal[o], label=o, lw=1.5)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"tau (criterion / best criterion in the cell), {criterion}")
    ax.set_ylabel("fraction of cells within tau of best")
    ax.set_title(f"performance profiles over {int(profile['n_cells'].iloc[0])} cells (Dolan & More 2002)", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3, which="both")
    return save(fig, path)


def rates_figure(
    curves: pd.DataFrame,
    fits: pd.DataFrame,
    table: pd.DataFrame,
    cells: pd.DataFrame,
    cell_id,
    swept: list[str],
    optimizers: list[str],
    path: Path,
    metric: str,
) -> Path | None:
    """Left: the tuned curves of one cell with the fitted power laws on the window and the
    reference slopes -1/4, -1/3, -1/2, -2/3 (seeds 000 and 003). Right: fitted exponent with its
    CI per cell and optimizer."""
    if fits.empty or table.empty:
        return None
    pal = palette(optimizers)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10.5, 3.8), gridspec_kw={"width_ratios": [1.1, 1]})
    lo, hi = float(fits["window_lo"].iloc[0]), float(fits["window_hi"].iloc[0])
    f = fits[fits["cell_id"] == cell_id]
    c = curves[curves["run_id"].isin(f["run_id"])].merge(f[["run_id", "optimizer"]], on="run_id")
    c = c[c["step"] > 0]
    anchor = None
    for o in optimizers:
        e = c[c["optimizer"] == o].groupby("step")[metric].median()
        if e.empty:
            continue
        ax.plot(e.index, e.to_numpy(), color=pal[o], lw=1.3, label=o)
        t = table[(table["cell_id"] == cell_id) & (table["optimizer"] == o)]
        if len(t) and np.isfinite(t["slope"].iloc[0]):
            s, b = float(t["slope"].iloc[0]), float(t["intercept"].iloc[0])
            tt = np.geomspace(lo, hi, 20)
            ax.plot(tt, 10**b * tt**s, "--", color=pal[o], lw=2, alpha=0.8, label=f"{o} fit: {s:+.2f}")
        w = e[(e.index >= lo) & (e.index <= hi)]
        if anchor is None and len(w) and w.iloc[0] > 0:
            anchor = float(w.iloc[0])
    if anchor is not None:
        tt = np.geomspace(lo, hi, 20)
        for k, s in enumerate(REFERENCE_SLOPES):
            ax.plot(tt, anchor * (tt / lo) ** s, ":", color="0.35", lw=1)
            ax.annotate(
                f"{s:+.2f}",
                (tt[-1], anchor * (tt[-1] / lo) ** s),
                fontsize=6,
                color="0.3",
                xytext=(2, 0),
                textcoords="offset points",
            )
    ax.axvspan(lo, hi, color="0.9", zorder=0)
    loglog(ax)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(
        cell_title(cells, cell_id, swept) + "\nshaded: fit window; dotted: reference slopes (seeds 000/003)", fontsize=8
    )
    ax.legend(fontsize=6.5, frameon=False, ncol=2)

    t = with_cells(table, cells).sort_values("cell_id")
    xs = {cid: i for i, cid in enumerate(sorted(t["cell_id"].unique()))}
    off = {o: (i - (len(optimizers) - 1) / 2) * 0.22 for i, o in enumerate(optimizers)}
    for o in optimizers:
        d = t[t["optimizer"] == o]
        if d.empty:
            continue
        xx = np.array([xs[c] for c in d["cell_id"]]) + off[o]
        yerr = np.vstack(
            [(d["slope"] - d["slope_ci_low"]).clip(lower=0), (d["slope_ci_high"] - d["slope"]).clip(lower=0)]
        )
        bx.errorbar(xx, d["slope"], yerr=np.nan_to_num(yerr), fmt="o", ms=3, color=pal[o], elinewidth=0.8, label=o)
    for s in REFERENCE_SLOPES:
        bx.axhline(s, color="0.4", ls=":", lw=1)
        bx.annotate(
            f"{s:+.2f}",
            (1.0, s),
            xycoords=("axes fraction", "data"),
            fontsize=6,
            color="0.3",
            xytext=(2, 0),
            textcoords="offset points",
        )
    bx.set_xlabel("cell_id")
    bx.set_ylabel(f"fitted exponent of {metric} vs step")
    bx.set_title("exponent per cell: median over seeds, bootstrap CI", fontsize=8)
    if len(xs) <= 16:
        bx.set_xticks(list(xs.values()), [str(k) for k in xs])
    bx.legend(fontsize=7, frameon=False)
    fig.subplots_adjust(wspace=0.3)
    return save(fig, path)


def modes_figure(
    curves: pd.DataFrame,
    chosen: pd.DataFrame,
    weights: np.ndarray,
    theory: ModeTheory,
    cells: pd.DataFrame,
    cell_id,
    swept: list[str],
    optimizers: list[str],
    path: Path,
) -> Path | None:
    """Per-mode decay rate (1 / e-folding step) against the component weight (``weights``: the
    logged modes' entries of the problem's spectrum, spectra.csv), median over seeds, with the
    theory's predicted slopes (analysis.theory.MODE_THEORIES: Phases of Muon's 1/2 vs 1 on
    power_law_lsq, associative memory's 0 vs 1)."""
    th = theory
    mc = mode_columns(curves)
    if not mc:
        return None
    cols = [c for _, c in mc]
    lam = np.asarray(weights, float)
    pal = palette(optimizers)
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    sel = chosen[(chosen["cell_id"] == cell_id) & (chosen["status"] == "ok")]
    anchor = None
    for o in optimizers:
        rids = sel[sel["optimizer"] == o]["run_id"]
        if rids.empty:
            continue
        rates = np.array([mode_decay_rates(curves[curves["run_id"] == r].sort_values("step"), cols) for r in rids])
        med = nanmedian(rates, axis=0)  # NaN for a mode no run resolved
        ok = np.isfinite(med)
        if not ok.any():
            continue
        q, b, _ = loglog_fit(lam, med)
        ax.plot(
            lam[ok], med[ok], "o", ms=3.5, color=pal[o], label=f"{o}: fitted slope {q:.2f}" if np.isfinite(q) else o
        )
        if anchor is None:
            anchor = (lam[ok][0], med[ok][0])
    if anchor is not None:
        ll = np.geomspace(lam.min(), lam.max(), 20)
        for s, lab in th.lines:
            ax.plot(
                ll,
                anchor[1] * (ll / anchor[0]) ** s,
                ":" if s == 1 else "--",
                color="0.3",
                lw=1,
                label=f"predicted slope {lab}",
            )
    loglog(ax)
    ax.set_xlabel(th.axis)
    ax.set_ylabel("mode decay rate 1/t_j (e-folding)")
    ax.set_title(cell_title(cells, cell_id, swept) + "\n" + th.source.split(":")[0] + ": per-mode decay", fontsize=8)
    ax.legend(fontsize=6.5, frameon=False)
    return save(fig, path)


def envelope_figure(
    panels: list[tuple[str, dict, float | None]], labels: list[str], kinds: dict[str, str], path: Path, ylabel: str
) -> Path:
    """One panel per cell (``panels``: (title, {label: envelope series by step}, floor or None)):
    each method's envelope (best over its grid by step t), one line style per optimizer kind, the
    floor as a dotted line where given."""
    colours = palette(labels)
    styles = linestyles(labels, kinds)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False, sharey=True)
    for ax, (title, series, floor) in zip(axes[0], panels):
        for m in labels:
            e = series.get(m)
            if e is None:
                continue
            e = e[(e.index > 0) & np.isfinite(e.to_numpy(float))]
            ax.plot(e.index, e.to_numpy(float), styles[m], color=colours[m], label=m, lw=1.6)
        if floor is not None:
            ax.axhline(floor, color="k", lw=1, ls=":", label="floor")
        loglog(ax)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7, frameon=False)
    fig.suptitle("envelope: for each step, the best grid point (every lr and momentum)", fontsize=10)
    return save(fig, path)


def advantage_figure(
    adv: pd.DataFrame,
    xcol: str,
    xname: str,
    focus: str,
    rival: str,
    metric: str,
    path: Path,
    hue: "list | None" = None,
    logx: bool = False,
) -> Path:
    """The measured advantage log10(rival / focus) of each cell against the claim's variable."""
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    groups = [("", adv)] if not hue else list(adv.groupby([f"p_{h}" for h in hue], sort=True))
    colours = sns.color_palette("colorblind", max(len(groups), 3))
    for (key, g), col in zip(groups, colours):
        key = key if isinstance(key, tuple) else (key,)
        lab = ", ".join(f"{h} = {k:g}" for h, k in zip(hue or [], key)) if hue else None
        g = g.sort_values(xcol)
        ax.plot(g[xcol], g["advantage"], "o-" if hue else "o", color=col, label=lab, ms=4, lw=1)
    ax.axhline(0, color="k", lw=0.8)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xname)
    ax.set_ylabel(f"log10({rival} / {focus}), tuned {metric}\n(> 0: {focus} better)")
    if hue:
        ax.legend(fontsize=7, frameon=False)
    return save(fig, path)
