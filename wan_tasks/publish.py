"""Publish stage: approved clips → signed renditions (wan_tasks/render.py) → a destination → publication
records → a manifest per campaign → a CMS webhook.

Exactly once, intact: a destination makes a file visible only once it is complete and checksummed;
a rendition already delivered to a destination is not delivered again (one publication row per
asset and destination); a failed delivery is recorded on its row (status "failed", the reason, the
attempts) and retried by the caller, and the other files and clips go on. Nothing is deleted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import aliased

from adapters.destinations import DeliveryError, Destination, Webhook
from catalog import audit, marks
from catalog.db import session_scope
from catalog.models import Asset, AssetKind, AuditEvent, Campaign, ClipStatus, GenerationJob, PromptItem, Publication
from core.files import safe_file_name, sha256_file
from governance.brand import load_brand
from governance.renditions import PresetSet
from governance.watermark import refusal
from wan_tasks.render import clip_facts

ERROR_CHARS = 2000


class PublishRefused(Exception):
    """A policy refused a file (recorded on its publication row); retrying does not change that."""


def approved_clips(engine: Engine, campaign: str) -> list[int]:
    with session_scope(engine) as s:
        return list(s.scalars(
            select(Asset.id).join(GenerationJob, GenerationJob.id == Asset.job_id)
            .join(Campaign, Campaign.id == GenerationJob.campaign_id)
            .where(Campaign.name == campaign, Asset.kind == AssetKind.raw_clip, Asset.status == ClipStatus.approved)
            .order_by(Asset.id)))


def delivery_policy(engine: Engine, clip_id: int, brands_dir: Path | None):  # noqa: ANN201 — DeliveryPolicy
    """The campaign brand's delivery policy (framing, pad colour, AI label), from its profile file."""
    facts = clip_facts(engine, clip_id)
    return load_brand(facts.brand, Path(brands_dir) if brands_dir else facts.brief_path.parent / "brands").delivery


def _relpath(facts, asset: Asset) -> str:  # noqa: ANN001
    return f"{facts.folder}/{facts.delivered_name(asset.preset, Path(asset.uri).suffix)}"


def _upsert(engine: Engine, asset: Asset, destination: Destination, uri: str, run_id: int | None,
            error: str | None, status: str = "failed", extra: dict[str, Any] | None = None) -> int:
    with session_scope(engine) as s:
        pub = s.scalar(select(Publication).where(Publication.asset_id == asset.id,
                                                 Publication.destination == destination.name))
        if pub is None:
            pub = Publication(asset_id=asset.id, destination=destination.name, attempts=0)
            s.add(pub)
        pub.uri, pub.sha256, pub.run_id = uri, asset.sha256, run_id
        pub.attempts = (pub.attempts or 0) + 1
        pub.status, pub.error = (status, error[:ERROR_CHARS]) if error else ("delivered", None)
        s.flush()
        audit.append(s, "publish", f"publication.{pub.status}", "publication", pub.id,
                     {"uri": uri, "sha256": asset.sha256, "attempt": pub.attempts,
                      **({"error": error[:ERROR_CHARS]} if error else {}), **(extra or {})})
        return pub.id


def watermark_check(engine: Engine, asset: Asset, destination_requires: bool) -> dict[str, Any] | None:
    """The watermark policy's record for a video rendition: who requires it, its read-back, and the refusal
    reason (None when it may go). None for posters and previews (stills carry no watermark of their own)."""
    if asset.kind != AssetKind.rendition:
        return None
    with session_scope(engine) as s:
        mark = marks.mark_of_asset(s, asset.id)
        brand = bool(mark and (mark.policy or {}).get("brand_requires"))
        readback = mark.readback if mark else None
    return {"required_by_brand": brand, "required_by_destination": destination_requires, "readback": readback,
            "refusal": refusal(brand, destination_requires, readback)}


