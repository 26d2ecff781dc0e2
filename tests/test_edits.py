"""Editing: reframe, extend, replace/remove, restyle and reference on the tiny VACE stand-in (`wan-tiny-vace`, a
real WanVACEPipeline with seeded random weights) and the tiny T2V stand-in, from a brief, through the campaign
flow, on SQLite and PostgreSQL. The promised invariants are asserted on the *decoded* output files: the stand-in
preserves nothing by itself, so these hold only because the product pastes the source back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES
from sqlalchemy import select

from catalog.db import open_catalog, session_scope
from catalog.lineage import lineage
from catalog.models import Asset, AssetKind, GenerationJob, PromptItem, QcResult

W, H, T = 32, 16, 9  # the source: 2:1 landscape, 9 frames


def _source_frames() -> np.ndarray:
    """A smooth gradient with a square moving across it (so a seam or a shifted region would show)."""
    y, x = np.mgrid[0:H, 0:W]
    frames = []
    for t in range(T):
        f = np.stack([x * 6 + 20, y * 10 + 40, np.full_like(x, 120)], axis=-1).astype(np.uint8)
        f[4:12, 2 + 2 * t:10 + 2 * t] = (230, 40, 40)
        frames.append(f)
    return np.stack(frames)


def _folder(tmp_path: Path) -> Path:
    from adapters.media import write_clip
    from PIL import Image, ImageDraw

    d = tmp_path / "brief"
    (d / "brands").mkdir(parents=True)
    (d / "brands" / "acme.yaml").write_text((EXAMPLES / "brands" / "acme.yaml").read_text("utf-8"), "utf-8")
    write_clip(_source_frames(), 16, d / "source.mp4")
    mask = Image.new("L", (W, H), 0)
    ImageDraw.Draw(mask).rectangle((16, 0, 31, 15), fill=255)  # the right half
    mask.save(d / "mask.png")
    Image.new("RGB", (40, 40), (10, 200, 30)).save(d / "packshot.png")
    return d


EDIT_BRIEF = """campaign: edits
brand: acme
model: wan-t2v@champion
defaults: {num_frames: 5, width: 32, height: 32, steps: 2, seed: 4, formats: ["16:9"]}
items:
  - id: story
    prompt: "The same street, taller"
    edit: {source: source.mp4, op: reframe, to: "9:16"}
  - id: longer
    prompt: "The square keeps moving"
    edit: {source: source.mp4, op: extend, frames: 4, direction: forward, context_frames: 5}
  - id: nologo
    prompt: "A plain wall"
    edit: {source: source.mp4, op: replace, box: [8, 0, 24, 16], range: [2, 6]}
  - id: clean
    prompt: "Empty background"
    edit: {source: source.mp4, op: remove, mask: mask.png}
  - id: winter
    prompt: "The same scene in winter"
    edit: {source: source.mp4, op: restyle, strength: 0.6}
  - id: packshot
    prompt: "The product on a table"
    edit: {op: reference, references: [packshot.png]}
