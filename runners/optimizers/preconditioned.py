"""Kronecker-factored preconditioners: Shampoo and SOAP, the structure-matched baselines of Muon
(issue 16, "Orthogonalization or preconditioning?").

For a layer X (m x n) with gradient G both keep a left statistic L (m x m) built from G G^T and a
right statistic R (n x n) built from G^T G, the two Kronecker factors of a preconditioner of vec(X)
(the lab's Kronecker quadratics and power-law least squares have exactly this Hessian structure):

``shampoo``  Gupta, Koren & Singer, arXiv 1802.09568 (v2), Algorithm 1 (the matrix case):
             X <- X - lr (L + eps I)^(-1/4) G (R + eps I)^(-1/4).
``soap``     Vyas et al., arXiv 2409.11321 (v1), Algorithm 3: Adam run in the eigenbasis of L and R,
             the eigenbasis refreshed every ``precondition_frequency`` steps.

The statistics L, R are kept in float64 whatever the run's dtype, and the eigendecompositions
(batched ``xp.linalg.eigh``, on NumPy and CuPy alike) are taken in float64; the step is cast back to
the layer's dtype. A run whose statistics are not finite gets NaN (the loop flags it diverged)
instead of crashing LAPACK for the whole batch.
"""

from __future__ import annotations

from problems.backend import array_module, batched_linalg, device_of

from ..orth import finite_runs
from ..registry import register
from . import base


def _t(a):
    return a.swapaxes(-1, -2)


def kron_stats(l, r, g, b, w):
    """L <- b L + w G G^T and R <- b R + w G^T G, per run (b, w: (B, 1, 1)), in float64."""
    g = array_module(g).astype(g, l.dtype)
    return b * l + w * (g @ _t(g)), b * r + w * (_t(g) @ g)


def damped_power(s, eps, p: float):
    """(S + eps I)^p for symmetric PSD S, shape (B, k, k), eps (B, 1, 1) > 0: Q diag(w^p) Q^T from
    ``eigh(S + eps I)``, with the eigenvalues w clipped below at eps (they are >= eps exactly; the
    clip only undoes rounding). Runs with non-finite S give NaN."""
    xp = array_module(s)
    s, bad = finite_runs(s)
    w, q = batched_linalg(xp.linalg.eigh, s + eps * xp.eye(s.shape[-1], dtype=s.dtype, device=device_of(s)))
    out = (q * xp.maximum(w[:, None, :], eps) ** p) @ _t(q)
    return out if bad is None else xp.where(bad[:, None, None], xp.nan, out)


def eigenbasis(s, dtype):
    """The eigenvectors of symmetric S (B, k, k) as columns, eigenvalues ascending (``eigh``), cast
    to ``dtype``; NaN for runs with non-finite S."""
    xp = array_module(s)
    s, bad = finite_runs(s)
    q = xp.astype(batched_linalg(xp.linalg.eigh, s)[1], dtype)
    return q if bad is None else xp.where(bad[:, None, None], xp.nan, q)


def _sides(params, xp, dtype=None, eye=False):
    """Per layer (B, m, n): the left and right (B, m, m), (B, n, n) zeros (or identities), in
    ``dtype`` (default float64, the statistics' dtype)."""
    out = []
    for axis in (1, 2):
        mats = []
        for x in params:
            k, kw = x.shape[axis], {"dtype": dtype or xp.float64, "device": device_of(x)}
            one = xp.eye(k, **kw) if eye else xp.zeros((k, k), **kw)
            mats.append(xp.asarray(xp.broadcast_to(one, (x.shape[0], k, k)), copy=True))
        out.append(tuple(mats))
    return tuple(out)


FREQUENCY = "precondition_frequency"


def _frequency(doc: str, default: int):
    return base.Param(default, int, per_run=False, low=1, doc=doc)


