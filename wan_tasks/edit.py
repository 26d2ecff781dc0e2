"""Edits at intake, in the catalog and in QC: resolve each edit item's source, mask and references (every problem a
``file:row:field`` before anything is written), record the mask as an asset and the edit's lineage on its job,
and check what the edit promised on the decoded result.

A source is ``asset:N`` (a raw clip), ``item:CAMPAIGN/ITEM`` (that item's approved clip) or a video file
relative to the brief. A source whose clip was rejected, failed QC or was sent back for changes is refused with
the reason. The edit's job is an ordinary generation job (same claim, retry, resume and regenerate): its params
carry the resolved edit (paths and sha256 of every input, the geometry), ``edit_of_id`` links it to the
source clip, and :mod:`adapters.vace` runs it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.edit_media import EditMediaError, read_image, read_mask, read_video
from adapters.vace import layout, load_inputs
from catalog import audit
from catalog.db import open_catalog, session_scope
from catalog.models import (Asset, AssetKind, Brief, Campaign, ClipStatus, GenerationJob, ItemStatus, PromptItem,
                            QcResult, ReviewDecision, ReviewTask)
from core.files import sha256_file
from governance import edits
from governance.brief_schema import BriefInvalid, ItemSpec, Problem, ValidBrief
from governance.variants import UnknownVariant, preset_for

REFUSED = {ClipStatus.rejected: "was rejected in review", ClipStatus.qc_failed: "failed QC",
           ClipStatus.changes_requested: "was sent back for changes"}
USABLE = (ClipStatus.approved, ClipStatus.delivered)


class SourceRefused(ValueError):
    """The source cannot be edited (not found, or rejected/failed/sent back); the message says why."""


def _reason(session: Session, asset: Asset) -> str:
    task = session.scalar(select(ReviewTask).where(ReviewTask.asset_id == asset.id))
    d = session.scalar(select(ReviewDecision).where(ReviewDecision.task_id == task.id)
                       .order_by(ReviewDecision.id.desc())) if task else None
    return f" ({d.decision.value} by {d.reviewer}: {d.reason})" if d is not None and d.reason else ""


def source_clip(session: Session, ref: str) -> Asset:
    """The raw clip an ``asset:N`` or ``item:CAMPAIGN/ITEM`` source names; SourceRefused if it cannot be edited."""
    if ref.startswith("asset:"):
        num = ref.split(":", 1)[1]
        asset = session.get(Asset, int(num)) if num.isdigit() else None
        if asset is None:
            raise SourceRefused(f"{ref}: no such asset in the catalog")
        if asset.kind != AssetKind.raw_clip:
            raise SourceRefused(f"{ref} is a {asset.kind.value}; edit its raw clip (asset:{asset.parent_id})")
    else:
        campaign, _, key = ref.removeprefix("item:").partition("/")
        rows = session.execute(
            select(Asset).join(GenerationJob, GenerationJob.id == Asset.job_id)
            .join(PromptItem, PromptItem.id == GenerationJob.item_id).join(Campaign, Campaign.id == GenerationJob.campaign_id)
            .where(Campaign.name == campaign, PromptItem.item_key == key, Asset.kind == AssetKind.raw_clip)
            .order_by(Asset.id)).scalars().all()
        if not rows:
            raise SourceRefused(f"{ref}: campaign {campaign!r} has no clip of item {key!r}")
        approved = [a for a in rows if a.status in USABLE]
        asset = approved[-1] if approved else rows[-1]
        if not approved and asset.status not in REFUSED:
            raise SourceRefused(f"{ref}: no clip of this item is approved yet (latest asset:{asset.id} is "
                                f"{asset.status.value})")
    if asset.status in REFUSED:
        raise SourceRefused(f"{ref}: its clip asset:{asset.id} {REFUSED[asset.status]}{_reason(session, asset)}; "
                            "an edit of it is refused")
    return asset


def _capable(op: str, model_ref: str | None, variant_of) -> str | None:  # noqa: ANN001 - Registry.variant_of
    """Why the model cannot do ``op`` (None if it can)."""
    if model_ref is None:
        return None
    variant = variant_of(model_ref)
    try:
        task = preset_for(variant).task if variant else None
    except UnknownVariant:
        task = None
    if task is None:
        return None  # an unknown variant: the registry check reports the model itself
    if op in edits.VACE_OPS and task != "vace":
        return f"{op} needs a VACE model; {model_ref} is {variant} ({task.upper()})"
    if op == "restyle" and task not in ("t2v", "ti2v"):
        return f"restyle runs video-to-video on a T2V model; {model_ref} is {variant} ({task.upper()})"
    return None


def resolve_edits(brief: ValidBrief, catalog_url: str, variant_of) -> ValidBrief:  # noqa: ANN001
    """The brief with each edit item resolved (source, mask, references hashed; geometry set as the item's size
    and frames) or BriefInvalid with every problem. Opens the catalog only if a source names it."""
    specs = brief.items + [r.item for r in brief.rejected]
    if not any(s.edit for s in specs):
        return brief
    problems: list[Problem] = []
    named = any((s.edit.get("source") or "").startswith(("asset:", "item:")) for s in specs if s.edit)
    fresh = catalog_url.startswith("sqlite:///") and not Path(catalog_url.removeprefix("sqlite:///")).exists()
    engine = open_catalog(catalog_url) if named and not fresh else None  # validating never creates a catalog
    resolved: dict[tuple[str, int], ItemSpec] = {}
    for spec in specs:
        if not spec.edit:
            continue
        try:
            resolved[(spec.source_file, spec.row)] = _resolve(spec, brief, engine, variant_of)
        except edits.EditError as exc:
            problems.append(Problem(spec.source_file, spec.edit.get("_row", spec.row), exc.field, exc.message))
    if problems:
        raise BriefInvalid(problems)
    digests = "".join(f"\n{s.key}:edit:{_digest(s.edit)}" for s in resolved.values())
    return dataclasses.replace(
        brief, sha256=hashlib.sha256((brief.sha256 + digests).encode()).hexdigest(),
        items=[resolved.get((s.source_file, s.row), s) for s in brief.items],
        rejected=[dataclasses.replace(r, item=resolved.get((r.item.source_file, r.item.row), r.item))
                  for r in brief.rejected])


def _digest(edit: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(edit, sort_keys=True).encode()).hexdigest()


def _file(base: str, name: str) -> Path:
    return (Path(base).parent / name).resolve()


def _resolve(spec: ItemSpec, brief: ValidBrief, engine: Any, variant_of) -> ItemSpec:  # noqa: ANN001
    edit = {k: v for k, v in spec.edit.items() if k != "_row"}
    op = edit["op"]
    why = _capable(op, brief.edit_model if op in edits.VACE_OPS else brief.model_ref, variant_of)
    if why:
        raise edits.EditError("edit.op", why)
    source = None
    if edit.get("source"):
        ref = edit["source"]
        asset_id = None
        if ref.startswith(("asset:", "item:")):
            if engine is None:
                raise edits.EditError("edit.source", f"{ref}: there is no catalog yet, so nothing to edit")
            with session_scope(engine) as s:
                try:
                    asset = source_clip(s, ref)
                except SourceRefused as exc:
                    raise edits.EditError("edit.source", str(exc)) from None
                path, asset_id = Path(asset.uri), asset.id
        else:
            path = _file(spec.source_file, ref)
        try:
            frames, fps = read_video(path)
        except EditMediaError as exc:
            raise edits.EditError("edit.source", f"source {ref}: {exc}") from None
        source = {"ref": ref, "asset_id": asset_id, "path": str(path), "sha256": sha256_file(path),
                  "width": int(frames.shape[2]), "height": int(frames.shape[1]), "frames": int(len(frames)),
                  "fps": fps}
        edit["source"] = source
        geo = edits.geometry(edit, source["width"], source["height"], source["frames"])
    else:
        geo = edits.Geometry(spec.width, spec.height, spec.num_frames, 0)
    edit["geometry"] = geo.as_dict()
    if edit.get("mask"):
        path = _file(spec.source_file, edit["mask"])
        try:
            read_mask(path, source["width"], source["height"], geo.frames_used)
        except EditMediaError as exc:
            raise edits.EditError("edit.mask", str(exc)) from None
        edit["mask"] = {"path": str(path), "sha256": sha256_file(path)}
    refs = []
    for name in edit.get("references") or []:
        path = _file(spec.source_file, name)
        try:
            read_image(path)
        except EditMediaError as exc:
            raise edits.EditError("edit.references", str(exc)) from None
        refs.append({"path": str(path), "sha256": sha256_file(path)})
    if refs:
        edit["references"] = refs
    edit["model"] = brief.edit_model if op in edits.VACE_OPS else brief.model_ref
    return dataclasses.replace(spec, edit=edit, width=geo.width, height=geo.height, num_frames=geo.num_frames,
                               fps=int(round(source["fps"])) if source else spec.fps)


# --- in the catalog -------------------------------------------------------------------------------------------

def record_edit_inputs(session: Session, job: GenerationJob) -> None:
    """A new edit job's lineage: ``edit_of_id`` (its source clip) and its mask as an asset (by sha256, once)."""
    edit = job.params.get("edit")
    if not edit:
        return
    job.edit_of_id = (edit.get("source") or {}).get("asset_id")
    mask = edit.get("mask")
    if mask and session.scalar(select(Asset.id).where(Asset.kind == AssetKind.mask, Asset.sha256 == mask["sha256"])) is None:
        path, geo = Path(mask["path"]), edit["source"]
        session.add(Asset(kind=AssetKind.mask, uri=str(path), sha256=mask["sha256"], size=path.stat().st_size,
                          width=geo["width"], height=geo["height"], status=ClipStatus.generated))
        session.flush()


