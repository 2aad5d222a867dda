"""The faster drawing paths (issue 15) draw what the slower ones drew: figstyle.save writes the file
of savefig(bbox_inches="tight"), the in-view log locator keeps every tick matplotlib's own draws,
the seaborn-free heatmap carries every cell's value and colour, the unshared lr-sensitivity
panels share their limits and scales, and the paused garbage collector is restored and frees
the closed figures; the figure drawn in a forked process is the one drawn here.

The references are matplotlib's and seaborn's own results (seaborn is installed for the lab),
not the code under test."""

from __future__ import annotations

import gc
import os
import threading
import sys
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import QuadMesh
from matplotlib.colors import ListedColormap, TwoSlopeNorm
from matplotlib.ticker import NullLocator
from PIL import Image

from analysis import figstyle, forked, heatmaps
from analysis.gcpause import young_gc
from analysis.pipeline import run

sys.path.insert(0, str(Path(__file__).parent))
from test_figures import CELLS, write_sweep, zero_gap  # noqa: E402

plt = figstyle.plt


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGBA"))


def test_save_leaving_out_inner_grid_panels_writes_the_same_image(tmp_path):
    def grid():
        fig, axes = plt.subplots(4, 4, figsize=(7, 6))
        for ax in axes.flat:
            ax.plot([1, 10, 100], [3.0, 1.0, 2.0])
            figstyle.loglog(ax)
            ax.label_outer()
        for j in range(4):
            axes[0, j].set_title(f"x = {j}")
            axes[j, -1].annotate(f"y = {j}", (1.04, 0.5), xycoords="axes fraction", rotation=-90, va="center")
        fig.legend(handles=axes[0, 0].get_lines(), labels=["a"], loc="upper left", bbox_to_anchor=(0.98, 0.9))
        return fig, axes

    ref, _ = grid()
    ref.savefig(tmp_path / "ref.png", dpi=figstyle.DPI, bbox_inches="tight")
    plt.close(ref)
    fig, axes = grid()
    figstyle.save(fig, tmp_path / "new.png", inside=axes[1:-1, 1:-1].ravel())
    assert np.array_equal(_pixels(tmp_path / "ref.png"), _pixels(tmp_path / "new.png"))
    assert all(ax.get_visible() for ax in axes.flat)


def _sample_figure(layout=None):
    fig, axes = plt.subplots(2, 3, figsize=(7, 4), layout=layout)
    t = np.geomspace(1, 1000, 30)
    for k, ax in enumerate(axes.flat):
        ax.plot(t, 10.0 ** (-k) * t**-0.5, label="a")
        figstyle.loglog(ax)
        ax.set_title(f"panel {k}")
    fig.legend(loc="upper left", bbox_to_anchor=(1.0, 0.9))  # outside: the tight box must reach it
    fig.suptitle("a title above the panels", y=1.05)
    return fig


@pytest.mark.parametrize("layout", [None, "constrained"])
def test_save_writes_the_image_of_savefig_bbox_tight(tmp_path, layout):
    ref = _sample_figure(layout)
    ref.savefig(tmp_path / "ref.png", dpi=figstyle.DPI, bbox_inches="tight")
    plt.close(ref)
    figstyle.save(_sample_figure(layout), tmp_path / "new.png")
    a, b = _pixels(tmp_path / "ref.png"), _pixels(tmp_path / "new.png")
    assert a.shape == b.shape and np.array_equal(a, b)


@pytest.mark.parametrize("lims", [(2e-6, 1.5), (1e-3, 1e3), (3.0, 700.0), (1e-30, 1e2)])
def test_in_view_locator_keeps_every_drawn_tick(lims):
    fig, (ax, bx) = plt.subplots(1, 2)
    for a in (ax, bx):
        a.set_yscale("log")
        a.set_ylim(*lims)
        a.yaxis.set_minor_locator(NullLocator())
    bx.yaxis.set_major_locator(figstyle.InViewLogLocator(10))
    fig.canvas.draw()
    drawn = [t.get_loc() for t in ax.yaxis._update_ticks()]  # what matplotlib draws with its own locator
    mine = [t.get_loc() for t in bx.yaxis._update_ticks()]
    assert drawn and mine == pytest.approx(drawn)
    made = len(ax.yaxis.majorTicks), len(bx.yaxis.majorTicks)
    assert made[1] <= made[0]
    plt.close(fig)


def _seaborn_heatmap(grid, labels, cmap, fontsize, **scale):
    sns = pytest.importorskip("seaborn")
    fig, ax = plt.subplots()
    sns.heatmap(
        grid,
        ax=ax,
        cmap=cmap,
        cbar=False,
        annot=labels,
        fmt="",
        annot_kws={"fontsize": fontsize},
        linewidths=0.5,
        linecolor="white",
        **scale,
    )
    return fig, ax


