"""Orthogonalization kernels: maps U -> (approximately) the polar factor of U, batched over the
leading axis. Registered by name in ``ORTH`` (a :class:`problems.registry.Registry`); an optimizer's
``orth`` hyperparameter picks one. Every kernel has the signature ``fn(u, steps=None)`` (``steps``:
iterations for iterative kernels, None = the kernel's own default; ignored by exact ones). The
Newton-Schulz kernels are coefficient sets (``COEFFICIENTS``: per-step (a, b, c) triples and the
input normalization), each registered in both registries by :func:`register_coefficients`.

A zero matrix maps to zero and singular values below a relative threshold map to zero (the partial
isometry U_r V_r^T of the numerically nonzero part), so a zero or rank-deficient gradient never
produces a direction that was not in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from problems.backend import array_module as _xp
from problems.backend import blas_kernel
from problems.registry import Registry

ORTH = Registry("orth", "orthogonalization kernel")  # name -> fn(u, steps=None)

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


@dataclass(frozen=True)
class CoefficientSet:
    """A Newton-Schulz schedule: per-step (a, b, c) triples (past the end the last repeats) and
    the input normalization ``norm_scale * ||U||_F``."""

    coeffs: tuple
    norm_scale: float = 1.0


COEFFICIENTS = Registry("coefficients", "Newton-Schulz coefficient set")  # name -> CoefficientSet


def register(name: str):
    """Decorator: register a kernel ``fn(u, steps=None)`` under ``name`` in ``ORTH``."""
    return ORTH.register(name)


def schedule(coeffs, steps):
    """The first ``steps`` coefficient triples; past the end the last triple repeats."""
    if steps is None:
        return tuple(coeffs)
    return tuple(coeffs[min(i, len(coeffs) - 1)] for i in range(int(steps)))


def finite_runs(u):
    """(u with every run that holds a NaN or inf zeroed, the (B,) mask of those runs or None).
    LAPACK's SVD raises on non-finite input, which would crash a whole batch for one diverging
    run; callers zero such runs before the SVD and give them NaN after it (the loop then flags
    the run as diverged)."""
    xp = _xp(u)
    bad = ~xp.isfinite(u).all(axis=(-2, -1))
    if not bool(bad.any()):
        return u, None
    return xp.where(bad[:, None, None], 0, u), bad


@register("svd")
def polar_svd(u, steps=None):
    """Exact polar factor via the SVD: U S V^T -> U_r V_r^T, dropping singular values below
    max(m, n) * eps(dtype) * s_max (so zero maps to zero). Runs with non-finite input give NaN."""
    xp = _xp(u)
    u, bad = finite_runs(u)
    w, s, vt = xp.linalg.svd(u, full_matrices=False)
    tol = max(u.shape[-2:]) * xp.finfo(u.dtype).eps * s[..., :1]
    keep = (s > tol).astype(u.dtype)
    out = xp.matmul(w * keep[..., None, :], vt)
    return out if bad is None else xp.where(bad[:, None, None], xp.nan, out)


# Rectangular inputs with q >= GRAM_FUSE_RATIO * p (p <= q the sides) iterate on the p x p Gram
# matrix and apply the product of the step polynomials to X (for 5 steps, with one restart:
# 8 p^2 q + 28 p^3 flops instead of 20 p^2 q + 10 p^3); None turns it off. docs/benchmarks.md.
GRAM_FUSE_RATIO: float | None = 3.0


# The Gram product Z Z^T on the host: BLAS syrk (NumPy's ``z @ z.T``) or gemm on a scaled transposed
# copy, chosen by the BLAS kernel detected at run time (problems.backend.blas_kernel), where each
# was measured faster (docs/benchmarks.md): syrk on OpenBLAS's Haswell (AVX2) kernels, 1.5-2.4x
# faster than copy + gemm on an AVX2-only AMD Zen 3; gemm on the SkylakeX (AVX-512) kernels, where
# syrk was ~2.6x slower. An unmeasured kernel keeps the gemm path. GRAM_SYRK forces it (True /
# False; None = detect).
SYRK_KERNELS = frozenset({"Haswell"})
GRAM_SYRK: bool | None = None
_DETECTED: dict = {}


def gram_syrk(xp=np) -> bool:
    """Whether the Gram products of the kernels below use syrk on array module ``xp`` now."""
    if xp is not np:
        return False
    if GRAM_SYRK is not None:
        return bool(GRAM_SYRK)
    if "syrk" not in _DETECTED:
        _DETECTED["kernel"] = blas_kernel()
        _DETECTED["syrk"] = _DETECTED["kernel"] in SYRK_KERNELS
    return _DETECTED["syrk"]


def kernel_levers() -> dict:
    """The kernel levers in effect on the host (recorded in every manifest via lab.perf_env)."""
    syrk = gram_syrk(np)
    return {
        "blas_kernel": _DETECTED.get("kernel") or blas_kernel(),
        "gram_product": "syrk" if syrk else "gemm on a scaled transposed copy",
        "gram_source": "forced (runners.orth.GRAM_SYRK)" if GRAM_SYRK is not None else "detected BLAS kernel",
        "gram_fuse_ratio": GRAM_FUSE_RATIO,
    }


def _gram(z, s, out, zt, xp, syrk: bool):
    """out = s Z Z^T (``zt``: a (B, q, p) buffer for the gemm path; unused with syrk)."""
    if syrk:
        xp.matmul(z, z.transpose(0, 2, 1), out=out)
        out *= s
    else:
        _scaled_transpose(z, s, zt, xp)
        xp.matmul(z, zt, out=out)


def newton_schulz(u, coeffs, norm_scale: float = 1.0):
    """Odd polynomial iteration X <- a X + (b A + c A^2) X with A = X X^T, one (a, b, c) per step,
    on the Gram side of the smaller dimension (X is transposed so that rows <= cols).
    The input is normalized by ``norm_scale * ||U||_F`` (no additive eps: zero maps to zero and a
    tiny U is not shrunk further).

    Written for speed, with the same result up to rounding (tests/runners/test_orth_fast.py checks
    it against the plain iteration): per step three matmuls into preallocated buffers and one
    elementwise pass. With X = d Z (the scalar d carried on the host), G = Z (c d^2 Z^T) = c A is
    one product: syrk then a p x p scaling, or gemm on a scaled transposed copy, whichever was
    measured faster on the detected BLAS kernel (:func:`gram_syrk`), and completing
    the square, H = G + b/2 I, gives c (a I + b A + c A^2) = H^2 + (a c - b^2 / 4) I, so
    Z <- (H^2 + k I) Z and d <- d / c need no other elementwise work. Wide-enough rectangular
    inputs take the fused Gram path (:data:`GRAM_FUSE_RATIO`)."""
    xp = _xp(u)
    coeffs = tuple(coeffs)
    B, m, n = u.shape
    tall = m > n
    p, q = (n, m) if tall else (m, n)
    flat = u.reshape(B, 1, m * n)
    nrm = xp.sqrt(xp.matmul(flat, flat.transpose(0, 2, 1))) * norm_scale  # (B, 1, 1)
    r = (nrm > 0) / xp.where(nrm > 0, nrm, 1)
    x = xp.empty((B, p, q), dtype=u.dtype)
    xp.multiply(u.transpose(0, 2, 1) if tall else u, r.astype(u.dtype, copy=False), out=x)
    if coeffs and GRAM_FUSE_RATIO is not None and q >= GRAM_FUSE_RATIO * p:
        x = _ns_gram_fused(x, coeffs, xp)
    elif coeffs:
        x = _ns_direct(x, coeffs, xp)
    return x.transpose(0, 2, 1) if tall else x


def _diag(a):
    """A writable view of the diagonals of a batch of contiguous square matrices, (B, p)."""
    p = a.shape[-1]
    return a.reshape(a.shape[0], p * p)[:, :: p + 1]


def _scaled_transpose(z, s, out, xp):
    """out = s Z^T for a batch. On the host, matrices with both sides >= 128 are copied in 32 x 32
    tiles (NumPy's plain strided copy of a 256 x 256 matrix ran ~3x slower)."""
    B, p, q = z.shape
    t = 32
    if xp is np and p >= 128 and q >= 128 and p % t == 0 and q % t == 0:
        src = z.reshape(B, p // t, t, q // t, t).transpose(0, 3, 1, 4, 2)
        xp.multiply(src, s, out=out.reshape(B, q // t, t, p // t, t).transpose(0, 1, 3, 2, 4))
    else:
        xp.multiply(z.transpose(0, 2, 1), s, out=out)


def _ns_direct(z, coeffs, xp):
    """The iteration on X = d Z (p <= q), updating Z in place of a ping-pong buffer pair."""
    B, p, q = z.shape
    syrk = gram_syrk(xp)
    zt = None if syrk else xp.empty((B, q, p), dtype=z.dtype)
    g = xp.empty((B, p, p), dtype=z.dtype)
    h = xp.empty_like(g)
    g_diag, h_diag = _diag(g), _diag(h)
    z2 = xp.empty_like(z)
    d = 1.0
    for a, b, c in coeffs:
        if c == 0:  # cubic step: Z <- (a I + b A) Z
            _gram(z, b * d * d, g, zt, xp, syrk)
            g_diag += a
            xp.matmul(g, z, out=z2)
        else:
            _gram(z, c * d * d, g, zt, xp, syrk)  # c A
            g_diag += b / 2
            xp.matmul(g, g, out=h)
            h_diag += a * c - b * b / 4  # c (a I + b A + c A^2)
            xp.matmul(h, z, out=z2)
            d /= c
        z, z2 = z2, z
    if d != 1.0:
        z *= d
    return z


def _ns_gram_fused(x, coeffs, xp):
    """The same iteration for q >> p on the Gram matrix: with phi_k = a I + b A_k + c A_k^2,
    X_k = Q_k X_0, Q_{k+1} = phi_k Q_k and A_{k+1} = phi_k A_k phi_k (A_k and phi_k commute).
    Rounding errors of A grow along the chain, so X is rebuilt and A recomputed from it after
    step 2 and then every 3 steps (float32 error then as small as the direct iteration's; with one
    chain of 5 steps it was ~30x larger on ill-conditioned inputs)."""
    B, p, q = x.shape
    syrk = gram_syrk(xp)
    xt = None if syrk else xp.empty((B, q, p), dtype=x.dtype)
    start = 0
    while start < len(coeffs):
        group = coeffs[start : start + (2 if start == 0 else 3)]
        start += len(group)
        if syrk:
            a_k = xp.matmul(x, x.transpose(0, 2, 1))
        else:
            xt[...] = x.transpose(0, 2, 1)
            a_k = xp.matmul(x, xt)
        qk = None
        for i, (a, b, c) in enumerate(group):
            phi = xp.matmul(a_k, a_k)
            phi *= c
            phi += b * a_k
            _diag(phi)[...] += a
            qk = phi if qk is None else xp.matmul(phi, qk)
            if i + 1 < len(group):
                a_k = xp.matmul(phi, xp.matmul(a_k, phi))
        x = xp.matmul(qk, x)
    return x


# --- coefficient sets, ``orth`` specs, and the safe entry point the optimizers call ------------


def register_coefficients(name: str, coeffs, norm_scale: float = 1.0, doc: str = ""):
    """Register a Newton-Schulz kernel ``name`` with per-step coefficient triples ``coeffs``
    ((a, b, c), one per step; past the end the last repeats) and input normalization
    ``norm_scale * ||U||_F``, in ``COEFFICIENTS`` and ``ORTH``. Returns the kernel.
    ``ns_steps = 0`` runs ``len(coeffs)`` steps."""
    triples = _triples(coeffs, name)
    if not (norm_scale > 0 and float(norm_scale) < float("inf")):
        raise ValueError(f"norm_scale: got {norm_scale!r}; allowed: a number > 0")
    if name in ORTH or name in COEFFICIENTS:
        raise ValueError(f"orthogonalization {name!r} registered twice")
    scale = float(norm_scale)

    def kernel(u, steps=None):
        return newton_schulz(u, schedule(triples, steps), norm_scale=scale)

    kernel.__doc__ = doc or f"Newton-Schulz with user coefficients {triples} (normalized by {norm_scale} ||U||_F)."
    COEFFICIENTS.add(name, CoefficientSet(triples, scale))
    return register(name)(kernel)


def _triples(coeffs, where: str) -> tuple:
    try:
        out = tuple(tuple(float(v) for v in abc) for abc in coeffs)
    except (TypeError, ValueError):
        out = ()
    if not out or any(len(abc) != 3 or not all(abs(v) < float("inf") for v in abc) for abc in out):
        raise ValueError(f"{where}: coefficients must be a non-empty list of finite (a, b, c) triples")
    return out


ns_keller = register_coefficients("ns_keller", KELLER, doc="Newton-Schulz, Keller's quintic (5 steps by default).")
polar_express = register_coefficients(
    "polar_express", POLAR_EXPRESS, 1.02, doc="Newton-Schulz with the Polar Express coefficients (5 steps by default)."
)


SPEC_PREFIX = "ns:"
_SPEC_CACHE: dict[str, Callable] = {}


def parse_spec(spec: str) -> tuple[tuple, float]:
    """``"ns:[scale=S;]a,b,c;a,b,c;..."`` -> (coefficient triples, norm_scale). The form in which
    a TOML config gives its own per-step coefficient list as the ``orth`` hyperparameter."""
    if not spec.startswith(SPEC_PREFIX):
        raise ValueError(f"orth: {spec!r} is not a coefficient spec (it must start with {SPEC_PREFIX!r})")
    parts = [p.strip() for p in spec[len(SPEC_PREFIX) :].split(";") if p.strip()]
    scale = 1.0
    if parts and parts[0].startswith("scale="):
        try:
            scale = float(parts.pop(0)[len("scale=") :])
        except ValueError:
            scale = float("nan")
        if not (scale > 0 and scale < float("inf")):
            raise ValueError(f"orth: bad scale in {spec!r}; allowed: scale=S with S > 0")
    try:
        triples = _triples([p.split(",") for p in parts], "orth")
    except ValueError:
        raise ValueError(f"orth: bad coefficient spec {spec!r}; allowed: 'ns:[scale=S;]a,b,c;a,b,c;...'") from None
    return triples, scale


def resolve(orth: str) -> Callable:
    """The kernel for a registered name or an ``ns:`` coefficient spec."""
    if orth in ORTH:
        return ORTH.get(orth)
    if isinstance(orth, str) and orth.startswith(SPEC_PREFIX):
        if orth not in _SPEC_CACHE:
            triples, scale = parse_spec(orth)
            _SPEC_CACHE[orth] = lambda u, steps=None: newton_schulz(u, schedule(triples, steps), norm_scale=scale)
        return _SPEC_CACHE[orth]
    raise ValueError(f"orth: got {orth!r}; allowed: {ORTH.allowed()} or 'ns:a,b,c;...'")


def max_abs_normalize(u):
    """U / max|U_ij| per matrix (zero stays zero). Every kernel is scale-invariant, so this changes
    no direction; it keeps the Frobenius norm inside the kernels from under- or overflowing for
    tiny or huge inputs (e.g. 1e-30 or 1e30 in float32), which would otherwise silently shrink or
    zero the step."""
    xp = _xp(u)
    amax = xp.abs(u).max(axis=(-2, -1), keepdims=True)
    return u / xp.where(amax > 0, amax, 1)


def orthogonalize(u, orth: str = "ns_keller", steps: int | None = None):
    """The optimizers' entry point: ``resolve(orth)`` applied to the max-abs-normalized ``u``
    (``steps``: None or 0 = the kernel's default)."""
    return resolve(orth)(max_abs_normalize(u), steps or None)
