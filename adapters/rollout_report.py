"""The rollout evaluation report: one self-contained HTML file (plots inlined as base64 PNG, matplotlib Agg)
comparing champion and challenger metric by metric, the preference with its interval, the gates, and a
contact strip per golden prompt and arm. The plots are also written as PNG files for MLflow."""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

from adapters.qc_report import contact_strip, data_uri
from core import heavy
from core.files import write_bytes_atomic, write_text_atomic

COMPARED = (("qc_pass_rate", "QC pass rate", True), ("qc_clean_rate", "QC clean rate (every check passed)", True),
            ("brand_safety_pass_rate", "brand safety pass rate", True), ("seconds_per_clip", "seconds per clip", False),
            ("device_seconds_per_clip", "device-seconds per clip", False),
            ("dynamic_degree", "dynamic degree (share of moving frame pairs)", True),
            ("motion_smoothness", "motion smoothness", True), ("imaging_quality", "imaging quality (PIQE, lower is better)", False),
            ("cost_per_approved_clip", "cost per approved clip", False))
COLOURS = {"champion": "#1565c0", "challenger": "#ef6c00"}


def _png(fig) -> bytes:  # noqa: ANN001 - matplotlib Figure
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def plots(metrics: dict[str, Any], pref: dict[str, Any]) -> dict[str, bytes]:
    """PNG per figure: the compared metrics side by side; the win rate with its interval (when run)."""
    mpl = heavy.matplotlib()
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
            ax.bar(["champion", "challenger"], [v or 0 for v in vals], color=[COLOURS["champion"], COLOURS["challenger"]])
            for x, v in enumerate(vals):
                ax.text(x, (v or 0), "not run" if v is None else f"{v:.3g}", ha="center", va="bottom", fontsize=8)
            ax.set_ylim(0, max(v or 0 for v in vals) * 1.25 or 1.0)
            ax.set_title(label, fontsize=9)
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
        ax.set_title(f"challenger win rate {wr:.0%} (95 % CI {lo:.0%}–{hi:.0%}, {pref['wins'] + pref['losses']} "
                     f"decisive votes)", fontsize=9)
        out["preference.png"] = _png(fig)
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "<em>not run</em>"
    return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))


def render(ev: dict[str, Any], images: dict[str, bytes], strips: list[tuple[str, str, str]]) -> str:
    """``ev``: the evaluation as `wanflow rollout status --json` prints it; ``strips``: (item, arm, clip path)."""
    m, pref = ev["metrics"], ev["metrics"].get("preference", {})
    keys = [k for k in m.get("challenger", {}) if k not in ("devices",)]
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(m['champion'].get(k))}</td>"
                   f"<td>{_fmt(m['challenger'].get(k))}</td></tr>" for k in keys)
    gates = "".join(
        f"<tr class='{html.escape(g['status'].replace(' ', '-'))}'><td>{html.escape(g['gate'])}</td>"
        f"<td>{_fmt(g['value'])}</td><td>{html.escape(g['op'])} {_fmt(g['threshold'])}</td>"
        f"<td><b>{html.escape(g['status'])}</b></td><td>{html.escape(g['reason'])}</td></tr>" for g in ev["gates"])
    verdict = ("no policy: gates not evaluated" if ev["passed"] is None
               else "PASSED every gate" if ev["passed"] else "did NOT pass every gate")
    if pref.get("win_rate") is None:
        pref_text = f"not run — {html.escape(pref.get('reason') or 'no A/B round')}"
    else:
        pref_text = (f"challenger preferred in {pref['wins']} of {pref['wins'] + pref['losses']} decisive votes "
                     f"({pref['win_rate']:.1%}, 95 % CI {pref['ci_low']:.1%}–{pref['ci_high']:.1%}); "
                     f"{pref['ties']} no preference")
    imgs = "".join(f"<img alt='{html.escape(n)}' src='{data_uri(b, 'image/png')}'>" for n, b in images.items())
    strip_rows = "".join(
        f"<tr><td>{html.escape(item)}</td><td>{html.escape(arm)}</td>"
        f"<td><img src='{data_uri(contact_strip(Path(p)), 'image/jpeg')}'></td></tr>" for item, arm, p in strips)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Rollout evaluation {ev['id']}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.pass td{{background:#e8f5e9}}.fail td{{background:#ffebee}}
.not-evaluated td{{background:#fff8e1}}img{{max-width:100%}}</style></head><body>
<h1>Rollout evaluation {ev['id']}: {html.escape(ev['model'])} {ev['champion_version']} (champion) vs
{ev['challenger_version']} (challenger)</h1>
<p>Champion: {html.escape(ev['labels']['champion'])}<br>Challenger: {html.escape(ev['labels']['challenger'])}<br>
Golden set: <code>{html.escape(ev['golden_path'])}</code> (sha256 {ev['golden_sha256'][:12]}…) —
policy: <code>{html.escape(str(ev['policy_path']))}</code></p>
<h2>Verdict: {verdict}</h2>
<table><tr><th>gate</th><th>value</th><th>threshold</th><th>status</th><th>why</th></tr>{gates}</table>
<h2>Human preference (blind A/B)</h2><p>{pref_text}</p>
<h2>Metrics</h2><table><tr><th>metric</th><th>champion</th><th>challenger</th></tr>{rows}</table>
{imgs}
<h2>Golden prompts</h2><table><tr><th>item</th><th>arm</th><th>frames</th></tr>{strip_rows}</table>
</body></html>"""


def write_report(dest: Path, ev: dict[str, Any], strips: list[tuple[str, str, str]]) -> tuple[Path, dict[str, Path]]:
    """The HTML report at ``dest`` and its plots beside it (PNG), all written atomically."""
    images = plots(ev["metrics"], ev["metrics"].get("preference", {}))
    files = {}
    for name, data in images.items():
        files[name] = write_bytes_atomic(dest.with_name(f"{dest.stem}-{name}"), data)
    return write_text_atomic(dest, render(ev, images, strips)), files


def write_data(dest: Path, ev: dict[str, Any]) -> Path:
    """The evaluation as JSON (as `wanflow rollout status --json` prints it) at ``dest``, atomically."""
    return write_text_atomic(dest, json.dumps(ev, indent=2, default=str, ensure_ascii=False))
