"""MLflow tracking: each campaign run is an MLflow run (params, counts, QC pass rate, s/clip, contact sheet)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

EXPERIMENT = "wanflow-campaigns"
ROLLOUT_EXPERIMENT = "wanflow-rollout"  # champion-vs-challenger evaluation runs


def mlflow_client(tracking_uri: str):
    """An MlflowClient on the tracking (and registry) store, with MLflow's own logging quietened."""
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


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


def run_url(tracking_uri: str, run_id: str, ui: str = "http://127.0.0.1:5000") -> str:
    client = mlflow_client(tracking_uri)
    exp_id = client.get_run(run_id).info.experiment_id
    return f"{ui}/#/experiments/{exp_id}/runs/{run_id}"


WORKERS_EXPERIMENT = "wanflow-workers"


def log_worker(tracking_uri: str, artifacts_dir: Path, report: dict[str, Any], series: list[dict[str, Any]]) -> str:
    """One MLflow run per GPU worker session: its final figures, and clips/GPU busy/clips per hour per shard."""
    from mlflow.entities import Metric

    client = mlflow_client(tracking_uri)
    exp = client.get_experiment_by_name(WORKERS_EXPERIMENT)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(
        WORKERS_EXPERIMENT, artifact_location=(artifacts_dir / WORKERS_EXPERIMENT).resolve().as_uri())
    run = client.create_run(exp_id, run_name=report["worker"],
                            tags={"wanflow.worker": report["worker"], "wanflow.slot": report["slot"],
                                  "wanflow.campaign": str(report.get("campaign") or "any")})
    import time

    now = int(time.time() * 1000)
    metrics = [Metric(k, float(point[k]), now, step) for step, point in enumerate(series, 1)
               for k in ("clips", "clips_per_hour", "gpu_busy_fraction", "queue_depth")]
    metrics += [Metric(k, float(report[k]), now, 0) for k in ("shards", "lost", "failed", "model_loads", "elapsed_s")]
    client.log_batch(run.info.run_id, metrics=metrics)
    client.set_terminated(run.info.run_id)
    return run.info.run_id
