"""The invisible watermark (invisible-watermark 0.2.0): embed a 32-bit payload in every frame, read it back.

Two methods behind one small interface (:class:`Watermarker`), chosen by the ``watermark_method`` setting:

* ``rivaGan`` (default): the learned video watermark whose ONNX encoder and decoder ship in the
  invisible-watermark wheel, run on onnxruntime. The way TrustMark applies its learned mark: the frame is
  resized to a working size (128×128: the model is fully convolutional), the model's *residual* (marked − input) is scaled by
  ``strength`` and resized back onto the full frame. Any frame size is marked in the same time, and a read
  resizes whatever it is given to 128×128 first, so downscaling and aspect changes of the whole frame are
  undone for free; a crop or a mirror is not.
* ``dwtDct``: the classical DWT+DCT mark in the chroma of the full-size frame (no weights). Cheap, but a
  re-encode at a lower bitrate or any rescale loses it (see docs/provenance.md): kept for comparison.

Frames are RGB uint8 arrays (H, W, 3). ``scores`` gives 32 soft values in 0..1 per frame; the rules of
reading them (majority over frames, resolution against issued ids) are in :mod:`governance.watermark`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import av
import numpy as np

from core import heavy
from governance.watermark import PAYLOAD_BITS, id_to_bits

WORK = 128  # rivaGan's working size here: 3× cheaper than 256 on a CPU, as robust in docs/provenance.md
MIN_DWT = 256  # the smallest frame side invisible-watermark's dwtDct accepts
METHODS = ("rivaGan", "dwtDct")
C2PA_ALG = {"rivaGan": "org.wanflow.rivagan-residual.v1", "dwtDct": "org.wanflow.dwtdct.v1"}


class Watermarker(Protocol):
    name: str
    work_size: int | None  # frames are read at this square size (None: full size)

    def embed(self, frame: np.ndarray, mark_id: int) -> np.ndarray: ...
    def scores(self, frame: np.ndarray) -> np.ndarray: ...


def _cv2():  # noqa: ANN202
    return heavy.cv2()


_SESSIONS: dict[str, tuple] = {}  # the two ONNX sessions, loaded once per process


def _riva_sessions() -> tuple:
    if "riva" not in _SESSIONS:
        ort, folder = heavy.onnxruntime(), heavy.imwatermark_dir()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # renditions encode in parallel threads already; the cores are shared
        _SESSIONS["riva"] = tuple(ort.InferenceSession(str(folder / f"rivagan_{part}.onnx"), opts,
                                                       providers=["CPUExecutionProvider"])
                                  for part in ("encoder", "decoder"))
    return _SESSIONS["riva"]


@dataclass
class RivaGan:
    """rivaGan on onnxruntime, applied as a residual at the working size (see the module docstring).

    Adaptive strength: the model's residual is scaled by the first of :data:`STRENGTHS` (from ``strength`` up
    to ``max_strength``) at which the marked frame, at the working size, reads every bit back with a logit of
    at least ``target``: flat, smooth pictures get a stronger mark, busy ones a fainter one."""

    strength: float = 1.0
    max_strength: float = 3.0
    target: float = 2.0  # the weakest bit's logit wanted at the working size (a margin for re-encoding)
    work_size: int = WORK
    name: str = "rivaGan"
    used: list = field(default_factory=list, repr=False)  # the strength chosen for each residual, for the record

    STRENGTHS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)

    @staticmethod
    def _tensor(small: np.ndarray) -> np.ndarray:  # (n, n, 3) uint8 → (1, 3, 1, n, n) in -1..1
        return (small.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None, :, None]

    def residual(self, frame: np.ndarray, mark_id: int) -> np.ndarray:
        """The mark for this frame: the model's residual at the working size, scaled, resized to the frame."""
        cv2, (enc, dec) = _cv2(), _riva_sessions()
        h, w = frame.shape[:2]
        n = self.work_size
        small = frame if (h, w) == (n, n) else cv2.resize(frame, (n, n), interpolation=cv2.INTER_AREA)
        bits = np.array(id_to_bits(mark_id), dtype=np.float32)
        out = enc.run(None, {"frame": self._tensor(small), "data": bits[None]})[0]
        marked = (np.clip(out[0, :, 0], -1.0, 1.0).transpose(1, 2, 0) + 1.0) * 127.5
        base = marked - small.astype(np.float32)
        sign = bits * 2 - 1
        steps = [s for s in self.STRENGTHS if self.strength <= s <= self.max_strength] or [self.strength]
        if self.used and self.used[-1] in steps:  # neighbouring residuals need about the same: start there
            steps = steps[steps.index(self.used[-1]):]
        for k in steps:
            trial = np.clip(small.astype(np.float32) + base * k, 0, 255).round().astype(np.uint8)
            logits = dec.run(None, {"frame": self._tensor(trial)})[0][0]
            if float(np.min(logits * sign)) >= self.target:
                break
        self.used.append(k)
        residual = base * k
        return residual if (h, w) == (n, n) else cv2.resize(residual, (w, h), interpolation=cv2.INTER_LINEAR)

    def margin(self, frame: np.ndarray, mark_id: int, strength: float | None = None) -> float:
        """The weakest bit's logit (signed: negative means a wrong bit) when ``frame`` is marked with ``mark_id``
        at ``strength``, read at the working size. Some 32-bit payloads suit a picture better than others."""
        cv2, (enc, dec) = _cv2(), _riva_sessions()
        n = self.work_size
        small = frame if frame.shape[:2] == (n, n) else cv2.resize(frame, (n, n), interpolation=cv2.INTER_AREA)
        bits = np.array(id_to_bits(mark_id), dtype=np.float32)
        out = enc.run(None, {"frame": self._tensor(small), "data": bits[None]})[0]
        marked = (np.clip(out[0, :, 0], -1.0, 1.0).transpose(1, 2, 0) + 1.0) * 127.5
        k = self.strength if strength is None else strength
        trial = np.clip(small + (marked - small) * k, 0, 255).round().astype(np.uint8)
        return float(np.min(dec.run(None, {"frame": self._tensor(trial)})[0][0] * (bits * 2 - 1)))

    def embed(self, frame: np.ndarray, mark_id: int, residual: np.ndarray | None = None) -> np.ndarray:
        residual = self.residual(frame, mark_id) if residual is None else residual
        return np.clip(frame.astype(np.float32) + residual, 0, 255).round().astype(np.uint8)

    def scores(self, frame: np.ndarray) -> np.ndarray:
        cv2, (_, dec) = _cv2(), _riva_sessions()
        n = self.work_size
        if frame.shape[:2] != (n, n):
            frame = cv2.resize(frame, (n, n), interpolation=cv2.INTER_AREA)
        logits = dec.run(None, {"frame": self._tensor(frame)})[0][0].astype(np.float64)
        return (1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))).astype(np.float32)  # the decoder gives logits


