"""The QC-agreement report (`wanflow qc agreement`): one self-contained HTML file (plots inlined as base64 PNG,
matplotlib Agg) with the reviewers' decisions and reasons, each check's precision, recall and kappa against
them, the thresholds that would have matched them best (suggestions only), and the reviewers among themselves."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from adapters.qc_report import data_uri, plot_font
from core import heavy
from core.files import write_text_atomic
from core.l10n import Formatter, translations
from governance.agreement import ReviewedClip

APPROVED, REJECTED = "#2e7d32", "#c62828"


def _png(fig) -> bytes:  # noqa: ANN001 - matplotlib Figure
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _figure(w: float, h: float):  # noqa: ANN202 - matplotlib Figure
    mpl = heavy.matplotlib()
    fig = mpl.figure.Figure(figsize=(w, h), dpi=96)
    mpl.backends.backend_agg.FigureCanvasAgg(fig)
    return fig


def rates_plot(checks: list[dict[str, Any]], locale: str = "en") -> bytes | None:
    """PNG: precision, recall and kappa per check (checks that ran on at least one reviewed clip)."""
    _, font = translations(locale).gettext, plot_font(heavy.matplotlib(), locale)
    shown = [c for c in checks if c["n"]]
    if not shown:
        return None
    fig = _figure(6.4, 0.32 * len(shown) + 1.0)
    ax = fig.add_subplot()
    ys = range(len(shown))
    for off, key, colour in ((-0.25, "precision", "#1565c0"), (0.0, "recall", "#ef6c00"), (0.25, "kappa", "#6a1b9a")):
        ax.barh([y + off for y in ys], [c[key] or 0 for c in shown], height=0.25, color=colour, label=_(key))
    ax.set_yticks(list(ys), [c["check"] for c in shown], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="#757575", lw=0.8)
    ax.set_xlim(-1, 1)
    ax.tick_params(axis="x", labelsize=7)
    legend_font = font.copy() if font else None  # the CJK font, at the legend's size
    if legend_font:
        legend_font.set_size(7)
    ax.legend(fontsize=7, loc="lower left", prop=legend_font)
    ax.set_title(_("each check against the reviewers (missing bar: not defined)"), fontsize=8, loc="left",
                 fontproperties=font)
    return _png(fig)


def threshold_plot(check: str, brand: str, clips: Sequence[ReviewedClip], s: dict[str, Any],
                   locale: str = "en") -> bytes:
    """PNG: the check's value on every reviewed clip of ``brand``, approved and rejected apart, with the current
    threshold (dashed) and the suggested one (dotted)."""
    _, font = translations(locale).gettext, plot_font(heavy.matplotlib(), locale)
    fig = _figure(4.6, 1.6)
    ax = fig.add_subplot()
    for y, rejected, colour in ((0, False, APPROVED), (1, True, REJECTED)):
        xs = [c.checks[check].value for c in clips if c.brand == brand and c.rejected == rejected
              and check in c.checks and c.checks[check].value is not None and c.checks[check].passed is not None]
        ax.scatter(xs, [y] * len(xs), c=colour, s=16, alpha=0.7, edgecolors="none")
    if s["current"] is not None:
        ax.axvline(s["current"], color="#424242", ls="--", lw=1.1)
    ax.axvline(s["suggested"], color="#6a1b9a", ls=":", lw=1.6)
    ax.set_yticks([0, 1], [_("approved"), _("rejected")], fontsize=7, fontproperties=font)
    ax.set_ylim(-0.6, 1.6)
    ax.tick_params(axis="x", labelsize=7)
    now = _("none") if s["current"] is None else format(s["current"], "g")
    ax.set_title(_("%(check)s · %(brand)s: current %(current)s (dashed), suggested %(suggested)s (dotted)") % {
        "check": check, "brand": brand, "current": now, "suggested": format(s["suggested"], "g")},
        fontsize=8, loc="left", fontproperties=font)
    return _png(fig)


def _f(x: Any) -> str:
    return "—" if x is None else f"{x:.2f}" if isinstance(x, float) else html.escape(str(x))


def _counts(d: dict[str, int]) -> str:
    return html.escape(", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1]))) or "—"


def _stages(st: dict[str, Any] | None, _) -> str:  # noqa: ANN001 - the locale's gettext
    if st is None:
        return "<p>" + _("No clip was decided at both stages (no two-stage brand in scope).") + "</p>"
    note = " — " + html.escape(st["kappa_note"]) if st["kappa_note"] else ""
    return "<p>" + _("%(clips)s clips decided at both stages: the approver confirmed the reviewer's approval on "
                     "%(agreed)s (%(share)s); approval-stage decisions: %(decisions)s. Kappa: %(kappa)s%(note)s.") % {
        "clips": st["clips"], "agreed": st["agreed"], "share": _f(st["agreement"]),
        "decisions": _counts(st["second_stage"]), "kappa": _f(st["kappa"]), "note": note} + "</p>"


def _votes(v: dict[str, Any] | None, _) -> str:  # noqa: ANN001 - the locale's gettext
    if v is None:
        return "<p>" + _("No blind A/B pair has votes from two reviewers.") + "</p>"
    rows = "".join(f"<tr><td>{html.escape(' · '.join(p['reviewers']))}</td><td>{p['pairs']}</td><td>{p['agreed']}</td>"
                   f"<td>{_f(p['agreement'])}</td><td>{_f(p['kappa'])}</td><td>{html.escape(p['kappa_note'])}</td></tr>"
                   for p in v["by_reviewers"])
    head = "".join(f"<th>{h}</th>" for h in (_("reviewers"), _("pairs"), _("agreed"), _("agreement"), _("kappa"), ""))
    return ("<p>" + _("%(pairs)s A/B pairs with two or more votes (%(votes)s votes); voters chose the same (champion, "
                      "challenger or tie) in %(share)s of voter pairs.") % {
        "pairs": v["pairs_with_two_votes"], "votes": v["votes"], "share": _f(v["agreement"])}
        + f"</p><table><tr>{head}</tr>{rows}</table>")


def render(result: dict[str, Any], clips: Sequence[ReviewedClip], locale: str = "en", timezone_name: str = "UTC") -> str:
    """The report in ``locale`` (en, ja): words from the message catalogs, the date in ``timezone_name``."""
    _ = translations(locale).gettext
    campaign = html.escape(result["campaign"]) if result["campaign"] else None
    scope = (_("campaign %(name)s") % {"name": f"<code>{campaign}</code>"}) if campaign else _("every campaign")
    if result["since"]:
        scope += _(", decided since %(date)s") % {"date": html.escape(result["since"])}
    rows, plots = [], []
    for c in result["checks"]:
        sug = "; ".join(f"{html.escape(s['brand'])}: {html.escape(str(s['parameter']))} {_f(s['current'])} → "
                        f"<b>{s['suggested']:g}</b> (kappa {_f(s['kappa_current'])} → {_f(s['kappa_suggested'])})"
                        for s in c["suggestions"])
        rows.append(f"<tr><td>{html.escape(c['check'])}</td><td>{c['n']}</td><td>{c['not_run']}</td><td>{c['tp']}</td>"
                    f"<td>{c['fp']}</td><td>{c['fn']}</td><td>{c['tn']}</td><td>{_f(c['precision'])}</td>"
                    f"<td>{_f(c['recall'])}</td><td>{_f(c['specificity'])}</td><td>{_f(c['kappa'])}"
                    f"{'<br><small>' + html.escape(c['kappa_note']) + '</small>' if c['kappa_note'] else ''}</td>"
                    f"<td>{_counts(c['reasons_caught'])}</td><td>{_counts(c['reasons_missed'])}</td>"
                    f"<td>{sug or '—'}</td></tr>")
        for s in c["suggestions"]:
            png = threshold_plot(c["check"], s["brand"], clips, s, locale)
            plots.append(f'<img alt="{html.escape(c["check"])} {html.escape(s["brand"])}" '
                         f'src="{data_uri(png, "image/png")}">')
    overview = rates_plot(result["checks"], locale)
    now = Formatter(locale, timezone_name).datetime(datetime.now(timezone.utc))
    head = "".join(f"<th>{h}</th>" for h in (
        _("check"), _("compared"), _("not run"), _("flagged · rejected"), _("flagged · approved"), _("passed · rejected"),
        _("passed · approved"), _("precision"), _("recall"), _("specificity"), _("kappa"),
        _("reasons of rejections caught"), _("reasons of rejections missed"), _("suggested threshold")))
    overview_alt = _("precision, recall and kappa per check")
    overview_img = f'<img alt="{overview_alt}" src="{data_uri(overview, "image/png")}">' if overview else ""
    no_suggestion = "<p>" + _("No suggestion: reviewers need to have both approved and rejected clips a check "
                              "measured.") + "</p>"
    counts = _("%(reviewed)s reviewed clips: %(approved)s approved, %(rejected)s rejected or sent back for changes "
               "(decisions: %(decisions)s; reasons for rejecting: %(reasons)s). %(blocked)s clips QC blocked never "
               "reached a reviewer and are not compared.") % {
        "reviewed": result["clips_reviewed"], "approved": result["approved"], "rejected": result["rejected"],
        "decisions": _counts(result["decisions"]), "reasons": _counts(result["reasons"]),
        "blocked": result["blocked_unreviewed"]}
    title = _("QC agreement — %(scope)s") % {"scope": html.escape(result["campaign"] or _("all campaigns"))}
    w = {  # the page's fixed words (outside the f-string, where pybabel finds them)
        "h1": _("QC checks against the reviewers"), "scope": _("Scope: %(scope)s · generated %(when)s") % {
            "scope": scope, "when": now},
        "each": _("Each check"),
        "legend": _("Flagged: the check ran and failed its threshold. Positive: the reviewers rejected the clip (or "
                    "asked for changes). Precision: share of flagged clips that were rejected; recall: share of "
                    "rejected clips that were flagged; specificity: share of approved clips that passed. Suggested "
                    "thresholds would have matched the reviewers best on these clips (highest Cohen's kappa); they "
                    "are suggestions only: nothing was changed."),
        "thresholds": _("Thresholds"),
        "thresholds_note": _("Each check's value on the reviewed clips; dashed: the brand's threshold, dotted: the "
                             "suggestion."),
        "among": _("Reviewers among themselves"), "stages": _("Two-stage review"), "votes": _("Blind A/B votes"),
    }
    return f"""<!doctype html><html lang="{locale}"><head><meta charset="utf-8">
<title>{title}</title><style>
body{{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#212121;max-width:1300px}}
table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ddd;padding:3px 6px;text-align:left;font-size:12px;vertical-align:top}}
.plots img{{margin:4px}}small{{color:#666}}
</style></head><body>
<h1>{w["h1"]}</h1>
<p>{w["scope"]}</p>
<p>{counts}</p>
<h2>{w["each"]}</h2>
<p>{w["legend"]}</p>
{overview_img}
<table><tr>{head}</tr>{''.join(rows)}</table>
<h2>{w["thresholds"]}</h2><p>{w["thresholds_note"]}</p><div class="plots">{''.join(plots) or no_suggestion}</div>
<h2>{w["among"]}</h2><h3>{w["stages"]}</h3>{_stages(result['stages'], _)}
<h3>{w["votes"]}</h3>{_votes(result['ab_votes'], _)}
</body></html>"""


def write_report(dest: Path, result: dict[str, Any], clips: Sequence[ReviewedClip], locale: str = "en",
                 timezone_name: str = "UTC") -> Path:
    """The report in ``locale``, written to ``dest``."""
    return write_text_atomic(dest, render(result, clips, locale, timezone_name))
