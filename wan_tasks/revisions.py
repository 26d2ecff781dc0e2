"""Revisions: a reviewer's "request changes" becomes a new generation job linked to the old clip.

The new job keeps the old job's model version, size and variant, and takes the edited prompt and/or
the new seed. An edited prompt is checked against the brand's text policy like any brief row, and is
recorded as a *revision item* of the brief's item (status ``revision``), so lineage shows the prompt the
clip was really made from and re-running the brief never plans it again. The job waits, ``pending``,
until the revisions flow (``wanflow revisions run``) generates it on a GPU worker; its clip is then
QC'd and queued for review like any other.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import Asset, Brief, Campaign, GenerationJob, ItemStatus, JobStatus, PromptItem
from governance.brand import BrandInvalid, BrandNotFound, load_brand
from governance.text_policy import find_blocked_terms


class RevisionRefused(ValueError):
    """The requested change cannot be made (nothing changed, an empty or blocked prompt, a bad seed);
    :func:`wan_tasks.review.decide` reports it as a ReviewError."""


@dataclass(frozen=True)
class Changes:
    """What a reviewer asks to change for a revision (None: keep as it was)."""

    prompt: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None


def _check_brand_policy(session: Session, item: PromptItem, texts: dict[str, str], brands_dir: Path | None) -> None:
    brief = session.get(Brief, item.brief_id)
    brand = session.get(Campaign, brief.campaign_id).brand
    folder = brands_dir or Path(brief.path).parent / "brands"
    try:
        profile = load_brand(brand, folder)
    except (BrandNotFound, BrandInvalid) as exc:
        raise RevisionRefused(f"cannot check the edited prompt against brand {brand!r}'s text policy: {exc}") from exc
    for field, text in texts.items():
        found = find_blocked_terms(text, profile)
        if found:
            raise RevisionRefused(f"{field}: rejected by brand policy: blocked term(s) {', '.join(found)}")


def _revision_item(session: Session, item: PromptItem, prompt: str, negative: str) -> PromptItem:
    root = session.get(PromptItem, item.revision_of_id) if item.revision_of_id else item
    n = session.scalar(select(func.count()).select_from(PromptItem).where(PromptItem.revision_of_id == root.id)) + 1
    row = PromptItem(brief_id=root.brief_id, item_key=f"{root.item_key[:56]}~r{n}", source_row=root.source_row,
                     prompt=prompt, negative_prompt=negative, locale=root.locale, params=root.params,
                     status=ItemStatus.revision, revision_of_id=root.id)
    session.add(row)
    session.flush()
    return row


def make_revision(session: Session, asset_id: int, changes: Changes | None, brands_dir: Path | None = None) -> int:
    """Create the revision job for clip ``asset_id``; returns its id. Something must actually change."""
    clip = session.get(Asset, asset_id)
    job = session.get(GenerationJob, clip.job_id) if clip is not None and clip.job_id else None
    if job is None:
        raise RevisionRefused(f"asset {asset_id} is not a generated clip")
    item = session.get(PromptItem, job.item_id)
    changes = changes or Changes()
    prompt = (changes.prompt if changes.prompt is not None else item.prompt).strip()
    negative = (changes.negative_prompt if changes.negative_prompt is not None else item.negative_prompt).strip()
    seed = job.seed if changes.seed is None else changes.seed
    if not prompt:
        raise RevisionRefused("prompt: must not be empty")
    if len(prompt) > 2000 or len(negative) > 2000:
        raise RevisionRefused("prompt: at most 2000 characters")
    if not 0 <= seed < 2**31:
        raise RevisionRefused(f"seed: must be within 0..{2**31 - 1}, got {seed}")
    if (prompt, negative, seed) == (item.prompt, item.negative_prompt, job.seed):
        raise RevisionRefused("nothing to change: edit the prompt or negative prompt, or pick a new seed")
    if (prompt, negative) != (item.prompt, item.negative_prompt):
        _check_brand_policy(session, item, {"prompt": prompt, "negative_prompt": negative}, brands_dir)
        item = _revision_item(session, item, prompt, negative)
    key = hashlib.sha256(json.dumps(
        {"revision_of": asset_id, "prompt": prompt, "negative_prompt": negative, "seed": seed,
         "params": job.params, "model_version_id": job.model_version_id}, sort_keys=True, ensure_ascii=False,
    ).encode()).hexdigest()
    existing = session.scalar(select(GenerationJob.id).where(GenerationJob.idempotency_key == key))
    if existing is not None:
        return existing
    revision = GenerationJob(idempotency_key=key, campaign_id=job.campaign_id, item_id=item.id,
                             model_version_id=job.model_version_id, variant_index=job.variant_index, seed=seed,
                             params=dict(job.params), status=JobStatus.pending, revision_of_id=asset_id)
    session.add(revision)
    session.flush()
    return revision.id


def waiting_revisions(session: Session, campaign: str | None = None) -> list[int]:
    """Revision jobs not generated yet (pending, or failed and worth a retry), oldest first."""
    q = (select(GenerationJob.id).where(GenerationJob.revision_of_id.is_not(None),
                                        GenerationJob.status.in_([JobStatus.pending, JobStatus.failed]))
         .order_by(GenerationJob.id))
    if campaign:
        q = q.join(Campaign, Campaign.id == GenerationJob.campaign_id).where(Campaign.name == campaign)
    return list(session.scalars(q))
