"""MLflow tracking: each campaign run is an MLflow run (params, counts, QC pass rate, s/clip, contact sheet);
each rollout evaluation and each GPU worker session has one too. MLflow is imported on first use."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from core import heavy

EXPERIMENT = "wanflow-campaigns"
ROLLOUT_EXPERIMENT = "wanflow-rollout"  # champion-vs-challenger evaluation runs
WORKERS_EXPERIMENT = "wanflow-workers"
log = logging.getLogger(__name__)


def mlflow_client(tracking_uri: str):
    """An MlflowClient on the tracking (and registry) store, with MLflow's own logging quietened."""
    mlflow = heavy.mlflow()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _experiment_id(client, artifacts_dir: Path, name: str = EXPERIMENT) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    # Explicit artifact location: otherwise artifacts land in ./mlruns of whatever the CWD is.
    return client.create_experiment(name, artifact_location=(artifacts_dir / name).resolve().as_uri())


def start_run(tracking_uri: str, artifacts_dir: Path, campaign: str, params: dict[str, Any],
              tags: dict[str, str], experiment: str = EXPERIMENT, run_name: str | None = None) -> str:
    client = mlflow_client(tracking_uri)
    run = client.create_run(_experiment_id(client, artifacts_dir, experiment), run_name=run_name or campaign,
                            tags={"wanflow.campaign": campaign, **tags})
    for k, v in params.items():
        client.log_param(run.info.run_id, k, v)
    return run.info.run_id


def finish_run(tracking_uri: str, run_id: str, metrics: dict[str, float], artifacts: list[Path],
               status: str = "FINISHED") -> None:
    client = mlflow_client(tracking_uri)
    for k, v in metrics.items():
        client.log_metric(run_id, k, float(v))
    for path in artifacts:
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, status=status)


def log_evaluation(tracking_uri: str, run_id: str, metrics: dict[str, float], tags: dict[str, str],
                   artifacts: list[Path], final: bool) -> None:
    """A rollout evaluation's figures, tags and files (under ``evaluation/``) on its run. Each later publish
    (votes came in) logs its metrics at the next step; the final publish (step 0) ends the run."""
    client = mlflow_client(tracking_uri)
    step = len(client.get_metric_history(run_id, "gates_passed")) if not final else 0
    for k, v in metrics.items():
        client.log_metric(run_id, k, v, step=step)
    for k, v in tags.items():
        client.set_tag(run_id, k, v)
    for path in artifacts:
        client.log_artifact(run_id, str(path), artifact_path="evaluation")
    if final:
        client.set_terminated(run_id, status="FINISHED")


def tag_model_version(tracking_uri: str, name: str, version: int, tags: dict[str, str]) -> bool:
    """Tag a registry version; False (and a warning) if that fails: a tag is a convenience, never the record."""
    client = mlflow_client(tracking_uri)
    try:
        for k, v in tags.items():
            client.set_model_version_tag(name, str(version), k, v)
    except Exception:  # noqa: BLE001 - the catalog holds the record; the tag only mirrors it
        log.warning("could not tag %s/%s with the evaluation", name, version)
        return False
    return True


def run_url(tracking_uri: str, run_id: str, ui: str = "http://127.0.0.1:5000") -> str:
    client = mlflow_client(tracking_uri)
    exp_id = client.get_run(run_id).info.experiment_id
    return f"{ui}/#/experiments/{exp_id}/runs/{run_id}"


def log_worker(tracking_uri: str, artifacts_dir: Path, report: dict[str, Any], series: list[dict[str, Any]]) -> str:
    """One MLflow run per GPU worker session: its final figures, and clips/GPU busy/clips per hour per shard."""
    client = mlflow_client(tracking_uri)
    Metric = heavy.mlflow().entities.Metric
    run = client.create_run(_experiment_id(client, artifacts_dir, WORKERS_EXPERIMENT), run_name=report["worker"],
                            tags={"wanflow.worker": report["worker"], "wanflow.slot": report["slot"],
                                  "wanflow.campaign": str(report.get("campaign") or "any")})
    now = int(time.time() * 1000)
    metrics = [Metric(k, float(point[k]), now, step) for step, point in enumerate(series, 1)
               for k in ("clips", "clips_per_hour", "gpu_busy_fraction", "queue_depth")]
    metrics += [Metric(k, float(report[k]), now, 0) for k in ("shards", "lost", "failed", "model_loads", "elapsed_s")]
    client.log_batch(run.info.run_id, metrics=metrics)
    client.set_terminated(run.info.run_id)
    return run.info.run_id
