"""The detectors that ship with the install, on onnxruntime (CPU, one intra-op thread): NudeNet's 320-pixel
nudity detector and RapidOCR's PP-OCRv4 text detection and recognition. Their weights come inside their
wheels (``nudenet/320n.onnx``, ``rapidocr_onnxruntime/models/*.onnx``): nothing is downloaded.

Each is a backend of :class:`adapters.qc_models.Models` (kinds ``nudity`` and ``ocr``; the methods are the
protocols in :mod:`governance.qc.onscreen`). Images come in as RGB arrays; boxes go out as ``[x, y, w, h]``
in fractions of the image's width and height, so they can be drawn on a frame of any size. ``judge`` says
which detector produced a result: package, version and the sha256 of each weight file.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from core import heavy
from core.files import sha256_file

NUDENET_SIDE = 320  # the bundled model's input size
OCR_DET_SIDE = 480  # the text detector's input: short side scaled up to at least this (832x480 stays as it is)


def judge_of(package: str, weights: list[Path]) -> dict[str, Any]:
    """What a detector's results record about it: package, version, weight files and their sha256."""
    return {"detector": package, "version": version(package),
            "weights": {p.name: sha256_file(p) for p in weights}}


def _frac_box(x0: float, y0: float, x1: float, y1: float, w: int, h: int) -> list[float]:
    x0, x1 = max(0.0, min(float(x0), w)), max(0.0, min(float(x1), w))
    y0, y1 = max(0.0, min(float(y0), h)), max(0.0, min(float(y1), h))
    return [round(x0 / w, 4), round(y0 / h, 4), round((x1 - x0) / w, 4), round((y1 - y0) / h, 4)]


def _session(path: Path) -> Any:
    ort = heavy.onnxruntime()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class NudeNet:
    """NudeNet 3.4's bundled detector: per image, ``{"label", "score", "box"}`` for each detection
    (its own pre- and post-processing: square padding, 320-pixel input, score >= 0.2, NMS)."""

    def __init__(self) -> None:
        self.nn = heavy.nudenet()
        weights = Path(self.nn.__file__).parent / "320n.onnx"
        self.session = _session(weights)
        self.input = self.session.get_inputs()[0].name
        self.judge = judge_of("nudenet", [weights])

    def detect(self, images: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        out = []
        for rgb in images:
            bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # NudeNet reads images as OpenCV does
            blob, x_ratio, y_ratio, x_pad, y_pad, w, h = self.nn._read_image(bgr, NUDENET_SIDE)
            raw = self.session.run(None, {self.input: blob})
            found = self.nn._postprocess(raw, x_pad, y_pad, x_ratio, y_ratio, w, h, NUDENET_SIDE, NUDENET_SIDE)
            out.append([{"label": d["class"], "score": round(float(d["score"]), 4),
                         "box": _frac_box(d["box"][0], d["box"][1], d["box"][0] + d["box"][2],
                                          d["box"][1] + d["box"][3], w, h)} for d in found])
        return out


class RapidOcr:
    """RapidOCR 1.4 (PP-OCRv4 detector and recogniser, no angle classifier): per image, ``{"text", "score",
    "box"}`` for every text region the detector finds, whatever the recogniser's confidence."""

    def __init__(self) -> None:
        rapidocr = heavy.rapidocr()
        heavy.onnxruntime()  # quiet its logger before the sessions are made
        self.engine = rapidocr.RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1, text_score=0.0,
                                        det_limit_side_len=OCR_DET_SIDE, det_limit_type="min", use_cls=False)
        models = Path(rapidocr.__file__).parent / "models"
        self.judge = judge_of("rapidocr-onnxruntime", [models / "ch_PP-OCRv4_det_infer.onnx",
                                                       models / "ch_PP-OCRv4_rec_infer.onnx"])

    def read(self, images: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        out = []
        for rgb in images:
            h, w = rgb.shape[:2]
            found, _ = self.engine(np.ascontiguousarray(rgb[:, :, ::-1]), use_cls=False)
            regions = []
            for quad, text, score in found or []:
                q = np.asarray(quad, dtype=np.float64)
                regions.append({"text": str(text), "score": round(float(score), 4),
                                "box": _frac_box(q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max(), w, h)})
            out.append(regions)
        return out
