"""The semantic and visual-policy checks with models loaded from local folders: tiny random CLIP, DINOv2,
ViT classifier and a LAION-layout aesthetic predictor built from configs (no hub). Random weights score
nothing meaningful; these tests hold the plumbing to account: loading, pre-processing, the arithmetic,
the "not run" reasons and the brand's say over what a check that could not run means."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from qc_clips import FPS, H, T, W, frames
from qc_models import tiny_aesthetic, tiny_clip, tiny_dino, tiny_safety

from adapters import media
from adapters.clip_frames import decode
from adapters.qc_models import Models
from core.settings import Settings
from governance.brand import BrandProfile
from governance.qc import BLOCK, PASS, REVIEW, Expected, judge
from governance.qc.context import SAMPLE_FRAMES
from wan_tasks.quality import run_checks

MODEL_CHECKS = ("unsafe_content", "forbidden_elements", "text_video_alignment", "aesthetic_score",
                "subject_consistency")
# the checks whose model is a folder to configure (unsafe_content runs NudeNet when no classifier is set)
FOLDER_CHECKS = tuple(c for c in MODEL_CHECKS if c != "unsafe_content")
PROMPT = "A red disc gliding over a yellow checkerboard"
BRAND = BrandProfile("t", "Test", (), Path("-"), forbidden_elements=("a cigarette", "a handgun"))


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("qc-models")
    return {"clip": tiny_clip(d / "clip"), "subject": tiny_dino(d / "dino"), "safety": tiny_safety(d / "safety"),
            "aesthetic": tiny_aesthetic(d / "aesthetic"), "aesthetic_pth": tiny_aesthetic(d / "pth", fmt="pth"),
            "aesthetic_8": tiny_aesthetic(d / "a8", dim=8)}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("qc-model-clips")
    held = np.repeat(frames(1), T, axis=0)
    return {"moving": media.write_clip(frames(), FPS, d / "moving.mp4").path,
            "still": media.write_clip(held, FPS, d / "still.mp4").path,
            "cut": media.write_clip(np.concatenate([frames(16), frames(T - 16, variant=1)]), FPS, d / "cut.mp4").path}


@pytest.fixture(scope="module")
def models(folders) -> Models:
    s = Settings(clip_model=folders["clip"], subject_model=folders["subject"], safety_model=folders["safety"],
                 aesthetic_model=folders["aesthetic"])
    return Models.from_settings(s)


def by_check(path: Path, models: Models, brand: BrandProfile = BRAND, prompt: str | None = PROMPT) -> dict:
    return {r.check: r for r in run_checks(path, Expected(W, H, T, FPS), brand, models=models, prompt=prompt,
                                           only=MODEL_CHECKS)}


def test_every_model_check_runs_from_local_folders(clips, models) -> None:
    r = by_check(clips["moving"], models)
    assert all(x.passed is not None for x in r.values()), {k: x.details for k, x in r.items()}
    assert -1 <= r["text_video_alignment"].value <= 1 and -1 <= r["subject_consistency"].value <= 1
    assert 0 <= r["unsafe_content"].value <= 1 and np.isfinite(r["aesthetic_score"].value)
    assert len(r["text_video_alignment"].details["per_frame"]) == SAMPLE_FRAMES
    assert [e["element"] for e in r["forbidden_elements"].details["elements"]] == ["a cigarette", "a handgun"]
    assert r["subject_consistency"].details["features"] == "subject"  # DINOv2, not the CLIP fallback


def test_alignment_is_clip_cosine_as_transformers_computes_it(clips, models, folders) -> None:
    """Independent of our pre-processing: transformers' own image processor and forward pass."""
    import torch
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    clip = decode(clips["moving"])
    images = [clip.thumbs[i] for i in clip.sample(SAMPLE_FRAMES)]
    model = CLIPModel.from_pretrained(folders["clip"], local_files_only=True).eval()
    proc = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    tok = AutoTokenizer.from_pretrained(folders["clip"], local_files_only=True)
    with torch.inference_mode():
        out = model(**tok([PROMPT], return_tensors="pt"), pixel_values=proc(images=images, return_tensors="pt")["pixel_values"])
    want = float((out.image_embeds @ out.text_embeds.T).mean())
    assert by_check(clips["moving"], models)["text_video_alignment"].value == pytest.approx(want, abs=0.02)


def test_subject_consistency_measures_change(clips, models) -> None:
    still = by_check(clips["still"], models)["subject_consistency"]
    cut = by_check(clips["cut"], models)["subject_consistency"]
    assert still.value == pytest.approx(1.0, abs=1e-4) and still.passed
    assert cut.value < still.value - 1e-3


