"""A rendition's frame count is decided by one function, and ffmpeg delivers exactly that count.

The pure function over every Wan-legal frame count (4k+1, 5..241) × source fps (16, 24) × preset fps
(24, 25, 30); real ffmpeg encodes (64x64 source, a test-only 64x64 preset) on a representative subset:
the decoded frame count is the function's answer and the duration is the clip's to half an output frame.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from adapters import encode, media
from governance.delivery import parse_delivery
from governance.renditions import VideoPreset, rendition_frames

WAN_FRAMES = range(5, 242, 4)
SOURCE_FPS = (16, 24)
PRESET_FPS = (24, 25, 30)
SUBSET = (5, 13, 21, 85)  # the counts the issue saw fail, plus the smallest
ENCODES = ([(f, s, o, "repeat") for f in SUBSET for s in SOURCE_FPS for o in PRESET_FPS]
           + [(13, s, o, "interpolate") for s in SOURCE_FPS for o in PRESET_FPS]  # one count: interpolation is slow
           + [(241, 16, 30, "repeat")])  # the longest
POLICY = parse_delivery({"framing": "fill"})


@pytest.mark.parametrize("out_fps", PRESET_FPS)
@pytest.mark.parametrize("fps", SOURCE_FPS)
def test_every_wan_frame_count_keeps_the_clip_duration_to_half_an_output_frame(fps, out_fps):
    for frames in WAN_FRAMES:
        n = rendition_frames(frames, fps, out_fps)
        assert n >= 1
        assert abs(Fraction(n, out_fps) - Fraction(frames, fps)) <= Fraction(1, 2 * out_fps), (frames, fps, out_fps)


def _source(tmp: Path, frames: int, fps: int) -> Path:
    path = tmp / f"raw-{frames}-{fps}.mp4"
    if not path.exists():
        x, y = np.meshgrid(np.arange(64), np.arange(64))
        clip = np.stack([np.stack([(4 * x + 3 * t) % 256, 4 * y, np.full_like(x, 7 * t % 256)], -1)
                         for t in range(frames)]).astype(np.uint8)
        media.write_clip(clip, fps, path)
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("frame-counts")


@pytest.mark.parametrize(("frames", "fps", "out_fps", "conversion"), ENCODES, ids=lambda v: str(v))
def test_ffmpeg_delivers_exactly_the_decided_count(frames, fps, out_fps, conversion, sources, tmp_path):
    preset = VideoPreset(name="tiny", aspect="1:1", width=64, height=64, fps=out_fps, x264_preset="ultrafast",
                         frame_rate_conversion=conversion)
    info, _ = encode.render_video(_source(sources, frames, fps), tmp_path / "tiny.mp4", preset, POLICY)
    assert info.frames == rendition_frames(frames, fps, out_fps)
    assert abs(info.frames / out_fps - frames / fps) <= 0.5 / out_fps + 1e-9
    assert abs(info.duration - frames / fps) <= 0.5 / out_fps + 1e-3