# --- QC: what the edit promised ----------------------------------------------------------------------------------

def edit_checks(edit: dict[str, Any], clip_path: Path) -> list[dict[str, Any]]:
    """The promised invariants on the decoded clip: its untouched region against the source (reframe, extend,
    replace/remove), and for extend the seam. Each a record (check, passed, value, threshold, details);
    ``passed`` None with a reason when it could not run."""
    if edit["op"] not in edits.MASKED_OPS:
        return []
    try:
        out, _ = read_video(clip_path)
        inputs = load_inputs(edit)
        laid, keep = layout(edit, inputs)
    except (EditMediaError, ValueError) as exc:
        return [{"check": "edit_untouched_region", "passed": None, "value": None, "threshold": None,
                 "details": {"reason": f"could not run: {exc}"}}]
    results = [{"check": "edit_untouched_region", **edits.untouched_region(out, laid, keep)}]
    if edit["op"] == "extend":
        geo = inputs["geometry"]
        seam = geo.frames_used if edit["direction"] == "forward" else geo.num_frames - geo.frames_used
        results.append({"check": "edit_seam", **edits.seam_jump(out, seam)})
    return results


def record_edit_checks(session: Session, asset_id: int) -> list[QcResult]:
    """Run and record the edit checks of a raw clip whose job is an edit (nothing for other clips). A failed
    invariant is a finding with its frames; the caller routes the clip as for any failed check."""
    asset = session.get(Asset, asset_id)
    job = session.get(GenerationJob, asset.job_id) if asset.job_id else None
    if job is None or not job.params.get("edit"):
        return []
    rows = []
    for r in edit_checks(job.params["edit"], Path(asset.uri)):
        row = session.scalar(select(QcResult).where(QcResult.asset_id == asset_id, QcResult.check == r["check"]))
        if row is None:
            row = QcResult(asset_id=asset_id, check=r["check"])
            session.add(row)
        row.passed, row.value, row.threshold = r["passed"], r.get("value"), r.get("threshold")
        row.details = r.get("details") or {}
        row.outcome = "pass" if r["passed"] else ("block" if r["passed"] is False else "needs_review")
        row.judge = {"detector": "wanflow edit invariants", "version": "1"}
        rows.append(row)
    session.flush()
    return rows


