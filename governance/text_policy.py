"""The brand's text policy on prompts: blocked terms and patterns, competitor names, sensitive topics.

Text and terms are compared after normalisation (:func:`normalize_text`: Unicode NFKC, so full-width
Latin and half-width katakana become their usual forms; invisible format characters dropped; case
folding; katakana folded to hiragana; runs of spaces collapsed). Each term is also looked for in a
*disguise-undone* form of the text, where letters spelled out one at a time ("n i k e", "n.i.k.e",
"ギ ャ ン ブ ル") are joined and simple look-alike substitutions inside words are undone ("n1ke",
"n!ke", "ｎ1ｋｅ", Cyrillic "е" for Latin "e").

Terms that start or end with a letter/digit of a space-separated script (Latin, Greek, Cyrillic, ...)
must match a whole word at that edge, so "nike" does not hit "nikes" or "snike"; CJK terms match as
substrings, since Japanese and Chinese do not put spaces between words. ``allowed_terms`` in the
profile mask innocent phrases that contain a blocked word before anything is matched.

The policy is read from a brand profile (:class:`governance.brand.BrandProfile`), through the
:class:`TextRules` it offers.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol

from governance.qc import BLOCK, PASS, REVIEW

# letters written one at a time with a separator between them: "n i k e", "n-i-k-e", "ギ・ャ・ン"
_SPACED = re.compile(r"(?<![^\W_])(?:[^\W_][ .\-_*·・/+~]+){2,}[^\W_](?![^\W_])")
# between two CJK characters a separator is never needed: "ギャン ブル" -> "ギャンブル"
_CJK_GAP = re.compile(r"(?<=[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff])[ .\-_*·・]+(?=[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff])")
# symbols that stand for letters, only between two word characters ("n!ke", "n|ke")
_INNER_SYMBOL = re.compile(r"(?<=[^\W_])[!|@$](?=[^\W_])")
_WORD = re.compile(r"[^\W_]+")
_LOOKALIKE = str.maketrans({
    "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "l": "i",
    "!": "i", "|": "i", "@": "a", "$": "s",
    # Cyrillic and Greek letters that look Latin
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i", "ј": "j", "к": "k",
    "ѕ": "s", "м": "m", "т": "t", "н": "h", "в": "b", "ο": "o", "α": "a", "ν": "v", "κ": "k", "ι": "i",
    "ρ": "p", "τ": "t", "ε": "e",
})


class TextRules(Protocol):
    """The parts of a brand profile the text policy reads."""

    @property
    def blocked_terms(self) -> tuple[str, ...]: ...

    @property
    def blocked_patterns(self) -> tuple[str, ...]: ...

    @property
    def competitors(self) -> tuple[str, ...]: ...

    @property
    def sensitive_topics(self) -> dict[str, tuple[str, ...]]: ...

    @property
    def allowed_terms(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class TextFinding:
    """One policy hit: what matched (as written in the profile), in which field, and what it means."""

    kind: str  # blocked_term | blocked_pattern | competitor | sensitive_topic
    term: str
    field: str
    outcome: str  # block | needs_review
    disguised: bool = False  # found only after undoing spacing or look-alike characters
    topic: str | None = None

    @property
    def message(self) -> str:
        what = {"blocked_term": f'blocked term "{self.term}"', "competitor": f'competitor name "{self.term}"',
                "blocked_pattern": f"blocked pattern /{self.term}/",
                "sensitive_topic": f'sensitive topic "{self.topic}": "{self.term}"'}[self.kind]
        return what + (" (spaced out or disguised)" if self.disguised else "")


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x3040 <= o <= 0x30FF  # hiragana, katakana
        or 0x3400 <= o <= 0x4DBF  # CJK extension A
        or 0x4E00 <= o <= 0x9FFF  # CJK unified ideographs
        or 0xF900 <= o <= 0xFAFF  # CJK compatibility ideographs
        or 0x20000 <= o <= 0x3FFFF  # CJK extensions B..
    )


def _is_word(ch: str) -> bool:
    """A letter or digit of a script that separates words with spaces."""
    return ch.isalnum() and not _is_cjk(ch)


def normalize_text(s: str) -> str:
    """NFKC, drop invisible format characters, casefold, katakana to hiragana, collapse spaces."""
    s = unicodedata.normalize("NFKC", s)
    s = "".join(ch for ch in s if unicodedata.category(ch) != "Cf")
    s = s.casefold()
    out = []
    for ch in s:
        o = ord(ch)
        if 0x30A1 <= o <= 0x30F6 or o in (0x30FD, 0x30FE):  # ァ..ヶ, ヽ ヾ
            ch = chr(o - 0x60)
        out.append(ch)
    return " ".join("".join(out).split())


def _lookalike(s: str) -> str:
    """Undo look-alike characters: symbols between letters, digits inside words that have letters."""
    s = _INNER_SYMBOL.sub(lambda m: m.group().translate(_LOOKALIKE), s)

    def word(m: re.Match[str]) -> str:
        w = m.group()
        return w.translate(_LOOKALIKE) if any(c.isalpha() for c in w) else w

    return _WORD.sub(word, s)


def undisguise(norm: str) -> str:
    """The disguise-undone form of already normalised text (see the module docstring)."""
    s = _SPACED.sub(lambda m: re.sub(r"[ .\-_*·・/+~]+", "", m.group()), norm)
    s = _CJK_GAP.sub("", s)
    return _lookalike(s)


def _matches(term: str, text: str) -> bool:
    need_left, need_right = _is_word(term[0]), _is_word(term[-1])
    start = text.find(term)
    while start != -1:
        end = start + len(term)
        left_ok = not need_left or start == 0 or not _is_word(text[start - 1])
        right_ok = not need_right or end == len(text) or not _is_word(text[end])
        if left_ok and right_ok:
            return True
        start = text.find(term, start + 1)
    return False


def _mask(text: str, allowed: list[str]) -> str:
    for a in allowed:
        if a:
            text = text.replace(a, " " * len(a))
    return text


class _Forms:
    """A text in its normalised and disguise-undone forms, innocent phrases masked in both."""

    def __init__(self, text: str, allowed: tuple[str, ...]) -> None:
        norm = normalize_text(text)
        self.plain = _mask(norm, [normalize_text(a) for a in allowed])
        self.undone = _mask(undisguise(norm), [undisguise(normalize_text(a)) for a in allowed])

    def find(self, term: str) -> bool | None:
        """True: found as written; False: found only once disguises are undone; None: not found."""
        nt = normalize_text(term)
        if not nt:
            return None
        if _matches(nt, self.plain):
            return True
        ut = undisguise(nt)
        return False if ut and _matches(ut, self.undone) else None

    def search(self, pattern: re.Pattern[str]) -> bool | None:
        if pattern.search(self.plain):
            return True
        return False if pattern.search(self.undone) else None


def check_text(text: str, profile: TextRules, field: str = "text") -> list[TextFinding]:
    """Every policy hit in ``text``, in profile order: blocked terms, patterns, competitors (block),
    then sensitive topics (needs review)."""
    forms = _Forms(text, profile.allowed_terms)
    out: list[TextFinding] = []
    for kind, terms in (("blocked_term", profile.blocked_terms), ("competitor", profile.competitors)):
        for term in terms:
            hit = forms.find(term)
            if hit is not None and not any(f.term == term and f.kind == kind for f in out):
                out.append(TextFinding(kind, term, field, BLOCK, disguised=not hit))
    for pattern in profile.blocked_patterns:
        hit = forms.search(re.compile(pattern, re.IGNORECASE))
        if hit is not None:
            out.append(TextFinding("blocked_pattern", pattern, field, BLOCK, disguised=not hit))
    for topic, terms in profile.sensitive_topics.items():
        for term in terms:
            hit = forms.find(term)
            if hit is not None:
                out.append(TextFinding("sensitive_topic", term, field, REVIEW, disguised=not hit, topic=topic))
    order = {"blocked_term": 0, "blocked_pattern": 1, "competitor": 2, "sensitive_topic": 3}
    return sorted(out, key=lambda f: order[f.kind])


def check_prompt(prompt: str, negative_prompt: str, profile: TextRules) -> list[TextFinding]:
    """The policy on a prompt and its negative prompt."""
    return check_text(prompt, profile, "prompt") + check_text(negative_prompt or "", profile, "negative_prompt")


def find_blocked_terms(text: str, profile: TextRules) -> list[str]:
    """The profile's blocked terms (as written in the profile) found in ``text``."""
    return [f.term for f in check_text(text, profile) if f.kind == "blocked_term"]


def reason(findings: list[TextFinding]) -> str:
    """One readable line: 'blocked terms "a", "b"; competitor name "c"'."""
    terms = [f for f in findings if f.kind == "blocked_term" and not f.disguised]
    parts = []
    if terms:
        noun = "blocked term" if len(terms) == 1 else "blocked terms"
        parts.append(f"{noun} " + ", ".join(f'"{f.term}"' for f in terms))
    parts += [f.message for f in findings if f not in terms]
    return "; ".join(parts)


def outcome_of(findings: list[TextFinding]) -> str:
    """block if anything blocks, needs_review if anything needs review, else pass."""
    if any(f.outcome == BLOCK for f in findings):
        return BLOCK
    return REVIEW if findings else PASS
