"""Peers of workload W for ``muonlab bench --peers``: the same Muon workload written directly in
other array frameworks, timed interleaved with the lab in one run (docs/benchmarks.md).

Each peer runs the same B least-squares problems (the data of ``sample_lsq``, cast to float32),
T steps of Muon from X = 0 with the registry defaults (EMA momentum 0.95, Nesterov, Keller's five
quintic Newton-Schulz steps on the Frobenius-normalized direction, lr 0.02, shape scale
sqrt(max(1, m/n))), so the FLOPs per problem-step are W's (lab.bench.step_flops). Peers compute
no metrics; the lab's figure includes its metrics at the logged steps.

- ``torch``: hand-batched ``torch.bmm`` in eager mode (CPU: MKL / oneDNN; threads as torch sets them).
- ``jax``: ``jax.jit`` of a ``lax.scan`` over the steps of ``optax.contrib.muon``'s update,
  ``vmap``-ed over the B problems (XLA CPU).

A peer whose framework is not installed raises :class:`PeerMissing` with the install hint; the
frameworks come with the ``peers`` extra (``pip install -e .[peers]``).
"""

from __future__ import annotations

import importlib
import statistics
import time

import numpy as np

import problems
from runners.orth import KELLER

LR, BETA = 0.02, 0.95


class PeerMissing(RuntimeError):
    """The peer's framework is not importable here."""


def _need(module: str):
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install
        raise PeerMissing(
            f"{module} is not installed ({type(exc).__name__}); pip install -e .[peers] adds it"
        ) from None


def _data(case: dict):
    """The host float32 data (A, Y) of W's problems for one case, as the lab draws them."""
    m, n, N, B = case["m"], case["n"], case["N"], case["B"]
    P = problems.make("sample_lsq", runs=B, seed=np.arange(B), backend="numpy", m=m, n=n, samples=N, alpha=1.0)
    return np.asarray(P.a, np.float32), np.asarray(P.y, np.float32)


def _time(fn, repeats: int) -> float:
    fn()  # warm-up (and, for JAX, the compilation)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def torch_runner(case: dict, steps: int):
    """A function that runs ``steps`` hand-batched torch Muon steps on ``case`` and returns the
    final X (B, m, n) as a torch tensor."""
    torch = _need("torch")
    a_np, y_np = _data(case)
    m, n, N, B = case["m"], case["n"], case["N"], case["B"]
    a, y = torch.from_numpy(a_np), torch.from_numpy(y_np)
    atn = (a.transpose(1, 2) / N).contiguous()
    scale = max(1.0, m / n) ** 0.5

    def ns5(u):
        x = u.transpose(1, 2) if m > n else u
        x = x / torch.linalg.vector_norm(x, dim=(1, 2), keepdim=True).clamp_min(1e-30)
        for ka, kb, kc in KELLER:
            g = torch.bmm(x, x.transpose(1, 2))
            x = ka * x + torch.bmm(kb * g + kc * torch.bmm(g, g), x)
        return x.transpose(1, 2) if m > n else x

    def go():
        with torch.inference_mode():
            x = torch.zeros(B, m, n)
            mom = torch.zeros_like(x)
            for _ in range(steps):
                g = torch.bmm(torch.bmm(x, a) - y, atn)
                mom.mul_(BETA).add_(g, alpha=1 - BETA)
                u = torch.lerp(g, mom, BETA)  # Nesterov: (1 - beta) g + beta m
                x.sub_(ns5(u), alpha=LR * scale)
        return x

    return go


def jax_runner(case: dict, steps: int):
    """A function that runs ``steps`` steps of optax's Muon (jit + scan + vmap) on ``case`` and
    returns the final X (B, m, n), computed (``block_until_ready``)."""
    jax, jnp, optax = _need("jax"), _need("jax.numpy"), _need("optax")
    _need("optax.contrib")
    a_np, y_np = _data(case)
    m, n, N, B = case["m"], case["n"], case["N"], case["B"]
    a, y = jnp.asarray(a_np), jnp.asarray(y_np)
    opt = optax.contrib.muon(learning_rate=LR, ns_coeffs=KELLER[0], ns_steps=len(KELLER), beta=BETA, nesterov=True)

    def loss(x, ai, yi):
        r = x @ ai - yi
        return 0.5 * jnp.sum(r * r) / N

    grad = jax.vmap(jax.grad(loss))
    update = jax.vmap(opt.update)

    def step(carry, _):
        x, st = carry
        upd, st = update(grad(x, a, y), st, x)
        return (optax.apply_updates(x, upd), st), None

    @jax.jit
    def run(x0):
        (x, _), _ = jax.lax.scan(step, (x0, jax.vmap(opt.init)(x0)), None, length=steps)
        return x

    x0 = jnp.zeros((B, m, n), jnp.float32)
    return lambda: run(x0).block_until_ready()


RUNNERS = {"torch": torch_runner, "jax": jax_runner}  # name -> fn(case, steps) -> (fn() -> final X)


def time_peer(name: str, case: dict, steps: int, repeats: int = 1) -> float:
    """Median seconds of peer ``name`` on ``case`` over ``repeats`` runs after one warm-up (for
    JAX the warm-up includes the compilation). :class:`PeerMissing` if its framework is not here."""
    return _time(RUNNERS[name](case, steps), repeats)


def versions() -> dict:
    """Installed version of each peer's framework (None: missing)."""
    out = {}
    for name, mod in (("torch", "torch"), ("jax", "jax"), ("optax", "optax")):
        try:
            out[name] = importlib.import_module(mod).__version__
        except Exception:
            out[name] = None
    try:
        import torch  # noqa: PLC0415

        out["torch_threads"] = torch.get_num_threads()
        out["torch_mkl"] = bool(torch.backends.mkl.is_available())
    except Exception:
        pass
    return out
