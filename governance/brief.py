"""Campaign brief intake: a YAML brief whose items are inline or in a CSV prompt list.

Every problem found is collected and raised together as :class:`BriefInvalid`. Structure and
types are checked with pydantic; value rules over the prompt table (lengths, unique ids, 4k+1
frames, multiples of 16, formats) by ``governance.brief_rules``.
Rows that are valid but break the brand's text policy become :class:`Rejection` records.

``Problem.field`` is the key at top level (``model``), ``defaults.<key>`` in defaults, the key
itself in an item (``prompt``) and the column name in a CSV header. Rows are 1-based lines.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import math
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from governance import edits
from governance.brand import BrandInvalid, BrandNotFound, BrandProfile, load_brand
from governance.brief_schema import (CAMPAIGN_RULE, CSV_OPTIONAL, CSV_REQUIRED, BriefInvalid, ItemSpec, Problem,
                                     Rejection, ValidBrief, is_campaign_name)
from governance.brief_rules import check_prompt_table
from governance.media_inputs import check_images, check_lora
from governance.model_refs import ModelRefError, parse_ref
from governance.qc import BLOCK
from governance.text_policy import check_text, reason


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Top(_Doc):
    campaign: str | None = None
    brand: str | None = None
    model: str | None = None
    defaults: dict[str, Any] | None = None
    items: list[Any] | None = None
    items_csv: str | None = None
    lora: str | dict[str, Any] | None = None  # `NAME@ALIAS` (a registry LoRA) or {path|ref, scale, ...}
    canary: float | None = Field(default=None, ge=0, lt=1)
    canary_model: str | None = None
    edit_model: str | None = None
    speed: Literal["plain", "fast", "turbo"] | None = None  # governance/speed.py; `wanflow run --speed` overrides


class _Defaults(_Doc):
    """Built-in fallbacks are Wan 2.1's native settings (832x480, 81 frames at 16 fps)."""

    negative_prompt: str = ""
    num_frames: int | None = None
    seconds: float | None = Field(default=None, gt=0)
    fps: int = 16
    width: int = 832
    height: int = 480
    variants: int = 1
    formats: list[str] = ["16:9"]
    steps: int = 50
    guidance: float = 5.0
    seed: int = 0
    image: str | None = None


class _Item(_Doc):
    id: str
    prompt: str
    negative_prompt: str | None = None
    locale: str = "en"
    num_frames: int | None = None
    width: int | None = None
    height: int | None = None
    variants: int | None = None
    formats: list[str] | None = None
    steps: int | None = None
    guidance: float | None = None
    image: str | None = None
    edit: dict[str, Any] | None = None


_OVERRIDES = ("num_frames", "width", "height", "variants", "formats", "steps", "guidance", "image")
Lines = dict[tuple[Any, ...], int]


