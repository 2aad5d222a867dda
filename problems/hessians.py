"""Hessian operators on m x n matrices, applied to a batch (B, m, n) without forming the mn x mn
matrix (except :class:`DenseH`), and their ground truth: eigenvalue facts and L_* (see
:mod:`problems.linalg`).

Each operator keeps its instance data twice: float64 on the host (for ``truth()``) and cast on the
backend (for ``apply``); one function computes the action for both, so the math is written once.

- :class:`FactoredH`: H[D] = P (W o (P^T D Q)) Q^T + mu D. Eigen-matrices p_i q_j^T (rank one),
  eigenvalues W_ij + mu. W = a c^T is the Kronecker operator A D C with A = P diag(a) P^T,
  C = Q diag(c) Q^T (K-FAC-type structure); a sparse W is a low-rank Hessian whose
  eigen-matrices are rank one. P = Q = I ("aligned") makes H diagonal in the entries of X.
- :class:`EigH`: H = U diag(lambda) U^T + mu I on vec(X), U with Haar-random orthonormal columns.
- :class:`BlockH`: (1 - c) blockdiag_b(A_b D_b C_b) + c A_g D C_g + mu D over a grid of tiles.
- :class:`DenseH`: any of the above formed as an explicit mn x mn matrix.
"""

from __future__ import annotations

import numpy as np

from .linalg import dense_matrix, lstar_kronecker, nuclear, polar_ascent, rect_eye, schur_lstar_upper, top_eigvec

# float64 work at construction: ascent restarts, seeded so that constants are deterministic
N_RANDOM_STARTS = 4
EXACT_RTOL = 1e-9


def _unique_rows(*arrays):
    """Group runs whose host data rows are identical: (representative index, member indices)."""
    keys = np.concatenate([np.asarray(a, np.float64).reshape(a.shape[0], -1) for a in arrays], axis=1)
    _, first, inv = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    return [(int(f), np.nonzero(inv == u)[0]) for u, f in enumerate(first)]


def eig_summary(eigs: np.ndarray) -> dict:
    """Eigenvalue facts from the full multiset of eigenvalues, (B, N): L, mu (PL constant = the
    smallest nonzero eigenvalue), mu_sc (strong convexity = the smallest), rank, effective rank
    tr(H) / lambda_max (the intrinsic dimension)."""
    eigs = np.asarray(eigs, np.float64)
    lmax = eigs.max(axis=1)
    tol = lmax[:, None] * eigs.shape[1] * np.finfo(np.float64).eps
    pos = eigs > tol
    return {
        "L": lmax,
        "mu": np.where(pos, eigs, np.inf).min(axis=1),
        "mu_sc": np.where(pos.all(axis=1), eigs.min(axis=1), 0.0),
        "hessian_rank": pos.sum(axis=1).astype(np.float64),
        "eff_rank": eigs.sum(axis=1) / lmax,
    }


def _lstar_fields(low, high, exact=None, L=None) -> dict:
    """``L`` (the Frobenius constant) floors the ascent's lower bound: L <= L_* always holds, and
    the ascent from an iterated top eigenvector can fall short of it by its ~1e-8 accuracy."""
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    if L is not None:
        low = np.maximum(low, L)
    exact = np.abs(high - low) <= EXACT_RTOL * np.abs(high) if exact is None else np.asarray(exact, bool)
    low = np.where(exact, high, low)
    return {"L_star": low, "L_star_low": low, "L_star_high": high, "L_star_exact": exact.astype(np.float64)}


def _starts(m, n, extra=()):
    """Ascent starts: rectangular identity, a few seeded random matrices, and ``extra``."""
    rng = np.random.default_rng(12345)
    s = [rect_eye(m, n)] + [rng.standard_normal((m, n)) for _ in range(N_RANDOM_STARTS)] + list(extra)
    return np.stack(s)


