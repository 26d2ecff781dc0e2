"""The revisions flow: generate the clips reviewers asked to change, QC them, queue them for review.

A reviewer's "request changes" only writes a pending job (no GPU is held by the dashboard); this flow,
run on a GPU worker (`wanflow revisions run`, or the `revisions` deployment's schedule), picks those jobs
up. Idempotent like the campaign flow: a job already done is not generated again.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from catalog.db import open_catalog, session_scope
from flows.shard import slot_if_deployed
from core.settings import Settings
from wan_tasks.revisions import waiting_revisions
from governance.brand import BrandProfile, load_brand
from governance.checks import BLOCK
from flows.tasks import check_clip, generate_clip


def brand_of_job(settings: Settings, job_id: int) -> BrandProfile:
    """The brand profile of a job's campaign, from the brands folder beside its brief (or WANFLOW_BRANDS_DIR)."""
    from pathlib import Path

    from catalog.models import Brief, Campaign, GenerationJob, PromptItem

    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        job = s.get(GenerationJob, job_id)
        brief = s.get(Brief, s.get(PromptItem, job.item_id).brief_id)
        brand = s.get(Campaign, job.campaign_id).brand
    return load_brand(brand, settings.brands_dir or Path(brief.path).parent / "brands")


@flow(name="revisions", log_prints=True)
def revisions(campaign: str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or Settings()
    settings.ensure_dirs()
    log = get_run_logger()
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        job_ids = waiting_revisions(s, campaign)
    checks, failed, clips = [], 0, []
    for job_id in job_ids:
        with slot_if_deployed(settings):  # on a gpu pool worker: the card's strict slot
            state = generate_clip(settings, job_id, return_state=True)
        if state.is_completed():
            clips.append(state.result())
            brand = brand_of_job(settings, job_id)  # the campaign's own brand rules, as in the campaign flow
            checks.append(check_clip.submit(settings, clips[-1], brand))  # QC overlaps the next generation
        else:
            failed += 1
            log.error("revision job %d failed: %s", job_id, state.message)
    queued = sum(1 for c in checks if c.result() != BLOCK)
    log.info("%d revision job(s): %d clip(s) made, %d queued for review, %d failed", len(job_ids), len(clips),
             queued, failed)
    return {"jobs": len(job_ids), "clips": clips, "queued_for_review": queued, "failed": failed}
