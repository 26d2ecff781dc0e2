"""Detect stage: any video file → the rendition it came from, and that rendition's lineage.

In order, stopping at the first that finds it:

1. **credentials**: a valid C2PA manifest (embedded or sidecar) whose ``org.wanflow.lineage`` names a raw clip
   and preset of this catalog (or the file's sha256 is a publication's);
2. **watermark**: the invisible watermark read from up to ``READ_FRAMES`` frames, resolved against the issued
   payloads (governance/watermark.py: exact, or one bit off); the C2PA soft binding names the same payload;
3. **fingerprint**: the frames' pHashes (and their mirror images') against the catalog's, narrowed by the
   indexed 16-bit prefix first, ranked by similarity; found when the best scores at least MATCH_SIMILARITY;
4. **not found**, with the best fingerprint candidates for a person to look at.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from adapters import fingerprint, provenance, watermark
from adapters.clip_frames import DECODE_ERRORS
from catalog import marks
from catalog.db import session_scope
from catalog.lineage import lineage
from catalog.models import Asset, AssetKind, Publication, RenditionMark
from core.files import sha256_file
from governance.watermark import FINGERPRINT_FPS, MATCH_SIMILARITY, PREFIX_BITS, aggregate, prefix, resolve, similarity
from wan_tasks.marking import MAX_FRAMES, sampled, spread

READ_FRAMES = 24  # frames the watermark is read from
MAX_HASHED = 120  # query frames hashed for the fingerprint (30 s at four a second)
CANDIDATES = 5  # best fingerprint candidates reported
FOUND_BY = ("credentials", "watermark", "fingerprint")


@dataclass
class Detection:
    file: str
    found_by: str | None  # credentials | watermark | fingerprint | None (not found)
    rendition_asset_id: int | None = None
    credentials: dict[str, Any] | None = None
    watermark: dict[str, Any] | None = None
    fingerprint: dict[str, Any] | None = None
    lineage: dict[str, Any] | None = None
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rendition_from_claim(engine: Engine, path: Path, v: provenance.Verification) -> int | None:
    lin = v.lineage or {}
    with session_scope(engine) as s:
        clip_id, preset = lin.get("raw_clip_asset_id"), lin.get("preset")
        if clip_id is not None and preset:
            row = s.scalar(select(Asset.id).where(Asset.parent_id == clip_id, Asset.preset == preset,
                                                  Asset.kind != AssetKind.raw_clip))
            if row is not None:
                return row
        pub = s.scalar(select(Publication).where(Publication.sha256 == sha256_file(path)))
        return pub.asset_id if pub else None


def summary(engine: Engine, asset_id: int) -> dict[str, Any]:
    """The lineage a person asks for first: campaign, prompt, model version, approver, publications, mark."""
    with session_scope(engine) as s:
        chain = lineage(s, f"asset:{asset_id}")
        pubs = s.scalars(select(Publication).where(Publication.asset_id == asset_id).order_by(Publication.id)).all()
        mark = marks.mark_of_asset(s, asset_id)
        approvals = [r for r in chain["review"] if r["decision"] == "approve"]
        return {
            "campaign": chain["campaign"]["name"], "brand": chain["campaign"]["brand"],
            "item": chain["prompt_item"]["item_key"], "prompt": chain["prompt_item"]["prompt"],
            "locale": chain["prompt_item"]["locale"],
            "model_version": f"{chain['model_version']['registry_name']}/{chain['model_version']['version']}",
            "model_variant": chain["model_version"]["variant"], "stand_in": chain["model_version"]["stand_in"],
            "seed": chain["job"]["seed"], "job_id": chain["job"]["id"],
            "approver": approvals[-1]["reviewer"] if approvals else None,
            "approved_at": approvals[-1]["created_at"] if approvals else None,
            "rendition": {"asset_id": asset_id, "preset": chain["rendition"]["preset"] if chain["rendition"] else None,
                          "uri": chain["rendition"]["uri"] if chain["rendition"] else None},
            "raw_clip_asset_id": chain["raw_clip"]["id"],
            "publications": [{"id": p.id, "destination": p.destination, "uri": p.uri, "status": p.status,
                              "created_at": p.created_at.isoformat() if p.created_at else None} for p in pubs],
            "watermark_payload": f"{mark.payload:08x}" if mark and mark.payload is not None else None,
        }


def _credentials(engine: Engine, path: Path, trust: Path | None, out: Detection) -> bool:
    if path.suffix.lower() not in provenance.MIME:
        out.steps.append(f"credentials: C2PA has no binding for {path.suffix or 'extension-less'} files; skipped")
        return False
    v = provenance.verify(path, trust)
    out.credentials = {"state": v.state, "failures": v.failures, "ai_generated": v.ai_generated,
                       "soft_bindings": v.soft_bindings, "signer": (v.signer or {}).get("common_name")}
    if v.state == "absent":
        out.steps.append("credentials: no C2PA manifest")
        return False
    if not v.ok:
        out.steps.append(f"credentials: manifest present but does not verify ({v.state}); not trusted")
        return False
    asset_id = _rendition_from_claim(engine, path, v)
    if asset_id is None:
        out.steps.append("credentials: valid manifest, but its lineage is not in this catalog")
        return False
    out.found_by, out.rendition_asset_id = "credentials", asset_id
    out.steps.append(f"credentials: valid manifest → rendition asset {asset_id}")
    return True


def _watermark(engine: Engine, frames_for, method: str, out: Detection) -> bool:
    wm = watermark.watermarker(method)
    read = aggregate([wm.scores(f) for f in spread(frames_for(wm.work_size), READ_FRAMES)])
    with session_scope(engine) as s:
        issued = marks.issued_payloads(s)
        payload, dist = resolve(read, issued)
        rows = marks.by_payload(s, [payload]) if payload is not None else {}
        asset_id = rows[payload].asset_id if payload in rows else None
    out.watermark = {"method": method, "frames_read": read.frames, "read": f"{read.mark_id:08x}",
                     "confidence": round(read.confidence, 4), "payload": f"{payload:08x}" if payload is not None else None,
                     "bit_errors": dist, "bit_accuracy": None if dist is None else round(1 - dist / 32, 4)}
    if asset_id is None:
        out.steps.append(f"watermark ({method}): read {read.mark_id:08x} from {read.frames} frames; "
                         "no issued payload within 1 bit")
        return False
    out.found_by, out.rendition_asset_id = "watermark", asset_id
    out.steps.append(f"watermark ({method}): payload {payload:08x} ({dist} bit(s) off) → rendition asset {asset_id}")
    return True


def _fingerprint(engine: Engine, frames_for, out: Detection) -> bool:
    frames = sampled(frames_for(watermark.WORK), FINGERPRINT_FPS)[:MAX_HASHED]
    query = fingerprint.query_hashes(f for _, f in frames)
    prefixes = {prefix(h) for pair in query for h in pair}
    with session_scope(engine) as s:
        stored = marks.fingerprints(s, prefixes)
        narrowed = bool(stored)
        if not stored:  # no frame shares a prefix: rank them all (fine up to some 10^5 renditions)
            stored = marks.fingerprints(s)
        ranked = sorted(((similarity(query, hashes), mark_id) for mark_id, hashes in stored.items()), reverse=True)
        top = ranked[:CANDIDATES]
        assets = {m.id: m.asset_id for m in s.scalars(select(RenditionMark).where(
            RenditionMark.id.in_([m for _, m in top])))} if top else {}
    cands = [{"rendition_asset_id": assets.get(m), "similarity": round(sim, 4)} for sim, m in top]
    out.fingerprint = {"alg": fingerprint.ALG, "query_frames": len(query), "compared": len(stored),
                       "narrowed_by_prefix": narrowed, "prefix_bits": PREFIX_BITS, "threshold": MATCH_SIMILARITY,
                       "candidates": cands}
    if not cands or cands[0]["similarity"] < MATCH_SIMILARITY:
        best = cands[0]["similarity"] if cands else None
        out.steps.append(f"fingerprint: best similarity {best} < {MATCH_SIMILARITY} over {len(stored)} rendition(s)")
        return False
    out.found_by, out.rendition_asset_id = "fingerprint", cands[0]["rendition_asset_id"]
    out.steps.append(f"fingerprint: similarity {cands[0]['similarity']} → rendition asset {out.rendition_asset_id}")
    return True


def detect(engine: Engine, path: Path, trust: Path | None = None, method: str = "rivaGan") -> Detection:
    """Find where a video came from: credentials, then watermark, then fingerprint (module docstring)."""
    t0, path = time.monotonic(), Path(path)
    out = Detection(file=str(path), found_by=None)
    cache: dict[int | None, list] = {}

    def frames_for(size: int | None) -> list:
        if size not in cache:
            try:
                cache[size] = list(watermark.read_frames(path, size, MAX_FRAMES if size else READ_FRAMES * 4,
                                                         fps=None if size else FINGERPRINT_FPS))
            except DECODE_ERRORS as exc:
                raise ValueError(f"{path}: not a video this can decode ({type(exc).__name__}: {exc})") from exc
        return cache[size]

    found = _credentials(engine, path, trust, out)
    if not found and method != "none":
        found = _watermark(engine, frames_for, method, out)
    if not found:
        found = _fingerprint(engine, frames_for, out)
    if found:
        out.lineage = summary(engine, out.rendition_asset_id)
    else:
        out.steps.append("not found: no credentials, watermark or fingerprint of this catalog matched")
    out.seconds = round(time.monotonic() - t0, 2)
    return out
