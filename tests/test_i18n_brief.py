"""Japanese brief content end to end, on SQLite and PostgreSQL: a campaign name, an item id (full-width
characters and a space) and a prompt in Japanese go through intake, the catalog, generation, review and
publishing; the deliverables' file names keep the script (NFC, unsafe characters made ``_``), the manifest and
the lineage give the names back without mojibake, and the rendition of the ja item carries the label "AI生成"."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from conftest import write_brief

CAMPAIGN = "春の新作 2027"
ITEM = unicodedata.normalize("NFD", "桜　並木ガーデン")  # full-width space; written decomposed (as macOS does)
PROMPT = "桜並木の下を赤いスニーカーで歩く若い女性、春の朝"
BRIEF = f"""campaign: {CAMPAIGN}
brand: acme
model: wan-t2v@champion
defaults: {{num_frames: 5, width: 32, height: 32, variants: 1, formats: ["1:1"], steps: 2, seed: 5}}
items:
  - id: "{ITEM}"
    prompt: "{PROMPT}"
    locale: ja
"""
PRESETS = """video:
  - {name: square-small, aspect: "1:1", width: 128, height: 128, fps: 24, x264_preset: veryfast}
preview: {width: 64, fps: 8, seconds: 1}
"""


def test_japanese_names_and_prompts_from_brief_to_manifest_and_lineage(catalog_url, tmp_path, dev_ca):
    from catalog.db import open_catalog, session_scope
    from catalog.lineage import lineage
    from catalog.models import Campaign, Decision, PromptItem
    from core.settings import Settings
    from flows.campaign import campaign as run_campaign
    from flows.publish import publish
    from wan_tasks.review import decide, pending

    write_brief(tmp_path, BRIEF, PRESETS)
    settings = Settings(home=tmp_path / "home", catalog_url=catalog_url, presets_file=tmp_path / "presets.yaml",
                        c2pa_key=dev_ca.key, c2pa_cert_chain=dev_ca.cert_chain)
    run_campaign(str(tmp_path / "brief.yaml"), settings)
    engine = open_catalog(settings.catalog_db_url)
    nfc_item = unicodedata.normalize("NFC", ITEM)
    with session_scope(engine) as s:
        assert s.query(Campaign).one().name == CAMPAIGN
        item = s.query(PromptItem).one()
        assert (item.item_key, item.prompt, item.locale) == (nfc_item, PROMPT, "ja")  # one spelling: NFC
        for p in pending(s, CAMPAIGN):
            decide(s, p.asset_id, Decision.approve, "問題なし", "承認者")
    summary = publish(CAMPAIGN, settings)
    assert summary["failed_files"] == 0

    folder = settings.delivery_dir / "春の新作_2027"
    data = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert data["campaign"] == CAMPAIGN
    names = sorted(f["file"] for f in data["files"])
    assert names == sorted(f"桜_並木ガーデン-v0-{n}" for n in ("square-small.mp4", "poster.jpg", "preview.webp"))
    assert all((folder / n).is_file() for n in names)
    video = next(f for f in data["files"] if f["kind"] == "rendition")
    assert video["item"] == nfc_item
    assert (video["ai_label"], video["ai_label_font"]) == ("AI生成", "IPAexGothic Regular")
    with session_scope(engine) as s:
        found = lineage(s, str(folder / video["file"]))
    text = json.dumps(found, ensure_ascii=False, default=str)
    assert CAMPAIGN in text and nfc_item in text and PROMPT in text
    assert Path(video["uri"]).name == video["file"]