class Operator:
    """Common interface. ``apply(d)`` on the backend, ``apply_host(b)`` a float64 function of
    (K, m, n) for run b, ``truth()`` per-run facts, ``project_range(x)`` host projection onto
    range(H) (identity for full rank)."""

    m: int
    n: int

    def apply(self, d):
        raise NotImplementedError

    def apply_host(self, b: int):
        raise NotImplementedError

    def truth(self) -> dict:
        raise NotImplementedError

    def project_range(self, x: np.ndarray) -> np.ndarray:
        return x

    def lstar_lower(self, groups, extra_starts=lambda b: ()) -> np.ndarray:
        """Ascent lower bound for each run, computed once per group of identical runs."""
        out = np.empty(len(self.mu_host))
        for b, idx in groups:
            ap = self.apply_host(b)
            start = top_eigvec(ap, self.m, self.n, np.random.default_rng(7))
            val, _ = polar_ascent(ap, self.m, self.n, _starts(self.m, self.n, [start, *extra_starts(b)]))
            out[idx] = val
        return out


# --- factored: P (W o (P^T D Q)) Q^T --------------------------------------------------------------
def factored_apply(xp, d, w, p=None, pt=None, q=None, qt=None):
    """W o D in the bases P (rows) and Q (columns); None = identity. w already includes mu."""
    e = d
    if p is not None:
        e = xp.matmul(pt, e)
    if q is not None:
        e = xp.matmul(e, q)
    e = w * e
    if q is not None:
        e = xp.matmul(e, qt)
    if p is not None:
        e = xp.matmul(p, e)
    return e


def factored_truth(wt: np.ndarray, kron=None) -> dict:
    """Ground truth of a factored operator with total eigenvalues ``wt`` (B, m, n) (W + mu).
    ``kron = (a, c, mu)`` when W = a c^T: L_* exact (:func:`problems.linalg.lstar_kronecker`).
    Otherwise L_* is bracketed: lower = ascent on the Schur multiplier wt o D (L_* is invariant
    under D -> P D Q^T, so the bases drop out), upper = min(p L, row/column-max bound)."""
    B, m, n = wt.shape
    out = eig_summary(wt.reshape(B, -1))
    if kron is not None:
        a, c, mu = kron
        val = lstar_kronecker(a, c, mu)
        out.update(_lstar_fields(val, val, np.ones(B, bool)))
        return out
    high = np.minimum(min(m, n) * out["L"], schur_lstar_upper(wt))
    low = np.empty(B)
    for b, idx in _unique_rows(wt):
        wb = wt[b]

        def ap(d, wb=wb):
            return wb * d

        i, j = np.unravel_index(np.argmax(wb), wb.shape)
        e = np.zeros((m, n))
        e[i, j] = 1.0
        val, _ = polar_ascent(ap, m, n, _starts(m, n, [e, wb]))
        low[idx] = val
    out.update(_lstar_fields(low, high, L=out["L"]))
    return out


class FactoredH(Operator):
    """H[D] = P (W o (P^T D Q)) Q^T + mu D with host arrays w (B, m, n) >= 0, mu (B,), p (B, m, m)
    or None, q (B, n, n) or None; ``factors = (a, c)`` when W = a c^T (Kronecker)."""

    def __init__(self, backend, w, mu, p=None, q=None, factors=None):
        self.backend, self.xp = backend, backend.xp
        self.B, self.m, self.n = w.shape
        self.w_host, self.mu_host = w, np.asarray(mu, np.float64)
        self.wt_host = w + self.mu_host[:, None, None]
        self.p_host, self.q_host, self.factors = p, q, factors
        self.w = backend.asarray(self.wt_host)
        self.p = None if p is None else backend.asarray(p)
        self.pt = None if p is None else backend.asarray(np.ascontiguousarray(p.transpose(0, 2, 1)))
        self.q = None if q is None else backend.asarray(q)
        self.qt = None if q is None else backend.asarray(np.ascontiguousarray(q.transpose(0, 2, 1)))

    def apply(self, d):
        return factored_apply(self.xp, d, self.w, self.p, self.pt, self.q, self.qt)

    def apply_host(self, b):
        p = None if self.p_host is None else self.p_host[b]
        q = None if self.q_host is None else self.q_host[b]
        w = self.wt_host[b]
        return lambda d: factored_apply(np, d, w, p, None if p is None else p.T, q, None if q is None else q.T)

    def truth(self):
        kron = None if self.factors is None else (*self.factors, self.mu_host)
        return factored_truth(self.wt_host, kron)

    def project_range(self, x):
        mask = (self.wt_host > 0).astype(np.float64)
        pt = None if self.p_host is None else self.p_host.transpose(0, 2, 1)
        qt = None if self.q_host is None else self.q_host.transpose(0, 2, 1)
        return factored_apply(np, x, mask, self.p_host, pt, self.q_host, qt)


