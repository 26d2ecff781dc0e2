"""What every check reads — one :class:`CheckContext` per clip — and running the registered checks on it.

The context holds the decoded clip (None when the file did not decode, with the reason), what was
requested, the brand's rules, the models and the prompt. What several checks share is computed once, on
first use, with the brand's parameters: the black-frame mask, the frozen pairs, the frames sampled for the
models and their CLIP features, the text policy's findings on the prompt.

The rules layer only says what it needs from the brand profile (:class:`BrandRules`, implemented by
:class:`governance.brand.BrandProfile`) and from the models (:class:`ModelSource`, implemented from local
folders by :class:`adapters.qc_models.Models`; the methods each kind of model offers are listed in
:mod:`governance.qc.semantic`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from governance.qc.clip import Clip, Expected, spread
from governance.qc.registry import CheckResult, CheckRule, not_run, registered

SAMPLE_FRAMES = 8  # frames sampled evenly from the clip for the model checks
OCR_STILLS = 4  # of the stills, how many (spread evenly) the on-screen text checks read: the QC budget (bench/qc.py)


class ModelUnavailable(Exception):
    """The model a check needs is not configured or could not be loaded; the message says which and why."""


class ModelSource(Protocol):
    """The models the semantic and visual-policy checks use, by kind: ``clip``, ``aesthetic``,
    ``subject``, ``safety``, and the detectors the install ships, ``nudity`` and ``ocr``."""

    def get(self, kind: str) -> Any:
        """The model for ``kind``; raises :class:`ModelUnavailable` with the reason."""
        ...

    def configured(self, kind: str) -> bool:
        """Whether a model is set for ``kind`` (one that is set but fails to load is still configured)."""
        ...


class BrandRules(Protocol):
    """What the checks read from a brand profile."""

    @property
    def palette(self) -> tuple[str, ...]: ...

    @property
    def forbidden_elements(self) -> tuple[str, ...]: ...

    def rule(self, check: str) -> CheckRule: ...

    @property
    def protected_names(self) -> tuple[str, ...]:
        """The brand's own names, whose misspellings on screen are findings."""
        ...

    def prompt_findings(self, prompt: str, negative_prompt: str) -> list[Any]:
        """The text policy's findings (each with ``kind``, ``term``, ``field``, ``topic``, ``disguised``,
        ``outcome`` and ``message``) on a prompt and its negative prompt."""
        ...

    def text_findings(self, text: str) -> list[Any]:
        """The text policy's findings on any text (read on screen), the same normalisation as the prompt's."""
        ...

    def normalize(self, text: str) -> str:
        """The text policy's normalisation (NFKC, case, width, kana folding)."""
        ...


@dataclass(frozen=True)
class CheckContext:
    """One clip, under one brand, as every check sees it."""

    clip: Clip | None  # None: the file did not decode (``decode_error`` says why)
    expected: Expected
    brand: BrandRules
    models: ModelSource
    prompt: str | None = None
    negative_prompt: str | None = None
    decode_error: str | None = None

    @cached_property
    def params(self) -> dict[str, dict[str, Any]]:
        """Each registered check's parameters under the brand's rules."""
        return {c.spec.name: self.brand.rule(c.spec.name).params for c in registered()}

    @cached_property
    def black(self) -> np.ndarray:
        """Black frames (``black_frames``' pixel_luma and pixel_share)."""
        p = self.params["black_frames"]
        return self.clip.black_mask(p["pixel_luma"], p["pixel_share"])

    @cached_property
    def frozen(self) -> tuple[np.ndarray, np.ndarray]:
        """(frozen mask over consecutive pairs, mean luma change of each pair), ``frozen_frames``' max_change."""
        if self.clip.frames < 2:
            return np.zeros(0, bool), np.zeros(0, np.float32)
        return self.clip.frozen_pairs(self.params["frozen_frames"]["max_change"], self.black)

    def prepare(self) -> None:
        """Compute the shared masks now (black frames, frozen pairs), so their cost is timed apart from the checks."""
        _ = self.black, self.frozen

    @cached_property
    def sample_index(self) -> np.ndarray:
        return self.clip.sample(SAMPLE_FRAMES)

    @cached_property
    def sample_images(self) -> list[np.ndarray]:
        """RGB thumbnails of the sampled frames."""
        return [self.clip.thumbs[i] for i in self.sample_index]

    @cached_property
    def sample_times(self) -> list[float]:
        return [round(float(self.clip.times[i]), 3) for i in self.sample_index]

    @cached_property
    def stills(self) -> list[np.ndarray]:
        """The RGB stills for the on-screen detectors (:data:`governance.qc.clip.STILL_FRAMES`, larger than thumbnails)."""
        return [] if self.clip.stills is None else list(self.clip.stills)

    @cached_property
    def still_times(self) -> list[float]:
        return [] if self.clip.still_index is None else [round(float(self.clip.times[i]), 3)
                                                          for i in self.clip.still_index]

    @cached_property
    def ocr_stills(self) -> np.ndarray:
        """Which stills the on-screen text checks read (:data:`OCR_STILLS` of them, first and last included)."""
        return spread(len(self.stills), OCR_STILLS) if self.stills else np.zeros(0, int)

    @cached_property
    def clip_features(self) -> np.ndarray:
        """CLIP image features of the sampled frames (raises ModelUnavailable, or the model's error)."""
        return self.models.get("clip").image_features(self.sample_images)

    @cached_property
    def nudity(self) -> tuple[list[list[dict[str, Any]]], dict[str, Any] | None]:
        """The nudity detector's detections on the stills, and its judge (raises ModelUnavailable, or the model's error)."""
        model = self.models.get("nudity")
        return model.detect(self.stills), getattr(model, "judge", None)

    @cached_property
    def text_regions(self) -> tuple[list[list[dict[str, Any]]], dict[str, Any] | None]:
        """The text regions read on the stills, and the reader's judge (raises ModelUnavailable, or the model's error)."""
        model = self.models.get("ocr")
        return model.read([self.stills[i] for i in self.ocr_stills]), getattr(model, "judge", None)

    @cached_property
    def prompt_findings(self) -> list[Any]:
        """The brand's text policy on the prompt and negative prompt (needs a prompt)."""
        return self.brand.prompt_findings(self.prompt or "", self.negative_prompt or "")


def run(ctx: CheckContext, only: Iterable[str] | None = None,
        timings: dict[str, float] | None = None) -> list[CheckResult]:
    """Run the registered checks (all, or ``only`` these) on ``ctx``, in registration order. With no clip,
    every check that needs the picture is returned not run with the decoding error as the reason.
    ``timings``, if given, receives seconds per check."""
    wanted = None if only is None else set(only)
    results = []
    for check in registered():
        name = check.spec.name
        if wanted is not None and name not in wanted:
            continue
        t0 = time.perf_counter()
        if ctx.clip is None and check.spec.needs_clip:
            results.append(not_run(name, ctx.decode_error or "no clip"))
        else:
            results.append(check.function(ctx))
        if timings is not None:
            timings[name] = time.perf_counter() - t0
    return results
