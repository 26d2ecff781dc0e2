"""QC calibration: clips with known defects (ffmpeg lavfi sources and numpy) must be flagged by exactly the
checks meant for them, and clean clips with smooth motion must pass every technical check.

The check x clip table is printed on every run: X failed, . passed, - not run (with the value measured).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from qc_clips import DEFECTS, FPS, NOT_RUN, H, T, W, frames, make_clips

from adapters import media
from governance.brand import BrandProfile, default_profile
from governance.qc import BLOCK, BY_NAME, PASS, QC_CHECKS, REVIEW, TECHNICAL, Expected, judge, register
from governance.qc.color import ciede2000, srgb_to_lab
from wan_tasks.quality import run_checks

EXPECTED = Expected(width=W, height=H, frames=T, fps=FPS)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_clips(tmp_path_factory.mktemp("calibration"))


@pytest.fixture(scope="module")
def results(clips: dict[str, Path]) -> dict[str, dict]:
    return {name: {r.check: r for r in run_checks(path, EXPECTED, only=TECHNICAL)} for name, path in clips.items()}


def _cell(r) -> str:
    mark = "-" if r.passed is None else ("." if r.passed else "X")
    return mark + ("" if r.value is None else f"{r.value:.3g}")


def test_every_check_is_registered_once_in_a_fixed_order() -> None:
    assert QC_CHECKS == (
        "decodable", "container", "size", "fps", "frame_count", "duration", "black_frames", "black_segments",
        "frozen_frames", "flashing", "flicker", "exposure", "blur", "temporal_instability", "hard_cuts",
        "text_policy", "sensitive_topics", "palette", "unsafe_content", "suggestive_content", "forbidden_elements",
        "text_video_alignment", "aesthetic_score", "subject_consistency",
        "screen_text_policy", "watermark", "brand_misspelling", "pseudo_text",
        "dynamic_degree", "motion_smoothness", "imaging_quality")
    assert TECHNICAL == QC_CHECKS[:15]
    with pytest.raises(ValueError, match="'blur' is registered twice"):
        register(BY_NAME["blur"])(lambda ctx: None)


def test_every_check_flags_exactly_the_clips_meant_for_it(results, capsys) -> None:
    wrong = []
    for clip, by_check in results.items():
        for check in TECHNICAL:
            r = by_check[check]
            want = False if check in DEFECTS[clip] else (None if check in NOT_RUN.get(clip, ()) else True)
            if r.passed is not want:
                wrong.append(f"{clip} / {check}: got {r.passed} ({r.message}), want {want}")
    checks = [c for c in TECHNICAL if c != "decodable"]
    with capsys.disabled():
        print("\nQC calibration (X failed, . passed, - not run; value after the mark)")
        print("clip".ljust(19) + "".join(c[:11].rjust(12) for c in ["decodable", *checks]))
        for clip, by_check in results.items():
            print(clip.ljust(19) + "".join(_cell(by_check[c]).rjust(12) for c in ["decodable", *checks]))
    assert not wrong, "\n".join(wrong)


def test_results_are_complete_readable_records(results) -> None:
    for by_check in results.values():
        assert tuple(by_check) == TECHNICAL
        for r in by_check.values():
            json.dumps(dataclasses.asdict(r))  # stored as JSON in the catalog
            assert r.message and (r.passed is not None or r.details["reason"])


def test_defects_are_located_in_time(results) -> None:
    seg = results["black_segment"]["black_segments"]
    assert seg.details["ranges"] == [{"start": 0.75, "end": 1.25}] and seg.value == pytest.approx(0.5)
    frozen = results["frozen_segment"]["frozen_frames"]
    assert frozen.details["ranges"] == [{"start": 10 / FPS, "end": 26 / FPS}] and frozen.value == 1.0
    assert results["hard_cut"]["hard_cuts"].details["cut_times"] == [1.0]
    flash = results["flashing_4hz"]["flashing"]
    assert flash.value >= 4 and "WCAG 2.3.1 allows 3" in flash.message and "(general)" in flash.message
    red = results["red_flash_4hz"]["flashing"]
    assert red.details["red_flashes"] >= 4 and red.details["general_flashes"] <= 1 and "(red)" in red.message
    assert results["all_black"]["black_frames"].value == 1.0
    blur = results["heavy_blur"]["blur"]
    assert blur.value < blur.threshold / 2 < results["clean_testsrc"]["blur"].value / 20
    assert results["wrong_size"]["size"].details["actual"] == {"width": W - 16, "height": H}
    assert "yuv444p" in results["wrong_pixel_format"]["container"].message


def test_undecodable_clip_leaves_the_rest_not_run_with_the_reason(results) -> None:
    for clip in ("undecodable", "zero_byte"):
        r = results[clip]
        assert r["decodable"].passed is False
        assert all(r[c].details["reason"].startswith("clip not decodable") for c in TECHNICAL[1:])


def test_nothing_requested_is_said_not_hidden(clips) -> None:
    by = {r.check: r for r in run_checks(clips["wrong_size"], Expected(), only=["size", "fps", "duration"])}
    assert all(r.passed and r.threshold is None for r in by.values())
    assert by["size"].message == f"{W - 16}x{H}; nothing was requested"


def test_single_frame_clip(tmp_path) -> None:
    path = media.write_clip(frames(1), FPS, tmp_path / "one.mp4").path
    by = {r.check: r for r in run_checks(path, Expected(W, H, 1, FPS), only=TECHNICAL)}
    assert by["frozen_frames"].passed is None and "2 frames" in by["frozen_frames"].details["reason"]
    assert by["flashing"].passed is None and by["blur"].passed is True


def test_verdict_follows_the_brand_rules(clips) -> None:
    lenient = BrandProfile("lenient", "Lenient", (), Path("-"), checks={
        name: {"on_not_run": "pass"} for name in ("text_policy", "sensitive_topics", "unsafe_content",
                                                  "forbidden_elements", "text_video_alignment", "aesthetic_score",
                                                  "subject_consistency")})
    clean = run_checks(clips["clean_motion"], EXPECTED, lenient)
    assert tuple(r.check for r in clean) == QC_CHECKS
    v = judge(clean, lenient)
    assert v.outcome == PASS and not v.findings
    assert {n.check for n in v.notes} == {"text_policy", "sensitive_topics",  # NudeNet and the OCR run out of the box
                                          "text_video_alignment", "aesthetic_score", "subject_consistency"}
    forbidden = next(r for r in clean if r.check == "forbidden_elements")  # nothing forbidden: a pass that says so
    assert forbidden.passed and forbidden.message.startswith("nothing to check")
    # the default rules: a check that could not run is never a silent pass
    assert judge(clean, default_profile()).outcome == REVIEW
    blurred = judge(run_checks(clips["heavy_blur"], EXPECTED, lenient), lenient)
    assert blurred.outcome == REVIEW and [f.check for f in blurred.findings] == ["blur"]
    assert "allowed: at least 40" in blurred.reasons[0]
    black = judge(run_checks(clips["all_black"], EXPECTED, lenient), lenient)
    assert black.outcome == BLOCK and {f.check for f in black.findings if f.outcome == BLOCK} == {
        "black_frames", "black_segments"}
    strict = dataclasses.replace(lenient, checks=lenient.checks | {"blur": {"on_fail": "block"}})
    assert judge(run_checks(clips["heavy_blur"], EXPECTED, strict), strict).outcome == BLOCK
    # an undecodable file blocks whatever else the profile lets pass
    assert judge(run_checks(clips["zero_byte"], EXPECTED, lenient), lenient).outcome == BLOCK


# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula", test data (pairs 1, 2, 3, 7, 8, 17-20, 25, 34)
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, -1.0, 2.0), (50.0, 0.0, 0.0), 2.3669),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (61.0, -5.0, 29.0), 22.8977),
    ((50.0, 2.5, 0.0), (56.0, -27.0, -3.0), 31.9030),
    ((50.0, 2.5, 0.0), (58.0, 24.0, 15.0), 19.4535),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


def test_ciede2000_matches_the_published_test_data() -> None:
    got = ciede2000(np.array([p[0] for p in SHARMA]), np.array([p[1] for p in SHARMA]))
    assert got == pytest.approx([p[2] for p in SHARMA], abs=1e-4)
    assert srgb_to_lab(np.array([255, 0, 0])) == pytest.approx([53.2408, 80.0925, 67.2032], abs=1e-3)
    assert srgb_to_lab(np.array([255, 255, 255])) == pytest.approx([100, 0, 0], abs=1e-3)


def test_palette_compliance(tmp_path) -> None:
    red = np.zeros((T, H, W, 3), np.uint8)
    red[...] = (200, 16, 46)  # the brand red
    red[:, H // 2:, :] = (250, 250, 250)  # on white
    green = red.copy()
    green[:, : H // 2, :] = (40, 160, 60)
    brand = BrandProfile("acme", "ACME", (), Path("-"), palette=("#C8102E", "#FFFFFF"),
                         checks={"palette": {"min_share": 0.6}})
    on = run_checks(media.write_clip(red, FPS, tmp_path / "red.mp4").path, EXPECTED, brand, only=["palette"])[0]
    off = run_checks(media.write_clip(green, FPS, tmp_path / "green.mp4").path, EXPECTED, brand, only=["palette"])[0]
    assert on.passed and on.value > 0.95
    assert not off.passed and off.value == pytest.approx(0.5, abs=0.05)
    assert "off-palette: #" in off.message and "to #" in off.message
    green_share = sum(d["share"] for d in off.details["dominant"] if d["delta_e"] > 20)
    assert green_share == pytest.approx(0.5, abs=0.05)
