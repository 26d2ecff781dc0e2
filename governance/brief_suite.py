"""The Great Expectations suite over the prompt table (one row per item, defaults applied).

Table columns: ``id, prompt, negative_prompt, locale, num_frames, fps, width, height, variants,
formats, steps, guidance, seed`` and ``_row`` (the item's line in its source file). ``formats`` is
the item's formats joined with ``"|"`` so that one regex expectation checks every entry.

great_expectations is imported lazily (it takes ~2.5 s); ``wanflow --help`` stays fast.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from core import heavy
from governance.brief_schema import ALLOWED_FORMATS, ItemSpec, Problem

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core import ExpectationSuite

MAX_FRAMES = 1025
MAX_SIDE = 4096
PROMPT_MIN, PROMPT_MAX = 3, 2000
ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}\Z"
LOCALE_PATTERN = r"^[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*\Z"
FORMAT_SEP = "|"
TABLE_COLUMNS = (
    "id", "prompt", "negative_prompt", "locale", "num_frames", "fps", "width", "height",
    "variants", "formats", "steps", "guidance", "seed", "_row",
)

_contexts: dict[tuple[str, ...], Any] = {}
_lock = threading.Lock()  # one validation at a time: GX contexts are not documented as thread-safe


def items_to_frame(items: Sequence[ItemSpec]) -> pd.DataFrame:
    """The prompt table for ``items`` (``id`` is ``ItemSpec.key``, ``_row`` is ``ItemSpec.row``)."""
    pd = heavy.pandas()
    rows = [
        {
            "id": it.key, "prompt": it.prompt, "negative_prompt": it.negative_prompt,
            "locale": it.locale, "num_frames": it.num_frames, "fps": it.fps, "width": it.width,
            "height": it.height, "variants": it.variants,
            "formats": FORMAT_SEP.join(f.replace(FORMAT_SEP, "/") for f in it.formats),
            "steps": it.steps, "guidance": it.guidance, "seed": it.seed, "_row": it.row,
        }
        for it in items
    ]
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def prompt_table_suite(allowed_formats: Iterable[str] = ALLOWED_FORMATS) -> ExpectationSuite:
    """The suite; each expectation's ``meta`` holds the table field and the problem message."""
    gx = heavy.great_expectations()
    gxe = gx.expectations
    fmts = tuple(allowed_formats)
    alt = "|".join(re.escape(f) for f in fmts)
    sides = list(range(16, MAX_SIDE + 1, 16))

    def side(col: str) -> Any:
        return gxe.ExpectColumnValuesToBeInSet(column=col, value_set=sides, meta={
            "field": col, "message": f"{col} {{value}} is not a multiple of 16 (16..{MAX_SIDE})"})

    def between(col: str, lo: int | float, hi: int | float) -> Any:
        return gxe.ExpectColumnValuesToBeBetween(column=col, min_value=lo, max_value=hi, meta={
            "field": col, "message": f"{col} {{value}} is out of range {lo}..{hi}"})

    expectations = [
        gxe.ExpectColumnValuesToNotBeNull(column="id", meta={"field": "id", "message": "id is missing"}),
        gxe.ExpectColumnValuesToNotBeNull(
            column="prompt", meta={"field": "prompt", "message": "prompt is missing"}),
        gxe.ExpectColumnValuesToMatchRegex(column="id", regex=ID_PATTERN, meta={
            "field": "id", "message": "id {value!r} must be 1..64 of A-Z a-z 0-9 _ . -"}),
        gxe.ExpectColumnValuesToBeUnique(column="id", meta={"field": "id", "kind": "unique"}),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="prompt", min_value=PROMPT_MIN, max_value=PROMPT_MAX, meta={
                "field": "prompt", "kind": "length",
                "message": f"prompt has {{len}} characters; allowed {PROMPT_MIN}..{PROMPT_MAX}"}),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="negative_prompt", min_value=0, max_value=PROMPT_MAX, meta={
                "field": "negative_prompt", "kind": "length",
                "message": f"negative_prompt has {{len}} characters; at most {PROMPT_MAX}"}),
        gxe.ExpectColumnValuesToMatchRegex(column="locale", regex=LOCALE_PATTERN, meta={
            "field": "locale", "message": "locale {value!r} is not a language tag like 'en' or 'ja-JP'"}),
        gxe.ExpectColumnValuesToBeInSet(
            column="num_frames", value_set=list(range(5, MAX_FRAMES + 1, 4)), meta={
                "field": "num_frames",
                "message": f"num_frames {{value}} is not of the form 4k+1 (5, 9, 13, ..., {MAX_FRAMES})"}),
        between("fps", 1, 120),
        side("width"),
        side("height"),
        between("variants", 1, 16),
        gxe.ExpectColumnValuesToMatchRegex(
            column="formats", regex=rf"^(?:{alt})(?:\{FORMAT_SEP}(?:{alt}))*\Z",
            meta={"field": "formats", "kind": "formats", "allowed": list(fmts)}),
        between("steps", 1, 1000),
        between("guidance", 0, 50),
        between("seed", 0, 2**63 - 1),
    ]
    return gx.ExpectationSuite(name="prompt_table", expectations=expectations)


