"""Destinations through the real publish flow: S3 (moto's server on loopback, via fsspec/s3fs), a CMS webhook
(a local HTTP server), the local folder. Exactly once and intact: re-publishing sends nothing again; a failed
delivery is retried, recorded with its reason, and the rest proceeds; a server killed mid-upload leaves no
visible partial object and a re-run completes without duplicates."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest
from conftest import EXAMPLES
from servers import KillingProxy, MotoServer, Webhook
from sqlalchemy import func, select

from adapters.destinations import S3Bucket
from catalog.db import open_catalog, session_scope
from catalog.models import Asset, AssetKind, AuditEvent, Decision, Publication

BRIEF = """campaign: deliver-test
brand: acme
model: wan-t2v@champion
defaults: {num_frames: 5, width: 32, height: 32, variants: 2, formats: ["1:1"], steps: 2, seed: 3}
items:
  - id: shoe
    prompt: "A red sneaker on a white floor"
"""
# Small presets keep these tests about delivery, not encoding (tests/test_renditions.py covers the real ones).
PRESETS = """video:
  - {name: square-small, aspect: "1:1", width: 128, height: 128, fps: 24, x264_preset: veryfast}
preview: {width: 64, fps: 8, seconds: 1}
"""
FILES_PER_CLIP = 3  # rendition + poster + preview


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, dev_ca):
    """A campaign with two approved clips, on SQLite (the catalog on PostgreSQL is covered by test_pipeline)."""
    from core.settings import Settings
    from flows.campaign import campaign as run_campaign
    from wan_tasks.review import decide, pending

    d = tmp_path_factory.mktemp("deliver")
    (d / "brands").mkdir()
    (d / "brands" / "acme.yaml").write_text((EXAMPLES / "brands" / "acme.yaml").read_text("utf-8"), "utf-8")
    (d / "brief.yaml").write_text(BRIEF, "utf-8")
    (d / "presets.yaml").write_text(PRESETS, "utf-8")
    settings = Settings(home=d / "home", catalog_url=f"sqlite:///{d / 'catalog.db'}", presets_file=d / "presets.yaml",
                        c2pa_key=dev_ca.key, c2pa_cert_chain=dev_ca.cert_chain, publish_retries=1,
                        publish_retry_delay_s=0.1)
    run_campaign(str(d / "brief.yaml"), settings)
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        for p in pending(s, "deliver-test"):
            decide(s, p.asset_id, Decision.approve, "", "test-approver")
    return settings


@pytest.fixture
def aws(monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def moto(tmp_path, aws):
    server = MotoServer(tmp_path).start()
    S3Bucket("s3://media", endpoint_url=server.url).fs.mkdir("media")
    yield server
    server.kill()


def _publications(settings, destination: str) -> list[Publication]:
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        return list(s.scalars(select(Publication).where(Publication.destination == destination)))


def _object_sha(bucket: S3Bucket, key: str) -> str:
    return hashlib.sha256(bucket.fs.cat_file(f"{bucket.bucket}/{key}")).hexdigest()


def _writes(server: MotoServer) -> Counter:
    """Object writes per key as the server recorded them (uploads and server-side copies)."""
    return Counter(r["url"].split("?")[0].split("/media/", 1)[1] for r in server.recorded()
                   if r["method"] == "PUT" and "/media/" in r["url"])


def test_s3_and_webhook_deliver_exactly_once(campaign, moto):
    from flows.publish import publish

    hook = Webhook()
    settings = campaign.model_copy(update={"publish_to": "s3://media/campaigns", "s3_endpoint_url": moto.url,
                                           "webhook_url": hook.url})
    try:
        first = publish("deliver-test", settings)
        bucket = S3Bucket("s3://media/campaigns", endpoint_url=moto.url)
        keys = bucket.keys()
        assert first["publications"] == 2 * FILES_PER_CLIP and first["failed_files"] == 0, first
        assert first["manifest"] == "s3://media/campaigns/deliver-test/manifest.json"
        assert not [k for k in keys if ".incoming" in k]  # temporary objects are gone
        manifest = json.loads(bucket.fs.cat_file("media/campaigns/deliver-test/manifest.json"))
        for f in manifest["files"]:  # every object is there, whole, with the catalog's sha256
            key = f["uri"].removeprefix("s3://media/")
            assert key in keys and _object_sha(bucket, key) == f["sha256"]
            assert f["c2pa"]["status"] == "signed" and f["raw_clip_asset_id"] and f["job_id"]
        assert len(hook.calls) == 1 and hook.calls[0]["json"] == manifest
        assert hook.calls[0]["headers"]["Idempotency-Key"].startswith("deliver-test:")

        writes_before = _writes(moto)
        again = publish("deliver-test", settings)  # nothing new: no upload, no second notification
        assert again["publications"] == first["publications"] and again["webhook"] == "already notified"
        assert len(hook.calls) == 1
        assert _writes(moto) == writes_before + Counter({"campaigns/deliver-test/manifest.json": 0})
        pubs = _publications(settings, "s3://media/campaigns")
        assert len(pubs) == 2 * FILES_PER_CLIP and {p.status for p in pubs} == {"delivered"}
        assert all(p.attempts == 1 for p in pubs)
    finally:
        hook.close()


def test_failed_delivery_is_retried_recorded_and_the_rest_proceeds(campaign, tmp_path):
    from flows.publish import publish

    hook = Webhook(statuses=[500, 500])  # the CMS is down for two attempts: recorded as failed
    out = tmp_path / "out"
    settings = campaign.model_copy(update={"publish_to": str(out), "webhook_url": hook.url})
    blocked = out / "deliver-test" / "shoe-v0-poster.jpg"
    blocked.mkdir(parents=True)  # a folder where one file must go: every attempt fails
    try:
        first = publish("deliver-test", settings)
        assert first["failed_files"] == 1 and first["publications"] == 2 * FILES_PER_CLIP - 1
        assert first["webhook"].startswith("failed") and len(hook.calls) == 2  # tried, retried
        failed = [p for p in _publications(settings, "local") if p.status == "failed"]
        assert len(failed) == 1 and failed[0].attempts == 2 and "IsADirectoryError" in failed[0].error
        manifest = json.loads((out / "deliver-test" / "manifest.json").read_text())
        assert [f["file"] for f in manifest["failed"]] == ["shoe-v0-poster.jpg"] and len(manifest["files"]) == 5
        with session_scope(open_catalog(settings.catalog_db_url)) as s:
            events = s.scalars(select(AuditEvent.action).where(AuditEvent.action.like("webhook.%"))).all()
            assert events.count("webhook.failed") == 2

        blocked.rmdir()
        second = publish("deliver-test", settings)  # the re-run delivers only what was missing
        assert (second["failed_files"], second["publications"]) == (0, 2 * FILES_PER_CLIP)
        assert second["webhook"].startswith("notified") and len(hook.calls) == 3
        pubs = {p.uri: p for p in _publications(settings, "local")}
        assert pubs[str(blocked)].status == "delivered" and pubs[str(blocked)].attempts == 3
        assert sorted(p.attempts for p in pubs.values()) == [1, 1, 1, 1, 1, 3]
    finally:
        hook.close()


def test_upload_interrupted_by_a_server_kill_leaves_nothing_partial_and_reruns_cleanly(campaign, moto):
    from flows.publish import publish

    proxy = KillingProxy(moto.port, nth=3, kill=moto.kill)  # two uploads complete, the third is cut
    settings = campaign.model_copy(update={"publish_to": "s3://media/kill", "s3_endpoint_url": proxy.url})

    first = publish("deliver-test", settings)
    with session_scope(open_catalog(campaign.catalog_db_url)) as s:
        rendered = s.scalar(select(func.count()).select_from(Asset).where(Asset.kind != AssetKind.raw_clip))
    assert proxy.tripped.is_set(), "the server was killed in the middle of an upload"
    assert first["failed_files"] >= 1 and first["manifest"].startswith("failed")
    proxy.close()

    moto.start(replay=True)  # the same server again, with every request that completed before the kill
    bucket = S3Bucket("s3://media/kill", endpoint_url=moto.url)
    pubs = _publications(settings, "s3://media/kill")
    delivered = {p.uri.removeprefix("s3://media/"): p.sha256 for p in pubs if p.status == "delivered"}
    visible = [k for k in bucket.keys() if ".incoming" not in k]
    assert set(visible) == set(delivered)  # only what was recorded as delivered is visible ...
    assert all(_object_sha(bucket, k) == delivered[k] for k in visible)  # ... and it is whole
    assert all(p.error for p in pubs if p.status == "failed")

    rerun = publish("deliver-test", settings.model_copy(update={"s3_endpoint_url": moto.url}))
    assert (rerun["failed_files"], rerun["publications"]) == (0, 2 * FILES_PER_CLIP)
    pubs = _publications(settings, "s3://media/kill")
    assert len(pubs) == 2 * FILES_PER_CLIP and {p.status for p in pubs} == {"delivered"}
    final = {p.uri.removeprefix("s3://media/"): p.sha256 for p in pubs}
    assert {k: _object_sha(bucket, k) for k in bucket.keys() if ".incoming" not in k} == {
        **final, "kill/deliver-test/manifest.json": _object_sha(bucket, "kill/deliver-test/manifest.json")}
    writes = _writes(moto)
    assert all(writes[k] == 1 for k in final), writes  # each file was copied into place exactly once, ever
    with session_scope(open_catalog(campaign.catalog_db_url)) as s:  # nothing was rendered again
        assert s.scalar(select(func.count()).select_from(Asset).where(Asset.kind != AssetKind.raw_clip)) == rendered
