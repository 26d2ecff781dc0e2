"""Training data and brand LoRAs in the catalog: dataset versions, LoRA lineage, and recall of a withdrawn asset.

A dataset version is immutable (its members and captions never change; adding an asset makes a new version). A
LoRA version points at the dataset version it was trained on, so lineage runs LoRA → dataset → assets, and recall
runs the other way: asset → every dataset version holding it → every LoRA trained on those → every clip, rendition
and publication made with those LoRAs (jobs reach their LoRA through the brief it was frozen on).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from catalog import audit
from catalog.models import (Asset, AssetKind, Brief, Campaign, GenerationJob, LoraVersion, PromptItem, Publication,
                            TrainingAsset, TrainingDataset, TrainingDatasetAsset, utcnow)

RECALLED = "recalled"


class LineageNotFound(LookupError):
    """A reference lineage cannot resolve (also raised by catalog.lineage, which imports it from here)."""


def _row(obj: Any, *fields: str) -> dict[str, Any]:
    out = {}
    for f in fields:
        v = getattr(obj, f)
        out[f] = v.value if hasattr(v, "value") else v.isoformat() if hasattr(v, "isoformat") else v
    return out

ASSET_FIELDS = ("id", "sha256", "kind", "filename", "width", "height", "frames", "owner", "licence", "expires",
                "allowed_use", "status", "recalled_reason")


def dataset_version(session: Session, name: str, version: int | None = None) -> TrainingDataset:
    """``name@version`` (the latest when ``version`` is None); LookupError if there is none."""
    q = select(TrainingDataset).where(TrainingDataset.name == name)
    row = session.scalar(q.where(TrainingDataset.version == version) if version
                         else q.order_by(TrainingDataset.version.desc()).limit(1))
    if row is None:
        raise LookupError(f"dataset {name}@{version or 'latest'} not found (add one with `wanflow personalize dataset add`)")
    return row


def members(session: Session, dataset_id: int) -> list[tuple[TrainingAsset, str]]:
    rows = session.execute(select(TrainingAsset, TrainingDatasetAsset.caption)
                           .join(TrainingDatasetAsset, TrainingDatasetAsset.asset_id == TrainingAsset.id)
                           .where(TrainingDatasetAsset.dataset_id == dataset_id)
                           .order_by(TrainingDatasetAsset.position)).all()
    return [(a, c) for a, c in rows]


def trained_on(session: Session, loras: list[tuple[str, int]], sha256s: list[str]) -> dict[str, str]:
    """Which of ``sha256s`` a LoRA version of ``loras`` ((registry name, version) pairs) was trained on:
    digest → ``lora-acme-style/2 (dataset acme-style@1)``."""
    if not loras or not sha256s:
        return {}
    rows = session.execute(
        select(TrainingAsset.sha256, LoraVersion.registry_name, LoraVersion.version, TrainingDataset.name,
               TrainingDataset.version)
        .join(TrainingDatasetAsset, TrainingDatasetAsset.asset_id == TrainingAsset.id)
        .join(TrainingDataset, TrainingDataset.id == TrainingDatasetAsset.dataset_id)
        .join(LoraVersion, LoraVersion.dataset_id == TrainingDataset.id)
        .where(TrainingAsset.sha256.in_(sha256s), tuple_(LoraVersion.registry_name, LoraVersion.version).in_(loras))
    ).all()
    return {sha: f"{name}/{v} (dataset {ds}@{dv})" for sha, name, v, ds, dv in rows}


def next_version(session: Session, name: str) -> int:
    return (session.scalar(select(func.max(TrainingDataset.version)).where(TrainingDataset.name == name)) or 0) + 1


def lora_lineage(session: Session, lora_version_id: int) -> dict[str, Any]:
    """A LoRA version → the dataset version it was trained on → that version's assets (hash, rights, caption)."""
    lv = session.get(LoraVersion, lora_version_id)
    if lv is None:
        raise LineageNotFound(f"LoRA version row {lora_version_id} not found")
    ds = session.get(TrainingDataset, lv.dataset_id)
    return {
        "lora_version": _row(lv, "registry_name", "version", "weights_sha256", "base_registry_name", "base_version",
                             "base_weights_sha256", "mlflow_run_id", "stand_in", "status", "recalled_reason"),
        "dataset": _row(ds, "name", "version", "sha256", "status", "recalled_reason"),
        "assets": [_row(a, *ASSET_FIELDS) | {"caption": c} for a, c in members(session, ds.id)],
    }


