"""QC stage: decode a raw clip, run every registered check on it under the campaign brand's rules, record
one catalog row per check, then route the clip: ``block`` → auto-rejected with its reasons;
``needs_review`` or ``pass`` → a review task (carrying the findings a person should look at).

After a campaign's clips, :func:`validate_campaign` reads its QC results table from the catalog and
validates it against the brand's expectation suite (:mod:`governance.qc_suite`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from adapters.clip_frames import DECODE_ERRORS, decode
from adapters.qc_models import Models
from catalog import audit
from catalog.db import session_scope
from catalog.models import (Asset, AssetKind, Campaign, ClipStatus, GenerationJob, PromptItem, QcResult, QcValidation,
                            ReviewTask)
from core import heavy
from governance.brand import BrandProfile, default_profile
from governance.qc import BLOCK, CheckContext, CheckResult, Expected, Verdict, clip_outcome, judge, run
from governance.qc_suite import COLUMNS, run_suite
from wan_tasks.edit import record_edit_checks
from wan_tasks.review import open_review

if TYPE_CHECKING:
    import pandas as pd


def rules_judge() -> dict[str, Any]:
    """The judge of the checks that need no model: wanflow's own rules, at this version."""
    try:
        return {"detector": "wanflow rules", "version": version("wanflow")}
    except PackageNotFoundError:
        return {"detector": "wanflow rules", "version": "unknown (not installed as a package)"}


