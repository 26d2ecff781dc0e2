"""Render stage of publishing: an approved clip → one signed file per rendition preset, a poster, a preview.

Transcode → label → watermark → sign, per preset (wan_tasks/marking.py: the invisible watermark goes in before
the final encode, its read-back and the fingerprint come from the encoded file, the C2PA manifest names it); the presets of a clip encode in parallel, each in its own
ffmpeg process, at most ``workers`` at a time (and never more than the CPU count in this process).
Signing is the last step before a file is recorded: the asset's sha256 is that of the signed file,
which is exactly what gets delivered. Idempotent: a preset already rendered (row + file) is reused.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from adapters import encode, media, provenance
from catalog.db import session_scope
from catalog.models import Asset, AssetKind, Brief, Campaign, ClipStatus, GenerationJob, ModelVersion, PromptItem
from core.files import safe_file_name, temp_path_for
from governance.renditions import PresetSet, VideoPreset
from governance.watermark import worth_retrying
from wan_tasks import marking as marks_stage
from wan_tasks.marking import Marking

_CPU_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 1)  # encoders in flight, whole process


@dataclass(frozen=True)
class ClipFacts:
    """What rendering and signing need to know about an approved clip."""

    clip_id: int
    path: Path
    sha256: str
    campaign: str
    brand: str
    brief_path: Path
    item: str
    locale: str
    formats: tuple[str, ...]
    variant: int
    job_id: int
    seed: int
    model: str  # registry name/version
    variant_name: str
    weights_sha256: str
    stand_in: bool

    @property
    def stem(self) -> str:
        return f"{safe_file_name(self.item)}-v{self.variant}"

    @property
    def folder(self) -> str:
        """The campaign's folder at the destination (its name, readable in its own script: docs/architecture.md)."""
        return safe_file_name(self.campaign)

    def delivered_name(self, preset: str, suffix: str) -> str:
        """The file's name at the destination (and so the title in its C2PA manifest)."""
        return f"{self.stem}-{preset}{suffix}"

    def claim(self, title: str, preset: str, soft_binding: dict[str, Any] | None = None) -> provenance.Credentials:
        generator = (f"{self.variant_name} (stand-in with random weights, not a Wan release)" if self.stand_in
                     else f"Wan {self.variant_name}")
        return provenance.Credentials(
            title=title, generator=generator, generator_version=self.model, campaign=self.campaign,
            item=self.item, lineage={"raw_clip_asset_id": self.clip_id, "raw_clip_sha256": self.sha256,
                                     "job_id": self.job_id, "seed": self.seed, "variant": self.variant,
                                     "model_version": self.model, "weights_sha256": self.weights_sha256,
                                     "stand_in": self.stand_in, "preset": preset},
            soft_binding=soft_binding)


def clip_facts(engine: Engine, clip_id: int) -> ClipFacts:
    with session_scope(engine) as s:
        clip = s.get(Asset, clip_id)
        if clip is None or clip.kind != AssetKind.raw_clip:
            raise LookupError(f"asset {clip_id} is not a raw clip")
        job = s.get(GenerationJob, clip.job_id)
        item, mv = s.get(PromptItem, job.item_id), s.get(ModelVersion, job.model_version_id)
        brief, campaign = s.get(Brief, item.brief_id), s.get(Campaign, job.campaign_id)
        return ClipFacts(
            clip_id=clip.id, path=Path(clip.uri), sha256=clip.sha256, campaign=campaign.name, brand=campaign.brand,
            brief_path=Path(brief.path), item=item.item_key, locale=item.locale, formats=tuple(item.params["formats"]),
            variant=job.variant_index, job_id=job.id, seed=job.seed, model=f"{mv.registry_name}/{mv.version}",
            variant_name=mv.variant, weights_sha256=mv.weights_sha256, stand_in=mv.stand_in)


def _existing(engine: Engine, clip_id: int, kind: AssetKind, preset: str) -> int | None:
    with session_scope(engine) as s:
        row = s.scalar(select(Asset).where(Asset.parent_id == clip_id, Asset.kind == kind, Asset.preset == preset))
        if row is not None and Path(row.uri).is_file() and media.sha256_file(Path(row.uri)) == row.sha256:
            return row.id
    return None


def _record(engine: Engine, clip_id: int, kind: AssetKind, preset: str, aspect: str | None, path: Path,
            dims: tuple[int, int, int | None, float | None], prov: dict[str, Any]) -> int:
    with session_scope(engine) as s:
        row = s.scalar(select(Asset).where(Asset.parent_id == clip_id, Asset.kind == kind, Asset.preset == preset))
        if row is None:
            row = Asset(kind=kind, parent_id=clip_id, preset=preset)
            s.add(row)
        row.aspect, row.uri, row.sha256, row.size = aspect, str(path), media.sha256_file(path), path.stat().st_size
        row.width, row.height, row.frames, row.fps = dims
        row.status, row.provenance = ClipStatus.delivered, prov
        s.flush()
        return row.id


