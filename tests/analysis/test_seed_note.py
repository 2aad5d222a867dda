"""The note on seeds per point, and the quiet nan-median of the figures."""

import warnings

import numpy as np

from analysis.stats import nanmedian, seed_note


def test_one_seed_on_an_exact_oracle_is_no_warning():
    level, text = seed_note(1, exact=True)
    assert level == "info" and "exact" in text and "1 seeds" not in text
    level, text = seed_note(1, exact=False)
    assert level == "warning" and "1 seed per point" in text and "1 seeds" not in text


def test_few_seeds_state_the_coverage_of_their_range():
    # the median lies outside the range of n draws with probability 2 * 2^-n
    for n in (2, 3, 5):
        level, text = seed_note(n, exact=False, level=0.9)
        assert level == "warning" and f"{100 * (1 - 2 * 0.5**n):.0f}%" in text and "nominal 90%" in text
    assert seed_note(6, exact=False) is None and seed_note(0, exact=True) is None


def test_nanmedian_is_quiet_on_empty_slices():
    a = np.array([[1.0, np.nan], [3.0, np.nan], [np.nan, np.nan]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = nanmedian(a, axis=0)
    assert m[0] == 2.0 and np.isnan(m[1])
