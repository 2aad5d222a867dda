"""Reproduce a paper's claim: a preset (configs/claims/<n>_<name>.toml) holds the claim, its
source, the sweep and the verdict rules; ``reproduce`` runs the sweep, evaluates the rules on
the data and writes docs/claims/<name>.md plus the index docs/claims.md."""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
import tomllib
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from analysis import assumptions, rules

from . import perf_env
from .config import _pydantic_message, parse_config
from .errors import ConfigError


def claims_dir() -> Path:
    """The claim presets' directory (installed package data, else the checkout's configs/claims)."""
    from .api import preset_dirs  # noqa: PLC0415

    return preset_dirs()[1]


class RuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    claim: str
    kind: str
    params: dict = Field(default_factory=dict)


class AssumptionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str  # the assumption in the theorem's words, e.g. "PL with constant mu"
    kind: str  # a check of analysis.assumptions.CHECKS
    params: dict = Field(default_factory=dict)


class PaperConfig(BaseModel):
    """The paper version a claim page quotes (issue: every page names the version it read)."""

    model_config = ConfigDict(extra="forbid")
    arxiv: str  # e.g. "2509.15816"
    version: str  # e.g. "v5"
    date: Optional[str] = None
    read: str = Field(description="what of it was read: 'abstract', 'theorem 3.2', 'full text', ...")


MIN_PAIRWISE_SEEDS = 5


class ClaimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    title: str
    source: str
    paper: Optional[PaperConfig] = None
    statement: Optional[str] = None  # the paper's words, quoted
    regime: Optional[str] = None  # which regime the statement is about, and what this instance can and cannot show
    assumptions: list[AssumptionConfig] = Field(default_factory=list)
    few_seeds_reason: Optional[str] = (
        None  # why a pairwise rule may run on fewer than 5 seeds (e.g. a deterministic problem)
    )
    summary: str = ""
    size: str = Field(description="the sweep's size in words, with the 2-core runtime it was sized for")
    figures: list[str] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(min_length=1)
    sweep: dict
    full: dict = Field(default_factory=dict)
    notes: Optional[str] = None


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_claim(path: "str | Path", full: bool = False):
    """(ClaimConfig, validated SweepConfig) from a claim preset."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
        claim = ClaimConfig.model_validate(data)
    except FileNotFoundError:
        raise ConfigError(f"claim: no such file {str(path)!r}") from None
    except IsADirectoryError:
        raise ConfigError(f"claim: {path} is a directory, not a claim preset (.toml)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"claim: {path} is not UTF-8 text") from None
    except OSError as e:
        raise ConfigError(f"claim: {path} cannot be read ({e.strerror or type(e).__name__})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"claim: {path.name} is not valid TOML ({e})") from None
    except ValidationError as e:
        raise ConfigError(f"{path.name}: {_pydantic_message(e)}") from None
    for i, r in enumerate(claim.rules):
        try:
            rules.RULES.get(r.kind)
        except KeyError as e:  # "kind: got X; allowed: ..."
            raise ConfigError(f"{path.name}: rules.{i}.{e}") from None
    for i, a in enumerate(claim.assumptions):
        try:
            assumptions.CHECKS.get(a.kind)
        except KeyError as e:
            raise ConfigError(f"{path.name}: assumptions.{i}.{e}") from None
    sweep = _merge(claim.sweep, claim.full) if full else claim.sweep
    try:
        cfg = parse_config(sweep)
    except ConfigError as e:
        raise ConfigError(f"{path.name}: sweep.{e}") from None
    pairwise = sorted({r.kind for r in claim.rules} & rules.PAIRWISE)
    if pairwise and len(cfg.seeds) < MIN_PAIRWISE_SEEDS and not claim.few_seeds_reason:
        raise ConfigError(
            f"{path.name}: sweep.seeds: got {len(cfg.seeds)} seeds for the pairwise rule(s) "
            f"{', '.join(pairwise)}; allowed: at least {MIN_PAIRWISE_SEEDS}, or few_seeds_reason stated"
        )
    return claim, cfg


def claim_paths(root: "Path | None" = None) -> dict[str, Path]:
    """{claim name: preset path} for every preset in the claims directory (:func:`claims_dir`);
    an unreadable preset is listed under its file name (``reproduce`` then names its error)."""
    out = {}
    for p in sorted(Path(root or claims_dir()).glob("*.toml")):
        try:
            name = tomllib.loads(p.read_text()).get("name", p.stem)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            name = p.stem
        out[name if isinstance(name, str) else p.stem] = p
    return out


def find(name: str, root: "Path | None" = None) -> Path:
    if Path(name).suffix == ".toml":
        return Path(name)
    paths = claim_paths(root)
    if name not in paths:
        raise ConfigError(f"claim: unknown {name!r}; allowed: {', '.join(paths) or '(no presets)'}")
    return paths[name]


def _quote(text: str) -> list[str]:
    return ["> " + ln if ln else ">" for ln in text.strip().splitlines()]


def _numbers(nums: dict) -> list[str]:
    out = []
    for k, val in nums.items():
        if isinstance(val, str) and "\n" in val:
            out += [f"- {k}:", "", "```", val, "```"]
        else:
            out.append(f"- {k}: {val}")
    return out


def _verdict_block(claim: ClaimConfig, vs, checks, status: str, res: dict, full: bool) -> str:
    lines = [f"# {claim.title}", "", f"**Source:** {claim.source}", ""]
    if claim.paper:
        p = claim.paper
        lines += [f"**Paper read:** arXiv {p.arxiv} {p.version}{f' ({p.date})' if p.date else ''}, {p.read}", ""]
    if claim.statement:
        lines += ["**The statement tested** (quoted):", "", *_quote(claim.statement), ""]
    if claim.regime:
        lines += ["**Regime and reach:** " + claim.regime.strip(), ""]
    lines += [
        claim.summary.strip(),
        "",
        f"**Preset:** `{claim.name}` ({'full' if full else 'default'} size: {claim.size})  ",
        f"**Runs:** {res['n_runs']} × {res['steps']} steps, wall {res['wall_s']:.0f} s on {res['cpu']} "
        f"({res['cores']} cores)  ",
        f"**Per-cell table:** [`{claim.name}/cells.csv`]({claim.name}/cells.csv) (summary.csv of the sweep: "
        "tuned point, median and CI per cell and optimizer)  ",
        f"**Verdict: {status}** (computed from the data by the rules below)",
        "",
    ]
    if checks:
        outside = [c.name for c in checks if c.status == assumptions.VIOLATED]
        lines += [
            "## Assumptions checked on the instance",
            "",
            "| assumption | check | on this instance | numbers |",
            "|---|---|---|---|",
        ]
        for c in checks:
            nums = "; ".join(f"{k} = {v}" for k, v in c.numbers.items())
            lines.append(f"| {c.name} | {c.text} | **{c.status}** | {nums} |")
        lines.append("")
        if outside:
            lines += [
                f"**Tested outside the theorem's regime:** {', '.join(outside)} does not hold on this instance; "
                "the verdicts below are about an instance the theorem does not cover.",
                "",
            ]
    for v in vs:
        lines += [f"## {v.claim}", "", f"- rule: {v.rule}", f"- verdict: **{v.status}**", *_numbers(v.numbers), ""]
    for fig in claim.figures:
        lines += [f"![{fig}]({claim.name}/{fig})", ""]
    if claim.notes:
        lines += ["## Notes", "", claim.notes.strip(), ""]
    return "\n".join(lines)


def write_index(docs: Path) -> Path:
    rows = []
    records = [json.loads(j.read_text()) for j in (docs / "claims").glob("*.json")]
    for d in sorted(records, key=lambda d: (d.get("preset", ""), d["name"])):
        fig = f"[{d['key_figure']}](claims/{d['name']}/{d['key_figure']})" if d.get("key_figure") else ""
        flag = " (outside the theorem's regime)" if d.get("outside_regime") else ""
        paper = f"arXiv {d['paper']['arxiv']} {d['paper']['version']}" if d.get("paper") else d["source"]
        cpu = f", {d['cpu']}" if d.get("cpu") else ""
        rows.append(
            f"| [{d['title']}](claims/{d['name']}.md) | {paper} | **{d['verdict']}**{flag} | {fig} | "
            f"{d['wall_s']:.0f} s{cpu} ({d['size']}) |"
        )
    text = "\n".join(
        [
            "# Reproduced claims",
            "",
            "One preset per checkable claim of the seed papers (../shared/PAPERS.md). Each verdict is computed",
            "from the sweep's data by the rule stated in the preset; `muonlab reproduce NAME --docs` (or `--all`)",
            "re-runs it and rewrites its page here (without `--docs`, into results/claims/pages/). A claim the lab",
            "does not reproduce is reported as such.",
            "",
            "| claim | paper read | verdict | key figure | runtime (CPU) |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    path = docs / "claims.md"
    path.write_text(text)
    return path


def _preset_label(path: Path) -> str:
    """The preset as the checkout names it (``configs/claims/<file>``), else its path."""
    from .api import preset_dirs  # noqa: PLC0415

    try:
        return str(Path("configs") / Path(path).resolve().relative_to(preset_dirs()[0].resolve()))
    except ValueError:
        return str(path)


def reproduce(
    name: str,
    full: bool = False,
    out_root: "str | Path" = "results/claims",
    docs: "str | Path | None" = None,
    progress: bool = True,
    force: bool = False,
) -> dict:
    """Run a claim's preset into ``out_root/<name>`` and write its page, record and figures under
    ``docs`` (a directory laid out like the checkout's docs/: ``claims.md``, ``claims/<name>.md``,
    ``claims/<name>.json``, ``claims/<name>/``); by default under ``out_root/pages``, so that
    reproducing never touches tracked files unless asked (``muonlab reproduce --docs``)."""
    from .api import run_sweep
    from .store import Store

    path = find(name)
    claim, cfg = load_claim(path, full)
    out = Path(out_root) / (claim.name + ("_full" if full else ""))
    docs = Path(docs) if docs is not None else Path(out_root) / "pages"
    for d in (docs, docs / "claims", docs / "claims" / claim.name):
        if d.exists() and not d.is_dir():
            raise ConfigError(f"docs: {d} is a file, not a directory for the claim pages")
    t0 = time.perf_counter()
    res = run_sweep(cfg, out_dir=out, progress=progress, force=force)
    if not res.get("complete", True):
        raise ConfigError(
            f"reproduce: {res.get('failed_jobs')} job(s) of {claim.name} failed (see muonlab status {out}); "
            "no verdict is written from an incomplete sweep"
        )
    # the runtime and CPU of the sessions that computed the jobs (a resume that ran nothing keeps them)
    manifest = Store(out).read_manifest() or {}
    wall = manifest.get("wall_s") or (time.perf_counter() - t0)
    cpu = manifest.get("cpu") or perf_env.cpu()["model"] or "unknown CPU"
    res = {**res, "wall_s": wall, "cpu": cpu, "cores": (manifest.get("host") or {}).get("cores") or os.cpu_count()}
    vs = rules.evaluate(out, [r.model_dump() for r in claim.rules])
    checks = assumptions.check_all(out, [a.model_dump() for a in claim.assumptions])
    status = rules.overall(vs)
    figdir = docs / "claims" / claim.name
    try:
        figdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"docs: cannot create {figdir} ({e.strerror or type(e).__name__})") from None
    for fig in claim.figures:
        if (out / fig).exists():
            shutil.copyfile(out / fig, figdir / fig)
    if (out / "summary.csv").exists():
        shutil.copyfile(out / "summary.csv", figdir / "cells.csv")
    (docs / "claims" / f"{claim.name}.md").write_text(_verdict_block(claim, vs, checks, status, res, full))
    summary = {
        "name": claim.name,
        "preset": _preset_label(path),
        "title": claim.title,
        "source": claim.source,
        "verdict": status,
        "paper": claim.paper.model_dump() if claim.paper else None,
        "key_figure": claim.figures[0] if claim.figures else None,
        "wall_s": wall,
        "cpu": res["cpu"],
        "cores": res["cores"],
        "size": claim.size,
        "sub_verdicts": [v.status for v in vs],
        "assumptions": {c.name: c.status for c in checks},
        "outside_regime": any(c.status == assumptions.VIOLATED for c in checks),
    }
    (docs / "claims" / f"{claim.name}.json").write_text(json.dumps(summary, indent=2))
    write_index(docs)
    return {**summary, "out": out, "page": docs / "claims" / f"{claim.name}.md", "verdicts": vs}
