"""Text in the picture, read by the OCR model the install ships (``ocr``: RapidOCR) on 4 of the stills spread
over the clip (:data:`~governance.qc.context.OCR_STILLS`, first and last included: the QC budget), as four
checks, each finding with its frame time and box:

- ``screen_text_policy``: a blocked term, pattern or competitor name of the brand's text policy on screen,
  matched exactly as in prompts (:mod:`governance.text_policy`: case, width, kana, disguises) — block;
- ``watermark``: a stock-photo or other watermark word (``words``, compared after the text policy's
  normalisation and without spaces: "Getty Images" and "gettyimages" both match) — block;
- ``brand_misspelling``: a word within ``max_distance`` edits of one of the brand's ``protected_names``
  but not equal to it ("ACNE" for "ACME"; names shorter than ``min_length`` are not compared) — review;
- ``pseudo_text``: regions the detector takes for a line of text (at least ``min_aspect`` times wider than
  tall: round objects the detector sometimes boxes are not lines) but the recogniser reads with confidence
  below ``min_confidence`` (the letter-like shapes generated video draws) — review, a quality finding.

Regions read below ``pseudo_text``'s ``min_confidence`` count for ``pseudo_text`` only: the other three
read only what the recogniser is sure of. What the bundled recogniser can read (scripts) is measured in
``docs/qc-calibration.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from governance.qc.context import CheckContext, ModelUnavailable
from governance.qc.registry import BLOCK, REVIEW, CheckResult, CheckSpec, Param, not_run, register

WATERMARKS = ["shutterstock", "getty images", "istock", "alamy", "adobe stock", "dreamstime", "depositphotos",
              "123rf"]
_WORD = re.compile(r"[^\W_]+")


class TextReader(Protocol):
    """``ocr``: per image, text regions ``{"text", "score", "box"}`` (score: the recogniser's confidence,
    0..1; box ``[x, y, w, h]`` in fractions of the image), and ``judge`` (package, version, weight sha256)."""

    judge: dict

    def read(self, images: list[np.ndarray]) -> list[list[dict]]: ...


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _regions(ctx: CheckContext, check: str) -> tuple[list[dict[str, Any]], dict | None] | CheckResult:
    """Every region read on the stills, with its frame time; or the check's not-run result."""
    if ctx.clip.stills is None:
        return not_run(check, "no frames decoded for the detectors")
    try:
        per_image, judge = ctx.text_regions
    except ModelUnavailable as exc:
        return not_run(check, str(exc))
    except Exception as exc:  # noqa: BLE001
        return not_run(check, f"model failed on this clip: {type(exc).__name__}: {exc}")
    times = [ctx.still_times[i] for i in ctx.ocr_stills]
    return [r | {"time": t} for t, found in zip(times, per_image) for r in found], judge


def _readable(ctx: CheckContext, regions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in regions if r["score"] >= ctx.params["pseudo_text"]["min_confidence"]]


def _result(ctx: CheckContext, check: str, hits: list[dict[str, Any]], what: str, judge: dict | None) -> CheckResult:
    msg = ("; ".join(f"{h['label']} ({h['text']!r}) at {h['time']:.2f} s" for h in hits) if hits
           else f"no {what} in {len(ctx.ocr_stills)} frames")
    return CheckResult(check, not hits, float(len(hits)), 0.0, {"message": msg, "boxes": hits}, judge)


def _hit(r: dict[str, Any], label: str) -> dict[str, Any]:
    return {"time": r["time"], "label": label, "text": r["text"], "score": r["score"], "box": r["box"]}


@register(CheckSpec("screen_text_policy", "brand", "text on screen: blocked terms, patterns, competitors (OCR)",
                    on_fail=BLOCK, on_not_run=REVIEW, unit="findings"))