def _signed(facts: ClipFacts, unsigned: Path, dest: Path, preset: str,
            signing: provenance.SigningConfig, soft_binding: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        return provenance.sign(unsigned, dest, facts.claim(facts.delivered_name(preset, dest.suffix), preset,
                                                           soft_binding), facts.path, signing)
    finally:
        unsigned.unlink(missing_ok=True)


def _video(engine: Engine, facts: ClipFacts, preset: VideoPreset, out: Path, policy, signing, threads: int,  # noqa: ANN001
           marking: Marking) -> int:
    dest = out / f"{facts.clip_id}-{preset.name}.{preset.extension}"
    unsigned = temp_path_for(dest)  # encoded here, signed onto dest
    for attempt in range(1, marks_stage.ATTEMPTS + 1):  # a payload a bit off: encode with another (worth_retrying)
        mark = marks_stage.reserve(engine, facts.clip_id, preset.name, marking, policy.watermark.required,
                                   facts.path, fresh=attempt > 1)
        with _CPU_SLOTS:
            info, label = encode.render_video(facts.path, unsigned, preset, policy, facts.locale, threads,
                                              frame_filter=mark.frame_filter)
            checked = marks_stage.check(mark, unsigned, attempt)
        if not worth_retrying(checked.readback):
            break
    prov = _signed(facts, unsigned, dest, preset.name, signing, checked.soft_binding(mark))
    prov |= {"label": asdict(label) if label else None, "framing": policy.framing,
             "frame_rate_conversion": preset.frame_rate_conversion,
             "watermark": {"method": marking.method, "payload": None if mark.payload is None else f"{mark.payload:08x}",
                           "readback": checked.readback, "required_by_brand": mark.required}}
    asset_id = _record(engine, facts.clip_id, AssetKind.rendition, preset.name, preset.aspect, dest,
                       (info.width, info.height, info.frames, info.fps), prov)
    marks_stage.record(engine, mark, asset_id, checked)
    return asset_id


def _still(engine: Engine, facts: ClipFacts, kind: AssetKind, primary: Path, out: Path, presets: PresetSet,
           signing) -> int:  # noqa: ANN001
    ext = "jpg" if kind == AssetKind.poster else presets.preview.format
    dest = out / f"{facts.clip_id}-{kind.value}.{ext}"
    unsigned = temp_path_for(dest)
    with _CPU_SLOTS:
        if kind == AssetKind.poster:
            encode.render_poster(primary, unsigned, presets.poster)
        else:
            encode.render_preview(primary, unsigned, presets.preview)
    prov = _signed(facts, unsigned, dest, kind.value, signing)
    w, h, frames = encode.image_info(dest)
    fps = float(presets.preview.fps) if kind == AssetKind.preview else None
    return _record(engine, facts.clip_id, kind, kind.value, None, dest, (w, h, frames, fps), prov)


def render_clip(engine: Engine, clip_id: int, assets_dir: Path, presets: PresetSet, policy,  # noqa: ANN001
                signing: provenance.SigningConfig, workers: int = 0, marking: Marking = Marking()) -> list[int]:
    """All deliverables of one approved clip (made only where missing). Returns their asset ids:
    the video renditions in preset order, then the poster and the preview. Every video rendition carries the
    invisible watermark of ``marking`` and has its fingerprint recorded."""
    facts = clip_facts(engine, clip_id)
    wanted = presets.for_formats(facts.formats)
    if not wanted:
        raise LookupError(f"clip {clip_id}: no enabled rendition preset for formats {list(facts.formats)} "
                          f"in {presets.source}")
    out = Path(assets_dir) / "renditions" / facts.folder
    workers = workers or os.cpu_count() or 1
    threads = max(1, (os.cpu_count() or 1) // workers)  # x264 threads per encoder: the cores are shared out
    ids: dict[str, int] = {p.name: i for p in wanted if (i := _existing(engine, clip_id, AssetKind.rendition, p.name))}
    todo = [p for p in wanted if p.name not in ids]
    with ThreadPoolExecutor(max_workers=workers) as pool:  # threads only wait: each encoder is an ffmpeg process
        for p, asset_id in zip(todo, pool.map(lambda p: _video(engine, facts, p, out, policy, signing, threads, marking), todo)):
            ids[p.name] = asset_id
        with session_scope(engine) as s:
            primary = Path(s.get(Asset, ids[wanted[0].name]).uri)
        kinds = [k for k in (AssetKind.poster, AssetKind.preview) if not _existing(engine, clip_id, k, k.value)]
        list(pool.map(lambda k: _still(engine, facts, k, primary, out, presets, signing), kinds))
    stills = [_existing(engine, clip_id, k, k.value) for k in (AssetKind.poster, AssetKind.preview)]
    return [ids[p.name] for p in wanted] + [i for i in stills if i is not None]
