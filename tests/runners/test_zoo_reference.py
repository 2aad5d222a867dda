"""Each optimizer's first three steps against a slow per-run reference written here from the
update rules in ../shared/PAPERS.md and docs/optimizers.md (plain NumPy, float64, a Python loop
over runs and layers; exact polar factors from np.linalg.svd; its own schedule formulas).

The oracle is a fake with a known gradient G_l = H_l * (X_l - S_l) + N_{t,l}: N_t is the step's
draw, the same at every point of that step, so two-point methods see the same draw."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

import runners

sys.path.insert(0, str(Path(__file__).parent))
from runner_fixtures import assert_matches_per_run_reference, fake_data  # noqa: E402

SHAPES = ((4, 3), (2, 5))
STEPS = 3


# --- the reference, one run at a time ------------------------------------------------------


def polar(a):
    u, _, vt = np.linalg.svd(a, full_matrices=False)
    return u @ vt


def nuc(a):
    return float(np.linalg.svd(a, compute_uv=False).sum())


def ns_ref(a, triples, norm_scale):
    """Newton-Schulz on one matrix, written plainly: work on the wide orientation."""
    tall = a.shape[0] > a.shape[1]
    x = a.T.copy() if tall else a.copy()
    x = x / (norm_scale * np.sqrt((x * x).sum()))
    for ca, cb, cc in triples:
        g = x @ x.T
        x = ca * x + cb * (g @ x) + cc * (g @ g @ x)
    return x.T if tall else x


KELLER = [(3.4445, -4.7750, 2.0315)] * 5
PE = [
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
]


def orth_ref(a, h):
    kind, steps = h.get("orth", "svd"), h.get("ns_steps", 0)
    if kind == "svd":
        return polar(a)
    if kind == "ns_keller":
        co, sc = KELLER, 1.0
    elif kind == "polar_express":
        co, sc = PE, 1.02
    else:  # "ns:scale=S;a,b,c;..."
        parts = kind[3:].split(";")
        sc = float(parts[0].split("=")[1])
        co = [tuple(float(v) for v in p.split(",")) for p in parts[1:]]
    if steps:
        co = [co[min(i, len(co) - 1)] for i in range(steps)]
    return ns_ref(a, co, sc)


def shape_scale(rule, m, n):
    return {"original": math.sqrt(max(1.0, m / n)), "rms": 0.2 * math.sqrt(max(m, n)), "none": 1.0}[rule]


def lr_at(h, t):
    w = h.get("warmup", 0)
    ramp = min(1.0, t / w) if w > 0 else 1.0
    kind = h.get("lr_schedule", "constant")
    if kind == "constant":
        f = 1.0
    elif kind == "power":
        f = t ** (-h.get("lr_p", 0.5))
    else:
        big_t, fin = h["horizon"], h.get("lr_final", 0.0)
        s = min(max((t - w) / max(big_t - w, 1), 0.0), 1.0)
        f = fin + (1 - fin) * (1 + math.cos(math.pi * s)) / 2 if kind == "cosine" else 1 - (1 - fin) * s
    return h["lr"] * f * ramp


def beta_at(h, t, default):
    b = h.get("beta", default)
    q = h.get("beta_q", 0.0)
    return 1 - (1 - b) * t ** (-q) if q > 0 else b


DEFAULT_BETA = {
    "sgd": 0.9,
    "normalized_gd": 0.0,
    "signsgd": 0.0,
    "signum": 0.9,
    "lion": 0.9,
    "adam": 0.9,
    "muon": 0.95,
    "spectral_sd": 0.95,
    "ef_muon": 0.95,
    "muon_mvr1": 0.95,
    "muon_mvr2": 0.95,
    "storm": 0.9,
    "gluon": 0.9,
    "gluon_mvr1": 0.9,
    "gluon_mvr2": 0.9,
}


def lmo_ref(name, a, h):
    """(direction, dual norm) for one layer."""
    if name == "spectral":
        return orth_ref(a, h), nuc(a)
    if name == "sign":
        return np.sign(a), float(np.abs(a).sum())
    if name == "row":
        r = np.sqrt((a * a).sum(axis=1, keepdims=True))
        return a / r, float(r.sum())
    if name == "column":
        c = np.sqrt((a * a).sum(axis=0, keepdims=True))
        return a / c, float(c.sum())
    if name == "frobenius":
        f = math.sqrt((a * a).sum())
        return a / f, f
    raise AssertionError(name)


def layer_list(spec, k, cast=float):
    v = [cast(s) for s in str(spec).split(",")]
    return v + [v[-1]] * (k - len(v))


def ref_step(name, h, xs, st, grad, t):
    """One step of ``name`` on one run. ``grad(points)`` gives the step's gradients."""
    lr = lr_at(h, t)
    b = beta_at(h, t, DEFAULT_BETA.get(name, 0.0))
    wd = h.get("weight_decay", 0.0)
    k = len(xs)
    g = grad(xs)
    zeros = [np.zeros_like(x) for x in xs]
    if name in ("gd", "sgd"):
        buf = [b * mo + gi for mo, gi in zip(st.get("buf", zeros), g)] if name == "sgd" else g
        d = [gi + b * bu for gi, bu in zip(g, buf)] if h.get("nesterov") else buf
        st["buf"] = buf
        return [x * (1 - lr * wd) - lr * di for x, di in zip(xs, d)]
    if name == "normalized_gd":
        m = [b * mo + (1 - b) * gi for mo, gi in zip(st.get("m", zeros), g)]
        u = [(1 - b) * gi + b * mi for gi, mi in zip(g, m)] if h.get("nesterov") else m
        st["m"] = m
        nrm = math.sqrt(sum((ui * ui).sum() for ui in u))
        return [x - lr * ui / nrm for x, ui in zip(xs, u)]
    if name in ("signsgd", "signum"):
        m = [b * mo + (1 - b) * gi for mo, gi in zip(st.get("m", zeros), g)]
        u = [(1 - b) * gi + b * mi for gi, mi in zip(g, m)] if h.get("nesterov") else m
        st["m"] = m
        return [x * (1 - lr * wd) - lr * np.sign(ui) for x, ui in zip(xs, u)]
    if name == "lion":
        b2 = h["beta2"]
        m0 = st.get("m", zeros)
        out = [x * (1 - lr * wd) - lr * np.sign(b * mo + (1 - b) * gi) for x, mo, gi in zip(xs, m0, g)]
        st["m"] = [b2 * mo + (1 - b2) * gi for mo, gi in zip(m0, g)]
        return out
    if name == "adam":
        b2, eps = h["beta2"], h["eps"]
        m = [b * mo + (1 - b) * gi for mo, gi in zip(st.get("m", zeros), g)]
        v = [b2 * vo + (1 - b2) * gi**2 for vo, gi in zip(st.get("v", zeros), g)]
        st["m"], st["v"] = m, v
        return [
            x * (1 - lr * wd) - lr * (mi / (1 - b**t)) / (np.sqrt(vi / (1 - b2**t)) + eps)
            for x, mi, vi in zip(xs, m, v)
        ]
    if name in ("muon", "spectral_sd", "ef_muon"):
        nest = h.get("nesterov", name != "spectral_sd")
        if h.get("momentum", "ema") == "ema":
            m = [b * mo + (1 - b) * gi for mo, gi in zip(st.get("m", zeros), g)]
            u = [(1 - b) * gi + b * mi for gi, mi in zip(g, m)] if nest else m
        else:
            m = [b * mo + gi for mo, gi in zip(st.get("m", zeros), g)]
            u = [gi + b * mi for gi, mi in zip(g, m)] if nest else m
        st["m"] = m
        rule = h.get("scale", "none" if name == "spectral_sd" else "original")
        if name == "muon":
            return [x * (1 - lr * wd) - lr * shape_scale(rule, *x.shape) * orth_ref(ui, h) for x, ui in zip(xs, u)]
        if name == "spectral_sd":
            return [
                x * (1 - lr * wd) - lr * shape_scale(rule, *x.shape) * nuc(ui) * orth_ref(ui, h) for x, ui in zip(xs, u)
            ]
        p = [e + lr * ui for e, ui in zip(st.get("e", zeros), u)]
        if h.get("compressor", "scaled") == "scaled":
            d = [nuc(pi) / min(pi.shape) * orth_ref(pi, h) for pi in p]
        else:
            d = [lr * shape_scale(rule, *pi.shape) * orth_ref(pi, h) for pi in p]
        st["e"] = [pi - di for pi, di in zip(p, d)]
        return [x * (1 - lr * wd) - di for x, di in zip(xs, d)]
    if name in ("muon_mvr1", "muon_mvr2"):
        gamma = h.get("gamma", 0.025)
        if name == "muon_mvr1":
            g_last = g if t == 1 else st["g"]
        else:
            g_last = grad(st.get("prev", xs))
        st["g"], st["prev"] = g, xs
        c = [gi + gamma * b / (1 - b) * (gi - gl) for gi, gl in zip(g, g_last)]
        if h.get("clip"):
            c = [ci / max(1.0, math.sqrt((ci * ci).sum())) for ci in c]
        m = [b * mo + (1 - b) * ci for mo, ci in zip(st.get("m", zeros), c)]
        st["m"] = m
        rule = h.get("scale", "original")
        return [x * (1 - lr * wd) - lr * shape_scale(rule, *x.shape) * orth_ref(mi, h) for x, mi in zip(xs, m)]
    if name == "storm":
        gp = grad(st.get("prev", xs))
        d = g if t == 1 else [gi + b * (do - gpi) for gi, do, gpi in zip(g, st["d"], gp)]
        st["d"], st["prev"] = d, xs
        return [x - lr * di for x, di in zip(xs, d)]
    if name in ("gluon", "gluon_mvr1", "gluon_mvr2"):
        if name == "gluon":
            m = [b * mo + (1 - b) * gi for mo, gi in zip(st.get("m", zeros), g)]
        else:
            gp = grad(st.get("prev", xs))
            st["prev"] = xs
            if name == "gluon_mvr1":
                m = g if t == 1 else [gi + b * (mo - gpi) for gi, mo, gpi in zip(g, st["m"], gp)]
            else:
                q = h.get("q", 0.1)
                v = g if t == 1 else [gi + (1 - q) * (vo - gpi) for gi, vo, gpi in zip(g, st["v"], gp)]
                st["v"] = v
                m = [b * mo + (1 - b) * vi for mo, vi in zip(st.get("m", zeros), v)]
        st["m"] = m
        norms = layer_list(h.get("norms", "spectral"), k, str)
        radii = layer_list(h.get("radii", "1"), k)
        a0s, a1s = layer_list(h.get("l0_layers", "1"), k), layer_list(h.get("l1_layers", "1"), k)
        out = []
        for i, (x, mi) in enumerate(zip(xs, m)):
            d, dual = lmo_ref(norms[i], mi, h)
            if h.get("constrained"):
                out.append((1 - lr) * x - lr * radii[i] * d)
            elif h.get("step", "radius") == "radius":
                out.append(x - lr * radii[i] * d)
            else:
                out.append(x - lr * dual / (h.get("l0", 1.0) * a0s[i] + h.get("l1", 0.0) * a1s[i] * dual) * d)
        return out
    raise AssertionError(f"no reference for {name}")


