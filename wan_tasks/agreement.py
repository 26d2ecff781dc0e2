"""`wanflow qc agreement`: the catalog's review history read into the records :mod:`governance.agreement` measures,
the measurement itself, and its HTML report attached to an MLflow run.

Scope: every raw clip whose review task is decided (its final decision), optionally of one campaign and decided
since a date; the two-stage decisions of those clips; the blind A/B votes (of rollout evaluations on that
campaign's golden set, cast since that date).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from adapters import agreement_report, tracking
from catalog.db import session_scope
from catalog.models import (AbPair, AbVote, Asset, AssetKind, Campaign, ClipStatus, Decision, GenerationJob, QcResult,
                            ReviewDecision, ReviewStatus, ReviewTask, RolloutEvaluation)
from core.files import safe_file_name
from core.settings import Settings
from governance.agreement import CheckRecord, ReviewedClip, StagePair, Vote, agreement
from governance.qc import QC_CHECKS

EXPERIMENT = "wanflow-qc-agreement"
NOT_ACCEPTED = {Decision.reject, Decision.request_changes}


def utc(d: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; the catalog writes UTC."""
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


def _clips_query(campaign: str | None):  # noqa: ANN202 - a Select
    q = (select(ReviewDecision, ReviewTask.asset_id, ReviewTask.qc_outcome, Campaign.name, Campaign.brand)
         .join(ReviewTask, ReviewTask.id == ReviewDecision.task_id)
         .join(Asset, Asset.id == ReviewTask.asset_id)
         .join(GenerationJob, GenerationJob.id == Asset.job_id)
         .join(Campaign, Campaign.id == GenerationJob.campaign_id)
         .where(ReviewTask.status == ReviewStatus.decided, Asset.kind == AssetKind.raw_clip)
         .order_by(ReviewDecision.id))
    return q.where(Campaign.name == campaign) if campaign else q


def history(session: Session, campaign: str | None = None, since: datetime | None = None) -> dict[str, Any]:
    """The reviewed clips (final decision, reason, QC results), the number of clips QC blocked (never reviewed),
    the two-stage decision pairs and the A/B votes, within scope."""
    if campaign and session.scalar(select(Campaign.id).where(Campaign.name == campaign)) is None:
        raise LookupError(f"unknown campaign {campaign!r}")
    decisions: dict[int, list[tuple[ReviewDecision, str, str, str]]] = {}
    for d, asset_id, qc_outcome, name, brand in session.execute(_clips_query(campaign)):
        decisions.setdefault(asset_id, []).append((d, qc_outcome, name, brand))
    finals = {a: ds for a, ds in decisions.items() if since is None or utc(ds[-1][0].created_at) >= since}
    results: dict[int, dict[str, CheckRecord]] = {a: {} for a in finals}
    q = (select(QcResult.asset_id, QcResult.check, QcResult.passed, QcResult.value, QcResult.threshold)
         .join(ReviewTask, ReviewTask.asset_id == QcResult.asset_id)
         .join(Asset, Asset.id == QcResult.asset_id)
         .join(GenerationJob, GenerationJob.id == Asset.job_id)
         .join(Campaign, Campaign.id == GenerationJob.campaign_id)
         .where(ReviewTask.status == ReviewStatus.decided))
    for asset_id, check, passed, value, threshold in session.execute(q.where(Campaign.name == campaign)
                                                                     if campaign else q):
        if asset_id in results:
            results[asset_id][check] = CheckRecord(passed, value, threshold)
    clips, stages = [], []
    for asset_id, ds in sorted(finals.items()):
        last, qc_outcome, name, brand = ds[-1]
        clips.append(ReviewedClip(asset_id, name, brand, last.decision in NOT_ACCEPTED, last.decision.value,
                                  last.reason_code if last.decision in NOT_ACCEPTED else None, utc(last.created_at),
                                  qc_outcome or "pass", results[asset_id]))
        by_stage = {d.stage: d for d, *_ in ds}
        if "review" in by_stage and "approval" in by_stage:
            first, second = by_stage["review"], by_stage["approval"]
            stages.append(StagePair(asset_id, first.decision.value, second.decision.value, first.reviewer,
                                    second.reviewer))
    blocked = select(Asset.id, Asset.created_at).join(GenerationJob, GenerationJob.id == Asset.job_id).join(
        Campaign, Campaign.id == GenerationJob.campaign_id).where(Asset.kind == AssetKind.raw_clip,
                                                                 Asset.status == ClipStatus.qc_failed)
    blocked_n = sum(since is None or utc(at) >= since
                    for _, at in session.execute(blocked.where(Campaign.name == campaign) if campaign else blocked))
    vq = (select(AbVote.pair_id, AbVote.reviewer, AbVote.choice, AbVote.created_at)
          .join(AbPair, AbPair.id == AbVote.pair_id)
          .join(RolloutEvaluation, RolloutEvaluation.id == AbPair.evaluation_id)
          .join(Campaign, Campaign.id == RolloutEvaluation.campaign_id).order_by(AbVote.id))
    votes = [Vote(p, r, c) for p, r, c, at in session.execute(vq.where(Campaign.name == campaign) if campaign else vq)
             if since is None or utc(at) >= since]
    return {"clips": clips, "blocked": blocked_n, "stages": stages, "votes": votes}