@register("shampoo")
class Shampoo:
    """Shampoo (Gupta, Koren & Singer, arXiv 1802.09568 v2, Algorithm 1, matrix case), per layer:
    L = beta2 L + w G G^T, R = beta2 R + w G^T G from L = R = 0, with w = 1 when beta2 = 1 (the
    paper's sums L_t = eps I + sum_s G_s G_s^T; the default) and w = 1 - beta2 otherwise (an EMA);
    X <- (1 - lr wd) X - lr (L + eps I)^(-1/4) M^ (R + eps I)^(-1/4).
    M^ = G by default (beta = 0, the paper); with a momentum beta > 0, M = beta M + (1 - beta) G and
    M^ = M / (1 - prod beta_s) (bias-corrected, so the step's scale does not depend on beta). The
    inverse 4th roots are recomputed at t = 1, 1 + f, 1 + 2f, ... (f = ``precondition_frequency``;
    the paper's f = 1) and reused in between. No grafting (the paper's basic method has none).
    One step from zero state is the damped polar factor U diag(s / sqrt(s^2 + eps)) V^T of
    G = U diag(s) V^T; with beta2 = 0 every step is one (tests/runners/test_preconditioned_reference.py)."""

    FAMILY = "preconditioned"
    ORACLE_CALLS = 1
    PAPERS = ("1802.09568",)
    TEST_HPARAMS = {"lr": 0.3, "lr_schedule": "cosine", "horizon": 200}

    HPARAMS = base.with_schedule(
        {
            "lr": base.lr(1e-2),
            "beta": base.beta(0.0, "EMA momentum of the gradient (0 = the paper)"),
            "beta2": base.Param(
                1.0, float, low=0.0, high=1.0, doc="statistics decay: 1 = the paper's sums, < 1 an EMA"
            ),
            "eps": base.Param(
                1e-6, float, low=0.0, low_open=True, doc="damping: the roots are of L + eps I, R + eps I"
            ),
            FREQUENCY: _frequency("recompute the inverse roots every this many steps", 1),
            "weight_decay": base.WEIGHT_DECAY,
        }
    )

    @staticmethod
    def init(params, hp, xp):
        ls, rs = _sides(params, xp)
        return {"m": tuple(xp.zeros_like(x) for x in params), "l": ls, "r": rs, "pl": ls, "pr": rs, "p1": 1.0}

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        xp, lr, b2, eps = oracle.xp, hp["lr"], hp["beta2"], hp["eps"]
        w = xp.where(b2 == 1, 1.0, 1.0 - b2)
        m, _ = base.momentum(state["m"], grads, hp["beta"], "ema")
        p1 = state["p1"] * hp["beta"]
        stats = [kron_stats(li, ri, g, b2, w) for li, ri, g in zip(state["l"], state["r"], grads)]
        ls, rs = tuple(s[0] for s in stats), tuple(s[1] for s in stats)
        pl, pr = state["pl"], state["pr"]
        if (t - 1) % hp[FREQUENCY] == 0:
            pl = tuple(damped_power(li, eps, -0.25) for li in ls)
            pr = tuple(damped_power(ri, eps, -0.25) for ri in rs)
        new = tuple(
            base.decay(x, lr, hp["weight_decay"]) - lr * xp.astype(a @ xp.astype(mi / (1 - p1), a.dtype) @ c, x.dtype)
            for x, mi, a, c in zip(params, m, pl, pr)
        )
        return new, {"m": m, "l": ls, "r": rs, "pl": pl, "pr": pr, "p1": p1}


