"""Automatic QC: technical checks, the brand's text and visual policy, and semantic checks.

Every check is a pure function returning a :class:`CheckResult` (check, passed, value, threshold,
details); ``passed=None`` means it did not run and ``details["reason"]`` says why. The brand profile
gives each check its parameters and decides what a failure or a check that could not run means
(:func:`judge`: pass / needs_review / block). The checks and their defaults are listed in
:mod:`governance.checks`; the flow records the results and routes the clip (``wan_tasks.quality``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from governance.brand import BrandProfile, default_profile
from governance.checks import CHECK_NAMES
from governance.qc import color, semantic, technical
from governance.qc.base import DECODE_ERRORS, CheckResult, Clip, Expected, decode, not_run
from governance.qc.models import Models, ModelUnavailable
from governance.qc.text import text_checks
from governance.qc.verdict import Finding, Verdict, judge

__all__ = ["CheckResult", "Clip", "Expected", "Finding", "Models", "ModelUnavailable", "QC_CHECKS", "Verdict",
           "evaluate", "judge", "overall", "run_checks"]

QC_CHECKS = CHECK_NAMES


def _clip_checks(clip: Clip, expected: Expected, brand: BrandProfile, models: Models,
                 prompt: str | None) -> dict[str, Callable[[], CheckResult]]:
    """The checks that look at the picture, as thunks (so only the requested ones run)."""
    p = {name: brand.rule(name).params for name in CHECK_NAMES}
    black = technical.black_mask(clip, p["black_frames"])
    frozen = technical.frozen_pairs(clip, p["frozen_frames"], black)[0] if clip.frames > 1 else np.zeros(0, bool)
    frames = semantic.Frames(clip, models)
    return {
        "decodable": lambda: CheckResult("decodable", True, float(clip.frames), None,
                                         {"message": f"{clip.frames} frames decoded", "frames_decoded": clip.frames}),
        "container": lambda: technical.container(clip, p["container"]),
        "size": lambda: technical.size(clip, expected),
        "fps": lambda: technical.fps(clip, expected, p["fps"]),
        "frame_count": lambda: technical.frame_count(clip, expected),
        "duration": lambda: technical.duration(clip, expected, p["duration"]),
        "black_frames": lambda: technical.black_frames(clip, p["black_frames"], black),
        "black_segments": lambda: technical.black_segments(clip, p["black_segments"], black),
        "frozen_frames": lambda: technical.frozen_frames(clip, p["frozen_frames"], black),
        "flashing": lambda: technical.flashing(clip, p["flashing"]),
        "flicker": lambda: technical.flicker(clip, p["flicker"], black),
        "exposure": lambda: technical.exposure(clip, p["exposure"], black),
        "blur": lambda: technical.blur(clip, p["blur"], black),
        "temporal_instability": lambda: technical.temporal_instability(clip, p["temporal_instability"], black),
        "hard_cuts": lambda: technical.hard_cuts(clip, p["hard_cuts"], black, frozen),
        "palette": lambda: color.palette(clip, p["palette"], brand.palette),
        "unsafe_content": lambda: semantic.unsafe_content(frames, p["unsafe_content"]),
        "forbidden_elements": lambda: semantic.forbidden_elements(frames, p["forbidden_elements"],
                                                                  brand.forbidden_elements),
        "text_video_alignment": lambda: semantic.text_video_alignment(frames, p["text_video_alignment"], prompt),
        "aesthetic_score": lambda: semantic.aesthetic_score(frames, p["aesthetic_score"]),
        "subject_consistency": lambda: semantic.subject_consistency(frames, p["subject_consistency"]),
    }


def run_checks(
    path: Path,
    expected: Expected | None = None,
    brand: BrandProfile | None = None,
    *,
    models: Models | None = None,
    prompt: str | None = None,
    negative_prompt: str | None = None,
    only: Iterable[str] | None = None,
    timings: dict[str, float] | None = None,
) -> list[CheckResult]:
    """Run the checks (all, or ``only`` these) on the clip at ``path``, in :data:`QC_CHECKS` order.

    The clip is decoded once. If it does not decode, ``decodable`` fails and every check that needs the
    picture is returned not run with that reason; the text checks still run on the prompt.
    ``timings``, if given, receives seconds per check (and ``decode``, ``masks``).
    """
    brand = brand or default_profile()
    expected = expected or Expected()
    models = models or Models()
    names = [n for n in QC_CHECKS if only is None or n in set(only)]
    timings = timings if timings is not None else {}
    texts = {r.check: r for r in text_checks(prompt, negative_prompt, brand)}
    t0 = time.perf_counter()
    try:
        clip = decode(Path(path))
    except DECODE_ERRORS as exc:
        reason = f"clip not decodable: {type(exc).__name__}: {exc}"
        fail = CheckResult("decodable", False, 0.0, None, {"reason": reason, "message": reason})
        return [fail if n == "decodable" else texts.get(n) or not_run(n, reason) for n in names]
    timings["decode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    thunks = _clip_checks(clip, expected, brand, models, prompt)
    timings["masks"] = time.perf_counter() - t0  # black frames and frozen pairs, shared by the picture checks
    results = []
    for n in names:
        t0 = time.perf_counter()
        results.append(texts[n] if n in texts else thunks[n]())
        timings[n] = time.perf_counter() - t0
    return results


def evaluate(path: Path, expected: Expected | None = None, brand: BrandProfile | None = None, *,
             models: Models | None = None, prompt: str | None = None,
             negative_prompt: str | None = None) -> tuple[list[CheckResult], Verdict]:
    """Every check, and the brand's verdict on them."""
    brand = brand or default_profile()
    results = run_checks(path, expected, brand, models=models, prompt=prompt, negative_prompt=negative_prompt)
    return results, judge(results, brand)


def overall(results: list[CheckResult]) -> bool:
    """True only if every check passed; a check not run counts as not passed."""
    return bool(results) and all(r.passed is True for r in results)