def deliver_clip(engine: Engine, clip_id: int, asset_ids: list[int], destination: Destination,
                 run_id: int | None = None, require_watermark: bool = False) -> list[int]:
    """Deliver a clip's files; returns publication ids. Every file is tried; if any failed (recorded on
    its row), DeliveryError is raised at the end so the caller can retry: delivered files are skipped.
    A video rendition whose watermark the brand or the destination (``require_watermark``) requires and
    which did not read back is refused (row status "refused", the reason, the setting and read-back in the
    audit event) and PublishRefused raised at the end: a refusal is not retried."""
    facts = clip_facts(engine, clip_id)
    pub_ids, failures, refusals = [], [], []
    for asset_id in asset_ids:
        with session_scope(engine) as s:
            asset = s.get(Asset, asset_id)
            pub = s.scalar(select(Publication).where(Publication.asset_id == asset_id,
                                                     Publication.destination == destination.name))
            if pub is not None and pub.status == "delivered" and pub.sha256 == asset.sha256:
                pub_ids.append(pub.id)
                continue
        rel = _relpath(facts, asset)
        wm = watermark_check(engine, asset, require_watermark)
        if wm and wm["refusal"]:
            pub_ids.append(_upsert(engine, asset, destination, destination.uri_for(rel), run_id, wm["refusal"],
                                   status="refused", extra={"watermark": wm}))
            refusals.append(f"{rel}: {wm['refusal']}")
            continue
        try:
            sidecar = (asset.provenance or {}).get("sidecar")
            if sidecar:  # WebM: the manifest travels beside the file and must arrive first
                destination.deliver(Path(sidecar), str(Path(rel).with_suffix(".c2pa")), sha256_file(Path(sidecar)))
            uri = destination.deliver(Path(asset.uri), rel, asset.sha256)
            pub_ids.append(_upsert(engine, asset, destination, uri, run_id, None,
                                   extra={"watermark": wm} if wm else None))
        except OSError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            pub_ids.append(_upsert(engine, asset, destination, destination.uri_for(rel), run_id, reason))
            failures.append(f"{rel}: {reason}")
    if failures:
        raise DeliveryError(f"{len(failures)} of {len(asset_ids)} file(s) of clip {clip_id} not delivered: "
                            + "; ".join(failures + refusals))
    if refusals:
        raise PublishRefused(f"{len(refusals)} of {len(asset_ids)} file(s) of clip {clip_id} refused: "
                             + "; ".join(refusals))
    return pub_ids


def expected_files(engine: Engine, campaign: str, presets: PresetSet) -> dict[str, int]:
    """Every file the campaign's approved clips should deliver (relative name → raw clip id): a rendition per
    preset of the item's formats, the poster and the preview, named as :func:`_relpath` names them."""
    out = {}
    for clip_id in approved_clips(engine, campaign):
        facts = clip_facts(engine, clip_id)
        names = [f"{p.name}.{p.extension}" for p in presets.for_formats(facts.formats)]
        for name in [*names, f"{AssetKind.poster.value}.jpg", f"{AssetKind.preview.value}.{presets.preview.format}"]:
            out[f"{facts.folder}/{facts.stem}-{name}"] = clip_id
    return out


