"""Figures a reader can trust (issue 14): the stated floor for exact zeros (profiles, lr
sensitivity, ratio maps), one colour and line style per optimizer name in every figure and sweep,
no y-label over tick labels in curves_selected, and rates.png only where a rate claim applies.

Every sweep here is written by hand (runs.csv, curves.csv, manifest.json) with known values, so the
expected numbers come from the construction, not from the code under test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runners
from analysis import figstyle, forked, heatmaps, lines
from analysis.floor import QUANTITY, cell_floors, clip
from analysis.options import CRITERIA
from analysis.pipeline import run as analyse

ROOT = Path(__file__).resolve().parents[2]
STEPS = np.r_[0, np.unique(np.geomspace(1, 1000, 30).round())].astype(float)
LRS = [0.01, 0.1, 1.0]
G0 = 3.0  # every run's initial gap


def write_sweep(out: Path, cells, opts, fn, seeds=(0, 1, 2), dtype="float64", analysis=None, hparams=None) -> Path:
    """A result directory: ``cells`` (p_ values), ``opts`` {label: registry name}, ``fn(cell, label,
    lr, seed, t)`` -> gap at the logged steps t (t[0] = 0 gives the initial gap), ``hparams`` {label:
    {h_ column: value}} for the runs of that label."""
    out.mkdir(parents=True, exist_ok=True)
    runs, curves, rid = [], [], 0
    for cid, cell in enumerate(cells):
        for lab, kind in opts.items():
            for lr in LRS:
                for seed in seeds:
                    g = np.asarray(fn(cell, lab, lr, seed, STEPS), float)
                    runs.append(
                        {
                            "run_id": rid,
                            "cell_id": cid,
                            **{f"p_{k}": v for k, v in cell.items()},
                            "optimizer": lab,
                            "optimizer_kind": kind,
                            "optimizer_family": "spectral" if kind.startswith("muon") else "euclidean",
                            "h_lr": lr,
                            **(hparams or {}).get(lab, {}),
                            "seed": seed,
                            "status": "ok",
                            "final_gap": g[-1],
                            "best_gap": g.min(),
                        }
                    )
                    curves.append(pd.DataFrame({"run_id": rid, "step": STEPS, "gap": g}))
                    rid += 1
    pd.DataFrame(runs).to_csv(out / "runs.csv", index=False)
    pd.concat(curves).to_csv(out / "curves.csv", index=False)
    axes = list(cells[0])
    cfg = {
        "name": out.name,
        "dtype": dtype,
        "steps": int(STEPS[-1]),
        "optimizers": [{"name": k, "label": lab} for lab, k in opts.items()],
        "analysis": {"x": axes[0], **({"y": axes[1]} if len(axes) > 1 else {}), **(analysis or {})},
    }
    (out / "manifest.json").write_text(json.dumps({"config": cfg, "dtype": dtype}))
    return out


def u_shape(lr):
    return 1.0 + (np.log10(lr) + 1.0) ** 2  # best at lr = 0.1


def zero_gap(cell, lab, lr, seed, t):
    """Muon reaches exactly 0 at its best lr in the cells with alpha >= 1 (as on the noiseless
    assoc_memory); gd decays as t^-1/2 to about 1e-3 at T = 1000."""
    s = 1.0 + 0.01 * seed
    if lab == "muon":
        g = G0 * np.exp(-t / 50.0) * u_shape(lr) * s
        if cell["alpha"] >= 1 and lr == 0.1:
            g = np.where(t >= 500, 0.0, g)
        return np.where(t == 0, G0, g)
    return np.where(t == 0, G0, G0 * np.maximum(t, 1) ** -0.5 * 0.03 * u_shape(lr) * s)


CELLS = [{"alpha": a, "beta": b} for a in (0.0, 1.0) for b in (0.0, 1.0)]


@pytest.fixture
def capture(monkeypatch):
    """The figures the drawing modules save, by file name (drawn, not closed)."""
    figs = {}

    def keep(fig, path, **_):
        fig.canvas.draw()
        figs[Path(path).name] = fig
        Path(path).write_bytes(b"")
        return Path(path)

    for mod in (heatmaps, lines):
        monkeypatch.setattr(mod, "save", keep)
    monkeypatch.setattr(forked, "ENABLED", False)  # every figure drawn in this process, to be captured
    yield figs
    for f in figs.values():
        figstyle.plt.close(f)


# --- 1. the stated floor ----------------------------------------------------------------------------
def test_floor_is_eps_of_the_dtype_times_the_initial_quantity():
    summary = pd.DataFrame({"cell_id": [0, 0, 1], "optimizer": ["a", "b", "a"], "median": [0.0, 1.0, 2.0]})
    runs = pd.DataFrame({"run_id": [0, 1, 2], "cell_id": [0, 0, 1]})
    curves = pd.DataFrame({"run_id": [0, 1, 2, 0], "step": [0, 0, 0, 5], "gap": [4.0, 4.0, 8.0, 0.0]})
    for dtype in ("float32", "float64"):
        f = cell_floors(summary, "final_gap", dtype, curves, runs)
        eps = np.finfo(dtype).eps
        assert f.to_dict() == pytest.approx({0: 4.0 * eps, 1: 8.0 * eps}, rel=1e-12)
    # without curves: the cell's largest finite tuned median
    f = cell_floors(summary, "final_gap", "float64", None, runs)
    assert f.to_dict() == pytest.approx({0: 1.0 * 2.0**-52, 1: 2.0 * 2.0**-52})
    assert (cell_floors(summary, "steps_to_target", "float64", curves, runs) == 1.0).all()
    assert set(QUANTITY) == set(CRITERIA), "every criterion states what its floor scales with"
    # clipping raises values below the floor, keeps +inf and NaN
    df = pd.DataFrame({"cell_id": [0, 0, 0, 0], "median": [0.0, 1e-300, np.inf, np.nan]})
    v = clip(df, pd.Series({0: 1e-15}))["median"].to_numpy()
    assert v[0] == v[1] == 1e-15 and v[2] == np.inf and np.isnan(v[3])


def test_exact_zero_gap_keeps_profile_sensitivity_and_ratio_maps(tmp_path, capture):
    d = write_sweep(tmp_path / "zero", CELLS, {"gd": "gd", "muon": "muon"}, zero_gap)
    an = analyse(d)
    floor = np.finfo(np.float64).eps * G0
    phase = pd.read_csv(d / "phase.csv").set_index("cell_id")
    gd_final = G0 * 1000**-0.5 * 0.03 * np.array([1.0, 1.01, 1.02])  # gd's tuned (lr = 0.1) finals per seed
    for cid, cell in enumerate(CELLS):
        if cell["alpha"] >= 1:  # muon exactly 0: the ratio is floor / gd, a bound, not log10(1e-30)
            assert phase.loc[cid, "at_floor"] == "muon"
            assert phase.loc[cid, "log10_ratio_gd"] == pytest.approx(np.log10(floor / np.median(gd_final)), abs=1e-9)
            assert phase.loc[cid, "floor"] == pytest.approx(floor, rel=1e-12)
        else:
            assert pd.isna(phase.loc[cid, "at_floor"]) or phase.loc[cid, "at_floor"] == ""
    # the ratio map labels the floored cells as bounds and states the floor
    fig = capture["phase_ratio_gd.png"]
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert sum(t.startswith("\u2264") for t in texts) == 2 and all(float(t.lstrip("\u2264")) > -20 for t in texts if t)
    assert "floor" in fig._suptitle.get_text() and "2.22e-16" in fig._suptitle.get_text()
    # the profile: every cell counted, muon the best in the two floored cells (and in the others)
    prof = pd.read_csv(d / "profile.csv")
    assert (prof["n_cells"] == 4).all()
    at1 = prof[prof["tau"] == 1.0].set_index("optimizer")["fraction"]
    assert at1["muon"] == 1.0
    ax = capture["performance_profile.png"].axes[0]
    assert {ln.get_label() for ln in ax.get_lines()} >= {"gd", "muon"}
    assert "floor" in ax.get_xlabel()
    # the lr-sensitivity panels: muon drawn in every panel, every point finite, > 0 and inside the axes
    sfig = capture["lr_sensitivity.png"]
    muon = figstyle.colour("muon")
    for ax in [a for a in sfig.axes if a.get_visible()]:
        ylo, yhi = ax.get_ylim()
        mine = [ln for ln in ax.get_lines() if ln.get_color() == muon and len(ln.get_ydata()) == len(LRS)]
        assert mine, "muon vanished from a sensitivity panel"
        y = np.asarray(mine[0].get_ydata(), float)
        assert np.all(np.isfinite(y)) and np.all(y > 0) and np.all((y >= ylo) & (y <= yhi))
    assert "floor" in sfig._suptitle.get_text()
    assert an.floors is not None and an.floors.to_numpy() == pytest.approx(floor, rel=1e-12)


# --- 2. one palette, keyed by name ------------------------------------------------------------------
def _line_colours(figs: dict) -> dict:
    """{(figure, label): colour} of every labelled line of the captured figures."""
    out = {}
    for name, fig in figs.items():
        for ax in fig.axes:
            for ln in ax.get_lines():
                lab = ln.get_label()
                if not lab.startswith("_"):
                    out[(name, lab)] = (ln.get_color(), ln.get_linestyle())
    return out


def test_an_optimizer_has_the_same_colour_and_style_in_two_different_sweeps(tmp_path, capture):
    def fn(cell, lab, lr, seed, t):
        k = {"gd": 0.5, "muon": 1.0, "signsgd": 0.7, "adam": 0.8, "gd_tuned": 0.6}[lab]
        return np.where(t == 0, G0, G0 * np.maximum(t, 1) ** -k * u_shape(lr) * (1 + 0.01 * seed))

    a = write_sweep(tmp_path / "a", CELLS, {"gd": "gd", "signsgd": "signsgd", "muon": "muon"}, fn)
    analyse(a)
    first = _line_colours(capture)
    capture.clear()
    b = write_sweep(tmp_path / "b", CELLS, {"adam": "adam", "muon": "muon", "gd_tuned": "gd", "gd": "gd"}, fn)
    analyse(b)
    second = _line_colours(capture)
    shared = {k for k in first if k in second}
    assert {lab for _, lab in shared} >= {"gd", "muon"}
    for k in shared:
        assert first[k] == second[k], k
    # and the same in every figure of one sweep
    by_label: dict = {}
    for (_, lab), c in {**first, **second}.items():
        by_label.setdefault(lab, set()).add(c[0])
    assert all(len(c) == 1 for lab, c in by_label.items() if lab in ("gd", "muon", "gd_tuned", "adam")), by_label


def test_palette_is_a_function_of_the_name_only():
    pal = figstyle.palette
    assert pal(["muon", "gd"])["muon"] == pal(["x", "muon"])["muon"] == figstyle.COLOURS["muon"]
    assert figstyle.palette(["x1", "gd_tuned"])["gd_tuned"] == figstyle.palette(["gd_tuned"])["gd_tuned"]
    # every registered optimizer has its own fixed colour, distinct from the others and the extras
    assert set(runners.REGISTRY) <= set(figstyle.COLOURS), sorted(set(runners.REGISTRY) - set(figstyle.COLOURS))
    fixed = [c.lower() for c in figstyle.COLOURS.values()]
    assert len(set(fixed)) == len(fixed)
    assert not set(fixed) & {c.lower() for c in figstyle.EXTRA_COLOURS}
    assert figstyle.linestyle("muon") == "-" and figstyle.linestyle("gd_tuned") in ("--", ":", "-.")


def test_palette_is_the_same_in_processes_with_different_hash_seeds():
    code = (
        "from analysis.figstyle import colour, linestyle; print([(colour(n), linestyle(n)) for n in "
        "('gd_tuned', 'muon_b0', 'signsvd', 'muon')])"
    )
    outs = set()
    for seed in ("1", "2", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "MPLBACKEND": "Agg"}
        outs.add(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT
            ).stdout
        )
    assert len(outs) == 1, outs


# --- 3. curves_selected: no y-label over tick labels -------------------------------------------------
def _drawn_tick_labels(ax) -> list:
    """The tick labels (major and minor, both axes) that are drawn: non-empty, inside the view."""
    out = []
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        for minor in (False, True):
            locs = axis.get_minorticklocs() if minor else axis.get_majorticklocs()
            labs = axis.get_ticklabels(minor=minor)
            for loc, t in zip(locs, labs):
                if min(lo, hi) <= loc <= max(lo, hi) and t.get_visible() and t.get_text():
                    out.append(t)
    return out


def _overlaps(fig) -> list:
    """(label, what) pairs whose rendered boxes intersect: every y-label of the figure (the axes'
    and the figure's) against every drawn tick label of every axes and the frame of every axes
    other than its own."""
    r = fig.canvas.get_renderer()
    axes = [ax for ax in fig.axes if ax.get_visible()]
    labels = [(ax.yaxis.label, ax) for ax in axes if ax.get_ylabel()]
    if fig._supylabel is not None:
        labels.append((fig._supylabel, None))
    ticks = [(t.get_text(), t.get_window_extent(r)) for ax in axes for t in _drawn_tick_labels(ax)]
    bad = []
    for lab, own in labels:
        bb = lab.get_window_extent(r)
        frames = [(f"axes {i}", ax.get_window_extent(r)) for i, ax in enumerate(axes) if ax is not own]
        bad += [(lab.get_text(), name) for name, box in ticks + frames if bb.overlaps(box)]
    return bad


@pytest.mark.parametrize("n_cells", [2, 4, 6])
def test_curves_selected_y_label_clears_the_tick_labels(n_cells):
    cells = pd.DataFrame({"cell_id": range(6), "p_alpha": np.arange(6.0), "p_beta": 1.0})
    t = STEPS
    rows, chosen = [], []
    for cid in range(6):
        # even cells span 30 decades (long tick labels), odd ones under a decade (where the minor
        # ticks carry the labels, as on the demo's cell 42)
        for o, k in (("gd", 1.0), ("muon", 9.0)) if cid % 2 == 0 else (("gd", 0.05), ("muon", 0.1)):
            rid = len(chosen)
            chosen.append({"run_id": rid, "cell_id": cid, "optimizer": o})
            rows.append(pd.DataFrame({"run_id": rid, "step": t, "gap": 1e-2 * np.maximum(t, 1) ** -k}))
    fig = lines.curves_fig(
        pd.concat(rows), pd.DataFrame(chosen), cells, list(range(n_cells)), ["alpha", "beta"], ["gd", "muon"]
    )
    fig.canvas.draw()
    try:
        assert _overlaps(fig) == []
        assert fig._supylabel is not None and fig._supylabel.get_text() == "gap f - f*"
    finally:
        figstyle.plt.close(fig)


# --- 4. rates.png only where a rate claim applies -----------------------------------------------------
def _decay(cell, lab, lr, seed, t):
    return np.where(t == 0, G0, G0 * np.maximum(t, 1) ** -0.4 * u_shape(lr) * (1 + 0.01 * seed))


def test_demo_like_sweep_writes_no_rates_figure(tmp_path):
    d = write_sweep(tmp_path / "demo", CELLS, {"gd": "gd", "signsgd": "signsgd", "muon": "muon"}, _decay)
    an = analyse(d)
    assert not (d / "rates.png").exists() and "rates" not in {p.stem for p in an.paths.values() if p.suffix == ".png"}
    assert (d / "rates.csv").exists()  # the fits are still tabled


def test_rate_sweep_writes_rates_with_only_the_methods_own_reference(tmp_path, capture):
    # muon_mvr2 on a horizon-free power schedule: seed 000's PL last-iterate gap rate applies to it;
    # muon (constant lr) and gd have no rate on the gap: no slope is drawn for them
    opts = {"muon_mvr2": "muon_mvr2", "muon": "muon", "gd": "gd"}
    hp = {
        "muon_mvr2": {"h_lr_schedule": "power"},
        "muon": {"h_lr_schedule": "constant"},
        "gd": {"h_lr_schedule": "constant"},
    }
    d = write_sweep(tmp_path / "rate", CELLS, opts, _decay, hparams=hp)
    analyse(d)
    assert (d / "rates.png").exists()
    labels = [lab for _, lab in _line_colours({"r": capture["rates.png"]})]
    theory = [lab for lab in labels if "theory" in lab]
    assert {lab.split()[0] for lab in theory} == {"muon_mvr2"} and "muon_mvr2 theory: -0.33" in theory, labels
    # the same mvr2 on a constant lr: no claim, no figure
    capture.clear()
    hp2 = {**hp, "muon_mvr2": {"h_lr_schedule": "constant"}}
    d2 = write_sweep(tmp_path / "const", CELLS, opts, _decay, hparams=hp2)
    analyse(d2)
    assert not (d2 / "rates.png").exists()


def test_a_sweep_that_asks_for_a_rate_gets_the_figure_without_reference_slopes(tmp_path, capture):
    opts = {"gd": "gd", "muon": "muon"}
    d = write_sweep(tmp_path / "asked", CELLS, opts, _decay, analysis={"rate_window": [10.0, 1000.0]})
    analyse(d)
    assert (d / "rates.png").exists()
    labels = [lab for _, lab in _line_colours({"r": capture["rates.png"]})]
    assert not [lab for lab in labels if "theory" in lab], labels
    assert {"gd fit: -0.40", "muon fit: -0.40"} <= set(labels), labels
