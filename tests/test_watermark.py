"""The invisible watermark, the fingerprint and `wanflow provenance detect`, on SQLite and PostgreSQL.

A real rendition of a real picture (matplotlib's sample photograph, panned) is marked before its final
encode, reads its payload back (its QC), carries the C2PA soft binding, and is found again: by its
credentials as delivered; by the watermark once stripped, re-encoded and downscaled with ffmpeg; by the
fingerprint once mirrored; and an unrelated video is not found. A rendition the policy requires a watermark
on and which has none is refused at publishing, with the reason, the setting and the outcome recorded."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest
from imageio_ffmpeg import get_ffmpeg_exe
from PIL import Image
from sqlalchemy import select
from test_cli import wanflow

from adapters import media, provenance
from governance import watermark as rules

PRESETS = """video:
  - {name: square-small, aspect: "1:1", width: 384, height: 384, fps: 24, x264_preset: veryfast}
preview: {width: 64, fps: 8, seconds: 1}
"""


@pytest.fixture(scope="session")
def prefect_api():
    """These tests run no flow: no Prefect test server (the conftest's autouse one) for them."""
    yield


def natural_frames(n: int = 21, w: int = 320, h: int = 240) -> np.ndarray:
    """A slow pan over a photograph (matplotlib's sample image): what a watermark has to live in."""
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        img = np.asarray(Image.open(f).convert("RGB"))
    return np.stack([np.asarray(Image.fromarray(img[40 + t:40 + t + 420, 30 + 2 * t:30 + 2 * t + 440]).resize((w, h)))
                     for t in range(n)])


def ffmpeg(*args: str) -> None:
    subprocess.run([get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


# --- the rules, no media ---------------------------------------------------------------------------------------

def test_payload_rules():
    assert rules.bits_to_id(rules.id_to_bits(0xDEADBEEF)) == 0xDEADBEEF
    rng = random.Random(3)
    issued: list[int] = []
    for _ in range(200):
        issued.append(rules.new_mark_id(issued, rng))
    assert min(rules.hamming(a, b) for i, a in enumerate(issued) for b in issued[i + 1:]) >= rules.MIN_ID_DISTANCE
    one_off = issued[5] ^ (1 << 7)
    read = rules.Read(one_off, 10, 0.4)
    assert rules.resolve(read, issued) == (issued[5], 1)
    assert rules.resolve(rules.Read(issued[5] ^ 0b111, 10, 0.4), issued) == (None, None)  # 3 bits off: nobody
    assert rules.readback_verdict(issued[5], read)["passed"] is False  # the rendition itself must read exactly
    assert rules.worth_retrying({"passed": False, "bit_accuracy": 31 / 32, "frames_read": 12})  # one bit: another id
    assert not rules.worth_retrying({"passed": False, "bit_accuracy": 30 / 32, "frames_read": 12})  # noise: none will do
    assert not rules.worth_retrying({"passed": True, "bit_accuracy": 1.0, "frames_read": 12})
    assert not rules.worth_retrying(None)
    assert rules.refusal(False, False, None) is None
    assert "required by the brand" in rules.refusal(True, False, {"passed": False, "bit_accuracy": 0.9})
    assert "has none" in rules.refusal(False, True, None)
    assert rules.refusal(True, True, {"passed": True}) is None
    h = [(0x0F0F0F0F0F0F0F0F, 0xF0F0F0F0F0F0F0F0)]
    assert rules.similarity(h, [0xF0F0F0F0F0F0F0F0]) == 1.0  # the mirror image's hash counts


# --- the whole path on a catalog ---------------------------------------------------------------------------------

def _render(settings, tmp_path, name: str, marking=None, brand_requires: bool = False):  # noqa: ANN001
    from review_helpers import seed_campaign

    from catalog.db import open_catalog
    from flows.publish import signing_config
    from governance.renditions import load_presets
    from wan_tasks import publish, render
    from wan_tasks.marking import Marking

    (tmp_path / "presets.yaml").write_text(PRESETS, "utf-8")
    clip = seed_campaign(settings, name=name, items=("hero",), variants=1)[0]
    engine = open_catalog(settings.catalog_db_url)
    from catalog.db import session_scope
    from catalog.models import Asset

    with session_scope(engine) as s:
        raw = Path(s.get(Asset, clip).uri)
    media.write_clip(natural_frames(), 16, raw)  # the seeded clip becomes a photograph
    policy = publish.delivery_policy(engine, clip, None)
    if brand_requires:
        policy = policy.model_copy(update={"watermark": rules.WatermarkPolicy(required=True)})
    ids = render.render_clip(engine, clip, settings.assets_dir, load_presets(tmp_path / "presets.yaml"), policy,
                             signing_config(settings), workers=1, marking=marking or Marking())
    return engine, clip, ids


def test_marked_rendition_reads_back_and_is_detected_every_way(settings, tmp_path):
    from adapters.destinations import LocalFolder
    from catalog.db import session_scope
    from catalog.models import FingerprintHash, QcResult, RenditionMark
    from wan_tasks import publish
    from wan_tasks.detect import detect

    engine, clip, ids = _render(settings, tmp_path, "wm-test")
    rendition = ids[0]
    with session_scope(engine) as s:
        mark = s.scalar(select(RenditionMark).where(RenditionMark.asset_id == rendition))
        payload = mark.payload
        assert mark.method == "rivaGan" and mark.readback["passed"] and mark.readback["bit_accuracy"] == 1.0
        qc = s.scalar(select(QcResult).where(QcResult.asset_id == rendition, QcResult.check == "watermark_readback"))
        assert qc.passed and qc.judge["package"] == "invisible-watermark" and len(qc.judge["weights_sha256"]) == 2
        assert len(s.scalars(select(FingerprintHash).where(FingerprintHash.mark_id == mark.id)).all()) >= 4

    out = tmp_path / "out"
    publish.deliver_clip(engine, clip, ids, LocalFolder(out), require_watermark=True)  # it reads back: delivered
    delivered = next(out.rglob("*-square-small.mp4"))
    v = provenance.verify(delivered, settings.c2pa_trust_anchors)
    assert v.ok and v.soft_bindings and v.soft_bindings[0]["blocks"][0]["value"] == f"{payload:08x}"
    assert v.soft_bindings[0]["alg"] == "org.wanflow.rivagan-residual.v1"

    anchors = settings.c2pa_trust_anchors
    d = detect(engine, delivered, anchors)
    assert d.found_by == "credentials" and d.rendition_asset_id == rendition
    assert d.lineage["campaign"] == "wm-test" and "(hero)" in d.lineage["prompt"]
    assert d.lineage["model_version"] == "wan-t2v/1" and d.lineage["publications"][0]["status"] == "delivered"

    # what a platform does: metadata stripped, downscaled to half, re-encoded at CRF 28: the lineage is found
    copy = tmp_path / "copy.mp4"
    ffmpeg("-i", str(delivered), "-map_metadata", "-1", "-vf", "scale=192:192", "-c:v", "libx264", "-crf", "28",
           "-preset", "veryfast", str(copy))
    assert provenance.verify(copy).state == "absent"
    d = detect(engine, copy, anchors)
    assert d.found_by in ("watermark", "fingerprint") and d.rendition_asset_id == rendition, d.steps
    assert d.lineage["campaign"] == "wm-test"

    reencoded = tmp_path / "reencoded.mp4"  # stripped and re-encoded at its size: the watermark alone finds it
    ffmpeg("-i", str(delivered), "-map_metadata", "-1", "-c:v", "libx264", "-crf", "23", "-preset", "veryfast",
           str(reencoded))
    d = detect(engine, reencoded, anchors)
    assert d.found_by == "watermark" and d.rendition_asset_id == rendition, d.steps
    assert d.watermark["payload"] == f"{payload:08x}" and d.watermark["bit_errors"] <= 1

    flipped = tmp_path / "flipped.mp4"  # a mirror image defeats the watermark; the fingerprint hashes mirrors too
    ffmpeg("-i", str(copy), "-vf", "hflip", "-c:v", "libx264", "-crf", "23", "-preset", "veryfast", str(flipped))
    d = detect(engine, flipped, anchors)
    assert d.found_by == "fingerprint" and d.rendition_asset_id == rendition, d.steps
    assert d.fingerprint["candidates"][0]["similarity"] >= rules.MATCH_SIMILARITY

    unrelated = tmp_path / "unrelated.mp4"
    x = np.linspace(0, 6, 320)[None, :, None]
    media.write_clip(np.stack([(127 + 100 * np.sin(x * (1 + t / 8) + np.linspace(0, 3, 240)[:, None, None] * [1, 2, 3]))
                               .astype(np.uint8) for t in range(21)]), 16, unrelated)
    d = detect(engine, unrelated, anchors)
    assert d.found_by is None and d.lineage is None
    assert d.fingerprint["candidates"] and d.fingerprint["candidates"][0]["similarity"] < rules.MATCH_SIMILARITY

    # the command: exit codes and JSON
    env = {"WANFLOW_CATALOG_URL": settings.catalog_db_url, "WANFLOW_C2PA_TRUST_ANCHORS": str(anchors)}
    r = wanflow("provenance", "detect", str(reencoded), "--json", home=tmp_path / "cli-home", **env)
    assert r.returncode == 3, r.stderr
    assert json.loads(r.stdout)["lineage"]["rendition"]["asset_id"] == rendition
    r = wanflow("provenance", "detect", str(unrelated), home=tmp_path / "cli-home", **env)
    assert r.returncode == 5 and "not found" in r.stdout


def test_publish_refuses_a_rendition_without_a_readable_watermark(settings, tmp_path):
    from adapters.destinations import LocalFolder
    from catalog.db import session_scope
    from catalog.models import AuditEvent, Publication, RenditionMark
    from wan_tasks import publish
    from wan_tasks.marking import Marking

    engine, clip, ids = _render(settings, tmp_path, "wm-refuse", marking=Marking(method="none"), brand_requires=True)
    with session_scope(engine) as s:
        mark = s.scalar(select(RenditionMark).where(RenditionMark.asset_id == ids[0]))
        assert mark.payload is None and mark.policy == {"brand_requires": True} and mark.fingerprint["frames"] > 0
    with pytest.raises(publish.PublishRefused, match="required by the brand but this rendition has none"):
        publish.deliver_clip(engine, clip, ids, LocalFolder(tmp_path / "out"))
    with session_scope(engine) as s:
        pub = s.scalar(select(Publication).where(Publication.asset_id == ids[0]))
        assert pub.status == "refused" and "watermark required by the brand" in pub.error
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "publication.refused"))
        assert event.payload["watermark"]["required_by_brand"] is True
        others = s.scalars(select(Publication).where(Publication.asset_id.in_(ids[1:]))).all()
        assert {p.status for p in others} == {"delivered"}  # the poster and preview went; only the video was refused
    assert not list((tmp_path / "out").rglob("*-square-small.mp4"))
