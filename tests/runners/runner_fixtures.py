"""Small problems shared by the optimizer tests (imported by path: tests are not a package)."""

import problems


def noisy_lsq(runs=2):
    """A tiny float64 minibatch least-squares problem with label noise: a stochastic oracle, so no
    exact-gradient identity can hide a difference between two methods."""
    return problems.make(
        "power_law_lsq",
        runs=runs,
        seed=list(range(runs)),
        m=4,
        n=6,
        batch_size=3,
        noise="minibatch",
        label_noise=0.5,
        dtype="float64",
    )
