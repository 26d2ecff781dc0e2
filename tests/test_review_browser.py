"""The dashboard in a real browser: Playwright driving Debian's chromium (headless) against the real server.

A reviewer signs in, plays a clip, approves one (first stage of a two-stage brand) and rejects another with a
reason from the keyboard; an approver gives the final approval; a viewer is denied. Screenshots of the queue
and of a clip page are saved under test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import ROOT
from review_helpers import Served, browser_sign_in, make_users, seed_campaign
from sqlalchemy import select

from catalog.db import open_catalog, session_scope
from catalog.models import Asset, ClipStatus, ReviewDecision, Role
from wan_tasks.review import set_policy

CHROMIUM = os.environ.get("WANFLOW_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def server(tmp_path):
    """The dashboard served by uvicorn on a loopback port, over a SQLite catalog with 4 real clips."""
    from core.settings import Settings
    from dashboard import create_app

    settings = Settings(home=tmp_path / "home", catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}")
    ids = seed_campaign(settings, name="browser-test")
    make_users(settings, rita=Role.reviewer, alex=Role.approver, vic=Role.viewer)
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        set_policy(s, "acme", True, "test-setup")
    with Served(create_app(settings)) as srv:
        yield srv.url, settings, ids


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("CI"):
            pytest.fail(f"chromium not found at {CHROMIUM}: `make test` installs it (apt-get install chromium)")
        pytest.skip(f"chromium not found at {CHROMIUM}: run `make test` (installs it) or apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _sign_out(page) -> None:
    page.click("text=Sign out")
    page.wait_for_url("**/login")


def _status(settings, asset_id: int) -> ClipStatus:
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        return s.get(Asset, asset_id).status


def test_reviewer_approver_and_viewer_in_a_real_browser(server, browser):
    base, settings, ids = server
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1360, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # Reviewer: the queue, a clip that plays, approve it (first stage of two).
    browser_sign_in(page, base, "rita")
    assert page.locator("table.queue tbody tr[data-asset]").count() == 4
    assert "To review" in page.inner_text(".tabs")
    page.screenshot(path=str(ARTIFACTS / "queue.png"), full_page=True)
    page.click(f"a[href='/clips/{ids[0]}']")
    page.wait_for_selector("video#player")
    played = page.evaluate("""async () => {
        const v = document.getElementById('player');
        v.muted = true;
        await v.play();
        await new Promise(r => setTimeout(r, 400));
        return {t: v.currentTime, d: v.duration, w: v.videoWidth, err: v.error && v.error.code};
    }""")
    assert played["err"] is None and played["w"] == 64 and played["d"] > 0.4 and played["t"] > 0, played
    page.evaluate("document.getElementById('player').pause()")
    assert page.locator("img.strip").evaluate("i => i.complete && i.naturalWidth > 0")
    assert page.locator(".variant video").count() == 1  # the other variant of the same item, side by side
    page.screenshot(path=str(ARTIFACTS / "clip.png"), full_page=True)
    page.click("#approve")
    page.wait_for_selector(".banner.ok")
    assert _status(settings, ids[0]) == ClipStatus.in_review  # two-stage: waits for an approver

    # Reject another from the queue with the keyboard: j to move, r to reject with a reason.
    page.goto(f"{base}/")
    page.wait_for_selector("tr.selected")
    page.keyboard.press("j")
    target = int(page.get_attribute("tr.selected", "data-asset"))
    page.keyboard.press("r")
    page.select_option("#reject-form select[name=reason_code]", "off_brand")
    page.fill("#reject-form textarea[name=reason]", "logo colour is wrong")
    page.click("#reject-form button[value=reject]")
    page.wait_for_selector("#toast.ok")
    assert "rejected" in page.inner_text("#toast")
    assert _status(settings, target) == ClipStatus.rejected
    _sign_out(page)

    # Approver: the final approval of the first clip, from its page.
    browser_sign_in(page, base, "alex")
    page.goto(f"{base}/?status=to_approve")
    assert page.locator("table.queue tbody tr[data-asset]").count() == 1
    page.keyboard.press("Enter")
    page.wait_for_selector("#approve")
    assert "final" in page.inner_text("#approve")
    page.keyboard.press("a")
    page.wait_for_selector(".banner.ok")
    assert _status(settings, ids[0]) == ClipStatus.approved
    _sign_out(page)

    # Viewer: can watch, cannot decide — no decision buttons, and the keyboard shortcut is refused.
    browser_sign_in(page, base, "vic")
    open_id = int(page.get_attribute("tr.selected", "data-asset"))
    page.keyboard.press("a")
    page.wait_for_selector("#toast.error")
    assert "does not allow" in page.inner_text("#toast")
    page.goto(f"{base}/clips/{open_id}")
    assert page.locator("#approve").count() == 0
    assert "not decide" in page.inner_text("main")
    assert _status(settings, open_id) == ClipStatus.in_review
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        assert sorted(s.scalars(select(ReviewDecision.reviewer))) == ["alex", "rita", "rita"]
    assert not errors, errors