def _compose(text: str, file: str) -> tuple[Any, Lines, list[Problem]]:
    """Parse YAML; return data, a map from key path to 1-based line, and problems."""
    lines: Lines = {}
    problems: list[Problem] = []

    seen: set[int] = set()

    def walk(n: yaml.Node, path: tuple[Any, ...]) -> None:
        if id(n) in seen:  # an alias: its lines are recorded where the anchor is
            return
        seen.add(id(n))
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k.start_mark)
                if path + (key,) in lines:
                    problems.append(Problem(file, k.start_mark.line + 1, _field(path + (key,)),
                                            f"duplicate key {key!r}"))
                lines[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                lines[path + (i,)] = v.start_mark.line + 1
                walk(v, path + (i,))

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines, problems
        walk(node, ())  # before construction, which flattens merge keys (<<) in place
        return loader.construct_document(node), lines, problems
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        row = mark.line + 1 if mark is not None else None
        detail = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, {}, [Problem(file, row, "yaml", f"not valid YAML: {detail}")]
    finally:
        loader.dispose()


def _field(path: tuple[Any, ...]) -> str:
    """Field name for a key path: drop ``items[i]``, join the rest, indices as ``[i]``."""
    if len(path) >= 2 and path[0] == "items" and isinstance(path[1], int):
        path = path[2:] or ("item",)
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _line(lines: Lines, path: tuple[Any, ...], default: int = 1) -> int:
    for n in range(len(path), 0, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return default


def _validate(model: type[_Doc], data: dict[str, Any], strict: bool, file: str, lines: Lines,
              prefix: tuple[Any, ...], row: int) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Validate; on errors, report them and retry without the offending keys."""
    try:
        return model.model_validate(data, strict=strict).model_dump(), []
    except ValidationError as exc:
        errors = exc.errors()
    problems, bad = [], set()
    for err in errors:
        loc = tuple(err["loc"])
        path = prefix + loc
        if err["type"] == "extra_forbidden":
            hint = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
            msg = f"unknown key {loc[-1]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        elif err["type"] == "missing":
            msg = f"required key {loc[-1]!r} is missing"
        else:
            msg = f"{err['msg']} (got {repr(err.get('input'))[:60]})"
        problems.append(Problem(file, _line(lines, path, row), _field(path), msg))
        bad.add(loc[0] if loc else None)
    try:
        clean = {k: v for k, v in data.items() if k not in bad}
        return model.model_validate(clean, strict=strict).model_dump(), problems
    except ValidationError:
        return None, problems


def _read_csv(path: Path, file: str, brief_file: str, line: int) -> tuple[list[tuple[int, dict]], bytes, list[Problem]]:
    """Rows of the CSV prompt list as (physical start line, {column: cell}); empty optional cells dropped."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return [], b"", [Problem(brief_file, line, "items_csv", f"cannot read CSV file {path}: {exc}")]
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, dict]] = []
    problems: list[Problem] = []
    try:
        header = [h.strip() for h in next(reader, [])]
        for col in CSV_REQUIRED:
            if col not in header:
                problems.append(Problem(file, 1, col, f"required column {col!r} is missing"))
        for col in header:
            if col not in CSV_REQUIRED + CSV_OPTIONAL or header.count(col) > 1:
                allowed = ", ".join(CSV_REQUIRED + CSV_OPTIONAL)
                problems.append(Problem(file, 1, col or "header", f"unknown or repeated column {col!r} (allowed: {allowed})"))
        start = reader.line_num + 1
        for cells in reader:
            if cells and any(c.strip() for c in cells):
                if len(cells) > len(header):
                    problems.append(Problem(file, start, "row", f"{len(cells)} cells but the header has {len(header)}"))
                rows.append((start, {h: c for h, c in zip(header, cells)
                                     if h in CSV_REQUIRED or (h in CSV_OPTIONAL and c.strip())}))
            start = reader.line_num + 1
    except csv.Error as exc:
        problems.append(Problem(file, reader.line_num, "row", f"not valid CSV: {exc}"))
    if not rows and not problems:
        problems.append(Problem(file, 1, "items_csv", "the CSV has no item rows"))
    return rows, raw, problems


def _frames_from_seconds(seconds: float, fps: int) -> int:
    """Nearest 4k+1 frame count to ``seconds * fps``, at least 5."""
    return max(5, 4 * math.floor((seconds * fps - 1) / 4 + 0.5) + 1)


