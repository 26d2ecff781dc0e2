"""The publish flow: approved clips → transcode → label → sign → deliver → manifest → CMS webhook.

Needs no GPU. Idempotent: re-publishing an already published rendition does nothing. A clip whose
files cannot be delivered (after the retries) is recorded as failed with its reason; the rest of the
campaign proceeds, and a re-run delivers what is missing.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from adapters.provenance import ProvenanceError, SigningConfig
from core.files import ascii_key
from core.settings import Settings
from flows.context import catalog_of
from flows.tasks import (begin_run, deliver_manifest, deliver_renditions, destination, end_run, make_renditions,
                         notify_cms, sweep_temp_files)
from governance.renditions import load_presets
from wan_tasks.publish import approved_clips, delivery_policy
from wan_tasks.publish import manifest as publish_manifest


def signing_config(settings: Settings) -> SigningConfig:
    """The C2PA signer from settings; publishing without one is refused (nothing leaves unlabelled)."""
    if settings.c2pa_key is None or settings.c2pa_cert_chain is None:
        raise ProvenanceError(
            "no C2PA signing key: set WANFLOW_C2PA_KEY and WANFLOW_C2PA_CERT_CHAIN (PEM files); for a trial, "
            "`wanflow provenance dev-ca DIR` makes a development CA and prints the settings")
    cfg = SigningConfig(key=settings.c2pa_key, cert_chain=settings.c2pa_cert_chain, tsa_url=settings.c2pa_tsa_url,
                        alg=settings.c2pa_alg)
    cfg.check()
    return cfg


def _error(future) -> str | None:  # noqa: ANN001
    try:
        future.result()
        return None
    except Exception as exc:  # noqa: BLE001 — reported in the summary; the campaign goes on
        return f"{type(exc).__name__}: {exc}"


@flow(name="publish", log_prints=True)
def publish(campaign: str, settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or Settings()
    log = get_run_logger()
    presets, signing = load_presets(settings.presets_file), signing_config(settings)  # bad set-up: stop here
    engine = catalog_of(settings)
    sweep_temp_files(settings)  # what a killed run or publish left behind
    run_id = begin_run(settings, campaign, "publish")

    clip_ids = approved_clips(engine, campaign)
    policy = delivery_policy(engine, clip_ids[0], settings.brands_dir) if clip_ids else None
    deliver = deliver_renditions.with_options(retries=settings.publish_retries,
                                              retry_delay_seconds=settings.publish_retry_delay_s)
    rendered = {c: make_renditions.submit(settings, c, presets, policy, signing) for c in clip_ids}
    delivered = {c: deliver.submit(settings, c, rendered[c], run_id) for c in clip_ids}
    failed = {c: e for c in clip_ids if (e := _error(rendered[c]) or _error(delivered[c]))}
    publication_ids = sorted({p for c, f in delivered.items() if c not in failed for p in f.result()})

    retried = dict(retries=settings.publish_retries, retry_delay_seconds=settings.publish_retry_delay_s)
    manifest_uri, manifest, webhook, err = None, {"files": [], "failed": []}, "not configured", None
    if clip_ids:
        future = deliver_manifest.with_options(**retried).submit(settings, campaign, presets, failed)
        err = _error(future)
        if err:  # the destination is down: recorded; the next run writes it
            manifest_uri, webhook = f"failed: {err}", "not sent (no manifest)"
            manifest = publish_manifest(engine, campaign, destination(settings).name, presets, failed)
        else:
            manifest_uri, manifest = future.result()
    if settings.webhook_url and clip_ids and not err:
        future = notify_cms.with_options(**retried).submit(settings, campaign, manifest)
        err = _error(future)
        webhook = f"failed: {err}" if err else future.result()

    summary = {"campaign": campaign, "clips": len(clip_ids), "publications": len(manifest["files"]),
               "failed_files": len(manifest["failed"]), "failed_clips": failed, "manifest": manifest_uri,
               "webhook": webhook, "delivery_dir": destination(settings).uri_for(campaign),
               "publication_ids": publication_ids}
    end_run(settings, run_id, "failed" if failed or err else "completed", summary)
    log.info("%s: %d approved clips, %d files delivered, %d failed", campaign, len(clip_ids),
             summary["publications"], summary["failed_files"])
    create_markdown_artifact(
        key=f"publish-{ascii_key(campaign)}",
        markdown=f"# Publish `{campaign}`\n\n{len(clip_ids)} approved clips → {summary['publications']} files in "
                 f"`{summary['delivery_dir']}`, {summary['failed_files']} failed\n\nManifest: `{manifest_uri}`\n\n"
                 f"Webhook: {webhook}\n",
    )
    return summary
