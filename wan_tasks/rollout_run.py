"""A rollout evaluation run: the champion and challenger resolved, the MLflow evaluation run and the catalog
run opened, the evaluation recorded with its metrics per arm (and a blind A/B round), then published: gates
recomputed, HTML report and JSON rewritten, both logged to MLflow, the challenger's version tagged.

The statistics, gates, promotion and rollback themselves are in :mod:`wan_tasks.rollout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from adapters import rollout_report, tracking
from adapters.registry import ResolvedModel
from catalog import audit, claims
from catalog.db import session_scope
from catalog.models import Asset, AssetKind, GenerationJob, PromptItem, RolloutEvaluation
from catalog.runs import open_run
from core.settings import Settings
from governance.brief_schema import ValidBrief
from governance.model_refs import ModelRefError, parse_ref
from wan_tasks import rollout
from wan_tasks.intake import registry_for


@dataclass(frozen=True)
class EvaluationRun:
    """One rollout evaluation: the golden brief, the pair compared, the policy and the runs it is filed under."""

    golden: ValidBrief
    champion: ResolvedModel
    challenger: ResolvedModel
    policy_file: str | None
    policy: rollout.LoadedPolicy | None
    ab: bool
    run_id: int
    mlflow_run_id: str


def policy_for(settings: Settings, policy_path: str | None) -> tuple[str | None, rollout.LoadedPolicy | None]:
    """The policy file named (or WANFLOW_ROLLOUT_POLICY) and its gates; a bad policy fails here, before any work."""
    policy_file = policy_path or (str(settings.rollout_policy) if settings.rollout_policy else None)
    return policy_file, rollout.load_policy(Path(policy_file)) if policy_file else None


def resolve_pair(settings: Settings, champion_ref: str, challenger_ref: str) -> tuple[ResolvedModel, ResolvedModel]:
    """Champion and challenger from the registry: two versions of the same model."""
    registry = registry_for(settings)
    registry.ensure_bootstrap(parse_ref(champion_ref)[0])
    champ, chall = registry.resolve(champion_ref), registry.resolve(challenger_ref)
    if champ.registry_name != chall.registry_name:
        raise ModelRefError(f"challenger {challenger_ref!r} is a {chall.registry_name} version; the champion "
                            f"{champion_ref!r} is {champ.registry_name}")
    if champ.version == chall.version:
        raise ModelRefError(f"challenger {challenger_ref!r} is the champion itself ({champ.ref}): nothing to compare")
    return champ, chall


def open_evaluation_run(engine: Engine, settings: Settings, golden: ValidBrief, champ: ResolvedModel,
                        chall: ResolvedModel, policy_file: str | None, policy: rollout.LoadedPolicy | None,
                        ab: bool, flow_run_id: str | None = None) -> EvaluationRun:
    """Start the MLflow evaluation run, then the catalog run of the golden campaign."""
    mlflow_run_id = tracking.start_run(
        settings.mlflow_uri, settings.mlflow_artifacts_dir, golden.campaign, experiment=tracking.ROLLOUT_EXPERIMENT,
        run_name=f"{chall.ref} vs {champ.ref}",
        params={"champion": champ.ref, "challenger": chall.ref, "champion_variant": champ.variant,
                "challenger_variant": chall.variant, "golden": str(golden.path), "golden_sha256": golden.sha256,
                "policy": policy_file or "none", "gpu_price_per_hour": settings.gpu_price_per_hour, "ab_round": ab},
        tags={"wanflow.kind": "rollout-evaluation", "wanflow.champion_label": champ.label,
              "wanflow.challenger_label": chall.label,
              "wanflow.stand_in": str(champ.stand_in or chall.stand_in).lower()})
    with session_scope(engine) as s:
        run_id = open_run(s, golden.campaign, "rollout-evaluate", flow_run_id, mlflow_run_id)
    return EvaluationRun(golden, champ, chall, policy_file, policy, ab, run_id, mlflow_run_id)


def record_evaluation(engine: Engine, settings: Settings, run: EvaluationRun, jobs: dict[str, list[int]]) -> int:
    """The evaluation row: each arm's metrics over its jobs, the A/B round (if asked) and the gates; audited."""
    champ, chall, golden, policy = run.champion, run.challenger, run.golden, run.policy
    with session_scope(engine) as s:
        metrics = {arm: rollout.arm_metrics(s, ids, settings.gpu_price_per_hour) for arm, ids in jobs.items()}
        ev = RolloutEvaluation(
            registry_name=champ.registry_name, champion_version=champ.version, challenger_version=chall.version,
            campaign_id=claims.campaign_id(s.connection(), golden.campaign), golden_path=str(golden.path.resolve()),
            golden_sha256=golden.sha256,
            policy_path=str(Path(run.policy_file).resolve()) if run.policy_file else None,
            policy_sha256=policy.sha256 if policy else None, mlflow_run_id=run.mlflow_run_id,
            metrics={**metrics, "job_ids": jobs, "labels": {"champion": champ.label, "challenger": chall.label}},
            gates=[], passed=None)
        s.add(ev)
        s.flush()
        if run.ab:
            rollout.open_ab_round(s, ev)
        rollout.refresh(s, ev)
        audit.append(s, "rollout", "rollout.evaluated", "rollout_evaluation", ev.id,
                     {"champion": champ.ref, "challenger": chall.ref, "passed": ev.passed, "gates": ev.gates,
                      "mlflow_run_id": run.mlflow_run_id})
        return ev.id


