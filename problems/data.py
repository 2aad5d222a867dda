"""Shared pieces of the problems with a data model (teacher-student regression): the label-noise
calibration of ``noise = minibatch`` and the minibatch regression gradient."""

from __future__ import annotations

import numpy as np


def label_variance(noise: str, label_noise, sigma, batch, per_sample_trace):
    """Total label-noise variance s^2: label_noise^2, plus, for ``minibatch`` noise,
    sigma^2 b / t, where t = E||grad of one sample at X*||_F^2 per unit label variance; the
    b-sample oracle then has variance sigma^2 (+ label_noise^2 t / b) at the optimum."""
    extra = sigma**2 * batch / per_sample_trace if noise == "minibatch" else 0.0
    return np.asarray(label_noise, np.float64) ** 2 + extra


def noise_var_at_opt(label_var, sigma, noise, batch, per_sample_trace, model_var=0.0):
    """E||g(X*) - grad f(X*)||_F^2 of the oracle: the minibatch part (label noise, plus
    ``model_var``, the per-sample variance a misspecified model has at X*), divided by the batch
    size, plus the additive part sigma^2."""
    batch = np.asarray(batch)
    mb = np.where(batch > 0, (label_var * per_sample_trace + model_var) / np.maximum(batch, 1), 0.0)
    return mb + (np.asarray(sigma, np.float64) ** 2 if noise in ("gaussian", "student_t") else 0.0)


def regression_batch_grad(xp, x, d, e_scaled, row_w):
    """Minibatch gradient of 1/2 mean_i ||D x_i - eps_i||^2 in D: (1/b) sum_i (D x_i - eps_i) x_i^T.
    x: (B, b, n) samples, d: (B, m, n), e_scaled: (B, b, m) label noise, row_w: (B, b, 1) weights
    (1/b on a run's first b rows)."""
    r = xp.matmul(x, d.swapaxes(-1, -2)) - e_scaled  # rows (D x_i - eps_i)^T, (B, b, m)
    return xp.matmul((r * row_w).swapaxes(-1, -2), x)
