"""The `wanflow` command line (Typer + Rich).

Exit codes: 0 success, 2 invalid input (every problem listed as `file:row:field: message`),
1 runtime failure. Heavy libraries are imported inside commands so that `--help` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from core.settings import Settings

app = typer.Typer(help="wanflow: campaign briefs → Wan video → QC → review → published renditions, with lineage.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
review_app = typer.Typer(help="Human review of clips that passed QC.", no_args_is_help=True)
models_app = typer.Typer(help="Wan model versions in the MLflow registry.", no_args_is_help=True)
db_app = typer.Typer(help="Catalog database.", no_args_is_help=True)
policy_app = typer.Typer(help="The brand's text policy on its own.", no_args_is_help=True)
app.add_typer(review_app, name="review")
app.add_typer(policy_app, name="policy")
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")

console = Console()
err = Console(stderr=True, soft_wrap=True)
DEMO_APPROVER = "demo-approver (demo user, not a real approval)"
EXAMPLE_BRIEF = Path("examples/brief.yaml")
QC_EXIT = {"pass": 0, "needs_review": 3, "block": 4}
QC_STYLE = {"pass": "green", "needs_review": "yellow", "block": "red"}


class InputError(Exception):
    """Bad input from the user: exit 2 with the listed problems."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


# Prefect's INFO logs would scroll over the Rich progress bar; its warnings and errors still show.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _settings() -> Settings:
    return Settings()


def _fail(code: int, lines: list[str]) -> None:
    for line in lines:
        err.print(line, markup=False, highlight=False)
    raise typer.Exit(code)


def _guard(fn):
    """Turn known errors into clear messages and exit codes; never a traceback unless WANFLOW_DEBUG=1."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from wan_tasks.accounts import AccountError
        from governance.brief import BriefInvalid
        from adapters.registry import ModelRefError
        from wan_tasks.review import ReviewError
        from governance.renditions import PresetInvalid
        from adapters.provenance import ProvenanceError

        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except BriefInvalid as e:
            _fail(2, [str(p) for p in e.problems] + [f"{len(e.problems)} problem(s); nothing was written."])
        except (InputError,) as e:
            _fail(2, e.problems)
        except PresetInvalid as e:
            _fail(2, [str(p) for p in e.problems])
        except ProvenanceError as e:
            _fail(2, [f"error: {e}"])
        except (ModelRefError, ReviewError, AccountError, LookupError) as e:
            _fail(2, [f"error: {e}"])
        except Exception as e:  # noqa: BLE001
            if os.environ.get("WANFLOW_DEBUG") == "1":
                raise
            _fail(1, [f"error: {type(e).__name__}: {e}", "(set WANFLOW_DEBUG=1 for the traceback)"])

    return wrapper


@app.command()
@_guard
def validate(brief: Annotated[Path, typer.Argument(help="Campaign brief (YAML).")]) -> None:
    """Validate a brief without writing anything; rows rejected by the brand's text policy are listed."""
    from wan_tasks.intake import validate as validate_brief

    b = validate_brief(brief, _settings())
    for r in b.rejected:
        console.print(f"{r.item.source_file}:{r.item.row}:{r.field}: rejected by brand policy: {r.reason}",
                      markup=False, highlight=False, soft_wrap=True)
    for w in b.warnings:
        console.print(f"{w}", markup=False, highlight=False, soft_wrap=True)
    variants = sum(i.variants for i in b.items)
    console.print(f"[green]ok[/]: {b.campaign} — {len(b.items)} items ({variants} clips), "
                  f"{len(b.rejected)} rejected by brand policy, model {b.model_ref}")


def _run_campaign(brief: Path, settings: Settings) -> dict:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from wan_tasks.intake import validate as validate_brief

    validate_brief(brief, settings)  # exit 2 with every problem before any flow starts (or file is written)
    from flows import progress
    from flows.campaign import campaign

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.1f}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        progress.install(bar)
        try:
            return campaign(str(brief), settings)
        finally:
            progress.install(None)


def _print_summary(summary: dict) -> None:
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


