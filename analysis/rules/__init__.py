"""Verdict rules for reproduced claims: each turns a finished sweep into a status
(reproduced / partly / not reproduced / not testable), the rule in words and the numbers behind
it. The rule and its thresholds are stated in the claim's preset (configs/claims/*.toml), never
here.

A rule is ``fn(data: Results, **params) -> (status, text, numbers)`` registered with
``@register("name")`` in a topic module of this package (ratios, rates, envelopes, trends; shared
helpers in :mod:`analysis.rules.common`). Rules compute; they never draw. A rule that a preset
gives a ``figure`` parameter declares the named figure (analysis/figures.py) that draws it with
``@register("name", figure="<figure name>")``; :func:`evaluate` takes the ``figure`` parameter off
and draws it after the rule, with the rule's other parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..registry import Registry
from ..results import Results

STATUSES = ("reproduced", "partly", "not reproduced", "not testable")
RULES = Registry("kind")
FIGURE_OF: dict[str, str] = {}  # rule name -> the named figure that draws its ``figure`` parameter
PAIRWISE: set[str] = set()  # rules that compare two methods per cell (a claim preset needs >= 5 seeds for them)


@dataclass
class Verdict:
    claim: str
    status: str
    rule: str
    numbers: dict = field(default_factory=dict)


def register(name: str, figure: str | None = None, pairwise: bool = False):
    """Register a rule under ``name`` (a taken name is an error); ``figure`` names the figure of
    :data:`analysis.figures.FIGURES` that draws the rule's ``figure`` parameter; ``pairwise``: the
    rule compares two methods cell by cell (lab/claims.py asks such presets for >= 5 seeds)."""

    def deco(fn):
        RULES.register(name)(fn)
        if figure is not None:
            FIGURE_OF[name] = figure
        if pairwise:
            PAIRWISE.add(name)
        return fn

    return deco


def evaluate(out_dir: "str | Path | Results", rules: list[dict]) -> list[Verdict]:
    """Each rule ({claim, kind, params}) on the result directory, in order; the figures the rules'
    ``figure`` parameters ask for are drawn into the directory."""
    data = out_dir if isinstance(out_dir, Results) else Results(out_dir)
    out = []
    for r in rules:
        fn = RULES.get(r["kind"])
        params = dict(r.get("params", {}))
        fig = params.pop("figure", None)
        status, text, nums = fn(data, **params)
        if fig:
            from ..figures import draw_for_rule  # noqa: PLC0415  (matplotlib only when a rule asks for a figure)

            draw_for_rule(FIGURE_OF.get(r["kind"]), data, fig, params)
        out.append(Verdict(claim=r["claim"], status=status, rule=text, numbers=nums))
    return out


def overall(verdicts: list[Verdict]) -> str:
    """All sub-claims reproduced -> reproduced; none testable -> not testable; none reproduced
    (and none partly) -> not reproduced; else partly."""
    st = [v.status for v in verdicts if v.status != "not testable"]
    if not st:
        return "not testable"
    if all(s == "reproduced" for s in st):
        return "reproduced"
    if all(s == "not reproduced" for s in st):
        return "not reproduced"
    return "partly"


from . import advantage, bounds, compare, envelopes, rates, ratios, trends  # noqa: E402,F401  (register the rules)

__all__ = [
    "FIGURE_OF",
    "RULES",
    "STATUSES",
    "Verdict",
    "envelopes",
    "evaluate",
    "overall",
    "rates",
    "ratios",
    "register",
    "trends",
]