def find_training_asset(session: Session, ref: str) -> TrainingAsset:
    """An asset by sha256 (or a unique prefix of at least 8 hex digits), ``training-asset:N`` or its file name."""
    kind, _, num = ref.rpartition(":")
    if kind == "training-asset" and num.isdigit():
        row = session.get(TrainingAsset, int(num))
    else:
        rows = session.scalars(select(TrainingAsset).where(TrainingAsset.sha256.startswith(ref.lower()))).all() \
            if len(ref) >= 8 else []
        rows = rows or session.scalars(select(TrainingAsset).where(TrainingAsset.filename == ref)).all()
        if len(rows) > 1:
            raise LookupError(f"{ref!r} names {len(rows)} training assets; give the sha256")
        row = rows[0] if rows else None
    if row is None:
        raise LookupError(f"training asset {ref!r} not found (give its sha256, training-asset:N or file name)")
    return row


def made_with_loras(session: Session, lora_ids: list[int]) -> dict[str, list[dict[str, Any]]]:
    """Every clip, rendition (poster, preview) and publication of the jobs whose brief froze one of these LoRAs."""
    if not lora_ids:
        return {"clips": [], "renditions": [], "publications": []}
    rows = session.execute(
        select(Asset, GenerationJob.id, Campaign.name, Brief.lora_version_id)
        .join(GenerationJob, GenerationJob.id == Asset.job_id)
        .join(PromptItem, PromptItem.id == GenerationJob.item_id)
        .join(Brief, Brief.id == PromptItem.brief_id)
        .join(Campaign, Campaign.id == GenerationJob.campaign_id)
        .where(Brief.lora_version_id.in_(lora_ids), Asset.kind == AssetKind.raw_clip).order_by(Asset.id)).all()
    clip_ids = [a.id for a, *_ in rows]
    derived = session.scalars(select(Asset).where(Asset.parent_id.in_(clip_ids)).order_by(Asset.id)).all() \
        if clip_ids else []
    pubs = session.scalars(select(Publication).where(Publication.asset_id.in_(clip_ids + [a.id for a in derived]))
                           .order_by(Publication.id)).all() if clip_ids else []
    fields = ("id", "kind", "preset", "aspect", "uri", "sha256", "status")
    return {
        "clips": [_row(a, *fields) | {"job_id": job_id, "campaign": campaign, "lora_version_id": lid}
                  for a, job_id, campaign, lid in rows],
        "renditions": [_row(a, *fields) | {"parent_id": a.parent_id} for a in derived],
        "publications": [_row(p, "id", "asset_id", "destination", "uri", "sha256", "status") for p in pubs],
    }


def recall_asset(session: Session, ref: str, reason: str, actor: str) -> dict[str, Any]:
    """Mark the asset, every dataset version holding it and every LoRA version trained on those as recalled (again:
    nothing changes, the listing is the same), audit it, and list everything made with those LoRAs."""
    if not reason.strip():
        raise ValueError("a recall needs a reason (--reason)")
    asset = find_training_asset(session, ref)
    datasets = session.scalars(select(TrainingDataset).join(
        TrainingDatasetAsset, TrainingDatasetAsset.dataset_id == TrainingDataset.id)
        .where(TrainingDatasetAsset.asset_id == asset.id).order_by(TrainingDataset.id)).all()
    loras = session.scalars(select(LoraVersion).where(LoraVersion.dataset_id.in_([d.id for d in datasets]))
                            .order_by(LoraVersion.id)).all() if datasets else []
    first = asset.status != RECALLED
    why = f"asset {asset.sha256[:12]}… ({asset.filename}) withdrawn: {reason}"
    if first:
        asset.status, asset.recalled_reason, asset.recalled_at = RECALLED, reason, utcnow()
    for row in [*datasets, *loras]:
        if row.status != RECALLED:
            row.status, row.recalled_reason = RECALLED, why
    made = made_with_loras(session, [lv.id for lv in loras])
    out = {"asset": _row(asset, *ASSET_FIELDS), "reason": reason,
           "datasets": [f"{d.name}@{d.version}" for d in datasets],
           "loras": [f"{lv.registry_name}/{lv.version}" for lv in loras], **made}
    if first:
        audit.append(session, actor, "training_asset.recalled", "training_asset", asset.id,
                     {"sha256": asset.sha256, "reason": reason, "datasets": out["datasets"], "loras": out["loras"],
                      "clips": len(made["clips"]), "renditions": len(made["renditions"]),
                      "publications": len(made["publications"])})
    session.flush()
    return out
