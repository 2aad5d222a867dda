"""The horizon-scan figure of the bound rules: the tuned quantity against the horizon T, log-log,
one panel per cell, each optimizer in its colour of every figure (figstyle.palette); error bars
are the bootstrap CIs of the tuned medians, hollow markers the horizons whose tuned lr sat at the
edge of the grid (left out of the fit by default); the fitted line over its fit range, the band
between the lines of the CI's two slopes through the fit's centre, and the bound's reference
slope T^p through the same point. Takes the tables of :func:`analysis.bounds.exponents`; draws
nothing else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .figstyle import DPI, palette, plt


def _panel_keys(fits: pd.DataFrame) -> list[str]:
    return [c for c in fits.columns if c == "cell_id" or c.startswith("p_")]


def horizon_scan_figure(
    tuned: pd.DataFrame, fits: pd.DataFrame, path, bound: "float | dict | None" = None, quantity: str | None = None
) -> Path:
    """Draw the scan of ``tuned`` / ``fits`` (:func:`analysis.bounds.exponents`) to ``path``;
    ``bound`` (the exponent p of T^p, or {optimizer: p}) adds the reference slope, in the
    optimizer's colour, dashed. Returns the path."""
    keys = _panel_keys(fits)
    panels = list(fits.groupby(keys, sort=True)) if keys else [((), fits)]
    opts = list(dict.fromkeys(fits["optimizer"]))
    colours = palette(opts)  # the optimizer's colour in every figure (figstyle.colour)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.8), squeeze=False)
    for ax, (key, f) in zip(axes[0], panels):
        key = key if isinstance(key, tuple) else (key,)
        sel = np.ones(len(tuned), bool)
        for k, v in zip(keys, key):
            sel &= (tuned[k] == v).to_numpy()
        for _, r in f.iterrows():
            opt, col = r["optimizer"], colours[r["optimizer"]]
            t = tuned[sel & (tuned["optimizer"] == opt).to_numpy()].sort_values("T")
            fin = np.isfinite(t["median"].to_numpy(float))
            t = t[fin]
            err = np.vstack([t["median"] - t["ci_low"], t["ci_high"] - t["median"]]).clip(0)
            edge = t["lr_at_edge"].to_numpy(bool)
            ax.errorbar(t["T"], t["median"], yerr=err, fmt="none", ecolor=col, alpha=0.6, lw=1)
            ax.plot(t["T"][~edge], t["median"][~edge], "o", color=col, ms=4, label=f"{opt} (tuned per T)")
            if edge.any():
                ax.plot(
                    t["T"][edge], t["median"][edge], "o", mfc="none", color=col, ms=5, label=f"{opt}: lr at grid edge"
                )
            if not np.isfinite(r["slope"]):
                continue
            lo, hi = float(r["fit_lo"]), float(r["fit_hi"])
            x = np.geomspace(lo, hi, 50)
            xc = np.sqrt(lo * hi)
            yc = 10 ** (r["intercept"] + r["slope"] * np.log10(xc))
            ax.plot(
                x,
                yc * (x / xc) ** r["slope"],
                "-",
                color=col,
                lw=1.5,
                label=f"fit {r['slope']:+.3f} [{r['slope_ci_low']:+.3f}, {r['slope_ci_high']:+.3f}]",
            )
            if np.isfinite(r["slope_ci_low"]) and np.isfinite(r["slope_ci_high"]):
                a, b = yc * (x / xc) ** r["slope_ci_low"], yc * (x / xc) ** r["slope_ci_high"]
                ax.fill_between(x, np.minimum(a, b), np.maximum(a, b), color=col, alpha=0.15, lw=0)
            p = bound.get(opt) if isinstance(bound, dict) else bound
            if p is not None:
                ax.plot(x, yc * (x / xc) ** p, "--", color=col, lw=1, label=f"{opt} bound T^{p:+.3g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("horizon T (steps)")
        ax.set_title(", ".join(f"{k.removeprefix('p_')} = {v}" for k, v in zip(keys, key)), fontsize=9)
        ax.legend(fontsize=6, frameon=False)
    q = quantity or (fits["quantity"].iloc[0] if "quantity" in fits and len(fits) else "Q")
    axes[0][0].set_ylabel(f"tuned {q} (median over seeds)")
    path = Path(path)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path
