"""The `wanflow` command as a user runs it: exit codes, `file:row:field` messages, no tracebacks,
nothing written for a bad brief, and the demo end to end in a fresh home.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES

WANFLOW = [sys.executable, "-m", "cli.main"]
ROOT = Path(__file__).resolve().parent.parent


def wanflow(*args: str, home: Path, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "WANFLOW_"))}
    environ |= {"WANFLOW_HOME": str(home), "COLUMNS": "200", **env}
    return subprocess.run([*WANFLOW, *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=timeout)


def write(tmp_path: Path, text: str) -> Path:
    brief = tmp_path / "brief.yaml"
    brief.write_text(text, encoding="utf-8")
    (tmp_path / "brands").mkdir(exist_ok=True)
    (tmp_path / "brands" / "acme.yaml").write_text((EXAMPLES / "brands" / "acme.yaml").read_text("utf-8"), "utf-8")
    return brief


GOOD = """campaign: cli-test
brand: acme
model: wan-t2v@champion
defaults: {num_frames: 9, width: 64, height: 32, variants: 1, formats: ["16:9"], steps: 2, seed: 1}
items:
  - id: a
    prompt: "A red sneaker on a white floor"
"""


@pytest.mark.parametrize("command", [[], ["validate"], ["run"], ["review", "decide"], ["publish"], ["lineage"],
                                     ["models", "list"], ["db", "upgrade"], ["demo"], ["provenance", "verify"],
                                     ["provenance", "dev-ca"]])
def test_every_command_has_help(command, tmp_path):
    r = wanflow(*command, "--help", home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    assert "Usage" in r.stdout


@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_brief_exits_2_lists_every_problem_and_writes_nothing(command, tmp_path):
    brief = write(tmp_path, GOOD.replace("num_frames: 9", "num_frames: 10").replace(
        '  - id: a\n    prompt: "A red sneaker on a white floor"\n',
        '  - id: a\n    prompt: ""\n  - id: a\n    prompt: "' + "x" * 5000 + '"\n'))
    home = tmp_path / "home"
    r = wanflow(command, str(brief), home=home)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.splitlines()
    assert any(line.startswith(f"{brief}:") and ":prompt:" in line for line in lines), r.stderr
    assert any("num_frames:" in line and "4k+1" in line for line in lines), r.stderr
    assert any(":id:" in line and "duplicate" in line.lower() for line in lines), r.stderr
    assert not home.exists(), f"an invalid brief must write nothing, found {list(home.rglob('*'))}"


def test_not_yaml_is_a_clear_error(tmp_path):
    brief = write(tmp_path, "campaign: [unclosed\n")
    r = wanflow("validate", str(brief), home=tmp_path / "home")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"{brief}:")


def test_review_reject_without_reason_is_refused(tmp_path):
    r = wanflow("review", "decide", "1", "--reject", "--as", "alice", home=tmp_path / "home")
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.slow
def test_demo_end_to_end_then_lineage_json(tmp_path):
    home = tmp_path / "home"
    r = wanflow("demo", home=home, timeout=1500)  # two campaigns, an edit, every rendition marked: minutes on 2 cores
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for needle in ("published files", "MLflow UI", "Prefect UI", "lineage of", "stand-in"):
        assert needle in r.stdout
    mp4s = sorted((home / "published" / "spring-launch").glob("*.mp4"))
    assert mp4s and (home / "published" / "spring-launch" / "manifest.json").exists()
    r = wanflow("lineage", str(mp4s[0]), "--json", home=home)
    assert r.returncode == 0, r.stderr
    chain = json.loads(r.stdout)
    assert chain["publication"]["uri"] == str(mp4s[0])
    assert chain["review"][0]["reviewer"].startswith("demo-approver")
    assert chain["model_version"]["variant"] == "wan-tiny"
    # the example's edit: the hero clip reframed to 9:16, published, traced to the edit and to its source
    stories = sorted((home / "published" / "spring-launch-stories").glob("*.mp4"))
    assert stories, r.stdout[-3000:]
    edited = json.loads(wanflow("lineage", str(stories[0]), "--json", home=home).stdout)
    assert edited["edit"]["op"] == "reframe" and edited["model_version"]["variant"] == "wan-tiny-vace"
    assert edited["edit"]["source_lineage"]["prompt_item"]["item_key"] == "hero-shot"
    assert edited["edit"]["source_lineage"]["review"][0]["decision"] == "approve"
    r = wanflow("lineage", "asset:99999", home=home)
    assert r.returncode == 2 and "not found" in r.stderr
    _demo_copies_are_found(home, mp4s)
    # the demo's history: every clip QC let through was approved, so kappa applies nowhere and nothing is suggested
    r = wanflow("qc", "agreement", "--campaign", "spring-launch", "--json", home=home)
    assert r.returncode == 0, r.stderr
    agreement = json.loads(r.stdout)
    assert agreement["clips_reviewed"] > 0 and agreement["rejected"] == 0
    assert agreement["clips_reviewed"] == agreement["decisions"]["approve"]
    ran = [c for c in agreement["checks"] if c["n"]]
    assert ran and all(c["kappa"] is None and "reviewers approved every clip" in c["kappa_note"] for c in ran)
    assert not any(c["suggestions"] for c in agreement["checks"]) and Path(agreement["report"]).is_file()


def _demo_copies_are_found(home: Path, mp4s: list[Path]) -> None:
    """Issue 17: every published rendition carries the watermark, the fingerprint and the soft binding; a
    metadata-stripped, re-encoded, downscaled copy is traced to its lineage; an unrelated video is not found."""
    from imageio_ffmpeg import get_ffmpeg_exe

    from adapters.provenance import verify
    from catalog.db import open_catalog, session_scope
    from catalog.models import FingerprintHash, RenditionMark

    published = sorted((home / "published").rglob("*.mp4"))  # both campaigns': the example's and its edit's
    assert len(published) > len(mp4s)
    for f in published:
        assert verify(f).soft_bindings, f.name
    with session_scope(open_catalog(f"sqlite:///{home / 'catalog.db'}")) as s:
        marks = s.query(RenditionMark).filter(RenditionMark.asset_id.is_not(None)).all()
        assert len(marks) == len(published) and all(m.payload is not None and m.readback for m in marks)
        assert s.query(FingerprintHash).count() >= len(published)
    copy, other = home / "copy.mp4", home / "unrelated.mp4"
    ffmpeg = [get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run([*ffmpeg, "-i", str(mp4s[0]), "-map_metadata", "-1", "-vf", "scale=iw/2:-2", "-c:v", "libx264",
                    "-crf", "28", str(copy)], check=True)
    subprocess.run([*ffmpeg, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=24:duration=2", "-c:v", "libx264",
                    str(other)], check=True)
    r = wanflow("provenance", "detect", str(copy), "--json", home=home)
    assert r.returncode in (3, 4), r.stdout[-2000:] + r.stderr[-2000:]  # by watermark, else by fingerprint
    found = json.loads(r.stdout)
    assert found["lineage"]["campaign"] == "spring-launch" and found["lineage"]["approver"].startswith("demo-approver")
    r = wanflow("provenance", "detect", str(other), home=home)
    assert r.returncode == 5 and "not found" in r.stdout


def test_the_root_lists_every_command_with_the_help_its_module_gives_it():
    """`wanflow --help` lists the commands from cli.main.COMMANDS without importing their modules; the table must
    say what the modules say, and no command of a module may be missing from it."""
    import importlib

    import typer.main

    from cli.main import COMMANDS, load_command

    for name, (_, help_text) in COMMANDS.items():
        assert load_command(name).help == help_text, name
    for module in {m for m, _ in COMMANDS.values()}:
        group = typer.main.get_group(importlib.import_module(module).app)
        if group.help is None:  # a module of top-level commands: each one is in the table, under its module
            assert {n: COMMANDS.get(n, ("?",))[0] for n in group.commands} == {n: module for n in group.commands}
        else:  # a command group
            assert module in {m for n, (m, _) in COMMANDS.items() if n not in group.commands}


def test_help_lists_the_commands_without_loading_them(tmp_path):
    out = wanflow("--help", home=tmp_path)
    assert out.returncode == 0
    for name in ("validate", "run", "lineage", "review", "rollout"):
        assert f"│ {name} " in out.stdout
    out = wanflow("nosuch", home=tmp_path)
    assert out.returncode == 2 and "No such command 'nosuch'" in out.stderr
