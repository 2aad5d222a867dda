"""Orthogonalization kernels: maps U -> (approximately) the polar factor of U, batched over the
leading axis. Registered by name in ``ORTH``; an optimizer's ``orth`` hyperparameter picks one. Every kernel
has the signature ``fn(u, steps=None)`` (``steps``: iterations for iterative kernels, None = the
kernel's own default; ignored by exact ones).

A zero matrix maps to zero and singular values below a relative threshold map to zero (the partial
isometry U_r V_r^T of the numerically nonzero part), so a zero or rank-deficient gradient never
produces a direction that was not in it.
"""
from __future__ import annotations

from typing import Callable

from lab.backend import array_module as _xp

ORTH: dict[str, Callable] = {}

# Keller Jordan's quintic Newton-Schulz coefficients (Muon reference implementation, 2024),
# used for 5 steps; the result's singular values lie roughly in [0.7, 1.2] (PAPERS.md).
KELLER = ((3.4445, -4.7750, 2.0315),) * 5

# Polar Express (Amsel et al. 2025), the 5-step set used in modded-nanogpt, with the input
# normalized by 1.02 ||X||_F (PAPERS.md).
POLAR_EXPRESS = (
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
)


def register(name: str):
    def deco(fn):
        ORTH[name] = fn
        return fn

    return deco


def schedule(coeffs, steps):
    """The first ``steps`` coefficient triples; past the end the last triple repeats."""
    if steps is None:
        return tuple(coeffs)
    return tuple(coeffs[min(i, len(coeffs) - 1)] for i in range(int(steps)))


@register("svd")
def polar_svd(u, steps=None):
    """Exact polar factor via the SVD: U S V^T -> U_r V_r^T, dropping singular values below
    max(m, n) * eps(dtype) * s_max (so zero maps to zero)."""
    xp = _xp(u)
    w, s, vt = xp.linalg.svd(u, full_matrices=False)
    tol = max(u.shape[-2:]) * xp.finfo(u.dtype).eps * s[..., :1]
    keep = (s > tol).astype(u.dtype)
    return xp.matmul(w * keep[..., None, :], vt)


def newton_schulz(u, coeffs, norm_scale: float = 1.0):
    """Odd polynomial iteration X <- a X + (b A + c A^2) X with A = X X^T, one (a, b, c) per step,
    on the Gram side of the smaller dimension (X is transposed so that rows <= cols).
    The input is normalized by ``norm_scale * ||U||_F`` (no additive eps: zero maps to zero and a
    tiny U is not shrunk further)."""
    xp = _xp(u)
    tall = u.shape[-2] > u.shape[-1]
    x = u.transpose(0, 2, 1) if tall else u
    nrm = xp.sqrt((x * x).sum(axis=(-2, -1), keepdims=True)) * norm_scale
    x = x / xp.where(nrm > 0, nrm, 1)
    for a, b, c in coeffs:
        g = xp.matmul(x, x.transpose(0, 2, 1))
        p = b * g + c * xp.matmul(g, g)
        x = a * x + xp.matmul(p, x)
    return x.transpose(0, 2, 1) if tall else x


@register("ns_keller")
def ns_keller(u, steps=None):
    """Newton-Schulz, Keller's quintic (5 steps by default)."""
    return newton_schulz(u, schedule(KELLER, steps))


@register("polar_express")
def polar_express(u, steps=None):
    """Newton-Schulz with the Polar Express per-step coefficients (5 steps by default)."""
    return newton_schulz(u, schedule(POLAR_EXPRESS, steps), norm_scale=1.02)