# --- the cases: every registered optimizer at least once, per-run hyperparameters differing ---

LR = [0.01, 0.02, 0.05]
BETA = [0.0, 0.5, 0.9]
WD = [0.0, 0.1, 0.3]
CASES = [
    ("gd", {"lr": LR}),
    ("gd", {"lr": LR, "lr_schedule": "power", "lr_p": [0.3, 0.5, 1.0]}),
    ("sgd", {"lr": LR, "beta": BETA, "nesterov": True, "weight_decay": WD}),
    ("sgd", {"lr": LR, "beta": BETA, "lr_schedule": "linear", "horizon": 4, "lr_final": [0.0, 0.2, 0.5]}),
    ("normalized_gd", {"lr": LR, "beta": BETA, "nesterov": True}),
    ("signsgd", {"lr": LR, "beta": [0.0, 0.3, 0.6]}),
    ("signum", {"lr": LR, "beta": BETA, "nesterov": True, "weight_decay": WD}),
    ("lion", {"lr": LR, "beta": BETA, "beta2": [0.5, 0.9, 0.99], "weight_decay": WD}),
    ("adam", {"lr": LR, "beta": BETA, "beta2": [0.5, 0.9, 0.999], "eps": [1e-8, 1e-3, 0.1], "weight_decay": WD}),
    ("muon", {"lr": LR, "beta": BETA, "orth": "svd", "weight_decay": WD}),
    ("muon", {"lr": LR, "beta": BETA, "orth": "svd", "momentum": "sum", "nesterov": False, "scale": "rms"}),
    (
        "muon",
        {
            "lr": LR,
            "beta": [0.5, 0.8, 0.95],
            "orth": "svd",
            "lr_schedule": "cosine",
            "horizon": 5,
            "warmup": [0, 1, 2],
            "lr_final": 0.1,
            "beta_q": [0.0, 0.5, 1.0],
        },
    ),
    ("muon", {"lr": LR, "beta": BETA, "orth": "ns_keller"}),
    ("muon", {"lr": LR, "beta": BETA, "orth": "polar_express", "ns_steps": 7}),
    ("muon", {"lr": LR, "beta": BETA, "orth": "ns:scale=1.1;3.0,-3.2,1.2;2.0,-1.5,0.5", "ns_steps": 4}),
    ("spectral_sd", {"lr": LR, "beta": BETA, "nesterov": True}),
    ("ef_muon", {"lr": LR, "beta": BETA, "weight_decay": WD}),
    ("ef_muon", {"lr": LR, "beta": BETA, "compressor": "unit", "scale": "original", "nesterov": False}),
    ("muon_mvr1", {"lr": LR, "beta": [0.5, 0.8, 0.95], "gamma": [0.1, 0.5, 1.0], "orth": "svd", "clip": True}),
    ("muon_mvr2", {"lr": LR, "beta": [0.5, 0.8, 0.95], "gamma": [0.1, 0.5, 1.0], "orth": "svd", "weight_decay": WD}),
    (
        "storm",
        {"lr": LR, "beta": BETA, "beta_q": [0.0, 0.5, 0.7], "allow_degenerate": True},
    ),  # beta = 0: = SGD, on purpose
    ("gluon", {"lr": LR, "beta": BETA, "norms": "spectral,row", "radii": "1,0.5", "orth": "svd"}),
    (
        "gluon",
        {
            "lr": LR,
            "beta": BETA,
            "norms": "sign,column",
            "step": "l0l1",
            "l0": [0.5, 1.0, 2.0],
            "l1": [0.0, 0.5, 1.0],
            "l0_layers": "1,2",
            "l1_layers": "1,0.5",
        },
    ),
    (
        "gluon",
        {
            "lr": [0.1, 0.2, 0.5],
            "beta": BETA,
            "norms": "frobenius,spectral",
            "radii": "2,1",
            "constrained": True,
            "orth": "svd",
        },
    ),
    ("gluon_mvr1", {"lr": LR, "beta": BETA, "norms": "spectral,sign", "orth": "svd", "allow_degenerate": True}),
    (
        "gluon_mvr2",
        {
            "lr": LR,
            "beta": BETA,
            "q": [0.1, 0.5, 1.0],
            "norms": "row,spectral",
            "orth": "svd",
            "allow_degenerate": True,
        },
    ),  # q = 1 (= gluon) on purpose: the reference covers the edge
]


def _cases_elsewhere():
    """The optimizer names of the ``CASES`` of the other ``test_*_reference.py`` files beside this
    one (a family whose reference loop lives in its own file, e.g. test_preconditioned_reference.py)."""
    import importlib.util

    here = Path(__file__)
    for path in sorted(here.parent.glob("test_*_reference.py")):
        if path.name != here.name:
            spec = importlib.util.spec_from_file_location(f"_reference_{path.stem}", path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            yield from (name for name, _ in mod.CASES)


def test_every_registered_optimizer_has_a_reference_case():
    assert set(runners.REGISTRY) <= {name for name, _ in CASES} | set(_cases_elsewhere())


@pytest.mark.parametrize("name,hp", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_first_three_steps_equal_the_per_run_reference(name, hp):
    assert_matches_per_run_reference(
        name, hp, fake_data(SHAPES, STEPS), lambda hr, xs, st, grad, t: ref_step(name, hr, xs, st, grad, t)
    )
