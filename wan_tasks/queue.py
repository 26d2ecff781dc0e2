"""What the review dashboard shows: the queue (filters, due-date order, pages, counts per status) and
everything about one clip (prompt, seed, params, model, QC findings, decisions, the other variants).

Plain query functions taking the session; the web layer only renders what they return.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from catalog.models import (Asset, AssetKind, Campaign, ClipStatus, GenerationJob, ModelVersion, PromptItem, QcResult,
                            ReviewDecision, ReviewStatus, ReviewTask, utcnow)
from core.i18n import N_

STATUSES = {  # queue status → (clip status, stage or None)
    "to_review": (ClipStatus.in_review, "review"),
    "to_approve": (ClipStatus.in_review, "approval"),
    "approved": (ClipStatus.approved, None),
    "rejected": (ClipStatus.rejected, None),
    "changes_requested": (ClipStatus.changes_requested, None),
}
STATUS_LABELS = {"open": N_("Open"), "to_review": N_("To review"), "to_approve": N_("To approve"),
                 "approved": N_("Approved"), "rejected": N_("Rejected"), "changes_requested": N_("Changes requested"),
                 "all": N_("All")}  # shown translated by the dashboard
PER_PAGE = 50


@dataclass(frozen=True)
class QueueFilters:
    campaign: str | None = None
    brand: str | None = None
    status: str = "open"  # open = to_review + to_approve
    qc: str | None = None  # pass / needs_review
    assignee: str | None = None  # a user name, or "unassigned"
    page: int = 1
    per_page: int = PER_PAGE


@dataclass(frozen=True)
class QueueRow:
    task_id: int
    asset_id: int
    campaign: str
    brand: str
    item: str
    variant: int
    prompt: str
    status: str
    qc: str
    assignee: str | None
    due_at: datetime | None
    overdue: bool
    created_at: datetime


@dataclass
class QueuePage:
    rows: list[QueueRow]
    total: int
    page: int
    pages: int
    counts: dict[str, int] = field(default_factory=dict)
    campaigns: list[str] = field(default_factory=list)
    brands: list[str] = field(default_factory=list)


def _aware(t: datetime | None) -> datetime | None:
    return t.replace(tzinfo=timezone.utc) if t is not None and t.tzinfo is None else t


def _status_expr():
    return case(*[(and_(Asset.status == cs, ReviewTask.stage == st) if st else Asset.status == cs, name)
                  for name, (cs, st) in STATUSES.items()], else_="other")


def _filtered(q, f: QueueFilters, *, with_status: bool):
    if f.campaign:
        q = q.where(Campaign.name == f.campaign)
    if f.brand:
        q = q.where(Campaign.brand == f.brand)
    if f.qc:
        q = q.where(ReviewTask.qc_outcome == f.qc)
    if f.assignee == "unassigned":
        q = q.where(ReviewTask.assignee.is_(None))
    elif f.assignee:
        q = q.where(ReviewTask.assignee == f.assignee)
    if with_status and f.status == "open":
        q = q.where(ReviewTask.status == ReviewStatus.pending)
    elif with_status and f.status in STATUSES:
        cs, st = STATUSES[f.status]
        q = q.where(Asset.status == cs, *([ReviewTask.stage == st] if st else []))
    return q


def _base(*cols):
    return (select(*cols).select_from(ReviewTask).join(Asset, Asset.id == ReviewTask.asset_id)
            .join(GenerationJob, GenerationJob.id == Asset.job_id)
            .join(Campaign, Campaign.id == GenerationJob.campaign_id))


def _in_status(f: QueueFilters, clip_status: ClipStatus, stage: str, task_status: ReviewStatus) -> bool:
    """Whether a (clip status, stage, task status) group passes the status filter: `_filtered`'s test in Python."""
    if f.status == "open":
        return task_status == ReviewStatus.pending
    if f.status in STATUSES:
        cs, st = STATUSES[f.status]
        return clip_status == cs and (st is None or stage == st)
    return True


