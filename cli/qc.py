"""`wanflow qc FILE` and `wanflow policy check TEXT`: a clip, or a text alone, under a brand's rules (merged into
the root app). Exit 0 pass, 3 needs review, 4 blocked."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from adapters.qc_models import Models
from cli.context import InputError, brand_profile, console, guard, settings
from governance.qc import Expected
from governance.text_policy import check_text, outcome_of
from wan_tasks.quality import evaluate

app = typer.Typer()
policy_app = typer.Typer(help="The brand's text policy on its own.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

QC_EXIT = {"pass": 0, "needs_review": 3, "block": 4}
QC_STYLE = {"pass": "green", "needs_review": "yellow", "block": "red"}
BrandOpt = Annotated[str, typer.Option("--brand", help="Brand name (profile in --brands-dir) or a profile file.")]
BrandsDirOpt = Annotated[Optional[Path], typer.Option(help="Folder of brand profiles (default: WANFLOW_BRANDS_DIR "
                                                           "or ./brands).")]


@app.command("qc")
@guard
def qc_file(
    file: Annotated[Path, typer.Argument(help="Video file to check.")],
    brand: BrandOpt,
    prompt: Annotated[Optional[str], typer.Option(help="The prompt that made the clip (text policy, alignment).")] = None,
    negative_prompt: Annotated[Optional[str], typer.Option(help="Its negative prompt.")] = None,
    width: Annotated[Optional[int], typer.Option(help="Requested width.")] = None,
    height: Annotated[Optional[int], typer.Option(help="Requested height.")] = None,
    fps: Annotated[Optional[float], typer.Option(help="Requested frame rate.")] = None,
    frames: Annotated[Optional[int], typer.Option(help="Requested number of frames.")] = None,
    brands_dir: BrandsDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Run every QC check on FILE under a brand's rules. Exit 0 pass, 3 needs review, 4 blocked."""
    if not file.is_file():
        raise InputError([f"{file}:0:file: no such file"])
    profile = brand_profile(brand, brands_dir)
    results, verdict = evaluate(file, Expected(width, height, frames, fps), profile,
                                models=Models.from_settings(settings()), prompt=prompt, negative_prompt=negative_prompt)
    code = QC_EXIT[verdict.outcome]
    if as_json:
        out = {"file": str(file), "brand": profile.name, "profile_sha256": profile.sha256, "outcome": verdict.outcome,
               "exit_code": code, "findings": [dataclasses.asdict(f) for f in verdict.findings],
               "notes": [dataclasses.asdict(f) for f in verdict.notes],
               "results": [dataclasses.asdict(r) | {"outcome": verdict.outcomes[r.check]} for r in results]}
        sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False, default=str) + "\n")
        raise typer.Exit(code)
    t = Table("check", "result", "value", "threshold", "outcome", "details", title=f"{file} — brand {profile.name}")
    for r in results:
        o = verdict.outcomes[r.check]
        t.add_row(r.check, "not run" if r.passed is None else ("pass" if r.passed else "FAIL"),
                  "" if r.value is None else f"{r.value:g}", "" if r.threshold is None else f"{r.threshold:g}",
                  f"[{QC_STYLE[o]}]{o}[/]", r.message)
    console.print(t)
    console.print(f"[bold {QC_STYLE[verdict.outcome]}]{verdict.outcome.replace('_', ' ')}[/]"
                  + (f": {len(verdict.findings)} finding(s)" if verdict.findings else ""))
    for f in verdict.findings:
        console.print(f"  {f.outcome}: {f}", markup=False, highlight=False)
    raise typer.Exit(code)


@policy_app.command("check")
@guard
def policy_check(
    text: Annotated[str, typer.Argument(help="Text to check (a prompt, a caption).")],
    brand: BrandOpt,
    brands_dir: BrandsDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Run the brand's text policy alone. Exit 0 pass, 3 needs review (sensitive topic), 4 blocked."""
    profile = brand_profile(brand, brands_dir)
    found = check_text(text, profile)
    outcome = outcome_of(found)
    if as_json:
        sys.stdout.write(json.dumps({"brand": profile.name, "outcome": outcome, "findings": [
            dataclasses.asdict(f) | {"message": f.message} for f in found]}, ensure_ascii=False, indent=2) + "\n")
    else:
        console.print(f"[bold {QC_STYLE[outcome]}]{outcome.replace('_', ' ')}[/] (brand {profile.name})")
        for f in found:
            console.print(f"  {f.outcome}: {f.message}", markup=False, highlight=False)
    raise typer.Exit(QC_EXIT[outcome])
