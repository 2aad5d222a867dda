"""Line figures: curves of the tuned runs in chosen cells, performance profiles, rate fits with
reference slopes, per-mode decay against the per-mode theory, envelopes over a whole grid and the
measured advantage against a claim's variable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .figstyle import GROUP_COLOURS, cell_title, linestyles, loglog, palette, plt, save, with_cells
from .floor import at_floor, clip
from .stats import loglog_fit, nanmedian
from .theory import ModeTheory, mode_columns, mode_decay_rates


def curves_fig(
    curves: pd.DataFrame,
    chosen: pd.DataFrame,
    cells: pd.DataFrame,
    cell_ids: list,
    swept: list[str],
    optimizers: list[str],
    metric: str = "gap",
    floors: pd.Series | None = None,
    floor_text: str = "",
):
    """The figure of :func:`curves_figure` (not saved). One y-label for the whole figure
    (``fig.supylabel``) under constrained layout, so that no label meets a panel's tick labels.
    ``floors`` (per cell_id, the metric's floor): values below it are drawn at it; where any is,
    the floor is a dotted line of that panel and ``floor_text`` goes in the title."""
    pal, sty = palette(optimizers), linestyles(optimizers)
    n = len(cell_ids)
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.8 * nrow + 0.4), squeeze=False, layout="constrained")
    sel = chosen[chosen["cell_id"].isin(cell_ids)]
    c = curves[curves["run_id"].isin(sel["run_id"])].merge(sel[["run_id", "cell_id", "optimizer"]], on="run_id")
    c = c[c["step"] > 0]
    floored = at_floor(c, floors, metric)
    c = clip(c, floors, cols=(metric,))
    for ax, cid in zip(axes.ravel(), cell_ids):
        d = c[c["cell_id"] == cid]
        for o in optimizers:
            e = d[d["optimizer"] == o].groupby("step")[metric].agg(["median", "min", "max"])
            if e.empty:
                continue
            ax.fill_between(e.index, e["min"], e["max"], color=pal[o], alpha=0.2, lw=0)
            ax.plot(e.index, e["median"], sty[o], color=pal[o], lw=1.3, label=o)
        if floored[(c["cell_id"] == cid).to_numpy()].any():  # only where a curve sits on it
            ax.axhline(floors[cid], color="k", lw=0.8, ls=":", label="floor")
        loglog(ax)
        ax.set_title(cell_title(cells, cid, swept), fontsize=8)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7, frameon=False)
    fig.supylabel("gap f - f*" if metric == "gap" else metric, fontsize=9)
    title = f"{metric} of the tuned runs: median over seeds, band = min..max"
    shown = floor_text and floored.any()
    fig.suptitle(title + (f"\n{floor_text}" if shown else ""), fontsize=9)
    return fig


def curves_figure(curves, chosen, cells, cell_ids, *args, path: Path, **kwargs) -> Path | None:
    """:func:`curves_fig` (same arguments) saved to ``path``; None when no cell is chosen."""
    return save(curves_fig(curves, chosen, cells, cell_ids, *args, **kwargs), path) if cell_ids else None


def profile_figure(
    profile: pd.DataFrame, optimizers: list[str], path: Path, criterion: str, floor_text: str = ""
) -> Path | None:
    """Performance profiles: fraction of cells where each method is within a factor tau of the
    best (criterion values below the cell's floor counted at it: ``floor_text`` under the axis)."""
    if profile.empty:
        return None
    pal, sty = palette(optimizers), linestyles(optimizers)
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for o in optimizers:
        d = profile[profile["optimizer"] == o].sort_values("tau")
        if not d.empty:
            ax.step(d["tau"], d["fraction"], sty[o], where="post", color=pal[o], label=o, lw=1.5)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(
        f"tau (criterion / best criterion in the cell), {criterion}" + (f"\n{floor_text}" if floor_text else ""),
        fontsize=8,
    )
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
    """Left: the tuned curves of one cell with the fitted power laws on the window and, for each
    optimizer whose row of ``table`` carries a finite ``reference_slope`` (the caller keeps only
    those the theory states for that method, metric and schedule), that reference slope in the
    optimizer's colour. Right: fitted exponent with its CI per cell and optimizer, with the
    optimizer's reference as a bar of its colour. No other slope is drawn."""
    if fits.empty or table.empty:
        return None
    pal, sty = palette(optimizers), linestyles(optimizers)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10.5, 3.8), gridspec_kw={"width_ratios": [1.1, 1]})
    lo, hi = float(fits["window_lo"].iloc[0]), float(fits["window_hi"].iloc[0])
    f = fits[fits["cell_id"] == cell_id]
    c = curves[curves["run_id"].isin(f["run_id"])].merge(f[["run_id", "optimizer"]], on="run_id")
    c = c[c["step"] > 0]
    ref = table["reference_slope"] if "reference_slope" in table else pd.Series(np.nan, index=table.index)
    tt = np.geomspace(lo, hi, 20)
    for o in optimizers:
        e = c[c["optimizer"] == o].groupby("step")[metric].median()
        if e.empty:
            continue
        ax.plot(e.index, e.to_numpy(), sty[o], color=pal[o], lw=1.3, label=o)
        t = table[(table["cell_id"] == cell_id) & (table["optimizer"] == o)]
        if len(t) and np.isfinite(t["slope"].iloc[0]):
            s, b = float(t["slope"].iloc[0]), float(t["intercept"].iloc[0])
            ax.plot(tt, 10**b * tt**s, "--", color=pal[o], lw=2, alpha=0.8, label=f"{o} fit: {s:+.2f}")
            r = float(ref[t.index[0]])
            if np.isfinite(r):  # through the fit's value at the window's start
                y0 = 10**b * lo**s
                ax.plot(tt, y0 * (tt / lo) ** r, ":", color=pal[o], lw=1.2, label=f"{o} theory: {r:+.2f}")
    ax.axvspan(lo, hi, color="0.9", zorder=0)
    loglog(ax)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(
        cell_title(cells, cell_id, swept) + "\nshaded: fit window; dotted: the method's own theory rate", fontsize=8
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
        r = d["reference_slope"].astype(float) if "reference_slope" in d else pd.Series(np.nan, index=d.index)
        if np.isfinite(r).any():
            bx.plot(xx[np.isfinite(r)], r[np.isfinite(r)], "_", ms=12, mew=1.5, color=pal[o], label=f"{o} theory")
    bx.set_xlabel("cell_id")
    bx.set_ylabel(f"fitted exponent of {metric} vs step")
    bx.set_title("exponent per cell: median over seeds, bootstrap CI; bar: the method's theory rate", fontsize=8)
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


def envelope_figure(panels: list[tuple[str, dict, float | None]], labels: list[str], path: Path, ylabel: str) -> Path:
    """One panel per cell (``panels``: (title, {label: envelope series by step}, floor or None)):
    each method's envelope (best over its grid by step t) in its colour and line style
    (figstyle.palette / linestyles), the floor as a dotted line where given."""
    colours = palette(labels)
    styles = linestyles(labels)
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
    colours = [GROUP_COLOURS[i % len(GROUP_COLOURS)] for i in range(max(len(groups), 3))]
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
