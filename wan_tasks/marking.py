"""Marking stage of rendering: the invisible watermark and the perceptual fingerprint of each video rendition.

Per rendition (wan_tasks/render.py calls these in order):

1. :func:`reserve` draws the 32-bit payload (governance/watermark.py: unique, at least 3 bits from every id
   issued) and records it with the method and the brand's requirement, before anything is encoded; a re-run
   reuses the row.
2. :attr:`Reservation.frame_filter` is handed to the encoder: every frame is marked after the label and before
   the one final encode (adapters/encode.py).
3. :func:`check` decodes the encoded rendition once (at the working size): the watermark's read-back from
   READ_FRAMES frames spread over it (its QC), the fingerprint's hashes of about four frames a second.
4. :func:`record` ties the row to the rendition asset, stores the fingerprint and writes the QC result
   ``watermark_readback`` on the rendition.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable

import numpy as np
from sqlalchemy import Engine, select

from adapters import fingerprint, watermark
from catalog import marks
from catalog.db import session_scope
from catalog.models import QcResult
from core import heavy
from governance.watermark import (FINGERPRINT_FPS, PREFIX_BITS, aggregate, new_mark_id, readback_verdict)

MAX_HASHED = 480  # frames hashed for the fingerprint at most (two minutes at four a second)
MAX_FRAMES = 3000  # frames decoded (at the working size) for the read-back and the fingerprint
READ_FRAMES = 12  # frames the read-back decodes (spread by FINGERPRINT_FPS); more only costs time
CANDIDATES = 6  # free ids tried on a frame of the clip; the best one is the payload
ATTEMPTS = 3  # payloads tried per rendition while the encoded file misreads a single bit of its payload
EMBED_EVERY = 4  # rivaGan: a new residual every 4 output frames (see adapters/watermark.embedder)
CHECK = "watermark_readback"


@dataclass(frozen=True)
class Marking:
    """How renditions are marked: ``method`` rivaGan | dwtDct | none (fingerprint only), its strength."""

    method: str = "rivaGan"
    strength: float = 1.0
    max_strength: float = 3.0
    every: int = EMBED_EVERY

    def watermarker(self) -> watermark.Watermarker | None:
        return None if self.method == "none" else watermark.watermarker(self.method, self.strength, self.max_strength)

    @property
    def params(self) -> dict[str, Any]:
        wm = self.watermarker()
        return {"strength": [self.strength, self.max_strength] if self.method == "rivaGan" else None,
                "every": self.every,
                "work_size": getattr(wm, "work_size", None), "c2pa_alg": watermark.C2PA_ALG.get(self.method)}


@dataclass
class Reservation:
    mark_id: int
    payload: int | None
    marking: Marking
    required: bool
    frame_filter: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Checked:
    readback: dict[str, Any] | None
    frame_hashes: list[tuple[float, int]]
    seconds: float = 0.0

    def soft_binding(self, res: Reservation) -> dict[str, Any] | None:
        """The C2PA ``c2pa.soft-binding`` assertion data: the watermark algorithm and the payload it carries."""
        if res.payload is None:
            return None
        return {"alg": watermark.C2PA_ALG[res.marking.method], "name": "wanflow invisible watermark (32-bit id)",
                "alg_params": f"invisible-watermark 0.2.0 {res.marking.method}; 32-bit id, hex",
                "pad": [], "blocks": [{"scope": {}, "value": f"{res.payload:08x}"}]}


def _pick(wm: watermark.Watermarker | None, issued: list[int], probe: Path | None) -> int | None:
    """A free 32-bit id; for rivaGan the best of CANDIDATES free ids on a frame of the clip (the one whose
    weakest bit reads back strongest: some payloads suit a picture better than others)."""
    if wm is None:
        return None
    first = new_mark_id(issued)
    if not isinstance(wm, watermark.RivaGan) or probe is None:
        return first
    frames = list(watermark.read_frames(probe, wm.work_size, fps=1.0))
    if not frames:
        return first
    frame = frames[len(frames) // 2][1]
    cands = [first]
    for _ in range(CANDIDATES - 1):
        cands.append(new_mark_id(issued + cands))
    return max(cands, key=lambda c: wm.margin(frame, c, 1.5))


def reserve(engine: Engine, clip_id: int, preset: str, marking: Marking, required: bool,
            probe: Path | None = None, fresh: bool = False) -> Reservation:
    """The rendition's mark row (made once per clip and preset; a re-render reuses its payload). ``probe``: the
    source clip, whose middle frame picks the payload among free ids. ``fresh``: draw a new payload (the last
    one did not read back from the encoded rendition)."""
    with session_scope(engine) as s:
        row = marks.mark_for(s, clip_id, preset)
        if row is None or row.method != marking.method or fresh:
            payload = _pick(marking.watermarker(), marks.issued_payloads(s), probe)
            if row is not None:  # the method changed since, or a retry: a new payload for the new mark
                row.method, row.payload, row.params = marking.method, payload, marking.params
                row.policy = {"brand_requires": required}
            else:
                row = marks.add_mark(s, clip_id, preset, payload, marking.method, marking.params,
                                     {"brand_requires": required})
        row.policy = {"brand_requires": required}
        mark_id, payload = row.id, row.payload
    wm = marking.watermarker()
    return Reservation(mark_id, payload, marking, required,
                       watermark.embedder(wm, payload, marking.every) if wm is not None and payload is not None
                       else None)


def check(res: Reservation, path: Path, attempt: int = 1) -> Checked:
    """Decode the encoded rendition once: the read-back of its watermark and its fingerprint."""
    wm = res.marking.watermarker()
    frames = list(watermark.read_frames(path, watermark.WORK, MAX_FRAMES))
    readback = None
    if wm is not None and res.payload is not None:
        own = frames if wm.work_size == watermark.WORK else list(  # dwtDct reads full-size frames
            watermark.read_frames(path, wm.work_size, READ_FRAMES, fps=FINGERPRINT_FPS))
        readback = readback_verdict(res.payload, aggregate([wm.scores(f) for f in spread(own, READ_FRAMES)]))
        readback |= {"attempt": attempt}
    return Checked(readback, fingerprint.hashes(sampled(frames, FINGERPRINT_FPS)[:MAX_HASHED]))


def spread(frames: list, n: int) -> list:
    """``n`` frames spread evenly over ``frames`` (all of them when there are fewer)."""
    if len(frames) <= n:
        return [f for _, f in frames]
    return [frames[round(i * (len(frames) - 1) / (n - 1))][1] for i in range(n)]


def sampled(frames: list, fps: float) -> list:
    """(t, frame) about ``fps`` times a second: the fingerprint's frames."""
    out, next_t = [], 0.0
    for t, f in frames:
        if t + 1e-6 >= next_t:
            out.append((t, f))
            next_t = t + 1.0 / fps
    return out


