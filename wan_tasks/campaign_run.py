"""A campaign run's records beside its clips: opened as an MLflow run (the brief's parameters) and a catalog
run; closed with the run's summary (counts, QC outcomes and expectations, each arm apart when a canary
ran), its contact sheet, and the MLflow metrics and artifacts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from adapters import tracking
from adapters.media import contact_sheet
from adapters.registry import ResolvedModel
from catalog.db import session_scope
from catalog.models import GenerationJob
from catalog.runs import close_run, open_run
from catalog.summary import run_summary
from core.files import safe_file_name
from core.settings import Settings
from governance.brief_schema import ValidBrief

METRICS = ("jobs_planned", "clips_generated", "clips_reused", "qc_pass_rate", "seconds_per_clip",
           "items_rejected_by_policy")
ARM_METRICS = ("jobs_planned", "clips_generated", "qc_pass_rate", "seconds_per_clip")


@dataclass(frozen=True)
class CampaignRun:
    """One run of a campaign: the brief, the models frozen on it, and the runs it is filed under."""

    brief: ValidBrief
    brief_id: int
    model: ResolvedModel
    canary: ResolvedModel | None
    run_id: int
    mlflow_run_id: str
    flow_run_id: str | None


def run_params(brief: ValidBrief, model: ResolvedModel,
               canary: ResolvedModel | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The MLflow params and tags of a campaign run: the brief, its model and its canary."""
    params = {"brief": str(brief.path), "brief_sha256": brief.sha256, "brand": brief.brand.name,
              "model_ref": brief.model_ref, "model_version": f"{model.registry_name}/{model.version}",
              "model_resolved_from": model.resolved_from,
              "variant": model.variant, "items": len(brief.items), "items_rejected": len(brief.rejected)}
    tags = {"wanflow.model_label": model.label, "wanflow.stand_in": str(model.stand_in).lower()}
    if canary is not None:
        params |= {"canary_fraction": brief.canary, "canary_model_version": canary.ref,
                   "canary_variant": canary.variant}
        tags |= {"wanflow.canary_label": canary.label, "wanflow.canary_stand_in": str(canary.stand_in).lower()}
    return params, tags


def open_campaign_run(engine: Engine, settings: Settings, brief: ValidBrief, brief_id: int, model: ResolvedModel,
                      canary: ResolvedModel | None = None, flow_run_id: str | None = None) -> CampaignRun:
    """Start the run's MLflow run, then its catalog run (linked to the MLflow and Prefect runs)."""
    params, tags = run_params(brief, model, canary)
    mlflow_run_id = tracking.start_run(settings.mlflow_uri, settings.mlflow_artifacts_dir, brief.campaign,
                                       params=params, tags=tags)
    with session_scope(engine) as s:
        run_id = open_run(s, brief.campaign, "campaign", flow_run_id, mlflow_run_id)
    return CampaignRun(brief, brief_id, model, canary, run_id, mlflow_run_id, flow_run_id)


def arm_summaries(session: Session, brief_id: int, job_ids: list[int], run_id: int) -> dict[str, dict[str, Any]]:
    """The run summary of each arm (main, canary) of a campaign with a canary, apart."""
    arms: dict[str, list[int]] = {}
    for job_id, arm in session.execute(select(GenerationJob.id, GenerationJob.arm)
                                       .where(GenerationJob.id.in_(job_ids))).all():
        arms.setdefault(arm or "main", []).append(job_id)
    out = {}
    for arm, ids in sorted(arms.items()):
        s = run_summary(session, brief_id, ids, run_id)
        out[arm] = {k: v for k, v in s.items() if k != "clip_paths"} | {"job_ids": sorted(ids)}
    return out


def close_campaign_run(engine: Engine, settings: Settings, run: CampaignRun, job_ids: list[int],
                       validation: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """Summarise the run, draw its contact sheet, log both (and the QC report) to MLflow and end that run,
    close the catalog run with the summary; returns the summary with the run's ids and models added."""
    brief, model, canary = run.brief, run.model, run.canary
    with session_scope(engine) as s:
        summary = run_summary(s, run.brief_id, job_ids, run.run_id)
    sheet = None
    if summary["clip_paths"]:
        sheet = contact_sheet([Path(p) for p in summary["clip_paths"]],
                              settings.home_dir / "reports" / safe_file_name(brief.campaign) / f"contact-sheet-run{run.run_id}.png")
    metrics = {k: summary[k] for k in METRICS}
    metrics |= {f"clips_{k}": v for k, v in summary["clips_by_status"].items()}
    metrics |= {f"qc_clips_{k}": v for k, v in report["outcomes"].items()}
    metrics["qc_expectations_met"] = float(validation["success"])
    if canary is not None:  # the canary's clips reported apart from the main model's
        with session_scope(engine) as s:
            summary["arms"] = arm_summaries(s, run.brief_id, job_ids, run.run_id)
        for arm, arm_summary in summary["arms"].items():
            metrics |= {f"{arm}_{k}": arm_summary[k] for k in ARM_METRICS}
    summary |= {"qc_outcomes": report["outcomes"], "qc_report": report["path"],
                "qc_validation": {k: validation[k] for k in ("suite", "success", "evaluated", "failed", "unmet")}}
    tracking.finish_run(settings.mlflow_uri, run.mlflow_run_id, metrics,
                        ([sheet] if sheet else []) + [Path(report["path"])])
    with session_scope(engine) as s:
        close_run(s, run.run_id, "completed", summary)
    return summary | {
        "campaign": brief.campaign, "run_id": run.run_id, "mlflow_run_id": run.mlflow_run_id,
        "prefect_flow_run_id": run.flow_run_id, "model": f"{model.registry_name}/{model.version}",
        "model_label": model.label, "contact_sheet": str(sheet) if sheet else None,
        "canary": {"fraction": brief.canary, "model": canary.ref, "label": canary.label} if canary else None}