def screen_text_policy(ctx: CheckContext) -> CheckResult:
    got = _regions(ctx, "screen_text_policy")
    if isinstance(got, CheckResult):
        return got
    regions, judge = got
    hits = [_hit(r, f.message) for r in _readable(ctx, regions) for f in ctx.brand.text_findings(r["text"])
            if f.outcome == BLOCK]
    return _result(ctx, "screen_text_policy", hits, "blocked text", judge)


def _squeezed(s: str, normalize: Callable[[str], str]) -> str:
    return "".join(normalize(s).split())


@register(CheckSpec("watermark", "brand", "stock-photo or other watermark on screen (OCR)", {
    "words": Param(WATERMARKS, help="compared without case, width or spaces")},
    on_fail=BLOCK, on_not_run=REVIEW, unit="findings"))
def watermark(ctx: CheckContext) -> CheckResult:
    got = _regions(ctx, "watermark")
    if isinstance(got, CheckResult):
        return got
    regions, judge = got
    norm = ctx.brand.normalize
    words = [(w, _squeezed(w, norm)) for w in ctx.params["watermark"]["words"]]
    hits = [_hit(r, f'watermark "{w}"') for r in _readable(ctx, regions) for w, sw in words
            if sw and sw in _squeezed(r["text"], norm)]
    return _result(ctx, "watermark", hits, "watermark", judge)


def misspellings(text: str, names: tuple[str, ...] | list[str], max_distance: int, min_length: int,
                  normalize: Callable[[str], str]) -> list[str]:
    """The names (as written) that ``text`` misspells: a run of as many words as the name has, within
    ``max_distance`` edits of it and not equal to it, both after ``normalize`` (the text policy's)."""
    words = _WORD.findall(normalize(text))
    out = []
    for name in names:
        target = _WORD.findall(normalize(name))
        joined = " ".join(target)
        if len(joined) < min_length or not target:
            continue
        n = len(target)
        for i in range(len(words) - n + 1):
            d = edit_distance(" ".join(words[i:i + n]), joined)
            if 0 < d <= max_distance:
                out.append(name)
                break
    return out


@register(CheckSpec("brand_misspelling", "brand", "the brand's own name misspelled on screen (OCR, edit distance)", {
    "max_distance": Param(1, 1, 5, "edits (insert, delete, substitute) still taken for the brand's name"),
    "min_length": Param(4, 1, None, "names shorter than this are not compared")},
    on_fail=REVIEW, on_not_run=REVIEW, unit="findings"))
def brand_misspelling(ctx: CheckContext) -> CheckResult:
    got = _regions(ctx, "brand_misspelling")
    if isinstance(got, CheckResult):
        return got
    regions, judge = got
    p = ctx.params["brand_misspelling"]
    hits = [_hit(r, f'misspelt "{name}"') for r in _readable(ctx, regions)
            for name in misspellings(r["text"], ctx.brand.protected_names, int(p["max_distance"]), int(p["min_length"]),
                                     ctx.brand.normalize)]
    return _result(ctx, "brand_misspelling", hits, "misspelt brand name", judge)


@register(CheckSpec("pseudo_text", "semantic", "unreadable pseudo-text (text-like regions the OCR cannot read)", {
    "min_confidence": Param(0.6, 0, 1, "a region read with less confidence than this is unreadable"),
    "min_aspect": Param(1.5, 0, None, "a region counts as a line of text if its width is at least this times its height")},
    on_fail=REVIEW, on_not_run=REVIEW, unit="regions"))
def pseudo_text(ctx: CheckContext) -> CheckResult:
    got = _regions(ctx, "pseudo_text")
    if isinstance(got, CheckResult):
        return got
    regions, judge = got
    p = ctx.params["pseudo_text"]
    h, w = ctx.stills[0].shape[:2]
    hits = [_hit(r, f"unreadable ({r['score']:.2f})") for r in regions
            if r["score"] < p["min_confidence"] and r["box"][2] * w >= p["min_aspect"] * r["box"][3] * h]
    return _result(ctx, "pseudo_text", hits, "unreadable text", judge)
