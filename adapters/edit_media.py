"""The media an edit reads: the source video (every frame, full size, RGB), a mask (a video, or an image held for
every frame) and reference images — decoded with PyAV and Pillow, checked against the sizes the edit needs.

Every reader raises :class:`EditMediaError` with a sentence a person can act on; intake turns it into a
``file:row:field`` problem (governance.edits names the fields), the engine into a failed job.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from adapters.clip_frames import DECODE_ERRORS

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v")


class EditMediaError(ValueError):
    """A source, mask or reference that cannot be used; the message says which file and why."""


def read_video(path: Path) -> tuple[np.ndarray, float]:
    """Every frame of a video as uint8 RGB (T, H, W, 3), and its frame rate."""
    path = Path(path)
    if not path.is_file():
        raise EditMediaError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise EditMediaError(f"{path} has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
    except EditMediaError:
        raise
    except DECODE_ERRORS as exc:
        raise EditMediaError(f"{path} cannot be decoded as a video ({type(exc).__name__}: {exc})") from None
    if not frames:
        raise EditMediaError(f"{path} has no video frames")
    return np.stack(frames), float(rate) if rate else 16.0


def read_mask(path: Path, width: int, height: int, frames: int) -> np.ndarray:
    """A mask as bool (T, H, W) (True: regenerate), from a video of ``frames`` or more frames or an image held
    for all of them; white (> 127) is the region. Its size must be the source's."""
    path = Path(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        video, _ = read_video(path)
        if video.shape[1:3] != (height, width):
            raise EditMediaError(f"mask {path} is {video.shape[2]}x{video.shape[1]}; the source is {width}x{height}")
        if len(video) < frames:
            raise EditMediaError(f"mask {path} has {len(video)} frames; the source uses {frames}")
        return video[:frames].astype(np.float32).mean(axis=3) > 127
    image = read_image(path, what="mask")
    if image.size != (width, height):
        raise EditMediaError(f"mask {path} is {image.size[0]}x{image.size[1]}; the source is {width}x{height}")
    m = np.asarray(image.convert("L")) > 127
    return np.broadcast_to(m, (frames, height, width)).copy()


def read_image(path: Path, what: str = "reference image") -> Image.Image:
    """An image, upright (EXIF) and RGB."""
    path = Path(path)
    if not path.is_file():
        raise EditMediaError(f"{what} {path} does not exist" if not path.exists() else f"{what} {path} is not a file")
    try:
        with Image.open(path) as im:
            im.load()
            return ImageOps.exif_transpose(im).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise EditMediaError(f"{what} {path} cannot be read as an image ({type(exc).__name__}: {exc})") from None
