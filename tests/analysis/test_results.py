"""analysis.results.Results, the one reader of a result directory: options merged with the
defaults, the grid as run, one tuning per criterion, and one-line errors naming a missing or
damaged file (exit code 2 in the CLI)."""

import json

import numpy as np
import pandas as pd
import pytest

from analysis.registry import Registry
from analysis.results import Results, ResultsError
from analysis.tune import criterion, select


def write(tmp_path, analysis=None):
    rows = [
        {
            "run_id": i,
            "cell_id": c,
            "p_a": float(c),
            "optimizer": o,
            "optimizer_kind": o,
            "h_lr": lr,
            "seed": s,
            "status": "ok",
            "final_gap": (1 + c) * (1 + abs(np.log10(lr) + 1)) * (1 + 0.01 * s),
        }
        for i, (c, o, lr, s) in enumerate(
            (c, o, lr, s) for c in (0, 1) for o in ("gd", "muon") for lr in (0.01, 0.1, 1.0) for s in (0, 1, 2)
        )
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "runs.csv", index=False)
    cfg = {
        "optimizers": [{"name": "gd", "lr": {"logspace": [-2, 0, 3]}}, {"name": "muon", "lr": [0.01, 0.1, 1.0]}],
        "problem": {"kind": "k", "grid": {"a": [0.0, 1.0]}},
        "analysis": analysis or {},
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"config": cfg}))
    return Results(tmp_path)


def test_options_merge_the_sweep_section_with_the_defaults(tmp_path):
    d = write(tmp_path, {"criterion": "best_gap", "rate_window": [10, 100]})
    assert d.options.criterion == "best_gap" and d.options.level == 0.95 and d.options.rate_window == (10.0, 100.0)
    assert Results(tmp_path, criterion="final_gap").options.criterion == "final_gap"
    with pytest.raises(ValueError, match="criterion: unknown 'fastest'; allowed: final_gap"):
        Results(tmp_path, criterion="fastest")


def test_grid_values_are_the_values_run_and_tuning_is_computed_once(tmp_path):
    d = write(tmp_path)
    assert d.grid_values("h_lr") == {"gd": [0.01, 0.1, 1.0], "muon": [0.01, 0.1, 1.0]}
    first = d.tuned()
    assert d.tuned() is first and d.tuned("final_gap") is first
    summary, _, chosen = first
    ref, _, ref_chosen = select(d.runs, criterion(d.runs, "final_gap"))
    assert list(summary["median"]) == list(ref["median"]) and (summary["h_lr"] == 0.1).all()  # the minimum at lr = 0.1
    assert list(chosen["run_id"]) == list(ref_chosen["run_id"])


def test_missing_and_damaged_files_name_the_file(tmp_path):
    d = Results(tmp_path)
    with pytest.raises(ResultsError, match=r"runs\.csv: no such file"):
        d.runs
    with pytest.raises(FileNotFoundError):  # rules treat a missing optional table as not testable
        d.table("rates")
    (tmp_path / "runs.csv").write_bytes(b"a,b\n\xff\xfe,1\n")
    with pytest.raises(ResultsError, match=r"runs\.csv: not a readable CSV table"):
        Results(tmp_path).runs
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ResultsError, match=r"manifest\.json: not a readable manifest"):
        Results(tmp_path).options


def test_report_cli_on_a_damaged_manifest_is_one_line_exit_2(tmp_path, capsys):
    from lab.cli import main

    write(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "manifest.json is not a readable manifest" in err and len(err.splitlines()) == 1


def test_registry_rejects_duplicates_and_names_the_allowed():
    reg = Registry("kind")
    reg.register("a")(len)
    with pytest.raises(ValueError, match="kind: 'a' is registered twice"):
        reg.register("a")(len)
    with pytest.raises(KeyError, match="kind: got 'b'; allowed: a"):
        reg.get("b")
    assert reg["a"] is len and "a" in reg and list(reg) == ["a"]
