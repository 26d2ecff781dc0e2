"""The campaign flow: brief → catalog → plan → generate → QC → review queue → QC validation and report.

It reads as the data flow it orchestrates: every step is a task (:mod:`flows.tasks`) around a stage of
wan_tasks/, the run's MLflow and catalog records included, and is idempotent, so running the same campaign
twice regenerates nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.states import Cancelled

from core.files import ascii_key
from core.settings import Settings
from flows import progress
from flows.shard import generate_shard, slot_if_deployed
from flows.tasks import (batch_jobs, find_clips, finish_campaign_run, freeze_brief_models, generate_batch, plan_brief,
                         qc_clip, start_campaign_run, store_brief, sweep_temp_files, validate_qc, write_qc_report)
from governance.brand import BrandProfile
from governance.brief_schema import ValidBrief
from wan_tasks.intake import validate


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
    sweep_temp_files(settings)  # what a killed run or publish left behind
    for warning in brief.warnings:  # sizes the model's variant advises against; also written on each job
        log.warning(warning)
    brief_id = store_brief(settings, brief)
    # Resolved once, at the brief's first plan, and frozen on it: moving an alias never changes this campaign
    model, canary = freeze_brief_models(settings, brief_id, brief.brand.name, brief.canary, brief.canary_model)
    run = start_campaign_run(settings, brief, brief_id, model, canary)
    job_ids = plan_brief(settings, brief_id, model, run.run_id, canary, brief.canary)
    log.info("%s: %d jobs planned with %s/%d (%s)%s", brief.campaign, len(job_ids), model.registry_name,
             model.version, model.label,
             f"; canary {brief.canary:.0%} → {canary.ref} ({canary.label})" if canary else "")

    if gpu_workers:
        shard_workers(settings, brief.campaign, gpu_workers)  # generation + QC, sharded; waits for the fleet
    else:
        generate_and_check(settings, job_ids, brief.brand)

    validation = validate_qc(settings, brief.campaign, brief.brand, run.run_id)
    report = write_qc_report(settings, brief.campaign, brief.brand.name, run.run_id, validation["id"])
    summary = finish_campaign_run(settings, run, job_ids, validation, report)
    create_markdown_artifact(key=f"campaign-{ascii_key(brief.campaign)}", markdown=_summary_markdown(summary, brief),
                             description=f"Campaign {brief.campaign}, run {run.run_id}")
    create_link_artifact(key=f"qc-report-{ascii_key(brief.campaign)}", link=Path(report["path"]).as_uri(),
                         link_text=f"QC report, run {run.run_id} (HTML)", description="Self-contained; also in MLflow")
    return summary


def generate_and_check(settings: Settings, job_ids: list[int], brand: BrandProfile) -> None:
    """Generate the jobs' clips batch by batch (a batch never mixes model versions) and QC each clip while the
    next batch generates. Failed jobs are recorded as failed; the rest proceeds."""
    log = get_run_logger()
    batches, done = batch_jobs(settings, job_ids)  # jobs grouped by model and shape, sized by the memory budget
    bar = progress.start("generate", total=len(job_ids))
    bar.done(len(done))
    checks = [qc_clip.submit(settings, asset_id, brand) for asset_id in done]
    for batch in batches:
        with slot_if_deployed(settings):  # on a gpu pool worker: the card's strict slot, as generate-shard holds it
            state = generate_batch(settings, batch, on_step=bar.for_batch(len(batch)), return_state=True)
        if not state.is_completed():
            log.error("jobs %s failed: %s", batch, state.message)
        made = state.result() if state.is_completed() else find_clips(settings, batch)
        checks += [qc_clip.submit(settings, asset_id, brand) for asset_id in made]  # QC overlaps the next batch
        bar.done(len(batch))
    for c in checks:
        c.wait()
    progress.stop(bar)


SHARD_DEPLOYMENT = "generate-shard/generate-shard"


def shard_workers(settings: Settings, campaign_name: str, n: int) -> dict[str, Any]:
    """Start n-1 `generate-shard` runs on the gpu pool, work as the n-th, then wait for the others to end."""
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


def _canary_md(summary: dict[str, Any]) -> str:
    c = summary.get("canary")
    if not c:
        return ""
    arms = "".join(f"\n- {arm}: {a['jobs_planned']} jobs, QC pass rate {a['qc_pass_rate']:.0%}, "
                   f"{a['seconds_per_clip']} s/clip" for arm, a in summary.get("arms", {}).items())
    return f"\n\nCanary: {c['fraction']:.0%} of the jobs → **{c['model']}** — {c['label']}{arms}"


def _summary_markdown(summary: dict[str, Any], brief: ValidBrief) -> str:
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
