"""The rollout evaluation report: one self-contained HTML file (plots inlined as base64 PNG, matplotlib Agg)
comparing champion and challenger metric by metric, the preference with its interval, the gates, and a
contact strip per golden prompt and arm. The plots are also written as PNG files for MLflow."""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

from adapters.qc_report import contact_strip, data_uri, plot_font
from core import heavy
from core.files import write_bytes_atomic, write_text_atomic
from core.i18n import N_
from core.l10n import translations

COMPARED = (("qc_pass_rate", N_("QC pass rate"), True), ("qc_clean_rate", N_("QC clean rate (every check passed)"), True),
            ("brand_safety_pass_rate", N_("brand safety pass rate"), True),
            ("seconds_per_clip", N_("seconds per clip"), False),
            ("device_seconds_per_clip", N_("device-seconds per clip"), False),
            ("dynamic_degree", N_("dynamic degree (share of moving frame pairs)"), True),
            ("motion_smoothness", N_("motion smoothness"), True),
            ("imaging_quality", N_("imaging quality (PIQE, lower is better)"), False),
            ("cost_per_approved_clip", N_("cost per approved clip"), False))
COLOURS = {"champion": "#1565c0", "challenger": "#ef6c00"}


def _png(fig) -> bytes:  # noqa: ANN001 - matplotlib Figure
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def plots(metrics: dict[str, Any], pref: dict[str, Any], locale: str = "en") -> dict[str, bytes]:
    """PNG per figure: the compared metrics side by side; the win rate with its interval (when run)."""
    mpl = heavy.matplotlib()
    _ = translations(locale).gettext
    font = plot_font(mpl, locale)
    arms = [_("champion"), _("challenger")]
    out = {}
    shown = [(k, label) for k, label, _ in COMPARED
             if any(metrics.get(a, {}).get(k) is not None for a in ("champion", "challenger"))]
    if shown:
        cols = min(3, len(shown))
        rows = -(-len(shown) // cols)
        fig = mpl.figure.Figure(figsize=(3.2 * cols, 2.6 * rows), dpi=96)
        mpl.backends.backend_agg.FigureCanvasAgg(fig)
        for i, (k, label) in enumerate(shown):
            ax = fig.add_subplot(rows, cols, i + 1)
            vals = [metrics.get(a, {}).get(k) for a in ("champion", "challenger")]
            ax.bar([0, 1], [v or 0 for v in vals], color=[COLOURS["champion"], COLOURS["challenger"]])
            ax.set_xticks([0, 1], arms, fontproperties=font)
            for x, v in enumerate(vals):
                ax.text(x, (v or 0), _("not run") if v is None else f"{v:.3g}", ha="center", va="bottom", fontsize=8,
                        fontproperties=font)
            ax.set_ylim(0, max(v or 0 for v in vals) * 1.25 or 1.0)
            ax.set_title(_(label), fontsize=9, fontproperties=font)
            ax.tick_params(labelsize=8)
        fig.tight_layout()
        out["metrics.png"] = _png(fig)
    if pref.get("win_rate") is not None:
        fig = mpl.figure.Figure(figsize=(5, 1.6), dpi=96)
        mpl.backends.backend_agg.FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        wr, lo, hi = pref["win_rate"], pref["ci_low"], pref["ci_high"]
        ax.errorbar([wr], [0], xerr=[[wr - lo], [hi - wr]], fmt="o", color=COLOURS["challenger"], capsize=6)
        ax.axvline(0.5, color="#757575", ls="--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_yticks([])
        title = _("challenger win rate %(wr)s (95 %% CI %(lo)s–%(hi)s, %(n)s decisive votes)") % {
            "wr": f"{wr:.0%}", "lo": f"{lo:.0%}", "hi": f"{hi:.0%}", "n": pref["wins"] + pref["losses"]}
        ax.set_title(title, fontsize=9, fontproperties=font)
        out["preference.png"] = _png(fig)
    return out


def _fmt(v: Any, not_run: str = "not run") -> str:
    if v is None:
        return f"<em>{not_run}</em>"
    return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))


def _words(_) -> dict[str, str]:  # noqa: ANN001 - the locale's gettext
    """The report's fixed words in the locale (literal calls, so that pybabel extracts them)."""
    return {"not run": _("not run"), "gate": _("gate"), "value": _("value"), "threshold": _("threshold"),
            "status": _("status"), "why": _("why"), "metric": _("metric"), "champion": _("champion"),
            "challenger": _("challenger"), "item": _("item"), "arm": _("arm"), "frames": _("frames"),
            "preference": _("Human preference (blind A/B)"), "metrics": _("Metrics"), "golden": _("Golden prompts"),
            "pass": _("pass"), "fail": _("fail"), "not evaluated": _("not evaluated")}


