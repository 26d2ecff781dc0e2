"""The brand LoRA training flow: dataset version → train (cache, loop, checkpoints) → track → register.

Deployable (`personalize-train` in prefect.yaml, work pool `gpu`). One task, because training is one side effect
whose own checkpoints make it re-runnable: a crashed or killed run started again with the same arguments resumes
from its last checkpoint (the run folder is keyed on the dataset, the base weights and the configuration). The
work is in :mod:`wan_tasks.personalize`; a Rich bar in the CLI and a Prefect progress artifact show the steps.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from adapters.training import TrainConfig
from core.settings import Settings
from flows import progress
from wan_tasks import personalize


@task(name="train-lora", cache_policy=NO_CACHE)
def train_lora(settings: Settings, name: str, dataset: str, base: str, config: dict[str, Any], processes: int,
               accelerate_config: str | None, alias: str | None) -> dict[str, Any]:
    cfg = TrainConfig(**config | {"target_modules": tuple(config.get("target_modules") or TrainConfig().target_modules)})
    bar = progress.start(f"training lora-{name}", cfg.steps)
    try:
        return personalize.train_lora(settings, name, dataset, base, cfg, processes=processes,
                                      accelerate_config=accelerate_config, alias=alias,
                                      on_step=lambda step, total, loss: bar._show(float(step)))
    finally:
        progress.stop(bar)


@flow(name="personalize-train", log_prints=True)
def personalize_train(name: str, dataset: str, base: str = "wan-t2v@champion", config: dict[str, Any] | None = None,
                      processes: int = 1, accelerate_config: str | None = None, alias: str | None = None,
                      settings: Settings | None = None) -> dict[str, Any]:
    """Train the brand LoRA `name` on `dataset` (e.g. `acme-style@3`) over `base`; register it as `lora-<name>`."""
    settings = settings or Settings()
    settings.ensure_dirs()
    log = get_run_logger()
    config = config or asdict(TrainConfig())
    log.info("training lora-%s on %s over %s (%s steps, rank %s)", name, dataset, base, config.get("steps"),
             config.get("rank"))
    result = train_lora(settings, name, dataset, base, config, processes, accelerate_config, alias)
    log.info("registered %s (alias %s); loss %.4f → %.4f", result["lora"], result["alias"], result["loss_first"],
             result["loss_last"])
    return result