def judge(method: str) -> dict[str, Any]:
    """Which detector read the watermark back (like qc_results.judge): package, version, weight digests."""
    try:
        ver = version("invisible-watermark")
    except PackageNotFoundError:
        ver = None
    out: dict[str, Any] = {"package": "invisible-watermark", "version": ver, "method": method}
    if method == "rivaGan":
        folder = heavy.imwatermark_dir()
        out["weights_sha256"] = {p: hashlib.sha256((folder / p).read_bytes()).hexdigest()
                                 for p in ("rivagan_encoder.onnx", "rivagan_decoder.onnx")}
    return out


def record(engine: Engine, res: Reservation, asset_id: int, checked: Checked) -> None:
    """Tie the mark to the rendition, store the fingerprint, and write the rendition's QC result."""
    with session_scope(engine) as s:
        marks.finish_mark(s, res.mark_id, asset_id, checked.readback,
                          {"alg": fingerprint.ALG, "fps": FINGERPRINT_FPS, "frames": len(checked.frame_hashes)},
                          checked.frame_hashes, PREFIX_BITS)
        if checked.readback is None:
            return
        row = s.scalar(select(QcResult).where(QcResult.asset_id == asset_id, QcResult.check == CHECK))
        if row is None:
            row = QcResult(asset_id=asset_id, check=CHECK)
            s.add(row)
        rb = checked.readback
        row.passed, row.value, row.threshold = rb["passed"], rb["bit_accuracy"], rb["threshold"]
        row.outcome = "pass" if rb["passed"] else ("block" if res.required else "needs_review")
        row.details = {**rb, "payload": f"{res.payload:08x}", "method": res.marking.method,
                       "required_by_brand": res.required}
        row.judge = judge(res.marking.method)