@app.command()
@_guard
def run(brief: Annotated[Path, typer.Argument(help="Campaign brief (YAML).")]) -> None:
    """Run a campaign: validate → catalog → plan → generate → QC → review queue. Re-runs regenerate nothing."""
    summary = _run_campaign(brief, _settings())
    _print_summary(summary)
    if summary["jobs_failed"]:
        _fail(1, [f"{summary['jobs_failed']} job(s) failed (see the catalog's job errors); re-run to retry them."])


@review_app.command("list")
@_guard
def review_list(campaign: Annotated[Optional[str], typer.Option(help="Only this campaign.")] = None) -> None:
    """List clips waiting for a decision."""
    from catalog.db import open_catalog, session_scope
    from wan_tasks.review import pending

    with session_scope(open_catalog(_settings().catalog_db_url)) as s:
        rows = pending(s, campaign)
    t = Table("asset", "task", "campaign", "clip")
    for r in rows:
        t.add_row(str(r.asset_id), str(r.task_id), r.campaign, r.uri)
    console.print(t)


@review_app.command("decide")
@_guard
def review_decide(
    asset: Annotated[int, typer.Argument(help="Asset id of the clip.")],
    approve: Annotated[bool, typer.Option("--approve/--reject", help="Approve or reject.")] = ...,  # type: ignore[assignment]
    reason: Annotated[str, typer.Option(help="Why (required to reject).")] = "",
    as_user: Annotated[str, typer.Option("--as", help="Who decides (recorded in the audit log).")] = ...,  # type: ignore[assignment]
) -> None:
    """Record a review decision on a clip, with an audit event."""
    from catalog.db import open_catalog, session_scope
    from catalog.models import Decision
    from flows import events
    from wan_tasks.review import decide, publishable_campaign

    with session_scope(open_catalog(_settings().catalog_db_url)) as s:
        d = decide(s, asset, Decision.approve if approve else Decision.reject, reason, as_user)
        publishable = publishable_campaign(s, asset)
    console.print(f"asset {asset}: {d.decision.value} by {d.reviewer}")
    if publishable and events.clip_approved(publishable, asset, as_user):
        console.print(f"publishable: sent {events.CLIP_APPROVED} for campaign {publishable} to the Prefect server")


@app.command()
@_guard
def publish(campaign: Annotated[str, typer.Argument(help="Campaign name.")]) -> None:
    """Transcode approved clips and deliver renditions, posters and a manifest to the destination."""
    from flows.publish import publish as publish_flow
    from flows.publish import signing_config
    from governance.renditions import load_presets

    settings = _settings()
    signing_config(settings), load_presets(settings.presets_file)  # exit 2 on bad set-up before the flow starts
    summary = publish_flow(campaign, settings)
    console.print(f"{summary['publications']} files delivered from {summary['clips']} approved clips → "
                  f"{summary['delivery_dir']}\nmanifest: {summary['manifest']}\nwebhook: {summary['webhook']}")
    if summary["failed_files"] or summary["failed_clips"] or str(summary["webhook"]).startswith("failed") \
            or str(summary["manifest"]).startswith("failed"):
        _fail(1, [f"clip {c}: {e}" for c, e in summary["failed_clips"].items()]
              + ["some files were not delivered (see the manifest's `failed`); re-run to retry them."])


