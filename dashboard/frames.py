"""Frame strips for the clip page: evenly spaced frames of a clip, labelled with their time, as one PNG, with
the boxes QC located its findings in drawn on the frames they were found on (the strip's frames are the QC
stills: the same 8 frames spread over the clip).

Made on first request and kept beside the asset store's clips (named by the clip's sha256, so a changed
clip gets a new strip); written to a temporary name and renamed. A file that cannot be decoded (damaged,
truncated, no video stream) raises :class:`Undecodable`.
"""

from __future__ import annotations

from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont

from core.files import atomic_path


class Undecodable(ValueError):
    """The clip's file cannot be decoded into frames."""


def _decode(src: Path) -> tuple[list[Image.Image], float]:
    try:
        with av.open(str(src)) as container:
            video = container.streams.video
            rate = float(video[0].average_rate or 16) if video else 16.0
            frames = [f.to_image() for f in container.decode(video=0)] if video else []
    except (av.error.FFmpegError, IndexError, ValueError) as exc:
        raise Undecodable(f"{src.name}: {type(exc).__name__}: {exc}") from exc
    if not frames:
        raise Undecodable(f"{src.name}: no video frames")
    return frames, rate


BOX_COLOURS = {"block": (198, 40, 40), "needs_review": (239, 108, 0)}


def frame_strip(src: Path, dest: Path, count: int = 8, thumb_height: int = 72, boxes: list[dict] | None = None) -> Path:
    """``boxes``: ``{"time", "box": [x, y, w, h] fractions, "label", "outcome"}``, each drawn on the strip's
    frame nearest its time."""
    if dest.exists():
        return dest
    frames, rate = _decode(src)
    picks = sorted({round(i * (len(frames) - 1) / max(1, count - 1)) for i in range(min(count, len(frames)))})
    width = max(1, round(frames[0].width * thumb_height / frames[0].height))
    label = 12
    sheet = Image.new("RGB", (width * len(picks) + 2 * (len(picks) - 1), thumb_height + label), (20, 20, 24))
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    for n, i in enumerate(picks):
        x = n * (width + 2)
        sheet.paste(frames[i].resize((width, thumb_height), Image.Resampling.LANCZOS), (x, 0))
        draw.text((x + 2, thumb_height), f"#{i} {i / rate:.2f}s", fill=(220, 220, 220), font=font)
    for b in boxes or []:
        n = min(range(len(picks)), key=lambda k: abs(picks[k] / rate - float(b["time"])))
        x0, y0, bw, bh = b["box"]
        left = n * (width + 2)
        draw.rectangle((left + x0 * width, y0 * thumb_height, left + (x0 + bw) * width, (y0 + bh) * thumb_height),
                       outline=BOX_COLOURS.get(b.get("outcome", ""), (255, 214, 0)), width=2)
    with atomic_path(dest) as tmp:
        sheet.save(tmp, format="PNG")
    return dest