# --- eigen-decomposed on vec space ------------------------------------------------------------------
def eig_apply(xp, d, u, lam, mu):
    """U diag(lam) U^T vec(D) + mu D for u (B, mn, r), lam (B, r), mu (B, 1, 1) (or host shapes)."""
    B = d.shape[0]
    v = d.reshape(B, 1, -1)
    coef = xp.matmul(v, u) * lam[:, None, :]  # (B, 1, r)
    out = xp.matmul(coef, u.swapaxes(-1, -2)).reshape(d.shape)
    return out + mu * d


class EigH(Operator):
    """H = U diag(lam) U^T + mu I on vec(X) (row-major). Host: ``u_seed`` (S, mn, r) per unique
    seed and ``seed_index`` (B,) mapping runs to them; lam (B, r) (zeros beyond a run's rank)."""

    def __init__(self, backend, m, n, u_seed, seed_index, lam, mu):
        self.backend, self.xp, self.m, self.n = backend, backend.xp, m, n
        self.u_seed, self.seed_index = u_seed, np.asarray(seed_index)
        self.lam_host, self.mu_host = lam, np.asarray(mu, np.float64)
        xp = backend.xp
        self.u = backend.asarray(u_seed)[backend.asarray(self.seed_index, dtype=xp.int64)]
        self.lam = backend.asarray(lam)
        self.mu = backend.asarray(self.mu_host[:, None, None])

    def apply(self, d):
        return eig_apply(self.xp, d, self.u, self.lam, self.mu)

    def apply_host(self, b):
        u, lam, mu = self.u_seed[self.seed_index[b]], self.lam_host[b], self.mu_host[b]

        def ap(d):
            K = d.shape[0]
            return eig_apply(np, d, np.broadcast_to(u, (K, *u.shape)), np.broadcast_to(lam, (K, lam.shape[0])), mu)

        return ap

    def eigenvalues(self):
        """The full multiset of eigenvalues, (B, mn)."""
        B, r = self.lam_host.shape
        pad = np.zeros((B, self.m * self.n - r))
        return np.concatenate([self.lam_host, pad], axis=1) + self.mu_host[:, None]

    def truth(self):
        out = eig_summary(self.eigenvalues())
        p = min(self.m, self.n)
        # ||H[D]||_* <= sum_k lam_k |<U_k, D>| ||U_k||_* + mu ||D||_* <= (sum_k lam_k ||U_k||_*^2 + mu p) ||D||_op
        u_nuc = nuclear(self.u_seed.transpose(0, 2, 1).reshape(self.u_seed.shape[0], -1, self.m, self.n))  # (S, r)
        vec_bound = (self.lam_host * u_nuc[self.seed_index] ** 2).sum(axis=1) + p * self.mu_host
        high = np.minimum(p * out["L"], vec_bound)
        low = self.lstar_lower(_unique_rows(self.seed_index[:, None], self.lam_host, self.mu_host[:, None]))
        out.update(_lstar_fields(low, high, L=out["L"]))
        return out

    def project_range(self, x):
        B = x.shape[0]
        u = self.u_seed[self.seed_index] * (self.lam_host > 0)[:, None, :]
        full = (self.mu_host > 0) | ((self.lam_host > 0).sum(axis=1) == self.m * self.n)
        v = x.reshape(B, 1, -1)
        proj = np.matmul(np.matmul(v, u), u.transpose(0, 2, 1)).reshape(x.shape)
        return np.where(full[:, None, None], x, proj)


