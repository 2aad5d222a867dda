"""Newton-Schulz in a low-precision number format, emulated exactly on float32 arrays: the
``orth_precision`` hyperparameter (runners.optimizers.base.ORTH_PRECISION, docs/optimizers.md).

A format says how the operands of each matrix product are rounded and how stored results (the
products and every elementwise update of X, A, B) are rounded; products accumulate in float32,
as tensor-core GEMMs do in PyTorch's default settings (low-precision inputs, float32 accumulation,
one rounding of the result; the bf16 emulation reproduced PyTorch 2.13's CPU bf16 iteration bit
for bit on small cases, docs/optimizers.md):

=======  ====================================  ======================================
format   operands of a product                 stored results
=======  ====================================  ======================================
fp32     float32                               float32
tf32     fp32 mantissa rounded to 10 bits      float32 (TF32 mode stores fp32 outputs)
bf16     bfloat16 (8 exponent, 7 mantissa)     bfloat16
fp16     IEEE half (5 exponent, 10 mantissa)   IEEE half (overflow to inf, subnormals)
=======  ====================================  ======================================

Rounding is to nearest, ties to even (what a cast from float32 does; NVIDIA's fp32 -> tf32
conversion rounds ties away from zero, which differs only at exact ties). tf32 and bf16 keep the
float32 exponent range, so they are the float32 bit pattern with the low 13 or 16 mantissa bits
rounded off; fp16 is a cast to float16 and back.

The low-precision iteration is the plain one of the reference implementations (Algorithm 1 of
arXiv 2505.16932; K. Jordan's Muon): X = U / (s ||U||_F) stored in the format (the norm, summed
in float32, and its product with s are stored values too, as a bf16 tensor's norm is), then per step
A = X X^T, B = b A + (c A) A, X = a X + B X, each product and each elementwise result rounded, on
the Gram side of the smaller dimension. It does not use the fp32 kernel's reformulations
(completing the square, the fused Gram path), whose rounding would differ from what a bf16 Muon
does.

On a GPU (CuPy) the same elementwise rounding runs on the device, and fp16 products run as
native float16 GEMMs (cuBLAS; float32 accumulation is assumed, not checked). This path has not been
measured on a GPU (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from problems.backend import array_module as _xp
from problems.backend import on_host
from problems.registry import Registry


def round_mantissa(x, bits: int):
    """float32 ``x`` rounded to ``bits`` explicit mantissa bits (nearest, ties to even), keeping
    the float32 exponent range: bits = 10 is TF32, bits = 7 is bfloat16. NaN stays NaN; a value
    that rounds past the largest finite one becomes inf, as a cast does. The bit pattern is read as
    int32 (torch has no unsigned shifts): two's complement arithmetic wraps modulo 2^32, so every
    bit equals the unsigned computation's, and the arithmetic shift's sign bits are masked off."""
    xp = _xp(x)
    x = _float32(x, xp)
    drop = 23 - int(bits)
    u = x.view(xp.int32)
    t = u >> drop  # in place from here: one temporary
    t &= 1
    t += (1 << (drop - 1)) - 1
    t += u
    t &= -(1 << drop)  # 0xFFFFFFFF << drop as int32
    r = t.view(xp.float32)
    nan = xp.isnan(x)
    return xp.where(nan, x, r) if xp is not np or nan.any() else r


def _float32(x, xp):
    """A C-contiguous float32 copy of x on NumPy (the layout the bit-exact tests were written on),
    a float32 array elsewhere."""
    return np.ascontiguousarray(x, dtype=np.float32) if xp is np else xp.astype(x, xp.float32)


def _to_bf16(x):
    return round_mantissa(x, 7)


def _to_tf32(x):
    return round_mantissa(x, 10)


def _to_half(x):
    xp = _xp(x)
    return xp.astype(xp.astype(x, xp.float16), xp.float32)


def _same(x):
    return x


@dataclass(frozen=True)
class Format:
    """How a product's operands and the stored results are rounded (float32 in, float32 out);
    ``eps``: the unit roundoff 2^-(mantissa bits + 1) of the stored results' format."""

    name: str
    operand: Callable
    storage: Callable
    eps: float
    doc: str


FORMATS = Registry("orth_precision", "number format")  # name -> Format
for _f in (
    Format("fp32", _same, _same, 2.0**-24, "float32 throughout"),
    Format("tf32", _to_tf32, _same, 2.0**-24, "products take TF32 operands, results fp32"),
    Format("bf16", _to_bf16, _to_bf16, 2.0**-8, "bfloat16 throughout"),
    Format("fp16", _to_half, _to_half, 2.0**-11, "IEEE half throughout"),
):
    FORMATS.add(_f.name, _f)
del _f


def matmul(a, b, fmt: Format, stored: bool = False):
    """fmt.storage(op(a) @ op(b)), the product accumulated in float32 (float32 in, float32 out).
    ``stored``: a and b already hold values of the storage format, which then needs no operand
    rounding when the operands have that format too (bf16, fp16)."""
    xp = _xp(a)
    if fmt.name == "fp16" and not on_host(a):  # a native half GEMM on the device
        return xp.astype(xp.matmul(xp.astype(a, xp.float16), xp.astype(b, xp.float16)), xp.float32)
    if not (stored and fmt.operand is fmt.storage):
        a, b = fmt.operand(a), fmt.operand(b)
    return fmt.storage(xp.matmul(a, b))


def newton_schulz(u, coeffs, norm_scale: float, fmt: Format):
    """The Newton-Schulz iteration with per-step (a, b, c) ``coeffs`` in format ``fmt`` (module
    doc), for a float32 batch ``u`` (B, m, n); returns float32. Zero maps to zero."""
    xp = _xp(u)
    st = fmt.storage
    tall = u.shape[-2] > u.shape[-1]
    x = st(_float32(u.swapaxes(-1, -2) if tall else u, xp))

    def f32(v):  # a float32 scalar (0-d array): the products below round as float32 on every backend
        return xp.asarray(v, dtype=xp.float32)

    nrm = st(st(xp.sqrt((x * x).sum(axis=(-2, -1), keepdims=True))) * f32(norm_scale))  # a stored scalar
    x = st(x / xp.where(nrm > 0, nrm, 1))
    for a, b, c in coeffs:
        g = matmul(x, x.swapaxes(-1, -2), fmt, True)  # A = X X^T
        if c != 0:
            g = st(st(f32(b) * g) + matmul(st(f32(c) * g), g, fmt, True))  # B = b A + (c A) A
        else:
            g = st(f32(b) * g)
        x = st(st(f32(a) * x) + matmul(g, x, fmt, True))  # X = a X + B X
    return x.swapaxes(-1, -2) if tall else x