def manifest(engine: Engine, campaign: str, destination_name: str, presets: PresetSet,
             clip_errors: dict[int, str] | None = None) -> dict[str, Any]:
    """The campaign's delivery manifest: delivered files with size, sha256, lineage ids and C2PA status;
    every expected file that was not delivered under ``failed`` with its reason: the delivery's error, or
    the clip's (``clip_errors``: rendering failed, perhaps before any file existed). Stable for the same
    state (no timestamps), so it can be compared."""
    clip = aliased(Asset)
    q = (select(Publication, Asset, clip, GenerationJob, PromptItem)
         .join(Asset, Asset.id == Publication.asset_id).join(clip, clip.id == Asset.parent_id)
         .join(GenerationJob, GenerationJob.id == clip.job_id).join(PromptItem, PromptItem.id == GenerationJob.item_id)
         .join(Campaign, Campaign.id == GenerationJob.campaign_id)
         .where(Campaign.name == campaign, Publication.destination == destination_name).order_by(Publication.id))
    files, failed = [], []
    with session_scope(engine) as s:
        for pub, asset, c, job, item in s.execute(q):
            prov = asset.provenance or {}
            row = {"file": Path(pub.uri).name, "uri": pub.uri, "kind": asset.kind.value, "preset": asset.preset,
                   "aspect": asset.aspect, "size": asset.size, "sha256": pub.sha256, "width": asset.width,
                   "height": asset.height, "frames": asset.frames, "fps": asset.fps,
                   "c2pa": {"status": prov.get("status", "not signed"), "binding": prov.get("binding"),
                            "digital_source_type": prov.get("digital_source_type")},
                   "ai_label": (prov.get("label") or {}).get("text"),
                   "ai_label_font": (prov.get("label") or {}).get("font_family"),
                   "publication_id": pub.id, "rendition_asset_id": asset.id, "raw_clip_asset_id": c.id,
                   "job_id": job.id, "seed": job.seed, "model_version_id": job.model_version_id,
                   "item": item.item_key, "brief_id": item.brief_id}
            if pub.status == "delivered":
                files.append(row)
            else:
                failed.append({"file": row["file"], "uri": pub.uri, "publication_id": pub.id,
                               "raw_clip_asset_id": c.id, "attempts": pub.attempts, "error": pub.error})
    listed = {f"{safe_file_name(campaign)}/{row['file']}" for row in files + failed}
    failed += [{"file": Path(rel).name, "uri": None, "publication_id": None, "raw_clip_asset_id": clip_id,
                "attempts": 0, "error": (clip_errors or {}).get(clip_id, "not rendered or not delivered")}
               for rel, clip_id in expected_files(engine, campaign, presets).items() if rel not in listed]
    return {"campaign": campaign, "destination": destination_name, "files": files, "failed": failed}


def write_manifest(engine: Engine, campaign: str, destination: Destination, presets: PresetSet,
                   clip_errors: dict[int, str] | None = None) -> tuple[str, dict[str, Any]]:
    """Deliver ``<campaign>/manifest.json`` (atomically) and note its uri on the publications."""
    data = manifest(engine, campaign, destination.name, presets, clip_errors)
    uri = destination.put_bytes(f"{safe_file_name(campaign)}/manifest.json",
                                json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8"))
    with session_scope(engine) as s:
        for row in data["files"] + data["failed"]:
            if row["publication_id"] is not None:
                s.get(Publication, row["publication_id"]).manifest_uri = uri
    return uri, data


def notify_webhook(engine: Engine, campaign: str, webhook: Webhook, data: dict[str, Any]) -> str:
    """POST the manifest to the CMS once per distinct manifest: a manifest already acknowledged (2xx)
    is not sent again. Each failed attempt is recorded (audit event) with its reason, then raised."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    with session_scope(engine) as s:
        cid = s.scalar(select(Campaign.id).where(Campaign.name == campaign))
        done = s.scalars(select(AuditEvent).where(AuditEvent.action == "webhook.delivered",
                                                  AuditEvent.entity == "campaign", AuditEvent.entity_id == cid))
        if any(e.payload.get("manifest_sha256") == digest and e.payload.get("url") == webhook.url for e in done):
            return "already notified"
    payload = {"url": webhook.url, "manifest_sha256": digest}
    try:
        status = webhook.notify(data, idempotency_key=f"{campaign}:{digest}")
    except Exception as exc:
        with session_scope(engine) as s:
            audit.append(s, "publish", "webhook.failed", "campaign", cid,
                         {**payload, "error": f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]})
        raise
    with session_scope(engine) as s:
        audit.append(s, "publish", "webhook.delivered", "campaign", cid, {**payload, "status": status})
    return f"notified (HTTP {status})"