def items_with_edits(session: Session, brief_id: int) -> list[PromptItem]:
    return [i for i in session.scalars(select(PromptItem).where(PromptItem.brief_id == brief_id,
                                                                PromptItem.status == ItemStatus.accepted))
            if i.params.get("edit")]


def freeze_edit_model(session: Session, brief_id: int, resolve, record) -> int | None:  # noqa: ANN001
    """The VACE model of a brief's edits, resolved once and frozen on the brief (``edit_version_id``)."""
    brief = session.get(Brief, brief_id)
    if brief.edit_version_id is not None:
        return brief.edit_version_id
    refs = {i.params["edit"]["model"] for i in items_with_edits(session, brief_id)
            if i.params["edit"]["op"] in edits.VACE_OPS}
    if not refs:
        return None
    ref = sorted(refs)[0]
    model = resolve(ref)
    brief.edit_version_id = record(session, model)
    audit.append(session, "intake", "brief.edit_model_resolved", "brief", brief_id,
                 {"model_ref": ref, "version": model.ref, "weights_sha256": model.weights_sha256})
    session.flush()
    return brief.edit_version_id


def keep_fraction(edit: dict[str, Any]) -> float:
    """The share of the output's pixels the edit keeps from the source (for reports)."""
    geo = edits.Geometry(**edit["geometry"])
    mask = None
    if edit.get("mask"):
        src = edit["source"]
        mask = read_mask(Path(edit["mask"]["path"]), src["width"], src["height"], geo.frames_used)
    return float(np.mean(edits.keep_mask(edit, geo, mask)))
