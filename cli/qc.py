"""`wanflow qc FILE`, `wanflow qc agreement` and `wanflow policy check TEXT`: a clip, or a text alone, under a
brand's rules (merged into the root app; exit 0 pass, 3 needs review, 4 blocked), and the checks measured
against the reviewers' decisions over the catalog's history.

`wanflow qc FILE` is short for `wanflow qc check FILE`: the `qc` group takes a first argument that is not one of
its commands as the file to check."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import click
import typer
from rich.table import Table
from sqlalchemy import select
from typer.core import TyperGroup

from adapters import qc_report
from adapters.qc_models import Models
from catalog.db import session_scope
from catalog.models import Campaign, QcValidation
from cli.context import InputError, brand_profile, catalog, console, guard, settings
from core.files import safe_file_name
from core.i18n import LocaleError, check_locale
from governance.qc import Expected
from governance.text_policy import check_text, outcome_of
from wan_tasks.agreement import run_agreement
from wan_tasks.quality import evaluate


class QcGroup(TyperGroup):
    """`wanflow qc`: a first argument that is not one of its commands (nor --help) is a file, for `check`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] != "--help":
            args = ["check", *args]
        return super().parse_args(ctx, args)


app = typer.Typer()
qc_app = typer.Typer(cls=QcGroup, no_args_is_help=True,
                     help="Run every QC check on FILE under a brand's rules (exit 0 pass, 3 needs review, 4 "
                          "blocked);\n`qc agreement`: the checks measured against the reviewers' decisions.")
app.add_typer(qc_app, name="qc")
policy_app = typer.Typer(help="The brand's text policy on its own.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

QC_EXIT = {"pass": 0, "needs_review": 3, "block": 4}
QC_STYLE = {"pass": "green", "needs_review": "yellow", "block": "red"}
BrandOpt = Annotated[str, typer.Option("--brand", help="Brand name (profile in --brands-dir) or a profile file.")]
BrandsDirOpt = Annotated[Optional[Path], typer.Option(help="Folder of brand profiles (default: WANFLOW_BRANDS_DIR "
                                                           "or ./brands).")]


@qc_app.command("check")
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
    """Run every QC check on FILE under a brand's rules. Exit 0 pass, 3 needs review, 4 blocked.
    `wanflow qc FILE` is short for this."""
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


def _opt(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


@qc_app.command("report")
@guard
def qc_report_cmd(
    campaign: Annotated[str, typer.Argument(help="Campaign name.")],
    locale: Annotated[Optional[str], typer.Option(help="Language of the report: en or ja (default WANFLOW_LOCALE).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Where to write it (default: the home's reports/).")] = None,
) -> None:
    """Write the campaign's QC report (self-contained HTML) again, in the reader's language."""
    cfg = settings()
    try:
        lang = check_locale(locale or cfg.locale)
    except LocaleError as e:
        raise InputError([f"--locale: {e}"]) from None
    with session_scope(catalog()) as s:
        row = s.scalar(select(Campaign).where(Campaign.name == campaign))
        if row is None:
            raise InputError([f"campaign: no campaign {campaign!r} in the catalog"])
        validation = s.scalar(select(QcValidation).where(QcValidation.campaign_id == row.id)
                              .order_by(QcValidation.id.desc()).limit(1))
        dest = out or cfg.home_dir / "reports" / safe_file_name(campaign) / f"qc-report-{lang}.html"
        qc_report.write_report(s, campaign, dest, row.brand, validation.run_id if validation else None, validation,
                               lang, cfg.timezone)
    console.print(f"QC report ({lang}): {dest}")


@qc_app.command("agreement")
@guard
def qc_agreement(
    campaign: Annotated[Optional[str], typer.Option(help="Only this campaign's clips (default: every campaign).")] = None,
    since: Annotated[Optional[datetime], typer.Option(
        help="Only decisions taken since this date (UTC).",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"])] = None,
    locale: Annotated[Optional[str], typer.Option(help="Language of the report: en or ja (default WANFLOW_LOCALE).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Each QC check against the reviewers' decisions and reasons: precision, recall, Cohen's kappa, the
    threshold that would have matched them best (a suggestion, never applied), and the reviewers' agreement
    with one another (two-stage decisions, A/B votes). Writes an HTML report, attached to an MLflow run."""
    since = since.replace(tzinfo=timezone.utc) if since is not None and since.tzinfo is None else since
    try:
        lang = check_locale(locale) if locale else None
    except LocaleError as e:
        raise InputError([f"--locale: {e}"]) from None
    result = run_agreement(catalog(), settings(), campaign, since, lang)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        return
    console.print(f"{result['clips_reviewed']} reviewed clip(s): {result['approved']} approved, {result['rejected']} "
                  f"rejected or sent back; {result['blocked_unreviewed']} blocked by QC (never reviewed, not compared)")
    t = Table("check", "ran", "not run", "TP FP FN TN", "precision", "recall", "kappa", "suggested threshold",
              title="QC checks against the reviewers (positive: rejected; TP: flagged and rejected)")
    notes: dict[str, list[str]] = {}
    for c in result["checks"]:
        sug = "; ".join(f"{s['brand']}: {s['parameter']} {s['current']} → {s['suggested']:g}" for s in c["suggestions"])
        t.add_row(c["check"], str(c["n"]), str(c["not_run"]), f"{c['tp']} {c['fp']} {c['fn']} {c['tn']}",
                  _opt(c["precision"]) or "—", _opt(c["recall"]) or "—", _opt(c["kappa"]) or "—", sug)
        if c["kappa_note"]:
            notes.setdefault(c["kappa_note"], []).append(c["check"])
    console.print(t)
    for note, checks in notes.items():
        console.print(f"no kappa ({note}): {', '.join(checks)}", markup=False, highlight=False)
    st, ab = result["stages"], result["ab_votes"]
    if st:
        console.print(f"two-stage: the approver confirmed {st['agreed']} of {st['clips']} approvals "
                      f"({_opt(st['agreement'])})")
    if ab:
        console.print(f"A/B votes: {ab['pairs_with_two_votes']} pairs with two or more votes, agreement "
                      f"{_opt(ab['agreement'])}; " + ", ".join(f"{' · '.join(p['reviewers'])}: kappa "
                                                               f"{_opt(p['kappa']) or '—'}" for p in ab["by_reviewers"]))
    console.print("suggested thresholds are suggestions only: no brand profile was changed")
    console.print(f"report: {result['report']}  (MLflow run {result['mlflow_run_id']})", markup=False,
                  highlight=False)


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
