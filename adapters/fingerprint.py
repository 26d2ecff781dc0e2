"""The perceptual fingerprint of a video (ImageHash): a 64-bit pHash per sampled frame.

pHash (DCT of the 32×32 grey image, 64 low frequencies against their median) survives re-encoding,
rescaling, blur and noise; a mirrored copy is matched by also hashing the mirror image of each query frame
(:func:`query_hashes`). Frames are sampled about :data:`governance.watermark.FINGERPRINT_FPS` times a second,
so a 3-second excerpt or a 30 fps conversion still meets stored frames. Matching is a rule
(:func:`governance.watermark.similarity`); storage and lookup are in :mod:`catalog.marks`.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from PIL import Image

from core import heavy

ALG = "imagehash-phash-64"


def frame_hash(frame: np.ndarray) -> int:
    """The 64-bit pHash of an RGB frame, as an unsigned int."""
    h = heavy.imagehash().phash(Image.fromarray(frame))
    return int(str(h), 16)


def hashes(frames: Iterable[tuple[float, np.ndarray]]) -> list[tuple[float, int]]:
    """(seconds, pHash) of each (seconds, frame) given."""
    return [(t, frame_hash(f)) for t, f in frames]


def query_hashes(frames: Iterable[np.ndarray]) -> list[tuple[int, int]]:
    """For each query frame: (pHash of the frame, pHash of its mirror image)."""
    return [(frame_hash(f), frame_hash(np.ascontiguousarray(f[:, ::-1]))) for f in frames]
