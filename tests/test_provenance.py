"""C2PA content credentials with c2pa-python and a development CA made here: the manifest reads back
with the AI digital source type, the generator and the raw clip as ingredient; tampering is detected;
`wanflow provenance verify` says so with its exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_cli import wanflow

from adapters import encode, media, provenance
from governance.delivery import DeliveryPolicy
from governance.renditions import PosterPreset, VideoPreset

TINY = VideoPreset(name="tiny-square", aspect="1:1", width=64, height=64, fps=24)
CLAIM = provenance.Credentials(title="hero-v0-tiny-square.mp4", generator="wan-tiny (stand-in)",
                         generator_version="wan-t2v/1", campaign="spring", item="hero",
                         lineage={"raw_clip_asset_id": 7, "job_id": 3})


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("raw") / "hero-v0-abc.mp4"
    media.write_clip(rng.integers(0, 255, (9, 48, 64, 3), np.uint8), 16, path)
    return path


@pytest.fixture(scope="module")
def signed(raw, dev_ca, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("signed")
    out = {}
    for preset in (TINY, TINY.model_copy(update={"name": "tiny-webm", "container": "webm"})):
        unsigned = d / f"unsigned.{preset.extension}"
        encode.render_video(raw, unsigned, preset, DeliveryPolicy())
        out[preset.container] = d / f"hero.{preset.extension}"
        provenance.sign(unsigned, out[preset.container], CLAIM, raw, dev_ca)
    encode.render_poster(out["mp4"], d / "poster-unsigned.jpg", PosterPreset())
    out["jpg"] = d / "poster.jpg"
    provenance.sign(d / "poster-unsigned.jpg", out["jpg"], CLAIM, raw, dev_ca)
    return out


def anchors(dev_ca) -> Path:
    return provenance.dev_trust_anchor(dev_ca.key.parent)


@pytest.mark.parametrize("kind", ["mp4", "webm", "jpg"])
def test_manifest_reads_back_as_ai_generated_with_the_raw_clip_as_ingredient(signed, raw, dev_ca, kind):
    v = provenance.verify(signed[kind], anchors(dev_ca))
    assert v.state == "Trusted" and v.ok and not v.failures
    assert v.digital_source_types == [provenance.TRAINED_ALGORITHMIC_MEDIA] and v.ai_generated
    assert v.generator == {"name": "wan-tiny (stand-in)", "version": "wan-t2v/1"}
    assert v.ingredients == [{"title": raw.name, "format": "video/mp4", "relationship": "componentOf"}]
    assert v.lineage == {"campaign": "spring", "item": "hero", "raw_clip_asset_id": 7, "job_id": 3}
    assert "DEVELOPMENT" in v.signer["issuer"]
    assert (v.sidecar is not None) == (kind == "webm")  # WebM has no embedding: a .c2pa sidecar


def test_signed_mp4_is_still_a_faststart_h264_rendition(signed):
    info = media.probe(signed["mp4"])
    assert (info.codec, info.profile, info.faststart, info.width) == ("h264", "High", True, 64)


@pytest.mark.parametrize("kind", ["mp4", "webm", "jpg"])
def test_tampering_is_detected(signed, dev_ca, tmp_path, kind):
    bad = tmp_path / signed[kind].name
    data = bytearray(signed[kind].read_bytes())
    data[-len(data) // 3] ^= 0xFF  # one byte of the picture data
    bad.write_bytes(bytes(data))
    if kind == "webm":
        shutil.copy(provenance.sidecar_path(signed[kind]), provenance.sidecar_path(bad))
    v = provenance.verify(bad, anchors(dev_ca))
    assert v.state == "Invalid" and not v.ok
    assert any("mismatch" in f for f in v.failures), v.failures


def test_trust_depends_on_the_anchors(signed, tmp_path):
    v = provenance.verify(signed["mp4"])  # no trust list: the signature is checked, the signer is not
    assert v.state == "Valid" and v.ok and not v.trust_checked
    other = provenance.make_dev_ca(tmp_path / "other-ca")
    v = provenance.verify(signed["mp4"], provenance.dev_trust_anchor(other.key.parent))
    assert not v.ok and any("untrusted" in f for f in v.failures)


def test_unsigned_file_has_no_manifest(raw):
    v = provenance.verify(raw)
    assert v.state == "absent" and not v.ok and not v.ai_generated


def test_cli_verify_exit_codes(signed, raw, dev_ca, tmp_path):
    home = tmp_path / "home"
    r = wanflow("provenance", "verify", str(signed["mp4"]), "--trust", str(anchors(dev_ca)), "--json", home=home)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["state"] == "Trusted" and out["ai_generated"] and out["ingredients"][0]["title"] == raw.name
    r = wanflow("provenance", "verify", str(signed["jpg"]), home=home,
                WANFLOW_C2PA_TRUST_ANCHORS=str(anchors(dev_ca)))
    assert r.returncode == 0 and "Trusted" in r.stdout and "trainedAlgorithmicMedia" in r.stdout
    bad = tmp_path / "bad.mp4"
    data = bytearray(signed["mp4"].read_bytes())
    data[-len(data) // 3] ^= 0xFF
    bad.write_bytes(bytes(data))
    r = wanflow("provenance", "verify", str(bad), "--trust", str(anchors(dev_ca)), home=home)
    assert r.returncode == 1 and "Invalid" in r.stdout and "Traceback" not in r.stderr
    r = wanflow("provenance", "verify", str(raw), home=home)
    assert r.returncode == 1 and "absent" in r.stdout
    r = wanflow("provenance", "verify", str(tmp_path / "missing.mp4"), home=home)
    assert r.returncode == 2 and "no such file" in r.stderr


def test_publishing_without_a_signing_key_is_refused(tmp_path):
    r = wanflow("publish", "spring-launch", home=tmp_path / "home")
    assert r.returncode == 2 and "WANFLOW_C2PA_KEY" in r.stderr and "Traceback" not in r.stderr
    r = wanflow("provenance", "dev-ca", str(tmp_path / "ca"), home=tmp_path / "home")
    assert r.returncode == 0 and "WANFLOW_C2PA_CERT_CHAIN=" in r.stdout
    assert (tmp_path / "ca" / "dev-root-ca.pem").is_file()


RENDER_PRESETS = """video:
  - {name: square-small, aspect: "1:1", width: 128, height: 128, fps: 24, x264_preset: veryfast}
