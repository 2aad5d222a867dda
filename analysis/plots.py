"""Figures (seaborn / matplotlib, Agg backend). Axes are labelled with the parameters' own names.

- winner map: categorical colours, ties grey and hatched, '*' where the winner's tuned lr sat at
  the edge of its grid, a small triangle where any method's did, the theory boundary in black;
- log-ratio maps of the focus method to each rival: one FacetGrid, columns = rivals, rows = a
  third swept axis, a shared colour scale centred at zero;
- lr sensitivity (FacetGrid over the two swept axes), curves of chosen cells, performance
  profiles, rate fits with reference slopes, per-mode decay against the Phases-of-Muon prediction.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import ListedColormap, TwoSlopeNorm  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from .phase import NONE, rivals  # noqa: E402
from .stats import loglog_fit  # noqa: E402
from .tune import tuned_columns  # noqa: E402
from .theory import REFERENCE_SLOPES, mode_columns, mode_decay_rates, mode_eigenvalues, mode_theory  # noqa: E402

TIE_COLOUR = "#bdbdbd"
NONE_COLOUR = "#ffffff"
DPI = 120


def _loglog(ax, minor: bool = False) -> None:
    """Log-log axes; minor ticks off unless asked (they cost most of the drawing time on many
    panels), except on a y axis spanning under a decade, where they carry the only labels."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    if not minor:
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        lo, hi = ax.get_ylim()
        if hi < 100 * lo:
            return
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _fmt(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return f"{float(v):.3g}"
    return str(v)


def palette(optimizers: list[str]) -> dict[str, tuple]:
    """One fixed colour per optimizer, the same in every figure."""
    return dict(zip(optimizers, sns.color_palette("colorblind", max(len(optimizers), 3))))


def _pivot(df: pd.DataFrame, x: str, y: str | None, value: str) -> pd.DataFrame:
    if y is None:
        return df.assign(_row="")[["_row", f"p_{x}", value]].pivot(index="_row", columns=f"p_{x}", values=value)
    return df.pivot(index=f"p_{y}", columns=f"p_{x}", values=value).sort_index(ascending=False)


def _ticks(ax, grid: pd.DataFrame, x: str, y: str | None) -> None:
    ax.set_xticks(np.arange(grid.shape[1]) + 0.5, [_fmt(v) for v in grid.columns], rotation=0)
    if y is None:
        ax.set_yticks([])
    else:
        ax.set_yticks(np.arange(grid.shape[0]) + 0.5, [_fmt(v) for v in grid.index], rotation=0)
    ax.set_xlabel(x)
    ax.set_ylabel(y or "")


def _boundary(ax, pred: pd.DataFrame) -> bool:
    """Black segments along the cell edges where the predicted winner changes."""
    p = pred.to_numpy()
    drew = False
    for r in range(p.shape[0]):
        for c in range(p.shape[1]):
            if c + 1 < p.shape[1] and p[r, c] != p[r, c + 1]:
                ax.plot([c + 1, c + 1], [r, r + 1], color="black", lw=2.5, solid_capstyle="butt")
                drew = True
            if r + 1 < p.shape[0] and p[r, c] != p[r + 1, c]:
                ax.plot([c, c + 1], [r + 1, r + 1], color="black", lw=2.5, solid_capstyle="butt")
                drew = True
    return drew


def _facet_col(df: pd.DataFrame, name: str | None, descending: bool = False) -> tuple[str | None, list | None]:
    """Add a column ``_f_<name>`` with readable facet titles ('alpha = 0.333'); return it and its order."""
    if name is None:
        return None, None
    vals = sorted(df[f"p_{name}"].unique(), reverse=descending)
    lab = {v: f"{name} = {_fmt(v)}" for v in vals}
    df[f"_f_{name}"] = df[f"p_{name}"].map(lab)
    return f"_f_{name}", [lab[v] for v in vals]


def _facets(df: pd.DataFrame, extra: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """Split on the swept axes beyond the first three (one figure each); suffix for the file name."""
    if len(extra) <= 1:
        return [("", df)]
    rest = [f"p_{e}" for e in extra[1:]]
    out = []
    for key, sub in df.groupby(rest, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        out.append(("".join(f"_{e}={_fmt(v)}" for e, v in zip(extra[1:], key)), sub))
    return out


def winner_map(phase: pd.DataFrame, x: str, y: str | None, optimizers: list[str], path: Path, title: str,
               extra: list[str] | None = None, boundary_label: str | None = None) -> list[Path]:
    """Categorical map of the winner per cell (FacetGrid over a third swept axis)."""
    extra = extra or []
    cats = [*optimizers, "tie", NONE]
    pal = palette(optimizers)
    cmap = ListedColormap([pal[o] for o in optimizers] + [TIE_COLOUR, NONE_COLOUR])
    code = {o: i for i, o in enumerate(cats)}
    ph = phase.copy()
    ph["_code"] = [code["tie"] if t else code.get(w, code[NONE]) for w, t in zip(ph["winner"], ph["tie"])]
    ph["_label"] = [
        ("tie\n" + textwrap.fill(" ".join([w, *str(tw).split()]), 11) if t else str(w)) + ("*" if e else "")
        for w, t, tw, e in zip(ph["winner"], ph["tie"], ph["tied_with"].fillna(""), ph["winner_lr_at_edge"])]
    ph["_edge"] = ph["lr_at_edge_methods"].fillna("").astype(str).str.len() > 0
    has_pred = "predicted_winner" in ph and ph["predicted_winner"].notna().any()
    row, order = _facet_col(ph, extra[0] if extra else None)
    paths = []
    for suffix, sub in _facets(ph, extra):
        ncol = sub[f"p_{x}"].nunique()
        nrow = sub[f"p_{y}"].nunique() if y else 1

        def draw(data, **_):
            ax = plt.gca()
            grid = _pivot(data, x, y, "_code").astype(float)
            labels = _pivot(data, x, y, "_label")
            sns.heatmap(grid, ax=ax, cmap=cmap, vmin=-0.5, vmax=len(cats) - 0.5, cbar=False, annot=labels.to_numpy(),
                        fmt="", annot_kws={"fontsize": 6}, linewidths=0.5, linecolor="white")
            tie = _pivot(data, x, y, "_code").to_numpy() == code["tie"]
            edge = _pivot(data, x, y, "_edge").to_numpy().astype(bool)
            for r, c in zip(*np.nonzero(tie)):
                ax.add_patch(Rectangle((c, r), 1, 1, fill=False, hatch="////", edgecolor="#7a7a7a", lw=0))
            for r, c in zip(*np.nonzero(edge)):
                ax.add_patch(plt.Polygon([[c + 1, r], [c + 0.82, r], [c + 1, r + 0.18]], color="black"))
            if has_pred:
                _boundary(ax, _pivot(data, x, y, "predicted_winner"))
            _ticks(ax, grid, x, y)

        h = 0.62 * nrow + 1.0
        g = sns.FacetGrid(sub, col=row, col_order=order, height=h, aspect=max(0.8, (0.85 * ncol + 0.6) / h),
                          sharex=False, sharey=False, despine=False)
        g.map_dataframe(draw)
        g.set_titles(col_template="{col_name}" if row else "")
        handles = [Patch(color=pal[o], label=o) for o in optimizers]
        handles += [Patch(facecolor=TIE_COLOUR, hatch="////", edgecolor="#7a7a7a", label="tie (CIs overlap)"),
                    Line2D([], [], marker="$*$", ls="", color="black", label="winner's lr at grid edge"),
                    Line2D([], [], marker=">", ls="", color="black", markersize=5, label="some method's lr at grid edge")]
        if has_pred:
            handles.append(Line2D([], [], color="black", lw=2.5, label=boundary_label or "theory boundary"))
        if (ph["winner"] == NONE).any():
            handles.append(Patch(facecolor=NONE_COLOUR, edgecolor="black", label="all methods failed"))
        g.figure.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.95), fontsize=7, frameon=False)
        g.figure.suptitle(title + (f" [{suffix[1:]}]" if suffix else ""), fontsize=9, y=1.03)
        paths.append(_save(g.figure, path.with_name(path.stem + suffix + path.suffix)))
    return paths


def ratio_maps(phase: pd.DataFrame, x: str, y: str | None, focus: str, path: Path, criterion: str,
               extra: list[str] | None = None, boundary_rival: str | None = None, order: list[str] | None = None) -> list[Path]:
    """One figure per rival, ``<path stem>_<rival>.png``: log10(criterion of focus / criterion of
    rival) per cell, panels over a third swept axis (FacetGrid), and one colour scale centred at
    zero shared by every rival's figure; values in parentheses are pairwise ties (CIs overlap).
    Negative (blue) = focus better."""
    extra = extra or []
    rv = rivals(phase)
    if order:
        rv = sorted(rv, key=lambda r: order.index(r) if r in order else len(order))
    if not rv:
        return []
    vals = phase[[f"log10_ratio_{r}" for r in rv]].to_numpy(float)
    fin = vals[np.isfinite(vals)]
    vmax = max(float(np.abs(fin).max()) if fin.size else 1.0, 1e-3)
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax)
    has_pred = "predicted_winner" in phase and phase["predicted_winner"].notna().any()
    paths = []
    for r in rv:
        d = phase.copy()
        d["_value"] = d[f"log10_ratio_{r}"].astype(float)
        tie = d[f"vs_{r}"] == "tie" if f"vs_{r}" in d else pd.Series(False, index=d.index)
        d["_label"] = [("(" + f"{v:.2f}" + ")" if t else f"{v:.2f}") if np.isfinite(v) else ("+inf" if v > 0 else "-inf" if v < 0 else "")
                       for v, t in zip(d["_value"], tie)]
        col, order_ = _facet_col(d, extra[0] if extra else None)
        boundary = has_pred and r == boundary_rival
        for suffix, sub in _facets(d, extra):
            ncol = sub[f"p_{x}"].nunique()
            nrow = sub[f"p_{y}"].nunique() if y else 1

            def draw(data, **_):
                ax = plt.gca()
                grid = _pivot(data, x, y, "_value").astype(float)
                sns.heatmap(grid.clip(-vmax, vmax), ax=ax, cmap="RdBu_r", norm=norm, cbar=False,
                            annot=_pivot(data, x, y, "_label").to_numpy(), fmt="", annot_kws={"fontsize": 6.5},
                            linewidths=0.5, linecolor="white")
                if boundary:
                    _boundary(ax, _pivot(data, x, y, "predicted_winner"))
                _ticks(ax, grid, x, y)

            h = max(2.4, 0.55 * nrow + 1.0)
            g = sns.FacetGrid(sub, col=col, col_order=order_, height=h, aspect=max(0.8, (0.7 * ncol + 0.5) / h),
                              sharex=False, sharey=False, despine=False)
            g.map_dataframe(draw)
            g.set_titles(col_template="{col_name}" if col else "")
            for ax in g.axes[:, 1:].ravel():
                ax.set_ylabel("")
            g.figure.subplots_adjust(right=0.8)
            cax = g.figure.add_axes([0.86, 0.15, 0.025, 0.7])
            g.figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="RdBu_r"), cax=cax,
                              label=f"log10 ratio of {criterion}, {focus} / {r}\n(blue: {focus} better)")
            g.figure.suptitle(f"{focus} vs {r}: tuned, median over seeds; (x) = CIs overlap"
                              + ("; black line = theory boundary" if boundary else "")
                              + (f" [{suffix[1:]}]" if suffix else ""), fontsize=9, y=1.04)
            paths.append(_save(g.figure, path.with_name(f"{path.stem}_{r}{suffix}{path.suffix}")))
    return paths


