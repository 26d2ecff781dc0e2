"""The value rules over a brief's prompt table (one row per item, defaults applied): lengths, unique ids,
4k+1 frames, multiples of 16, ranges and formats.

Each rule is one row of :data:`RULES` (the field, the test, the message), checked in plain Python: these are
per-field constraints of the schema, and ``wanflow validate`` must answer in under 3 s of CPU, which importing
Great Expectations alone exceeds on a laptop core (2.2–3.9 s measured, docs/performance.md). Great
Expectations validates the table it is made for, each campaign's QC results (:mod:`governance.qc_suite`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from governance.brief_schema import ALLOWED_FORMATS, ITEM_ID_RULE, ItemSpec, Problem, is_item_id

MAX_FRAMES = 1025
MAX_SIDE = 4096
PROMPT_MIN, PROMPT_MAX = 3, 2000
LOCALE_RE = re.compile(r"[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*")


@dataclass(frozen=True)
class Rule:
    """``field`` (an ItemSpec attribute) breaks the rule when ``ok(value)`` is false; ``message(value)`` says how."""

    field: str
    ok: Callable[[Any], bool]
    message: Callable[[Any], str]


def _between(field: str, lo: float, hi: float) -> Rule:
    return Rule(field, lambda v: lo <= v <= hi, lambda v: f"{field} {v} is out of range {lo}..{hi}")


def _side(field: str) -> Rule:
    return Rule(field, lambda v: 16 <= v <= MAX_SIDE and v % 16 == 0,
                lambda v: f"{field} {v} is not a multiple of 16 (16..{MAX_SIDE})")


def _prompt_length(v: str) -> str:
    return "prompt is empty" if not v else f"prompt has {len(v)} characters; allowed {PROMPT_MIN}..{PROMPT_MAX}"


RULES: tuple[Rule, ...] = (
    Rule("key", is_item_id, lambda v: f"id {v!r} must be {ITEM_ID_RULE}"),
    Rule("prompt", lambda v: PROMPT_MIN <= len(v) <= PROMPT_MAX, _prompt_length),
    Rule("negative_prompt", lambda v: len(v) <= PROMPT_MAX,
         lambda v: f"negative_prompt has {len(v)} characters; at most {PROMPT_MAX}"),
    Rule("locale", lambda v: LOCALE_RE.fullmatch(v) is not None,
         lambda v: f"locale {v!r} is not a language tag like 'en' or 'ja-JP'"),
    Rule("num_frames", lambda v: 5 <= v <= MAX_FRAMES and v % 4 == 1,
         lambda v: f"num_frames {v} is not of the form 4k+1 (5, 9, 13, ..., {MAX_FRAMES})"),
    _between("fps", 1, 120),
    _side("width"),
    _side("height"),
    _between("variants", 1, 16),
    Rule("formats", lambda v: len(v) > 0, lambda v: "formats must not be empty"),
    _between("steps", 1, 1000),
    _between("guidance", 0, 50),
    _between("seed", 0, 2**63 - 1),
)


def check_prompt_table(items: Sequence[ItemSpec], allowed_formats: Iterable[str] = ALLOWED_FORMATS) -> list[Problem]:
    """Every rule over every item: one Problem per failing cell, at the item's file and row (field ``id`` for
    the key). A repeated id is reported at each repeat, naming the row of its first use."""
    allowed = tuple(allowed_formats)
    problems: list[Problem] = []
    first: dict[str, ItemSpec] = {}
    for it in items:
        for rule in RULES:
            value = getattr(it, rule.field)
            if not rule.ok(value):
                problems.append(Problem(it.source_file, it.row, _name(rule.field), rule.message(value)))
        if bad := [f for f in it.formats if f not in allowed]:
            problems.append(Problem(it.source_file, it.row, "formats", f"unknown format {', '.join(map(repr, bad))} "
                                                                      f"(allowed: {', '.join(allowed)})"))
        if it.key in first:
            problems.append(Problem(it.source_file, it.row, "id",
                                    f"duplicate id {it.key!r} (first at row {first[it.key].row})"))
        else:
            first[it.key] = it
    return problems


def _name(field: str) -> str:
    return "id" if field == "key" else field
