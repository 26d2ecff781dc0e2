"""The rollout evaluation flow: golden prompts × {champion, challenger} → generate → QC and brand safety →
metrics per arm (+ optional blind A/B round) → gates → MLflow evaluation run with an HTML report.

Deployable (`rollout-evaluate` in prefect.yaml, work pool `gpu`). Both arms share one golden campaign, the same
prompts and the same seeds; their jobs are labelled ``arm`` and never share a batch (batches are per model
version). Re-running the same evaluation regenerates nothing: the jobs' idempotency keys include the version.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, runtime
from prefect.artifacts import create_link_artifact

from catalog.db import open_catalog, session_scope
from catalog.runs import close_run, open_run
from wan_tasks.intake import registry_for, validate
from core.settings import Settings
from catalog import audit
from wan_tasks import rollout
from adapters import tracking
from adapters.registry import ModelRefError, ResolvedModel, parse_ref
from adapters.media import atomic_path


@flow(name="rollout-evaluate", log_prints=True)
def rollout_evaluate(challenger: str, golden_path: str = "examples/golden.yaml", policy_path: str | None = None,
                     champion: str | None = None, ab: bool = False,
                     settings: Settings | None = None) -> dict[str, Any]:
    """Compare `challenger` (e.g. `wan-t2v/2`) with the champion (the golden file's `model`, normally
    `wan-t2v@champion`) on the golden prompts. `ab` opens a blind A/B round in the review dashboard."""
    from flows.tasks import plan_jobs, record_brief

    from flows.campaign import generate_and_check

    settings = settings or Settings()
    settings.ensure_dirs()
    log = get_run_logger()
    policy_file = policy_path or (str(settings.rollout_policy) if settings.rollout_policy else None)
    policy = rollout.load_policy(Path(policy_file)) if policy_file else None  # a bad policy fails before any work
    golden = validate(Path(golden_path), settings)
    champ, chall = _resolve_pair(settings, champion or golden.model_ref, challenger)
    log.info("rollout evaluation: %s (%s) vs %s (%s) on %d golden prompts", champ.ref, champ.label, chall.ref,
             chall.label, len(golden.items))
    brief_id = record_brief(settings, golden)
    engine = open_catalog(settings.catalog_db_url)
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
        run_id = open_run(s, golden.campaign, "rollout-evaluate", _flow_run_id(), mlflow_run_id)
    jobs = {arm: plan_jobs(settings, brief_id, model, run_id, arm=arm)
            for arm, model in (("champion", champ), ("challenger", chall))}
    generate_and_check(settings, jobs["champion"] + jobs["challenger"], golden.brand)

    from catalog.models import RolloutEvaluation

    with session_scope(engine) as s:
        metrics = {arm: rollout.arm_metrics(s, ids, settings.gpu_price_per_hour) for arm, ids in jobs.items()}
        ev = RolloutEvaluation(
            registry_name=champ.registry_name, champion_version=champ.version, challenger_version=chall.version,
            campaign_id=_campaign_id(s, golden.campaign), golden_path=str(golden.path.resolve()),
            golden_sha256=golden.sha256, policy_path=str(Path(policy_file).resolve()) if policy_file else None,
            policy_sha256=policy.sha256 if policy else None, mlflow_run_id=mlflow_run_id,
            metrics={**metrics, "job_ids": jobs, "labels": {"champion": champ.label, "challenger": chall.label}},
            gates=[], passed=None)
        s.add(ev)
        s.flush()
        if ab:
            rollout.open_ab_round(s, ev)
        rollout.refresh(s, ev)
        audit.append(s, "rollout", "rollout.evaluated", "rollout_evaluation", ev.id,
                     {"champion": champ.ref, "challenger": chall.ref, "passed": ev.passed, "gates": ev.gates,
                      "mlflow_run_id": mlflow_run_id})
        ev_id = ev.id
    summary = publish_evaluation(settings, ev_id, final=True)
    with session_scope(engine) as s:
        close_run(s, run_id, "completed", {"evaluation_id": ev_id, "passed": summary["passed"]})
    create_link_artifact(key=f"rollout-evaluation-{ev_id}", link=Path(summary["report"]).as_uri(),
                         link_text=f"Rollout evaluation {ev_id} (HTML)", description="Also in MLflow")
    return summary


def _resolve_pair(settings: Settings, champion_ref: str, challenger_ref: str) -> tuple[ResolvedModel, ResolvedModel]:
    registry = registry_for(settings)
    registry.ensure_bootstrap(parse_ref(champion_ref)[0])
    champ, chall = registry.resolve(champion_ref), registry.resolve(challenger_ref)
    if champ.registry_name != chall.registry_name:
        raise ModelRefError(f"challenger {challenger_ref!r} is a {chall.registry_name} version; the champion "
                            f"{champion_ref!r} is {champ.registry_name}")
    if champ.version == chall.version:
        raise ModelRefError(f"challenger {challenger_ref!r} is the champion itself ({champ.ref}): nothing to compare")
    return champ, chall


def _campaign_id(session: Any, name: str) -> int:
    from sqlalchemy import select

    from catalog.models import Campaign

    return session.scalar(select(Campaign.id).where(Campaign.name == name))


def evaluation_dict(ev: Any) -> dict[str, Any]:  # noqa: ANN401 - catalog.models.RolloutEvaluation
    return {"id": ev.id, "model": ev.registry_name, "champion_version": ev.champion_version,
            "challenger_version": ev.challenger_version, "golden_path": ev.golden_path,
            "golden_sha256": ev.golden_sha256, "policy_path": ev.policy_path, "passed": ev.passed,
            "gates": ev.gates, "ab_round": ev.ab_round, "mlflow_run_id": ev.mlflow_run_id,
            "report": ev.report_uri, "labels": ev.metrics.get("labels", {}),
            "metrics": {k: v for k, v in ev.metrics.items() if k not in ("job_ids", "labels")},
            "created_at": ev.created_at.isoformat()}


def publish_evaluation(settings: Settings, evaluation_id: int, final: bool = False) -> dict[str, Any]:
    """Recompute preference and gates (votes may have come in), rewrite the report, log both to the MLflow
    evaluation run and tag the challenger's registry version with the verdict."""
    from sqlalchemy import select

    from catalog.models import Asset, AssetKind, GenerationJob, PromptItem, RolloutEvaluation
    from adapters import rollout_report

    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        ev = rollout.refresh(s, s.get(RolloutEvaluation, evaluation_id))
        strips = []
        for arm in rollout.ARMS:
            ids = ev.metrics["job_ids"][arm]
            for key, uri in s.execute(select(PromptItem.item_key, Asset.uri)
                                      .join(GenerationJob, GenerationJob.item_id == PromptItem.id)
                                      .join(Asset, (Asset.job_id == GenerationJob.id) & (Asset.kind == AssetKind.raw_clip))
                                      .where(GenerationJob.id.in_(ids)).order_by(PromptItem.source_row, GenerationJob.variant_index)):
                strips.append((key, arm, uri))
        strips.sort(key=lambda t: (t[0], t[1] != "champion"))
        data = evaluation_dict(ev)
        dest = settings.home_dir / "reports" / "rollout" / f"evaluation-{ev.id}.html"
        report, images = rollout_report.write_report(dest, data, strips)
        ev.report_uri = str(report)
        data["report"] = str(report)
    _log_mlflow(settings, data, report, images, final)
    return data