def evaluation_dict(ev: RolloutEvaluation) -> dict[str, Any]:
    """The evaluation as `wanflow rollout status --json` prints it."""
    return {"id": ev.id, "model": ev.registry_name, "champion_version": ev.champion_version,
            "challenger_version": ev.challenger_version, "golden_path": ev.golden_path,
            "golden_sha256": ev.golden_sha256, "policy_path": ev.policy_path, "passed": ev.passed,
            "gates": ev.gates, "ab_round": ev.ab_round, "mlflow_run_id": ev.mlflow_run_id,
            "report": ev.report_uri, "labels": ev.metrics.get("labels", {}),
            "metrics": {k: v for k, v in ev.metrics.items() if k not in ("job_ids", "labels")},
            "created_at": ev.created_at.isoformat()}


def clip_strips(session: Session, ev: RolloutEvaluation) -> list[tuple[str, str, str]]:
    """(golden item, arm, raw clip path) of each clip of the evaluation, each item's champion first."""
    strips = []
    for arm in rollout.ARMS:
        ids = ev.metrics["job_ids"][arm]
        for key, uri in session.execute(
                select(PromptItem.item_key, Asset.uri)
                .join(GenerationJob, GenerationJob.item_id == PromptItem.id)
                .join(Asset, (Asset.job_id == GenerationJob.id) & (Asset.kind == AssetKind.raw_clip))
                .where(GenerationJob.id.in_(ids)).order_by(PromptItem.source_row, GenerationJob.variant_index)):
            strips.append((key, arm, uri))
    return sorted(strips, key=lambda t: (t[0], t[1] != "champion"))


def mlflow_figures(ev: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """The evaluation's MLflow metrics (each arm's numbers, preference, challenger − champion deltas, gates)
    and tags (preference status, verdict)."""
    m = ev["metrics"]
    metrics: dict[str, float] = {}
    for arm in rollout.ARMS:
        for k, v in m.get(arm, {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                metrics[f"{arm}_{k}"] = float(v)
    for k in ("win_rate", "ci_low", "ci_high", "votes", "wins", "losses", "ties"):
        if m.get("preference", {}).get(k) is not None:
            metrics[f"preference_{k}"] = float(m["preference"][k])
    for k in ("qc_pass_rate", "seconds_per_clip", "cost_per_approved_clip"):
        a, b = m.get("champion", {}).get(k), m.get("challenger", {}).get(k)
        if a is not None and b is not None:
            metrics[f"delta_{k}"] = float(b - a)
    if ev["passed"] is not None:
        metrics["gates_passed"] = float(ev["passed"])
        metrics["gates_failed_or_not_evaluated"] = float(sum(g["status"] != "pass" for g in ev["gates"]))
    tags = {"wanflow.preference": m.get("preference", {}).get("status", rollout.NOT_RUN),
            "wanflow.verdict": "no policy" if ev["passed"] is None else "passed" if ev["passed"] else "not passed"}
    return metrics, tags


def publish_evaluation(engine: Engine, settings: Settings, evaluation_id: int, final: bool = False) -> dict[str, Any]:
    """Recompute preference and gates (votes may have come in), rewrite the report, log both to the MLflow
    evaluation run and tag the challenger's registry version with the verdict."""
    with session_scope(engine) as s:
        ev = rollout.refresh(s, s.get(RolloutEvaluation, evaluation_id))
        strips = clip_strips(s, ev)
        data = evaluation_dict(ev)
        dest = settings.home_dir / "reports" / "rollout" / f"evaluation-{ev.id}.html"
        report, images = rollout_report.write_report(dest, data, strips, settings.locale)
        ev.report_uri = str(report)
        data["report"] = str(report)
    saved = rollout_report.write_data(report.parent / f"evaluation-{data['id']}.json", data)
    metrics, tags = mlflow_figures(data)
    tracking.log_evaluation(settings.mlflow_uri, data["mlflow_run_id"], metrics, tags,
                            [report, saved, *images.values()], final)
    tracking.tag_model_version(  # the challenger's registry version carries its last verdict
        settings.mlflow_uri, data["model"], data["challenger_version"],
        {"last_evaluation": str(data["id"]), "last_evaluation_run": data["mlflow_run_id"],
         "last_evaluation_verdict": "no policy" if data["passed"] is None else str(data["passed"]).lower()})
    return data