@register("soap")
class SOAP:
    """SOAP (Vyas et al., arXiv 2409.11321 v1, Algorithm 3), per layer, with Q_L, Q_R the
    eigenvectors of L, R:
    G' = Q_L^T G Q_R;  M = beta M + (1 - beta) G;  V = beta2 V + (1 - beta2) G' * G';
    N' = M'^ / (sqrt(V^) + eps) with M' = Q_L^T M Q_R and the bias corrections of ``adam``;
    X <- (1 - lr wd) X - lr Q_L N' Q_R^T;  then L = sb L + (1 - sb) G G^T, R likewise (sb =
    ``shampoo_beta``), and every f = ``precondition_frequency`` steps Q_L, Q_R <- eigh(L), eigh(R).
    The first step only builds L, R and their eigenbasis from G_1 and does not move X (the authors'
    code, github.com/nikhilvyas/SOAP: the current gradient never enters its own projection), so
    step t >= 2 is Adam step k = t - 1 and the basis is refreshed after steps 1 + f, 1 + 2f, ...
    The eigenbasis is the exact one (eigh), where the paper's code refreshes it with one power
    iteration and a QR; columns are ordered by eigenvalue, so V keeps its alignment across refreshes.
    In a fixed standard basis (diagonal gradients) SOAP is ``adam`` one step late (tested)."""

    FAMILY = "preconditioned"
    ORACLE_CALLS = 1
    PAPERS = ("2409.11321",)
    TEST_HPARAMS = {"lr": 0.05, "lr_schedule": "cosine", "horizon": 200}

    HPARAMS = base.with_schedule(
        {
            "lr": base.lr(3e-3),
            "beta": base.beta(0.95, "first-moment EMA beta1"),
            "beta2": base.beta(0.95, "second-moment EMA beta2 (in the eigenbasis)"),
            "shampoo_beta": base.beta(0.95, "EMA of the statistics L, R (the paper's code: = beta2)"),
            "eps": base.Param(1e-8, float, low=0.0, low_open=True, doc="added to sqrt(V^)"),
            FREQUENCY: _frequency("refresh the eigenbasis every this many steps", 10),
            "weight_decay": base.WEIGHT_DECAY,
        }
    )

    @staticmethod
    def init(params, hp, xp):
        z = tuple(xp.zeros_like(x) for x in params)
        ls, rs = _sides(params, xp)
        ql, qr = _sides(params, xp, params[0].dtype, eye=True)  # replaced at t = 1 by eigh(L_1), eigh(R_1)
        return {"m": z, "v": z, "l": ls, "r": rs, "ql": ql, "qr": qr, "p1": 1.0, "p2": 1.0}

    @staticmethod
    def _refresh(state, params):
        state["ql"] = tuple(eigenbasis(li, x.dtype) for li, x in zip(state["l"], params))
        state["qr"] = tuple(eigenbasis(ri, x.dtype) for ri, x in zip(state["r"], params))

    @staticmethod
    def step(params, state, oracle, t, hp):
        grads = oracle(params)
        sb = hp["shampoo_beta"]
        state = dict(state)
        if t > 1:
            b1, b2, lr = hp["beta"], hp["beta2"], hp["lr"]
            ql, qr = state["ql"], state["qr"]
            rot = tuple(_t(a) @ g @ c for a, g, c in zip(ql, grads, qr))
            m, _ = base.momentum(state["m"], grads, b1, "ema")
            v = tuple(base.ema(vi, gr * gr, b2) for vi, gr in zip(state["v"], rot))
            p1, p2 = state["p1"] * b1, state["p2"] * b2
            params = tuple(
                base.decay(x, lr, hp["weight_decay"])
                - lr * (a @ base.adam_direction(_t(a) @ mi @ c, vi, p1, p2, hp["eps"]) @ _t(c))
                for x, mi, vi, a, c in zip(params, m, v, ql, qr)
            )
            state.update(m=m, v=v, p1=p1, p2=p2)
        stats = [kron_stats(li, ri, g, sb, 1 - sb) for li, ri, g in zip(state["l"], state["r"], grads)]
        state.update(l=tuple(s[0] for s in stats), r=tuple(s[1] for s in stats))
        if (t - 1) % hp[FREQUENCY] == 0:
            SOAP._refresh(state, params)
        return params, state
