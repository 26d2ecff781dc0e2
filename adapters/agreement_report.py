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

from adapters.qc_report import data_uri
from core import heavy
from core.files import write_text_atomic
from governance.agreement import ReviewedClip

APPROVED, REJECTED = "#2e7d32", "#c62828"
NO_SUGGESTION = "<p>No suggestion: reviewers need to have both approved and rejected clips a check measured.</p>"


def _png(fig) -> bytes:  # noqa: ANN001 - matplotlib Figure
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _figure(w: float, h: float):  # noqa: ANN202 - matplotlib Figure
    mpl = heavy.matplotlib()
    fig = mpl.figure.Figure(figsize=(w, h), dpi=96)
    mpl.backends.backend_agg.FigureCanvasAgg(fig)
    return fig


def rates_plot(checks: list[dict[str, Any]]) -> bytes | None:
    """PNG: precision, recall and kappa per check (checks that ran on at least one reviewed clip)."""
    shown = [c for c in checks if c["n"]]
    if not shown:
        return None
    fig = _figure(6.4, 0.32 * len(shown) + 1.0)
    ax = fig.add_subplot()
    ys = range(len(shown))
    for off, key, colour in ((-0.25, "precision", "#1565c0"), (0.0, "recall", "#ef6c00"), (0.25, "kappa", "#6a1b9a")):
        ax.barh([y + off for y in ys], [c[key] or 0 for c in shown], height=0.25, color=colour, label=key)
    ax.set_yticks(list(ys), [c["check"] for c in shown], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="#757575", lw=0.8)
    ax.set_xlim(-1, 1)
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("each check against the reviewers (missing bar: not defined)", fontsize=8, loc="left")
    return _png(fig)


def threshold_plot(check: str, brand: str, clips: Sequence[ReviewedClip], s: dict[str, Any]) -> bytes:
    """PNG: the check's value on every reviewed clip of ``brand``, approved and rejected apart, with the current
    threshold (dashed) and the suggested one (dotted)."""
    fig = _figure(4.6, 1.6)
    ax = fig.add_subplot()
    for y, rejected, colour in ((0, False, APPROVED), (1, True, REJECTED)):
        xs = [c.checks[check].value for c in clips if c.brand == brand and c.rejected == rejected
              and check in c.checks and c.checks[check].value is not None and c.checks[check].passed is not None]
        ax.scatter(xs, [y] * len(xs), c=colour, s=16, alpha=0.7, edgecolors="none")
    if s["current"] is not None:
        ax.axvline(s["current"], color="#424242", ls="--", lw=1.1)
    ax.axvline(s["suggested"], color="#6a1b9a", ls=":", lw=1.6)
    ax.set_yticks([0, 1], ["approved", "rejected"], fontsize=7)
    ax.set_ylim(-0.6, 1.6)
    ax.tick_params(axis="x", labelsize=7)
    now = "none" if s["current"] is None else format(s["current"], "g")
    ax.set_title(f"{check} · {brand}: current {now} (dashed), suggested {s['suggested']:g} (dotted)", fontsize=8,
                 loc="left")
    return _png(fig)


def _f(x: Any) -> str:
    return "—" if x is None else f"{x:.2f}" if isinstance(x, float) else html.escape(str(x))


def _counts(d: dict[str, int]) -> str:
    return html.escape(", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1]))) or "—"


def _stages(st: dict[str, Any] | None) -> str:
    if st is None:
        return "<p>No clip was decided at both stages (no two-stage brand in scope).</p>"
    return (f"<p>{st['clips']} clips decided at both stages: the approver confirmed the reviewer's approval on "
            f"{st['agreed']} ({_f(st['agreement'])}); approval-stage decisions: {_counts(st['second_stage'])}. "
            f"Kappa: {_f(st['kappa'])}{' — ' + html.escape(st['kappa_note']) if st['kappa_note'] else ''}.</p>")


def _votes(v: dict[str, Any] | None) -> str:
    if v is None:
        return "<p>No blind A/B pair has votes from two reviewers.</p>"
    rows = "".join(f"<tr><td>{html.escape(' · '.join(p['reviewers']))}</td><td>{p['pairs']}</td><td>{p['agreed']}</td>"
                   f"<td>{_f(p['agreement'])}</td><td>{_f(p['kappa'])}</td><td>{html.escape(p['kappa_note'])}</td></tr>"
                   for p in v["by_reviewers"])
    return (f"<p>{v['pairs_with_two_votes']} A/B pairs with two or more votes ({v['votes']} votes); voters chose the "
            f"same (champion, challenger or tie) in {_f(v['agreement'])} of voter pairs.</p><table><tr><th>reviewers"
            f"</th><th>pairs</th><th>agreed</th><th>agreement</th><th>kappa</th><th></th></tr>{rows}</table>")


def render(result: dict[str, Any], clips: Sequence[ReviewedClip]) -> str:
    scope = (f"campaign <code>{html.escape(result['campaign'])}</code>" if result["campaign"] else "every campaign")
    scope += f", decided since {html.escape(result['since'])}" if result["since"] else ""
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
            png = threshold_plot(c["check"], s["brand"], clips, s)
            plots.append(f'<img alt="{html.escape(c["check"])} {html.escape(s["brand"])}" '
                         f'src="{data_uri(png, "image/png")}">')
    overview = rates_plot(result["checks"])
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>QC agreement — {html.escape(result['campaign'] or 'all campaigns')}</title><style>
body{{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#212121;max-width:1300px}}
table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ddd;padding:3px 6px;text-align:left;font-size:12px;vertical-align:top}}
.plots img{{margin:4px}}small{{color:#666}}
</style></head><body>
<h1>QC checks against the reviewers</h1>
<p>Scope: {scope} · generated {now}</p>
<p>{result['clips_reviewed']} reviewed clips: {result['approved']} approved, {result['rejected']} rejected or sent
back for changes (decisions: {_counts(result['decisions'])}; reasons for rejecting: {_counts(result['reasons'])}).
{result['blocked_unreviewed']} clips QC blocked never reached a reviewer and are not compared.</p>
<h2>Each check</h2>
<p>Flagged: the check ran and failed its threshold. Positive: the reviewers rejected the clip (or asked for
changes). Precision: share of flagged clips that were rejected; recall: share of rejected clips that were flagged;
specificity: share of approved clips that passed. Suggested thresholds would have matched the reviewers best on
these clips (highest Cohen's kappa); they are suggestions only: nothing was changed.</p>
{f'<img alt="precision, recall and kappa per check" src="{data_uri(overview, "image/png")}">' if overview else ''}
<table><tr><th>check</th><th>compared</th><th>not run</th><th>flagged · rejected</th><th>flagged · approved</th>
<th>passed · rejected</th><th>passed · approved</th><th>precision</th><th>recall</th><th>specificity</th>
<th>kappa</th><th>reasons of rejections caught</th><th>reasons of rejections missed</th>
<th>suggested threshold</th></tr>{''.join(rows)}</table>
<h2>Thresholds</h2><p>Each check's value on the reviewed clips; dashed: the brand's threshold, dotted: the
suggestion.</p><div class="plots">{''.join(plots) or NO_SUGGESTION}</div>
<h2>Reviewers among themselves</h2><h3>Two-stage review</h3>{_stages(result['stages'])}
<h3>Blind A/B votes</h3>{_votes(result['ab_votes'])}
</body></html>"""


def write_report(dest: Path, result: dict[str, Any], clips: Sequence[ReviewedClip]) -> Path:
    """The report, written to ``dest``."""
    return write_text_atomic(dest, render(result, clips))
