"""Model-free VBench dimensions: dynamic degree, motion smoothness and imaging quality, each spec right above its
function. No weights: optical flow is OpenCV's DIS (dense inverse search, ultrafast preset) on the motion luma
(:attr:`~governance.qc.clip.Clip.small`, short side at most 120 px), imaging quality is PIQE (a no-reference,
training-free score, ``pypiqe``) on frames sampled from the 240-pixel luma. Both libraries load through
:mod:`core.heavy`. Thresholds are per brand like every check's (``checks:`` in the brand profile).

- **dynamic degree** (VBench: RAFT flow, a clip is dynamic when enough frame pairs move): the share of
  consecutive frame pairs whose strongest motion (mean of the top 5 % flow magnitudes) exceeds ``min_flow`` of
  the frame's short side. A near-static clip is a finding only when the prompt asks for motion (one of the
  brand's ``motion_words``); otherwise the figure is recorded and the check passes, saying so.
- **motion smoothness** (VBench: a frame-interpolation model predicts the dropped odd frames): each odd frame is
  predicted from its two neighbours moved half-way along the flow between them; the score is 1 - mean absolute
  error / 255 (1: motion as smooth as interpolation predicts, as in VBench).
- **imaging quality** (VBench: MUSIQ, a trained model): PIQE, 0 (best) to 100; MATLAB's bands: up to 20
  excellent, 35 good, 50 fair, 80 poor, above bad. Chosen by measurement (docs/performance.md): piq's BRISQUE
  downloads its SVR weights at run time and pyiqa's NIQE/BRISQUE their parameter files; PIQE needs none and
  takes about 15 ms a 240-pixel frame.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np

from core import heavy
from governance.qc.clip import rounded
from governance.qc.context import CheckContext
from governance.qc.registry import PASS, REVIEW, CheckResult, CheckSpec, Param, not_run, register

TOP_SHARE = 0.05  # VBench's dynamic degree: the mean of the top 5 % flow magnitudes of a frame pair
QUALITY_FRAMES = 8  # frames PIQE scores (sampled evenly)
MOTION_WORDS = [
    "run", "runs", "running", "runner", "runners", "sprint", "sprints", "sprinting", "walk", "walks", "walking",
    "spin", "spins", "spinning", "rotate", "rotates", "rotating", "turning", "dance", "dances", "dancing", "jump",
    "jumps", "jumping", "fly", "flies", "flying", "drive", "drives", "driving", "race", "races", "racing", "move",
    "moves", "moving", "wave", "waves", "waving", "pour", "pours", "pouring", "splash", "splashing", "fall", "falls",
    "falling", "swim", "swims", "swimming", "ride", "rides", "riding", "chase", "chasing", "zoom", "zooming", "pan",
    "panning", "orbit", "orbiting", "dolly", "tracking shot", "slow motion", "time-lapse", "timelapse",
    "走", "歩", "踊", "回転", "飛", "泳", "流れ", "揺れ", "駆け",
]


@cache
def _word_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """Whole words (any case) for words in Latin script; a plain substring for the others (CJK has no spaces)."""
    parts = [rf"\b{re.escape(w)}\b" if w.isascii() else re.escape(w) for w in words]
    return re.compile("|".join(parts) or r"(?!)", re.IGNORECASE)


def motion_asked(prompt: str | None, words: list[str]) -> list[str]:
    """The brand's motion words found in ``prompt`` (lower-cased, in order of appearance)."""
    if not prompt:
        return []
    return list(dict.fromkeys(m.group(0).casefold() for m in _word_pattern(tuple(words)).finditer(prompt)))


def _flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense optical flow (H, W, 2) from luma ``a`` to ``b`` (uint8): OpenCV's DIS, ultrafast preset."""
    cv2 = heavy.cv2()
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST).calc(a, b, None)


def _luma8(ctx: CheckContext) -> np.ndarray:
    return ctx.clip.small.round().astype(np.uint8)


@register(CheckSpec("dynamic_degree", "quality", "dynamic degree: a near-static clip when the prompt asks for "
                    "motion (optical flow, VBench-style)", {
    "min_moving": Param(0.25, 0, 1, "share of frame pairs that must move when the prompt asks for motion"),
    "min_flow": Param(0.01, 0, 1, "a pair moves when its top 5 % flow magnitudes exceed this share of the short "
                                  "side"),
    "motion_words": Param(MOTION_WORDS, help="words in a prompt that ask for motion")},
    "min_moving", "min", REVIEW, PASS, "share of frame pairs"))
