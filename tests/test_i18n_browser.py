"""The dashboard in Japanese in a real browser (Playwright driving Debian's chromium, with a Japanese font from
`make browser`): a Japanese-locale reviewer finds the queue in Japanese, rejects a clip with a Japanese note and
a translated reason, and sees the 409 banner in Japanese when another reviewer decided first. Screenshots of the
ja queue and clip page go to docs/img/ (the docs show them) when WANFLOW_DOC_SCREENSHOTS=1, else test-artifacts/.
"""

from __future__ import annotations

import os

import pytest
from conftest import ROOT
from review_helpers import Served, browser_sign_in, make_users, seed_campaign
from sqlalchemy import select
from test_review_browser import CHROMIUM_ARGS, browser  # noqa: F401 - the browser fixture

from catalog.db import open_catalog, session_scope
from catalog.models import Asset, ClipStatus, Decision, ReviewDecision, Role
from wan_tasks.accounts import set_locale
from wan_tasks.review import decide, set_due_hours

SHOTS = ROOT / ("docs/img" if os.environ.get("WANFLOW_DOC_SCREENSHOTS") == "1" else "test-artifacts")


@pytest.fixture
def server(tmp_path):
    from core.settings import Settings
    from dashboard import create_app

    settings = Settings(home=tmp_path / "home", catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
                        timezone="Asia/Tokyo")
    ids = seed_campaign(settings, name="春の新作キャンペーン", items=("桜 並木",),
                        prompt="桜並木の下を赤いスニーカーで歩く若い女性、春の朝")
    make_users(settings, yuki=Role.reviewer, rob=Role.reviewer)
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        set_locale(s, "yuki", "ja", "test-setup")
        set_due_hours(s, "春の新作キャンペーン", 24, "test-setup")
    with Served(create_app(settings)) as srv:
        yield srv.url, settings, ids


def test_a_japanese_reviewer_in_a_real_browser(server, browser):  # noqa: F811 - the imported fixture
    base, settings, ids = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(locale="ja-JP", viewport={"width": 1100, "height": 620})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(f"{base}/")
    assert "/login" in page.url and page.inner_text("h1") == "サインイン"  # from Accept-Language: ja-JP
    browser_sign_in(page, base, "yuki")
    assert page.get_attribute("html", "lang") == "ja"
    tabs = page.inner_text(".tabs")
    assert "レビュー待ち" in tabs and "承認待ち" in tabs and "To review" not in tabs
    assert "2 件のクリップ" in page.inner_text(".summary") and "JST" in page.inner_text("td.due")
    page.screenshot(path=str(SHOTS / "queue-ja.png"))

    # Reject the first clip from its page: a translated reason and a Japanese note.
    page.goto(f"{base}/clips/{ids[0]}")
    page.wait_for_selector("#reject")
    assert "却下の理由" in page.inner_text(".decide")
    page.screenshot(path=str(SHOTS / "clip-ja.png"))
    page.select_option("#reason-code", "off_brand")
    page.fill("#reject-form-page textarea[name=reason]", "ロゴの色が違います")
    page.click("#reject")
    page.wait_for_selector(".banner.ok")
    assert "判定を記録しました：却下。" in page.inner_text(".banner.ok")
    assert "ブランドに合わない（色・ロゴ・トーン）: ロゴの色が違います" in page.inner_text("ol.history")

    # The second clip: open, then another reviewer decides first; yuki's approval gets the 409 in Japanese.
    page.goto(f"{base}/clips/{ids[1]}")
    page.wait_for_selector("#approve")
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        decide(s, ids[1], Decision.approve, "", "rob", role=Role.reviewer)
    page.click("#approve")
    page.wait_for_selector(".banner.conflict")
    banner = page.inner_text(".banner.conflict")
    assert "他の人が先に判定しました。" in banner and f"クリップ #{ids[1]} はすでに判定済みです" in banner, banner
    assert "承認済み：rob（レビュー）" in banner, banner

    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        assert s.get(Asset, ids[0]).status == ClipStatus.rejected
        rows = s.scalars(select(ReviewDecision).order_by(ReviewDecision.id)).all()
        assert [(r.reviewer, r.reason_code) for r in rows] == [("yuki", "off_brand"), ("rob", None)]
    assert not errors, errors
    context.close()
