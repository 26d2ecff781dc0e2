"""Human review: decisions on clips that passed QC, each with an audit event.

The dashboard (with a signed-in user's role) and the CLI (`wanflow review decide`, an operator with
shell access to the catalog, so no role) both go through :func:`decide`. A decision is taken with a
conditional UPDATE on the task (still pending, still at the stage the decider saw), so two people
deciding at once record exactly one decision; the other gets :class:`DecisionConflict`.

Two-stage brands (see :class:`~catalog.models.ReviewPolicy`): an approval at the ``review`` stage moves
the task to the ``approval`` stage, where only an approver or admin other than the first approver
decides. A rejection or a request for changes ends the task at either stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog import audit
from catalog.models import (Asset, Campaign, ClipStatus, Decision, GenerationJob, ReviewDecision, ReviewPolicy,
                            ReviewStatus, ReviewTask, Role, utcnow)
from core.i18n import N_
from wan_tasks.revisions import Changes, RevisionRefused, make_revision

REJECT_REASONS: dict[str, str] = {  # code → label; the dashboard shows the label translated
    "off_brand": N_("Off-brand (colours, logo, tone)"),
    "artifacts": N_("Visual artefacts or distortions"),
    "not_the_brief": N_("Does not match the brief"),
    "quality": N_("Technical quality (blur, flicker, exposure)"),
    "legal": N_("Legal or rights concern"),
    "brand_safety": N_("Brand-safety concern"),
    "other": N_("Other (explain below)"),
}
DECIDERS = {Role.reviewer, Role.approver, Role.admin}
FINAL_APPROVERS = {Role.approver, Role.admin}
STAGES = ("review", "approval")  # a task's stage: review, then approval on two-stage brands


class ReviewError(Exception):
    """A decision that cannot be taken as asked (unknown clip, missing reason, nothing changed)."""


class NoTask(ReviewError, LookupError):
    """The asset has no review task (unknown, or not a clip that passed QC)."""


class NotAllowed(ReviewError):
    """The user's role may not take this decision at this stage."""


class DecisionConflict(ReviewError):
    """Someone else decided first; ``state`` is the task as it is now."""

    def __init__(self, message: str, state: dict[str, Any]) -> None:
        super().__init__(message)
        self.state = state


@dataclass(frozen=True)
class PendingReview:
    task_id: int
    asset_id: int
    campaign: str
    uri: str


def pending(session: Session, campaign: str | None = None) -> list[PendingReview]:
    q = (select(ReviewTask.id, Asset.id, Campaign.name, Asset.uri)
         .join(Asset, Asset.id == ReviewTask.asset_id)
         .join(GenerationJob, GenerationJob.id == Asset.job_id)
         .join(Campaign, Campaign.id == GenerationJob.campaign_id)
         .where(ReviewTask.status == ReviewStatus.pending).order_by(ReviewTask.id))
    if campaign:
        q = q.where(Campaign.name == campaign)
    return [PendingReview(*row) for row in session.execute(q)]


def _campaign_of(session: Session, asset_id: int) -> Campaign | None:
    return session.scalar(select(Campaign).join(GenerationJob, GenerationJob.campaign_id == Campaign.id)
                          .join(Asset, Asset.job_id == GenerationJob.id).where(Asset.id == asset_id))


def publishable_campaign(session: Session, asset_id: int) -> str | None:
    """The clip's campaign name if the clip is approved (publishable) now, else None."""
    asset = session.get(Asset, asset_id)
    campaign = _campaign_of(session, asset_id) if asset is not None else None
    return campaign.name if campaign is not None and asset.status == ClipStatus.approved else None


