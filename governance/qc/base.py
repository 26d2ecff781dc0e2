"""What every check shares: the result record, what the clip should be, and the clip decoded once.

The clip is decoded once with PyAV. Every frame is kept as luma scaled by swscale (area filter) to at
most ``MID_SIDE`` pixels on its short side (full range 0..255, so video black is 0), and as an RGB
thumbnail at most ``THUMB_SIDE`` on its short side for the colour and model checks and the report.
Frame metrics are computed from these arrays with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import av
import numpy as np

MID_SIDE = 240  # luma for black/exposure/blur/flash: short side at most this
SMALL_SIDE = 120  # luma for motion checks (frozen, cuts, structural similarity)
THUMB_SIDE = 224  # RGB for palette, models and the report
DECODE_ERRORS = (av.FFmpegError, OSError, ValueError, IndexError, EOFError)


@dataclass(frozen=True)
class Expected:
    """What the clip should be; ``None`` where nothing was requested."""

    width: int | None = None
    height: int | None = None
    frames: int | None = None
    fps: float | None = None


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome; ``passed`` is None when the check was not run (``details["reason"]``).

    ``details["message"]`` says in a sentence what was found; ``details["ranges"]``, where present,
    lists the time ranges (seconds) concerned.
    """

    check: str
    passed: bool | None
    value: float | None
    threshold: float | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        if self.passed is None:
            return f"not run: {self.details.get('reason', 'no reason recorded')}"
        return str(self.details.get("message", "passed" if self.passed else "failed"))


def not_run(check: str, reason: str) -> CheckResult:
    return CheckResult(check, None, None, None, {"reason": reason})


def _scaled(w: int, h: int, side: int) -> tuple[int, int]:
    """(w, h) scaled so the short side is at most ``side``, both even and >= 2."""
    f = min(1.0, side / min(w, h))
    return max(2, round(w * f / 2) * 2), max(2, round(h * f / 2) * 2)


@dataclass(frozen=True)
class Clip:
    """A decoded clip. Arrays are (T, ...) in presentation order."""

    path: Path
    mid: np.ndarray  # (T, h, w) uint8 luma, short side <= MID_SIDE
    thumbs: np.ndarray  # (T, h, w, 3) uint8 RGB, short side <= THUMB_SIDE
    times: np.ndarray  # (T,) seconds
    fps: float
    width: int
    height: int
    format: str  # demuxer names, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str
    pix_fmt: str
    duration: float  # seconds, from the timestamps (last - first + one frame)

    @property
    def frames(self) -> int:
        return len(self.mid)

    @property
    def frame_s(self) -> float:
        return 1.0 / self.fps if self.fps else 0.0

    @cached_property
    def small(self) -> np.ndarray:
        """(T, h, w) float32 luma, short side <= SMALL_SIDE (block mean of ``mid``)."""
        k = max(1, min(self.mid.shape[1:]) // SMALL_SIDE)
        t, h, w = self.mid.shape
        h2, w2 = h // k, w // k
        return self.mid[:, :h2 * k, :w2 * k].reshape(t, h2, k, w2, k).mean(axis=(2, 4), dtype=np.float32)

    @cached_property
    def mean_luma(self) -> np.ndarray:
        return self.small.mean(axis=(1, 2))

    def sample(self, n: int) -> np.ndarray:
        """Indices of up to ``n`` frames spread evenly over the clip."""
        return np.unique(np.linspace(0, self.frames - 1, min(n, self.frames)).round().astype(int))


def decode(path: Path) -> Clip:
    """Decode every frame; raises one of DECODE_ERRORS on any failure or when there are no video frames."""
    path = Path(path)
    mids, thumbs, pts = [], [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        ctx = stream.codec_context
        w, h = ctx.width, ctx.height
        if not w or not h:
            raise ValueError("video stream has no size")
        mw, mh = _scaled(w, h, MID_SIDE)
        tw, th = _scaled(w, h, THUMB_SIDE)
        for i, frame in enumerate(container.decode(stream)):
            mids.append(frame.to_ndarray(format="gray", width=mw, height=mh, interpolation="AREA"))
            thumbs.append(frame.to_ndarray(format="rgb24", width=tw, height=th, interpolation="AREA"))
            pts.append(frame.time if frame.time is not None else (i / fps if fps else float(i)))
        fmt, codec, pix_fmt = container.format.name, ctx.name, ctx.pix_fmt or ""
    if not mids:
        raise ValueError("no video frames")
    times = np.asarray(pts, dtype=np.float64)
    times -= times[0]
    duration = float(times[-1] + (1.0 / fps if fps else 0.0))
    return Clip(path, np.stack(mids), np.stack(thumbs), times, fps, w, h, fmt, codec, pix_fmt, duration)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True in ``mask``."""
    out, i, n = [], 0, len(mask)
    while i < n:
        if not mask[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and mask[j + 1]:
            j += 1
        out.append((i, j))
        i = j + 1
    return out


def span(clip: Clip, first: int, last: int) -> dict[str, float]:
    """The time range shown by frames first..last (inclusive)."""
    return {"start": round(float(clip.times[first]), 4), "end": round(float(clip.times[last] + clip.frame_s), 4)}
