"""The campaign QC report: one self-contained HTML file (images inlined as base64, no external assets)
with the outcome counts, the Great Expectations validation, a plot of each metric's distribution with its
threshold (matplotlib, Agg canvas), and per clip a contact strip, its outcome and its findings — those found on
the picture (nudity, on-screen text) drawn as boxes on the frames where they were found — and each check's judge."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import (Asset, AssetKind, Campaign, ClipStatus, GenerationJob, PromptItem, QcResult, QcValidation,
                            ReviewTask)
from adapters.fonts import cjk_fonts
from core import heavy
from core.i18n import N_
from core.files import write_text_atomic
from core.l10n import Formatter, translations
from governance.qc import BLOCK, BY_NAME, PASS, QC_CHECKS, REVIEW, UNCHECKED, clip_outcome
from governance.qc.registry import judge_line

COLOURS = {PASS: "#2e7d32", REVIEW: "#ef6c00", BLOCK: "#c62828", UNCHECKED: "#757575"}
LABELS = {PASS: N_("pass"), REVIEW: N_("needs review"), BLOCK: N_("blocked"), UNCHECKED: N_("not checked")}
STRIP_FRAMES, STRIP_HEIGHT = 6, 72


@dataclass
class ClipRow:
    asset_id: int
    item: str
    variant: int
    prompt: str
    uri: str
    outcome: str
    results: list[QcResult] = field(default_factory=list)


def data_uri(data: bytes, mime: str) -> str:
    """``data`` inlined for an HTML attribute: the reports are single files with no external assets."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def contact_strip(path: Path, n: int = STRIP_FRAMES, height: int = STRIP_HEIGHT) -> bytes:
    """JPEG of ``n`` frames spread over the clip side by side (a grey tile saying why if it does not decode)."""
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            w = max(2, round(stream.codec_context.width * height / stream.codec_context.height))
            frames = [f.to_ndarray(format="rgb24", width=w, height=height) for f in c.decode(stream)]
    except (av.FFmpegError, OSError, ValueError, IndexError, ZeroDivisionError) as exc:
        tile = Image.new("RGB", (height * 2, height), (90, 90, 90))
        ImageDraw.Draw(tile).text((4, height // 2 - 6), f"not decodable ({type(exc).__name__})", fill=(255, 255, 255))
        frames = [np.asarray(tile)]
    if not frames:
        frames = [np.full((height, height, 3), 90, np.uint8)]
    pick = np.unique(np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int))
    strip = np.concatenate([np.pad(frames[i], ((0, 0), (0, 2), (0, 0)), constant_values=24) for i in pick], axis=1)
    buf = io.BytesIO()
    Image.fromarray(strip).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def boxed_frames(path: Path, hits: list[tuple[dict[str, Any], str]], n: int = STRIP_FRAMES,
                 height: int = 2 * STRIP_HEIGHT) -> bytes | None:
    """JPEG of the frames where findings were located (up to ``n`` frame times), side by side, each finding's
    box (``[x, y, w, h]`` fractions) drawn in its outcome's colour; None when there is nothing to draw or the
    file does not decode."""
    times = sorted({float(h["time"]) for h, _ in hits})[:n]
    if not times:
        return None
    tiles: dict[float, Image.Image] = {}
    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            w = max(2, round(stream.codec_context.width * height / stream.codec_context.height))
            for f in c.decode(stream):
                t = float(f.time or 0.0)
                for want in times:
                    if want not in tiles and t >= want - 1e-3:
                        tiles[want] = f.to_image(width=w, height=height)
                if len(tiles) == len(times):
                    break
    except (av.FFmpegError, OSError, ValueError, IndexError, ZeroDivisionError):
        return None
    if not tiles:
        return None
    for h, outcome in hits:
        tile = tiles.get(float(h["time"]))
        if tile is None:
            continue
        x, y, bw, bh = h["box"]
        box = (x * tile.width, y * tile.height, (x + bw) * tile.width, (y + bh) * tile.height)
        d = ImageDraw.Draw(tile)
        d.rectangle(box, outline=COLOURS.get(outcome, "#757575"), width=2)
        d.text((box[0] + 2, max(0, box[1] - 11)), str(h.get("label", ""))[:28], fill=COLOURS.get(outcome, "#757575"))
    strip = np.concatenate([np.pad(np.asarray(tiles[t]), ((0, 0), (0, 2), (0, 0)), constant_values=24)
                            for t in times if t in tiles], axis=1)
    buf = io.BytesIO()
    Image.fromarray(strip).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def located(results: list[QcResult]) -> list[tuple[dict[str, Any], str]]:
    """Each finding located on the picture (``details["boxes"]``) of the checks that did not pass, with the
    outcome its check had."""
    return [(h, r.outcome or REVIEW) for r in results if r.passed is False
            for h in (r.details or {}).get("boxes", [])]


def plot_font(mpl, locale: str):  # noqa: ANN001, ANN201 - matplotlib module, FontProperties | None
    """The font of a plot's text in ``locale``: a CJK font (adapters/fonts.py) for Japanese, else matplotlib's."""
    found = cjk_fonts() if locale != "en" else ()
    return mpl.font_manager.FontProperties(fname=str(found[0])) if found else None


def metric_plot(check: str, values: list[float], outcomes: list[str], threshold: float | None,
                locale: str = "en") -> bytes:
    """PNG: every clip's value for ``check`` (jittered dots coloured by outcome) and the threshold line."""
    mpl = heavy.matplotlib()
    _ = translations(locale).gettext
    font = plot_font(mpl, locale)
    spec = BY_NAME[check]
    fig = mpl.figure.Figure(figsize=(4.2, 1.7), dpi=96)
    mpl.backends.backend_agg.FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    jitter = np.random.default_rng(0).uniform(-0.3, 0.3, len(values))
    ax.scatter(values, jitter, c=[COLOURS.get(o, "#757575") for o in outcomes], s=18, alpha=0.8, edgecolors="none")
    if threshold is not None:
        ax.axvline(threshold, color="#c62828", lw=1.2, ls="--")
        side = _("max") if spec.direction == "max" else _("min")
        ax.text(threshold, 0.42, f" {side} {threshold:g}", color="#c62828", fontsize=7, va="bottom", fontproperties=font)
    ax.set_ylim(-0.5, 0.6)
    ax.set_yticks([])
    ax.set_title(f"{check} ({spec.unit})" if spec.unit else check, fontsize=8, loc="left")
    ax.set_xlabel(_("value of each clip"), fontsize=7, fontproperties=font)
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def clips(session: Session, campaign: str) -> list[ClipRow]:
    q = (select(Asset, GenerationJob.variant_index, PromptItem.item_key, PromptItem.prompt, ReviewTask)
         .join(GenerationJob, GenerationJob.id == Asset.job_id)
         .join(PromptItem, PromptItem.id == GenerationJob.item_id)
         .join(Campaign, Campaign.id == GenerationJob.campaign_id)
         .outerjoin(ReviewTask, ReviewTask.asset_id == Asset.id)
         .where(Campaign.name == campaign, Asset.kind == AssetKind.raw_clip).order_by(PromptItem.item_key, Asset.id))
    rows = {a.id: ClipRow(a.id, key, v, prompt, a.uri,
                          clip_outcome(a.status == ClipStatus.qc_failed, t.qc_outcome if t else None))
            for a, v, key, prompt, t in session.execute(q)}
    order = {c: i for i, c in enumerate(QC_CHECKS)}
    for r in session.scalars(select(QcResult).where(QcResult.asset_id.in_(rows))):
        rows[r.asset_id].results.append(r)
    for row in rows.values():
        row.results.sort(key=lambda r: order.get(r.check, len(order)))
    return list(rows.values())


def _words(_) -> dict[str, str]:  # noqa: ANN001 - the locale's gettext
    """The report's fixed words in the locale (literal calls, so that pybabel extracts them)."""
    return {
        'No validation recorded.': _('No validation recorded.'),
        'expectation': _('expectation'),
        'type': _('type'),
        'unexpected': _('unexpected'),
        'examples': _('examples'),
        'Where on the picture:': _('Where on the picture:'),
        'all checks': _('all checks'),
        'check': _('check'),
        'result': _('result'),
        'value': _('value'),
        'threshold': _('threshold'),
        'outcome': _('outcome'),
        'details': _('details'),
        'judge': _('judge'),
        'Checks': _('Checks'),
        'what it catches': _('what it catches'),
        'passed': _('passed'),
        'failed': _('failed'),
        'not run': _('not run'),
        '→ review': _('→ review'),
        '→ block': _('→ block'),
        'Expectations (Great Expectations)': _('Expectations (Great Expectations)'),
        'Metric distributions': _('Metric distributions'),
        "One dot per clip, coloured by what that check meant for it; dashed line: the brand's threshold.": _("One dot per clip, coloured by what that check meant for it; dashed line: the brand's threshold."),
        'Clips': _('Clips'),
        'no findings': _('no findings'),
        'No measured values.': _('No measured values.'),
        'No clips.': _('No clips.'),
    }


def _message(r: QcResult, _=str) -> str:  # noqa: ANN001 - the locale's gettext
    d = r.details or {}
    return _("not run: %(reason)s") % {"reason": d.get("reason", "")} if r.passed is None else str(d.get("message", ""))


def _badge(outcome: str, _=str) -> str:  # noqa: ANN001 - the locale's gettext
    label = _(LABELS[outcome]) if outcome in LABELS else outcome
    return f'<span class="badge" style="background:{COLOURS.get(outcome, "#757575")}">{label}</span>'


def _validation_html(v: QcValidation | None, _=str) -> str:  # noqa: ANN001 - the locale's gettext
    w = _words(_)
    if v is None:
        return f"<p>{w['No validation recorded.']}</p>"
    def examples(r: dict[str, Any]) -> str:
        return html.escape(", ".join(f"clip {e['asset_id']} {e['check']}" for e in r.get("examples", [])))

    rows = "".join(
        f"<tr><td>{'✔' if r['success'] else '✘'}</td><td>{html.escape(r['description'])}</td>"
        f"<td><code>{html.escape(r['expectation'])}</code></td><td>{'' if r.get('unexpected') is None else r['unexpected']}</td>"
        f"<td>{examples(r)}</td></tr>" for r in v.results)
    head = "<p>" + _("Suite %(suite)s (brand profile sha256 %(sha)s…): <b>%(verdict)s</b>, %(met)s of %(n)s expectations "
                     "met.") % {"suite": f"<code>{html.escape(v.suite)}</code>", "sha": v.profile_sha256[:12],
                                "verdict": _("passed") if v.success else _("FAILED"), "met": v.evaluated - v.failed,
                                "n": v.evaluated} + "</p>"
    return head + (f"<table><tr><th></th><th>{w['expectation']}</th><th>{w['type']}</th><th>{w['unexpected']}</th>"
                   f"<th>{w['examples']}</th></tr>{rows}</table>")


def render(campaign: str, clips: list[ClipRow], validation: QcValidation | None, brand: str,
           run_id: int | None = None, locale: str = "en", timezone_name: str = "UTC") -> str:
    """The report's HTML in ``locale`` (en, ja): words from the catalogs, dates in ``timezone_name``."""
    _ = translations(locale).gettext
    w = _words(_)
    fmt = Formatter(locale, timezone_name)
    result_word = {None: _("not run"), True: _("pass"), False: _("FAIL")}
    counts = {o: sum(c.outcome == o for c in clips) for o in (PASS, REVIEW, BLOCK, UNCHECKED)}
    per_check = {n: {"pass": 0, "fail": 0, "not run": 0, REVIEW: 0, BLOCK: 0} for n in QC_CHECKS}
    for c in clips:
        for r in c.results:
            if r.check in per_check:
                per_check[r.check]["not run" if r.passed is None else ("pass" if r.passed else "fail")] += 1
                if r.outcome in (REVIEW, BLOCK):
                    per_check[r.check][r.outcome] += 1
    check_rows = "".join(f"<tr><td>{n}</td><td>{BY_NAME[n].title}</td>" + "".join(
        f"<td>{fmt.number(v[k])}</td>" for k in ("pass", "fail", "not run", REVIEW, BLOCK)) + "</tr>"
        for n, v in per_check.items())
    plots = []
    for n in QC_CHECKS:
        pts = [(r.value, r.outcome or PASS, r.threshold) for c in clips for r in c.results
               if r.check == n and r.value is not None and np.isfinite(r.value)]
        if pts:
            png = metric_plot(n, [p[0] for p in pts], [p[1] for p in pts],
                              next((p[2] for p in pts if p[2] is not None), None), locale)
            plots.append(f'<img alt="{n}" src="{data_uri(png, "image/png")}">')
    cards = []
    for c in clips:
        findings = [r for r in c.results if r.outcome in (REVIEW, BLOCK)]
        items = "".join(f"<li>{_badge(r.outcome, _)} <b>{r.check}</b>: {html.escape(_message(r, _))}</li>"
                        for r in findings)
        table = "".join(
            f"<tr><td>{r.check}</td><td>{result_word[r.passed]}</td>"
            f"<td>{'' if r.value is None else fmt.number(r.value)}</td>"
            f"<td>{'' if r.threshold is None else fmt.number(r.threshold)}</td>"
            f"<td>{_(LABELS[r.outcome]) if r.outcome in LABELS else (r.outcome or '')}</td>"
            f"<td>{html.escape(_message(r, _))}</td>"
            f"<td>{html.escape(judge_line(r.judge))}</td></tr>" for r in c.results)
        strip = data_uri(contact_strip(Path(c.uri)), "image/jpeg")
        boxed = boxed_frames(Path(c.uri), located(c.results))
        where = (f'<p>{w["Where on the picture:"]}</p><img class="strip" alt="findings on the frames" '
                 f'src="{data_uri(boxed, "image/jpeg")}">' if boxed else "")
        title = _("%(item)s · variant %(variant)s · asset %(asset)s") % {
            "item": html.escape(c.item), "variant": c.variant, "asset": c.asset_id}
        cards.append(
            f'<section class="clip"><h3>{_badge(c.outcome, _)} {title}</h3>'
            f'<p class="prompt">{html.escape(c.prompt)}</p><img class="strip" alt="contact sheet" src="{strip}">'
            f"<ul>{items or '<li>' + w['no findings'] + '</li>'}</ul>{where}<details><summary>{w['all checks']}"
            f"</summary><table><tr><th>{w['check']}</th><th>{w['result']}</th><th>{w['value']}</th>"
            f"<th>{w['threshold']}</th><th>{w['outcome']}</th><th>{w['details']}</th><th>{w['judge']}</th></tr>"
            f"{table}</table><p class='path'>{html.escape(c.uri)}</p></details></section>")
    now = fmt.datetime(datetime.now(timezone.utc))
    heading = _("QC report — campaign %(campaign)s") % {"campaign": f"<code>{html.escape(campaign)}</code>"}
    if run_id:
        heading += " · " + _("run %(run)s") % {"run": run_id}
    facts = _("Brand %(brand)s · %(n)s clips · generated %(when)s") % {
        "brand": f"<b>{html.escape(brand)}</b>", "n": fmt.number(len(clips)), "when": now}
    return f"""<!doctype html><html lang="{locale}"><head><meta charset="utf-8">
<title>{_("QC report — campaign %(campaign)s") % {"campaign": html.escape(campaign)}}</title><style>
body{{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#212121;max-width:1200px}}
table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ddd;padding:3px 6px;text-align:left;font-size:12px;vertical-align:top}}
.badge{{color:#fff;border-radius:3px;padding:1px 6px;font-size:12px}}.clip{{border-top:1px solid #ccc;padding:8px 0}}
.strip{{display:block;max-width:100%}}.prompt{{color:#555;margin:2px 0 6px}}.path{{color:#777;font-size:11px}}
.plots img{{margin:4px}}h3{{margin:6px 0;font-size:15px}}
</style></head><body>
<h1>{heading}</h1>
<p>{facts}</p>
<p>{" ".join(f"{_badge(o, _)} {fmt.number(counts[o])}" for o in (PASS, REVIEW, BLOCK, UNCHECKED) if counts[o] or o != UNCHECKED)}</p>
<h2>{w['Checks']}</h2><table><tr><th>{w['check']}</th><th>{w['what it catches']}</th><th>{w['passed']}</th>
<th>{w['failed']}</th><th>{w['not run']}</th><th>{w['→ review']}</th><th>{w['→ block']}</th></tr>{check_rows}</table>
<h2>{w['Expectations (Great Expectations)']}</h2>{_validation_html(validation, _)}
<h2>{w['Metric distributions']}</h2><p>{w["One dot per clip, coloured by what that check meant for it; dashed line: the brand's threshold."]}</p>
<div class="plots">{"".join(plots) or "<p>" + w['No measured values.'] + "</p>"}</div>
<h2>{w['Clips']}</h2>{"".join(cards) or "<p>" + w['No clips.'] + "</p>"}
</body></html>"""


def write_report(session: Session, campaign: str, dest: Path, brand: str, run_id: int | None = None,
                 validation: QcValidation | None = None, locale: str = "en", timezone_name: str = "UTC") -> Path:
    """The report for ``campaign`` in ``locale``, written to ``dest``."""
    return write_text_atomic(dest, render(campaign, clips(session, campaign), validation, brand, run_id, locale,
                                          timezone_name))