def _log_mlflow(settings: Settings, ev: dict[str, Any], report: Path, images: dict[str, Path], final: bool) -> None:
    client = tracking.mlflow_client(settings.mlflow_uri)
    run_id = ev["mlflow_run_id"]
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
    step = len(client.get_metric_history(run_id, "gates_passed")) if not final else 0
    for k, v in metrics.items():
        client.log_metric(run_id, k, v, step=step)
    client.set_tag(run_id, "wanflow.preference", m.get("preference", {}).get("status", rollout.NOT_RUN))
    client.set_tag(run_id, "wanflow.verdict", "no policy" if ev["passed"] is None else
                   "passed" if ev["passed"] else "not passed")
    out = report.parent / f"evaluation-{ev['id']}.json"
    with atomic_path(out, ".json") as tmp:
        tmp.write_text(json.dumps(ev, indent=2, default=str, ensure_ascii=False))
    for path in (report, out, *images.values()):
        client.log_artifact(run_id, str(path), artifact_path="evaluation")
    if final:
        client.set_terminated(run_id, status="FINISHED")
    try:  # the challenger's registry version carries its last verdict
        for k, v in {"last_evaluation": str(ev["id"]), "last_evaluation_run": run_id,
                     "last_evaluation_verdict": "no policy" if ev["passed"] is None else str(ev["passed"]).lower()}.items():
            client.set_model_version_tag(ev["model"], str(ev["challenger_version"]), k, v)
    except Exception:  # noqa: BLE001 - a tag is a convenience; the catalog holds the evaluation
        logging.getLogger(__name__).warning("could not tag %s/%s with the evaluation", ev["model"], ev["challenger_version"])


def _flow_run_id() -> str | None:
    fid = runtime.flow_run.id
    return str(fid) if fid else None
