"""The edit's side-by-side page in a real browser (Playwright + Debian's chromium, as tests/test_review_browser.py):
both clips play in step when one is played or sought, the kept region's outline toggles, and the clip page links
to it. The catalog is the dashboard tests' seeded campaign with one clip recorded as a reframe of another."""

from __future__ import annotations

from review_helpers import PARAMS, browser_sign_in
from test_review_browser import ARTIFACTS, browser, server  # noqa: F401 - fixtures

from catalog.db import open_catalog, session_scope
from catalog.models import Asset, GenerationJob


def _make_edit(settings, source_id: int, edit_id: int) -> None:
    """Record clip ``edit_id`` as an outpaint of ``source_id`` (its left half is the kept source)."""
    w, h = PARAMS["width"], PARAMS["height"]
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        job = s.get(GenerationJob, s.get(Asset, edit_id).job_id)
        job.edit_of_id = source_id
        job.params = {**job.params, "edit": {
            "op": "reframe", "to": "9:16", "feather": 0, "model": "wan-vace@champion",
            "source": {"ref": f"asset:{source_id}", "asset_id": source_id, "width": w // 2, "height": h},
            "geometry": {"width": w, "height": h, "num_frames": 9, "frames_used": 9, "x": 0, "y": 0,
                         "window": 0, "offset": 0}}}


def test_side_by_side_plays_in_step_and_toggles_the_outline(server, browser):  # noqa: F811 - fixtures
    base, settings, ids = server
    _make_edit(settings, ids[0], ids[1])
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    browser_sign_in(page, base, "rita")
    page.goto(f"{base}/clips/{ids[1]}")
    page.click("#compare-link")
    page.wait_for_selector("video#edit-player")
    assert "reframe" in page.inner_text("h1") and f"clip #{ids[0]}" in page.inner_text("h1")

    # play both from one button; the source follows the edit
    page.click("#play-both")
    page.wait_for_function("() => document.getElementById('edit-player').currentTime > 0.2")
    page.click("#pause-both")
    got = page.evaluate("""() => ({e: document.getElementById('edit-player').currentTime,
                                   s: document.getElementById('source-player').currentTime,
                                   sp: document.getElementById('source-player').paused})""")
    assert got["sp"] and abs(got["e"] - got["s"]) < 0.1, got
    # seeking the edit seeks the source
    page.evaluate("() => { document.getElementById('edit-player').currentTime = 0.1; }")
    page.wait_for_function("() => Math.abs(document.getElementById('source-player').currentTime - 0.1) < 0.06")

    # the outline of the kept region: the left half, toggled off and on
    box = page.locator("#mask-outline").bounding_box()
    video = page.locator("#edit-player").bounding_box()
    assert abs(box["width"] - video["width"] / 2) < 3 and abs(box["x"] - video["x"]) < 3
    page.uncheck("#toggle-outline")
    assert not page.locator("#mask-outline").is_visible()
    page.check("#toggle-outline")
    assert page.locator("#mask-outline").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)

    # a clip that is not an edit has no such page
    assert page.goto(f"{base}/clips/{ids[2]}/compare").status == 404
    assert not errors, errors
