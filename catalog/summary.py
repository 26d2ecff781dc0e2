"""Counts for a campaign run: what was planned, made, reused, passed QC, and what it cost in time."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import Asset, AssetKind, ClipStatus, GenerationJob, ItemStatus, JobStatus, PromptItem, QcResult


def run_summary(session: Session, brief_id: int, job_ids: list[int], run_id: int) -> dict[str, Any]:
    jobs = session.scalars(select(GenerationJob).where(GenerationJob.id.in_(job_ids))).all() if job_ids else []
    made_now = [j for j in jobs if j.run_id == run_id and j.timings]
    clips = session.scalars(select(Asset).where(Asset.job_id.in_(job_ids), Asset.kind == AssetKind.raw_clip)).all() \
        if job_ids else []
    by_status: dict[str, int] = {}
    for c in clips:
        by_status[c.status.value] = by_status.get(c.status.value, 0) + 1
    checked = [c for c in clips if c.status != ClipStatus.generated]
    qc_passed = [c for c in checked if c.status != ClipStatus.qc_failed]
    rejected_items = session.scalar(select(func.count()).select_from(PromptItem).where(
        PromptItem.brief_id == brief_id, PromptItem.status == ItemStatus.rejected))
    failed_checks = session.execute(
        select(QcResult.check, func.count()).where(QcResult.asset_id.in_([c.id for c in clips]),
                                                   QcResult.passed.is_not(True)).group_by(QcResult.check)
    ).all() if clips else []
    gen_s = [j.timings.get("generate_s", 0.0) + j.timings.get("encode_s", 0.0) for j in made_now]
    return {
        "brief_id": brief_id,
        "jobs_planned": len(jobs),
        "jobs_failed": sum(j.status == JobStatus.failed for j in jobs),
        "clips_generated": len(made_now),
        "clips_reused": len(jobs) - len(made_now),
        "clips_by_status": by_status,
        "qc_pass_rate": round(len(qc_passed) / len(checked), 4) if checked else 0.0,
        "qc_failures_by_check": dict(failed_checks),
        "items_rejected_by_policy": rejected_items,
        "seconds_per_clip": round(sum(gen_s) / len(gen_s), 4) if gen_s else 0.0,
        "clip_paths": [c.uri for c in clips],
    }
