"""The campaign flow: brief → catalog → plan → generate → QC → review queue → QC validation and report.

It reads as the data flow it orchestrates; every step is a task from wan_tasks/ and is idempotent,
so running the same campaign twice regenerates nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, runtime
from prefect.artifacts import create_link_artifact, create_markdown_artifact

from catalog.db import open_catalog, session_scope
from catalog.runs import close_run, open_run
from catalog.summary import run_summary
from flows import progress
from flows.shard import slot_if_deployed
from wan_tasks.intake import validate
from core.settings import Settings
from adapters import tracking
from governance.brief import Brief
from adapters.registry import ResolvedModel
from flows.tasks import (check_clip, clips_of, freeze_models, generate_batch, plan_batches, plan_jobs, qc_report,
                             record_brief, validate_qc)


@flow(name="campaign", log_prints=True)
def campaign(brief_path: str, settings: Settings | None = None, gpu_workers: int = 0) -> dict[str, Any]:
    """Run a campaign brief. ``gpu_workers`` = 0: generate here, batch after batch. N ≥ 1: shard the jobs
    across N GPU workers — this flow run is one of them, and it starts N-1 `generate-shard` flow runs on the
    `gpu` work pool (each claims shards in the catalog and generates them in its card's slot)."""
    if gpu_workers < 0:
        raise ValueError(f"gpu_workers must be ≥ 0, got {gpu_workers!r}")
    settings = settings or Settings()
    settings.ensure_dirs()
    log = get_run_logger()
    brief = validate(Path(brief_path), settings)
    for warning in brief.warnings:  # sizes the model's variant advises against; also written on each job
        log.warning(warning)
    brief_id = record_brief(settings, brief)
    # Resolved once, at the brief's first plan, and frozen on it: moving an alias never changes this campaign
    model, canary = freeze_models(settings, brief_id, brief.brand.name, brief.canary, brief.canary_model)
    run_id, mlflow_run_id = start_run(settings, brief, model, canary)
    job_ids = plan_jobs(settings, brief_id, model, run_id, canary, brief.canary)
    log.info("%s: %d jobs planned with %s/%d (%s)%s", brief.campaign, len(job_ids), model.registry_name,
             model.version, model.label,
             f"; canary {brief.canary:.0%} → {canary.ref} ({canary.label})" if canary else "")

    if gpu_workers:
        shard_workers(settings, brief.campaign, gpu_workers)  # generation + QC, sharded; waits for the fleet
    else:
        generate_and_check(settings, job_ids, brief.brand)

    validation = validate_qc(settings, brief.campaign, brief.brand, run_id)
    report = qc_report(settings, brief.campaign, brief.brand.name, run_id, validation["id"])
    return finish_run(settings, brief, model, brief_id, run_id, mlflow_run_id, job_ids, validation, report, canary)


def generate_and_check(settings: Settings, job_ids: list[int], brand: Any) -> None:
    """Generate the jobs' clips batch by batch (a batch never mixes model versions) and QC each clip while the
    next batch generates. Failed jobs are recorded as failed; the rest proceeds."""
    log = get_run_logger()
    batches, done = plan_batches(settings, job_ids)  # jobs grouped by model and shape, sized by the memory budget
    bar = progress.start("generate", total=len(job_ids))
    bar.done(len(done))
    checks = [check_clip.submit(settings, asset_id, brand) for asset_id in done]
    for batch in batches:
        with slot_if_deployed(settings):  # on a gpu pool worker: the card's strict slot, as generate-shard holds it
            state = generate_batch(settings, batch, on_step=bar.for_batch(len(batch)), return_state=True)
        if not state.is_completed():
            log.error("jobs %s failed: %s", batch, state.message)
        made = state.result() if state.is_completed() else clips_of(settings, batch)
        checks += [check_clip.submit(settings, asset_id, brand) for asset_id in made]  # QC overlaps the next batch
        bar.done(len(batch))
    for c in checks:
        c.wait()
    progress.stop(bar)


SHARD_DEPLOYMENT = "generate-shard/generate-shard"


def shard_workers(settings: Settings, campaign_name: str, n: int) -> dict[str, Any]:
    """Start n-1 `generate-shard` runs on the gpu pool, work as the n-th, then wait for the others to end."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Cancelled

    from flows.shard import generate_shard

    log = get_run_logger()
    others = [run_deployment(SHARD_DEPLOYMENT, parameters={"campaign": campaign_name}, timeout=0,
                             flow_run_name=f"{campaign_name}-shard-worker-{i + 1}") for i in range(n - 1)]
    here = generate_shard(campaign=campaign_name, settings=settings)
    pending = {r.id for r in others}
    with get_client(sync_client=True) as client:
        while pending:  # their QC must be finished before the campaign's QC is validated
            for fid in list(pending):
                state = client.read_flow_run(fid).state
                if state is not None and (state.is_scheduled() or state.is_pending()):
                    # the campaign's jobs are all finished: a run no worker has started yet has nothing to do
                    client.set_flow_run_state(fid, Cancelled(message=f"{campaign_name}: no jobs left"), force=True)
                    pending.discard(fid)
                elif state is not None and state.is_final():
                    pending.discard(fid)
                    if not state.is_completed():
                        log.error("shard worker run %s ended %s: %s", fid, state.name, state.message)
            if pending:
                time.sleep(2)
    return here


def start_run(settings: Settings, brief: Brief, model: ResolvedModel,
              canary: ResolvedModel | None = None) -> tuple[int, str]:
    params = {"brief": str(brief.path), "brief_sha256": brief.sha256, "brand": brief.brand.name,
              "model_ref": brief.model_ref, "model_version": f"{model.registry_name}/{model.version}",
              "model_resolved_from": model.resolved_from,
              "variant": model.variant, "items": len(brief.items), "items_rejected": len(brief.rejected)}
    tags = {"wanflow.model_label": model.label, "wanflow.stand_in": str(model.stand_in).lower()}
    if canary is not None:
        params |= {"canary_fraction": brief.canary, "canary_model_version": canary.ref,
                   "canary_variant": canary.variant}
        tags |= {"wanflow.canary_label": canary.label, "wanflow.canary_stand_in": str(canary.stand_in).lower()}
    mlflow_run_id = tracking.start_run(settings.mlflow_uri, settings.mlflow_artifacts_dir, brief.campaign,
                                       params=params, tags=tags)
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        run_id = open_run(s, brief.campaign, "campaign", _flow_run_id(), mlflow_run_id)
    return run_id, mlflow_run_id


def finish_run(settings: Settings, brief: Brief, model: ResolvedModel, brief_id: int, run_id: int,
               mlflow_run_id: str, job_ids: list[int], validation: dict[str, Any],
               report: dict[str, Any], canary: ResolvedModel | None = None) -> dict[str, Any]:
    from adapters.media import contact_sheet

    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        summary = run_summary(s, brief_id, job_ids, run_id)
    sheet = None
    if summary["clip_paths"]:
        sheet = contact_sheet([Path(p) for p in summary["clip_paths"]],
                              settings.home_dir / "reports" / brief.campaign / f"contact-sheet-run{run_id}.png")
    metrics = {k: summary[k] for k in ("jobs_planned", "clips_generated", "clips_reused", "qc_pass_rate",
                                       "seconds_per_clip", "items_rejected_by_policy")}
    metrics |= {f"clips_{k}": v for k, v in summary["clips_by_status"].items()}
    metrics |= {f"qc_clips_{k}": v for k, v in report["outcomes"].items()}
    metrics["qc_expectations_met"] = float(validation["success"])
    if canary is not None:  # the canary's clips reported apart from the main model's
        with session_scope(engine) as s:
            summary["arms"] = arm_summaries(s, brief_id, job_ids, run_id)
        for arm, arm_summary in summary["arms"].items():
            metrics |= {f"{arm}_{k}": arm_summary[k] for k in ("jobs_planned", "clips_generated", "qc_pass_rate",
                                                             "seconds_per_clip")}
    summary |= {"qc_outcomes": report["outcomes"], "qc_report": report["path"],
                "qc_validation": {k: validation[k] for k in ("suite", "success", "evaluated", "failed", "unmet")}}
    tracking.finish_run(settings.mlflow_uri, mlflow_run_id, metrics,
                        ([sheet] if sheet else []) + [Path(report["path"])])
    with session_scope(engine) as s:
        close_run(s, run_id, "completed", summary)
    summary |= {"campaign": brief.campaign, "run_id": run_id, "mlflow_run_id": mlflow_run_id,
                "prefect_flow_run_id": _flow_run_id(), "model": f"{model.registry_name}/{model.version}",
                "model_label": model.label, "contact_sheet": str(sheet) if sheet else None,
                "canary": {"fraction": brief.canary, "model": canary.ref, "label": canary.label} if canary else None}
    create_markdown_artifact(key=f"campaign-{brief.campaign}", markdown=_markdown(summary, brief),
                             description=f"Campaign {brief.campaign}, run {run_id}")
    create_link_artifact(key=f"qc-report-{brief.campaign}", link=Path(report["path"]).as_uri(),
                         link_text=f"QC report, run {run_id} (HTML)", description="Self-contained; also in MLflow")
    return summary


def arm_summaries(session: Any, brief_id: int, job_ids: list[int], run_id: int) -> dict[str, dict[str, Any]]:
    """The run summary of each arm (main, canary) of a campaign with a canary, apart."""
    from sqlalchemy import select

    from catalog.models import GenerationJob

    arms: dict[str, list[int]] = {}
    for job_id, arm in session.execute(select(GenerationJob.id, GenerationJob.arm)
                                       .where(GenerationJob.id.in_(job_ids))).all():
        arms.setdefault(arm or "main", []).append(job_id)
    out = {}
    for arm, ids in sorted(arms.items()):
        s = run_summary(session, brief_id, ids, run_id)
        out[arm] = {k: v for k, v in s.items() if k != "clip_paths"} | {"job_ids": sorted(ids)}
    return out


def _flow_run_id() -> str | None:
    fid = runtime.flow_run.id
    return str(fid) if fid else None


def _canary_md(summary: dict[str, Any]) -> str:
    c = summary.get("canary")
    if not c:
        return ""
    arms = "".join(f"\n- {arm}: {a['jobs_planned']} jobs, QC pass rate {a['qc_pass_rate']:.0%}, "
                   f"{a['seconds_per_clip']} s/clip" for arm, a in summary.get("arms", {}).items())
    return f"\n\nCanary: {c['fraction']:.0%} of the jobs → **{c['model']}** — {c['label']}{arms}"


def _markdown(summary: dict[str, Any], brief: Brief) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in summary["clips_by_status"].items())
    rejected = "\n".join(f"- `{r.item.key}` (row {r.item.row}): {r.reason}" for r in brief.rejected) or "- none"
    outcomes = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary["qc_outcomes"].items())
    v = summary["qc_validation"]
    unmet = "".join(f"\n- unmet: {u}" for u in v["unmet"])
    return f"""# Campaign `{brief.campaign}` — run {summary['run_id']}

Model: **{summary['model']}** — {summary['model_label']}{_canary_md(summary)}

| jobs planned | generated now | reused | QC pass rate | s/clip |
|---|---|---|---|---|
| {summary['jobs_planned']} | {summary['clips_generated']} | {summary['clips_reused']} | {summary['qc_pass_rate']:.0%} | {summary['seconds_per_clip']} |

| clip status | count |
|---|---|
{rows}

QC (brand `{brief.brand.name}`): {outcomes} — report: `{summary['qc_report']}` (also an MLflow artifact)

Expectations (Great Expectations, suite `{v['suite']}`): {'met' if v['success'] else 'NOT met'},
{v['evaluated'] - v['failed']} of {v['evaluated']}{unmet}

Items rejected by the brand's text policy:
{rejected}
"""
