"""Training media: probe an image or a short clip for the dataset's rules, and load it as frames for the cache.

Images are read with PIL, clips decoded with PyAV. :func:`probe` never raises: a file that does not read comes
back ``readable=False`` with the reason (the dataset suite turns it into a ``file:row:file`` problem).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from adapters.clip_frames import DECODE_ERRORS
from core.files import sha256_file
from governance.datasets import CLIP_SUFFIXES, IMAGE_SUFFIXES


def probe(path: Path | None) -> dict[str, Any]:
    """{readable, why, kind, width, height, frames, sha256} of one training file."""
    if path is None:
        return {"readable": False, "why": "missing file name"}
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES + CLIP_SUFFIXES:
        return {"readable": False, "why": f"unsupported file type {suffix or '(none)'!r} (images: "
                                          f"{', '.join(IMAGE_SUFFIXES)}; clips: {', '.join(CLIP_SUFFIXES)})"}
    if not path.is_file():
        return {"readable": False, "why": f"{path} does not exist"}
    try:
        if suffix in IMAGE_SUFFIXES:
            with Image.open(path) as im:
                im.load()
                w, h, frames, kind = im.width, im.height, 1, "image"
        else:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                w, h = stream.codec_context.width, stream.codec_context.height
                frames = sum(1 for _ in container.decode(stream))
            kind = "clip"
            if not frames:
                raise ValueError("no video frames")
    except (UnidentifiedImageError, *DECODE_ERRORS) as exc:
        return {"readable": False, "why": f"unreadable: {type(exc).__name__}: {exc}"}
    return {"readable": True, "why": None, "kind": kind, "width": int(w), "height": int(h), "frames": int(frames),
            "sha256": sha256_file(path)}


def _fit(img: Image.Image, width: int, height: int) -> np.ndarray:
    """Centre-crop to width:height, then resize (Lanczos) to width x height; RGB uint8."""
    img = img.convert("RGB")
    scale = max(width / img.width, height / img.height)
    w, h = max(width, round(img.width * scale)), max(height, round(img.height * scale))
    img = img.resize((w, h), Image.Resampling.LANCZOS)
    left, top = (w - width) // 2, (h - height) // 2
    return np.asarray(img.crop((left, top, left + width, top + height)), dtype=np.uint8)


def load_frames(path: Path, width: int, height: int, frames: int) -> np.ndarray:
    """An image as one frame, or a clip's first ``frames`` frames (fewer if it is shorter: the dataset suite has
    refused clips shorter than the model needs), as (T, H, W, 3) uint8 fitted to width x height."""
    path = Path(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        with Image.open(path) as im:
            return _fit(im, width, height)[None]
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            out.append(_fit(frame.to_image(), width, height))
            if len(out) == frames:
                break
    # the VAE takes 4k+1 frames: keep the longest such prefix
    keep = (len(out) - 1) // 4 * 4 + 1
    return np.stack(out[:keep])


DEMO_SWATCHES = (("acme red", (200, 30, 30)), ("acme navy", (20, 30, 120)), ("acme yellow", (230, 200, 40)))


def write_demo_dataset(folder: Path, side: int = 64) -> Path:
    """A tiny stand-in brand set (three flat brand swatches with an inverted centre, captions and demo rights) and
    its ``dataset.csv``: what `wanflow personalize demo` trains on. Not real brand footage."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["file,caption,owner,licence,expires,allowed_use"]
    for i, (name, colour) in enumerate(DEMO_SWATCHES):
        a = np.zeros((side, side, 3), np.uint8)
        a[:] = colour
        a[side // 4:3 * side // 4, side // 4:3 * side // 4] = 255 - np.array(colour, np.uint8)
        Image.fromarray(a).save(folder / f"swatch-{i}.png")
        rows.append(f"swatch-{i}.png,{name} product swatch (stand-in),wanflow demo,DEMO-ONLY-{i},2099-12-31,training")
    (folder / "dataset.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder
