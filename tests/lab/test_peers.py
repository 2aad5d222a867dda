"""The peers of ``muonlab bench --peers`` (lab.peers) run the lab's workload: the torch peer's
iterates equal the lab's Muon (same data, same math), optax's Muon (bias-corrected momentum)
equals it after one step, where the two coincide; a missing framework is reported, not raised
as a crash. Skipped per framework when the ``peers`` extra is not installed."""

import re

import numpy as np
import pytest

import problems
import runners
from lab import bench, peers
from problems.backend import get_backend


def lab_muon(case, steps):
    B = case["B"]
    P = problems.make(
        "sample_lsq", runs=B, seed=np.arange(B), backend="numpy", m=case["m"], n=case["n"], samples=case["N"], alpha=1.0
    )
    return runners.run(P, runners.make("muon"), steps=steps, seed=np.arange(B), log_points=2).params[0]


@pytest.mark.parametrize("shape", [(6, 6), (9, 5), (4, 7)])
def test_torch_peer_iterates_equal_the_lab(shape):
    pytest.importorskip("torch")
    case = {"m": shape[0], "n": shape[1], "N": 12, "B": 3}
    got = peers.torch_runner(case, 5)().numpy()
    np.testing.assert_allclose(got, lab_muon(case, 5), rtol=0, atol=2e-6)


def test_jax_peer_first_step_equals_the_lab():
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    case = {"m": 6, "n": 6, "N": 12, "B": 3}
    got = np.asarray(peers.jax_runner(case, 1)())
    np.testing.assert_allclose(got, lab_muon(case, 1), rtol=0, atol=2e-6)


def test_missing_peer_is_a_line_not_a_crash(monkeypatch):
    def missing(case, steps):
        raise peers.PeerMissing("nopeer is not installed; pip install -e .[peers] adds it")

    monkeypatch.setitem(bench.CASES, "tiny", (4, 4, 8, 2))
    monkeypatch.setattr(peers, "RUNNERS", {"nopeer": missing})
    monkeypatch.setattr(bench, "STEPS", 2)
    lines = []
    res = bench.peer_comparison(["tiny"], passes=1, repeats=1, progress=lines.append)
    assert res["rows"][0]["nopeer"] is None and res["rows"][0]["lab"]["gflops"] > 0
    assert "nopeer" in res["missing"] and any("skipped" in s for s in lines)
    text = "\n".join(bench._peer_lines(res, peak=100.0))
    assert "skipped" in text and "pip install" in text
    # the lab's second row (fewer logged metrics) and W's matmuls alone are measured but are not
    # peers: no lab / peer ratio without one, while the lab / matmuls-alone ratio is a number
    assert res["rows"][0]["lab_bare"]["gflops"] > 0 and res["rows"][0]["floor"]["gflops"] > 0
    row = next(s for s in text.splitlines() if s.startswith("| tiny"))
    lab_peer, lab_floor, peer_floor = (c.strip() for c in row.strip("|").split("|")[-3:])
    assert lab_peer == "n/a" and peer_floor == "n/a" and re.fullmatch(r"\d+\.\d\dx", lab_floor)


@pytest.mark.parametrize("case", list(bench.CASES))
def test_the_matmul_floor_does_w_s_products(case):
    """gemm_floor times exactly the FLOPs W counts for Muon (lab.bench.step_flops): the products
    of one step, 2 x rows x inner x cols each, with the operands' shapes chaining as in the step."""
    m, n, N, B = bench.CASES[case]
    bk = get_backend("numpy", "float32")
    triples = bench._w_products(bk, case)
    for a, b, c in triples:
        assert a.shape[0] == b.shape[0] == c.shape[0] == B
        assert a.shape[2] == b.shape[1] and c.shape == (B, a.shape[1], b.shape[2])
    flops = sum(2.0 * a.shape[1] * a.shape[2] * b.shape[2] for a, b, _ in triples)
    assert flops == bench.step_flops(runners.make("muon"), m, n, N, 1.0)[0]
