"""Quiet, offline defaults for the libraries wanflow drives, set before any of them is imported.

Prefect keeps its state under ``$WANFLOW_HOME/prefect`` and sends no telemetry, Great Expectations and
MLflow show no progress bars or analytics, and the model hub is never contacted. Anything already set in
the environment wins. :mod:`core` applies these on import, so every entry point has them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path


def home_from_environment() -> Path:
    """``WANFLOW_HOME`` as the settings will read it (they are not built yet when this runs)."""
    return Path(os.environ.get("WANFLOW_HOME", ".wanflow")).expanduser().resolve()


def set_defaults() -> None:
    for key, value in {
        "PREFECT_HOME": str(home_from_environment() / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "DIFFUSERS_VERBOSITY": "error",
        "TOKENIZERS_PARALLELISM": "false",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }.items():
        os.environ.setdefault(key, value)
    # Great Expectations announces every ephemeral context at INFO; its warnings and errors still show.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


def ensure_prefect_home() -> None:
    """Prefect needs its home folder before it is imported; create it only when a flow is about to run."""
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