def open_review(session: Session, asset_id: int, qc_outcome: str = "pass",
                findings: list[dict] | None = None) -> ReviewTask:
    """Queue a clip for review with its QC verdict (pass / needs_review) and findings; due date from the SLA."""
    campaign = _campaign_of(session, asset_id)
    now = utcnow()
    task = ReviewTask(asset_id=asset_id, stage="review", created_at=now, qc_outcome=qc_outcome, findings=findings,
                      due_at=now + timedelta(hours=campaign.review_due_hours)
                      if campaign is not None and campaign.review_due_hours else None)
    session.add(task)
    session.flush()
    return task


def two_stage(session: Session, brand: str) -> bool:
    return bool(session.scalar(select(ReviewPolicy.two_stage).where(ReviewPolicy.brand == brand)))


def set_policy(session: Session, brand: str, two_stage_: bool, actor: str) -> None:
    row = session.get(ReviewPolicy, brand) or ReviewPolicy(brand=brand)
    row.two_stage, row.updated_at = two_stage_, utcnow()
    session.add(row)
    audit.append(session, actor, "review.policy_changed", "brand", None, {"brand": brand, "two_stage": two_stage_})


def set_due_hours(session: Session, campaign: str, hours: int | None, actor: str) -> int:
    """Set a campaign's review SLA; pending tasks get their due date recomputed. Returns how many."""
    row = session.scalar(select(Campaign).where(Campaign.name == campaign))
    if row is None:
        raise ReviewError(f"unknown campaign {campaign!r}")
    if hours is not None and hours <= 0:
        raise ReviewError(f"--hours must be positive, got {hours}")
    row.review_due_hours = hours
    tasks = session.scalars(select(ReviewTask).join(Asset, Asset.id == ReviewTask.asset_id)
                            .join(GenerationJob, GenerationJob.id == Asset.job_id)
                            .where(GenerationJob.campaign_id == row.id, ReviewTask.status == ReviewStatus.pending)).all()
    for t in tasks:
        t.due_at = t.created_at + timedelta(hours=hours) if hours else None
    audit.append(session, actor, "review.sla_changed", "campaign", row.id, {"campaign": campaign, "hours": hours})
    return len(tasks)


def assign(session: Session, asset_id: int, assignee: str | None, actor: str) -> None:
    task = session.scalar(select(ReviewTask).where(ReviewTask.asset_id == asset_id))
    if task is None:
        raise NoTask(f"asset {asset_id} has no review task (not a clip that passed QC)")
    task.assignee = assignee or None
    audit.append(session, actor, "review.assigned", "asset", asset_id, {"task_id": task.id, "assignee": assignee})
    return task.id


def task_state(session: Session, task_id: int) -> dict[str, Any]:
    """The task as it is in the catalog now (used to answer a conflict with the fresh state)."""
    task = session.execute(select(ReviewTask).where(ReviewTask.id == task_id)
                           .execution_options(populate_existing=True)).scalar_one()
    asset_status = session.scalar(select(Asset.status).where(Asset.id == task.asset_id)
                                  .execution_options(populate_existing=True))
    decisions = session.scalars(select(ReviewDecision).where(ReviewDecision.task_id == task_id)
                                .order_by(ReviewDecision.id).execution_options(populate_existing=True)).all()
    return {"task_id": task.id, "asset_id": task.asset_id, "status": task.status.value, "stage": task.stage,
            "clip_status": asset_status.value, "assignee": task.assignee,
            "decisions": [{"decision": d.decision.value, "stage": d.stage, "reviewer": d.reviewer, "reason": d.reason,
                           "at": (d.created_at if d.created_at.tzinfo else d.created_at.replace(tzinfo=timezone.utc))
                           .isoformat()} for d in decisions]}


def _check_input(decision: Decision, reason: str, reason_code: str | None, changes: Changes | None) -> str:
    reason = reason.strip()
    if reason_code is not None and reason_code not in REJECT_REASONS:
        raise ReviewError(f"reason_code: unknown reason {reason_code!r} (one of {', '.join(REJECT_REASONS)})")
    if decision == Decision.reject:
        if not reason and reason_code in (None, "other"):
            raise ReviewError("a rejection needs a reason (--reason TEXT)")
        if reason_code and reason_code != "other":
            reason = f"{REJECT_REASONS[reason_code]}{': ' + reason if reason else ''}"
    if decision == Decision.request_changes and changes is None:
        raise ReviewError("a request for changes needs an edited prompt, negative prompt or seed")
    return reason


