"""Lineage: from a published file (or any asset/job id) back to the brief that asked for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import (Asset, AssetKind, Brief, Campaign, GenerationJob, ModelVersion, PromptItem, Publication,
                            QcResult, ReviewDecision, ReviewTask, Run)
from catalog.training import LineageNotFound, _row, lora_lineage  # one error and one row helper for both
from core.files import sha256_file


def find_asset(session: Session, ref: str) -> tuple[Asset, Publication | None]:
    """`ref` is a file path (matched by sha256), `asset:N`, `publication:N`, `job:N` or a bare asset id."""
    path = Path(ref)
    if path.is_file():
        digest = sha256_file(path)
        pubs = session.scalars(select(Publication).where(Publication.sha256 == digest)).all()
        pub = next((p for p in pubs if Path(p.uri).resolve() == path.resolve()), pubs[0] if pubs else None)
        asset = session.get(Asset, pub.asset_id) if pub else session.scalar(
            select(Asset).where(Asset.sha256 == digest).order_by(Asset.id))
        if asset is None:
            raise LineageNotFound(f"{ref}: no catalog record has this file's sha256 ({digest[:12]}…)")
        return asset, pub
    kind, _, num = ref.rpartition(":")
    if not num.isdigit():
        raise LineageNotFound(f"{ref}: not a file, nor an id like asset:N, publication:N, job:N or N")
    n = int(num)
    if kind == "publication":
        pub = session.get(Publication, n)
        if pub is None:
            raise LineageNotFound(f"publication {n} not found")
        return session.get(Asset, pub.asset_id), pub
    if kind == "job":
        asset = session.scalar(select(Asset).where(Asset.job_id == n))
    elif kind in ("", "asset"):
        asset = session.get(Asset, n)
    else:
        raise LineageNotFound(f"{ref}: unknown id kind {kind!r}")
    if asset is None:
        raise LineageNotFound(f"{ref}: not found")
    return asset, None


def lineage(session: Session, ref: str) -> dict[str, Any]:
    asset, pub = find_asset(session, ref)
    rendition = asset if asset.kind != AssetKind.raw_clip else None
    clip = session.get(Asset, asset.parent_id) if rendition else asset
    job = session.get(GenerationJob, clip.job_id)
    item = session.get(PromptItem, job.item_id)
    brief = session.get(Brief, item.brief_id)
    task = session.scalar(select(ReviewTask).where(ReviewTask.asset_id == clip.id))
    decisions = session.scalars(select(ReviewDecision).where(ReviewDecision.task_id == task.id)
                                .order_by(ReviewDecision.id)).all() if task else []
    asset_fields = ("id", "kind", "aspect", "uri", "sha256", "size", "width", "height", "frames", "fps", "status")
    run = session.get(Run, job.run_id) if job.run_id else None
    return {
        "query": ref,
        "publication": _row(pub, "id", "destination", "uri", "sha256", "status", "attempts", "error", "manifest_uri",
                            "created_at") if pub else None,
        "rendition": _row(rendition, *asset_fields, "preset", "provenance") if rendition else None,
        "raw_clip": _row(clip, *asset_fields, "frames_sha256"),
        "job": _row(job, "id", "seed", "params", "status", "attempts", "device", "dtype", "memory_policy", "timings",
                    "batch", "idempotency_key", "started_at", "finished_at"),
        "lora": job.params.get("lora"),  # brand LoRA: path, scale, sha256 (None if the campaign named none)
        # a registry LoRA: its version → the dataset version it was trained on → that version's assets and rights
        "lora_training": lora_lineage(session, job.params["lora"]["lora_version_id"])
        if (job.params.get("lora") or {}).get("lora_version_id") else None,
        "conditioning_image": job.params.get("image"),  # I2V: path, sha256
        "speed": _speed(job),  # the speed preset, who chose it, what applied and what fell back
        "experts": _experts(job),  # Wan 2.2 A14B: each expert's weights, the boundary, the steps each ran
        "edit": _edit(session, job),  # an edit: operation, parameters, mask and references, and the source's chain
        "model_version": _row(session.get(ModelVersion, job.model_version_id),
                              "registry_name", "version", "variant", "source", "weights_sha256", "stand_in"),
        "prompt_item": _row(item, "id", "item_key", "prompt", "negative_prompt", "locale", "source_row"),
        "brief": _row(brief, "id", "path", "sha256", "model_ref"),
        "campaign": _row(session.get(Campaign, brief.campaign_id), "id", "name", "brand"),
        "qc": [_row(r, "check", "passed", "value", "threshold", "outcome", "details", "judge")
               for r in session.scalars(select(QcResult).where(QcResult.asset_id == clip.id).order_by(QcResult.id))],
        "review": [_row(d, "decision", "reason", "reviewer", "created_at") for d in decisions],
        "run": _row(run, "id", "flow", "prefect_flow_run_id", "mlflow_run_id") if run else None,
    }


def _edit(session: Session, job: GenerationJob) -> dict[str, Any] | None:
    """An edited clip's own inputs (operation, parameters, mask asset and references with their sha256) and the
    full lineage of the clip it was made from (a source file outside the catalog: its path and sha256)."""
    edit = job.params.get("edit")
    if not edit:
        return None
    mask = edit.get("mask")
    mask_id = session.scalar(select(Asset.id).where(Asset.kind == AssetKind.mask, Asset.sha256 == mask["sha256"])
                             .order_by(Asset.id)) if mask else None
    params = {k: v for k, v in edit.items() if k not in ("source", "mask", "references", "geometry", "model", "op")}
    return {"op": edit["op"], "params": params, "geometry": edit.get("geometry"), "model_ref": edit.get("model"),
            "source": edit.get("source"), "source_asset_id": job.edit_of_id,
            "mask": {**mask, "asset_id": mask_id} if mask else None, "references": edit.get("references") or [],
            "source_lineage": lineage(session, f"asset:{job.edit_of_id}") if job.edit_of_id else None}


def _speed(job: GenerationJob) -> dict[str, Any]:
    """The speed preset a job ran with; a job made before presets existed ran plain (nothing recorded)."""
    rec = (job.batch or {}).get("speed")
    if not rec:
        return {"preset": job.speed or "plain", "recorded": False}
    return {"preset": job.speed or rec["preset"]["name"], "recorded": True, "chosen_by": rec.get("chosen_by"),
            "lossless": rec["preset"].get("lossless"), "applied": rec.get("applied"),
            "fallbacks": rec.get("fallbacks"), "distill_lora": rec.get("distill"), "steps": rec.get("steps"),
            "guidance": rec.get("guidance"), "settings": rec["preset"]}


def _experts(job: GenerationJob) -> dict[str, Any] | None:
    """Both experts' weight digests (as registered) and the boundary planned; what the run used (the
    boundary in the loaded pipeline, the steps on each side of it) once the job has run."""
    planned, used = job.params.get("experts"), (job.batch or {}).get("experts")
    if not planned and not used:
        return None
    return {"weights_sha256": planned or {}, "boundary_ratio": (used or {}).get("boundary_ratio",
                                                                          job.params.get("boundary_ratio")),
            "guidance": job.params.get("guidance"), "guidance_2": job.params.get("guidance_2"),
            "steps": (used or {}).get("steps")}


def model_assets(session: Session, registry_name: str, version: int) -> dict[str, Any]:
    """Recall: every clip, rendition (poster, preview) and publication made with one registry version.

    Jobs point at the version they were planned with (``model_versions``), so this is exact: an alias moved
    later changes nothing here.
    """
    mv = session.scalar(select(ModelVersion).where(ModelVersion.registry_name == registry_name,
                                                   ModelVersion.version == version))
    if mv is None:
        raise LineageNotFound(f"{registry_name}/{version}: no job in this catalog was planned with it")
    rows = session.execute(
        select(Asset, GenerationJob.id, GenerationJob.arm, Campaign.name)
        .join(GenerationJob, GenerationJob.id == Asset.job_id)
        .join(Campaign, Campaign.id == GenerationJob.campaign_id)
        .where(GenerationJob.model_version_id == mv.id, Asset.kind == AssetKind.raw_clip).order_by(Asset.id)
    ).all()
    clip_ids = [a.id for a, *_ in rows]
    derived = session.scalars(select(Asset).where(Asset.parent_id.in_(clip_ids)).order_by(Asset.id)).all() \
        if clip_ids else []
    pubs = session.scalars(select(Publication).where(Publication.asset_id.in_([a.id for a in derived + [r[0] for r in rows]]))
                           .order_by(Publication.id)).all() if clip_ids else []
    asset_fields = ("id", "kind", "preset", "aspect", "uri", "sha256", "status")
    return {
        "model_version": _row(mv, "registry_name", "version", "variant", "source", "weights_sha256", "stand_in"),
        "clips": [_row(a, *asset_fields) | {"job_id": job_id, "arm": arm, "campaign": campaign}
                  for a, job_id, arm, campaign in rows],
        "renditions": [_row(a, *asset_fields) | {"parent_id": a.parent_id} for a in derived],
        "publications": [_row(p, "id", "asset_id", "destination", "uri", "sha256", "status") for p in pubs],
    }
