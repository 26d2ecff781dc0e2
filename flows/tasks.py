"""Prefect task wrappers: thin, one per real side effect, each named for the step it is in a flow. The work
lives in the plain stage functions of :mod:`wan_tasks` (and the adapters they call), which keep their own names.

Retries only where the world is flaky (I/O, a locked database, CUDA running out of memory transiently),
never for a validation failure or a bad prompt.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.exc import OperationalError

from adapters import qc_report
from adapters.destinations import Destination, Webhook, destination_for
from adapters.qc_models import Models
from adapters.registry import ResolvedModel
from catalog.db import session_scope
from catalog.models import QcValidation
from catalog.runs import close_run, open_run
from core.files import safe_file_name, write_text_atomic
from core.settings import Settings
from flows.context import catalog_of, flow_run_id
from governance.brand import BrandProfile
from governance.brief_schema import ValidBrief
from governance.renditions import PresetSet
from wan_tasks import campaign_run, generate, intake, plan, publish, quality, render, rollout_run, sweep
from wan_tasks.marking import Marking
from wan_tasks.campaign_run import CampaignRun
from wan_tasks.rollout import LoadedPolicy
from wan_tasks.rollout_run import EvaluationRun


def _transient(task, task_run, state) -> bool:  # noqa: ANN001 — Prefect's retry_condition_fn
    try:
        state.result()
    except (OSError, OperationalError, TimeoutError):
        return True
    except Exception:  # noqa: BLE001 — anything else is a real failure, not worth retrying
        return False
    return False


RETRY = dict(retries=2, retry_delay_seconds=[1, 5], retry_condition_fn=_transient, cache_policy=NO_CACHE)


# --- runs: the catalog run of a flow (and its MLflow run) ---------------------------------------------------

@task(name="open-run", **RETRY)
def begin_run(settings: Settings, campaign: str, flow: str) -> int:
    with session_scope(catalog_of(settings)) as s:
        return open_run(s, campaign, flow, flow_run_id())


@task(name="sweep-temp-files", **RETRY)
def sweep_temp_files(settings: Settings) -> dict[str, Any]:
    """Remove what killed writes left behind (wan_tasks.sweep); logs and returns what was removed."""
    done = sweep.sweep(settings, catalog_of(settings))
    get_run_logger().info("sweep: %s", done)
    return {"removed": len(done.removed), "bytes": done.bytes, "kept": len(done.kept)}


@task(name="close-run", **RETRY)
def end_run(settings: Settings, run_id: int, status: str, summary: dict[str, Any]) -> None:
    with session_scope(catalog_of(settings)) as s:
        close_run(s, run_id, status, summary)


@task(name="start-campaign-run", **RETRY)
def start_campaign_run(settings: Settings, brief: ValidBrief, brief_id: int, model: ResolvedModel,
                       canary: ResolvedModel | None) -> CampaignRun:
    """The campaign run's MLflow run (the brief's parameters) and catalog run."""
    return campaign_run.open_campaign_run(catalog_of(settings), settings, brief, brief_id, model, canary,
                                          flow_run_id())


@task(name="finish-campaign-run", **RETRY)
def finish_campaign_run(settings: Settings, run: CampaignRun, job_ids: list[int], validation: dict[str, Any],
                        report: dict[str, Any]) -> dict[str, Any]:
    """The run's summary and contact sheet, logged to MLflow and stored on the catalog run, which closes."""
    return campaign_run.close_campaign_run(catalog_of(settings), settings, run, job_ids, validation, report)


# --- plan ---------------------------------------------------------------------------------------------------

@task(name="record-brief", cache_policy=NO_CACHE)
def store_brief(settings: Settings, brief: ValidBrief) -> int:
    with session_scope(catalog_of(settings)) as s:
        return plan.record_brief(s, brief)


@task(name="freeze-models", cache_policy=NO_CACHE)
def freeze_brief_models(settings: Settings, brief_id: int, brand: str, canary: float = 0.0,
                        canary_ref: str | None = None) -> tuple[ResolvedModel, ResolvedModel | None]:
    """Resolve the brief's model (and canary) once, at its first plan; later plans read the frozen versions."""
    return intake.resolve_models(settings, brief_id, brand, canary, canary_ref)


@task(name="plan-jobs", cache_policy=NO_CACHE)
def plan_brief(settings: Settings, brief_id: int, model: ResolvedModel, run_id: int | None,
               canary: ResolvedModel | None = None, canary_fraction: float = 0.0, arm: str | None = None,
               lora: dict | None | str = plan.ITEM_LORA) -> list[int]:
    with session_scope(catalog_of(settings)) as s:
        return plan.plan_jobs(s, brief_id, model, run_id, canary, canary_fraction, arm, lora)


# --- generate -----------------------------------------------------------------------------------------------

@task(name="plan-batches", cache_policy=NO_CACHE)
def batch_jobs(settings: Settings, job_ids: list[int]) -> tuple[list[list[int]], list[int]]:
    return generate.plan_batches(catalog_of(settings), job_ids, settings.engine_options)


@task(name="generate-batch", task_run_name="generate-jobs-{job_ids}", **RETRY)
def generate_batch(settings: Settings, job_ids: list[int], on_step=None) -> list[int]:  # noqa: ANN001
    return generate.generate_jobs(catalog_of(settings), job_ids, settings.assets_dir, settings.engine_options,
                                  on_step=on_step)


