"""Seaborn figures of the phase table over the two swept axes: the winner map and one log-ratio
heatmap per rival on a shared colour scale centred at zero."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

TIE_COLOUR = "#bdbdbd"


def _grid(phase: pd.DataFrame, x: str, y: str | None, value: str) -> pd.DataFrame:
    if y is None:
        return phase.assign(_row="")[["_row", f"p_{x}", value]].pivot(index="_row", columns=f"p_{x}", values=value)
    return phase.pivot(index=f"p_{y}", columns=f"p_{x}", values=value).sort_index(ascending=False)


def _fmt_ticks(ax, grid):
    ax.set_xticklabels([f"{v:.3g}" if isinstance(v, (int, float)) else str(v) for v in grid.columns], rotation=0)
    ax.set_yticklabels([f"{v:.3g}" if isinstance(v, (int, float)) else str(v) for v in grid.index], rotation=0)


def winner_map(phase: pd.DataFrame, x: str, y: str | None, optimizers: list[str], path: Path, title: str) -> Path:
    """Categorical map of the winner per cell; ties grey; '*' marks a winner whose best lr sat at
    the edge of its grid."""
    palette = sns.color_palette("colorblind", len(optimizers))
    code = {o: i for i, o in enumerate(optimizers)}
    ph = phase.assign(_code=[len(optimizers) if t else code[w] for w, t in zip(phase["winner"], phase["tie"])])
    ph["_label"] = [("tie" if t else w) + ("*" if e else "") for w, t, e in zip(ph["winner"], ph["tie"], ph["winner_lr_at_edge"])]
    grid = _grid(ph, x, y, "_code")
    labels = _grid(ph, x, y, "_label")
    cmap = ListedColormap([*palette, TIE_COLOUR])
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * grid.shape[1], 1.2 + 0.6 * grid.shape[0]))
    sns.heatmap(grid.astype(float), ax=ax, cmap=cmap, vmin=-0.5, vmax=len(optimizers) + 0.5, cbar=False,
                annot=labels.to_numpy(), fmt="", annot_kws={"fontsize": 7}, linewidths=0.5, linecolor="white")
    _fmt_ticks(ax, grid)
    ax.set_xlabel(x)
    ax.set_ylabel(y or "")
    handles = [Patch(color=palette[i], label=o) for o, i in code.items()] + [Patch(color=TIE_COLOUR, label="tie (CIs overlap)")]
    ax.legend(handles=handles, bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=8, frameon=False)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def ratio_maps(phase: pd.DataFrame, x: str, y: str | None, focus: str, out_dir: Path, criterion: str, suffix: str = "") -> list[Path]:
    """One heatmap per rival of log10(criterion focus / criterion rival); negative = focus better.
    All rivals share one colour scale, centred at zero."""
    cols = [c for c in phase.columns if c.startswith("log10_ratio_")]
    vals = phase[cols].to_numpy(float)
    vmax = float(np.nanmax(np.abs(vals[np.isfinite(vals)]))) if np.isfinite(vals).any() else 1.0
    vmax = max(vmax, 1e-3)
    paths = []
    for c in cols:
        rival = c.removeprefix("log10_ratio_")
        grid = _grid(phase, x, y, c)
        fig, ax = plt.subplots(figsize=(1.8 + 0.75 * grid.shape[1], 1.2 + 0.6 * grid.shape[0]))
        sns.heatmap(grid.astype(float), ax=ax, cmap="RdBu_r", center=0.0, vmin=-vmax, vmax=vmax, annot=True, fmt=".2f",
                    annot_kws={"fontsize": 7}, linewidths=0.5, linecolor="white",
                    cbar_kws={"label": f"log10({criterion} {focus} / {criterion} {rival})"})
        _fmt_ticks(ax, grid)
        ax.set_xlabel(x)
        ax.set_ylabel(y or "")
        ax.set_title(f"{focus} vs {rival}: blue = {focus} better", fontsize=9)
        fig.tight_layout()
        path = out_dir / f"phase_ratio_{rival}{suffix}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths
