"""One-sided verdicts of a measured exponent's CI against a rate bound T^p (the engine's last
step, :mod:`analysis.bounds`; the rules in :mod:`analysis.rules.bounds` map them to statuses)."""

from __future__ import annotations

import numpy as np

TOL = 0.05  # decades of exponent: the default band around a bound

CONSISTENT, FASTER, SLOWER, UNDEFINED = "consistent", "faster than the bound", "slower than the bound", "undefined"


def bound_verdict(lo: float, hi: float, bound: float, tol: float = TOL) -> str:
    """One-sided test of an upper bound Q = O(T^bound) (bound < 0) with the exponent's CI [lo, hi]:

    - ``"slower than the bound"`` when lo > bound + tol: every exponent the data allows decays
      slower than T^(bound + tol), so the bound fails on this instance;
    - ``"faster than the bound"`` when hi < bound - tol: consistent with the bound, which is not
      tight here (an upper bound is not contradicted by faster decay);
    - ``"consistent"`` otherwise (lo <= bound + tol <= ... the CI meets the band of exponents
      no slower than bound + tol and not all below bound - tol);
    - ``"undefined"`` when the CI is not finite.
    """
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return UNDEFINED
    if lo > bound + tol:
        return SLOWER
    if hi < bound - tol:
        return FASTER
    return CONSISTENT


TIGHT, NOT_TIGHT, UNDECIDED = "tight", "not tight", "undecided"


def tight_verdict(lo: float, hi: float, bound: float, tol: float = TOL) -> str:
    """Two-sided: ``"tight"`` when the CI lies within [bound - tol, bound + tol]; ``"not tight"``
    when it lies entirely outside that band; ``"undecided"`` when it straddles an end of the band;
    ``"undefined"`` when it is not finite. Never implied by :func:`bound_verdict`."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return UNDEFINED
    if lo >= bound - tol and hi <= bound + tol:
        return TIGHT
    if hi < bound - tol or lo > bound + tol:
        return NOT_TIGHT
    return UNDECIDED