"""


def _decode(path: str) -> np.ndarray:
    from adapters.edit_media import read_video

    return read_video(Path(path))[0]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def run_brief(brief: Path, settings) -> list[int]:
    """A brief through the stages the campaign flow calls (validate, record, freeze models, plan, generate) and
    the edit checks of QC, without Prefect and the picture checks (tests/test_qc_stage.py covers those)."""
    from adapters import pipelines as m
    from wan_tasks import generate, intake, plan
    from wan_tasks.edit import record_edit_checks

    m.evict_all()
    valid = intake.validate(brief, settings)
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        brief_id = plan.record_brief(s, valid)
    model, _ = intake.resolve_models(settings, brief_id, valid.brand.name)
    with session_scope(engine) as s:
        job_ids = plan.plan_jobs(s, brief_id, model)
    batches, _ = generate.plan_batches(engine, job_ids, settings.engine_options)
    clips = [c for batch in batches for c in generate.generate_jobs(engine, batch, settings.assets_dir,
                                                                     settings.engine_options)]
    with session_scope(engine) as s:
        for c in clips:
            record_edit_checks(s, c)
    return clips


def use_built(settings, *folders: Path) -> None:
    """Let the registry's first-use bootstrap find the session's stand-ins instead of building them again."""
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    for f in folders:
        (settings.models_dir / f.name).symlink_to(f, target_is_directory=True)


def test_every_edit_op_runs_from_a_brief_and_keeps_its_promise(settings, tmp_path, tiny_model, tiny_vace_model):
    from catalog.models import ModelVersion
    from wan_tasks.regenerate import regenerate

    use_built(settings, tiny_model, tiny_vace_model)
    d = _folder(tmp_path)
    text = EDIT_BRIEF
    if settings.catalog_db_url.startswith("postgresql"):  # the catalog's part on PostgreSQL, the time on SQLite
        head, *items = text.split("  - id: ")
        text = head + "".join("  - id: " + i for i in items if i.split("\n")[0] in ("story", "longer", "clean"))
    (d / "brief.yaml").write_text(text, "utf-8")
    made = run_brief(d / "brief.yaml", settings)
    assert len(made) == text.count("  - id: ")
    src = _decode(str(d / "source.mp4"))
    engine = open_catalog(settings.catalog_db_url)
    with session_scope(engine) as s:
        rows = s.execute(select(PromptItem.item_key, GenerationJob, Asset, ModelVersion.variant)
                         .join(GenerationJob, GenerationJob.item_id == PromptItem.id)
                         .join(ModelVersion, ModelVersion.id == GenerationJob.model_version_id)
                         .join(Asset, Asset.job_id == GenerationJob.id)).all()
        clips = {key: (job, asset) for key, job, asset, _ in rows}
        variant = {key: v for key, _, _, v in rows}
        qc = {(r.asset_id, r.check): r for r in s.scalars(select(QcResult).where(QcResult.check.startswith("edit_")))}
        masks = s.scalars(select(Asset).where(Asset.kind == AssetKind.mask)).all()
        chain = lineage(s, f"asset:{clips['clean'][1].id}")
    assert variant.get("winter", "wan-tiny") == "wan-tiny"
    assert {variant[k] for k in clips if k != "winter"} == {"wan-tiny-vace"}

    # reframe: 32x16 -> 32x64 (9:16 on a 16-pixel grid), the source unchanged where it was
    job, asset = clips["story"]
    out = _decode(asset.uri)
    geo = job.params["edit"]["geometry"]
    assert out.shape == (T, 64, 32, 3) and (asset.width, asset.height) == (32, 64)
    region = out[:, geo["y"]:geo["y"] + H, geo["x"]:geo["x"] + W]
    assert _psnr(region, src) > 35
    assert np.abs(out[:, :geo["y"]].astype(int) - 127).mean() > 1  # the new area was generated, not left gray

    # extend: 9 source frames kept, 4 new ones after them
    out = _decode(clips["longer"][1].uri)
    assert out.shape[0] == T + 4 and _psnr(out[:T], src) > 35
    assert (clips["longer"][1].id, "edit_seam") in qc

    # remove with a mask image: the left half kept in every frame
    out = _decode(clips["clean"][1].uri)
    assert _psnr(out[:, :, :16], src[:, :, :16]) > 35

    # the edit QC checks passed on every masked op, on the decoded clips
    for key in ("story", "longer", "nologo", "clean"):
        if key in clips:
            r = qc[(clips[key][1].id, "edit_untouched_region")]
            assert r.passed is True and r.value > 30 and r.details["frames_violating"] == [], (key, r.details)

    # lineage: the mask is an asset with its sha256
    assert len(masks) == 1 and chain["edit"]["mask"]["asset_id"] == masks[0].id
    assert chain["edit"]["mask"]["sha256"] == masks[0].sha256 and chain["edit"]["op"] == "remove"
    assert chain["edit"]["source"]["path"].endswith("source.mp4") and chain["edit"]["source"]["sha256"]

    # the same job machinery: regenerate reproduces an edit's frames exactly
    assert regenerate(engine, clips["story"][0].id).matches
    if "nologo" not in clips:
        return  # PostgreSQL: the catalog part above; the remaining operations once, on SQLite

    # replace: outside the box (and outside frames 2..6 entirely) the source
    out = _decode(clips["nologo"][1].uri)
    keep = np.ones(out.shape[:3], bool)
    keep[2:7, 0:16, 8:24] = False
    assert _psnr(out[keep], src[keep]) > 35
    assert _psnr(out[2:7, :, 8:24], src[2:7, :, 8:24]) < 30  # the box was regenerated

    # restyle: video-to-video on the T2V model, same size and frames
    assert _decode(clips["winter"][1].uri).shape == src.shape

    # reference: the images are passed (the pipeline saw one) and recorded with their sha256
    ref_chain = lineage_of(engine, clips["packshot"][1].id)
    assert [Path(r["path"]).name for r in ref_chain["edit"]["references"]] == ["packshot.png"]
    assert ref_chain["edit"]["references"][0]["sha256"] and ref_chain["job"]["batch"]["edit"]["references"] == 1


def lineage_of(engine, asset_id: int) -> dict:
    with session_scope(engine) as s:
        return lineage(s, f"asset:{asset_id}")


BAD = """campaign: bad-edits
brand: acme
model: wan-t2v@champion
defaults: {{num_frames: 5, width: 32, height: 32, steps: 2}}
items:
{items}
"""


BAD_ITEMS = [  # (edit block, field, part of the message)
    ('{source: missing.mp4, op: reframe, to: "9:16"}', "edit.source", "does not exist"),
    ('{source: notes.txt, op: reframe, to: "9:16"}', "edit.source", "cannot be decoded"),
    ('{source: mask.png, op: reframe, to: "9:16"}', "edit.source", "has 1 frame(s); an edit needs at least 5"),
    ('{source: source.mp4, op: extend, frames: 4, context_frames: 13}', "edit.context_frames", "usable frames"),
    ('{source: source.mp4, op: replace, mask: wide.png}', "edit.mask", "the source is 32x16"),
    ('{op: reference, references: [notes.txt]}', "edit.references", "cannot be read as an image"),
    ('{source: asset:999, op: reframe, to: "9:16"}', "edit.source", "no such asset"),
    ('{source: source.mp4, op: spin}', "edit.op", "unknown operation"),
    ('{source: source.mp4, op: extend, frames: 3}', "edit.frames", "multiple of 4"),
]


def test_bad_edits_name_file_row_and_field_and_write_nothing(tmp_path):
    from core.settings import Settings
    from governance.brief_schema import BriefInvalid
    from PIL import Image
    from wan_tasks.intake import validate

    d = _folder(tmp_path)
    Image.new("L", (64, 16)).save(d / "wide.png")
    (d / "notes.txt").write_text("not an image")
    brief = d / "brief.yaml"
    cfg = Settings(home=tmp_path / "home", catalog_url=f"sqlite:///{tmp_path / 'home' / 'catalog.db'}")
    open_catalog(cfg.catalog_db_url)  # an (empty) catalog, so that asset:999 is looked up and not found
    # the block's structure is checked with the brief; its files once the brief is well-formed
    for bad in (BAD_ITEMS[-2:], BAD_ITEMS[:-2]):
        items = "".join(f"  - id: item-{i}\n    prompt: A red sneaker on a white floor\n    edit: {e}\n"
                        for i, (e, _, _) in enumerate(bad))
        brief.write_text(BAD.format(items=items.rstrip()), "utf-8")
        with pytest.raises(BriefInvalid) as err:
            validate(brief, cfg)
        got = sorted(err.value.problems, key=lambda p: p.row)
        assert len(got) == len(bad), [str(p) for p in got]
        for i, (p, (_, field, message)) in enumerate(zip(got, bad)):
            assert (p.file, p.row, p.field) == (str(brief), 8 + 3 * i, field) and message in p.message, str(p)
    # an operation the chosen model cannot do
    brief.write_text(BAD.format(items='  - id: one\n    prompt: A red sneaker on a white floor\n'
                                      '    edit: {source: source.mp4, op: reframe, to: "9:16"}')
                     .replace("model: wan-t2v@champion", "model: wan-t2v@champion\nedit_model: wan-t2v@champion"),
                     "utf-8")
    with pytest.raises(BriefInvalid) as err:
        validate(brief, cfg)
    (p,) = err.value.problems
    assert (p.row, p.field) == (9, "edit.op") and "reframe needs a VACE model" in p.message, str(p)
    assert not (tmp_path / "home" / "assets").exists()
    from catalog.models import Brief
    with session_scope(open_catalog(cfg.catalog_db_url)) as s:
        assert s.scalar(select(Brief)) is None  # nothing recorded or not any((tmp_path / "home" / "assets").rglob("*.mp4"))


SOURCE_BRIEF = """campaign: spring
brand: acme
model: wan-t2v@champion
defaults: {num_frames: 5, width: 32, height: 16, variants: 1, formats: ["16:9"], steps: 2, seed: 2}
items:
  - id: hero
    prompt: "A red sneaker on a white floor"
  - id: outtake
    prompt: "A blue sneaker on a white floor"
