"""The campaign QC report in Japanese: its words from the catalog, numbers and dates for the locale, and its
plots drawing Japanese text with a CJK font (matplotlib warns of no missing glyph)."""

from __future__ import annotations

import warnings

from adapters import qc_report
from adapters.qc_report import ClipRow


def test_qc_report_in_japanese_with_japanese_text_in_its_plots(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = qc_report.metric_plot("blur", [12.5, 80.0, 33.3], ["needs_review", "pass", "pass"], 20.0, "ja")
    assert png.startswith(b"\x89PNG")
    assert not [w for w in caught if "missing from font" in str(w.message)], [str(w.message) for w in caught]
    with warnings.catch_warnings(record=True) as caught:  # the check itself: DejaVu has no Japanese glyphs
        warnings.simplefilter("always")
        mpl = qc_report.heavy.matplotlib()
        fig = mpl.figure.Figure()
        mpl.backends.backend_agg.FigureCanvasAgg(fig)
        fig.add_subplot().set_title("各クリップの値", fontproperties=mpl.font_manager.FontProperties(family="DejaVu Sans"))
        fig.canvas.draw()
    assert any("missing from font" in str(w.message) for w in caught)

    clip = ClipRow(1, "桜 並木", 0, "桜並木の下を歩く", str(tmp_path / "missing.mp4"), "pass")
    html = qc_report.render("春の新作 2027", [clip], None, "acme", 3, locale="ja", timezone_name="Asia/Tokyo")
    for words in ('<html lang="ja">', "QC レポート — キャンペーン <code>春の新作 2027</code> · 実行 3", "指標の分布",
                  "桜 並木 · バリアント 0 · アセット 1", "検証は記録されていません。", "JST"):
        assert words in html, words
    english = qc_report.render("spring", [clip], None, "acme", 3)
    assert "QC report — campaign <code>spring</code>" in english and "UTC" in english


def test_rollout_report_in_japanese():
    from adapters import rollout_report

    ev = {"id": 7, "model": "wan-t2v", "champion_version": 1, "challenger_version": 2, "passed": True,
          "labels": {"champion": "wan-tiny", "challenger": "wan-tiny-2"}, "golden_path": "golden.yaml",
          "golden_sha256": "ab" * 32, "policy_path": "policy.yaml",
          "gates": [{"gate": "qc_pass_rate", "value": 0.9, "op": ">=", "threshold": 0.8, "status": "pass",
                     "reason": ""}],
          "metrics": {"champion": {"qc_pass_rate": 0.85}, "challenger": {"qc_pass_rate": 0.9},
                      "preference": {"win_rate": 0.6, "ci_low": 0.4, "ci_high": 0.8, "wins": 6, "losses": 4,
                                     "ties": 1}}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = rollout_report.plots(ev["metrics"], ev["metrics"]["preference"], "ja")
    assert set(images) == {"metrics.png", "preference.png"}
    assert not [w for w in caught if "missing from font" in str(w.message)], [str(w.message) for w in caught]
    html = rollout_report.render(ev, images, [], "ja")
    for words in ("ロールアウト評価 7：wan-t2v 1（チャンピオン）対 2（チャレンジャー）", "判定：すべてのゲートに合格",
                  "決着のついた 10 票中 6 票でチャレンジャーが選ばれました（60.0%、95 % 信頼区間 40.0%–80.0%）", "<b>合格</b>"):
        assert words in html, words
    assert "Rollout evaluation 7" in rollout_report.render(ev, images, [])


def test_qc_agreement_report_in_japanese():
    """The `qc agreement` report: its words from the catalog, and a threshold plot with Japanese tick labels."""
    from datetime import datetime, timezone

    from adapters import agreement_report
    from governance.agreement import CheckRecord, ReviewedClip, agreement

    def clip(i: int, value: float, rejected: bool) -> ReviewedClip:
        return ReviewedClip(i, "春の新作", "acme", rejected, "reject" if rejected else "approve",
                            "off_brand" if rejected else None, datetime(2026, 12, 1, tzinfo=timezone.utc), "pass",
                            {"blur": CheckRecord(value >= 40, value, 40.0)})

    clips = [clip(1, 10.0, True), clip(2, 30.0, True), clip(3, 70.0, False), clip(4, 90.0, False)]
    result = {"campaign": "春の新作", "since": None, **agreement(clips, ["blur"])}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        page = agreement_report.render(result, clips, "ja", "Asia/Tokyo")
    assert not [w for w in caught if "missing from font" in str(w.message)], [str(w.message) for w in caught]
    for words in ('<html lang="ja">', "QC チェックとレビュアーの判定の一致", "キャンペーン <code>春の新作</code>",
                  "レビュー済みクリップ 4 本：承認 2 本", "適合率", "JST"):
        assert words in page, words
    assert page.count("data:image/png;base64,") >= 2  # the overview and blur's threshold plot
    english = agreement_report.render(result, clips)
    assert "QC checks against the reviewers" in english and "4 reviewed clips: 2 approved" in english