def queue(session: Session, f: QueueFilters) -> QueuePage:
    """One page of the queue, soonest due first (no due date last), then oldest first.

    The counts per (clip status, stage, task status) for the filters other than status give both the tabs'
    counts and the total of the selected status (one scan, not two); the page sorts task ids only and joins
    the shown columns for its own rows; then the campaign and brand lists."""
    now = utcnow()
    counts = dict.fromkeys(STATUSES, 0)
    names = {(cs, st): name for name, (cs, st) in STATUSES.items()}
    total = 0
    for clip_status, stage, task_status, n in session.execute(
            _filtered(_base(Asset.status, ReviewTask.stage, ReviewTask.status, func.count()), f, with_status=False)
            .group_by(Asset.status, ReviewTask.stage, ReviewTask.status)):
        name = names.get((clip_status, stage)) or names.get((clip_status, None))
        if name:
            counts[name] += n
        if _in_status(f, clip_status, stage, task_status):
            total += n
    counts["open"] = counts["to_review"] + counts["to_approve"]
    pages = max(1, -(-total // f.per_page))
    page = min(max(1, f.page), pages)
    order = (ReviewTask.due_at.is_(None), ReviewTask.due_at, ReviewTask.id)
    # The page's task ids first (narrow rows to sort), then the wide columns of those rows only.
    ids = (_filtered(_base(ReviewTask.id), f, with_status=True).order_by(*order)
           .limit(f.per_page).offset((page - 1) * f.per_page).subquery())
    q = (select(ReviewTask.id, Asset.id, Campaign.name, Campaign.brand, PromptItem.item_key,
                GenerationJob.variant_index, PromptItem.prompt, _status_expr(), ReviewTask.qc_outcome,
                ReviewTask.assignee, ReviewTask.due_at, ReviewTask.status, ReviewTask.created_at)
         .select_from(ids).join(ReviewTask, ReviewTask.id == ids.c.id).join(Asset, Asset.id == ReviewTask.asset_id)
         .join(GenerationJob, GenerationJob.id == Asset.job_id).join(Campaign, Campaign.id == GenerationJob.campaign_id)
         .join(PromptItem, PromptItem.id == GenerationJob.item_id).order_by(*order))
    rows = []
    for tid, aid, camp, brand, key, var, prompt, status, qc, who, due, tstatus, created in session.execute(q):
        due = _aware(due)
        rows.append(QueueRow(tid, aid, camp, brand, key, var, prompt[:140], status, qc, who, due,
                             bool(due and tstatus == ReviewStatus.pending and due < now), _aware(created)))
    campaigns = list(session.scalars(select(Campaign.name).order_by(Campaign.name)))
    brands = list(session.scalars(select(Campaign.brand).distinct().order_by(Campaign.brand)))
    return QueuePage(rows, total, page, pages, counts, campaigns, brands)


def _qc(r: QcResult) -> dict[str, Any]:
    return {"check": r.check, "outcome": "not run" if r.passed is None else ("pass" if r.passed else "fail"),
            "value": r.value, "threshold": r.threshold, "details": r.details or {}}


def clip_detail(session: Session, asset_id: int) -> dict[str, Any] | None:
    """Everything the clip page shows, or None if ``asset_id`` is not a raw clip."""
    clip = session.get(Asset, asset_id)
    if clip is None or clip.kind != AssetKind.raw_clip or clip.job_id is None:
        return None
    job = session.get(GenerationJob, clip.job_id)
    item = session.get(PromptItem, job.item_id)
    campaign = session.get(Campaign, job.campaign_id)
    model = session.get(ModelVersion, job.model_version_id)
    task = session.scalar(select(ReviewTask).where(ReviewTask.asset_id == asset_id))
    decisions = session.scalars(select(ReviewDecision).where(ReviewDecision.task_id == task.id)
                                .order_by(ReviewDecision.id)).all() if task else []
    root = item.revision_of_id or item.id
    siblings = session.execute(
        select(Asset.id, Asset.status, GenerationJob.variant_index, GenerationJob.seed, PromptItem.item_key)
        .join(GenerationJob, GenerationJob.id == Asset.job_id).join(PromptItem, PromptItem.id == GenerationJob.item_id)
        .where(Asset.kind == AssetKind.raw_clip, or_(PromptItem.id == root, PromptItem.revision_of_id == root),
               Asset.id != asset_id).order_by(Asset.id).limit(24)).all()
    revisions = session.scalars(select(GenerationJob).where(GenerationJob.revision_of_id == asset_id)).all()
    due = _aware(task.due_at) if task else None
    return {
        "asset_id": clip.id, "status": clip.status.value, "width": clip.width, "height": clip.height,
        "frames": clip.frames, "fps": clip.fps, "sha256": clip.sha256, "size": clip.size,
        "campaign": campaign.name, "brand": campaign.brand,
        "item": item.item_key, "variant": job.variant_index, "prompt": item.prompt,
        "negative_prompt": item.negative_prompt, "locale": item.locale, "seed": job.seed, "params": job.params,
        "job_id": job.id, "revision_of": job.revision_of_id,
        "revisions": [{"job_id": j.id, "status": j.status.value, "seed": j.seed,
                       "asset_id": session.scalar(select(Asset.id).where(Asset.job_id == j.id))} for j in revisions],
        "model": {"name": f"{model.registry_name}/{model.version}", "variant": model.variant,
                  "stand_in": model.stand_in, "weights_sha256": model.weights_sha256},
        "qc": [_qc(r) for r in session.scalars(select(QcResult).where(QcResult.asset_id == asset_id)
                                               .order_by(QcResult.id))],
        "task": None if task is None else {
            "task_id": task.id, "status": task.status.value, "stage": task.stage, "assignee": task.assignee,
            "qc_outcome": task.qc_outcome, "due_at": due,
            "overdue": bool(due and task.status == ReviewStatus.pending and due < utcnow())},
        "decisions": [{"decision": d.decision.value, "stage": d.stage, "reviewer": d.reviewer, "reason": d.reason,
                       "reason_code": d.reason_code, "revision_job_id": d.revision_job_id,
                       "at": _aware(d.created_at)} for d in decisions],
        "variants": [{"asset_id": a, "status": s.value, "variant": v, "seed": sd, "item": k}
                     for a, s, v, sd, k in siblings],
    }
