"""Localisation with Babel: the message catalogs, the locale a reader gets, and dates, numbers and durations.

English is the source language (the msgids); Japanese lives in ``core/locale/ja/LC_MESSAGES/messages.po``,
extracted with ``pybabel extract -F babel.cfg`` from the dashboard's templates and Python, the review stage's
reasons and statuses and the reports. ``make setup`` compiles the catalogs (``pybabel compile``); a checkout
whose ``.mo`` is missing or older than its ``.po`` compiles it in memory at first use, so a stale build never
shows untranslated pages.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from gettext import NullTranslations
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime, format_timedelta, get_timezone_name
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

from core.i18n import DEFAULT_LOCALE, LOCALES, LocaleError

DOMAIN = "messages"
LOCALE_DIR = Path(__file__).parent / "locale"
_Q = re.compile(r"^\s*q\s*=\s*([0-9.]+)\s*$")


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> NullTranslations:
    """The catalog of ``locale`` (English: none, the msgids are the text). Uses the compiled ``.mo`` when it is
    at least as new as the ``.po``, else compiles the ``.po`` in memory."""
    if locale == DEFAULT_LOCALE or locale not in LOCALES:
        return NullTranslations()
    po = po_path(locale)
    mo = po.with_suffix(".mo")
    if mo.is_file() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as f:
            return Translations(f, domain=DOMAIN)
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def gettext(locale: str, message: str) -> str:
    return translations(locale).gettext(message)


def ngettext(locale: str, singular: str, plural: str, n: int) -> str:
    return translations(locale).ngettext(singular, plural, n)


def parse_accept_language(header: str | None) -> list[str]:
    """The languages of an ``Accept-Language`` header, most preferred first (q=0 dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        m = _Q.match(params) if params else None
        if params and m is None:
            continue
        if m:
            try:
                q = float(m.group(1))
            except ValueError:
                continue
        if tag and tag != "*" and q > 0:
            ranked.append((-q, i, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(accept_language: str | None, default: str = DEFAULT_LOCALE) -> str:
    """The best of LOCALES for an ``Accept-Language`` header (babel's ``Locale.negotiate``), else ``default``."""
    preferred = [t.replace("_", "-") for t in parse_accept_language(accept_language)]
    found = Locale.negotiate(preferred, list(LOCALES), sep="-") if preferred else None
    if found is None:  # "ja-JP" → "ja": negotiate matches a bare language only when the tag is bare
        found = Locale.negotiate([t.split("-")[0] for t in preferred], list(LOCALES), sep="-") if preferred else None
    return str(found) if found is not None else default


@lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    """The time zone ``name`` (IANA, e.g. ``Asia/Tokyo``); LocaleError if unknown."""
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError) as exc:
        raise LocaleError(f"timezone: unknown time zone {name!r} (an IANA name such as Asia/Tokyo)") from exc


@dataclass(frozen=True)
class Formatter:
    """Dates, times, numbers and durations for one locale and time zone (Babel's CLDR formats)."""

    locale: str = DEFAULT_LOCALE
    timezone: str = "UTC"

    def datetime(self, t: datetime | None) -> str:
        """``t`` (naive = UTC) in the formatter's zone, the locale's short date and time plus the zone."""
        if t is None:
            return "—"
        t = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
        tz = zone(self.timezone)
        local = t.astimezone(tz)
        name = "UTC" if tz is timezone.utc else local.tzname() or get_timezone_name(tz, "short", locale=self.locale)
        return f"{format_datetime(local, 'short', tzinfo=tz, locale=self.locale)} {name}"

    def number(self, x: float | int | None, digits: int = 4) -> str:
        """``x`` with the locale's separators, ``digits`` significant digits at most (``—`` for None)."""
        if x is None:
            return "—"
        if isinstance(x, int) and not isinstance(x, bool):
            return format_decimal(x, locale=self.locale)
        return format_decimal(float(f"{x:.{digits}g}"), format=None, locale=self.locale, decimal_quantization=False)

    def duration(self, seconds: float | timedelta, add_direction: bool = False) -> str:
        """A rounded duration in words (``3 hours``, ``3時間``; with direction ``in 3 hours``, ``3 時間後``)."""
        return format_timedelta(seconds, threshold=1.0, add_direction=add_direction, locale=self.locale)
