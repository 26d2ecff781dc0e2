"""Semantic checks and the visual brand-safety hooks, on frames sampled evenly from the clip.

Each check returns "not run" with the reason when its model is not configured or cannot load, or
when it has nothing to measure against (no prompt); the brand profile decides what that means.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from governance.qc.base import Clip, CheckResult, not_run
from governance.qc.models import Models, ModelUnavailable

SAMPLE_FRAMES = 8


class Frames:
    """Sampled frames of one clip, with their CLIP features computed once for all the checks."""

    def __init__(self, clip: Clip, models: Models) -> None:
        self.clip, self.models = clip, models
        self.index = clip.sample(SAMPLE_FRAMES)
        self.images = [clip.thumbs[i] for i in self.index]
        self.times = [round(float(clip.times[i]), 3) for i in self.index]

    @cached_property
    def clip_features(self) -> np.ndarray:
        return self.models.get("clip").image_features(self.images)


def _failure(check: str, exc: Exception) -> CheckResult:
    if isinstance(exc, ModelUnavailable):
        return not_run(check, str(exc))
    return not_run(check, f"model failed on this clip: {type(exc).__name__}: {exc}")


def text_video_alignment(f: Frames, p: dict[str, Any], prompt: str | None) -> CheckResult:
    if not prompt or not prompt.strip():
        return not_run("text_video_alignment", "no prompt given")
    try:
        sims = f.clip_features @ f.models.get("clip").text_features([prompt])[0]
    except Exception as exc:  # noqa: BLE001
        return _failure("text_video_alignment", exc)
    value = float(sims.mean())
    worst = int(np.argmin(sims))
    return CheckResult("text_video_alignment", value >= p["min_similarity"], round(value, 4), p["min_similarity"], {
        "message": f"CLIP similarity of prompt and frames {value:.3f} (lowest {sims[worst]:.3f} at {f.times[worst]:.2f} s)",
        "per_frame": [round(float(s), 4) for s in sims], "times": f.times})


def aesthetic_score(f: Frames, p: dict[str, Any]) -> CheckResult:
    try:
        predictor = f.models.get("aesthetic")
        feats = f.clip_features
        if getattr(predictor, "dim", feats.shape[1]) != feats.shape[1]:
            return not_run("aesthetic_score", f"the aesthetic predictor expects {predictor.dim}-dim CLIP embeddings, "
                                              f"the CLIP model gives {feats.shape[1]}")
        scores = np.asarray(predictor.score(feats), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001
        return _failure("aesthetic_score", exc)
    value = float(scores.mean())
    return CheckResult("aesthetic_score", value >= p["min_score"], round(value, 4), p["min_score"], {
        "message": f"aesthetic score {value:.2f} (mean of {len(scores)} frames)",
        "per_frame": [round(float(s), 4) for s in scores], "times": f.times})


def subject_consistency(f: Frames, p: dict[str, Any]) -> CheckResult:
    """VBench-style: each frame against the first and the previous one, averaged."""
    if len(f.images) < 2:
        return not_run("subject_consistency", "needs at least 2 frames")
    try:
        try:
            feats, source = f.models.get("subject").features(f.images), "subject"
        except ModelUnavailable as first:
            try:
                feats, source = f.clip_features, "clip"
            except ModelUnavailable:
                raise ModelUnavailable(f"{first}, and no CLIP model to fall back on") from None
    except Exception as exc:  # noqa: BLE001
        return _failure("subject_consistency", exc)
    to_first = feats[1:] @ feats[0]
    to_prev = (feats[1:] * feats[:-1]).sum(axis=1)
    per = (to_first + to_prev) / 2
    value = float(per.mean())
    worst = int(np.argmin(per)) + 1
    return CheckResult("subject_consistency", value >= p["min_similarity"], round(value, 4), p["min_similarity"], {
        "message": f"subject consistency {value:.3f} ({source} features; lowest at {f.times[worst]:.2f} s)",
        "features": source, "per_frame": [round(float(s), 4) for s in per], "times": f.times[1:]})


def unsafe_content(f: Frames, p: dict[str, Any]) -> CheckResult:
    try:
        model = f.models.get("safety")
        wanted = {u.casefold() for u in p["unsafe_labels"]}
        cols = [i for i, label in enumerate(model.labels) if label.casefold() in wanted]
        if not cols:
            return not_run("unsafe_content", f"the classifier's labels {model.labels} include none of the "
                                             f"brand's unsafe labels {p['unsafe_labels']}")
        prob = np.asarray(model.probabilities(f.images))[:, cols].sum(axis=1)
    except Exception as exc:  # noqa: BLE001
        return _failure("unsafe_content", exc)
    worst = int(np.argmax(prob))
    value = float(prob[worst])
    return CheckResult("unsafe_content", value <= p["max_probability"], round(value, 4), p["max_probability"], {
        "message": f"unsafe probability {value:.2f} at {f.times[worst]:.2f} s "
                   f"(labels {', '.join(model.labels[c] for c in cols)})",
        "per_frame": [round(float(x), 4) for x in prob], "times": f.times})


def forbidden_elements(f: Frames, p: dict[str, Any], elements: tuple[str, ...]) -> CheckResult:
    if not elements:
        return CheckResult("forbidden_elements", True, None, p["max_similarity"],
                           {"message": "nothing to check: the brand lists no forbidden elements"})
    try:
        sims = f.clip_features @ f.models.get("clip").text_features([f"a photo of {e}" for e in elements]).T
    except Exception as exc:  # noqa: BLE001
        return _failure("forbidden_elements", exc)
    per_element = sims.max(axis=0)
    hit = per_element > p["max_similarity"]
    worst = int(np.argmax(per_element))
    found = [{"element": e, "similarity": round(float(s), 4), "at": f.times[int(np.argmax(sims[:, j]))]}
             for j, (e, s) in enumerate(zip(elements, per_element))]
    msg = ("possibly shows " + ", ".join(f"{x['element']!r} ({x['similarity']:.2f} at {x['at']:.2f} s)"
                                         for x, h in zip(found, hit) if h)) if hit.any() else \
        f"no forbidden element recognised (closest {elements[worst]!r}, {per_element[worst]:.2f})"
    return CheckResult("forbidden_elements", not hit.any(), round(float(per_element[worst]), 4), p["max_similarity"],
                       {"message": msg, "elements": found})
