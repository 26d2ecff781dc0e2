"""The catalog: SQLAlchemy 2.0 typed models. Every published file traces back through these rows.

published file → Publication → Asset (rendition) → Asset (raw clip) → GenerationJob (seed, params)
→ ModelVersion, PromptItem → Brief (file + sha256) → Campaign; plus QcResult, ReviewTask/Decision.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, BigInteger, DateTime, Enum, Float, ForeignKey, Index, Integer, MetaData, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as plain strings: portable across SQLite/PostgreSQL and cheap to extend in a migration.
    return Enum(cls, native_enum=False, length=24, values_callable=lambda e: [m.value for m in e])


class ItemStatus(str, enum.Enum):
    accepted = "accepted"
    rejected = "rejected"  # broke the brand's text policy; kept with its reason, never dropped
    revision = "revision"  # an edited prompt asked for by a reviewer; never planned from the brief again


class JobStatus(str, enum.Enum):
    pending = "pending"
    running = "running"
    done = "done"
    failed = "failed"


class AssetKind(str, enum.Enum):
    raw_clip = "raw_clip"
    rendition = "rendition"
    poster = "poster"
    preview = "preview"  # short animated WebP/GIF of a rendition
    mask = "mask"  # an edit's mask (video or image), by sha256 (governance.edits)


class ClipStatus(str, enum.Enum):
    generated = "generated"
    qc_failed = "qc_failed"  # auto-rejected with reasons (the failing checks)
    in_review = "in_review"
    approved = "approved"
    rejected = "rejected"
    changes_requested = "changes_requested"  # a revision job was made from it
    delivered = "delivered"  # renditions, posters


class ReviewStatus(str, enum.Enum):
    pending = "pending"
    decided = "decided"


class Decision(str, enum.Enum):
    approve = "approve"
    reject = "reject"
    request_changes = "request_changes"


class Role(str, enum.Enum):
    """Dashboard roles, weakest first: each can do what the ones before it can."""

    viewer = "viewer"
    reviewer = "reviewer"
    approver = "approver"
    admin = "admin"


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    brand: Mapped[str] = mapped_column(String(64))
    review_due_hours: Mapped[int | None]  # review SLA: a task is due this long after it is opened
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    briefs: Mapped[list[Brief]] = relationship(back_populates="campaign", lazy="raise")


class Brief(Base):
    """One version of a campaign's brief, identified by its content hash."""

    __tablename__ = "briefs"
    __table_args__ = (UniqueConstraint("campaign_id", "sha256"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    model_ref: Mapped[str] = mapped_column(String(128))
    content: Mapped[str] = mapped_column(Text)
    # Frozen at the first plan (model_versions.id): re-running this brief never re-resolves its alias
    model_version_id: Mapped[int | None]
    canary_version_id: Mapped[int | None]  # the challenger a `canary:` fraction of its jobs goes to
    canary_fraction: Mapped[float | None]
    edit_version_id: Mapped[int | None]  # the frozen VACE model of the brief's edit items (wan_tasks/edit.py)
    lora_version_id: Mapped[int | None]  # a registry LoRA (`lora: NAME@ALIAS`), frozen at the first plan (lora_versions.id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    campaign: Mapped[Campaign] = relationship(back_populates="briefs", lazy="raise")


class PromptItem(Base):
    __tablename__ = "prompt_items"
    __table_args__ = (UniqueConstraint("brief_id", "item_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    brief_id: Mapped[int] = mapped_column(ForeignKey("briefs.id"), index=True)
    item_key: Mapped[str] = mapped_column(String(64))
    source_row: Mapped[int]
    prompt: Mapped[str] = mapped_column(Text)
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    locale: Mapped[str] = mapped_column(String(16), default="en")
    params: Mapped[dict[str, Any]]
    status: Mapped[ItemStatus] = mapped_column(_enum(ItemStatus))
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    revision_of_id: Mapped[int | None] = mapped_column(ForeignKey("prompt_items.id"), index=True)  # the brief's item
    brief: Mapped[Brief] = relationship(lazy="raise")


class ModelVersion(Base):
    """A registry version (MLflow `wan-t2v/N`) as it was resolved for jobs; the weights' digest pins it."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("registry_name", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    registry_name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    variant: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(1024))
    weights_sha256: Mapped[str] = mapped_column(String(64))
    stand_in: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    """One execution of a flow (campaign or publish): ties Prefect and MLflow run ids to the rows it made."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    flow: Mapped[str] = mapped_column(String(32))
    prefect_flow_run_id: Mapped[str | None] = mapped_column(String(64))
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running, completed, ..., crashed
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]  # for a crashed run: when a later run noticed
    # the process running it (core.processes): a later run on the same host sees when it is gone
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]
    pid_started_at: Mapped[float | None]


class GenerationJob(Base):
    __tablename__ = "generation_jobs"
    # claims take the oldest pending jobs of a campaign in index order (catalog/claims.py)
    __table_args__ = (Index("ix_generation_jobs_claim_order", "status", "campaign_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("prompt_items.id"), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    revision_of_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", use_alter=True), index=True)
    edit_of_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", use_alter=True), index=True)  # edit source
    variant_index: Mapped[int]
    seed: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]]
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus), default=JobStatus.pending, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    device: Mapped[str | None] = mapped_column(String(32))
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # How the clip was made, so that it can be made again exactly (wanflow regenerate): the memory policy
    # used (after any out-of-memory fallback), the weights' dtype, and the batch it ran in (job ids in order,
    # policy attempts, software versions).
    memory_policy: Mapped[str | None] = mapped_column(String(32))
    arm: Mapped[str | None] = mapped_column(String(16))  # rollout: champion|challenger (evaluation), main|canary
    dtype: Mapped[str | None] = mapped_column(String(16))
    batch: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The speed preset the job ran with (plain | fast | turbo; governance/speed.py); NULL: made before presets
    # existed, i.e. plain. What applied and what fell back: batch["speed"].
    speed: Mapped[str | None] = mapped_column(String(16))
    # The claim a fleet worker holds (catalog/claims.py): only the holder of the current token may record the
    # clip; a lease that runs out lets another worker claim the job again (claims counts how often).
    claim_token: Mapped[str | None] = mapped_column(String(32), index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(index=True)
    claims: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    item: Mapped[PromptItem] = relationship(lazy="raise")
    model_version: Mapped[ModelVersion] = relationship(lazy="raise")


class Asset(Base):
    """A file in the asset store: raw clip (from a job) or a rendition/poster (parent = raw clip)."""

    __tablename__ = "assets"
    __table_args__ = (UniqueConstraint("parent_id", "kind", "preset"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AssetKind] = mapped_column(_enum(AssetKind))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("generation_jobs.id"), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"), index=True)
    aspect: Mapped[str | None] = mapped_column(String(8))
    preset: Mapped[str | None] = mapped_column(String(32))  # rendition preset name, "poster", "preview"
    uri: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    frames_sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    frames: Mapped[int | None]
    fps: Mapped[float | None]
    status: Mapped[ClipStatus] = mapped_column(_enum(ClipStatus), default=ClipStatus.generated, index=True)
    provenance: Mapped[dict[str, Any] | None]  # C2PA status (signed, binding, signer), the label drawn
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    job: Mapped[GenerationJob | None] = relationship(foreign_keys=[job_id], lazy="raise")
    parent: Mapped[Asset | None] = relationship(remote_side=[id], lazy="raise")


class QcResult(Base):
    __tablename__ = "qc_results"
    __table_args__ = (UniqueConstraint("asset_id", "check"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), index=True)
    check: Mapped[str] = mapped_column(String(64))
    passed: Mapped[bool | None]  # None: the check could not run (details say why) — never a silent pass
    value: Mapped[float | None]
    threshold: Mapped[float | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    outcome: Mapped[str | None] = mapped_column(String(16))  # under the brand's rules: pass | needs_review | block
    # which detector produced it: package, version, sha256 of its weight files (None: recorded before 0009)
    judge: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewTask(Base):
    __tablename__ = "review_tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), unique=True)
    status: Mapped[ReviewStatus] = mapped_column(_enum(ReviewStatus), default=ReviewStatus.pending, index=True)
    stage: Mapped[str] = mapped_column(String(16), default="review")  # review, then approval (two-stage brands)
    assignee: Mapped[str | None] = mapped_column(String(64), index=True)
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    qc_outcome: Mapped[str] = mapped_column(String(16), default="pass")  # pass | needs_review (QC verdict)
    findings: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)  # what QC wants a person to look at
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]


class ReviewDecision(Base):
    __tablename__ = "review_decisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("review_tasks.id"), index=True)
    decision: Mapped[Decision] = mapped_column(_enum(Decision))
    reason: Mapped[str] = mapped_column(Text, default="")
    reason_code: Mapped[str | None] = mapped_column(String(32))
    stage: Mapped[str] = mapped_column(String(16), default="review")
    revision_job_id: Mapped[int | None] = mapped_column(ForeignKey("generation_jobs.id"))
    reviewer: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Publication(Base):
    __tablename__ = "publications"
    __table_args__ = (UniqueConstraint("asset_id", "destination"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    destination: Mapped[str] = mapped_column(String(256))
    uri: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="delivered", server_default="delivered", index=True)
    error: Mapped[str | None] = mapped_column(Text)  # why the last attempt failed (status "failed")
    attempts: Mapped[int] = mapped_column(default=1, server_default="1")
    manifest_uri: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    asset: Mapped[Asset] = relationship(lazy="raise")


class AuditEvent(Base):
    """Append-only record of who did what (decisions, sign-ins, role changes, publications, runs).

    Rows are chained by hashes and written only through ``catalog.audit.append``.
    """

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[int | None]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The chain's single head row: last sequence number and hash. Appenders lock it, so the chain never forks."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    hash: Mapped[str] = mapped_column(String(64))


class User(Base):
    """A dashboard account. Passwords are stored only as argon2 hashes."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(_enum(Role))
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    locale: Mapped[str | None] = mapped_column(String(16), default=None)  # None: the browser's, else WANFLOW_LOCALE


class WebSession(Base):
    """A signed-in browser or script; the cookie holds a random token, the row only its sha256."""

    __tablename__ = "web_sessions"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ReviewPolicy(Base):
    """Per brand: whether a clip needs a reviewer's and then an approver's approval (two-stage)."""

    __tablename__ = "review_policies"
    brand: Mapped[str] = mapped_column(String(64), primary_key=True)
    two_stage: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class QcValidation(Base):
    """A campaign's QC results table validated against the brand's expectation suite (Great Expectations)."""

    __tablename__ = "qc_validations"
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    brand: Mapped[str] = mapped_column(String(64))
    profile_sha256: Mapped[str] = mapped_column(String(64))
    suite: Mapped[str] = mapped_column(String(128))
    success: Mapped[bool]
    evaluated: Mapped[int]
    failed: Mapped[int]
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ShardRun(Base):
    """One shard a fleet worker claimed: its jobs, and when the worker held its GPU slot (Prefect limit)."""

    __tablename__ = "shard_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    worker: Mapped[str] = mapped_column(String(128))
    slot: Mapped[str] = mapped_column(String(128), index=True)  # the global concurrency limit's name
    claim_token: Mapped[str] = mapped_column(String(32))
    job_ids: Mapped[list[int]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done | lost | failed
    error: Mapped[str | None] = mapped_column(Text)
    prefect_flow_run_id: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    gpu_started_at: Mapped[datetime | None]
    gpu_finished_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class WorkerMetric(Base):
    """A fleet worker's figures after each shard: clips/hour, GPU busy fraction, queue depth (also in MLflow)."""

    __tablename__ = "worker_metrics"
    id: Mapped[int] = mapped_column(primary_key=True)
    worker: Mapped[str] = mapped_column(String(128), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    prefect_flow_run_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    clips: Mapped[int]
    clips_per_hour: Mapped[float] = mapped_column(Float)
    gpu_busy_fraction: Mapped[float] = mapped_column(Float)
    queue_depth: Mapped[int]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class RolloutEvaluation(Base):
    """A champion-vs-challenger evaluation on the golden prompts (`wanflow rollout evaluate`)."""

    __tablename__ = "rollout_evaluations"
    id: Mapped[int] = mapped_column(primary_key=True)
    registry_name: Mapped[str] = mapped_column(String(64), index=True)
    champion_version: Mapped[int]
    challenger_version: Mapped[int]
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))  # the golden set's campaign
    golden_path: Mapped[str] = mapped_column(String(1024))
    golden_sha256: Mapped[str] = mapped_column(String(64))
    policy_path: Mapped[str | None] = mapped_column(String(1024))
    policy_sha256: Mapped[str | None] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"champion": {...}, "challenger": {...}}
    gates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    passed: Mapped[bool | None]  # None: no policy given, gates not evaluated
    ab_round: Mapped[bool] = mapped_column(default=False)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    report_uri: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AbPair(Base):
    """One blind A/B pair of an evaluation: the same prompt and seed by champion and challenger."""

    __tablename__ = "ab_pairs"
    __table_args__ = (UniqueConstraint("evaluation_id", "champion_asset_id", "challenger_asset_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("rollout_evaluations.id"), index=True)
    item_key: Mapped[str] = mapped_column(String(64))
    champion_asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"))
    challenger_asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"))
    left_arm: Mapped[str] = mapped_column(String(16))  # champion|challenger: which one is shown on the left
    position: Mapped[int]  # the order pairs are shown in (shuffled)


class AbVote(Base):
    """A reviewer's preference on one pair (one vote per reviewer and pair)."""

    __tablename__ = "ab_votes"
    __table_args__ = (UniqueConstraint("pair_id", "reviewer"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("ab_pairs.id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(128))
    choice: Mapped[str] = mapped_column(String(16))  # champion|challenger|tie (the reviewer saw only left/right)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AliasMove(Base):
    """A move of a registry alias by wanflow (promote, override, rollback, pin), so that rollback is one step."""

    __tablename__ = "alias_moves"
    id: Mapped[int] = mapped_column(primary_key=True)
    registry_name: Mapped[str] = mapped_column(String(64), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    from_version: Mapped[int | None]
    to_version: Mapped[int | None]
    action: Mapped[str] = mapped_column(String(16))  # promote|override|rollback|set
    evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("rollout_evaluations.id"))
    reverts_id: Mapped[int | None] = mapped_column(ForeignKey("alias_moves.id"))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RenditionMark(Base):
    """A video rendition's invisible watermark and perceptual fingerprint (issue 17).

    Reserved before the rendition is encoded (``clip_id`` + ``preset``, the payload drawn then), tied to the
    rendition asset once it is recorded. ``payload``: the 32-bit id the watermark carries, unique, resolved by
    ``wanflow provenance detect``. ``readback``: the rendition's own QC of the mark (bit accuracy, frames read,
    passed). ``policy``: whether the brand required it when rendered."""

    __tablename__ = "rendition_marks"
    __table_args__ = (UniqueConstraint("clip_id", "preset"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), index=True)
    preset: Mapped[str] = mapped_column(String(32))
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"), unique=True)
    payload: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    method: Mapped[str] = mapped_column(String(32))  # rivaGan | dwtDct | none
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    readback: Mapped[dict[str, Any] | None]
    fingerprint: Mapped[dict[str, Any] | None]  # alg, frames hashed, fps; the hashes are in fingerprint_hashes
    policy: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FingerprintHash(Base):
    """One sampled frame's 64-bit perceptual hash (signed 64-bit storage) with its indexed 16-bit prefix."""

    __tablename__ = "fingerprint_hashes"
    id: Mapped[int] = mapped_column(primary_key=True)
    mark_id: Mapped[int] = mapped_column(ForeignKey("rendition_marks.id"), index=True)
    t: Mapped[float]
    hash: Mapped[int] = mapped_column(BigInteger)
    prefix: Mapped[int] = mapped_column(Integer, index=True)


# --- personalisation (issue 15): governed training data, brand LoRA versions, recall ---------------------------


class TrainingAsset(Base):
    """One image or short clip a brand gave for training, stored by content (sha256), with its rights.

    ``status`` is ``active`` or ``recalled`` (a licence ended, consent withdrawn: `wanflow personalize revoke`).
    """

    __tablename__ = "training_assets"
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # image | clip
    filename: Mapped[str] = mapped_column(String(512))  # the name it was given under
    uri: Mapped[str] = mapped_column(String(1024))  # the stored copy (named by its sha256)
    width: Mapped[int]
    height: Mapped[int]
    frames: Mapped[int]
    owner: Mapped[str] = mapped_column(String(256))
    licence: Mapped[str] = mapped_column(String(256))  # licence or consent reference
    expires: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD
    allowed_use: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    recalled_reason: Mapped[str | None] = mapped_column(Text)
    recalled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingDataset(Base):
    """An immutable version of a brand's training set: adding an asset makes a new version."""

    __tablename__ = "training_datasets"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))  # over its members' (sha256, caption), in order
    manifest: Mapped[str] = mapped_column(String(1024))  # the folder or CSV it was added from
    status: Mapped[str] = mapped_column(String(16), default="active")
    recalled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingDatasetAsset(Base):
    """A member of a dataset version: the asset and the caption it is trained with."""

    __tablename__ = "training_dataset_assets"
    __table_args__ = (UniqueConstraint("dataset_id", "asset_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("training_datasets.id"), index=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("training_assets.id"), index=True)
    caption: Mapped[str] = mapped_column(Text)
    position: Mapped[int]


class LoraVersion(Base):
    """A brand LoRA version (MLflow `lora-<name>/N`): what it was trained on, from which base, by which run."""

    __tablename__ = "lora_versions"
    __table_args__ = (UniqueConstraint("registry_name", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    registry_name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    dataset_id: Mapped[int] = mapped_column(ForeignKey("training_datasets.id"), index=True)
    base_registry_name: Mapped[str] = mapped_column(String(64))
    base_version: Mapped[int]
    base_weights_sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024))
    weights_sha256: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)  # rank, steps, lr, seed, final loss, ...
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    stand_in: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="active")
    recalled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
