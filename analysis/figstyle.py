"""What every figure shares: the Agg backend, one colour and one line style per optimizer name
(the same in every figure and every sweep), log axes, number formatting, cell titles and saving
(analysis/heatmaps.py, analysis/lines.py and analysis/bounds_figures.py draw with these)."""

from __future__ import annotations

import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

__all__ = [
    "DPI",
    "GROUP_COLOURS",
    "NONE_COLOUR",
    "TIE_COLOUR",
    "cell_title",
    "colour",
    "fmt",
    "linestyle",
    "linestyles",
    "loglog",
    "palette",
    "plt",
    "save",
    "with_cells",
]

TIE_COLOUR = "#bdbdbd"
NONE_COLOUR = "#ffffff"
DPI = 120


class InViewLogLocator(matplotlib.ticker.LogLocator):
    """matplotlib's log locator less the ticks outside the view: those are never drawn, but the
    axis makes a Tick (five artists) for each one it is given, a third of the ticks of a panel."""

    def __call__(self):
        locs = np.asarray(super().__call__(), float)
        lo, hi = sorted(np.log10(np.maximum(self.axis.get_view_interval(), np.finfo(float).tiny)))
        slack = 1e-6 * max(hi - lo, 1.0)  # wider than the axis' own closeness test: it still decides
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.log10(locs)
        return locs[(t >= lo - slack) & (t <= hi + slack)]


def loglog(ax, minor: bool = False) -> None:
    """Log-log axes, major ticks only inside the view (:class:`InViewLogLocator`); minor ticks off
    unless asked (they cost most of the drawing time on many panels), except on a y axis spanning
    under a decade, where they carry the only labels."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(InViewLogLocator(10))
    ax.yaxis.set_major_locator(InViewLogLocator(10))
    if not minor:
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        lo, hi = ax.get_ylim()
        if hi < 100 * lo:
            return
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def save(fig, path: Path, inside=()) -> Path:
    """``fig`` saved to ``path`` at :data:`DPI`, cropped to its tight bounding box, and closed.
    The box is measured here, at the saving dpi, after one run of the figure's layout engine:
    what ``savefig(bbox_inches="tight")`` computes, without the extra (undrawn) pass over every
    artist that it makes first (the same file; a third of the saving time of a many-panel figure).
    ``inside``: axes that lie within the box of the others (the inner panels of a grid, with no
    titles or tick labels), left out of its measurement, which lays out every tick of every axes."""
    fig.set_dpi(DPI)
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
        fig.set_layout_engine(None)  # laid out: keep the positions (no engine: no undrawn pass in savefig)
        if fig.get_layout_engine() is not None:  # rcParams name a default engine: a placeholder instead
            fig.set_layout_engine("none")
    shown = [ax for ax in inside if ax.get_visible()]
    for ax in shown:
        ax.set_visible(False)
    box = fig.get_tightbbox(fig.canvas.get_renderer()).padded(matplotlib.rcParams["savefig.pad_inches"])
    for ax in shown:
        ax.set_visible(True)
    fig.savefig(path, dpi=DPI, bbox_inches=box)
    plt.close(fig)
    return path


def fmt(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return f"{float(v):.3g}"
    return str(v)


# One colour per optimizer, keyed by its name (registry name or label) and nothing else, so that a
# method has the same colour in every figure of every sweep whatever else the sweep holds. The
# registered optimizers have fixed colours (Okabe-Ito and Tol's muted palettes; one hue family per
# optimizer family); any other name (a label such as ``gd_tuned``, or an optimizer registered later)
# takes a colour of EXTRA_COLOURS picked by a CRC-32 of the name (stable across processes, unlike
# ``hash``) and a dashed or dotted line style (:func:`linestyle`). Two such names can share a
# colour (1 in 12); their line styles then differ with probability 2/3. A new optimizer adds its
# name to COLOURS (tests/analysis/test_figures.py checks the registry against it).
COLOURS = {
    "gd": "#0072B2",
    "sgd": "#56B4E9",
    "normalized_gd": "#332288",
    "storm": "#88CCEE",
    "muon": "#D55E00",
    "spectral_sd": "#CC6677",
    "ef_muon": "#882255",
    "muon_mvr1": "#E69F00",
    "muon_mvr2": "#AA4499",
    "signsgd": "#009E73",
    "signum": "#117733",
    "lion": "#44AA99",
    "adam": "#CC79A7",
    "gluon": "#999933",
    "gluon_mvr1": "#DDCC77",
    "gluon_mvr2": "#8C564B",
    "muon_mvr3": "#762A83",
    "normuon": "#B2182B",
    "adamuon": "#F4A582",
    "dion": "#4D9221",
    "shampoo": "#01665E",
    "soap": "#8073AC",
}
EXTRA_COLOURS = (
    "#E41A1C",
    "#6A3D9A",
    "#B15928",
    "#1B9E77",
    "#FB9A99",
    "#525252",
    "#A6D854",
    "#FDBF6F",
    "#CAB2D6",
    "#80B1D3",
    "#F781BF",
    "#66A61E",
)
LINESTYLES = ("-", "--", ":", "-.")
# Colours of groups that are not optimizers (e.g. the values of a parameter), in order, cycling:
# seaborn's "colorblind" palette, stated here so that drawing needs no seaborn import.
GROUP_COLOURS = (
    "#0173B2",
    "#DE8F05",
    "#029E73",
    "#D55E00",
    "#CC78BC",
    "#CA9161",
    "#FBAFE4",
    "#949494",
    "#ECE133",
    "#56B4E9",
)


def _crc(name: str, salt: str = "") -> int:
    return zlib.crc32(f"{salt}{name}".encode())


def colour(name: str) -> str:
    """The colour of the optimizer ``name`` (a registry name or a label): :data:`COLOURS`, else a
    stable pick from :data:`EXTRA_COLOURS`."""
    return COLOURS.get(name) or EXTRA_COLOURS[_crc(name) % len(EXTRA_COLOURS)]


def palette(optimizers: list[str]) -> dict[str, str]:
    """{name: colour} for the optimizers of a figure (:func:`colour`: the same in every figure)."""
    return {o: colour(o) for o in optimizers}


def linestyle(name: str) -> str:
    """Solid for a registered optimizer's own name (:data:`COLOURS`); any other label (a configured
    variant such as ``gd_tuned``) one of the dashed / dotted styles, picked by a CRC-32 of the name."""
    if name in COLOURS:
        return LINESTYLES[0]
    return LINESTYLES[1 + _crc(name, "style:") % (len(LINESTYLES) - 1)]


def linestyles(labels: list[str]) -> dict[str, str]:
    """{label: :func:`linestyle`} for the labels of a figure."""
    return {lab: linestyle(lab) for lab in labels}


def with_cells(df: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the cells' p_* columns (those it lacks)."""
    return df.merge(cells[["cell_id", *[c for c in cells.columns if c not in df]]], on="cell_id")


def cell_title(cells: pd.DataFrame, cell_id, swept: list[str]) -> str:
    r = cells.set_index("cell_id").loc[cell_id]
    return f"cell {cell_id}: " + ", ".join(f"{a}={fmt(r[f'p_{a}'])}" for a in swept)