def run_checks(
    path: Path,
    expected: Expected | None = None,
    brand: BrandProfile | None = None,
    *,
    models: Models | None = None,
    prompt: str | None = None,
    negative_prompt: str | None = None,
    only: Iterable[str] | None = None,
    timings: dict[str, float] | None = None,
) -> list[CheckResult]:
    """Run the checks (all, or ``only`` these) on the clip at ``path``, in :data:`governance.qc.QC_CHECKS` order.

    The clip is decoded once. If it does not decode, ``decodable`` fails and every check that needs the
    picture is returned not run with that reason; the text checks still run on the prompt.
    ``timings``, if given, receives seconds per check (and ``decode``, ``masks``). Every result names its
    judge: the detector that produced it, or :func:`rules_judge`.
    """
    timings = timings if timings is not None else {}
    t0 = time.perf_counter()
    try:
        clip, error = decode(Path(path)), None
    except DECODE_ERRORS as exc:
        clip, error = None, f"clip not decodable: {type(exc).__name__}: {exc}"
    ctx = CheckContext(clip, expected or Expected(), brand or default_profile(), models or Models(), prompt,
                       negative_prompt, error)
    if clip is not None:
        timings["decode"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ctx.prepare()
        timings["masks"] = time.perf_counter() - t0  # black frames and frozen pairs, shared by the picture checks
    rules = rules_judge()
    return [r if r.judge or r.passed is None else replace(r, judge=rules) for r in run(ctx, only, timings)]


def evaluate(path: Path, expected: Expected | None = None, brand: BrandProfile | None = None, *,
             models: Models | None = None, prompt: str | None = None,
             negative_prompt: str | None = None) -> tuple[list[CheckResult], Verdict]:
    """Every check, and the brand's verdict on them."""
    brand = brand or default_profile()
    results = run_checks(path, expected, brand, models=models, prompt=prompt, negative_prompt=negative_prompt)
    return results, judge(results, brand)


def _outcome(asset: Asset, task: ReviewTask | None) -> str:
    return clip_outcome(asset.status == ClipStatus.qc_failed, task.qc_outcome if task else None)


def check_clip(engine: Engine, asset_id: int, brand: BrandProfile | None = None, models: Models | None = None) -> str:
    """Idempotent: a clip already checked keeps its results. Returns its outcome (pass / needs_review / block)."""
    brand = brand or default_profile()
    with session_scope(engine) as s:
        asset = s.get(Asset, asset_id)
        if asset.status != ClipStatus.generated:
            return _outcome(asset, s.scalar(select(ReviewTask).where(ReviewTask.asset_id == asset_id)))
        job = s.get(GenerationJob, asset.job_id)
        item = s.get(PromptItem, job.item_id)
        expected = Expected(width=job.params["width"], height=job.params["height"],
                            frames=job.params["num_frames"], fps=float(job.params["fps"]))
        path, prompt, negative = Path(asset.uri), item.prompt, item.negative_prompt
    started, t0 = time.time(), time.perf_counter()
    results, verdict = evaluate(path, expected, brand, models=models, prompt=prompt, negative_prompt=negative)
    qc_s = time.perf_counter() - t0
    payload = {"outcome": verdict.outcome, "reasons": verdict.reasons, "brand": brand.name,
               "profile_sha256": brand.sha256}
    with session_scope(engine) as s:
        asset = s.get(Asset, asset_id)
        if asset.status != ClipStatus.generated:  # another worker finished it first
            return _outcome(asset, s.scalar(select(ReviewTask).where(ReviewTask.asset_id == asset_id)))
        job = s.get(GenerationJob, asset.job_id)
        job.timings = {**job.timings, "qc_s": round(qc_s, 4), "qc_started_unix": round(started, 4)}
        done = {r.check for r in s.scalars(select(QcResult).where(QcResult.asset_id == asset_id))}
        for r in results:
            if r.check not in done:
                s.add(QcResult(asset_id=asset_id, check=r.check, passed=r.passed, value=r.value,
                               threshold=r.threshold, details=r.details, outcome=verdict.outcomes[r.check],
                               judge=r.judge))
        # an edit's promise (untouched region, seam) on the decoded clip: a violation blocks, with its frames
        broken = [r for r in record_edit_checks(s, asset_id) if r.passed is False]
        if broken:
            verdict = replace(verdict, outcome=BLOCK)
            payload = {**payload, "outcome": BLOCK, "reasons": [*verdict.reasons, *(
                f"{r.check}: frames {r.details.get('frames_violating')}" for r in broken)]}
        if verdict.outcome == BLOCK:
            asset.status = ClipStatus.qc_failed
            audit.append(s, "qc", "clip.auto_rejected", "asset", asset_id, payload)
        else:
            asset.status = ClipStatus.in_review
            s.flush()
            open_review(s, asset_id, verdict.outcome, [asdict(f) for f in verdict.findings + verdict.notes])
            audit.append(s, "qc", "clip.queued_for_review", "asset", asset_id, payload)
    return verdict.outcome


def qc_table(session: Session, campaign: str) -> pd.DataFrame:
    """The campaign's QC results table (:data:`governance.qc_suite.COLUMNS`): one row per raw clip of
    ``campaign`` and check recorded for it."""
    pd = heavy.pandas()
    q = (select(QcResult, Asset, GenerationJob.variant_index, PromptItem.item_key, ReviewTask)
         .join(Asset, Asset.id == QcResult.asset_id)
         .join(GenerationJob, GenerationJob.id == Asset.job_id)
         .join(PromptItem, PromptItem.id == GenerationJob.item_id)
         .join(Campaign, Campaign.id == GenerationJob.campaign_id)
         .outerjoin(ReviewTask, ReviewTask.asset_id == Asset.id)
         .where(Campaign.name == campaign, Asset.kind == AssetKind.raw_clip, ~QcResult.check.startswith("edit_"))
         .order_by(Asset.id, QcResult.id))  # an edit's own checks (wan_tasks/edit.py) are outside the suite
    rows: list[dict[str, Any]] = [
        {"asset_id": a.id, "item": key, "variant": v, "check": r.check,
         "status": "not_run" if r.passed is None else ("pass" if r.passed else "fail"),
         "value": r.value, "threshold": r.threshold, "outcome": r.outcome or "", "clip_outcome": _outcome(a, t)}
        for r, a, v, key, t in session.execute(q)]
    return pd.DataFrame(rows, columns=list(COLUMNS)).astype({"value": "float64", "threshold": "float64"})


def validate_campaign(session: Session, campaign: str, brand: BrandProfile, run_id: int | None = None) -> QcValidation:
    """Build the campaign's QC results table, validate it against the brand's suite and store the result."""
    df = qc_table(session, campaign)
    got = run_suite(df, brand)
    campaign_id = session.scalar(select(Campaign.id).where(Campaign.name == campaign))
    if campaign_id is None:
        raise LookupError(f"unknown campaign {campaign!r}")
    row = QcValidation(campaign_id=campaign_id, run_id=run_id, brand=brand.name, profile_sha256=brand.sha256,
                       **got)
    session.add(row)
    session.flush()
    return row
