"""Shared building blocks of the optimizers, so that no update rule is written twice:
hyperparameter declarations, the one momentum helper, decoupled weight decay, robust norms,
the LMO-per-norm table (Gluon / Scion / Muon / SignSGD / normalized GD directions), the two
variance-reduction recursions (STORM and Muon-MVR's correction), and per-layer lists.

Conventions: every array is (B, m, n) (one layer) and per-run hyperparameters are (B, 1, 1);
the functions below take one layer unless their name says ``layers``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from problems.backend import array_module, batched_linalg
from problems.params import Param, ParamError
from problems.registry import Registry

from .. import schedules
from ..orth import ORTH, PRECISIONS, SPEC_PREFIX, finite_runs, max_abs_normalize, orthogonalize, parse_spec

# --- hyperparameter declarations ------------------------------------------------------------


def lr(default: float) -> Param:
    return Param(default, float, low=0.0, low_open=True, doc="step size (peak value; see lr_schedule)")


def beta(default: float, doc: str = "momentum") -> Param:
    return Param(default, float, low=0.0, high=0.999999, doc=doc)


def nesterov(default: bool) -> Param:
    return Param(default, bool, per_run=False, doc="Nesterov look-ahead direction")


WEIGHT_DECAY = Param(0.0, float, low=0.0, doc="decoupled weight decay: X <- (1 - lr_t wd) X before the step")
MOMENTUM_KIND = Param(
    "ema", str, per_run=False, choices=("ema", "sum"), doc="ema: M = beta M + (1 - beta) G; sum: M = beta M + G"
)
NS_STEPS = Param(0, int, per_run=False, low=0, doc="Newton-Schulz steps (0 = the kernel's default)")

SCALES = Registry("scale", "shape scale")  # name -> s(m, n)
SCALES.add("original", lambda m, n: math.sqrt(max(1.0, m / n)))
SCALES.add("rms", lambda m, n: 0.2 * math.sqrt(max(m, n)))
SCALES.add("none", lambda m, n: 1.0)
SCALES.add("fan", lambda m, n: math.sqrt(m / n))  # Dion (arXiv 2504.05295): sqrt(d_out / d_in), X = (out, in)


def scale(default: str) -> Param:
    return Param(
        default,
        str,
        per_run=False,
        choices=tuple(SCALES),
        doc="shape scale: original sqrt(max(1, m/n)), rms 0.2 sqrt(max(m, n)), none 1, fan sqrt(m/n)",
    )


class OrthParam(Param):
    """An orthogonalization: a registered kernel name (checked when used, so kernels registered
    later count) or an ``ns:[scale=S;]a,b,c;a,b,c;...`` per-step coefficient list."""

    def allowed(self) -> str:
        return "one of " + ", ".join(repr(k) for k in sorted(ORTH)) + ", or 'ns:[scale=S;]a,b,c;a,b,c;...'"

    def _check_one(self, name, v):
        if isinstance(v, str) and v in ORTH:
            return v
        if isinstance(v, str) and v.startswith(SPEC_PREFIX):
            try:
                parse_spec(v)
                return v
            except ValueError:
                pass
        raise ParamError(f"{name}: got {v!r}; allowed: {self.allowed()}")


def orth(default: str = "ns_keller") -> Param:
    return OrthParam(default, str, per_run=False, doc="orthogonalization (runners.orth)")


ORTH_PRECISION = Param(
    "native",
    str,
    per_run=False,
    choices=PRECISIONS,
    doc="number format of the orthogonalization: native (the run's dtype), fp32, tf32, bf16 or fp16 "
    "(Newton-Schulz emulated exactly on the host; runners.precision)",
)


ALLOW_DEGENERATE = Param(
    False,
    bool,
    per_run=False,
    doc="run a setting that makes the method exactly another one (docs/optimizers.md, degenerate settings)",
)


def refuse_degenerate(hp: dict, field: str, cond, why: str) -> None:
    """A one-line :class:`ParamError` naming ``field`` (its first value where ``cond`` holds)
    when some run's setting collapses the method onto another (``cond``: bool, scalar or per
    run), unless ``allow_degenerate`` is true. ``why``: the allowed values and the method it
    becomes."""
    cond = np.asarray(cond)
    if hp.get("allow_degenerate") or not cond.any():
        return
    vals = np.broadcast_to(np.asarray(hp[field]), cond.shape)
    got = (vals[cond] if cond.ndim else vals).flat[0].item()
    raise ParamError(f"{field}: got {got!r}; allowed: {why}; or set allow_degenerate = true to run it on purpose")


def zero_momentum(hp: dict):
    """Runs whose momentum is zero at every step: beta = 0 without a momentum schedule."""
    return (np.asarray(hp["beta"]) == 0) & (np.asarray(hp.get("beta_q", 0.0)) == 0)


def with_schedule(decl: dict, momentum: bool = True) -> dict:
    """``decl`` plus the schedule hyperparameters (runners.schedules)."""
    return {**decl, **schedules.hparams(momentum)}


# --- elementary math ------------------------------------------------------------------------


def ema(m, g, b, bg=None):
    """b m + (1 - b) g (``bg``: (1 - b) g when the caller has it already). Written as
    ``out = b m; out += (1 - b) g``: the same floating-point operations as the expression, one
    full-size temporary fewer; the inputs are not modified."""
    out = b * m
    out += (1 - b) * g if bg is None else bg
    return out


def momentum(ms, gs, b, kind: str = "ema", nesterov: bool = False):
    """The momentum of every optimizer, per layer: returns (new momenta, directions).

    ema: M = b M + (1 - b) G, Nesterov direction (1 - b) G + b M;
    sum: M = b M + G (heavy ball, torch.optim.SGD), Nesterov direction G + b M.

    Speed (docs/benchmarks.md): (1 - b) G is formed once and shared by M and the Nesterov
    direction, sums are accumulated in place into the fresh products, so a Muon step allocates 3
    full-size temporaries here instead of 6; every value is bit-identical to the plain expressions
    (the same products and sums, in the same order; addition is commutative in IEEE arithmetic).
    Where the namespace has ``lerp`` (torch) the EMA is ``lerp(G, M, b)`` = G + b (M - G), one
    fused pass instead of two passes and a shared third (W, Muon, with the Gram alpha: +4-5% at
    64^2, +1-3% at 256^2 on the Intel AVX-512 kind; docs/benchmarks.md), equal to the expression
    up to rounding (tests/runners/test_backend_parity.py).
    """
    xp = array_module(gs[0])
    if kind == "ema" and hasattr(xp, "lerp"):  # torch: one fused pass per EMA
        m = tuple(xp.lerp(g, mi, b) for mi, g in zip(ms, gs))
        u = tuple(xp.lerp(g, mi, b) for mi, g in zip(m, gs)) if nesterov else m
    elif kind == "ema":
        bgs = tuple((1 - b) * g for g in gs)
        m = tuple(ema(mi, g, b, bg) for mi, g, bg in zip(ms, gs, bgs))
        u = tuple(ema(mi, g, b, bg) for mi, g, bg in zip(m, gs, bgs)) if nesterov else m
    elif kind == "sum":
        m = tuple(_scaled_plus(b, mi, g) for mi, g in zip(ms, gs))
        u = tuple(_scaled_plus(b, mi, g) for mi, g in zip(m, gs)) if nesterov else m
    else:
        raise ValueError(f"momentum: unknown kind {kind!r}; allowed: ema, sum")
    return m, u


def adam_direction(m, v, p1, p2, eps):
    """Adam's direction (Kingma & Ba, arXiv 1412.6980) from the EMAs M, V and the products p1, p2 of
    their betas so far: M^ / (sqrt(V^) + eps), M^ = M / (1 - p1), V^ = V / (1 - p2)."""
    return (m / (1 - p1)) / (array_module(v).sqrt(v / (1 - p2)) + eps)


def _scaled_plus(b, m, g):
    """b m + g, accumulated into the product (bit-identical to the expression)."""
    out = b * m
    out += g
    return out


def decay(x, lr_, wd):
    """Decoupled weight decay (Loshchilov & Hutter, arXiv 1711.05101): X (1 - lr wd). With no
    decay on the host (wd = 0 for every run) X itself: X * 1 is X bit for bit, without the copy."""
    if isinstance(wd, (int, float)) and wd == 0 or isinstance(wd, np.ndarray) and not wd.any():
        return x
    return x * (1 - lr_ * wd)


def safe_div(u, d):
    """u / d with 0 where d == 0 (a zero direction stays zero, never NaN)."""
    xp = array_module(u)
    return u / xp.where(d > 0, d, 1)


def fro(u, axis=(-2, -1)):
    """Euclidean norm over ``axis`` (keepdims), computed on the max-abs-scaled array so tiny or
    huge entries neither underflow nor overflow."""
    xp = array_module(u)
    amax = xp.max(xp.abs(u), axis=axis, keepdims=True)
    s = xp.where(amax > 0, amax, 1)
    return s * xp.sqrt(((u / s) ** 2).sum(axis=axis, keepdims=True))


def fro_layers(us):
    """Euclidean norm over all layers together, (B, 1, 1)."""
    xp = array_module(us[0])
    amax = xp.max(xp.stack([xp.max(xp.abs(u), axis=(-2, -1)) for u in us]), axis=0)[:, None, None]
    s = xp.where(amax > 0, amax, 1)
    return s * xp.sqrt(sum(((u / s) ** 2).sum(axis=(-2, -1), keepdims=True) for u in us))


def nuclear(u):
    """Nuclear norm (sum of singular values), (B, 1, 1), via the singular values of the
    max-abs-scaled matrix."""
    xp = array_module(u)
    u, bad = finite_runs(u)
    amax = xp.max(xp.abs(u), axis=(-2, -1), keepdims=True)
    sv = batched_linalg(xp.linalg.svdvals, max_abs_normalize(u))
    out = amax * sv.sum(axis=-1)[:, None, None]
    return out if bad is None else xp.where(bad[:, None, None], xp.nan, out)


# --- the LMO table: one entry per norm ------------------------------------------------------


@dataclass(frozen=True)
class Norm:
    """A norm on one layer through what the methods need: ``direction(U)`` = the maximizer of
    <U, Z> over the unit ball (so the LMO over the ball of radius t is -t direction(U)), and
    ``dual(U)`` = the dual norm of U = <U, direction(U)>, shape (B, 1, 1). Zero maps to zero."""

    name: str
    direction: Callable
    dual: Callable
    doc: str


def _spectral_dir(u, orth="ns_keller", steps=None, precision="native"):
    return orthogonalize(u, orth, steps, precision)


def _sign_dir(u, orth=None, steps=None, precision=None):
    return array_module(u).sign(u)


def _l1(u):
    return array_module(u).abs(u).sum(axis=(-2, -1), keepdims=True)


def _row_dir(u, orth=None, steps=None, precision=None):
    return safe_div(u, fro(u, axis=-1))


def _row_dual(u):
    return fro(u, axis=-1).sum(axis=-2, keepdims=True)


def _col_dir(u, orth=None, steps=None, precision=None):
    return safe_div(u, fro(u, axis=-2))


def _col_dual(u):
    return fro(u, axis=-2).sum(axis=-1, keepdims=True)


def _fro_dir(u, orth=None, steps=None, precision=None):
    return safe_div(u, fro(u))


NORMS = Registry("norms", "norm")  # name -> Norm
for _norm in (
    Norm(
        "spectral", _spectral_dir, nuclear, "operator norm; direction = polar factor U V^T (via orth), dual = nuclear"
    ),
    Norm("sign", _sign_dir, _l1, "max-abs entry (l_inf); direction = sign(U), dual = sum |U_ij|"),
    Norm("row", _row_dir, _row_dual, "max row l2 norm; direction = rows normalized, dual = sum of row norms"),
    Norm(
        "column", _col_dir, _col_dual, "max column l2 norm; direction = columns normalized, dual = sum of column norms"
    ),
    Norm("frobenius", _fro_dir, fro, "Frobenius; direction = U / ||U||_F, dual = ||U||_F"),
):
    NORMS.add(_norm.name, _norm)
del _norm


# --- variance reduction ---------------------------------------------------------------------


def storm(d_prev, g, g_prev, b):
    """STORM / MVR recursion (Cutkosky & Orabona 2019, arXiv 1905.10018), one layer:
    d = g(x_t; xi_t) + b (d_{t-1} - g(x_{t-1}; xi_t)), with b = 1 - a."""
    return g + b * (d_prev - g_prev)


def momentum_state(params, hp, xp):
    """``init`` of a method whose state is one momentum buffer per layer, zero at the start."""
    return {"m": tuple(xp.zeros_like(x) for x in params)}


def storm_layers(d_prev, grads, g_prev, b, t):
    """:func:`storm` on every layer; at t = 1 the recursion starts from d_0 = g(x_0; xi_1)."""
    d_prev = g_prev if t == 1 else d_prev
    return tuple(storm(dp, g, gp, b) for dp, g, gp in zip(d_prev, grads, g_prev))


def two_point(params, state, oracle):
    """The step's one draw xi_t at the current and the previous point (MVR2 / STORM):
    (G(X_t; xi_t), G(X_{t-1}; xi_t)); ``state["prev"]`` holds X_{t-1}."""
    return oracle(params), oracle(state["prev"])


def mvr_correction(g, g_last, gamma, b, clip: bool):
    """Muon-MVR's corrected gradient (arXiv 2509.15816), one layer:
    c = G + gamma b / (1 - b) (G - G_last), optionally scaled to ||c||_F <= 1."""
    c = g + (gamma * b / (1 - b)) * (g - g_last)
    if clip:
        c = c / array_module(c).maximum(fro(c), 1.0)
    return c


# --- per-layer lists (Gluon) ----------------------------------------------------------------


class LayerList(Param):
    """A comma-separated list with one entry per layer (the last repeats for further layers):
    names from ``choices`` or, without choices, positive numbers."""

    def allowed(self) -> str:
        item = "one of " + "/".join(self.choices) if self.choices else "a number > 0"
        return f"a comma-separated list, each entry {item} (one per layer; the last repeats)"

    def _check_one(self, name, v):
        try:
            parse_layers(v, self.choices)
            return v
        except (ValueError, TypeError):
            raise ParamError(f"{name}: got {v!r}; allowed: {self.allowed()}") from None


@lru_cache(maxsize=256)
def parse_layers(spec: str, choices: tuple | None = None) -> tuple:
    if not isinstance(spec, str):
        raise TypeError(spec)
    items = [s.strip() for s in spec.split(",")]
    if not items or any(not s for s in items):
        raise ValueError(spec)
    if choices:
        if any(s not in choices for s in items):
            raise ValueError(spec)
        return tuple(items)
    vals = tuple(float(s) for s in items)
    if any(not (v > 0 and v < float("inf")) for v in vals):
        raise ValueError(spec)
    return vals


def per_layer(name: str, spec: str, layers: int, choices: tuple | None = None) -> tuple:
    """The list ``spec`` expanded to ``layers`` entries (an error if it names more)."""
    vals = parse_layers(spec, choices)
    if len(vals) > layers:
        raise ParamError(f"{name}: got {len(vals)} entries for {layers} layer(s); allowed: at most one per layer")
    return vals + (vals[-1],) * (layers - len(vals))