def summarise(h: dict[str, Any], campaign: str | None = None, since: datetime | None = None) -> dict[str, Any]:
    """The agreement of every QC check with the reviewers (:func:`governance.agreement.agreement`) over a
    :func:`history`. Checks recorded in the catalog that are no longer registered are compared too, after the
    registered ones."""
    recorded = {c for clip in h["clips"] for c in clip.checks}
    checks = [c for c in QC_CHECKS if c in recorded] + sorted(recorded - set(QC_CHECKS))
    out = agreement(h["clips"], checks, h["blocked"], h["stages"], h["votes"])
    return {"campaign": campaign, "since": since.isoformat() if since else None, **out}


def measure(session: Session, campaign: str | None = None, since: datetime | None = None) -> dict[str, Any]:
    """:func:`summarise` of the :func:`history` in scope."""
    return summarise(history(session, campaign, since), campaign, since)


def report_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The figures logged on the MLflow run: counts, and each check's precision, recall and kappa."""
    metrics = {k: float(result[k]) for k in ("clips_reviewed", "approved", "rejected", "blocked_unreviewed")}
    for c in result["checks"]:
        for k in ("precision", "recall", "kappa"):
            if c[k] is not None:
                metrics[f"{c['check']}.{k}"] = float(c[k])
    return metrics


def run_agreement(engine: Engine, settings: Settings, campaign: str | None = None,
                  since: datetime | None = None, locale: str | None = None) -> dict[str, Any]:
    """Measure, write the HTML report under the home's reports/ (in ``locale``, default the deployment's), and log
    both to an MLflow run (experiment ``wanflow-qc-agreement``). Returns the measurement with ``report`` (its path) and ``mlflow_run_id``."""
    with session_scope(engine) as s:
        h = history(s, campaign, since)
    result = summarise(h, campaign, since)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    dest = settings.home_dir / "reports" / safe_file_name(campaign or "all-campaigns") / f"qc-agreement-{stamp}.html"
    report = agreement_report.write_report(dest, result, h["clips"], locale or settings.locale, settings.timezone)
    run_id = tracking.start_run(settings.mlflow_uri, settings.mlflow_artifacts_dir, campaign or "all",
                                params={"campaign": campaign or "all", "since": result["since"] or "beginning"},
                                tags={"wanflow.kind": "qc-agreement"}, experiment=EXPERIMENT,
                                run_name=f"qc-agreement {campaign or 'all'}")
    tracking.finish_run(settings.mlflow_uri, run_id, report_metrics(result), [Path(report)])
    return result | {"report": str(report), "mlflow_run_id": run_id}