@app.command()
@_guard
def lineage(
    ref: Annotated[Optional[str], typer.Argument(help="A published file, or asset:N / publication:N / job:N / N.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Recall: every clip, rendition and publication "
                                                                 "made with a version, e.g. wan-t2v/3.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Trace a published file back to rendition, raw clip, job, model version, prompt, brief, QC and review;
    or, with --model NAME/N, list everything made with that version."""
    from catalog.db import open_catalog, session_scope
    from catalog.lineage import lineage as trace

    if (ref is None) == (model is None):
        raise InputError(["give a file or id to trace, or --model NAME/N to recall a version (not both)"])
    if model is not None:
        return _recall(model, as_json)
    with session_scope(open_catalog(_settings().catalog_db_url)) as s:
        chain = trace(s, ref)
    if as_json:
        sys.stdout.write(json.dumps(chain, indent=2, ensure_ascii=False, default=str) + "\n")
    else:
        _print_lineage(chain)


def _recall(model: str, as_json: bool) -> None:
    from catalog.db import open_catalog, session_scope
    from catalog.lineage import model_assets
    from adapters.registry import parse_ref

    name, alias, version = parse_ref(model)
    if version is None:
        raise InputError([f"--model: {model!r} is an alias; recall needs a fixed version, e.g. {name}/3"])
    with session_scope(open_catalog(_settings().catalog_db_url)) as s:
        found = model_assets(s, name, version)
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2, ensure_ascii=False, default=str) + "\n")
        return
    mv = found["model_version"]
    console.print(f"[bold]{name}/{version}[/] variant={mv['variant']}{'  (stand-in)' if mv['stand_in'] else ''} "
                  f"weights={mv['weights_sha256'][:16]}…: {len(found['clips'])} clip(s), "
                  f"{len(found['renditions'])} rendition(s)/poster(s)/preview(s), {len(found['publications'])} "
                  "publication(s)")
    for title, rows, keys in (("clips", found["clips"], ("id", "campaign", "job_id", "arm", "status", "uri")),
                              ("renditions", found["renditions"], ("id", "parent_id", "kind", "preset", "uri")),
                              ("publications", found["publications"], ("id", "asset_id", "destination", "status", "uri"))):
        if rows:
            t = Table(*keys, title=title)
            for r in rows:
                t.add_row(*("" if r.get(k) is None else str(r.get(k)) for k in keys))
            console.print(t)


def _print_lineage(c: dict) -> None:
    from rich.tree import Tree

    def fmt(d: dict | None, keys: tuple[str, ...]) -> str:
        return "  ".join(f"{k}={d[k]}" for k in keys if d and d.get(k) is not None)

    root = Tree(f"[bold]{c['query']}[/]")
    node = root
    if c["publication"]:
        node = node.add(f"publication  {fmt(c['publication'], ('id', 'destination', 'uri', 'sha256'))}")
    if c["rendition"]:
        node = node.add(f"{c['rendition']['kind']}  {fmt(c['rendition'], ('id', 'preset', 'aspect', 'width', 'height', 'frames', 'fps', 'sha256'))}")
        prov = c["rendition"].get("provenance") or {}
        if prov:
            label = (prov.get("label") or {}).get("text")
            node.add(f"C2PA {prov.get('status')} ({prov.get('binding')}), signer "
                     f"{(prov.get('signer') or {}).get('common_name')}" + (f", label {label!r}" if label else ""))
    node = node.add(f"raw clip  {fmt(c['raw_clip'], ('id', 'width', 'height', 'frames', 'fps', 'status', 'sha256'))}")
    job = node.add(f"job  {fmt(c['job'], ('id', 'seed', 'status', 'attempts', 'device', 'dtype', 'memory_policy'))}"
                   f"  params={c['job']['params']}")
    if c.get("lora"):
        job.add(f"brand LoRA  {c['lora']['path']}  scale={c['lora']['scale']}  sha256={c['lora']['sha256'][:16]}…")
    if c.get("conditioning_image"):
        job.add(f"conditioning image  {c['conditioning_image']['path']}  "
                f"sha256={c['conditioning_image']['sha256'][:16]}…")
    mv = c["model_version"]
    job.add(f"model  {mv['registry_name']}/{mv['version']}  variant={mv['variant']}"
            f"{'  (stand-in: random weights)' if mv['stand_in'] else ''}  weights={mv['weights_sha256'][:16]}…")
    item = job.add(f"prompt item  {c['prompt_item']['item_key']} (row {c['prompt_item']['source_row']}): "
                   f"{c['prompt_item']['prompt']!r}")
    item.add(f"brief  {c['brief']['path']}  sha256={c['brief']['sha256']}  campaign={c['campaign']['name']}")
    qc = node.add("QC")
    for r in c["qc"]:
        status = "not run" if r["passed"] is None else ("pass" if r["passed"] else "FAIL")
        qc.add(f"{r['check']}: {status}  value={r['value']} threshold={r['threshold']}"
               + (f"  → {r['outcome']}" if r.get("outcome") else ""))
    rv = node.add("review")
    for d in c["review"] or [{"decision": "none yet", "reviewer": "", "reason": "", "created_at": ""}]:
        rv.add(f"{d['decision']}  by {d['reviewer']}  {d['reason']}  {d['created_at']}")
    if c["run"]:
        node.add(f"run  {fmt(c['run'], ('id', 'flow', 'prefect_flow_run_id', 'mlflow_run_id'))}")
    console.print(root)


@app.command()
@_guard
def regenerate(
    job: Annotated[str, typer.Argument(help="Job id (N or job:N), as `wanflow lineage` shows it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    check_weights: Annotated[bool, typer.Option("--check-weights/--skip-weights-check",
                                                help="Hash the weight files first (slow for 14B).")] = True,
) -> None:
    """Regenerate a job on its recorded device, dtype and memory policy; exit 0 if its frames match the catalog's
    hash exactly, 1 if they differ. Writes no clip, only an audit event."""
    from catalog.db import open_catalog
    from wan_tasks.regenerate import CannotRegenerate, regenerate as run

    num = job.removeprefix("job:")
    if not num.isdigit():
        raise InputError([f"job: {job!r} is not a job id (N or job:N)"])
    try:
        report = run(open_catalog(_settings().catalog_db_url), int(num), check_weights=check_weights)
    except CannotRegenerate as e:
        raise LookupError(str(e)) from None
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        verdict = "[green]frames match[/]" if report.matches else "[red]frames DIFFER[/]"
        console.print(f"job {report.job_id}: {verdict} — regenerated on {report.device} ({report.dtype}, "
                      f"memory policy {report.memory_policy}, batch {report.batch_job_ids}) in {report.seconds} s")
        console.print(f"  catalog frames sha256:     {report.expected_frames_sha256}\n"
                      f"  regenerated frames sha256: {report.actual_frames_sha256}", markup=False, highlight=False)
    if not report.matches:
        raise typer.Exit(1)


def _brand(ref: str, brands_dir: Path | None):
    from governance.brand import BrandInvalid, BrandNotFound, load_brand_ref

    folder = brands_dir or _settings().brands_dir or Path("brands")
    try:
        return load_brand_ref(ref, folder)
    except BrandNotFound as e:
        raise InputError([f"error: {e} (use --brands-dir, WANFLOW_BRANDS_DIR, or a profile file path)"]) from e
    except BrandInvalid as e:
        raise InputError([f"{e.path}:0:{e.key or 'file'}: {e.message}"]) from e


BrandOpt = Annotated[str, typer.Option("--brand", help="Brand name (profile in --brands-dir) or a profile file.")]
BrandsDirOpt = Annotated[Optional[Path], typer.Option(help="Folder of brand profiles (default: WANFLOW_BRANDS_DIR "
                                                           "or ./brands).")]


@app.command()
@_guard
def qc(
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
    import dataclasses

    from governance.qc import Expected, Models, evaluate

    if not file.is_file():
        raise InputError([f"{file}:0:file: no such file"])
    profile = _brand(brand, brands_dir)
    results, verdict = evaluate(file, Expected(width, height, frames, fps), profile,
                               models=Models.from_settings(_settings()), prompt=prompt, negative_prompt=negative_prompt)
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
@_guard
def policy_check(
    text: Annotated[str, typer.Argument(help="Text to check (a prompt, a caption).")],
    brand: BrandOpt,
    brands_dir: BrandsDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Run the brand's text policy alone. Exit 0 pass, 3 needs review (sensitive topic), 4 blocked."""
    import dataclasses

    from governance.text_policy import check_text, outcome_of

    profile = _brand(brand, brands_dir)
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


@db_app.command("upgrade")
@_guard
def db_upgrade() -> None:
    """Apply catalog migrations (Alembic) to the configured database; says from which revision to which."""
    from sqlalchemy import make_url

    from catalog.db import current_revision, make_engine, upgrade

    url = _settings().catalog_db_url
    engine = make_engine(url)
    before = current_revision(engine)
    upgrade(url)
    after = current_revision(engine)
    engine.dispose()
    shown = make_url(url).render_as_string(hide_password=True)
    if before == after:
        console.print(f"catalog already at revision {after}: {shown}")
    else:
        console.print(f"catalog upgraded from revision {before or '(empty database)'} to {after}: {shown}")


@app.command()
@_guard
def demo(brief: Annotated[Path, typer.Option(help="Brief to run.")] = EXAMPLE_BRIEF) -> None:
    """End to end on the example: run the campaign, approve as a demo user, publish, show lineage."""
    from catalog.db import open_catalog, session_scope
    from catalog.lineage import lineage as trace
    from catalog.models import Decision
    from flows.publish import publish as publish_flow
    from wan_tasks.review import decide, pending

    settings = _settings()
    if settings.c2pa_key is None:  # the demo signs with a development CA made here (never for production)
        from adapters.provenance import dev_trust_anchor, make_dev_ca

        ca = make_dev_ca(settings.dev_ca_dir)
        settings = settings.model_copy(update={"c2pa_key": ca.key, "c2pa_cert_chain": ca.cert_chain,
                                               "c2pa_trust_anchors": dev_trust_anchor(settings.dev_ca_dir)})
    summary = _run_campaign(brief, settings)
    _print_summary(summary)
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        todo = pending(s, summary["campaign"])
        for p in todo:
            decide(s, p.asset_id, Decision.approve, "demo: approved automatically", DEMO_APPROVER)
    console.print(f"review: {len(todo)} clip(s) approved by [bold]{DEMO_APPROVER}[/]")
    cli_review.demo_users(engine)
    published = publish_flow(summary["campaign"], settings)
    manifest = json.loads(Path(published["manifest"]).read_text()) if published["manifest"] else {"files": []}
    mp4 = next((f["uri"] for f in manifest["files"] if f["uri"].endswith(".mp4")), None)
    console.rule("where things are")
    console.print(f"published files : {published['delivery_dir']}  ({published['publications']} files, "
                  f"{published['failed_files']} failed)")
    console.print(f"manifest        : {published['manifest']}")
    signer = (f"the DEVELOPMENT CA in {settings.dev_ca_dir}" if settings.c2pa_key.is_relative_to(settings.dev_ca_dir)
              else str(settings.c2pa_cert_chain))
    console.print(f"C2PA            : signed with {signer} — check a file with "
                  f"`wanflow provenance verify FILE --trust {settings.c2pa_trust_anchors}`")
    console.print(f"catalog         : {settings.catalog_db_url}")
    console.print(f"MLflow UI       : mlflow ui --backend-store-uri {settings.mlflow_uri} --port 5000  → "
                  f"http://127.0.0.1:5000 (experiment wanflow-campaigns, run {summary['mlflow_run_id']})")
    console.print(f"Prefect UI      : PREFECT_HOME={os.environ['PREFECT_HOME']} prefect server start  → "
                  f"http://127.0.0.1:4200/runs/flow-run/{summary['prefect_flow_run_id']}")
    if mp4:
        console.rule(f"lineage of {Path(mp4).name}")
        with session_scope(engine) as s:
            _print_lineage(trace(s, mp4))
        from adapters.provenance import verify

        v = verify(Path(mp4), settings.c2pa_trust_anchors)
        console.print(f"C2PA of {Path(mp4).name}: {v.state}, AI-generated={v.ai_generated}, "
                      f"generator={v.generator}, ingredient={[i['title'] for i in v.ingredients]}")


from cli.provenance import register as register_provenance  # noqa: E402

register_provenance(app, _guard, console, _settings, InputError)
from cli.fleet import register as register_fleet  # noqa: E402

register_fleet(app, _guard, console, _settings, InputError)
from cli.stack import register as register_stack  # noqa: E402

register_stack(app, _guard, console, _settings, InputError)

# The review dashboard's commands (review serve/policy/due, users, audit, revisions) live beside this file,
# as do the model registry's (models list/register/alias/presets) and the rollout's (rollout evaluate/...).
from cli import models as cli_models, review as cli_review  # noqa: E402,F401
from cli.rollout import rollout_app  # noqa: E402

app.add_typer(rollout_app, name="rollout")

if __name__ == "__main__":  # `python -m cli.main`: run the imported module's app, which has every command
    from cli.main import app as _app

    _app()