@dataclass
class DwtDct:
    """invisible-watermark's dwtDct on the full frame (U and V channels, 4×4 blocks, scale 36)."""

    name: str = "dwtDct"
    work_size: int | None = None

    def _check(self, frame: np.ndarray) -> None:
        if frame.shape[0] * frame.shape[1] < MIN_DWT * MIN_DWT:
            raise ValueError(f"dwtDct needs frames of at least {MIN_DWT}×{MIN_DWT} pixels, got {frame.shape[1]}×{frame.shape[0]}")

    def embed(self, frame: np.ndarray, mark_id: int) -> np.ndarray:
        self._check(frame)
        cv2 = _cv2()
        bgr = heavy.imwatermark_maxdct()(id_to_bits(mark_id), wmLen=PAYLOAD_BITS).encode(frame[:, :, ::-1].copy())
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def scores(self, frame: np.ndarray) -> np.ndarray:
        if frame.shape[0] * frame.shape[1] < MIN_DWT * MIN_DWT:
            return np.full(PAYLOAD_BITS, 0.5, dtype=np.float32)  # too small to carry it: no information
        emb = heavy.imwatermark_maxdct()([], wmLen=PAYLOAD_BITS)
        # its decode thresholds the mean block score; recompute the soft means the same way
        yuv = _cv2().cvtColor(frame[:, :, ::-1].copy(), _cv2().COLOR_BGR2YUV)
        pywt = heavy.pywt()
        scores = [[] for _ in range(PAYLOAD_BITS)]
        for channel, scale in ((1, 36),):
            r, c = yuv.shape[0] // 4 * 4, yuv.shape[1] // 4 * 4
            ca1, _ = pywt.dwt2(yuv[:r, :c, channel], "haar")
            scores = emb.decode_frame(ca1, scale, scores)
        return np.array([np.mean(s) for s in scores], dtype=np.float32)


def watermarker(method: str = "rivaGan", strength: float = 1.0, max_strength: float = 3.0) -> Watermarker:
    if method == "rivaGan":
        return RivaGan(strength=strength, max_strength=max_strength)
    if method == "dwtDct":
        return DwtDct()
    raise ValueError(f"unknown watermark method {method!r}: one of {', '.join(METHODS)}")


def embedder(wm: Watermarker, mark_id: int, every: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """The per-frame filter the encoder runs between decoding and the final encode. For rivaGan the residual is
    computed on every ``every``-th frame and added to the frames up to the next one (neighbouring frames show
    nearly the same picture, and a 16 fps clip converted to 24 or 30 fps repeats frames anyway)."""
    if not isinstance(wm, RivaGan) or every <= 1:
        return lambda frame: wm.embed(frame, mark_id)
    state = {"n": 0, "residual": None}

    def mark(frame: np.ndarray) -> np.ndarray:
        if state["n"] % every == 0 or state["residual"] is None or state["residual"].shape[:2] != frame.shape[:2]:
            state["residual"] = wm.residual(frame, mark_id)
        state["n"] += 1
        return wm.embed(frame, mark_id, state["residual"])
    return mark


def read_frames(path: Path, size: int | None, max_frames: int = 0, fps: float | None = None):  # noqa: ANN201
    """Yield (seconds, RGB frame) from a video, resized to ``size``×``size`` (None: as stored); every frame,
    or about ``fps`` per second; at most ``max_frames`` (0: all)."""
    n, next_t = 0, 0.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.time) if frame.time is not None else n / 16.0
            if fps and t + 1e-6 < next_t:
                continue
            next_t = t + 1.0 / fps if fps else 0.0
            kw = {"width": size, "height": size, "interpolation": "AREA"} if size else {}
            yield t, frame.to_ndarray(format="rgb24", **kw)
            n += 1
            if max_frames and n >= max_frames:
                return


def read_scores(wm: Watermarker, path: Path, max_frames: int = 0) -> list[np.ndarray]:
    """The watermark's soft scores of every frame of a file (up to ``max_frames``)."""
    return [wm.scores(f) for _, f in read_frames(path, wm.work_size, max_frames)]