# --- block-diagonal with coupling ---------------------------------------------------------------------
def to_tiles(xp, d, grid):
    """(B, m, n) -> (B, kr*kc, m/kr, n/kc), tiles in row-major order."""
    B, m, n = d.shape
    kr, kc = grid
    t = xp.permute_dims(d.reshape(B, kr, m // kr, kc, n // kc), (0, 1, 3, 2, 4))
    return t.reshape(B, kr * kc, m // kr, n // kc)


def from_tiles(xp, t, grid, shape):
    B, m, n = shape
    kr, kc = grid
    return xp.permute_dims(t.reshape(B, kr, kc, m // kr, n // kc), (0, 1, 3, 2, 4)).reshape(B, m, n)


def block_apply(xp, d, a_blk, c_blk, a_glob, c_glob, coupling, mu, grid, with_glob=True):
    """(1 - c) [A_b D_b C_b]_tiles + c A_g D C_g + mu D; coupling and mu broadcast as (B, 1, 1)."""
    t = xp.matmul(xp.matmul(a_blk, to_tiles(xp, d, grid)), c_blk)
    out = (1.0 - coupling) * from_tiles(xp, t, grid, d.shape)
    if with_glob:
        out = out + coupling * xp.matmul(xp.matmul(a_glob, d), c_glob)
    return out + mu * d


class BlockH(Operator):
    """Block-diagonal Hessian over a kr x kc grid of tiles (each tile its own Kronecker operator
    A_b D_b C_b in random bases), mixed with a global Kronecker operator A_g D C_g by ``coupling``
    c in [0, 1] (the builder gives the tiles slices of the global spectra); c = 0 is exactly
    block-diagonal in vec(X), c = 1 has no block structure. Host arrays: a_blk (B, k, mb, mb),
    c_blk (B, k, nb, nb), a_glob (B, m, m), c_glob (B, n, n), their eigenvalues ea_blk (B, k, mb),
    ec_blk (B, k, nb), ea_glob (B, m), ec_glob (B, n); coupling, mu (B,)."""

    DENSE_EIG_MAX = 1024  # mn up to which truth() uses a dense eigendecomposition

    def __init__(self, backend, grid, m, n, a_blk, c_blk, a_glob, c_glob, eigs, coupling, mu):
        self.backend, self.xp, self.grid, self.m, self.n = backend, backend.xp, grid, m, n
        self.host = dict(a_blk=a_blk, c_blk=c_blk, a_glob=a_glob, c_glob=c_glob)
        self.eigs = eigs
        self.coupling_host, self.mu_host = np.asarray(coupling, np.float64), np.asarray(mu, np.float64)
        self.dev = {k: backend.asarray(v) for k, v in self.host.items()}
        self.coupling = backend.asarray(self.coupling_host[:, None, None])
        self.mu = backend.asarray(self.mu_host[:, None, None])
        self.with_glob = bool(np.any(self.coupling_host > 0))

    def apply(self, d):
        h = self.dev
        return block_apply(
            self.xp,
            d,
            h["a_blk"],
            h["c_blk"],
            h["a_glob"],
            h["c_glob"],
            self.coupling,
            self.mu,
            self.grid,
            self.with_glob,
        )

    def apply_host(self, b):
        h = {k: v[b] for k, v in self.host.items()}
        c, mu = self.coupling_host[b], self.mu_host[b]
        return lambda d: block_apply(np, d, h["a_blk"], h["c_blk"], h["a_glob"], h["c_glob"], c, mu, self.grid)

    def _lstar_upper(self):
        ea, ec, ga, gc = self.eigs
        blk = lstar_kronecker(ea, ec).sum(axis=1)  # sum over tiles of each tile's exact L_*
        glob = lstar_kronecker(ga, gc)
        p = min(self.m, self.n)
        return (1 - self.coupling_host) * blk + self.coupling_host * glob + p * self.mu_host

    def _exact(self):
        """Runs whose L_* is exact: c = 1 (a Kronecker operator), or c = 0 with a single tile."""
        ea, ec, ga, gc = self.eigs
        glob = lstar_kronecker(ga, gc, self.mu_host)
        one = lstar_kronecker(ea[:, 0], ec[:, 0], self.mu_host)
        exact = (self.coupling_host == 1) | ((self.coupling_host == 0) & (ea.shape[1] == 1))
        return exact, np.where(self.coupling_host == 1, glob, one)

    def eigenvalues_host(self, b):
        ap = self.apply_host(b)
        mn = self.m * self.n
        if mn <= self.DENSE_EIG_MAX:
            h = dense_matrix(ap, self.m, self.n)
            return np.linalg.eigvalsh(0.5 * (h + h.T))
        from scipy.sparse.linalg import LinearOperator, eigsh  # noqa: PLC0415 (construction-time only)

        op = LinearOperator((mn, mn), matvec=lambda v: ap(v.reshape(1, self.m, self.n)).reshape(-1), dtype=np.float64)
        top = eigsh(op, k=1, which="LA", tol=1e-10, return_eigenvectors=False)[0]
        sh = LinearOperator((mn, mn), matvec=lambda v: top * v - op.matvec(v), dtype=np.float64)
        low = top - eigsh(sh, k=1, which="LA", tol=1e-10, return_eigenvectors=False)[0]
        return np.array([low, top])

    def truth(self):
        B = len(self.mu_host)
        mn = self.m * self.n
        ea, ec, ga, gc = self.eigs
        trace = (
            (1 - self.coupling_host) * (ea.sum(axis=2) * ec.sum(axis=2)).sum(axis=1)
            + self.coupling_host * ga.sum(axis=1) * gc.sum(axis=1)
            + mn * self.mu_host
        )
        groups = _unique_rows(self.coupling_host[:, None], self.mu_host[:, None], *self.host.values())
        lmax, lmin = np.empty(B), np.empty(B)
        for b, idx in groups:
            e = self.eigenvalues_host(b)
            lmax[idx], lmin[idx] = e.max(), e.min()
        # every factor spectrum is positive (power laws), so H is positive definite: rank mn
        out = {"L": lmax, "mu": lmin, "mu_sc": lmin, "hessian_rank": np.full(B, float(mn)), "eff_rank": trace / lmax}
        high = np.minimum(min(self.m, self.n) * lmax, self._lstar_upper())
        exact, exact_val = self._exact()
        low = self.lstar_lower(groups, self._aligned_start)
        low = np.where(exact, exact_val, low)
        high = np.where(exact, exact_val, high)
        out.update(_lstar_fields(low, high, np.where(exact, True, np.abs(high - low) <= EXACT_RTOL * high), L=lmax))
        return out

    def _aligned_start(self, b):
        """D with every tile aligned to its own factors' eigenbases, and the global alignment."""
        a_blk, c_blk = self.host["a_blk"][b], self.host["c_blk"][b]
        tiles = []
        for ab, cb in zip(a_blk, c_blk):
            pa, pc = np.linalg.eigh(ab)[1][:, ::-1], np.linalg.eigh(cb)[1][:, ::-1]
            k = min(pa.shape[0], pc.shape[0])
            tiles.append(pa[:, :k] @ pc[:, :k].T)
        d_blk = from_tiles(np, np.stack(tiles)[None], self.grid, (1, self.m, self.n))[0]
        pa = np.linalg.eigh(self.host["a_glob"][b])[1][:, ::-1]
        pc = np.linalg.eigh(self.host["c_glob"][b])[1][:, ::-1]
        k = min(self.m, self.n)
        return [d_blk, pa[:, :k] @ pc[:, :k].T]


# --- explicit dense -------------------------------------------------------------------------------
class DenseH(Operator):
    """Any operator formed as an explicit (B, mn, mn) matrix and applied by a matmul; the ground
    truth is that of the operator it was formed from."""

    MAX_ENTRIES = 1024  # m*n limit: the matrix has (m n)^2 entries per run

    def __init__(self, backend, inner: Operator):
        self.backend, self.xp, self.inner, self.m, self.n = backend, backend.xp, inner, inner.m, inner.n
        self.mu_host = inner.mu_host
        B = len(inner.mu_host)
        mats = np.empty((B, self.m * self.n, self.m * self.n))
        for b, idx in self._groups():
            mats[idx] = dense_matrix(inner.apply_host(b), self.m, self.n)
        self.mat_host = mats
        self.mat = backend.asarray(mats)

    def _groups(self):
        inner = self.inner
        if isinstance(inner, EigH):
            return _unique_rows(inner.seed_index[:, None], inner.lam_host, inner.mu_host[:, None])
        return _unique_rows(inner.wt_host, *(x for x in (inner.p_host, inner.q_host) if x is not None))

    def apply(self, d):
        B = d.shape[0]
        return self.xp.matmul(self.mat, d.reshape(B, -1, 1)).reshape(d.shape)

    def apply_host(self, b):
        mat = self.mat_host[b]
        return lambda d: np.matmul(mat, d.reshape(d.shape[0], -1, 1)).reshape(d.shape)

    def truth(self):
        return self.inner.truth()

    def project_range(self, x):
        return self.inner.project_range(x)
