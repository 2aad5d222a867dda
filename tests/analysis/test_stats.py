"""Bootstrap CIs, the log-ratio helper and the tie rule, against truths known without the code."""

import numpy as np

from analysis.stats import _median, bootstrap_ci, cis_overlap, log10_ratio, log10_ratio_ci, loglog_fit, median_ci


def _coverage(n, groups=400, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.lognormal(mean=0.0, sigma=1.0, size=(groups, n))  # true median = exp(0) = 1
    _, lo, hi = median_ci(list(x), level=0.95)
    return np.mean((lo <= 1.0) & (1.0 <= hi))


def test_bootstrap_ci_covers_true_median_at_nominal_rate():
    cov = _coverage(25)
    assert 0.89 <= cov <= 0.99, cov


def test_bootstrap_ci_with_three_seeds_is_capped_by_the_sample_range():
    # the percentile interval of a median of 3 values lies in [min, max], which covers the true
    # median with probability 1 - 2 * (1/2)^3 = 0.75
    cov = _coverage(3)
    assert 0.68 <= cov <= 0.82, cov


def test_bootstrap_ci_handles_infinite_scores():
    x = np.array([[1.0, 2.0, np.inf, np.inf, np.inf], [1.0, 1.0, 1.0, 1.0, 1.0]])
    lo, hi = bootstrap_ci(x)
    assert np.isinf(hi[0]) and lo[0] <= 2.0
    assert lo[1] == hi[1] == 1.0
    med, _, _ = median_ci([x[0], x[1]])
    assert np.isinf(med[0]) and med[1] == 1.0


def test_log10_ratio_signs_and_infinities():
    assert np.isclose(log10_ratio(1.0, 10.0), -1.0)
    assert np.isclose(log10_ratio(100.0, 1.0), 2.0)
    assert np.isinf(log10_ratio(np.inf, 1.0)) and log10_ratio(np.inf, 1.0) > 0
    assert np.isnan(log10_ratio(np.inf, np.inf))


def test_ratio_ci_separated_and_overlapping_samples():
    rng = np.random.default_rng(0)
    a = [1.0 + 0.01 * rng.standard_normal(8)]
    b = [10.0 + 0.1 * rng.standard_normal(8)]
    lo, hi = log10_ratio_ci(a, b)
    assert hi[0] < -0.9 and lo[0] > -1.1  # a is ten times smaller
    lo, hi = log10_ratio_ci(a, a, paired=True)
    assert lo[0] == hi[0] == 0.0  # paired resampling of identical samples


def test_tie_rule_on_constructed_intervals():
    assert cis_overlap(1.0, 2.0, 1.5, 3.0)
    assert cis_overlap(1.0, 2.0, 2.0, 3.0)  # touching counts as overlapping
    assert not cis_overlap(1.0, 2.0, 2.1, 3.0)
    assert cis_overlap(np.inf, np.inf, np.inf, np.inf)


def test_loglog_fit_exact_power_law():
    t = np.geomspace(1, 1000, 20)
    s, b, n = loglog_fit(t, 3.0 * t**-0.75)
    assert np.isclose(s, -0.75) and np.isclose(10**b, 3.0) and n == 20
    assert np.isnan(loglog_fit([1, 2], [1, 2])[0])


def test_loglog_fits_by_group_skips_bad_points():
    from analysis.stats import loglog_fits

    t = np.tile(np.geomspace(1, 100, 10), 3)
    keys = np.repeat([7, 8, 9], 10)
    v = np.concatenate([5 * t[:10] ** -1.0, 0.5 * t[:10] ** -0.25, t[:10] ** 0.5])
    v[25] = np.nan  # a bad point in group 9 is dropped, the fit is still exact
    v[26] = -1.0
    r = loglog_fits(keys, t, v)
    assert np.allclose(r.loc[[7, 8, 9], "slope"], [-1.0, -0.25, 0.5])
    assert list(r.loc[[7, 8, 9], "n"]) == [10, 10, 8]
    assert np.isclose(10 ** r.loc[7, "intercept"], 5.0)


def test_median_of_three_is_numpys_median_exactly():

    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 50, 3))
    x[0, :, 1] = x[0, :, 0]  # ties
    x[1, :, 2] = np.inf
    x[2, :5, 0] = np.nan
    x[3] = rng.integers(0, 2, size=(50, 3))  # many equal values
    for axis, arr in ((-1, x), (0, np.moveaxis(x, -1, 0)), (1, np.moveaxis(x, -1, 1))):
        assert np.array_equal(_median(arr, axis=axis), np.median(arr, axis=axis), equal_nan=True)
    y = rng.normal(size=(7, 4))  # other lengths: numpy's own
    assert np.array_equal(_median(y), np.median(y, axis=-1))
