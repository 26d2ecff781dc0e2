"""The rules of the invisible watermark and the perceptual fingerprint, free of media and databases.

* **Payload**: a 32-bit *mark id* (what rivaGan carries), drawn at random per rendition and resolved to the
  rendition in the catalog (``rendition_marks.payload``, unique). Collisions: an id equal to, or within
  :data:`MIN_ID_DISTANCE` - 1 bits of, an id already issued is drawn again, so that a read with up to
  :data:`MAX_BIT_ERRORS` wrong bits still resolves to exactly one rendition (or to none).
* **Read-back**: each frame gives 32 soft scores in 0..1; the bits are the per-bit mean over the frames read,
  thresholded at 0.5 (a majority vote weighted by confidence).
* **Fingerprint**: 64-bit perceptual hashes of sampled frames; a query frame's distance to a rendition is its
  nearest stored frame (of the frame or its mirror image), the similarity is 1 - median distance / 64.
* **Policy**: a brand's ``delivery.watermark.required``, or the destination's setting, makes publishing refuse a
  rendition whose watermark did not read back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

PAYLOAD_BITS = 32
MIN_ID_DISTANCE = 3  # bits between any two issued ids: a read with 1 wrong bit still resolves to one id at most
MAX_BIT_ERRORS = 1  # a read this close to an issued id resolves to it (room for ~8 million ids: 2**32 / 529)
MIN_READBACK_ACCURACY = 1.0  # QC: the rendition itself must read back with every bit right
RETRY_MAX_WRONG_BITS = 1  # a read-back this close is worth another payload; further off, the picture can't hold one
MIN_CONFIDENCE = 0.08  # mean |score - 0.5| over the bits: below this the read is noise (an unmarked video)
HASH_BITS = 64
PREFIX_BITS = 16  # the indexed prefix of each frame hash (fingerprint_hashes.prefix)
MATCH_SIMILARITY = 0.75  # 1 - median distance / 64; other clips scored 0.56-0.66, a 10 % crop 0.78-0.81 (bench)
FINGERPRINT_FPS = 4.0  # frames hashed per second of video


class WatermarkPolicy(BaseModel):
    """The ``delivery.watermark`` block of a brand profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    required: bool = Field(default=False, description="Publishing refuses a rendition whose watermark does not "
                                                      "read back.")


def new_mark_id(issued: Iterable[int], rng: random.Random | None = None, tries: int = 1000) -> int:
    """A random 32-bit id at least MIN_ID_DISTANCE bits from every id in ``issued`` (never 0 or all ones)."""
    rng = rng or random.SystemRandom()
    taken = list(issued)
    for _ in range(tries):
        cand = rng.getrandbits(PAYLOAD_BITS)
        if cand in (0, 2**PAYLOAD_BITS - 1):
            continue
        if all(hamming(cand, t) >= MIN_ID_DISTANCE for t in taken):
            return cand
    raise RuntimeError(f"no free 32-bit mark id after {tries} draws ({len(taken)} issued): the id space is full "
                       "at this distance; a longer payload is needed")


def id_to_bits(mark_id: int) -> list[int]:
    if not 0 <= mark_id < 2**PAYLOAD_BITS:
        raise ValueError(f"mark id {mark_id} does not fit in {PAYLOAD_BITS} bits")
    return [(mark_id >> (PAYLOAD_BITS - 1 - i)) & 1 for i in range(PAYLOAD_BITS)]


def bits_to_id(bits: Sequence[int]) -> int:
    out = 0
    for b in bits:
        out = (out << 1) | int(bool(b))
    return out


def hamming(a: int, b: int) -> int:
    return bin((a ^ b) & (2**HASH_BITS - 1)).count("1")


@dataclass(frozen=True)
class Read:
    """What the frames of a video say about a payload."""

    mark_id: int
    frames: int
    confidence: float  # mean |score - 0.5| over the 32 bits, 0..0.5

    def accuracy(self, expected: int) -> float:
        return 1.0 - hamming(self.mark_id, expected) / PAYLOAD_BITS

    @property
    def plausible(self) -> bool:
        return self.frames > 0 and self.confidence >= MIN_CONFIDENCE


def aggregate(scores: Sequence[Sequence[float]]) -> Read:
    """Per-frame soft scores (each PAYLOAD_BITS values in 0..1) → the payload read from them."""
    if not scores:
        return Read(0, 0, 0.0)
    n = len(scores)
    means = [sum(float(s[i]) for s in scores) / n for i in range(PAYLOAD_BITS)]
    return Read(bits_to_id([m > 0.5 for m in means]), n, sum(abs(m - 0.5) for m in means) / PAYLOAD_BITS)


def resolve(read: Read, issued: Iterable[int]) -> tuple[int | None, int | None]:
    """The issued id within MAX_BIT_ERRORS of the read (and its distance); (None, None) if none or not plausible."""
    if not read.plausible:
        return None, None
    best = min(((hamming(read.mark_id, i), i) for i in issued), default=None)
    if best is None or best[0] > MAX_BIT_ERRORS:
        return None, None
    return best[1], best[0]


def readback_verdict(expected: int, read: Read) -> dict:
    """The rendition's QC record of its own watermark: passed when every bit reads back."""
    acc = read.accuracy(expected) if read.frames else 0.0
    passed = read.frames > 0 and acc >= MIN_READBACK_ACCURACY and read.plausible
    return {"passed": passed, "bit_accuracy": round(acc, 4), "frames_read": read.frames,
            "confidence": round(read.confidence, 4), "read_id": read.mark_id, "threshold": MIN_READBACK_ACCURACY}


def worth_retrying(readback: dict | None) -> bool:
    """Whether a rendition whose read-back failed should be encoded again with another payload: yes when a single
    bit was wrong (some 32-bit payloads suit a picture less than others: about 1 in 12 on a natural clip, see
    docs/provenance.md); no when more were, as on noise, where a new payload rarely does better (the demo's
    stand-in clips read their second payload back 1 to 11 bits off, 2 of 18 by a single bit)."""
    if readback is None or readback.get("passed") or not readback.get("frames_read"):
        return False
    return round((1.0 - readback["bit_accuracy"]) * PAYLOAD_BITS) <= RETRY_MAX_WRONG_BITS


def refusal(brand_requires: bool, destination_requires: bool, readback: dict | None) -> str | None:
    """Why publishing must refuse this rendition, or None. ``readback`` is :func:`readback_verdict`'s record."""
    required_by = [w for w, r in (("brand", brand_requires), ("destination", destination_requires)) if r]
    if not required_by:
        return None
    if readback is None:
        return f"watermark required by the {' and '.join(required_by)} but this rendition has none"
    if not readback.get("passed"):
        return (f"watermark required by the {' and '.join(required_by)} but it does not read back "
                f"(bit accuracy {readback.get('bit_accuracy')}, {readback.get('frames_read')} frames read, "
                f"confidence {readback.get('confidence')})")
    return None


def prefix(h: int) -> int:
    return (h >> (HASH_BITS - PREFIX_BITS)) & (2**PREFIX_BITS - 1)


def similarity(query: Sequence[tuple[int, int]], stored: Sequence[int]) -> float:
    """``query``: per sampled frame, (hash, hash of the mirrored frame); ``stored``: a rendition's frame hashes.
    1 - (median over query frames of the nearest stored distance) / 64."""
    if not query or not stored:
        return 0.0
    dists = sorted(min(min(hamming(q, s), hamming(m, s)) for s in stored) for q, m in query)
    return 1.0 - dists[len(dists) // 2] / HASH_BITS