def _validation(allowed_formats: tuple[str, ...]) -> Any:
    """A cached ValidationDefinition on a fresh ephemeral context for these formats."""
    if allowed_formats not in _contexts:
        gx = heavy.great_expectations()
        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
        batch = (
            ctx.data_sources.add_pandas("prompts")
            .add_dataframe_asset("prompt_table")
            .add_batch_definition_whole_dataframe("all_rows")
        )
        suite = ctx.suites.add(prompt_table_suite(allowed_formats))
        _contexts[allowed_formats] = ctx.validation_definitions.add(
            gx.ValidationDefinition(name="prompt_table", data=batch, suite=suite))
    return _contexts[allowed_formats]


def _message(meta: dict[str, Any], value: Any) -> str:
    kind = meta.get("kind")
    if kind == "length":
        if meta["field"] == "prompt" and len(value) == 0:
            return "prompt is empty"
        return meta["message"].format(len=len(value))
    if kind == "formats":
        bad = [f for f in str(value).split(FORMAT_SEP) if f not in meta["allowed"]]
        if not value or not bad:
            return "formats must not be empty"
        return f"unknown format {', '.join(map(repr, bad))} (allowed: {', '.join(meta['allowed'])})"
    return meta["message"].format(value=value)


def validate_prompt_table(
    df: pd.DataFrame, file: str, allowed_formats: Iterable[str] = ALLOWED_FORMATS
) -> list[Problem]:
    """Run the suite on ``df``; one Problem per failing cell, row from ``_row`` (else 1-based position)."""
    df = df.reset_index(drop=True)
    missing = [c for c in TABLE_COLUMNS if c != "_row" and c not in df.columns]
    if missing:
        return [Problem(file, None, c, "column missing from the prompt table") for c in missing]
    if df.empty:
        return []
    with _lock:
        result = _validation(tuple(allowed_formats)).run(
            batch_parameters={"dataframe": df}, result_format={"result_format": "COMPLETE"})
    rows: list[int | None] = list(range(1, len(df) + 1))
    if "_row" in df.columns:
        rows = [None if r is None or r != r else int(r) for r in df["_row"].tolist()]  # r != r: NaN
    problems: list[Problem] = []
    for res in result.results:
        if res.success:
            continue
        meta = res.expectation_config.meta or {}
        field = meta.get("field") or res.expectation_config.kwargs.get("column", "?")
        info = res.exception_info or {}
        errors = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
        raised = [e.get("exception_message") or "check failed" for e in errors if e.get("raised_exception")]
        if raised:
            problems.append(Problem(file, None, field, f"could not check: {raised[0]}"))
            continue
        indices = sorted(res.result.get("unexpected_index_list") or [])
        if meta.get("kind") == "unique":
            first: dict[Any, int] = {}
            for i in indices:
                value = df.at[i, field]
                if value in first:
                    problems.append(Problem(
                        file, rows[i], field, f"duplicate id {value!r} (first at row {rows[first[value]]})"))
                else:
                    first[value] = i
            continue
        for i in indices:
            problems.append(Problem(file, rows[i], field, _message(meta, df.at[i, field])))
    return problems
