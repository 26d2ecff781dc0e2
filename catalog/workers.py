"""Fleet queries: jobs by status, claims held, each worker's latest figures, and GPU slot occupancy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog import claims
from catalog.models import Campaign, GenerationJob, JobStatus, ShardRun, WorkerMetric, utcnow


def fleet_status(s: Session, campaign: str | None = None) -> dict[str, Any]:
    cid = claims.campaign_id(s.connection(), campaign) if campaign else None
    scope = [GenerationJob.campaign_id == cid] if cid is not None else []
    by_status = dict(s.execute(select(GenerationJob.status, func.count()).where(*scope)
                               .group_by(GenerationJob.status)).all())
    held = s.scalar(select(func.count()).select_from(GenerationJob).where(
        *scope, GenerationJob.status == JobStatus.running, GenerationJob.lease_expires_at >= utcnow()))
    latest = (select(WorkerMetric.worker, func.max(WorkerMetric.id).label("id"))
              .where(*([WorkerMetric.campaign_id == cid] if cid is not None else [])).group_by(WorkerMetric.worker)
              .subquery())
    workers = [{"worker": m.worker, "clips": m.clips, "clips_per_hour": m.clips_per_hour,
                "gpu_busy_fraction": m.gpu_busy_fraction, "queue_depth": m.queue_depth, "at": m.at}
               for m in s.scalars(select(WorkerMetric).join(latest, WorkerMetric.id == latest.c.id)
                                  .order_by(WorkerMetric.worker))]
    return {"campaign": campaign, "jobs": {k.value if hasattr(k, "value") else k: v for k, v in by_status.items()},
            "queue_depth": claims.queue_depth(s, cid), "claims_held": held, "workers": workers}


def slot_intervals(s: Session, slot: str | None = None, campaign: str | None = None) -> list[tuple[datetime, datetime, str]]:
    """(start, end, worker) of every time a shard held a GPU slot, oldest first."""
    q = select(ShardRun).where(ShardRun.gpu_started_at.is_not(None), ShardRun.gpu_finished_at.is_not(None))
    if slot:
        q = q.where(ShardRun.slot == slot)
    if campaign:
        q = q.join(Campaign, Campaign.id == ShardRun.campaign_id).where(Campaign.name == campaign)
    return [(r.gpu_started_at, r.gpu_finished_at, r.worker) for r in s.scalars(q.order_by(ShardRun.gpu_started_at))]


def max_concurrent(intervals: list[tuple[datetime, datetime, Any]]) -> int:
    """The most intervals open at one instant (an end at t closes before a start at t opens)."""
    events = sorted([(a, 1) for a, _, *_ in intervals] + [(b, -1) for _, b, *_ in intervals],
                    key=lambda e: (e[0], e[1]))
    now = peak = 0
    for _, d in events:
        now += d
        peak = max(peak, now)
    return peak
