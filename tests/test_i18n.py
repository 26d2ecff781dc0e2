"""Japanese and English: the catalogs are complete, each request gets its reader's language (account setting,
then Accept-Language, then WANFLOW_LOCALE), dates and numbers follow the locale and the deployment's time zone,
and the messages the API returns to the page are translated while the codes behind them stay stable.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from review_helpers import make_users, seed_campaign, sign_in
from sqlalchemy import select

from catalog.db import open_catalog, session_scope
from catalog.models import AuditEvent, ReviewDecision, Role
from core.i18n import LOCALES
from core.l10n import Formatter, negotiate, po_path
from wan_tasks.accounts import AccountError, set_locale

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s")


def _extracted() -> dict[str, tuple]:
    """Every msgid in the code and templates now (babel's own extractor, babel.cfg's method map)."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: dict[str, tuple] = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}):
        key = message if isinstance(message, str) else message[0]
        found[key] = (message, filename)
    return found


@pytest.mark.parametrize("locale", [loc for loc in LOCALES if loc != "en"])
def test_every_extracted_string_has_a_translation_that_is_not_fuzzy(locale):
    with po_path(locale).open("rb") as f:
        catalog = read_po(f, locale=locale)
    extracted = _extracted()
    assert len(extracted) > 150  # the extraction really ran over the templates and the code
    problems = []
    for key, (message, filename) in sorted(extracted.items()):
        entry = catalog.get(key)
        if entry is None:
            problems.append(f"{filename}: missing: {key!r}")
            continue
        strings = entry.string if isinstance(entry.string, (tuple, list)) else (entry.string,)
        if entry.fuzzy or not all(s and s.strip() for s in strings):
            problems.append(f"{filename}: {'fuzzy' if entry.fuzzy else 'untranslated'}: {key!r}")
        ids = message if isinstance(message, tuple) else (message,)
        wanted = {p for i in ids for p in PLACEHOLDER.findall(i)}
        if any(set(PLACEHOLDER.findall(s or "")) != wanted for s in strings):
            problems.append(f"{filename}: placeholders differ: {key!r}")
    assert problems == [], f"{len(problems)} catalog problems (run the extraction, translate, see docs/i18n.md):\n" + \
        "\n".join(problems)


def test_negotiation_and_formats():
    assert negotiate("ja-JP,ja;q=0.9,en-US;q=0.8") == "ja"
    assert negotiate("en-GB,en;q=0.9,ja;q=0.8", "ja") == "en"
    assert negotiate("fr-FR,de;q=0.8", "ja") == "ja"  # nothing we have: the deployment's default
    assert negotiate("ja;q=0, en", "ja") == "en"  # q=0 means "not this one"
    assert negotiate(None, "en") == "en"
    t = datetime(2026, 12, 2, 4, 5, tzinfo=timezone.utc)
    assert Formatter("ja", "Asia/Tokyo").datetime(t) == "2026/12/02 13:05 JST"
    assert Formatter("en", "UTC").datetime(t) == "12/2/26, 4:05\u202fAM UTC"  # CLDR: a narrow space
    assert Formatter("ja").number(1234567) == "1,234,567" and Formatter("en").number(0.123456) == "0.1235"
    assert Formatter("ja").duration(3 * 3600, add_direction=True) == "3 時間後"
    assert Formatter("en").duration(3 * 3600) == "3 hours"


@pytest.fixture
def dash(settings):
    from dashboard import create_app

    ids = seed_campaign(settings, name="春の新作キャンペーン", items=("桜 並木",),
                        prompt="桜並木の下を赤いスニーカーで歩く若い女性、春の朝")
    make_users(settings, yuki=Role.reviewer, rob=Role.reviewer, alex=Role.approver)
    return create_app(settings), settings, ids


