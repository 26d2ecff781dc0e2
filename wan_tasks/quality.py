"""QC stage: run every check on a raw clip under the campaign brand's rules, record one catalog row per
check, then route the clip: ``block`` → auto-rejected with its reasons; ``needs_review`` or ``pass`` →
a review task (carrying the findings a person should look at).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from sqlalchemy import Engine, select

from catalog.db import session_scope
from catalog.models import Asset, ClipStatus, GenerationJob, PromptItem, QcResult, ReviewTask
from catalog import audit
from governance.brand import BrandProfile, default_profile
from governance.checks import BLOCK
from governance.qc_suite import clip_outcome
from wan_tasks.review import open_review
from governance.qc import Expected, Models, judge, run_checks


def check_clip(engine: Engine, asset_id: int, brand: BrandProfile | None = None, models: Models | None = None) -> str:
    """Idempotent: a clip already checked keeps its results. Returns its outcome (pass / needs_review / block)."""
    brand = brand or default_profile()
    with session_scope(engine) as s:
        asset = s.get(Asset, asset_id)
        if asset.status != ClipStatus.generated:
            return clip_outcome(asset, s.scalar(select(ReviewTask).where(ReviewTask.asset_id == asset_id)))
        job = s.get(GenerationJob, asset.job_id)
        item = s.get(PromptItem, job.item_id)
        expected = Expected(width=job.params["width"], height=job.params["height"],
                            frames=job.params["num_frames"], fps=float(job.params["fps"]))
        path, prompt, negative = Path(asset.uri), item.prompt, item.negative_prompt
    started, t0 = time.time(), time.perf_counter()
    results = run_checks(path, expected, brand, models=models, prompt=prompt, negative_prompt=negative)
    verdict = judge(results, brand)
    qc_s = time.perf_counter() - t0
    payload = {"outcome": verdict.outcome, "reasons": verdict.reasons, "brand": brand.name,
               "profile_sha256": brand.sha256}
    with session_scope(engine) as s:
        asset = s.get(Asset, asset_id)
        if asset.status != ClipStatus.generated:  # another worker finished it first
            return clip_outcome(asset, s.scalar(select(ReviewTask).where(ReviewTask.asset_id == asset_id)))
        job = s.get(GenerationJob, asset.job_id)
        job.timings = {**job.timings, "qc_s": round(qc_s, 4), "qc_started_unix": round(started, 4)}
        done = {r.check for r in s.scalars(select(QcResult).where(QcResult.asset_id == asset_id))}
        for r in results:
            if r.check not in done:
                s.add(QcResult(asset_id=asset_id, check=r.check, passed=r.passed, value=r.value,
                               threshold=r.threshold, details=r.details, outcome=verdict.outcomes[r.check]))
        if verdict.outcome == BLOCK:
            asset.status = ClipStatus.qc_failed
            audit.append(s, "qc", "clip.auto_rejected", "asset", asset_id, payload)
        else:
            asset.status = ClipStatus.in_review
            s.flush()
            open_review(s, asset_id, verdict.outcome, [asdict(f) for f in verdict.findings + verdict.notes])
            audit.append(s, "qc", "clip.queued_for_review", "asset", asset_id, payload)
    return verdict.outcome
