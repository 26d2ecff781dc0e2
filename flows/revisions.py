"""The revisions flow: generate the clips reviewers asked to change, QC them, queue them for review.

A reviewer's "request changes" only writes a pending job (no GPU is held by the dashboard); this flow,
run on a GPU worker (`wanflow revisions run`, or the `revisions` deployment's schedule), picks those jobs
up. Idempotent like the campaign flow: a job already done is not generated again.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from catalog.db import session_scope
from core.settings import Settings
from flows.context import catalog_of
from flows.shard import slot_if_deployed
from flows.tasks import generate_clip, qc_clip
from governance.qc import BLOCK
from wan_tasks.intake import brand_of_job
from wan_tasks.revisions import waiting_revisions


@flow(name="revisions", log_prints=True)
def revisions(campaign: str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or Settings()
    settings.ensure_dirs()
    log = get_run_logger()
    engine = catalog_of(settings)
    with session_scope(engine) as s:
        job_ids = waiting_revisions(s, campaign)
    checks, failed, clips = [], 0, []
    for job_id in job_ids:
        with slot_if_deployed(settings):  # on a gpu pool worker: the card's strict slot
            state = generate_clip(settings, job_id, return_state=True)
        if state.is_completed():
            clips.append(state.result())
            with session_scope(engine) as s:  # the campaign's own brand rules, as in the campaign flow
                brand = brand_of_job(s, job_id, settings.brands_dir)
            checks.append(qc_clip.submit(settings, clips[-1], brand))  # QC overlaps the next generation
        else:
            failed += 1
            log.error("revision job %d failed: %s", job_id, state.message)
    queued = sum(1 for c in checks if c.result() != BLOCK)
    log.info("%d revision job(s): %d clip(s) made, %d queued for review, %d failed", len(job_ids), len(clips),
             queued, failed)
    return {"jobs": len(job_ids), "clips": clips, "queued_for_review": queued, "failed": failed}
