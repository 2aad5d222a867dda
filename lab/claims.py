"""Reproduce a paper's claim: a preset (configs/claims/<n>_<name>.toml) holds the claim, its
source, the sweep and the verdict rules; ``reproduce`` runs the sweep, evaluates the rules on
the data and writes docs/claims/<name>.md plus the index docs/claims.md."""
from __future__ import annotations

import copy
import json
import shutil
import time
import tomllib
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from analysis import rules_bounds, rules_trend, verdicts  # noqa: F401  (the first two register their rules)

from .config import _pydantic_message, parse_config
from .errors import ConfigError

CLAIMS_DIR = Path("configs/claims")


class RuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    claim: str
    kind: str
    params: dict = Field(default_factory=dict)


class ClaimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    title: str
    source: str
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
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"claim: {path.name} is not valid TOML ({e})") from None
    except ValidationError as e:
        raise ConfigError(f"{path.name}: {_pydantic_message(e)}") from None
    for i, r in enumerate(claim.rules):
        if r.kind not in verdicts.RULES:
            raise ConfigError(f"rules.{i}.kind: unknown rule {r.kind!r}; allowed: {', '.join(sorted(verdicts.RULES))}")
    sweep = _merge(claim.sweep, claim.full) if full else claim.sweep
    try:
        cfg = parse_config(sweep)
    except ConfigError as e:
        raise ConfigError(f"{path.name}: sweep.{e}") from None
    return claim, cfg


def claim_paths(root: Path = CLAIMS_DIR) -> dict[str, Path]:
    """{claim name: preset path} for every preset in configs/claims/."""
    out = {}
    for p in sorted(root.glob("*.toml")):
        out[tomllib.loads(p.read_text()).get("name", p.stem)] = p
    return out


def find(name: str, root: Path = CLAIMS_DIR) -> Path:
    if Path(name).suffix == ".toml":
        return Path(name)
    paths = claim_paths(root)
    if name not in paths:
        raise ConfigError(f"claim: unknown {name!r}; allowed: {', '.join(paths) or '(no presets)'}")
    return paths[name]


def _verdict_block(claim: ClaimConfig, vs, status: str, res: dict, full: bool) -> str:
    lines = [f"# {claim.title}", "", f"**Source:** {claim.source}", "", claim.summary.strip(), "",
             f"**Preset:** `{find(claim.name)}` ({'full' if full else 'default'} size: {claim.size})  ",
             f"**Runs:** {res['n_runs']} × {res['steps']} steps, wall {res['wall_s']:.0f} s  ",
             f"**Verdict: {status}** (computed from the data by the rules below)", ""]
    for v in vs:
        lines += [f"## {v.claim}", "", f"- rule: {v.rule}", f"- verdict: **{v.status}**"]
        for k, val in v.numbers.items():
            if isinstance(val, str) and "\n" in val:
                lines += [f"- {k}:", "", "```", val, "```"]
            else:
                lines.append(f"- {k}: {val}")
        lines.append("")
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
        rows.append(f"| [{d['title']}](claims/{d['name']}.md) | {d['source']} | **{d['verdict']}** | {fig} | {d['wall_s']:.0f} s ({d['size']}) |")
    text = "\n".join([
        "# Reproduced claims", "",
        "One preset per checkable claim of the seed papers (../shared/PAPERS.md). Each verdict is computed",
        "from the sweep's data by the rule stated in the preset; `muonlab reproduce NAME` (or `--all`) re-runs",
        "it and rewrites its page. A claim the lab does not reproduce is reported as such.", "",
        "| claim | source | verdict | key figure | runtime (2 cores) |", "|---|---|---|---|---|", *rows, ""])
    path = docs / "claims.md"
    path.write_text(text)
    return path


def reproduce(name: str, full: bool = False, out_root: "str | Path" = "results/claims", docs: "str | Path" = "docs",
              progress: bool = True, force: bool = False) -> dict:
    from .api import run_sweep

    path = find(name)
    claim, cfg = load_claim(path, full)
    out = Path(out_root) / (claim.name + ("_full" if full else ""))
    t0 = time.perf_counter()
    res = run_sweep(cfg, out_dir=out, progress=progress, force=force)
    if not res.get("complete", True):
        raise ConfigError(f"reproduce: {res.get('failed_jobs')} job(s) of {claim.name} failed (see muonlab status {out}); "
                          "no verdict is written from an incomplete sweep")
    wall = time.perf_counter() - t0
    docs = Path(docs)
    record = docs / "claims" / f"{claim.name}.json"
    if res["jobs_run_now"] < res["n_jobs"] and record.exists():  # resumed: keep the runtime of the run that computed the jobs
        wall = json.loads(record.read_text()).get("wall_s", wall)
    res = {**res, "wall_s": wall}
    vs = verdicts.evaluate(out, [r.model_dump() for r in claim.rules])
    status = verdicts.overall(vs)
    figdir = docs / "claims" / claim.name
    figdir.mkdir(parents=True, exist_ok=True)
    for fig in claim.figures:
        if (out / fig).exists():
            shutil.copyfile(out / fig, figdir / fig)
    (docs / "claims" / f"{claim.name}.md").write_text(_verdict_block(claim, vs, status, res, full))
    summary = {"name": claim.name, "preset": str(path), "title": claim.title, "source": claim.source, "verdict": status,
               "key_figure": claim.figures[0] if claim.figures else None, "wall_s": wall,
               "size": claim.size, "sub_verdicts": [v.status for v in vs]}
    (docs / "claims" / f"{claim.name}.json").write_text(json.dumps(summary, indent=2))
    write_index(docs)
    return {**summary, "out": out, "verdicts": vs}
