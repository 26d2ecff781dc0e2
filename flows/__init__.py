"""Prefect flows (campaign, publish) and the `wanflow` CLI.

Importing this package sets quiet, offline defaults for the libraries below it (before they are
imported): Prefect keeps its state under $WANFLOW_HOME/prefect and sends no telemetry, the model hub
is never contacted. Anything already set in the environment wins.
"""

import logging
import os
from pathlib import Path

_home = Path(os.environ.get("WANFLOW_HOME", ".wanflow")).expanduser().resolve()
for _key, _value in {
    "PREFECT_HOME": str(_home / "prefect"),
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
    os.environ.setdefault(_key, _value)


def ensure_prefect_home() -> None:
    """Prefect needs its home folder before it is imported; create it only when a flow is about to run."""
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)


# Great Expectations announces every ephemeral context at INFO; its warnings and errors still show.
logging.getLogger("great_expectations").setLevel(logging.WARNING)
