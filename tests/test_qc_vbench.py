"""The model-free VBench dimensions on clips made here: dynamic degree (a near-static clip is a finding only when
the prompt asks for motion), motion smoothness, and imaging quality (PIQE) on a real photograph (matplotlib's
sample image) panned across the frame, clean, blurred and noisy. Real H.264 files, decoded like every clip."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageFilter
from qc_clips import FPS, T, frames

from adapters import media
from governance.brand import BrandProfile
from governance.qc import BY_NAME, QC_CHECKS, REVIEW, Expected, judge
from governance.qc.vbench import MOTION_WORDS, motion_asked
from wan_tasks.quality import run_checks

VBENCH = ["dynamic_degree", "motion_smoothness", "imaging_quality"]
PHOTO = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def pan(image: Image.Image, n: int = T, w: int = 320, h: int = 240, step: int = 3) -> np.ndarray:
    """A camera pan over ``image``: ``n`` frames of ``w`` x ``h``, moving ``step`` pixels a frame."""
    big = np.asarray(image.convert("RGB").resize((w + n * step, h + 40)))
    return np.stack([big[20:20 + h, t * step:t * step + w] for t in range(n)])


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("vbench")
    photo = Image.open(PHOTO)
    noisy = pan(photo).astype(np.int16) + np.random.default_rng(0).normal(0, 40, (T, 240, 320, 3))
    made = {"moving": frames(), "still": np.repeat(frames(1), T, axis=0), "photo": pan(photo),
            "photo_blurred": pan(photo.filter(ImageFilter.GaussianBlur(6))),
            "photo_noisy": noisy.clip(0, 255).astype(np.uint8),
            # every other frame jumps ahead and back: motion an interpolation cannot predict
            "judder": frames(speed=2.0)[[t + 6 * (t % 2) if t + 6 < T else t for t in range(T)]]}
    return {k: media.write_clip(v, FPS, d / f"{k}.mp4").path for k, v in made.items()}


def vbench(path: Path, prompt: str | None = None, brand: BrandProfile | None = None) -> dict:
    return {r.check: r for r in run_checks(path, Expected(), brand, prompt=prompt, only=VBENCH)}


def test_registered_last_in_their_own_group() -> None:
    assert QC_CHECKS[-3:] == tuple(VBENCH) and {BY_NAME[c].group for c in VBENCH} == {"quality"}


def test_a_still_clip_is_a_finding_only_when_the_prompt_asks_for_motion(clips) -> None:
    still = vbench(clips["still"], "A runner sprinting through the rain")["dynamic_degree"]
    assert still.passed is False and still.value == 0.0 and "nearly static" in still.message
    assert still.details["motion_words"] == ["runner", "sprinting"]
    calm = vbench(clips["still"], "A red sneaker on a white pedestal")["dynamic_degree"]
    assert calm.passed is True and calm.value == 0.0 and "asks for no motion" in calm.message
    assert vbench(clips["still"])["dynamic_degree"].passed is True  # no prompt: measured, not judged
    moving = vbench(clips["moving"], "A disc rolling and spinning")["dynamic_degree"]
    assert moving.passed is True and moving.value >= 0.9


def test_motion_words_per_brand_and_in_japanese() -> None:
    assert motion_asked("桜並木の下を歩く女性", MOTION_WORDS) == ["歩"]
    assert motion_asked("A RUNE stone, a runway", MOTION_WORDS) == []  # whole words only in Latin script
    assert motion_asked("Spinning, then SPINNING again", MOTION_WORDS) == ["spinning"]
    brand = BrandProfile("calm", "Calm", (), Path("-"), checks={"dynamic_degree": {"motion_words": ["glide"]}})
    assert brand.rule("dynamic_degree").params["motion_words"] == ["glide"]


def test_motion_smoothness_catches_judder(clips) -> None:
    smooth = vbench(clips["moving"])["motion_smoothness"]
    judder = vbench(clips["judder"])["motion_smoothness"]
    assert smooth.passed is True and smooth.value > 0.97
    assert judder.value < smooth.value - 0.05 and judder.passed is False, judder.message


def test_imaging_quality_orders_a_photograph_clean_noisy_blurred(clips) -> None:
    clean, noisy, blurred = (vbench(clips[k])["imaging_quality"] for k in ("photo", "photo_noisy", "photo_blurred"))
    assert clean.value < 35 < noisy.value < blurred.value, (clean.value, noisy.value, blurred.value)
    assert clean.passed and blurred.passed is False  # the default flags only bad pictures (over 90)
    strict = BrandProfile("strict", "Strict", (), Path("-"), checks={"imaging_quality": {"max_piqe": 35}})
    r = vbench(clips["photo_noisy"], brand=strict)["imaging_quality"]
    assert r.passed is False and r.threshold == 35
    v = judge(list(vbench(clips["photo_noisy"], brand=strict).values()), strict)
    assert v.outcome == REVIEW and "allowed: at most 35 PIQE" in v.findings[0].message


def test_smooth_gradients_leave_piqe_nothing_to_judge(tmp_path) -> None:
    from review_helpers import frames as gradient

    path = media.write_clip(gradient(1, 9, 64, 32), 16, tmp_path / "gradient.mp4").path
    r = vbench(path)["imaging_quality"]
    assert r.passed is None and "no detail to judge" in r.details["reason"]
    assert judge([r], BrandProfile("b", "B", (), Path("-"))).outcome == "pass"  # nothing to measure is no defect