"""


@pytest.mark.slow
def test_wanflow_edit_reframes_an_approved_clip_refuses_a_rejected_one_and_traces_both(tmp_path, tiny_model,
                                                                                     tiny_vace_model):
    """The catalog path: a clip of an earlier campaign named by item id; a rejected one is refused with the
    reviewer's reason (exit 2, no brief, no job); lineage shows the edit's chain and its source's."""
    import json
    import os
    import subprocess
    import sys

    from conftest import ROOT
    from core.settings import Settings
    from wan_tasks.review import decide
    from catalog.models import Decision

    cfg = Settings(home=tmp_path / "home", catalog_url=f"sqlite:///{tmp_path / 'home' / 'catalog.db'}")
    use_built(cfg, tiny_model, tiny_vace_model)
    d = _folder(tmp_path)
    (d / "spring.yaml").write_text(SOURCE_BRIEF, "utf-8")
    clips = run_brief(d / "spring.yaml", cfg)
    engine = open_catalog(cfg.catalog_db_url)
    with session_scope(engine) as s:  # review as the QC stage would route them (no picture checks here)
        from catalog.models import ClipStatus
        for c in clips:
            s.get(Asset, c).status = ClipStatus.in_review
        from wan_tasks.review import open_review
        for c in clips:
            open_review(s, c, "pass", [])
    with session_scope(engine) as s:
        decide(s, clips[0], Decision.approve, "on brief", "ana")
        decide(s, clips[1], Decision.reject, "wrong colour", "ana")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "WANFLOW_"))}
    env |= {"WANFLOW_HOME": str(cfg.home), "WANFLOW_CATALOG_URL": cfg.catalog_db_url, "COLUMNS": "200"}

    def wanflow(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600)

    refused = wanflow("edit", "item:spring/outtake", "--op", "reframe", "--to", "9:16", "--prompt", "taller")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "edit.source" in refused.stdout + refused.stderr and "was rejected in review" in refused.stdout + refused.stderr
    assert "wrong colour" in refused.stdout + refused.stderr
    assert not list((cfg.home_dir / "edits").glob("*.yaml"))
    with session_scope(engine) as s:
        assert s.scalar(select(GenerationJob).where(GenerationJob.edit_of_id.is_not(None))) is None

    made = wanflow("edit", "item:spring/hero", "--op", "reframe", "--to", "9:16", "--prompt", "the same floor, taller",
                   "--steps", "2")
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    with session_scope(engine) as s:
        job = s.scalar(select(GenerationJob).where(GenerationJob.edit_of_id == clips[0]))
        edited = s.scalar(select(Asset).where(Asset.job_id == job.id))
        assert (edited.width, edited.height) == (32, 64)
        qc = s.scalar(select(QcResult).where(QcResult.asset_id == edited.id, QcResult.check == "edit_untouched_region"))
        assert qc.passed is True
    chain = json.loads(wanflow("lineage", f"asset:{edited.id}", "--json").stdout)
    assert chain["edit"]["op"] == "reframe" and chain["edit"]["source_asset_id"] == clips[0]
    assert chain["edit"]["source_lineage"]["campaign"]["name"] == "spring"
    assert chain["edit"]["source_lineage"]["review"][0]["decision"] == "approve"
    tree = wanflow("lineage", f"asset:{edited.id}").stdout
    assert "edit  op=reframe" in tree and "source of this edit" in tree and "spring" in tree