def dynamic_degree(ctx: CheckContext) -> CheckResult:
    clip, p = ctx.clip, ctx.params["dynamic_degree"]
    usable = np.flatnonzero(clip.pairs(ctx.black)) if clip.frames >= 2 else np.zeros(0, int)
    if not len(usable) or min(clip.small.shape[1:]) < 8:
        return not_run("dynamic_degree", "no two consecutive frames that are not black")
    luma, side = _luma8(ctx), min(clip.small.shape[1:])
    strength = []
    for i in usable:
        mag = np.linalg.norm(_flow(luma[i], luma[i + 1]), axis=2).ravel()
        k = max(1, int(len(mag) * TOP_SHARE))
        strength.append(float(np.partition(mag, -k)[-k:].mean()) / side)
    strength_a = np.asarray(strength)
    moving = float((strength_a > p["min_flow"]).mean())
    asked = motion_asked(ctx.prompt, p["motion_words"])
    ok = moving >= p["min_moving"] or not asked
    msg = (f"{moving:.0%} of {len(usable)} frame pairs move (strongest motion, median {np.median(strength_a):.2%} "
           f"of the short side per frame)")
    msg += (f"; the prompt asks for motion ({', '.join(asked[:3])})" if asked else
            "; the prompt asks for no motion" if ctx.prompt else "; no prompt: motion not asked for") + \
        ("" if ok else ": the clip is nearly static")
    return CheckResult("dynamic_degree", ok, rounded(moving), p["min_moving"], {
        "message": msg, "motion_requested": bool(asked), "motion_words": asked,
        "median_flow_share": rounded(np.median(strength_a)), "pairs": len(usable)})


@register(CheckSpec("motion_smoothness", "quality", "motion smoothness: frames as interpolation predicts them "
                    "(optical flow, VBench-style)", {"min_score": Param(0.9, 0, 1)},
                    "min_score", "min", REVIEW, REVIEW, "score"))
def motion_smoothness(ctx: CheckContext) -> CheckResult:
    """Each odd frame t, between two frames that are not black, predicted from t-1 and t+1 moved half-way along
    the flow from t-1 to t+1 (the mean of the two warps); score = 1 - mean |prediction - frame| / 255."""
    clip, p = ctx.clip, ctx.params["motion_smoothness"]
    ok_frame = ~ctx.black
    triples = [t for t in range(1, clip.frames - 1, 2) if ok_frame[t - 1] and ok_frame[t] and ok_frame[t + 1]]
    if not triples or min(clip.small.shape[1:]) < 8:
        return not_run("motion_smoothness", "needs three consecutive frames that are not black")
    cv2, luma = heavy.cv2(), _luma8(ctx)
    h, w = luma.shape[1:]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    errors = []
    for t in triples:
        half = _flow(luma[t - 1], luma[t + 1]) / 2
        before = cv2.remap(luma[t - 1], gx - half[..., 0], gy - half[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        after = cv2.remap(luma[t + 1], gx + half[..., 0], gy + half[..., 1], cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
        predicted = (before.astype(np.float32) + after) / 2
        errors.append(float(np.abs(predicted - luma[t]).mean()))
    scores = 1 - np.asarray(errors) / 255
    value = float(scores.mean())
    worst = triples[int(np.argmin(scores))]
    return CheckResult("motion_smoothness", value >= p["min_score"], rounded(value), p["min_score"], {
        "message": f"motion smoothness {value:.3f} over {len(triples)} interpolated frames (least smooth "
                   f"{scores.min():.3f} at {clip.times[worst]:.2f} s)",
        "least_smooth": rounded(scores.min()), "frames_measured": len(triples)})


@register(CheckSpec("imaging_quality", "quality", "imaging quality: PIQE no-reference score (0 best, 100 worst)",
                    {"max_piqe": Param(90, 0, 100, "PIQE bands: 20 excellent, 35 good, 50 fair, 80 poor, above bad")},
                    "max_piqe", "max", REVIEW, PASS, "PIQE"))
def imaging_quality(ctx: CheckContext) -> CheckResult:
    """PIQE (perception-based image quality evaluator; no training, no weights) on up to 8 frames that are not
    black, sampled evenly, on the 240-pixel luma; the clip's score is the mean over the frames PIQE finds
    something to judge in (a frame without one active 16x16 block, such as a smooth gradient, is left out).

    The default threshold only flags bad pictures (PIQE's own bands were drawn on natural images, where a clean
    photograph scores about 20 and heavy blur 90-100; synthetic test patterns score 75-85): a brand sets its own
    (``checks: {imaging_quality: {max_piqe: 50}}``), for example from `wanflow qc agreement`'s suggestion."""
    clip, p = ctx.clip, ctx.params["imaging_quality"]
    idx = np.flatnonzero(~ctx.black)
    if not len(idx) or min(clip.mid.shape[1:]) < 32:
        return not_run("imaging_quality", "no frame that is not black, at least 32 pixels on its short side")
    idx = idx[np.unique(np.linspace(0, len(idx) - 1, min(QUALITY_FRAMES, len(idx))).round().astype(int))]
    piqe = heavy.pypiqe()
    judged = [(i, float(score)) for i in idx for score, active, *_ in [piqe(clip.mid[i])] if active.any()]
    if not judged:
        return not_run("imaging_quality", f"PIQE found no detail to judge in the {len(idx)} frames sampled "
                                          "(smooth or flat pictures)")
    scores = np.asarray([s for _, s in judged])
    value = float(scores.mean())
    worst = int(np.argmax(scores))
    return CheckResult("imaging_quality", value <= p["max_piqe"], rounded(value, 2), p["max_piqe"], {
        "message": f"PIQE {value:.1f} (mean of {len(judged)} frames; worst {scores[worst]:.1f} at "
                   f"{clip.times[judged[worst][0]]:.2f} s)",
        "per_frame": [rounded(s, 2) for s in scores], "times": [rounded(clip.times[i], 3) for i, _ in judged]})