@pytest.mark.parametrize("kind", ["winner", "ratio"])
def test_heatmap_carries_every_cell_as_seaborn_does(kind):
    rng = np.random.default_rng(3)
    if kind == "winner":
        v = rng.integers(0, 4, size=(5, 6)).astype(float)
        cmap, scale = ListedColormap(["#0072B2", "#D55E00", "#bdbdbd", "#ffffff"]), {"vmin": -0.5, "vmax": 3.5}
    else:
        v = rng.normal(size=(5, 6))
        v[1, 2] = np.nan  # a cell without a value: blank, no label
        cmap, scale = "RdBu_r", {"norm": TwoSlopeNorm(vcenter=0.0, vmin=-2.0, vmax=2.0)}
    grid = pd.DataFrame(v, index=[f"r{i}" for i in range(5)], columns=[f"c{j}" for j in range(6)])
    labels = np.array([[f"{i},{j}" for j in range(6)] for i in range(5)], dtype=object)
    fig, ax = _seaborn_heatmap(grid, labels, cmap, 6, **scale)
    ref = {(t.get_position(), t.get_text()): (t.get_color(), t.get_fontsize()) for t in ax.texts}
    ref_colours = ax.collections[0].get_facecolors()
    plt.close(fig)
    fig, ax = plt.subplots()
    heatmaps._heatmap(ax, grid, labels, 6, cmap, **scale)
    meshes = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(meshes) == 1 and len(ax.collections) == 1  # one artist for every cell
    mine = {(t.get_position(), t.get_text()): (t.get_color(), t.get_fontsize()) for t in ax.texts}
    assert mine == ref
    assert len(mine) == np.isfinite(v).sum()  # every cell with a value carries it
    assert np.allclose(meshes[0].get_facecolors(), ref_colours)
    assert ax.get_ylim() == (5.0, 0.0) and not any(s.get_visible() for s in ax.spines.values())
    plt.close(fig)


def test_group_colours_are_seaborns_colorblind_palette():
    sns = pytest.importorskip("seaborn")
    assert list(figstyle.GROUP_COLOURS) == [c.upper() for c in sns.color_palette("colorblind").as_hex()]


def test_sensitivity_panels_share_limits_and_scales_without_shared_axes(tmp_path, monkeypatch):
    figs = {}

    def keep(fig, path, **_):
        figs[path.name] = fig
        return path

    monkeypatch.setattr(heatmaps, "save", keep)
    cells = pd.DataFrame({"cell_id": range(6), "p_alpha": [0.0, 1.0, 2.0] * 2, "p_beta": [0.0] * 3 + [1.0] * 3})
    rows = [
        {"cell_id": c, "optimizer": o, "h_lr": lr, "median": m, "ci_low": m / 2, "ci_high": m * 2}
        for c in range(6)
        for o, k in (("gd", 1.0), ("muon", 3.0))
        for lr, m in zip((1e-3, 1e-2, 1e-1), (k * (c + 1), k, 10.0 * k))
    ]
    sens = pd.DataFrame(rows)
    summary = sens[sens["h_lr"] == 1e-2].copy()
    heatmaps.sensitivity_grid(sens, summary, cells, "alpha", "beta", ["gd", "muon"], tmp_path / "s.png", "gap")
    fig = figs["s.png"]
    fig.canvas.draw()
    axes = np.array(fig.axes).reshape(2, 3)
    for ax in axes.flat:
        assert ax.get_xscale() == ax.get_yscale() == "log"
        assert ax.get_xlim() == pytest.approx((1e-3 / 1.5, 1e-1 * 1.5))
        assert ax.get_ylim() == pytest.approx((0.5 / 1.5, 60.0 * 1.5))
        assert len(ax.get_lines()) == 4  # two methods: the curve and the tuned point each
    for i, j in np.ndindex(2, 3):
        ax = axes[i, j]
        shown_x = any(t.get_visible() and t.get_text() for t in ax.get_xticklabels())
        shown_y = any(t.get_visible() and t.get_text() for t in ax.get_yticklabels())
        assert shown_x == (i == 1) and shown_y == (j == 0), (i, j)
    plt.close(fig)


def _draw_and_save(path) -> weakref.ref:
    fig = _sample_figure()
    figstyle.save(fig, path)
    return weakref.ref(fig)


def test_young_gc_restores_the_collector_and_frees_the_figures_drawn_in_it(tmp_path):
    assert gc.isenabled()
    with young_gc():
        assert not gc.isenabled()
        refs = [_draw_and_save(tmp_path / f"f{k}.png") for k in range(3)]
        assert all(r() is not None for r in refs)  # closed, unreachable, but cycles wait for a pass
    assert gc.isenabled()
    assert all(r() is None for r in refs)  # the young pass at the end freed every one
    gc.disable()
    try:
        with young_gc():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


def _boom():
    raise OSError(28, "No space left on device", "lr_sensitivity.png")


@pytest.mark.parametrize("enabled", [True, False])
def test_forked_job_returns_its_result_and_raises_its_error(monkeypatch, enabled):
    monkeypatch.setattr(forked, "ENABLED", enabled)
    pid = os.getpid()
    alone = threading.active_count() == 1
    assert forked.start(lambda: [os.getpid() == pid, 7])() == [not (enabled and forked.cores() >= 2 and alone), 7]
    with pytest.raises(OSError, match="No space left") as e:
        forked.start(_boom)()
    assert e.value.errno == 28


def test_no_fork_while_another_thread_is_alive(monkeypatch):
    monkeypatch.setattr(forked, "ENABLED", True)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert forked.start(os.getpid)() == os.getpid()  # ran here, not in a child
    finally:
        stop.set()
        other.join()


def test_standard_figures_drawn_in_a_forked_process_equal_those_drawn_here(tmp_path, monkeypatch):
    opts = {"gd": "gd", "muon": "muon"}
    here, there = (
        write_sweep(tmp_path / "here", CELLS, opts, zero_gap),
        write_sweep(tmp_path / "there", CELLS, opts, zero_gap),
    )
    monkeypatch.setattr(forked, "ENABLED", False)
    a = run(here)
    monkeypatch.setattr(forked, "ENABLED", True)
    b = run(there)
    assert sorted(a.paths) == sorted(b.paths) and "lr_sensitivity" in b.paths
    for name in ("lr_sensitivity", "phase_winner", "curves_selected"):
        assert np.array_equal(_pixels(a.paths[name]), _pixels(b.paths[name])), name
