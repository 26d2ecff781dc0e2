"""Languages, the part every layer may import without loading Babel: the locales wanflow has catalogs for,
``N_`` (marks a string for extraction where it is defined; it is translated where it is shown, so a code such as
a reject reason's stays stable and only its display changes) and the check of a locale name.

The catalogs themselves, negotiation and locale-aware formatting are in :mod:`core.l10n` (Babel).
"""

from __future__ import annotations

LOCALES = ("en", "ja")  # en is the source language; every other locale has a catalog
DEFAULT_LOCALE = "en"


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it here (it is translated where it is shown)."""
    return message


class LocaleError(ValueError):
    """A locale wanflow has no catalog for."""


def check_locale(value: str) -> str:
    """``value`` as one of LOCALES (``ja-JP``, ``ja_JP`` → ``ja``); LocaleError if there is no catalog."""
    short = (value or "").strip().replace("_", "-").split("-")[0].lower()
    if short not in LOCALES:
        raise LocaleError(f"locale: {value!r} is not one of {', '.join(LOCALES)}")
    return short
