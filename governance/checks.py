"""The QC checks wanflow runs: what each catches, its parameters with defaults and bounds, and what a
failure or a check that could not run means unless the brand profile says otherwise.

A brand profile (``checks:`` in ``brands/<name>.yaml``) may override any parameter and the two
outcomes of any check listed here; an unknown check or parameter, or a value out of bounds, is an
error. Outcomes: ``pass``, ``needs_review`` (a person looks, with the findings), ``block``
(auto-rejected with readable reasons). In a profile they are written ``pass`` / ``review`` / ``block``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASS, REVIEW, BLOCK = "pass", "needs_review", "block"
OUTCOMES = (PASS, REVIEW, BLOCK)
PROFILE_OUTCOMES = {"pass": PASS, "review": REVIEW, "block": BLOCK}
SEVERITY = {PASS: 0, REVIEW: 1, BLOCK: 2}
GROUPS = ("technical", "brand", "semantic")


@dataclass(frozen=True)
class Param:
    """A check parameter: a number within [lo, hi], or a list of strings (``default`` is a list)."""

    default: Any
    lo: float | None = 0.0
    hi: float | None = None
    help: str = ""


@dataclass(frozen=True)
class CheckSpec:
    """One check. ``threshold`` names the parameter reported as the result's threshold; ``direction``
    says how the value must compare with it to pass (``max``: value <= threshold, ``min``: >=)."""

    name: str
    group: str
    title: str
    params: dict[str, Param] = field(default_factory=dict)
    threshold: str | None = None
    direction: str | None = None
    on_fail: str = REVIEW
    on_not_run: str = REVIEW
    unit: str = ""
    fixed_on_fail: bool = False  # a hard limit: a profile may not soften what a failure means


def _n(default: float, lo: float | None = 0.0, hi: float | None = None, help: str = "") -> Param:
    return Param(default, lo, hi, help)


SPECS: tuple[CheckSpec, ...] = (
    # --- technical: the file and the picture -----------------------------------------------------
    CheckSpec("decodable", "technical", "the file decodes as video", on_fail=BLOCK, on_not_run=BLOCK,
              fixed_on_fail=True, unit="frames"),
    CheckSpec("container", "technical", "container, codec and pixel format are the delivery ones", {
        "formats": Param(["mp4", "mov"], help="container formats (ffmpeg demuxer names)"),
        "codecs": Param(["h264"], help="video codecs"),
        "pix_fmts": Param(["yuv420p"], help="pixel formats")}, on_fail=BLOCK, on_not_run=BLOCK),
    CheckSpec("size", "technical", "width and height as requested", on_fail=BLOCK, on_not_run=BLOCK, unit="px"),
    CheckSpec("fps", "technical", "frame rate as requested", {"tolerance": _n(0.01, 0, 10)},
              on_fail=BLOCK, on_not_run=BLOCK, unit="fps"),
    CheckSpec("frame_count", "technical", "number of frames as requested", on_fail=BLOCK, on_not_run=BLOCK,
              unit="frames"),
    CheckSpec("duration", "technical", "duration as requested (frames / fps)", {"tolerance_s": _n(0.05, 0, 10)},
              on_fail=BLOCK, on_not_run=BLOCK, unit="s"),
    CheckSpec("black_frames", "technical", "share of black frames", {
        "max_fraction": _n(0.5, 0, 1), "pixel_luma": _n(32, 0, 255, "a pixel this dark (0..255) is black"),
        "pixel_share": _n(0.98, 0, 1, "a frame with this share of black pixels is black")},
        "max_fraction", "max", BLOCK, BLOCK, "share"),
    CheckSpec("black_segments", "technical", "black segments inside the clip", {"max_seconds": _n(0.1)},
              "max_seconds", "max", BLOCK, BLOCK, "s"),
    CheckSpec("frozen_frames", "technical", "frozen or static segments", {
        "max_seconds": _n(0.3), "max_change": _n(0.3, 0, 255, "mean luma change (0..255) below which "
                                                             "two frames count as the same picture")},
        "max_seconds", "max", BLOCK, BLOCK, "s"),
    CheckSpec("flashing", "technical",
              "flashing: WCAG 2.3.1 three general or red flashes in any one second (hard limit)", {
        "max_flashes": _n(3, 0, 3), "min_change": _n(0.1, 0, 1, "relative-luminance change of a transition"),
        "max_dark": _n(0.8, 0, 1, "the darker state must be below this relative luminance")},
        "max_flashes", "max", BLOCK, BLOCK, "flashes/s", fixed_on_fail=True),
    CheckSpec("flicker", "technical", "flicker: short-lived brightness jumps between frames",
              {"max_deviation": _n(6, 0, 255)}, "max_deviation", "max", REVIEW, REVIEW, "luma levels"),
    CheckSpec("exposure", "technical", "exposure clipping: crushed blacks and blown highlights", {
        "max_clipped": _n(0.3, 0, 1), "low": _n(4, 0, 255), "high": _n(251, 0, 255)},
        "max_clipped", "max", REVIEW, REVIEW, "share"),
    CheckSpec("blur", "technical", "blur: variance of the Laplacian", {"min_sharpness": _n(40)},
              "min_sharpness", "min", REVIEW, REVIEW),
    CheckSpec("temporal_instability", "technical", "temporal instability: low structural similarity "
              "between consecutive frames", {"max_unstable": _n(0.25, 0, 1),
                                             "min_similarity": _n(0.5, -1, 1)},
              "max_unstable", "max", REVIEW, REVIEW, "share of frame pairs"),
    CheckSpec("hard_cuts", "technical", "unexpected hard cuts inside a single shot", {
        "max_cuts": _n(0), "min_change": _n(0.5, 0, 2, "1 - correlation of consecutive frames"),
        "min_ratio": _n(4, 1, None, "times the clip's median change")}, "max_cuts", "max", REVIEW, REVIEW, "cuts"),
    # --- brand: the text policy on the prompt and the visual policy --------------------------------
    CheckSpec("text_policy", "brand", "prompt and negative prompt: blocked terms, patterns, competitors",
              on_fail=BLOCK, on_not_run=REVIEW, unit="findings"),
    CheckSpec("sensitive_topics", "brand", "prompt and negative prompt: sensitive topics",
              on_fail=REVIEW, on_not_run=REVIEW, unit="findings"),
    CheckSpec("palette", "brand", "dominant colours against the brand palette (CIEDE2000)", {
        "max_delta_e": _n(20, 0, 200), "min_share": _n(0.3, 0, 1), "colors": _n(6, 1, 16)},
        "min_share", "min", REVIEW, REVIEW, "share"),
    CheckSpec("unsafe_content", "brand", "unsafe content (image classifier)", {
        "max_probability": _n(0.5, 0, 1),
        "unsafe_labels": Param(["nsfw", "porn", "hentai", "sexy", "unsafe", "violence", "gore"])},
        "max_probability", "max", BLOCK, REVIEW, "probability"),
    CheckSpec("forbidden_elements", "brand", "forbidden elements (zero-shot CLIP)", {
        "max_similarity": _n(0.3, -1, 1)}, "max_similarity", "max", REVIEW, REVIEW, "cosine"),
    # --- semantic: models from local folders ---------------------------------------------------------
    CheckSpec("text_video_alignment", "semantic", "text-video alignment (CLIP similarity of prompt and frames)",
              {"min_similarity": _n(0.2, -1, 1)}, "min_similarity", "min", REVIEW, REVIEW, "cosine"),
    CheckSpec("aesthetic_score", "semantic", "aesthetic score (LAION-style predictor on CLIP embeddings)",
              {"min_score": _n(4.5, None, None)}, "min_score", "min", REVIEW, REVIEW, "score"),
    CheckSpec("subject_consistency", "semantic", "subject consistency across frames (DINO or CLIP features)",
              {"min_similarity": _n(0.8, -1, 1)}, "min_similarity", "min", REVIEW, REVIEW, "cosine"),
)
BY_NAME: dict[str, CheckSpec] = {s.name: s for s in SPECS}
CHECK_NAMES: tuple[str, ...] = tuple(s.name for s in SPECS)
TECHNICAL: tuple[str, ...] = tuple(s.name for s in SPECS if s.group == "technical")


def defaults(name: str) -> dict[str, Any]:
    """The default parameters of check ``name``."""
    return {k: (list(p.default) if isinstance(p.default, list) else p.default)
            for k, p in BY_NAME[name].params.items()}
