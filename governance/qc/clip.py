"""The clip as the checks see it: frames decoded once into numpy arrays, what the clip should be, and the
frame measures several checks share (black frames, consecutive pairs, frozen pairs).

Every frame is kept as luma scaled to at most ``MID_SIDE`` pixels on its short side (full range 0..255,
so video black is 0), and as an RGB thumbnail at most ``THUMB_SIDE`` on its short side for the colour and
model checks and the report; ``STILL_FRAMES`` frames spread evenly over the clip are also kept as RGB
stills at most ``STILL_SIDE`` on their short side (full size for Wan's 480p) for the on-screen detectors. Decoding a file into a :class:`Clip` is the adapter's job
(:mod:`adapters.clip_frames`); everything here is numpy on those arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

MID_SIDE = 240  # luma for black/exposure/blur/flash: short side at most this
SMALL_SIDE = 120  # luma for motion checks (frozen, cuts, structural similarity)
THUMB_SIDE = 224  # RGB for palette, models and the report
STILL_SIDE = 480  # RGB stills for the on-screen text and nudity detectors: short side at most this
STILL_FRAMES = 8  # how many stills, spread evenly over the clip
FLAT_STD = 2.0  # a frame whose luma varies less than this (0..255) has no structure to compare


@dataclass(frozen=True)
class Expected:
    """What the clip should be; ``None`` where nothing was requested."""

    width: int | None = None
    height: int | None = None
    frames: int | None = None
    fps: float | None = None


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
    stills: np.ndarray | None = None  # (S, h, w, 3) uint8 RGB, short side <= STILL_SIDE
    still_index: np.ndarray | None = None  # (S,) the frame index of each still

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
        return spread(self.frames, n)

    def black_mask(self, pixel_luma: float, pixel_share: float) -> np.ndarray:
        """Frames where at least ``pixel_share`` of the pixels are at or below ``pixel_luma``."""
        return (self.mid <= pixel_luma).mean(axis=(1, 2)) >= pixel_share

    def pairs(self, black: np.ndarray, need_structure: bool = False) -> np.ndarray:
        """Mask of consecutive pairs (t, t+1) where neither frame is black (nor flat, if asked)."""
        ok = ~black
        if need_structure:
            ok &= self.small.std(axis=(1, 2)) >= FLAT_STD
        return ok[:-1] & ok[1:]

    def frozen_pairs(self, max_change: float, black: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(frozen mask over consecutive pairs, mean luma change of each pair); black pairs are never frozen."""
        change = np.abs(np.diff(self.small, axis=0)).mean(axis=(1, 2))
        return (change < max_change) & self.pairs(black), change


def spread(total: int, n: int) -> np.ndarray:
    """Indices of up to ``n`` of ``total`` frames spread evenly, first and last included."""
    return np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(int))


def rounded(x: float, nd: int = 4) -> float:
    """``x`` as a plain float rounded to ``nd`` decimals (what results record)."""
    return round(float(x), nd)


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
