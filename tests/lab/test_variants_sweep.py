"""The 2025-26 Muon variants run through a whole sweep (config -> plan -> jobs -> runs.csv): every
run is there, with the family its class declares and its structural hyperparameters recorded."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import runners
from lab.api import run_sweep
from lab.config import parse_config

sys.path.insert(0, str(Path(__file__).parent))
from sweep_helpers import lsq_sweep  # noqa: E402

VARIANTS = ("normuon", "adamuon", "dion", "muon_mvr3")

OPTIMIZERS = [
    {"name": "normuon", "lr": [0.01, 0.03]},
    {"name": "adamuon", "lr": [0.01, 0.03]},
    {"name": "dion", "lr": [0.01, 0.03], "hparams": {"rank_fraction": 0.5}},
    {"name": "muon_mvr3", "lr": [0.01, 0.03]},
]
LSQ = {"m": 6, "n": 8, "batch_size": 4, "noise": "minibatch", "label_noise": 0.3}
ABOUT = "the Muon variants on a tiny power-law least squares"
CONFIG = lsq_sweep("variants_smoke", ABOUT, OPTIMIZERS, LSQ, {"alpha": [0.5, 1.5]}, steps=30, log_points=4)
CONFIG["analysis"] = {"x": "alpha"}


def test_variants_sweep_writes_their_runs_and_families(tmp_path):
    res = run_sweep(parse_config(CONFIG), out_dir=tmp_path, progress=False)
    assert res["complete"]
    with open(tmp_path / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(VARIANTS) * 2 * 2 * 2  # optimizers x lr x alpha x seeds
    for name in VARIANTS:
        mine = [r for r in rows if r["optimizer"] == name]
        assert len(mine) == 8
        assert {r["optimizer_family"] for r in mine} == {runners.get(name).FAMILY}
        assert all(r["status"] == "ok" for r in mine)
    dion = [r for r in rows if r["optimizer"] == "dion"]
    assert {float(r["h_rank_fraction"]) for r in dion} == {0.5}
    assert {r["h_sign"] for r in rows if r["optimizer"] == "adamuon"} == {"True"}