def test_vace_presets_are_the_published_ones_and_geometry_rules():
    """Wan2.1 ``wan/configs/__init__.py`` SUPPORTED_SIZES and ``generate.py`` (50 steps, 81 frames, guidance 5.0,
    ``sample_shift = 16`` for vace tasks), read independently of governance/variants.py."""
    from governance import edits
    from governance.model_refs import TASK_OF
    from governance.variants import PRESETS

    small, large = PRESETS["wan2.1-vace-1.3b"], PRESETS["wan2.1-vace-14b"]
    assert (small.repo_id, set(small.sizes)) == ("Wan-AI/Wan2.1-VACE-1.3B-diffusers", {(832, 480), (480, 832)})
    assert set(large.sizes) == {(1280, 720), (720, 1280), (832, 480), (480, 832)}
    for p in (small, large):
        assert (p.task, p.steps, p.num_frames, p.guidance, p.flow_shift(832, 480), p.flow_shift(1280, 720)) == \
            ("vace", 50, 81, 5.0, 16.0, 16.0)
    assert PRESETS["wan-tiny-vace"].stand_in and TASK_OF["wan-vace"] == "vace"
    # reframe a 16:9-ish 832x480 source to 9:16: the canvas grows, the source sits centred on a 16-pixel grid
    g = edits.geometry({"op": "reframe", "to": "9:16"}, 832, 480, 81)
    assert (g.width, g.height, g.num_frames) == (832, 1488, 81) and g.y % 16 == 0 and g.x == 0
    g = edits.geometry({"op": "extend", "frames": 40, "direction": "backward", "context_frames": 9}, 64, 32, 83)
    assert (g.frames_used, g.num_frames, g.window, g.offset) == (81, 121, 49, 0)
    keep = edits.keep_mask({"op": "replace", "box": [0, 0, 8, 8], "range": [1, 2]}, edits.Geometry(16, 16, 5, 5))
    assert keep.sum() == 5 * 256 - 2 * 64 and not keep[1, :8, :8].any() and keep[0].all()
    # the checks fail where they should: a shifted region, and a jump at the seam
    rng = np.random.default_rng(0)
    src = rng.integers(0, 255, (5, 16, 16, 3), dtype=np.uint8)
    broken = src.copy()
    broken[3] = np.roll(src[3], 3, axis=1)
    r = edits.untouched_region(broken, src, np.ones((5, 16, 16), bool))
    assert r["passed"] is False and r["details"]["frames_violating"] == [3]
    smooth = np.repeat(np.linspace(0, 120, 9)[:, None, None, None], 4, axis=1).repeat(4, axis=2).repeat(3, axis=3)
    assert edits.seam_jump(smooth.astype(np.uint8), 5)["passed"] is True
    jumped = smooth.copy()
    jumped[5:] += 90
    assert edits.seam_jump(np.clip(jumped, 0, 255).astype(np.uint8), 5)["passed"] is False
