"""What every figure shares: the Agg backend, one colour per optimizer, line styles by
optimizer kind, log axes, number formatting, cell titles and saving (analysis/heatmaps.py and
analysis/lines.py draw with these)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

__all__ = [
    "DPI",
    "NONE_COLOUR",
    "TIE_COLOUR",
    "cell_title",
    "fmt",
    "linestyles",
    "loglog",
    "palette",
    "plt",
    "save",
    "sns",
    "with_cells",
]

TIE_COLOUR = "#bdbdbd"
NONE_COLOUR = "#ffffff"
DPI = 120


def loglog(ax, minor: bool = False) -> None:
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


def save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def fmt(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return f"{float(v):.3g}"
    return str(v)


def palette(optimizers: list[str]) -> dict[str, tuple]:
    """One fixed colour per optimizer, the same in every figure."""
    return dict(zip(optimizers, sns.color_palette("colorblind", max(len(optimizers), 3))))


LINESTYLES = ("-", "--", ":", "-.")


def linestyles(labels: list[str], kinds: dict[str, str]) -> dict[str, str]:
    """One line style per optimizer kind (exact registry name, in order of first appearance), so
    that the labels of one kind (e.g. its schedules) share a style and two kinds never do."""
    order = list(dict.fromkeys(kinds.get(lab, lab) for lab in labels))
    return {lab: LINESTYLES[order.index(kinds.get(lab, lab)) % len(LINESTYLES)] for lab in labels}


def with_cells(df: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the cells' p_* columns (those it lacks)."""
    return df.merge(cells[["cell_id", *[c for c in cells.columns if c not in df]]], on="cell_id")


def cell_title(cells: pd.DataFrame, cell_id, swept: list[str]) -> str:
    r = cells.set_index("cell_id").loc[cell_id]
    return f"cell {cell_id}: " + ", ".join(f"{a}={fmt(r[f'p_{a}'])}" for a in swept)