def _read_yaml(path: Path) -> tuple[bytes, dict[str, Any], Lines, list[Problem]]:
    """Read and parse the brief; raise BriefInvalid at once if there is nothing to check."""
    file = str(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BriefInvalid([Problem(file, None, "file", f"cannot read brief: {exc}")]) from None
    data, lines, problems = _compose(text, file)
    if not isinstance(data, dict):
        if data is not None:
            problems.append(Problem(file, 1, "file", f"top level must be a mapping, not {type(data).__name__}"))
        raise BriefInvalid(problems or [Problem(file, 1, "file", "the brief is empty")])
    return raw, data, lines, problems


def _check_top(data: dict[str, Any], file: str, lines: Lines, problems: list[Problem]) -> dict[str, Any]:
    top, more = _validate(_Top, data, True, file, lines, (), 1)
    problems += more
    for key in ("campaign", "brand", "model"):
        if data.get(key) is None:
            problems.append(Problem(file, _line(lines, (key,)), key, f"required key {key!r} is missing"))
    if (data.get("items") is None) == (data.get("items_csv") is None):
        problems.append(Problem(file, _line(lines, ("items",), _line(lines, ("items_csv",))), "items",
                                "give exactly one of 'items' and 'items_csv'"))
    campaign = (top or {}).get("campaign")
    if isinstance(campaign, str) and unicodedata.normalize("NFC", campaign) != campaign:
        campaign = unicodedata.normalize("NFC", campaign)  # one spelling of a name (macOS files write NFD)
        top = {**top, "campaign": campaign}
    if campaign is not None and not is_campaign_name(campaign):
        problems.append(Problem(file, _line(lines, ("campaign",)), "campaign",
                                f"campaign {campaign!r} must be {CAMPAIGN_RULE}"))
        top = {**(top or {}), "campaign": None}
    return top or {}


def _check_model(ref: str, file: str, row: int, known_models: Callable[[str], bool] | None) -> list[Problem]:
    try:
        _, alias, _ = parse_ref(ref)
    except ModelRefError as exc:
        return [Problem(file, row, "model", str(exc))]
    if known_models is None:
        return []
    what = "alias" if alias else "version"
    try:
        if known_models(ref):
            return []
        return [Problem(file, row, "model", f"unknown model {what} {ref!r}: not in the model registry")]
    except ModelRefError as exc:  # e.g. a version in random-weights mode, never for a campaign
        return [Problem(file, row, "model", str(exc))]
    except Exception as exc:  # the registry is outside our control: report, never crash
        return [Problem(file, row, "model", f"could not check model {ref!r} in the registry: {exc}")]


def _defaults(top: dict[str, Any], file: str, lines: Lines, problems: list[Problem]) -> dict[str, Any]:
    """Validated defaults with num_frames resolved; ``_frames_key`` says where it came from."""
    dfl, more = _validate(_Defaults, top.get("defaults") or {}, True, file, lines, ("defaults",), 1)
    problems += more
    dfl = dfl or _Defaults().model_dump()
    if dfl["num_frames"] is not None and dfl["seconds"] is not None:
        problems.append(Problem(file, _line(lines, ("defaults", "seconds")), "defaults.seconds",
                                "give either num_frames or seconds, not both"))
    dfl["_frames_key"] = "num_frames"
    if dfl["num_frames"] is None:
        dfl["num_frames"] = 81
        if dfl["seconds"] is not None:
            dfl["num_frames"], dfl["_frames_key"] = _frames_from_seconds(dfl["seconds"], dfl["fps"]), "seconds"
    return dfl


RawRow = tuple[str, int, Any, tuple[Any, ...]]  # source file, line, item, YAML key path ('' for CSV)


def _raw_rows(top: dict[str, Any], path: Path, lines: Lines, problems: list[Problem]) -> tuple[list[RawRow], bytes]:
    """Item rows from ``items`` or ``items_csv``, and the CSV's bytes (b"" for inline items)."""
    file = str(path)
    if isinstance(top.get("items"), list):
        if not top["items"]:
            problems.append(Problem(file, _line(lines, ("items",)), "items", "must list at least one item"))
        return [(file, _line(lines, ("items", i)), it, ("items", i)) for i, it in enumerate(top["items"])], b""
    if top.get("items_csv") is None:
        return [], b""
    csv_path = path.parent / top["items_csv"]
    rows, csv_bytes, more = _read_csv(csv_path, str(csv_path), file, _line(lines, ("items_csv",)))
    problems += more
    if any(p.row == 1 and p.field in CSV_REQUIRED for p in more):
        return [], csv_bytes
    return [(str(csv_path), line, row, ()) for line, row in rows], csv_bytes


Origin = dict[tuple[str, int, str], tuple[str, int, str]]


def _nfc(text: object) -> object:
    """Text in Unicode NFC (one spelling of ``が``, whatever the editor wrote), anything else as it is."""
    return unicodedata.normalize("NFC", text) if isinstance(text, str) else text


def _item_specs(rows: list[RawRow], dfl: dict[str, Any], file: str, lines: Lines,
                problems: list[Problem]) -> tuple[list[ItemSpec], Origin]:
    """ItemSpecs for the rows that pass pydantic, and where each effective value was written."""
    specs: list[ItemSpec] = []
    origin: Origin = {}  # (file, item row, field) -> (file, line, field) of the value's source
    for src, row, item, prefix in rows:
        if not isinstance(item, dict):
            problems.append(Problem(src, row, "item", "each item must be a mapping"))
            continue
        got, more = _validate(_Item, item, bool(prefix), src, lines if prefix else {}, prefix, row)
        problems += more
        if got is None:
            continue
        eff: dict[str, Any] = {}
        for key in ("prompt", "locale", "negative_prompt", "fps", "seed", *_OVERRIDES):
            if got.get(key) is not None:
                eff[key] = got[key]
                if key in item and prefix:
                    origin[(src, row, key)] = (src, _line(lines, prefix + (key,)), key)
            else:
                eff[key] = dfl[key]
                dkey = dfl["_frames_key"] if key == "num_frames" else key
                origin[(src, row, key)] = (file, _line(lines, ("defaults", dkey)), f"defaults.{dkey}")
        edit = None
        if got.get("edit") is not None:
            try:  # "_row": the line of the ``edit:`` key, for the problems found when the edit is resolved
                edit = edits.parse(got["edit"]) | {"_row": _line(lines, prefix + ("edit",), row) if prefix else row}
            except edits.EditError as exc:
                key = exc.field.split(".")[-1]
                problems.append(Problem(src, _line(lines, prefix + ("edit", key), row) if prefix else row,
                                        exc.field, exc.message))
                continue
        specs.append(ItemSpec(
            key=_nfc(got["id"]), prompt=_nfc(eff["prompt"].strip()), negative_prompt=_nfc(eff["negative_prompt"].strip()),
            locale=eff["locale"], num_frames=eff["num_frames"], fps=eff["fps"], width=eff["width"],
            height=eff["height"], variants=eff["variants"], formats=tuple(dict.fromkeys(eff["formats"])),
            steps=eff["steps"], guidance=float(eff["guidance"]), seed=eff["seed"], source_file=src, row=row,
            image=eff["image"], edit=edit))
    return specs, origin


def _apply_policy(specs: list[ItemSpec], brand: BrandProfile) -> tuple[list[ItemSpec], list[Rejection]]:
    """Split rows into accepted ones and those the brand's text policy blocks (blocked terms and patterns,
    competitor names) in prompt or negative_prompt. Rows that only touch a sensitive topic are accepted;
    QC sends their clips to review."""
    items, rejected = [], []
    for spec in specs:
        hits = [(f, found) for f in ("prompt", "negative_prompt")
                if (found := [x for x in check_text(getattr(spec, f), brand, f) if x.outcome == BLOCK])]
        if not hits:
            items.append(spec)
            continue
        field, found = hits[0]
        rejected.append(Rejection(spec, field, f"{reason(found)} (brand {brand.name})"))
    return items, rejected


def load_brief(path: Path, brands_dir: Path | None = None,
               known_models: Callable[[str], bool] | None = None) -> ValidBrief:
    """Load and validate a brief; raise BriefInvalid listing every problem found."""
    path = Path(path)
    file = str(path)
    # 1. parse, check the top level, the brand and the model
    raw, data, lines, problems = _read_yaml(path)
    top = _check_top(data, file, lines, problems)
    brand: BrandProfile | None = None
    if top.get("brand") is not None:
        try:
            brand = load_brand(top["brand"], Path(brands_dir) if brands_dir else path.parent / "brands")
        except BrandNotFound as exc:
            problems.append(Problem(file, _line(lines, ("brand",)), "brand", str(exc)))
        except BrandInvalid as exc:
            problems.append(Problem(str(exc.path), None, exc.key or "file", exc.message))
    if top.get("model") is not None:
        problems += _check_model(top["model"], file, _line(lines, ("model",)), known_models)
    canary_model = None
    if top.get("canary"):
        canary_model = top.get("canary_model") or (f"{parse_ref(top['model'])[0]}@challenger"
                                                    if top.get("model") and not problems else None)
        if canary_model:
            problems += [Problem(p.file, p.row, "canary_model", p.message) for p in _check_model(
                canary_model, file, _line(lines, ("canary_model",), _line(lines, ("canary",))), known_models)]
    # 2. rows with defaults applied (pydantic checks structure and types)
    dfl = _defaults(top, file, lines, problems)
    rows, csv_bytes = _raw_rows(top, path, lines, problems)
    specs, origin = _item_specs(rows, dfl, file, lines, problems)
    edit_model = None
    if any(s.edit and s.edit["op"] in edits.VACE_OPS for s in specs):
        edit_model = top.get("edit_model") or edits.DEFAULT_EDIT_MODEL
        problems += [Problem(p.file, p.row, "edit_model", p.message) for p in _check_model(
            edit_model, file, _line(lines, ("edit_model",)), known_models)]
    # 3. value rules over the table; move problems with a value from defaults to its line
    if specs:
        for p in check_prompt_table(specs):
            if p.row is not None and (p.file, p.row, p.field) in origin:
                p = Problem(*origin[(p.file, p.row, p.field)], p.message)
            if p not in problems:
                problems.append(p)
    # 4. files the brief names: conditioning images (a row-level error each) and the brand LoRA
    specs = check_images(specs, origin, problems)
    lora = check_lora(top.get("lora"), path, lines, problems)
    if problems or brand is None or top.get("campaign") is None or top.get("model") is None:
        raise BriefInvalid(sorted(problems, key=lambda p: (p.file != file, p.file, p.row or 0)))
    # 5. the brand's text policy
    items, rejected = _apply_policy(specs, brand)
    extra = "".join(f"\n{s.key}:{s.image_sha256}" for s in specs if s.image_sha256) + (f"\nlora:{lora.sha256 or lora.ref}:{lora.scale}"
                                                                                     if lora else "")
    if lora and lora.low_noise_sha256:
        extra += f"\nlora_low_noise:{lora.low_noise_sha256}"
    return ValidBrief(path=path, sha256=hashlib.sha256(raw + csv_bytes + extra.encode()).hexdigest(),
                 campaign=top["campaign"], brand=brand, model_ref=top["model"], items=items, rejected=rejected,
                 lora=lora, canary=top.get("canary") or 0.0, canary_model=canary_model, edit_model=edit_model,
                 speed=top.get("speed"))
