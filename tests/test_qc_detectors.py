"""The detectors the install ships, run for real: NudeNet and RapidOCR on onnxruntime, weights from their wheels.

On-screen text: labelled frames rendered here (tests/onscreen_frames.py), encoded as real clips, decoded and
checked through the QC stage's entry point; each finding names its frame time and a box on the drawn text.
Nudity: no positive picture is made — NudeNet runs on clean frames (nothing found), and the mapping from its
detections to the brand's outcomes is tested with detections injected through a backend. Every result
names its judge, recorded in the catalog (SQLite and PostgreSQL) and shown by ``wanflow lineage``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from onscreen_frames import BRAND, CASES, Case, frame, overlaps
from qc_models import tiny_safety
from sqlalchemy import inspect, text

from adapters import media
from adapters.detectors import NudeNet, RapidOcr
from adapters.qc_models import Models
from catalog.db import make_engine, upgrade
from governance.brand import BrandInvalid, load_brand
from governance.qc import BLOCK, PASS, REVIEW, Expected, judge
from governance.qc.semantic import COVERED, EXPOSED
from wan_tasks.quality import run_checks

ONSCREEN = ("screen_text_policy", "watermark", "brand_misspelling", "pseudo_text")
NUDITY = ("unsafe_content", "suggestive_content")
FPS = 16


@pytest.fixture(scope="module")
def acme(tmp_path_factory):
    d = tmp_path_factory.mktemp("brands")
    (d / "acme.yaml").write_text(BRAND, "utf-8")
    return load_brand("acme", d)


def _clip(folder: Path, name: str, case: Case, **kw) -> tuple[Path, list[float] | None]:
    img, box = frame(case, **kw)
    # the text held for 9 frames at 16 fps: the still spread puts frames at 0, 0.0625, ... 0.5 s
    return media.write_clip(np.repeat(img[None], 9, axis=0), FPS, folder / f"{name}.mp4").path, box


def _by_check(path: Path, brand, models: Models | None = None, only=ONSCREEN) -> dict:
    return {r.check: r for r in run_checks(path, Expected(), brand, models=models or Models(), only=only)}


def _case(text_: str) -> Case:
    return next(c for c in CASES if c.text == text_)


@pytest.mark.parametrize("text_,check,label", [
    ("NIKE", "screen_text_policy", 'blocked term "nike"'),
    ("New Balance", "screen_text_policy", 'competitor name "new balance"'),
    ("暴力", "screen_text_policy", 'blocked term "暴力"'),  # a CJK ideograph term: read and matched
    ("Getty Images", "watermark", 'watermark "getty images"'),
    ("ACNE", "brand_misspelling", 'misspelt "ACME"'),
])
def test_on_screen_findings_with_time_and_box(tmp_path, acme, text_, check, label) -> None:
    path, box = _clip(tmp_path, "c", _case(text_), size=48, colour=(255, 255, 255), angle=0, seed=3)
    by = _by_check(path, acme)
    r = by[check]
    assert r.passed is False and r.value >= 1, r.details
    hits = r.details["boxes"]
    assert {h["label"] for h in hits} == {label}
    assert all(overlaps(h["box"], box) for h in hits)  # the box is where the text was drawn
    assert {h["time"] for h in hits} <= {round(i / FPS, 3) for i in range(9)}
    assert r.judge["detector"] == "rapidocr-onnxruntime" and r.judge["version"] == version("rapidocr-onnxruntime")
    assert [c for c, x in by.items() if x.passed is False] == [check]  # no other on-screen finding
    assert judge(list(by.values()), acme).outcomes[check] == (REVIEW if check == "brand_misspelling" else BLOCK)


def test_rotated_coloured_text_is_read(tmp_path, acme) -> None:
    path, box = _clip(tmp_path, "rot", _case("shutterstock"), size=44, colour=(250, 220, 40), angle=8, seed=5)
    r = _by_check(path, acme)["watermark"]
    assert r.passed is False and overlaps(r.details["boxes"][0]["box"], box)


@pytest.mark.parametrize("text_", ["ACME", "Run further", ""])
def test_no_finding_on_neutral_text_or_clean_frames(tmp_path, acme, text_) -> None:
    path, _ = _clip(tmp_path, "n", _case(text_), size=48, colour=(15, 15, 15), seed=7)
    by = _by_check(path, acme, only=ONSCREEN + NUDITY)
    assert all(r.passed is True for r in by.values()), {c: r.message for c, r in by.items()}
    assert by["unsafe_content"].judge["detector"] == "nudenet"  # on by default, no folder configured


def test_pseudo_text_needs_review(tmp_path, acme) -> None:
    """Regions the recogniser reads with low confidence, injected (the real detector's rate on drawn
    pseudo-glyphs is in docs/qc-calibration.md)."""

    class Reader:
        judge = {"detector": "injected", "version": "0"}

        def read(self, images):
            return [[{"text": "ACME", "score": 0.98, "box": [0.1, 0.1, 0.2, 0.1]},
                     {"text": "xq", "score": 0.31, "box": [0.5, 0.6, 0.2, 0.1]}] for _ in images]

    path, _ = _clip(tmp_path, "p", _case(""))
    by = _by_check(path, acme, Models(backends={"ocr": Reader()}))
    r = by["pseudo_text"]
    assert r.passed is False and r.value == len(r.details["boxes"]) >= 1
    assert {h["box"][0] for h in r.details["boxes"]} == {0.5} and by["brand_misspelling"].passed is True
    assert judge(list(by.values()), acme).outcome == REVIEW
    # a low-confidence read of a blocked term is not taken for the term: it is only unreadable
    lenient = dataclasses.replace(acme, checks={"pseudo_text": {"min_confidence": 0.2}})
    assert _by_check(path, lenient, Models(backends={"ocr": Reader()}))["pseudo_text"].passed is True


class Injected:
    """A nudity detector returning fixed detections (no positive picture is ever made)."""

    judge = {"detector": "injected", "version": "0"}

    def __init__(self, detections: list[dict]) -> None:
        self.detections = detections

    def detect(self, images):
        return [list(self.detections) for _ in images]


def _det(label: str, score: float) -> dict:
    return {"label": label, "score": score, "box": [0.25, 0.25, 0.2, 0.3]}


@pytest.fixture(scope="module")
def clean_clip(tmp_path_factory) -> Path:
    return _clip(tmp_path_factory.mktemp("clean"), "clean", _case(""))[0]


@pytest.mark.parametrize("detections,outcome,failing", [
    ([_det("FEMALE_BREAST_EXPOSED", 0.81)], BLOCK, {"unsafe_content"}),
    ([_det("BUTTOCKS_COVERED", 0.7)], REVIEW, {"suggestive_content"}),
    ([_det("FEMALE_BREAST_EXPOSED", 0.3), _det("BUTTOCKS_COVERED", 0.45)], PASS, set()),  # below the thresholds
    ([_det("FACE_FEMALE", 0.95), _det("FEET_EXPOSED", 0.9)], PASS, set()),  # classes mapped to no outcome
])
def test_nudity_detections_map_to_the_brand_outcomes(clean_clip, acme, detections, outcome, failing) -> None:
    by = _by_check(clean_clip, acme, Models(backends={"nudity": Injected(detections)}), only=NUDITY)
    assert {c for c, r in by.items() if r.passed is False} == failing
    assert judge(list(by.values()), acme).outcome == outcome
    for c in failing:
        hit = by[c].details["boxes"][0]
        assert hit["box"] == [0.25, 0.25, 0.2, 0.3] and hit["time"] == 0.0 and by[c].judge["detector"] == "injected"


def test_nudity_thresholds_and_classes_are_per_brand(clean_clip, acme) -> None:
    models = Models(backends={"nudity": Injected([_det("BELLY_EXPOSED", 0.6), _det("BUTTOCKS_COVERED", 0.3)])})
    strict = dataclasses.replace(acme, checks={"suggestive_content": {"max_covered_score": 0.25},
                                               "unsafe_content": {"exposed_labels": [*EXPOSED, "BELLY_EXPOSED"]}})
    by = _by_check(clean_clip, strict, models, only=NUDITY)
    assert by["unsafe_content"].passed is False and by["suggestive_content"].passed is False
    assert by["unsafe_content"].threshold == 0.5 and by["suggestive_content"].threshold == 0.25
    assert set(COVERED) <= {"FEMALE_GENITALIA_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED", "ANUS_COVERED"}


def test_a_configured_classifier_overrides_nudenet(clean_clip, acme, tmp_path) -> None:
    folder = tiny_safety(tmp_path / "safety")
    models = Models({"safety": folder}, backends={"nudity": Injected([_det("FEMALE_BREAST_EXPOSED", 0.99)])})
    by = _by_check(clean_clip, dataclasses.replace(acme, checks={"unsafe_content": {"max_probability": 1.0}}),
                   models, only=NUDITY)
    assert by["unsafe_content"].passed is True  # the classifier decides, not the (injected) detector
    weights = sorted(folder.glob("*.safetensors"))[0]
    assert by["unsafe_content"].judge["weights"] == {weights.name: hashlib.sha256(weights.read_bytes()).hexdigest()}
    assert by["suggestive_content"].judge["detector"] == "injected"  # still NudeNet's (here injected)


def test_a_detector_that_fails_is_not_run_with_the_reason(clean_clip, acme) -> None:
    class Broken:
        judge = {}

        def detect(self, images):
            raise RuntimeError("onnx session died")

        read = detect

    by = _by_check(clean_clip, acme, Models(backends={"nudity": Broken(), "ocr": Broken()}), only=ONSCREEN + NUDITY)
    assert all(r.passed is None and "onnx session died" in r.details["reason"] for r in by.values())
    assert judge(list(by.values()), acme).outcome == REVIEW  # the default: a check that could not run needs review


def test_the_bundled_weights_are_the_judge() -> None:
    import nudenet
    import rapidocr_onnxruntime

    n = NudeNet().judge
    onnx = Path(nudenet.__file__).parent / "320n.onnx"
    assert n == {"detector": "nudenet", "version": version("nudenet"),
                 "weights": {"320n.onnx": hashlib.sha256(onnx.read_bytes()).hexdigest()}}
    o = RapidOcr().judge
    assert set(o["weights"]) == {"ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx"}
    rec = Path(rapidocr_onnxruntime.__file__).parent / "models" / "ch_PP-OCRv4_rec_infer.onnx"
    assert o["weights"]["ch_PP-OCRv4_rec_infer.onnx"] == hashlib.sha256(rec.read_bytes()).hexdigest()


def test_nudenet_finds_nothing_on_clean_frames() -> None:
    det = NudeNet()
    images = [frame(c, seed=i)[0] for i, c in enumerate(CASES)]
    found = det.detect(images)
    mapped = {*EXPOSED, *COVERED}
    assert len(found) == len(images) and not [d for f in found for d in f if d["label"] in mapped]


def test_protected_names_in_the_profile(tmp_path) -> None:
    (tmp_path / "plain.yaml").write_text("name: plain\ndisplay_name: Plain\n", "utf-8")
    assert load_brand("plain", tmp_path).protected_names == ("plain",)  # default: the brand's name
    (tmp_path / "bad.yaml").write_text("name: bad\ndisplay_name: Bad\nprotected_names: ACME\n", "utf-8")
    with pytest.raises(BrandInvalid, match="protected_names: must be a list of non-empty strings"):
        load_brand("bad", tmp_path)
    (tmp_path / "odd.yaml").write_text("name: odd\ndisplay_name: Odd\nchecks:\n  watermark: {words: shutterstock}\n",
                                       "utf-8")
    with pytest.raises(BrandInvalid, match="checks.watermark.words"):
        load_brand("odd", tmp_path)


def test_upgrade_to_0009_keeps_old_qc_rows_with_no_judge(catalog_url) -> None:
    upgrade(catalog_url, "0008")
    engine = make_engine(catalog_url)
    try:
        assert "judge" not in {c["name"] for c in inspect(engine).get_columns("qc_results")}
        t = "2026-11-01 00:00:00"
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO campaigns (id, name, brand, created_at) VALUES (1, 'old', 'acme', :t)"),
                         {"t": t})
            conn.execute(text("INSERT INTO assets (id, kind, uri, sha256, size, width, height, status, created_at) "
                              "VALUES (1, 'raw_clip', '/x.mp4', :h, 1, 16, 16, 'generated', :t)"),
                         {"h": "0" * 64, "t": t})
            conn.execute(text("INSERT INTO qc_results (id, asset_id, \"check\", passed, details, created_at) "
                              "VALUES (1, 1, 'blur', true, '{}', :t)"), {"t": t})
        upgrade(catalog_url, "head")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT judge FROM qc_results")).scalar_one() is None
    finally:
        engine.dispose()


def test_boxes_are_drawn_on_the_dashboard_strip_and_the_report(tmp_path) -> None:
    from adapters.qc_report import boxed_frames
    from dashboard.frames import frame_strip

    grey = np.full((9, 96, 160, 3), 128, np.uint8)
    clip = media.write_clip(grey, FPS, tmp_path / "grey.mp4").path
    hit = {"time": 0.3125, "box": [0.25, 0.25, 0.5, 0.5], "label": 'blocked term "nike"'}  # a still: frame 5
    strip = np.asarray(Image.open(frame_strip(clip, tmp_path / "s.png", boxes=[hit | {"outcome": "block"}])))
    plain = np.asarray(Image.open(frame_strip(clip, tmp_path / "p.png")))
    tile_w = round(160 * 72 / 96)
    n = 4  # the strip's frames are the stills: 0, 1, 2, 3, 5, 6, 7, 8 of 9
    left = n * (tile_w + 2) + round(0.25 * tile_w)
    assert tuple(strip[36, left]) == (198, 40, 40) and tuple(plain[36, left]) != (198, 40, 40)
    assert (strip != plain).any(axis=2).sum() < 0.05 * strip.shape[0] * strip.shape[1]  # only the box
    jpeg = Image.open(io.BytesIO(boxed_frames(clip, [(hit, BLOCK)])))
    px = np.asarray(jpeg.convert("RGB"))[72, round(0.25 * jpeg.width)]
    assert px[0] > 150 and px[1] < 100  # the block colour on the box's left edge
    assert boxed_frames(clip, []) is None
