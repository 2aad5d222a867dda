"""Property tests over random valid parameters, with the contract checks of contract_checks.py:
random quadratics over the whole structural space (sizes, Hessian structure, basis, rank, block
grid: where the L_* estimators' inequalities are hardest), and random instances of every
registered kind around its declared EXAMPLES (random seeds, per-run numbers drawn within the
declared ranges). Values a kind rejects with a documented parameter error are not instances."""

import sys
from pathlib import Path

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import problems
from problems.params import ParamError

sys.path.insert(0, str(Path(__file__).parent))
from contract_checks import cases, check_batching, check_instance  # noqa: E402

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=3)


@st.composite
def quadratic_params(draw):
    hessian = draw(st.sampled_from(["kronecker", "low_rank", "dense", "block"]))
    m, n = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kw = dict(m=m, n=n, hessian=hessian, alpha=draw(st.floats(0, 3)), mu=draw(st.sampled_from([0.0, 0.01, 1.0])))
    if hessian in ("kronecker", "block"):
        kw["alpha_right"] = draw(st.floats(0, 3))
        if kw["alpha"] >= 0.05:  # kappa^(1/alpha) overflows for tiny alpha (a documented parameter error)
            kw["kappa"] = draw(st.sampled_from([0.0, 1.0, 50.0]))
    if hessian == "kronecker":
        kw["basis"] = draw(st.sampled_from(["aligned", "rotated"]))
    if hessian in ("low_rank", "dense"):
        kw["basis"] = draw(st.sampled_from(["aligned", "rotated", "random"]))
        kw["rank"] = draw(st.integers(0, m * n))
    if hessian == "block":
        kw["layout"] = draw(st.sampled_from(["rows", "cols"]))
        size = m if kw["layout"] == "rows" else n
        kw["blocks"] = draw(st.sampled_from([d for d in range(1, size + 1) if size % d == 0]))
        kw["coupling"] = draw(st.floats(0, 1))
    kw["noise"] = draw(st.sampled_from(["none", "gaussian", "student_t"]))
    if kw["noise"] != "none":
        kw["sigma"] = draw(st.floats(0, 10))
    return kw


@st.composite
def around_an_example(draw):
    """A registered kind's example with random seeds and, for each per-run number the example
    sets, possibly another value: the example's times a factor in [0, 3], clipped to the
    declared range (the example's own variant keeps its structure)."""
    kind, _, kw = draw(st.sampled_from(cases()))
    decl = problems.get(kind).params
    for name, value in list(kw.items()):
        p = decl[name]
        if not p.per_run or p.type not in (float, int) or not draw(st.booleans()):
            continue
        v = value * draw(st.floats(0, 3))
        v = v if p.low is None else max(v, p.low)
        v = v if p.high is None else min(v, p.high)
        kw[name] = int(round(v)) if p.type is int else v
    return kind, kw, draw(SEEDS)


def _checked(kind, kw, seeds):
    try:
        problems.make(kind, runs=len(seeds), seed=seeds, dtype="float64", **kw)
    except ParamError:  # a documented invalid combination (e.g. rank > m*n, an open bound hit)
        reject()
    check_instance(kind, kw, seeds=seeds)
    check_batching(kind, kw, seeds=seeds)


@SETTINGS
@given(quadratic_params(), SEEDS)
def test_quadratic_properties(kw, seeds):
    _checked("quadratic", kw, seeds)


@SETTINGS
@given(around_an_example())
def test_every_kind_around_its_examples(case):
    _checked(*case)