def render(ev: dict[str, Any], images: dict[str, bytes], strips: list[tuple[str, str, str]],
           locale: str = "en") -> str:
    """``ev``: the evaluation as `wanflow rollout status --json` prints it; ``strips``: (item, arm, clip path)."""
    _ = translations(locale).gettext
    w = _words(_)
    m, pref = ev["metrics"], ev["metrics"].get("preference", {})
    keys = [k for k in m.get("challenger", {}) if k not in ("devices",)]
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(m['champion'].get(k), w['not run'])}</td>"
                   f"<td>{_fmt(m['challenger'].get(k), w['not run'])}</td></tr>" for k in keys)
    gates = "".join(
        f"<tr class='{html.escape(g['status'].replace(' ', '-'))}'><td>{html.escape(g['gate'])}</td>"
        f"<td>{_fmt(g['value'], w['not run'])}</td><td>{html.escape(g['op'])} {_fmt(g['threshold'], w['not run'])}</td>"
        f"<td><b>{html.escape(w.get(g['status'], g['status']))}</b></td><td>{html.escape(g['reason'])}</td></tr>"
        for g in ev["gates"])
    verdict = (_("no policy: gates not evaluated") if ev["passed"] is None
               else _("PASSED every gate") if ev["passed"] else _("did NOT pass every gate"))
    if pref.get("win_rate") is None:
        pref_text = _("not run — %(reason)s") % {"reason": html.escape(pref.get("reason") or _("no A/B round"))}
    else:
        pref_text = _("challenger preferred in %(wins)s of %(n)s decisive votes (%(wr)s, 95 %% CI %(lo)s–%(hi)s); "
                      "%(ties)s no preference") % {
            "wins": pref["wins"], "n": pref["wins"] + pref["losses"], "wr": f"{pref['win_rate']:.1%}",
            "lo": f"{pref['ci_low']:.1%}", "hi": f"{pref['ci_high']:.1%}", "ties": pref["ties"]}
    imgs = "".join(f"<img alt='{html.escape(n)}' src='{data_uri(b, 'image/png')}'>" for n, b in images.items())
    strip_rows = "".join(
        f"<tr><td>{html.escape(item)}</td><td>{html.escape(w.get(arm, arm))}</td>"
        f"<td><img src='{data_uri(contact_strip(Path(p)), 'image/jpeg')}'></td></tr>" for item, arm, p in strips)
    title = _("Rollout evaluation %(id)s") % {"id": ev["id"]}
    heading = _("Rollout evaluation %(id)s: %(model)s %(champion)s (champion) vs %(challenger)s (challenger)") % {
        "id": ev["id"], "model": html.escape(ev["model"]), "champion": ev["champion_version"],
        "challenger": ev["challenger_version"]}
    facts = _("Champion: %(champion)s<br>Challenger: %(challenger)s<br>Golden set: %(golden)s (sha256 %(sha)s…) — "
              "policy: %(policy)s") % {
        "champion": html.escape(ev["labels"]["champion"]), "challenger": html.escape(ev["labels"]["challenger"]),
        "golden": f"<code>{html.escape(ev['golden_path'])}</code>", "sha": ev["golden_sha256"][:12],
        "policy": f"<code>{html.escape(str(ev['policy_path']))}</code>"}
    verdict_line = _("Verdict: %(verdict)s") % {"verdict": verdict}
    return f"""<!doctype html><html lang="{locale}"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.pass td{{background:#e8f5e9}}.fail td{{background:#ffebee}}
.not-evaluated td{{background:#fff8e1}}img{{max-width:100%}}</style></head><body>
<h1>{heading}</h1>
<p>{facts}</p>
<h2>{verdict_line}</h2>
<table><tr><th>{w['gate']}</th><th>{w['value']}</th><th>{w['threshold']}</th><th>{w['status']}</th><th>{w['why']}</th></tr>{gates}</table>
<h2>{w['preference']}</h2><p>{pref_text}</p>
<h2>{w['metrics']}</h2><table><tr><th>{w['metric']}</th><th>{w['champion']}</th><th>{w['challenger']}</th></tr>{rows}</table>
{imgs}
<h2>{w['golden']}</h2><table><tr><th>{w['item']}</th><th>{w['arm']}</th><th>{w['frames']}</th></tr>{strip_rows}</table>
</body></html>"""


def write_report(dest: Path, ev: dict[str, Any], strips: list[tuple[str, str, str]],
                 locale: str = "en") -> tuple[Path, dict[str, Path]]:
    """The HTML report at ``dest`` in ``locale`` and its plots beside it (PNG), all written atomically."""
    images = plots(ev["metrics"], ev["metrics"].get("preference", {}), locale)
    files = {}
    for name, data in images.items():
        files[name] = write_bytes_atomic(dest.with_name(f"{dest.stem}-{name}"), data)
    return write_text_atomic(dest, render(ev, images, strips, locale)), files


def write_data(dest: Path, ev: dict[str, Any]) -> Path:
    """The evaluation as JSON (as `wanflow rollout status --json` prints it) at ``dest``, atomically."""
    return write_text_atomic(dest, json.dumps(ev, indent=2, default=str, ensure_ascii=False))
