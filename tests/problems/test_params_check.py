"""Param.check on per-run sequences: the one-array path for numbers gives what the per-value
check gives, value for value and error for error, on every kind of input."""

import numpy as np
import pytest

from problems.params import Param, ParamError

DECLS = {
    "float >= 0": Param(1.0, float, low=0.0),
    "float > 0, <= 2": Param(1.0, float, low=0.0, low_open=True, high=2.0),
    "int >= 1": Param(1, int, low=1),
    "int": Param(0, int),
    "float": Param(0.0, float),
}


def reference(p: Param, value):
    """The per-value check: _check_one on every entry, then the array check() returns (an
    integer beyond int64 is refused by _check_one, so the int64 cast cannot overflow)."""
    vals = [p._check_one("x", v) for v in np.asarray(value, dtype=object).reshape(-1).tolist()]
    return np.asarray(vals, dtype={float: np.float64, int: np.int64}[p.type])


def inputs(rng):
    pools = [
        [0.0, 1.0, 2.0, 0.5, 1e-300, 3.0, -0.0],
        [1, 2, 3, 0, -1, 7],
        [1.0, 2.5, float("nan"), float("inf"), -1e-9, 2.0000001],
        [True, 1, 2.0],
        [np.int64(3), np.float32(0.5), 4],
        [2**60, 1.0, 5],
        [2**53 + 1, -(2**53) - 1, 2**53, 4],
        [1e20, 2**64, 3],
        ["a", 1.0],
    ]
    for pool in pools:
        for _ in range(20):
            vals = [pool[i] for i in rng.integers(0, len(pool), rng.integers(1, 6))]
            yield vals
            if not any(isinstance(v, str) for v in vals):
                yield np.asarray(vals)


@pytest.mark.parametrize("decl", list(DECLS))
def test_per_run_check_equals_the_per_value_check(decl):
    p = DECLS[decl]
    for value in inputs(np.random.default_rng(0)):
        try:
            want = reference(p, value)
        except ParamError as e:
            with pytest.raises(ParamError) as got:
                p.check("x", value)
            assert str(got.value) == str(e), value
            continue
        got = p.check("x", value)
        assert got.dtype == want.dtype, value
        assert not (isinstance(value, np.ndarray) and np.shares_memory(got, value)), value
        np.testing.assert_array_equal(got, want, err_msg=str(value))