def sensitivity_grid(sens: pd.DataFrame, summary: pd.DataFrame, cells: pd.DataFrame, x: str | None, y: str | None,
                     optimizers: list[str], path: Path, criterion: str, extra: list[str] | None = None) -> list[Path]:
    """Median criterion (and its CI) against the learning rate, per cell (a grid of panels over the
    swept axes, one figure per value of a third axis) and optimizer; the tuned point is circled. Other tuned hyperparameters are held at their
    chosen values. Missing points: median +inf (diverged or missed the target)."""
    if "h_lr" not in sens:
        return []
    extra = extra or []
    tuned_other = [c for c in tuned_columns(sens) if c != "h_lr"]
    s = sens.merge(summary[["cell_id", "optimizer", *tuned_other]], on=["cell_id", "optimizer", *tuned_other]) if tuned_other else sens
    s = _with_cells(s, cells)
    s = s[np.isfinite(s["median"].astype(float))]
    best = _with_cells(summary, cells)
    pal = palette(optimizers)
    paths = []
    facet_rows = [("", s)] if not extra else [(f"_{extra[0]}={_fmt(k)}" + suffix, g2) for suffix, g in _facets(s, extra)
                                            for k, g2 in g.groupby(f"p_{extra[0]}", sort=True)]
    for suffix, sub in facet_rows:
        xs = sorted(sub[f"p_{x}"].unique()) if x else [None]
        ys = sorted(sub[f"p_{y}"].unique(), reverse=True) if y else [None]
        fig, axes = plt.subplots(len(ys), len(xs), figsize=(0.6 + 1.75 * len(xs), 0.6 + 1.45 * len(ys)), sharex=True, sharey=True,
                                 squeeze=False)
        # fixed limits (the axes are shared): autoscaling dozens of panels dominated the analysis time
        lo = sub["ci_low"].astype(float).where(lambda v: v > 0).min()
        hi = sub["ci_high"].astype(float).replace(np.inf, np.nan).max()
        for ax in axes.flat:
            ax.set_autoscale_on(False)
        if np.isfinite(lo) and np.isfinite(hi) and hi > 0:
            axes[0, 0].set_ylim(lo / 1.5, hi * 1.5)
        axes[0, 0].set_xlim(sub["h_lr"].min() / 1.5, sub["h_lr"].max() * 1.5)
        for i, yv in enumerate(ys):
            for j, xv in enumerate(xs):
                ax = axes[i, j]
                d0 = sub
                if x:
                    d0 = d0[d0[f"p_{x}"] == xv]
                if y:
                    d0 = d0[d0[f"p_{y}"] == yv]
                for o in optimizers:
                    d = d0[d0["optimizer"] == o].sort_values("h_lr")
                    if d.empty:
                        continue
                    top = d["median"].max() * 1e3
                    ax.fill_between(d["h_lr"], d["ci_low"].clip(upper=top), d["ci_high"].clip(upper=top), color=pal[o], alpha=0.18, lw=0)
                    ax.plot(d["h_lr"], d["median"], marker=".", ms=3, lw=1, color=pal[o])
                    b = best[(best["cell_id"] == d["cell_id"].iloc[0]) & (best["optimizer"] == o)]
                    if len(b) and np.isfinite(b["median"].iloc[0]):
                        ax.plot(b["h_lr"], b["median"], "o", mfc="none", mec=pal[o], ms=6, mew=1.2)
                _loglog(ax)
                ax.tick_params(labelsize=6)
                if i == 0 and x:
                    ax.set_title(f"{x} = {_fmt(xv)}", fontsize=7)
                if j == len(xs) - 1 and y:
                    ax.annotate(f"{y} = {_fmt(yv)}", (1.04, 0.5), xycoords="axes fraction", rotation=-90, va="center", fontsize=7)
                if i == len(ys) - 1:
                    ax.set_xlabel("lr", fontsize=8)
                if j == 0:
                    ax.set_ylabel(criterion, fontsize=8)
        fig.subplots_adjust(hspace=0.25, wspace=0.12, left=0.08, right=0.93, bottom=0.08, top=0.9)
        handles = [Line2D([], [], color=pal[o], marker=".", label=o) for o in optimizers]
        handles.append(Line2D([], [], ls="", marker="o", mfc="none", mec="black", label="tuned lr"))
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.94, 0.9), fontsize=8, frameon=False)
        fig.suptitle(f"lr sensitivity: median {criterion} over seeds (band: bootstrap CI)" + (f" [{suffix[1:]}]" if suffix else ""),
                     fontsize=10)
        paths.append(_save(fig, path.with_name(path.stem + suffix + path.suffix)))
    return paths


