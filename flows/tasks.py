"""Prefect task wrappers: thin, one per real side effect. The work lives in the plain modules beside this.

Retries only where the world is flaky (I/O, a locked database, CUDA running out of memory transiently),
never for a validation failure or a bad prompt.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from catalog.db import open_catalog, session_scope
from core.settings import Settings
from wan_tasks import generate, plan, publish, quality


def _transient(task, task_run, state) -> bool:  # noqa: ANN001 — Prefect's retry_condition_fn
    from sqlalchemy.exc import OperationalError

    try:
        state.result()
    except (OSError, OperationalError, TimeoutError):
        return True
    except Exception:  # noqa: BLE001 — anything else is a real failure, not worth retrying
        return False
    return False


RETRY = dict(retries=2, retry_delay_seconds=[1, 5], retry_condition_fn=_transient, cache_policy=NO_CACHE)


@task(name="record-brief", cache_policy=NO_CACHE)
def record_brief(settings: Settings, brief) -> int:  # noqa: ANN001 — governance.brief.Brief
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        return plan.record_brief(s, brief)


@task(name="plan-jobs", cache_policy=NO_CACHE)
def plan_jobs(settings: Settings, brief_id: int, model, run_id: int | None, canary=None,  # noqa: ANN001
              canary_fraction: float = 0.0, arm: str | None = None) -> list[int]:
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        return plan.plan_jobs(s, brief_id, model, run_id, canary, canary_fraction, arm)


@task(name="freeze-models", cache_policy=NO_CACHE)
def freeze_models(settings: Settings, brief_id: int, brand: str, canary: float = 0.0,
                  canary_ref: str | None = None) -> tuple:
    """Resolve the brief's model (and canary) once, at its first plan; later plans read the frozen versions."""
    from wan_tasks import intake

    return intake.freeze_models(settings, brief_id, brand, canary, canary_ref)


@task(name="plan-batches", cache_policy=NO_CACHE)
def plan_batches(settings: Settings, job_ids: list[int]) -> tuple[list[list[int]], list[int]]:
    return generate.plan_batches(open_catalog(settings.catalog_db_url), job_ids, settings.engine_options)


@task(name="generate-batch", task_run_name="generate-jobs-{job_ids}", **RETRY)
def generate_batch(settings: Settings, job_ids: list[int], on_step=None) -> list[int]:  # noqa: ANN001
    return generate.generate_jobs(open_catalog(settings.catalog_db_url), job_ids, settings.assets_dir,
                                  settings.engine_options, on_step=on_step)


@task(name="generate-clip", task_run_name="generate-job-{job_id}", **RETRY)
def generate_clip(settings: Settings, job_id: int, on_step=None) -> int:  # noqa: ANN001
    return generate.generate_job(open_catalog(settings.catalog_db_url), job_id, settings.assets_dir,
                                 opts=settings.engine_options, on_step=on_step)


@task(name="find-clips", cache_policy=NO_CACHE)
def clips_of(settings: Settings, job_ids: list[int]) -> list[int]:
    return generate.clips_of(open_catalog(settings.catalog_db_url), job_ids)


@task(name="check-clip", task_run_name="check-asset-{asset_id}", **RETRY)
def check_clip(settings: Settings, asset_id: int, brand=None) -> str:  # noqa: ANN001 — governance.brand.BrandProfile
    from governance.qc import Models

    return quality.check_clip(open_catalog(settings.catalog_db_url), asset_id, brand, Models.from_settings(settings))


@task(name="validate-qc", **RETRY)
def validate_qc(settings: Settings, campaign: str, brand, run_id: int | None) -> dict:  # noqa: ANN001
    """The campaign's QC results table against the brand's expectation suite (Great Expectations), stored."""
    from governance.qc_suite import validate_campaign

    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        v = validate_campaign(s, campaign, brand, run_id)
        return {"id": v.id, "suite": v.suite, "success": v.success, "evaluated": v.evaluated, "failed": v.failed,
                "unmet": [r["description"] for r in v.results if not r["success"]]}


@task(name="qc-report", **RETRY)
def qc_report(settings: Settings, campaign: str, brand: str, run_id: int | None, validation_id: int | None) -> dict:
    """The self-contained HTML QC report of the campaign, and its clips' outcome counts."""
    from catalog.models import QcValidation
    from adapters import qc_report as report

    dest = settings.home_dir / "reports" / campaign / f"qc-report-run{run_id}.html"
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        validation = s.get(QcValidation, validation_id) if validation_id else None
        clips = report.clips(s, campaign)
        report.write(dest, report.render(campaign, clips, validation, brand, run_id))
    outcomes = {o: sum(c.outcome == o for c in clips) for o in ("pass", "needs_review", "block")}
    return {"path": str(dest), "outcomes": outcomes}


def destination(settings: Settings) -> publish.Destination:
    return publish.destination_for(settings.publish_to, settings.delivery_dir, settings.s3_endpoint_url)


@task(name="render-clip", task_run_name="render-asset-{clip_id}", **RETRY)
def render_clip(settings: Settings, clip_id: int, presets, policy, signing) -> list[int]:  # noqa: ANN001
    """Transcode → label → sign every deliverable of one clip (encoders in parallel processes)."""
    return publish.render_clip(open_catalog(settings.catalog_db_url), clip_id, settings.assets_dir, presets, policy,
                               signing, settings.encode_workers)


@task(name="deliver-clip", task_run_name="deliver-asset-{clip_id}", retry_condition_fn=_transient,
      cache_policy=NO_CACHE)
def deliver_clip(settings: Settings, clip_id: int, asset_ids: list[int], run_id: int | None) -> list[int]:
    """Deliver one clip's files; retries (set by the flow from settings) redo only what failed."""
    return publish.deliver_clip(open_catalog(settings.catalog_db_url), clip_id, asset_ids, destination(settings), run_id)


@task(name="write-manifest", **RETRY)
def write_manifest(settings: Settings, campaign: str) -> tuple[str, dict]:
    return publish.write_manifest(open_catalog(settings.catalog_db_url), campaign, destination(settings))


@task(name="notify-webhook", retry_condition_fn=_transient, cache_policy=NO_CACHE)
def notify_webhook(settings: Settings, campaign: str, manifest: dict) -> str:
    return publish.notify_webhook(open_catalog(settings.catalog_db_url), campaign, publish.Webhook(settings.webhook_url),
                                  manifest)
