"""Checks that need models, on frames sampled evenly from the clip: the visual brand-safety hooks
(unsafe and suggestive content, forbidden elements) and the semantic checks (text-video alignment,
aesthetic score, subject consistency).

Unsafe content runs out of the box: NudeNet (``nudity``, shipped with the install) on the stills, its
classes mapped to outcomes by the brand (``exposed_labels`` fail ``unsafe_content``, which blocks, above
``max_probability``; ``covered_labels`` fail ``suggestive_content``, which needs review, above
``max_covered_score``). A configured
image classifier (``safety``) replaces NudeNet in ``unsafe_content``; ``suggestive_content`` stays NudeNet's.

The models come from the context's :class:`~governance.qc.context.ModelSource` by kind; each kind offers
the methods of its protocol below (loaded from local folders by :mod:`adapters.qc_models`, or anything
with the same methods). Each check returns "not run" with the reason when its model is not configured or
cannot load, or when it has nothing to measure against (no prompt); the brand profile decides what that
means.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from governance.qc.context import CheckContext, ModelUnavailable
from governance.qc.registry import BLOCK, REVIEW, CheckResult, CheckSpec, Param, not_run, register


class ClipModel(Protocol):
    """``clip``: L2-normalised image and text features in one space."""

    def image_features(self, images: list[np.ndarray]) -> np.ndarray: ...

    def text_features(self, texts: list[str]) -> np.ndarray: ...


class AestheticModel(Protocol):
    """``aesthetic``: one score per CLIP embedding (an optional ``dim`` says which embedding size it expects)."""

    def score(self, embeddings: np.ndarray) -> np.ndarray: ...


class SubjectModel(Protocol):
    """``subject``: L2-normalised image features (DINO/DINOv2 or CLIP)."""

    def features(self, images: list[np.ndarray]) -> np.ndarray: ...


class NudityDetector(Protocol):
    """``nudity``: per image, detections ``{"label", "score", "box"}`` (box ``[x, y, w, h]`` in fractions of the
    image), and ``judge`` (which detector: package, version, weight sha256)."""

    judge: dict

    def detect(self, images: list[np.ndarray]) -> list[list[dict]]: ...


class SafetyModel(Protocol):
    """``safety``: an image classifier, its ``labels`` and one probability per label and image."""

    labels: list[str]

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray: ...


def _failure(check: str, exc: Exception) -> CheckResult:
    if isinstance(exc, ModelUnavailable):
        return not_run(check, str(exc))
    return not_run(check, f"model failed on this clip: {type(exc).__name__}: {exc}")


EXPOSED = ["FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED",
           "ANUS_EXPOSED"]
COVERED = ["FEMALE_GENITALIA_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED", "ANUS_COVERED"]


def nudity_result(check: str, per_image: list[list[dict]], times: list[float], labels: list[str],
                  max_score: float, judge: dict | None) -> CheckResult:
    """A nudity check's result from detections: the detections of ``labels`` scoring above ``max_score``
    are its findings (frame time and box each); the value is the highest score of those labels."""
    wanted = {x.upper() for x in labels}
    hits = [{"time": t, "label": d["label"], "score": d["score"], "box": d["box"]}
            for t, found in zip(times, per_image) for d in found if d["label"].upper() in wanted]
    value = max((h["score"] for h in hits), default=0.0)
    over = [h for h in hits if h["score"] > max_score]
    msg = ("; ".join(f"{h['label']} ({h['score']:.2f}) at {h['time']:.2f} s" for h in over) if over
           else f"nothing found in {len(times)} frames (highest {value:.2f})")
    return CheckResult(check, not over, round(value, 4), max_score,
                       {"message": msg, "boxes": over, "frames": len(times), "times": times}, judge)


def _nudenet(ctx: CheckContext, check: str, labels: list[str], max_score: float) -> CheckResult:
    if ctx.clip.stills is None:
        return not_run(check, "no frames decoded for the detectors")
    try:
        per_image, judge = ctx.nudity
    except Exception as exc:  # noqa: BLE001
        return _failure(check, exc)
    return nudity_result(check, per_image, ctx.still_times, labels, max_score, judge)


@register(CheckSpec("unsafe_content", "brand", "unsafe content (NudeNet's exposed classes, or a configured classifier)", {
    "max_probability": Param(0.5, 0, 1, "NudeNet: an exposed-class detection scoring above this fails; "
                                        "classifier: an unsafe probability above this fails"),
    "exposed_labels": Param(EXPOSED),
    "unsafe_labels": Param(["nsfw", "porn", "hentai", "sexy", "unsafe", "violence", "gore"])},
    "max_probability", "max", BLOCK, REVIEW, "score"))
def unsafe_content(ctx: CheckContext) -> CheckResult:
    p = ctx.params["unsafe_content"]
    if not ctx.models.configured("safety"):
        return _nudenet(ctx, "unsafe_content", p["exposed_labels"], p["max_probability"])
    try:
        model: SafetyModel = ctx.models.get("safety")
        wanted = {u.casefold() for u in p["unsafe_labels"]}
        cols = [i for i, label in enumerate(model.labels) if label.casefold() in wanted]
        if not cols:
            return not_run("unsafe_content", f"the classifier's labels {model.labels} include none of the "
                                             f"brand's unsafe labels {p['unsafe_labels']}")
        prob = np.asarray(model.probabilities(ctx.sample_images))[:, cols].sum(axis=1)
    except Exception as exc:  # noqa: BLE001
        return _failure("unsafe_content", exc)
    worst = int(np.argmax(prob))
    value = float(prob[worst])
    return CheckResult("unsafe_content", value <= p["max_probability"], round(value, 4), p["max_probability"], {
        "message": f"unsafe probability {value:.2f} at {ctx.sample_times[worst]:.2f} s "
                   f"(labels {', '.join(model.labels[c] for c in cols)})",
        "per_frame": [round(float(x), 4) for x in prob], "times": ctx.sample_times}, getattr(model, "judge", None))


@register(CheckSpec("suggestive_content", "brand", "suggestive content (NudeNet's covered classes)", {
    "max_covered_score": Param(0.5, 0, 1, "a covered-class detection scoring above this fails"),
    "covered_labels": Param(COVERED)}, "max_covered_score", "max", REVIEW, REVIEW, "score"))
def suggestive_content(ctx: CheckContext) -> CheckResult:
    p = ctx.params["suggestive_content"]
    return _nudenet(ctx, "suggestive_content", p["covered_labels"], p["max_covered_score"])


@register(CheckSpec("forbidden_elements", "brand", "forbidden elements (zero-shot CLIP)", {
    "max_similarity": Param(0.3, -1, 1)}, "max_similarity", "max", REVIEW, REVIEW, "cosine"))
def forbidden_elements(ctx: CheckContext) -> CheckResult:
    p, elements, times = ctx.params["forbidden_elements"], ctx.brand.forbidden_elements, ctx.sample_times
    if not elements:
        return CheckResult("forbidden_elements", True, None, p["max_similarity"],
                           {"message": "nothing to check: the brand lists no forbidden elements"})
    try:
        clip: ClipModel = ctx.models.get("clip")
        sims = ctx.clip_features @ clip.text_features([f"a photo of {e}" for e in elements]).T
    except Exception as exc:  # noqa: BLE001
        return _failure("forbidden_elements", exc)
    per_element = sims.max(axis=0)
    hit = per_element > p["max_similarity"]
    worst = int(np.argmax(per_element))
    found = [{"element": e, "similarity": round(float(s), 4), "at": times[int(np.argmax(sims[:, j]))]}
             for j, (e, s) in enumerate(zip(elements, per_element))]
    msg = ("possibly shows " + ", ".join(f"{x['element']!r} ({x['similarity']:.2f} at {x['at']:.2f} s)"
                                         for x, h in zip(found, hit) if h)) if hit.any() else \
        f"no forbidden element recognised (closest {elements[worst]!r}, {per_element[worst]:.2f})"
    return CheckResult("forbidden_elements", not hit.any(), round(float(per_element[worst]), 4), p["max_similarity"],
                       {"message": msg, "elements": found})


@register(CheckSpec("text_video_alignment", "semantic", "text-video alignment (CLIP similarity of prompt and frames)",
                    {"min_similarity": Param(0.2, -1, 1)}, "min_similarity", "min", REVIEW, REVIEW, "cosine"))
def text_video_alignment(ctx: CheckContext) -> CheckResult:
    p, prompt, times = ctx.params["text_video_alignment"], ctx.prompt, ctx.sample_times
    if not prompt or not prompt.strip():
        return not_run("text_video_alignment", "no prompt given")
    try:
        clip: ClipModel = ctx.models.get("clip")
        sims = ctx.clip_features @ clip.text_features([prompt])[0]
    except Exception as exc:  # noqa: BLE001
        return _failure("text_video_alignment", exc)
    value = float(sims.mean())
    worst = int(np.argmin(sims))
    return CheckResult("text_video_alignment", value >= p["min_similarity"], round(value, 4), p["min_similarity"], {
        "message": f"CLIP similarity of prompt and frames {value:.3f} (lowest {sims[worst]:.3f} at {times[worst]:.2f} s)",
        "per_frame": [round(float(s), 4) for s in sims], "times": times})


@register(CheckSpec("aesthetic_score", "semantic", "aesthetic score (LAION-style predictor on CLIP embeddings)",
                    {"min_score": Param(4.5, None, None)}, "min_score", "min", REVIEW, REVIEW, "score"))
def aesthetic_score(ctx: CheckContext) -> CheckResult:
    p = ctx.params["aesthetic_score"]
    try:
        predictor: AestheticModel = ctx.models.get("aesthetic")
        feats = ctx.clip_features
        if getattr(predictor, "dim", feats.shape[1]) != feats.shape[1]:
            return not_run("aesthetic_score", f"the aesthetic predictor expects {predictor.dim}-dim CLIP embeddings, "
                                              f"the CLIP model gives {feats.shape[1]}")
        scores = np.asarray(predictor.score(feats), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001
        return _failure("aesthetic_score", exc)
    value = float(scores.mean())
    return CheckResult("aesthetic_score", value >= p["min_score"], round(value, 4), p["min_score"], {
        "message": f"aesthetic score {value:.2f} (mean of {len(scores)} frames)",
        "per_frame": [round(float(s), 4) for s in scores], "times": ctx.sample_times})


@register(CheckSpec("subject_consistency", "semantic", "subject consistency across frames (DINO or CLIP features)",
                    {"min_similarity": Param(0.8, -1, 1)}, "min_similarity", "min", REVIEW, REVIEW, "cosine"))
def subject_consistency(ctx: CheckContext) -> CheckResult:
    """VBench-style: each frame against the first and the previous one, averaged."""
    p, images, times = ctx.params["subject_consistency"], ctx.sample_images, ctx.sample_times
    if len(images) < 2:
        return not_run("subject_consistency", "needs at least 2 frames")
    try:
        try:
            subject: SubjectModel = ctx.models.get("subject")
            feats, source = subject.features(images), "subject"
        except ModelUnavailable as first:
            try:
                feats, source = ctx.clip_features, "clip"
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
        "message": f"subject consistency {value:.3f} ({source} features; lowest at {times[worst]:.2f} s)",
        "features": source, "per_frame": [round(float(s), 4) for s in per], "times": times[1:]})