def _with_cells(df: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the cells' p_* columns (those it lacks)."""
    return df.merge(cells[["cell_id", *[c for c in cells.columns if c not in df]]], on="cell_id")


def _cell_title(cells: pd.DataFrame, cell_id, swept: list[str]) -> str:
    r = cells.set_index("cell_id").loc[cell_id]
    return f"cell {cell_id}: " + ", ".join(f"{a}={_fmt(r[f'p_{a}'])}" for a in swept)


def curves_figure(curves: pd.DataFrame, chosen: pd.DataFrame, cells: pd.DataFrame, cell_ids: list, swept: list[str],
                  optimizers: list[str], path: Path, metric: str = "gap") -> Path | None:
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
        _loglog(ax)
        ax.set_title(_cell_title(cells, cid, swept), fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylabel("gap f - f*" if metric == "gap" else metric)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7, frameon=False)
    fig.suptitle(f"{metric} of the tuned runs: median over seeds, band = min..max", fontsize=9)
    fig.subplots_adjust(hspace=0.5, wspace=0.35)
    return _save(fig, path)


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
    return _save(fig, path)


def rates_figure(curves: pd.DataFrame, fits: pd.DataFrame, table: pd.DataFrame, cells: pd.DataFrame, cell_id,
                 swept: list[str], optimizers: list[str], path: Path, metric: str) -> Path | None:
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
            ax.plot(tt, 10 ** b * tt ** s, "--", color=pal[o], lw=2, alpha=0.8, label=f"{o} fit: {s:+.2f}")
        w = e[(e.index >= lo) & (e.index <= hi)]
        if anchor is None and len(w) and w.iloc[0] > 0:
            anchor = float(w.iloc[0])
    if anchor is not None:
        tt = np.geomspace(lo, hi, 20)
        for k, s in enumerate(REFERENCE_SLOPES):
            ax.plot(tt, anchor * (tt / lo) ** s, ":", color="0.35", lw=1)
            ax.annotate(f"{s:+.2f}", (tt[-1], anchor * (tt[-1] / lo) ** s), fontsize=6, color="0.3", xytext=(2, 0), textcoords="offset points")
    ax.axvspan(lo, hi, color="0.9", zorder=0)
    _loglog(ax)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(_cell_title(cells, cell_id, swept) + "\nshaded: fit window; dotted: reference slopes (seeds 000/003)", fontsize=8)
    ax.legend(fontsize=6.5, frameon=False, ncol=2)

    t = _with_cells(table, cells).sort_values("cell_id")
    xs = {cid: i for i, cid in enumerate(sorted(t["cell_id"].unique()))}
    off = {o: (i - (len(optimizers) - 1) / 2) * 0.22 for i, o in enumerate(optimizers)}
    for o in optimizers:
        d = t[t["optimizer"] == o]
        if d.empty:
            continue
        xx = np.array([xs[c] for c in d["cell_id"]]) + off[o]
        yerr = np.vstack([(d["slope"] - d["slope_ci_low"]).clip(lower=0), (d["slope_ci_high"] - d["slope"]).clip(lower=0)])
        bx.errorbar(xx, d["slope"], yerr=np.nan_to_num(yerr), fmt="o", ms=3, color=pal[o], elinewidth=0.8, label=o)
    for s in REFERENCE_SLOPES:
        bx.axhline(s, color="0.4", ls=":", lw=1)
        bx.annotate(f"{s:+.2f}", (1.0, s), xycoords=("axes fraction", "data"), fontsize=6, color="0.3", xytext=(2, 0), textcoords="offset points")
    bx.set_xlabel("cell_id")
    bx.set_ylabel(f"fitted exponent of {metric} vs step")
    bx.set_title("exponent per cell: median over seeds, bootstrap CI", fontsize=8)
    if len(xs) <= 16:
        bx.set_xticks(list(xs.values()), [str(k) for k in xs])
    bx.legend(fontsize=7, frameon=False)
    fig.subplots_adjust(wspace=0.3)
    return _save(fig, path)


def modes_figure(curves: pd.DataFrame, chosen: pd.DataFrame, runs: pd.DataFrame, cells: pd.DataFrame, cell_id, swept: list[str],
                 optimizers: list[str], path: Path) -> Path | None:
    """Per-mode decay rate (1 / e-folding step) against the component weight j^-alpha, median
    over seeds, with the problem's predicted slopes (analysis.theory.MODE_THEORIES: Phases of
    Muon's 1/2 vs 1 on power_law_lsq, associative memory's 0 vs 1)."""
    th = mode_theory(str(runs["problem"].iloc[0]) if "problem" in runs else "power_law_lsq")
    mc = mode_columns(curves)
    if not mc:
        return None
    modes, cols = [j for j, _ in mc], [c for _, c in mc]
    alpha = float(cells.set_index("cell_id").loc[cell_id, "p_alpha"])
    lam = mode_eigenvalues(modes, alpha)
    pal = palette(optimizers)
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    sel = chosen[(chosen["cell_id"] == cell_id) & (chosen["status"] == "ok")]
    anchor = None
    for o in optimizers:
        rids = sel[sel["optimizer"] == o]["run_id"]
        if rids.empty:
            continue
        rates = np.array([mode_decay_rates(curves[curves["run_id"] == r].sort_values("step"), cols) for r in rids])
        with np.errstate(all="ignore"):
            med = np.nanmedian(rates, axis=0) if np.isfinite(rates).any() else np.full(len(cols), np.nan)
        ok = np.isfinite(med)
        if not ok.any():
            continue
        q, b, _ = loglog_fit(lam, med)
        ax.plot(lam[ok], med[ok], "o", ms=3.5, color=pal[o], label=f"{o}: fitted slope {q:.2f}" if np.isfinite(q) else o)
        if anchor is None:
            anchor = (lam[ok][0], med[ok][0])
    if anchor is not None:
        ll = np.geomspace(lam.min(), lam.max(), 20)
        for s, lab in th.lines:
            ax.plot(ll, anchor[1] * (ll / anchor[0]) ** s, ":" if s == 1 else "--", color="0.3", lw=1, label=f"predicted slope {lab}")
    _loglog(ax)
    ax.set_xlabel(th.axis)
    ax.set_ylabel("mode decay rate 1/t_j (e-folding)")
    ax.set_title(_cell_title(cells, cell_id, swept) + "\n" + th.source.split(":")[0] + ": per-mode decay", fontsize=8)
    ax.legend(fontsize=6.5, frameon=False)
    return _save(fig, path)
