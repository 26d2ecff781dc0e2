"""`wanflow run|publish|regenerate|demo`: a campaign from its brief to published files (top-level commands,
merged into the root app; `wanflow validate` is :mod:`cli.validate`)."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.provenance import dev_trust_anchor, make_dev_ca, verify
from catalog.db import session_scope
from catalog.lineage import lineage
from catalog.models import Decision
from cli.context import InputError, catalog, console, fail, guard, prefect_flows, settings
from cli.lineage import print_lineage
from cli.users import demo_users
from core.settings import Settings
from governance.brief_schema import BriefInvalid
from governance.renditions import load_presets
from wan_tasks.intake import validate
from wan_tasks.regenerate import CannotRegenerate, regenerate
from wan_tasks.review import decide, pending

app = typer.Typer()
DEMO_APPROVER = "demo-approver (demo user, not a real approval)"
EXAMPLE_BRIEF = Path("examples/brief.yaml")
EXAMPLE_EDIT = Path("examples/edit-brief.yaml")  # a 9:16 reframe of the approved hero clip (see README, Editing)


class Speed(str, Enum):
    """The speed presets of governance/speed.py, for `wanflow run --speed`."""

    plain = "plain"
    fast = "fast"
    turbo = "turbo"


def run_campaign(brief: Path, cfg: Settings) -> dict:
    """The campaign flow on ``brief``, with a progress bar; every problem of the brief first (exit 2)."""
    validate(brief, cfg)  # exit 2 with every problem before any flow starts (or file is written)
    flows = prefect_flows()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.1f}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        flows.progress.install(bar)
        try:
            return flows.campaign.campaign(str(brief), cfg)
        finally:
            flows.progress.install(None)


def print_summary(summary: dict) -> None:
    t = Table(title=f"campaign {summary['campaign']} — run {summary['run_id']}", show_header=False)
    t.add_row("model", f"{summary['model']} — {summary['model_label']}")
    if summary.get("canary"):
        c = summary["canary"]
        t.add_row("canary", f"{c['fraction']:.0%} → {c['model']} — {c['label']}")
        for arm, a in summary.get("arms", {}).items():
            t.add_row(f"  {arm}", f"jobs {a['jobs_planned']}, QC pass rate {a['qc_pass_rate']}, s/clip {a['seconds_per_clip']}")
    for k in ("jobs_planned", "jobs_failed", "clips_generated", "clips_reused", "qc_pass_rate", "seconds_per_clip",
              "items_rejected_by_policy"):
        t.add_row(k, str(summary[k]))
    t.add_row("clips by status", ", ".join(f"{k}={v}" for k, v in summary["clips_by_status"].items()))
    if summary["qc_failures_by_check"]:
        t.add_row("QC failures", ", ".join(f"{k}={v}" for k, v in summary["qc_failures_by_check"].items()))
    if "qc_outcomes" in summary:
        t.add_row("QC outcomes", ", ".join(f"{k}={v}" for k, v in summary["qc_outcomes"].items()))
        v = summary["qc_validation"]
        t.add_row("QC expectations", f"{'met' if v['success'] else 'NOT met'}: {v['evaluated'] - v['failed']} of "
                                     f"{v['evaluated']}" + "".join(f"; unmet: {u}" for u in v["unmet"]))
        t.add_row("QC report", summary["qc_report"])
    console.print(t)


@app.command("run")
@guard
def campaign_run(brief: Annotated[Path, typer.Argument(help="Campaign brief (YAML).")],
                 speed: Annotated[Speed | None, typer.Option(
                     "--speed", help="Speed preset for every job made by this run: plain, fast (lossless) or turbo "
                          "(quality-trading); default: the brief's `speed:`, else WANFLOW_SPEED.")] = None) -> None:
    """Run a campaign: validate → catalog → plan → generate → QC → review queue. Re-runs regenerate nothing."""
    cfg = settings()
    summary = run_campaign(brief, cfg.model_copy(update={"speed_override": speed.value}) if speed else cfg)
    print_summary(summary)
    if summary["jobs_failed"]:
        fail(1, [f"{summary['jobs_failed']} job(s) failed (see the catalog's job errors); re-run to retry them."])


@app.command("publish")
@guard
def campaign_publish(campaign: Annotated[str, typer.Argument(help="Campaign name.")]) -> None:
    """Transcode approved clips and deliver renditions, posters and a manifest to the destination."""
    cfg = settings()
    flows = prefect_flows()
    flows.publish.signing_config(cfg), load_presets(cfg.presets_file)  # exit 2 on bad set-up before the flow starts
    summary = flows.publish.publish(campaign, cfg)
    console.print(f"{summary['publications']} files delivered from {summary['clips']} approved clips → "
                  f"{summary['delivery_dir']}\nmanifest: {summary['manifest']}\nwebhook: {summary['webhook']}")
    if summary["failed_files"] or summary["failed_clips"] or str(summary["webhook"]).startswith("failed") \
            or str(summary["manifest"]).startswith("failed"):
        fail(1, [f"clip {c}: {e}" for c, e in summary["failed_clips"].items()]
             + ["some files were not delivered (see the manifest's `failed`); re-run to retry them."])


@app.command("regenerate")
@guard
def campaign_regenerate(
    job: Annotated[str, typer.Argument(help="Job id (N or job:N), as `wanflow lineage` shows it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    check_weights: Annotated[bool, typer.Option("--check-weights/--skip-weights-check",
                                                help="Hash the weight files first (slow for 14B).")] = True,
) -> None:
    """Regenerate a job on its recorded device, dtype and memory policy; exit 0 if its frames match the catalog's
    hash exactly, 1 if they differ. Writes no clip, only an audit event."""
    num = job.removeprefix("job:")
    if not num.isdigit():
        raise InputError([f"job: {job!r} is not a job id (N or job:N)"])
    try:
        report = regenerate(catalog(), int(num), check_weights=check_weights)
    except CannotRegenerate as e:
        raise LookupError(str(e)) from None
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        verdict = "[green]frames match[/]" if report.matches else "[red]frames DIFFER[/]"
        console.print(f"job {report.job_id}: {verdict} — regenerated on {report.device} ({report.dtype}, "
                      f"memory policy {report.memory_policy}, speed {report.speed}, batch {report.batch_job_ids}) "
                      f"in {report.seconds} s")
        console.print(f"  catalog frames sha256:     {report.expected_frames_sha256}\n"
                      f"  regenerated frames sha256: {report.actual_frames_sha256}", markup=False, highlight=False)
    if not report.matches:
        raise typer.Exit(1)


@app.command("demo")
@guard
def campaign_demo(brief: Annotated[Path, typer.Option(help="Brief to run.")] = EXAMPLE_BRIEF) -> None:
    """End to end on the example: run the campaign, approve as a demo user, publish, show lineage."""
    cfg = settings()
    if cfg.c2pa_key is None:  # the demo signs with a development CA made here (never for production)
        ca = make_dev_ca(cfg.dev_ca_dir)
        cfg = cfg.model_copy(update={"c2pa_key": ca.key, "c2pa_cert_chain": ca.cert_chain,
                                     "c2pa_trust_anchors": dev_trust_anchor(cfg.dev_ca_dir)})
    summary = run_campaign(brief, cfg)
    print_summary(summary)
    engine = catalog()
    with session_scope(engine) as s:
        todo = pending(s, summary["campaign"])
        for p in todo:
            decide(s, p.asset_id, Decision.approve, "demo: approved automatically", DEMO_APPROVER)
    console.print(f"review: {len(todo)} clip(s) approved by [bold]{DEMO_APPROVER}[/]")
    demo_users(engine)
    published = prefect_flows().publish.publish(summary["campaign"], cfg)
    manifest = json.loads(Path(published["manifest"]).read_text()) if published["manifest"] else {"files": []}
    mp4 = next((f["uri"] for f in manifest["files"] if f["uri"].endswith(".mp4")), None)
    console.rule("where things are")
    console.print(f"published files : {published['delivery_dir']}  ({published['publications']} files, "
                  f"{published['failed_files']} failed)")
    console.print(f"manifest        : {published['manifest']}")
    labels = Counter((f.get("ai_label"), f.get("ai_label_font")) for f in manifest["files"] if f.get("ai_label"))
    console.print("AI labels       : " + ("; ".join(f"{n} file(s) labelled {text!r} ({font})"
                                               for (text, font), n in sorted(labels.items())) or "none"))
    signer = (f"the DEVELOPMENT CA in {cfg.dev_ca_dir}" if cfg.c2pa_key.is_relative_to(cfg.dev_ca_dir)
              else str(cfg.c2pa_cert_chain))
    console.print(f"C2PA            : signed with {signer} — check a file with "
                  f"`wanflow provenance verify FILE --trust {cfg.c2pa_trust_anchors}`")
    console.print(f"catalog         : {cfg.catalog_db_url}")
    console.print(f"MLflow UI       : mlflow ui --backend-store-uri {cfg.mlflow_uri} --port 5000  → "
                  f"http://127.0.0.1:5000 (experiment wanflow-campaigns, run {summary['mlflow_run_id']})")
    console.print(f"Prefect UI      : PREFECT_HOME={os.environ['PREFECT_HOME']} prefect server start  → "
                  f"http://127.0.0.1:4200/runs/flow-run/{summary['prefect_flow_run_id']}")
    if mp4:
        console.rule(f"lineage of {Path(mp4).name}")
        with session_scope(engine) as s:
            print_lineage(lineage(s, mp4))
        v = verify(Path(mp4), cfg.c2pa_trust_anchors)
        console.print(f"C2PA of {Path(mp4).name}: {v.state}, AI-generated={v.ai_generated}, "
                      f"generator={v.generator}, ingredient={[i['title'] for i in v.ingredients]}")
    if brief == EXAMPLE_BRIEF and EXAMPLE_EDIT.exists():
        _demo_edit(cfg, engine)


def _demo_edit(cfg: Settings, engine) -> None:  # noqa: ANN001 - a catalog engine
    """The example's edit: reframe the approved hero clip to 9:16, approve it as the demo user, publish it and
    trace the published file back through the edit to its source clip."""
    console.rule("edit: the hero clip reframed to 9:16 (examples/edit-brief.yaml)")
    try:
        summary = run_campaign(EXAMPLE_EDIT, cfg)
    except BriefInvalid as exc:  # e.g. QC let no hero-shot clip through to be approved: say so, keep the rest
        console.print("[yellow]the example edit was refused:[/]\n" + "\n".join(map(str, exc.problems)))
        return
    with session_scope(engine) as s:
        for p in pending(s, summary["campaign"]):
            decide(s, p.asset_id, Decision.approve, "demo: approved automatically", DEMO_APPROVER)
    published = prefect_flows().publish.publish(summary["campaign"], cfg)
    manifest = json.loads(Path(published["manifest"]).read_text()) if published["manifest"] else {"files": []}
    mp4 = next((f["uri"] for f in manifest["files"] if f["uri"].endswith(".mp4")), None)
    if mp4:
        console.rule(f"lineage of {Path(mp4).name} (the edit, then its source)")
        with session_scope(engine) as s:
            print_lineage(lineage(s, mp4))
