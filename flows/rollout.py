"""The rollout evaluation flow: golden prompts × {champion, challenger} → generate → QC and brand safety →
metrics per arm (+ optional blind A/B round) → gates → MLflow evaluation run with an HTML report.

Deployable (`rollout-evaluate` in prefect.yaml, work pool `gpu`). Both arms share one golden campaign, the same
prompts and the same seeds; their jobs are labelled ``arm`` and never share a batch (batches are per model
version). Re-running the same evaluation regenerates nothing: the jobs' idempotency keys include the version.
The work is in :mod:`wan_tasks.rollout_run` (the run) and :mod:`wan_tasks.rollout` (metrics, gates).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact

from core.settings import Settings
from flows.campaign import generate_and_check
from flows.context import catalog_of
from flows.tasks import compare_arms, end_run, plan_brief, report_evaluation, start_evaluation_run, store_brief
from wan_tasks.intake import validate
from governance.model_refs import ModelRefError
from wan_tasks.plan import ITEM_LORA
from wan_tasks.rollout_run import (check_holdout, check_holdout_unseen, job_lora_arms, policy_for, resolve_base,
                                   resolve_lora_arms, resolve_pair)


@flow(name="rollout-evaluate", log_prints=True)
def rollout_evaluate(challenger: str | None, golden_path: str = "examples/golden.yaml", policy_path: str | None = None,
                     champion: str | None = None, ab: bool = False, settings: Settings | None = None,
                     lora: str | None = None, against: str | None = None, lora_scale: float = 1.0,
                     holdout: str | None = None) -> dict[str, Any]:
    """Compare `challenger` (e.g. `wan-t2v/2`) with the champion (the golden file's `model`, normally
    `wan-t2v@champion`) on the golden prompts. `ab` opens a blind A/B round in the review dashboard.

    Or, with `lora` (e.g. `acme-style@challenger`) instead of `challenger`: that LoRA against `against` (default
    the LoRA's champion; `none`: the base alone), both on the same base (`champion`, else the golden file's model).
    `holdout`: a folder of held-out brand images for brand likeness."""
    settings = settings or Settings()
    settings.ensure_dirs()
    log = get_run_logger()
    policy_file, policy = policy_for(settings, policy_path)  # a bad policy fails before any work
    golden = validate(Path(golden_path), settings)
    held_out = check_holdout(holdout)
    if (challenger is None) == (lora is None):
        raise ModelRefError("give either a challenger model version or --lora (a LoRA on the same base), not both")
    arms = None
    if lora is not None:
        champ = chall = resolve_base(settings, champion or golden.model_ref)
        arms = resolve_lora_arms(settings, champ, lora, against, lora_scale)
        check_holdout_unseen(catalog_of(settings), arms, held_out)
    else:
        champ, chall = resolve_pair(settings, champion or golden.model_ref, challenger)
    log.info("rollout evaluation: %s (%s) vs %s (%s) on %d golden prompts", champ.ref, champ.label, chall.ref,
             chall.label, len(golden.items))
    brief_id = store_brief(settings, golden)
    run = start_evaluation_run(settings, golden, champ, chall, policy_file, policy, ab, arms, holdout)
    job_loras = job_lora_arms(catalog_of(settings), arms) if arms else {}
    jobs = {arm: plan_brief(settings, brief_id, model, run.run_id, arm=arm, lora=job_loras.get(arm, ITEM_LORA))
            for arm, model in (("champion", champ), ("challenger", chall))}
    generate_and_check(settings, jobs["champion"] + jobs["challenger"], golden.brand)
    ev_id = compare_arms(settings, run, jobs)
    summary = report_evaluation(settings, ev_id, final=True)
    end_run(settings, run.run_id, "completed", {"evaluation_id": ev_id, "passed": summary["passed"]})
    create_link_artifact(key=f"rollout-evaluation-{ev_id}", link=Path(summary["report"]).as_uri(),
                         link_text=f"Rollout evaluation {ev_id} (HTML)", description="Also in MLflow")
    return summary