def test_thresholds_come_from_the_brand(clips, models) -> None:
    measured = by_check(clips["moving"], models)["text_video_alignment"].value
    strict = dataclasses.replace(BRAND, checks={"text_video_alignment": {"min_similarity": min(1, measured + 0.01)},
                                                "forbidden_elements": {"max_similarity": -1},
                                                "unsafe_content": {"max_probability": 1.0}})
    r = by_check(clips["moving"], models, strict)
    assert r["text_video_alignment"].passed is False and r["forbidden_elements"].passed is False
    assert "possibly shows 'a cigarette'" in r["forbidden_elements"].message
    v = judge(list(r.values()), strict)
    assert v.outcome == REVIEW and {f.check for f in v.findings} >= {"text_video_alignment", "forbidden_elements"}
    unsafe = dataclasses.replace(strict, checks=strict.checks | {"unsafe_content": {"max_probability": 0.0}})
    assert judge(list(by_check(clips["moving"], models, unsafe).values()), unsafe).outcome == BLOCK


def test_not_run_reasons(clips, folders, tmp_path) -> None:
    none = by_check(clips["moving"], Models())
    assert all(none[c].passed is None for c in FOLDER_CHECKS)
    assert none["unsafe_content"].passed is True and none["unsafe_content"].judge["detector"] == "nudenet"
    assert "set WANFLOW_CLIP_MODEL" in none["text_video_alignment"].details["reason"]
    assert "no CLIP model to fall back on" in none["subject_consistency"].details["reason"]
    missing = by_check(clips["moving"], Models({"clip": tmp_path / "nowhere"}))
    assert "does not exist" in missing["text_video_alignment"].details["reason"]
    mismatch = by_check(clips["moving"], Models({"clip": folders["clip"], "aesthetic": folders["aesthetic_8"]}))
    assert "expects 8-dim CLIP embeddings" in mismatch["aesthetic_score"].details["reason"]
    assert mismatch["subject_consistency"].details["features"] == "clip"  # falls back on CLIP features
    no_prompt = by_check(clips["moving"], Models({"clip": folders["clip"]}), prompt=None)
    assert no_prompt["text_video_alignment"].details["reason"] == "no prompt given"
    gore_only = dataclasses.replace(BRAND, checks={"unsafe_content": {"unsafe_labels": ["gore"]}})
    labels = by_check(clips["moving"], Models({"safety": folders["safety"]}), gore_only)["unsafe_content"]
    assert labels.passed is None and "include none of the brand's unsafe labels" in labels.details["reason"]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    assert "could not load the clip model" in by_check(clips["moving"], Models({"clip": broken}))[
        "text_video_alignment"].details["reason"]


def test_pth_predictor_and_one_load_per_process(clips, folders, models) -> None:
    pth = by_check(clips["moving"], Models({"clip": folders["clip"], "aesthetic": folders["aesthetic_pth"]}))
    st = by_check(clips["moving"], models)
    assert pth["aesthetic_score"].value == pytest.approx(st["aesthetic_score"].value, abs=1e-4)
    again = Models.from_settings(Settings(clip_model=folders["clip"]))
    assert again.get("clip") is models.get("clip")


@pytest.mark.parametrize(("rule", "outcome"), [("block", BLOCK), ("review", REVIEW), ("pass", PASS)])
def test_the_brand_decides_what_not_run_means(clips, rule, outcome) -> None:
    brand = dataclasses.replace(BRAND, checks={c: {"on_not_run": rule} for c in FOLDER_CHECKS})
    results = list(by_check(clips["moving"], Models(), brand).values())
    v = judge(results, brand)
    assert v.outcome == outcome
    listed = v.notes if outcome == PASS else v.findings
    assert {f.check for f in listed} == set(FOLDER_CHECKS) and all("not run" in f.message for f in listed)


def test_any_object_with_the_methods_plugs_in(clips) -> None:
    class Constant:
        """A stand-in scorer: every image and every text maps to fixed unit vectors."""

        def image_features(self, images):
            return np.tile([0.6, 0.8], (len(images), 1))

        def text_features(self, texts):
            return np.tile([1.0, 0.0], (len(texts), 1))

    r = by_check(clips["moving"], Models(backends={"clip": Constant()}))
    assert r["text_video_alignment"].value == pytest.approx(0.6)
    assert r["subject_consistency"].value == pytest.approx(1.0) and r["subject_consistency"].details["features"] == "clip"
