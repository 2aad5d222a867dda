"""Heatmaps over the swept problem axes: the winner map (categorical colours, ties grey and
hatched, '*' where the winner's tuned lr sat at the edge of its grid, a small triangle where any
method's did), the log-ratio maps of the focus method to each rival
(one colour scale centred at zero shared by every rival), and the lr-sensitivity grid of panels
over the two swept axes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap, TwoSlopeNorm
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from .figstyle import NONE_COLOUR, TIE_COLOUR, fmt, linestyles, loglog, palette, plt, save, with_cells
from .floor import clip
from .phase import NONE, rivals
from .tune import tuned_columns


def _pivot(df: pd.DataFrame, x: str, y: str | None, value: str) -> pd.DataFrame:
    if y is None:
        return df.assign(_row="")[["_row", f"p_{x}", value]].pivot(index="_row", columns=f"p_{x}", values=value)
    return df.pivot(index=f"p_{y}", columns=f"p_{x}", values=value).sort_index(ascending=False)


def _ticks(ax, grid: pd.DataFrame, x: str, y: str | None) -> None:
    ax.set_xticks(np.arange(grid.shape[1]) + 0.5, [fmt(v) for v in grid.columns], rotation=0)
    if y is None:
        ax.set_yticks([])
    else:
        ax.set_yticks(np.arange(grid.shape[0]) + 0.5, [fmt(v) for v in grid.index], rotation=0, va="center")
    ax.set_xlabel(x)
    ax.set_ylabel(y or "")


def _facet_col(df: pd.DataFrame, name: str | None, descending: bool = False) -> tuple[str | None, list | None]:
    """Add a column ``_f_<name>`` with readable facet titles ('alpha = 0.333'); return it and its order."""
    if name is None:
        return None, None
    vals = sorted(df[f"p_{name}"].unique(), reverse=descending)
    lab = {v: f"{name} = {fmt(v)}" for v in vals}
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
        out.append(("".join(f"_{e}={fmt(v)}" for e, v in zip(extra[1:], key)), sub))
    return out


def _heatmap(ax, grid: pd.DataFrame, labels: np.ndarray, fontsize: float, cmap, **scale) -> None:
    """``grid`` as seaborn's heatmap draws it, in one QuadMesh: rows top-down, white cell borders,
    no spines, NaN cells left blank; ``labels`` written in every drawn cell, dark on a light colour
    and white on a dark one (seaborn's rule: W3C relative luminance > 0.408). ``scale``: ``norm``
    or ``vmin`` / ``vmax``. (seaborn also draws the whole figure once per heatmap, to check
    tick-label overlaps that :func:`_ticks` then overrides.)"""
    v = grid.to_numpy(float)
    values = np.ma.masked_where(np.isnan(v), v)
    mesh = ax.pcolormesh(values, cmap=cmap, linewidths=0.5, edgecolor="white", **scale)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set(xlim=(0, v.shape[1]), ylim=(0, v.shape[0]))
    ax.invert_yaxis()
    mesh.update_scalarmappable()
    rgb = np.asarray(mesh.get_facecolors(), float)[:, :3]
    lum = np.where(rgb <= 0.03928, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4) @ [0.2126, 0.7152, 0.0722]
    for r, c in zip(*np.nonzero(~np.isnan(v))):
        ink = ".15" if lum[r * v.shape[1] + c] > 0.408 else "w"  # the mesh's colours are row-major
        ax.text(c + 0.5, r + 0.5, str(labels[r, c]), color=ink, ha="center", va="center", fontsize=fontsize)


def _facet_grid(sub: pd.DataFrame, col: str | None, order: list | None, height: float, aspect: float):
    """(figure, axes (1 x n), [(axes, rows)] of the panels with rows): one panel per value of
    ``col`` in ``order`` (one panel when None), ``height`` inches tall and ``aspect`` times as wide,
    titled by the value, as seaborn's FacetGrid lays them out; the caller draws, then lays out
    with ``figure.tight_layout()``."""
    names = order if col else [None]
    fig = plt.figure(figsize=(len(names) * height * aspect, height))
    axes = fig.subplots(1, len(names), squeeze=False)
    panels = []
    for ax, name in zip(axes[0], names):
        if col:
            ax.set_title(name, size=matplotlib.rcParams["axes.labelsize"])
        rows = sub if col is None else sub[sub[col] == name]
        if len(rows):
            panels.append((ax, rows))
    return fig, axes, panels


def _key(k) -> tuple:
    return k if isinstance(k, tuple) else (k,)


def _groups(df: pd.DataFrame, keys: list[str]):
    """(key tuple, rows) of ``df`` for each value of ``keys`` (the rows as ``df[df[k] == v]`` selects them)."""
    return ((_key(k), g) for k, g in df.groupby(keys, sort=False))


def _firsts(df: pd.DataFrame, keys: list[str], col: str):
    """(key tuple, ``col`` of the group's first row in ``df``'s order) per value of ``keys`` (one
    group, key (), without keys)."""
    if not keys:
        return [((), df[col].iat[0])] if len(df) else []
    return [(_key(k), df[col].iat[idx[0]]) for k, idx in df.groupby(keys, sort=False).indices.items()]


def winner_map(
    phase: pd.DataFrame,
    x: str,
    y: str | None,
    optimizers: list[str],
    path: Path,
    title: str,
    extra: list[str] | None = None,
) -> list[Path]:
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
        for w, t, tw, e in zip(ph["winner"], ph["tie"], ph["tied_with"].fillna(""), ph["winner_lr_at_edge"])
    ]
    ph["_edge"] = ph["lr_at_edge_methods"].fillna("").astype(str).str.len() > 0
    row, order = _facet_col(ph, extra[0] if extra else None)
    paths = []
    for suffix, sub in _facets(ph, extra):
        ncol = sub[f"p_{x}"].nunique()
        nrow = sub[f"p_{y}"].nunique() if y else 1

        h = 0.62 * nrow + 1.0
        fig, _, panels = _facet_grid(sub, row, order, h, max(0.8, (0.85 * ncol + 0.6) / h))
        for ax, data in panels:
            grid = _pivot(data, x, y, "_code").astype(float)
            labels = _pivot(data, x, y, "_label")
            _heatmap(ax, grid, labels.to_numpy(), 6, cmap, vmin=-0.5, vmax=len(cats) - 0.5)
            tie = _pivot(data, x, y, "_code").to_numpy() == code["tie"]
            edge = _pivot(data, x, y, "_edge").to_numpy().astype(bool)
            for r, c in zip(*np.nonzero(tie)):
                ax.add_patch(Rectangle((c, r), 1, 1, fill=False, hatch="////", edgecolor="#7a7a7a", lw=0))
            for r, c in zip(*np.nonzero(edge)):
                ax.add_patch(plt.Polygon([[c + 1, r], [c + 0.82, r], [c + 1, r + 0.18]], color="black"))
            _ticks(ax, grid, x, y)
        fig.tight_layout()
        handles = [Patch(color=pal[o], label=o) for o in optimizers]
        handles += [
            Patch(facecolor=TIE_COLOUR, hatch="////", edgecolor="#7a7a7a", label="tie (CIs overlap)"),
            Line2D([], [], marker="$*$", ls="", color="black", label="winner's lr at grid edge"),
            Line2D([], [], marker=">", ls="", color="black", markersize=5, label="some method's lr at grid edge"),
        ]
        if (ph["winner"] == NONE).any():
            handles.append(Patch(facecolor=NONE_COLOUR, edgecolor="black", label="all methods failed"))
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.95), fontsize=7, frameon=False)
        fig.suptitle(title + (f" [{suffix[1:]}]" if suffix else ""), fontsize=9, y=1.03)
        paths.append(save(fig, path.with_name(path.stem + suffix + path.suffix)))
    return paths


def ratio_maps(
    phase: pd.DataFrame,
    x: str,
    y: str | None,
    focus: str,
    path: Path,
    criterion: str,
    extra: list[str] | None = None,
    order: list[str] | None = None,
    floor_text: str = "",
) -> list[Path]:
    """One figure per rival, ``<path stem>_<rival>.png``: log10(criterion of focus / criterion of
    rival) per cell, panels over a third swept axis (FacetGrid), and one colour scale centred at
    zero shared by every rival's figure; values in parentheses are pairwise ties (CIs overlap).
    Negative (blue) = focus better. Where phase.csv's ``at_floor`` lists a method (its median at
    the cell's stated floor, analysis/floor.py) the ratio is a bound: the sign <= when the focus is
    at the floor, >= when the rival is, '=' (no difference resolved) when both are; ``floor_text``
    states the floor in the title."""
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
    paths = []
    for r in rv:
        d = phase.copy()
        d["_value"] = d[f"log10_ratio_{r}"].astype(float)
        tie = d[f"vs_{r}"] == "tie" if f"vs_{r}" in d else pd.Series(False, index=d.index)
        floored = d["at_floor"].fillna("").astype(str).str.split() if "at_floor" in d else [[]] * len(d)
        d["_label"] = [
            _bound(focus in fl, r in fl) + (f"({v:.2f})" if t else f"{v:.2f}")
            if np.isfinite(v)
            else ("+inf" if v > 0 else "-inf" if v < 0 else "")
            for v, t, fl in zip(d["_value"], tie, floored)
        ]
        col, order_ = _facet_col(d, extra[0] if extra else None)
        for suffix, sub in _facets(d, extra):
            ncol = sub[f"p_{x}"].nunique()
            nrow = sub[f"p_{y}"].nunique() if y else 1

            h = max(2.4, 0.55 * nrow + 1.0)
            fig, axes, panels = _facet_grid(sub, col, order_, h, max(0.8, (0.7 * ncol + 0.5) / h))
            for ax, data in panels:
                grid = _pivot(data, x, y, "_value").astype(float)
                labels = _pivot(data, x, y, "_label").to_numpy()
                _heatmap(ax, grid.clip(-vmax, vmax), labels, 6.5, "RdBu_r", norm=norm)
                _ticks(ax, grid, x, y)
            fig.tight_layout()
            for ax in axes[:, 1:].ravel():
                ax.set_ylabel("")
            fig.subplots_adjust(right=0.8)
            cax = fig.add_axes([0.86, 0.15, 0.025, 0.7])
            fig.colorbar(
                plt.cm.ScalarMappable(norm=norm, cmap="RdBu_r"),
                cax=cax,
                label=f"log10 ratio of {criterion}, {focus} / {r}\n(blue: {focus} better)",
            )
            head = f"{focus} vs {r}: tuned, median over seeds; (x) = CIs overlap" + (
                f" [{suffix[1:]}]" if suffix else ""
            )
            if floor_text:
                head += f"; \u2264 / \u2265: {focus} / {r} at the floor ({floor_text})"
            width = max(40, int(fig.get_figwidth() * 11))  # characters per title line
            head = textwrap.fill(head, width)
            fig.suptitle(head, fontsize=8, y=1.04 + 0.035 * head.count("\n"))
            paths.append(save(fig, path.with_name(f"{path.stem}_{r}{suffix}{path.suffix}")))
    return paths


def _bound(focus_floored: bool, rival_floored: bool) -> str:
    """The prefix of a ratio whose median is at the floor: the true ratio is at most (focus there)
    or at least (rival there) the one shown; '=' both there (no difference resolved)."""
    if focus_floored and rival_floored:
        return "="
    return "\u2264" if focus_floored else "\u2265" if rival_floored else ""


def sensitivity_grid(
    sens: pd.DataFrame,
    summary: pd.DataFrame,
    cells: pd.DataFrame,
    x: str | None,
    y: str | None,
    optimizers: list[str],
    path: Path,
    criterion: str,
    extra: list[str] | None = None,
    floors: pd.Series | None = None,
    floor_text: str = "",
) -> list[Path]:
    """Median criterion (and its CI) against the learning rate, per cell (a grid of panels over the
    swept axes, one figure per value of a third axis) and optimizer; the tuned point is circled. Other tuned
    hyperparameters are held at their
    chosen values. Missing points: median +inf (diverged or missed the target). Values below the
    cell's floor (``floors``, analysis/floor.py) are drawn at it, the floor dotted (``floor_text``
    in the title), so a method that reaches zero stays on the log axes."""
    if "h_lr" not in sens:
        return []
    extra = extra or []
    tuned_other = [c for c in tuned_columns(sens) if c != "h_lr"]
    s = (
        sens.merge(summary[["cell_id", "optimizer", *tuned_other]], on=["cell_id", "optimizer", *tuned_other])
        if tuned_other
        else sens
    )
    s = clip(with_cells(s, cells), floors)
    s = s[np.isfinite(s["median"].astype(float))]
    best_of = {  # (cell, method) -> (tuned lr, its median)
        k: (g["h_lr"].to_numpy(float), g["median"].to_numpy(float))
        for k, g in _groups(clip(with_cells(summary, cells), floors), ["cell_id", "optimizer"])
    }
    pal, sty = palette(optimizers), linestyles(optimizers)
    paths = []
    facet_rows = (
        [("", s)]
        if not extra
        else [
            (f"_{extra[0]}={fmt(k)}" + suffix, g2)
            for suffix, g in _facets(s, extra)
            for k, g2 in g.groupby(f"p_{extra[0]}", sort=True)
        ]
    )
    for suffix, sub in facet_rows:
        xs = sorted(sub[f"p_{x}"].unique()) if x else [None]
        ys = sorted(sub[f"p_{y}"].unique(), reverse=True) if y else [None]
        fig, axes = plt.subplots(len(ys), len(xs), figsize=(0.6 + 1.75 * len(xs), 0.6 + 1.45 * len(ys)), squeeze=False)
        # every panel gets the same fixed limits and log scales, tick labels on the outer panels
        # only: shared axes draw the same, but each of their draws visits every sibling (49^2 on
        # the demo's grid), and autoscaling dozens of panels dominated the analysis time
        lo = sub["ci_low"].astype(float).where(lambda v: v > 0).min()
        hi = sub["ci_high"].astype(float).replace(np.inf, np.nan).max()
        for ax in axes.flat:
            ax.set_autoscale_on(False)
            if np.isfinite(lo) and np.isfinite(hi) and hi > 0:
                ax.set_ylim(lo / 1.5, hi * 1.5)
            ax.set_xlim(sub["h_lr"].min() / 1.5, sub["h_lr"].max() * 1.5)
            loglog(ax)
            ax.label_outer()
        keys = [f"p_{a}" for a in (x, y) if a]
        cell_of = {k: cid for k, cid in _firsts(sub, keys, "cell_id")}  # a panel's cell: its first row's
        srt = sub.sort_values("h_lr", kind="stable")  # each (panel, method) curve in lr order
        lr, med, band_lo, band_hi = (srt[c].to_numpy(float) for c in ("h_lr", "median", "ci_low", "ci_high"))
        curves = {_key(k): idx for k, idx in srt.groupby([*keys, "optimizer"], sort=False).indices.items()}
        for i, yv in enumerate(ys):
            for j, xv in enumerate(xs):
                ax = axes[i, j]
                at = tuple(v for v, a in ((xv, x), (yv, y)) if a)
                for o in optimizers:
                    idx = curves.get((*at, o))
                    if idx is None:
                        continue
                    top = med[idx].max() * 1e3
                    ax.fill_between(
                        lr[idx],
                        np.minimum(band_lo[idx], top),
                        np.minimum(band_hi[idx], top),
                        color=pal[o],
                        alpha=0.18,
                        lw=0,
                    )
                    ax.plot(lr[idx], med[idx], sty[o], marker=".", ms=3, lw=1, color=pal[o])
                    b = best_of.get((srt["cell_id"].iat[idx[0]], o))
                    if b is not None and np.isfinite(b[1][0]):
                        ax.plot(*b, "o", mfc="none", mec=pal[o], ms=6, mew=1.2)
                cid = cell_of.get(at)
                if floor_text and floors is not None and cid is not None and floors.get(cid, 0) > 0:
                    ax.axhline(floors[cid], color="k", lw=0.7, ls=":")
                ax.tick_params(labelsize=6)
                if i == 0 and x:
                    ax.set_title(f"{x} = {fmt(xv)}", fontsize=7)
                if j == len(xs) - 1 and y:
                    ax.annotate(
                        f"{y} = {fmt(yv)}", (1.04, 0.5), xycoords="axes fraction", rotation=-90, va="center", fontsize=7
                    )
                if i == len(ys) - 1:
                    ax.set_xlabel("lr", fontsize=8)
                if j == 0:
                    ax.set_ylabel(criterion, fontsize=8)
        title = f"lr sensitivity: median {criterion} over seeds (band: bootstrap CI)" + (
            f" [{suffix[1:]}]" if suffix else ""
        )
        if floor_text:
            title += "\n" + textwrap.fill(floor_text, max(50, int(fig.get_figwidth() * 13)))
        # room above the panels' titles for every line of the figure title (inches -> fraction)
        height = fig.get_figheight()
        top = 1 - (0.3 + 0.2 * (title.count("\n") + 1)) / height
        fig.subplots_adjust(hspace=0.25, wspace=0.12, left=0.08, right=0.93, bottom=0.08, top=top)
        handles = [Line2D([], [], color=pal[o], ls=sty[o], marker=".", label=o) for o in optimizers]
        handles.append(Line2D([], [], ls="", marker="o", mfc="none", mec="black", label="tuned lr"))
        if floor_text:
            handles.append(Line2D([], [], ls=":", color="black", lw=0.7, label="floor"))
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.98, top), fontsize=8, frameon=False)
        fig.suptitle(title, fontsize=9, y=1 - 0.05 / height, va="top")
        paths.append(save(fig, path.with_name(path.stem + suffix + path.suffix), inside=axes[1:-1, 1:-1].ravel()))
    return paths
