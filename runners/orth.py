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


# --- user coefficient sets, ``orth`` specs, and the safe entry point the optimizers call ------

def register_coefficients(name: str, coeffs, norm_scale: float = 1.0):
    """Register a Newton-Schulz kernel ``name`` with per-step coefficient triples ``coeffs``
    ((a, b, c), one per step; past the end the last repeats) and input normalization
    ``norm_scale * ||U||_F``. Returns the kernel. ``ns_steps = 0`` runs ``len(coeffs)`` steps."""
    triples = _triples(coeffs, name)
    if not (norm_scale > 0 and float(norm_scale) < float("inf")):
        raise ValueError(f"norm_scale: got {norm_scale!r}; allowed: a number > 0")
    if name in ORTH:
        raise ValueError(f"orthogonalization {name!r} registered twice")

    def kernel(u, steps=None):
        return newton_schulz(u, schedule(triples, steps), norm_scale=float(norm_scale))

    kernel.__doc__ = f"Newton-Schulz with user coefficients {triples} (normalized by {norm_scale} ||U||_F)."
    return register(name)(kernel)


def _triples(coeffs, where: str) -> tuple:
    try:
        out = tuple(tuple(float(v) for v in abc) for abc in coeffs)
    except (TypeError, ValueError):
        out = ()
    if not out or any(len(abc) != 3 or not all(abs(v) < float("inf") for v in abc) for abc in out):
        raise ValueError(f"{where}: coefficients must be a non-empty list of finite (a, b, c) triples")
    return out


SPEC_PREFIX = "ns:"
_SPEC_CACHE: dict[str, Callable] = {}


def parse_spec(spec: str) -> tuple[tuple, float]:
    """``"ns:[scale=S;]a,b,c;a,b,c;..."`` -> (coefficient triples, norm_scale). The form in which
    a TOML config gives its own per-step coefficient list as the ``orth`` hyperparameter."""
    if not spec.startswith(SPEC_PREFIX):
        raise ValueError(f"orth: {spec!r} is not a coefficient spec (it must start with {SPEC_PREFIX!r})")
    parts = [p.strip() for p in spec[len(SPEC_PREFIX):].split(";") if p.strip()]
    scale = 1.0
    if parts and parts[0].startswith("scale="):
        try:
            scale = float(parts.pop(0)[len("scale="):])
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
        return ORTH[orth]
    if isinstance(orth, str) and orth.startswith(SPEC_PREFIX):
        if orth not in _SPEC_CACHE:
            triples, scale = parse_spec(orth)
            _SPEC_CACHE[orth] = lambda u, steps=None: newton_schulz(u, schedule(triples, steps), norm_scale=scale)
        return _SPEC_CACHE[orth]
    raise ValueError(f"orth: unknown {orth!r}; allowed: {', '.join(sorted(ORTH))} or 'ns:a,b,c;...'")


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