def test_the_reader_gets_their_language(dash):
    app, settings, ids = dash
    anon = TestClient(app)
    assert "サインイン" in anon.get("/login", headers={"Accept-Language": "ja-JP,ja;q=0.9"}).text
    assert "Sign in" in anon.get("/login", headers={"Accept-Language": "en-US"}).text
    assert anon.get("/api/queue", headers={"Accept-Language": "ja"}).json() == {"detail": "サインインが必要です"}
    assert anon.get("/api/queue").json() == {"detail": "sign-in required"}  # default WANFLOW_LOCALE=en

    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        set_locale(s, "yuki", "ja-JP", "test")
        with pytest.raises(AccountError, match="not one of en, ja"):
            set_locale(s, "yuki", "fr", "test")
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "user.locale_changed")).one()
        assert event.payload["to"] == "ja"

    yuki = TestClient(app)
    sign_in(yuki, "yuki")
    page = yuki.get("/", headers={"Accept-Language": "en"}).text  # the account's setting wins over the browser
    assert '<html lang="ja">' in page
    for words in ("レビュー待ち", "承認待ち", "キャンペーン", "期限", "春の新作キャンペーン", "桜並木の下を赤いスニーカー"):
        assert words in page, words
    assert "To review" not in page and "Sign out" not in page
    clip = yuki.get(f"/clips/{ids[0]}").text
    for words in ("承認", "却下の理由", "ブランドに合わない（色・ロゴ・トーン）", "ネガティブプロンプト", "履歴"):
        assert words in clip, words


def test_a_japanese_rejection_and_the_409_in_japanese_codes_unchanged(dash):
    app, settings, ids = dash
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        set_locale(s, "yuki", "ja", "test")
    yuki, rob = TestClient(app), TestClient(app)
    ty, tr = sign_in(yuki, "yuki"), sign_in(rob, "rob")
    r = yuki.post(f"/clips/{ids[0]}/decision", data={"csrf_token": ty, "decision": "reject", "reason_code": "off_brand",
                                                       "reason": "ロゴの色が違います", "expected_stage": "review"},
                  follow_redirects=True)
    assert r.status_code == 200 and "判定を記録しました：却下。" in r.text
    assert "ブランドに合わない（色・ロゴ・トーン）: ロゴの色が違います" in r.text  # display translated
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        row = s.scalars(select(ReviewDecision)).one()
        assert row.reason_code == "off_brand"  # the record keeps the stable code and the English label
        assert row.reason == "Off-brand (colours, logo, tone): ロゴの色が違います"
    # rob (English) decided nothing yet on ids[0]: his late decision conflicts, in his language and in yuki's
    late = rob.post(f"/api/clips/{ids[0]}/decision", json={"decision": "approve"}, headers={"X-CSRF-Token": tr})
    assert late.status_code == 409 and late.json()["detail"] == f"asset {ids[0]} was already decided"
    late = rob.post(f"/api/clips/{ids[0]}/decision", json={"decision": "approve"},
                    headers={"X-CSRF-Token": tr, "Accept-Language": "ja"})
    assert late.json()["detail"] == f"クリップ #{ids[0]} はすでに判定済みです"
    page = yuki.post(f"/clips/{ids[0]}/decision", data={"csrf_token": ty, "decision": "approve",
                                                         "expected_stage": "review"})
    assert page.status_code == 409
    assert "他の人が先に判定しました。" in page.text and f"クリップ #{ids[0]} はすでに判定済みです" in page.text
    assert "現在の状態：却下" in page.text


def test_users_set_locale_command(tmp_path):
    from test_review_audit import _wanflow

    url, home = f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path / "home"
    assert _wanflow("users", "add", "yuki", "--role", "reviewer", home=home, url=url,
                    WANFLOW_PASSWORD="x" * 12).returncode == 0
    r = _wanflow("users", "set-locale", "yuki", "ja", home=home, url=url)
    assert r.returncode == 0 and "dashboard language ja" in r.stdout, r.stdout + r.stderr
    r = _wanflow("users", "set-locale", "yuki", "fr", home=home, url=url)
    assert r.returncode == 2 and "not one of en, ja" in r.stderr and "Traceback" not in r.stderr
    r = _wanflow("users", "list", home=home, url=url)
    assert r.returncode == 0 and "yuki" in r.stdout and " ja " in r.stdout, r.stdout
