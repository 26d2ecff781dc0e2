"""A brand's training set as a governed dataset: its manifest, the rights of every asset, and the suite over it.

A dataset is given as a CSV (or a folder holding ``dataset.csv``) with one row per image or short clip:

    file,caption,owner,licence,expires,allowed_use
    shoe-01.png,"a red sneaker on a white floor",Acme Corp,ACME-LIC-2026-04,2027-12-31,training;marketing

``file`` is relative to the CSV; ``caption`` may instead be a sidecar ``<file stem>.txt`` beside the media;
``licence`` is the licence or consent reference; ``expires`` a date (YYYY-MM-DD); ``allowed_use`` a ``;``-separated
list that must include ``training``. The media facts (readable, size, frames, sha256) are measured by the stage
(:mod:`wan_tasks.personalize`, which has the media libraries) and added to the table; the suite here, in Great
Expectations (imported on first use through :mod:`core.heavy`), checks the whole table and every failing row
becomes a ``file:row:field: message`` problem. Nothing here reads media or writes anything.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import heavy
from governance.brief_schema import BriefInvalid, Problem
from governance.model_refs import ModelRefError

if TYPE_CHECKING:
    import pandas as pd

MANIFEST_NAME = "dataset.csv"
REQUIRED_COLUMNS = ("file", "owner", "licence", "expires", "allowed_use")
OPTIONAL_COLUMNS = ("caption",)
TRAINING_USE = "training"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
CLIP_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
DATASET_REF_RE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9-]{1,62})@(?P<version>[1-9][0-9]*|latest)$")
_lock = threading.Lock()


class DatasetInvalid(BriefInvalid):
    """The dataset has problems; ``problems`` lists all of them (nothing was written)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        Exception.__init__(self, f"{len(problems)} problem(s) in dataset:\n" + "\n".join(map(str, problems)))


@dataclass(frozen=True)
class Rules:
    """What an asset must be for training: the short side (pixels) and, for clips, the frames the model needs."""

    min_side: int = 64
    min_frames: int = 5
    today: dt.date = field(default_factory=dt.date.today)


@dataclass(frozen=True)
class DatasetRow:
    """One manifest row as given (blank cells are None); ``media`` is the file it names, resolved."""

    manifest: str
    row: int
    file: str | None
    media: Path | None
    caption: str | None
    owner: str | None
    licence: str | None
    expires: str | None
    allowed_use: str | None

    @property
    def kind(self) -> str:
        return "clip" if self.media is not None and self.media.suffix.lower() in CLIP_SUFFIXES else "image"


def parse_dataset_ref(ref: str) -> tuple[str, int | None]:
    """``acme-style@3`` → (name, 3); ``acme-style@latest`` or ``acme-style`` → (name, None)."""
    if "@" not in ref and NAME_RE.match(ref):
        return ref, None
    m = DATASET_REF_RE.match(ref or "")
    if not m:
        raise ModelRefError(f"dataset {ref!r}: use NAME@VERSION (e.g. acme-style@3) or NAME@latest")
    return m["name"], None if m["version"] == "latest" else int(m["version"])


def manifest_path(source: Path) -> Path:
    """The manifest of a folder (its ``dataset.csv``) or a CSV given directly."""
    return Path(source) / MANIFEST_NAME if Path(source).is_dir() else Path(source)


def read_manifest(source: Path) -> tuple[list[DatasetRow], list[Problem]]:
    """The manifest's rows, and the problems of its structure (a missing file or column). Sidecar captions are
    read here (text files); media are not."""
    path = manifest_path(source)
    file = str(path)
    if not path.is_file():
        return [], [Problem(file, None, "file", f"no dataset manifest: {path} does not exist "
                                                f"(a folder needs a {MANIFEST_NAME})")]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Problem(file, None, "file", f"cannot read the manifest: {exc}")]
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    problems = [Problem(file, 1, c, f"required column {c!r} is missing (columns: "
                                    f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})") for c in missing]
    if problems:
        return [], problems
    rows = []
    for i, raw in enumerate(reader, start=2):
        cell = {k.strip(): (v.strip() if isinstance(v, str) and v.strip() else None) for k, v in raw.items() if k}
        media = (path.parent / cell["file"]).resolve() if cell.get("file") else None
        caption = cell.get("caption")
        sidecar = media.with_suffix(".txt") if media is not None else None
        if caption is None and sidecar is not None and sidecar.is_file():
            caption = sidecar.read_text(encoding="utf-8").strip() or None
        rows.append(DatasetRow(file, i, cell.get("file"), media, caption, cell.get("owner"), cell.get("licence"),
                               cell.get("expires"), cell.get("allowed_use")))
    if not rows:
        problems.append(Problem(file, 2, "file", "the manifest has no rows"))
    return rows, problems


def _days_left(expires: str | None, today: dt.date) -> int | None:
    try:
        return (dt.date.fromisoformat(expires or "") - today).days
    except ValueError:
        return None


