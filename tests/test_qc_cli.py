"""`wanflow qc FILE` and `wanflow policy check TEXT` as a user runs them: every result printed, exit 0 pass,
3 needs review, 4 blocked, 2 for bad input — never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import EXAMPLES
from qc_clips import FPS, H, T, W, _lavfi, frames
from qc_models import tiny_aesthetic, tiny_clip, tiny_dino, tiny_safety
from test_cli import wanflow

from adapters import media
from governance.qc import QC_CHECKS

ACME = ["--brand", "acme", "--brands-dir", str(EXAMPLES / "brands")]
SPEC = ["--width", str(W), "--height", str(H), "--fps", str(FPS), "--frames", str(T)]
LENIENT = """name: lenient
display_name: Lenient (test)
checks:
  text_video_alignment: {min_similarity: -1}
  aesthetic_score: {min_score: -1000}
  subject_consistency: {min_similarity: -1}
  unsafe_content: {max_probability: 1}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("qc-cli")
    (d / "brands").mkdir()
    (d / "brands" / "lenient.yaml").write_text(LENIENT, "utf-8")
    (d / "brands" / "broken.yaml").write_text("name: broken\ndisplay_name: B\nchecks: {blur: {min_sharpnes: 3}}\n")
    (d / "empty.mp4").write_bytes(b"")
    return {"clean": media.write_clip(frames(), FPS, d / "clean.mp4").path,
            "blur": _lavfi(d / "blur.mp4", f"testsrc2=size={W}x{H}:rate={FPS},gblur=sigma=6"),
            "black": _lavfi(d / "black.mp4", f"color=black:size={W}x{H}:rate={FPS}"),
            "empty": d / "empty.mp4", "brands": d / "brands",
            "models": d / "models"}


@pytest.mark.parametrize("command", [["qc"], ["policy"], ["policy", "check"]])
def test_help(command, tmp_path) -> None:
    r = wanflow(*command, "--help", home=tmp_path / "home")
    assert r.returncode == 0 and "Usage" in r.stdout, r.stderr


def test_clean_clip_passes_with_every_model_configured(files, tmp_path) -> None:
    m = files["models"]
    env = {"WANFLOW_CLIP_MODEL": str(tiny_clip(m / "clip")), "WANFLOW_SUBJECT_MODEL": str(tiny_dino(m / "dino")),
           "WANFLOW_SAFETY_MODEL": str(tiny_safety(m / "safety")),
           "WANFLOW_AESTHETIC_MODEL": str(tiny_aesthetic(m / "aesthetic"))}
    r = wanflow("qc", str(files["clean"]), "--brand", str(files["brands"] / "lenient.yaml"), *SPEC,
                "--prompt", "a red disc over a checkerboard", "--json", home=tmp_path / "home", **env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["outcome"] == "pass" and out["exit_code"] == 0 and out["brand"] == "lenient"
    assert [x["check"] for x in out["results"]] == list(QC_CHECKS)
    assert all(x["passed"] is True for x in out["results"]), [x for x in out["results"] if not x["passed"]]
    judges = {x["check"]: x["judge"] for x in out["results"]}
    assert judges["unsafe_content"]["detector"] == "image classifier (transformers)"  # the folder overrides NudeNet
    assert judges["suggestive_content"]["detector"] == "nudenet" and "320n.onnx" in judges["suggestive_content"]["weights"]
    assert judges["watermark"]["detector"] == "rapidocr-onnxruntime" and judges["blur"]["detector"] == "wanflow rules"


def test_exit_codes(files, tmp_path) -> None:
    home = tmp_path / "home"
    blur = wanflow("qc", str(files["blur"]), *ACME, *SPEC, "--prompt", "a test card", home=home)
    assert blur.returncode == 3, blur.stdout + blur.stderr
    assert "needs review" in blur.stdout and "blur: sharpness" in blur.stdout
    assert "text_video_alignment: not run: no clip model configured" in blur.stdout  # said, not hidden
    black = wanflow("qc", str(files["black"]), *ACME, "--json", home=home)
    assert black.returncode == 4
    found = {f["check"]: f for f in json.loads(black.stdout)["findings"]}
    assert found["black_frames"]["outcome"] == "block" and "33 of 33 frames black" in found["black_frames"]["message"]
    empty = wanflow("qc", str(files["empty"]), *ACME, "--json", home=home)
    assert empty.returncode == 4 and json.loads(empty.stdout)["findings"][0]["check"] == "decodable"


@pytest.mark.parametrize(("args", "needle"), [
    (["/no/such/clip.mp4", "--brand", "acme"], "/no/such/clip.mp4:0:file: no such file"),
    (["CLEAN", "--brand", "globex", "--brands-dir", "BRANDS"], "unknown brand 'globex'"),
    (["CLEAN", "--brand", "broken", "--brands-dir", "BRANDS"], "broken.yaml:0:checks.blur.min_sharpnes: unknown setting"),
])
def test_bad_input_exits_2(files, tmp_path, args, needle) -> None:
    args = [str(files["clean"]) if a == "CLEAN" else str(files["brands"]) if a == "BRANDS" else a for a in args]
    r = wanflow("qc", *args, home=tmp_path / "home")
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize(("text", "code", "needle"), [
    ("A red sneaker on a white floor", 0, "pass"),
    ("Runners on election day", 3, 'sensitive topic "politics": "election"'),
    ("Ｎ Ｉ Ｋ Ｅ running shoes", 4, 'blocked term "nike" (spaced out or disguised)'),
    ("ギャンブル", 4, 'blocked term "ギャンブル"'),
])
def test_policy_check(tmp_path, text, code, needle) -> None:
    r = wanflow("policy", "check", *ACME, text, home=tmp_path / "home")
    assert r.returncode == code and needle in r.stdout, r.stdout + r.stderr
    j = wanflow("policy", "check", *ACME, "--json", text, home=tmp_path / "home")
    assert j.returncode == code and json.loads(j.stdout)["outcome"] == {0: "pass", 3: "needs_review", 4: "block"}[code]
