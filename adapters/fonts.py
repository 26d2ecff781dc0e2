"""The fonts wanflow draws text with, found without configuration: Latin from DejaVu Sans (Debian's
``fonts-dejavu-core``, else the copy inside matplotlib), Japanese from IPAexGothic (inside the
``japanize-matplotlib`` wheel, a main dependency, so every install has it), else Debian's
``fonts-ipaexfont-gothic`` or ``fonts-noto-cjk`` when installed. Used for the visible AI label of renditions and for the Japanese text of the reports' plots.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

SYSTEM_LATIN = (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),)
SYSTEM_CJK = (Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"),
              Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
              Path("/usr/share/fonts/opentype/noto/NotoSansCJKjp-Regular.otf"),
              Path("/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc"))


def _in_package(package: str, *parts: str) -> Path | None:
    """A file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder, *parts)
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=1)
def latin_fonts() -> tuple[Path, ...]:
    found = [p for p in SYSTEM_LATIN if p.is_file()]
    bundled = _in_package("matplotlib", "mpl-data", "fonts", "ttf", "DejaVuSans.ttf")
    return tuple(found + ([bundled] if bundled else []))


@lru_cache(maxsize=1)
def cjk_fonts() -> tuple[Path, ...]:
    """Fonts with Japanese glyphs, the packaged one first (the same font on every install, so renditions and
    reports draw the same pixels everywhere), then Debian's."""
    bundled = _in_package("japanize_matplotlib", "fonts", "ipaexg.ttf")
    return tuple(([bundled] if bundled else []) + [p for p in SYSTEM_CJK if p.is_file()])


def label_fonts() -> tuple[Path, ...]:
    """Every font the label may use, Latin first: the first that draws every character of a text is used."""
    return latin_fonts() + cjk_fonts()


def needs_cjk(text: str) -> bool:
    """True if ``text`` has characters beyond Latin, Greek and Cyrillic (kana, kanji, full-width forms...)."""
    return any(ord(ch) >= 0x2E80 for ch in text)