preview: {width: 64, fps: 8, seconds: 1}
"""


def test_the_manifest_title_is_the_delivered_file_name(settings, tmp_path):
    """Not the asset store's internal name (`<clip id>-<preset>.mp4`): the name the file has where it is delivered."""
    from review_helpers import seed_campaign

    from adapters.destinations import LocalFolder
    from catalog.db import open_catalog
    from flows.publish import signing_config
    from governance.renditions import load_presets
    from wan_tasks import publish, render

    (tmp_path / "presets.yaml").write_text(RENDER_PRESETS, "utf-8")
    clip = seed_campaign(settings, name="title-test", items=("hero",), variants=1)[0]
    engine = open_catalog(settings.catalog_db_url)
    asset_ids = render.render_clip(engine, clip, settings.assets_dir, load_presets(tmp_path / "presets.yaml"),
                                   publish.delivery_policy(engine, clip, None), signing_config(settings), workers=1)
    publish.deliver_clip(engine, clip, asset_ids, LocalFolder(tmp_path / "out"))
    delivered = sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert [p.name for p in delivered] == ["hero-v0-poster.jpg", "hero-v0-preview.webp", "hero-v0-square-small.mp4"]
    for f in delivered:
        v = provenance.verify(f, settings.c2pa_trust_anchors)
        assert v.ok and v.title == f.name, (f.name, v.title, v.failures)