def _check_role(session: Session, task: ReviewTask, role: Role | None, reviewer: str, decision: Decision) -> None:
    if role is not None and role not in DECIDERS:
        raise NotAllowed(f"a {role.value} cannot decide on clips")
    if task.stage != "approval":
        return
    if role is not None and role not in FINAL_APPROVERS:
        raise NotAllowed("the approval stage of this brand's two-stage policy needs an approver")
    first = session.scalar(select(ReviewDecision.reviewer).where(
        ReviewDecision.task_id == task.id, ReviewDecision.stage == "review", ReviewDecision.decision == Decision.approve))
    if decision == Decision.approve and first == reviewer:
        raise NotAllowed(f"{reviewer} approved this clip at the review stage; the final approval needs someone else")


def decide(session: Session, asset_id: int, decision: Decision, reason: str, reviewer: str, *,
           role: Role | None = None, expected_stage: str | None = None, reason_code: str | None = None,
           changes: Changes | None = None, brands_dir: Path | None = None) -> ReviewDecision:
    """Record one decision. Exactly one decision per task and stage, even under concurrency."""
    if not reviewer.strip():
        raise ReviewError("a decision needs a reviewer (--as USER)")
    if expected_stage and expected_stage not in STAGES:
        raise ReviewError(f"expected_stage: {expected_stage!r} is not one of {', '.join(STAGES)}")
    reason = _check_input(decision, reason, reason_code, changes)
    task = session.scalar(select(ReviewTask).where(ReviewTask.asset_id == asset_id))
    if task is None:
        raise NoTask(f"asset {asset_id} has no review task (not a clip that passed QC)")
    if task.status != ReviewStatus.pending or (expected_stage and expected_stage != task.stage):
        raise DecisionConflict(f"asset {asset_id} was already decided", task_state(session, task.id))
    _check_role(session, task, role, reviewer, decision)
    campaign, stage, task_id = _campaign_of(session, asset_id), task.stage, task.id
    moves_on = (decision == Decision.approve and stage == "review" and campaign is not None
                and two_stage(session, campaign.brand))
    values: dict[str, Any] = {"stage": "approval"} if moves_on else {"status": ReviewStatus.decided, "decided_at": utcnow()}
    claimed = session.execute(
        update(ReviewTask).where(ReviewTask.id == task_id, ReviewTask.status == ReviewStatus.pending,
                                 ReviewTask.stage == stage).values(**values),
        execution_options={"synchronize_session": False},
    ).rowcount
    if claimed != 1:
        raise DecisionConflict(f"asset {asset_id} was already decided", task_state(session, task_id))
    session.expire(task)
    row = ReviewDecision(task_id=task_id, decision=decision, reason=reason, reason_code=reason_code,
                         stage=stage, reviewer=reviewer)
    if decision == Decision.request_changes:
        try:
            row.revision_job_id = make_revision(session, asset_id, changes, brands_dir)
        except RevisionRefused as exc:
            raise ReviewError(str(exc)) from exc
    session.add(row)
    asset = session.get(Asset, asset_id)
    if not moves_on:
        asset.status = {Decision.approve: ClipStatus.approved, Decision.reject: ClipStatus.rejected,
                        Decision.request_changes: ClipStatus.changes_requested}[decision]
    audit.append(session, reviewer, f"review.{decision.value}", "asset", asset_id,
                 {"task_id": task_id, "stage": stage, "final": not moves_on, "reason": row.reason,
                  "reason_code": reason_code, "role": role.value if role else "operator (cli)",
                  "revision_job_id": row.revision_job_id})
    session.flush()
    return row