def table(rows: list[DatasetRow], facts: list[dict[str, Any]], rules: Rules) -> pd.DataFrame:
    """The table the suite validates: each row's cells and the media facts the stage measured (``readable``,
    ``why``, ``kind``, ``width``, ``height``, ``frames``, ``sha256``), plus ``days_left`` to expiry."""
    pd = heavy.pandas()
    recs = []
    for r, f in zip(rows, facts, strict=True):
        recs.append({"row": r.row, "file": r.file, "caption": r.caption, "owner": r.owner, "licence": r.licence,
                     "expires": r.expires, "allowed_use": r.allowed_use, "days_left": _days_left(r.expires, rules.today),
                     "readable": bool(f.get("readable")), "why": f.get("why"), "kind": f.get("kind", r.kind),
                     "width": f.get("width"), "height": f.get("height"), "frames": f.get("frames"),
                     "sha256": f.get("sha256")})
    return pd.DataFrame.from_records(recs)


# (field, message for a failing row, expectation builder): one entry per rule; messages may use the row's cells
def _expectations(rules: Rules) -> list[tuple[str, str, Any]]:
    gxe = heavy.great_expectations().expectations
    readable = "readable == True"
    return [
        ("file", "{why}", gxe.ExpectColumnValuesToBeInSet(column="readable", value_set=[True])),
        ("caption", "missing caption (a 'caption' cell or a sidecar .txt beside the file)",
         gxe.ExpectColumnValuesToNotBeNull(column="caption")),
        ("owner", "missing owner of the rights", gxe.ExpectColumnValuesToNotBeNull(column="owner")),
        ("licence", "missing licence or consent reference", gxe.ExpectColumnValuesToNotBeNull(column="licence")),
        ("expires", "missing or not a date YYYY-MM-DD (got {expires!r})",
         gxe.ExpectColumnValuesToNotBeNull(column="days_left")),
        ("expires", "licence expired on {expires}", gxe.ExpectColumnValuesToBeBetween(
            column="days_left", min_value=0, row_condition="days_left == days_left", condition_parser="pandas")),
        ("allowed_use", f"allowed use {{allowed_use!r}} does not include {TRAINING_USE!r}",
         gxe.ExpectColumnValuesToMatchRegex(column="allowed_use", regex=rf"(?:^|[;,\s]){TRAINING_USE}(?:$|[;,\s])")),
        ("file", f"too small: {{width}}x{{height}} (the short side must be at least {rules.min_side} px)",
         gxe.ExpectColumnValuesToBeBetween(column="width", min_value=rules.min_side, row_condition=readable,
                                           condition_parser="pandas")),
        ("file", f"too small: {{width}}x{{height}} (the short side must be at least {rules.min_side} px)",
         gxe.ExpectColumnValuesToBeBetween(column="height", min_value=rules.min_side, row_condition=readable,
                                           condition_parser="pandas")),
        ("file", f"clip too short: {{frames}} frames (the model needs at least {rules.min_frames})",
         gxe.ExpectColumnValuesToBeBetween(column="frames", min_value=rules.min_frames,
                                           row_condition=f'{readable} & kind == "clip"', condition_parser="pandas")),
        ("file", "duplicate: same content (sha256 {sha256:.12}…) as row {first}",
         gxe.ExpectColumnValuesToBeUnique(column="sha256", row_condition=readable, condition_parser="pandas")),
    ]


def validate_table(df: pd.DataFrame, manifest: str, rules: Rules) -> list[Problem]:
    """Run the suite over the dataset table; every failing row of every expectation as a Problem, in row order."""
    gx = heavy.great_expectations()
    specs = _expectations(rules)
    with _lock:
        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
        batch = ctx.data_sources.add_pandas("dataset").add_dataframe_asset("assets") \
            .add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name="training_dataset", expectations=[e for *_, e in specs]))
        vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="training_dataset", data=batch, suite=suite))
        result = vd.run(batch_parameters={"dataframe": df.reset_index(drop=True)},
                        result_format={"result_format": "COMPLETE"})
    first_of = {}
    for i in df.index:
        if df.at[i, "readable"]:
            first_of.setdefault(df.at[i, "sha256"], int(df.at[i, "row"]))
    problems: set[Problem] = set()
    for (fld, message, _), r in zip(specs, result.results, strict=True):
        if r.success:
            continue
        idx = (r.result or {}).get("unexpected_index_list") or []
        if fld == "file" and "duplicate" in message:  # the first occurrence is not the duplicate
            idx = [i for i in idx if first_of.get(df.at[i, "sha256"]) != int(df.at[i, "row"])]
        for i in idx:
            cells = {k: _plain(df.at[i, k]) for k in df.columns} | {"first": first_of.get(df.at[i, "sha256"])}
            problems.add(Problem(manifest, int(df.at[i, "row"]), fld, message.format(**cells)))
    return sorted(problems, key=lambda p: (p.row or 0, p.field, p.message))


def _plain(value: Any) -> Any:
    """A cell as a person wrote it: 32, not 32.0 (a column with gaps is float in pandas); a gap as None."""
    if isinstance(value, float):
        return None if value != value else int(value) if value.is_integer() else value
    return value


def dataset_digest(members: list[tuple[str, str]]) -> str:
    """A dataset version's identity: sha256 over its members' (asset sha256, caption), in order."""
    h = hashlib.sha256()
    for sha, caption in members:
        h.update(f"{sha}\0{caption}\n".encode())
    return h.hexdigest()