@task(name="generate-clip", task_run_name="generate-job-{job_id}", **RETRY)
def generate_clip(settings: Settings, job_id: int, on_step=None) -> int:  # noqa: ANN001
    return generate.generate_job(catalog_of(settings), job_id, settings.assets_dir, opts=settings.engine_options,
                                 on_step=on_step)


@task(name="find-clips", cache_policy=NO_CACHE)
def find_clips(settings: Settings, job_ids: list[int]) -> list[int]:
    return generate.clips_of(catalog_of(settings), job_ids)


# --- QC -----------------------------------------------------------------------------------------------------

@task(name="check-clip", task_run_name="check-asset-{asset_id}", **RETRY)
def qc_clip(settings: Settings, asset_id: int, brand: BrandProfile | None = None) -> str:
    return quality.check_clip(catalog_of(settings), asset_id, brand, Models.from_settings(settings))


@task(name="validate-qc", **RETRY)
def validate_qc(settings: Settings, campaign: str, brand: BrandProfile, run_id: int | None) -> dict:
    """The campaign's QC results table against the brand's expectation suite (Great Expectations), stored."""
    with session_scope(catalog_of(settings)) as s:
        v = quality.validate_campaign(s, campaign, brand, run_id)
        return {"id": v.id, "suite": v.suite, "success": v.success, "evaluated": v.evaluated, "failed": v.failed,
                "unmet": [r["description"] for r in v.results if not r["success"]]}


@task(name="qc-report", **RETRY)
def write_qc_report(settings: Settings, campaign: str, brand: str, run_id: int | None,
                    validation_id: int | None) -> dict:
    """The self-contained HTML QC report of the campaign, and its clips' outcome counts."""
    dest = settings.home_dir / "reports" / safe_file_name(campaign) / f"qc-report-run{run_id}.html"
    with session_scope(catalog_of(settings)) as s:
        validation = s.get(QcValidation, validation_id) if validation_id else None
        clips = qc_report.clips(s, campaign)
        write_text_atomic(dest, qc_report.render(campaign, clips, validation, brand, run_id, settings.locale,
                                                 settings.timezone))
    outcomes = {o: sum(c.outcome == o for c in clips) for o in ("pass", "needs_review", "block")}
    return {"path": str(dest), "outcomes": outcomes}


# --- publish ------------------------------------------------------------------------------------------------

def destination(settings: Settings) -> Destination:
    return destination_for(settings.publish_to, settings.delivery_dir, settings.s3_endpoint_url)


@task(name="render-clip", task_run_name="render-asset-{clip_id}", **RETRY)
def make_renditions(settings: Settings, clip_id: int, presets, policy, signing) -> list[int]:  # noqa: ANN001
    """Transcode → label → sign every deliverable of one clip (encoders in parallel processes)."""
    return render.render_clip(catalog_of(settings), clip_id, settings.assets_dir, presets, policy, signing,
                              settings.encode_workers, Marking(method=settings.watermark_method))


@task(name="deliver-clip", task_run_name="deliver-asset-{clip_id}", retry_condition_fn=_transient,
      cache_policy=NO_CACHE)
def deliver_renditions(settings: Settings, clip_id: int, asset_ids: list[int], run_id: int | None) -> list[int]:
    """Deliver one clip's files; retries (set by the flow from settings) redo only what failed."""
    return publish.deliver_clip(catalog_of(settings), clip_id, asset_ids, destination(settings), run_id,
                                settings.require_watermark)


@task(name="write-manifest", **RETRY)
def deliver_manifest(settings: Settings, campaign: str, presets: PresetSet,
                     clip_errors: dict[int, str]) -> tuple[str, dict]:
    """The campaign's manifest at the destination: every expected file, delivered or failed with its reason."""
    return publish.write_manifest(catalog_of(settings), campaign, destination(settings), presets, clip_errors)


@task(name="notify-webhook", retry_condition_fn=_transient, cache_policy=NO_CACHE)
def notify_cms(settings: Settings, campaign: str, manifest: dict) -> str:
    return publish.notify_webhook(catalog_of(settings), campaign, Webhook(settings.webhook_url), manifest)


# --- rollout evaluation -------------------------------------------------------------------------------------

@task(name="start-evaluation-run", **RETRY)
def start_evaluation_run(settings: Settings, golden: ValidBrief, champ: ResolvedModel, chall: ResolvedModel,
                         policy_file: str | None, policy: LoadedPolicy | None, ab: bool,
                         lora: rollout_run.LoraArms | None = None, holdout: str | None = None) -> EvaluationRun:
    """The evaluation's MLflow run (the pair, golden set and policy as parameters) and catalog run."""
    return rollout_run.open_evaluation_run(catalog_of(settings), settings, golden, champ, chall, policy_file, policy,
                                           ab, flow_run_id(), lora, holdout)


@task(name="compare-arms", **RETRY)
def compare_arms(settings: Settings, run: EvaluationRun, jobs: dict[str, list[int]]) -> int:
    """Metrics per arm, the blind A/B round if asked, the gates: the evaluation row, audited."""
    return rollout_run.record_evaluation(catalog_of(settings), settings, run, jobs)


@task(name="publish-evaluation", **RETRY)
def report_evaluation(settings: Settings, evaluation_id: int, final: bool = False) -> dict[str, Any]:
    """The evaluation's report (HTML, JSON) rewritten and logged to MLflow; the challenger's version tagged."""
    return rollout_run.publish_evaluation(catalog_of(settings), settings, evaluation_id, final)
