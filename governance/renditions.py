"""Rendition presets: a YAML file (default ``wan_tasks/renditions.yaml``) validated with pydantic.

A bad preset file is an error that names the file, line and field (``file:row:field: message``),
never a traceback. The brief's ``formats`` choose the video presets by aspect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_FILE = Path(__file__).with_name("renditions.yaml")
ASPECT_RATIOS = {"16:9": Fraction(16, 9), "9:16": Fraction(9, 16), "1:1": Fraction(1), "4:5": Fraction(4, 5)}
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


@dataclass(frozen=True)
class PresetProblem:
    file: str
    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}:{self.field}: {self.message}"


class PresetInvalid(Exception):
    """The preset file has problems; ``problems`` lists all of them."""

    def __init__(self, problems: list[PresetProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VideoPreset(_Model):
    """One video deliverable: size, frame rate, container and encoder settings."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    aspect: Literal["16:9", "9:16", "1:1", "4:5"]
    width: int = Field(ge=16, le=4096)
    height: int = Field(ge=16, le=4096)
    fps: int = Field(ge=23, le=60, description="Platforms want at least 23 fps; Wan renders 16.")
    container: Literal["mp4", "webm"] = "mp4"
    frame_rate_conversion: Literal["repeat", "interpolate"] = "repeat"
    crf: int = Field(default=18, ge=0, le=51)
    crf_vp9: int = Field(default=32, ge=0, le=63)
    x264_preset: str = "medium"
    enabled: bool = True

    @field_validator("width", "height")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError(f"must be even for yuv420p, got {v}")
        return v

    @field_validator("x264_preset")
    @classmethod
    def _speed(cls, v: str) -> str:
        if v not in X264_PRESETS:
            raise ValueError(f"must be one of {', '.join(X264_PRESETS)}, got {v!r}")
        return v

    @model_validator(mode="after")
    def _ratio(self) -> VideoPreset:
        got = Fraction(self.width, self.height)
        if abs(got - ASPECT_RATIOS[self.aspect]) > Fraction(1, 100):
            raise ValueError(f"{self.width}x{self.height} is not {self.aspect}")
        return self

    @property
    def gop(self) -> int:
        """Closed GOP of half the frame rate (a keyframe every half second)."""
        return max(1, round(self.fps / 2))

    @property
    def extension(self) -> str:
        return self.container


def rendition_frames(frames: int, fps: float, out_fps: int) -> int:
    """The frame count of a rendition at ``out_fps`` of a clip of ``frames`` at ``fps``: the one decision.

    The clip's duration rounded to the nearest output frame (halves up), so the rendition lasts the clip's
    duration to half an output frame. The encoder pads the converted stream and stops at exactly this count
    (:func:`adapters.encode.render_video`), so any source count and rate pair can be delivered.
    """
    exact = Fraction(frames) * out_fps / Fraction(fps).limit_denominator(1001)
    return max(1, math.floor(exact + Fraction(1, 2)))


class PosterPreset(_Model):
    at: float = Field(default=0.5, ge=0.0, le=1.0)
    quality: int = Field(default=90, ge=1, le=100)


class PreviewPreset(_Model):
    format: Literal["webp", "gif"] = "webp"
    width: int = Field(default=360, ge=16, le=1920)
    fps: int = Field(default=12, ge=1, le=30)
    seconds: float = Field(default=3.0, gt=0, le=15)


class _Defaults(_Model):
    frame_rate_conversion: Literal["repeat", "interpolate"] = "repeat"
    crf: int = Field(default=18, ge=0, le=51)
    x264_preset: str = "medium"


class PresetSet(_Model):
    """The whole file: video presets plus the poster and the animated preview."""

    video: tuple[VideoPreset, ...]
    poster: PosterPreset = PosterPreset()
    preview: PreviewPreset = PreviewPreset()
    source: str = ""

    @model_validator(mode="after")
    def _unique(self) -> PresetSet:
        names = [p.name for p in self.video]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"preset names must be unique, repeated: {', '.join(dupes)}")
        return self

    def for_formats(self, formats: list[str] | tuple[str, ...]) -> list[VideoPreset]:
        """Enabled video presets for the requested aspects, in the brief's order of formats."""
        return [p for f in formats for p in self.video if p.aspect == f and p.enabled]


def _lines(text: str) -> dict[tuple[Any, ...], int]:
    """Map YAML key paths to 1-based lines, for error messages."""
    out: dict[tuple[Any, ...], int] = {}

    def walk(n: yaml.Node, path: tuple[Any, ...]) -> None:
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                out[path + (k.value,)] = k.start_mark.line + 1
                walk(v, path + (k.value,))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                out[path + (i,)] = v.start_mark.line + 1
                walk(v, path + (i,))

    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is not None:
        walk(node, ())
    return out


def load_presets(path: Path | None = None) -> PresetSet:
    """Load and validate a preset file; defaults apply to every video preset. Raises PresetInvalid."""
    path = Path(path or DEFAULT_FILE)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        lines = _lines(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetInvalid([PresetProblem(file, 0, "file", f"cannot read: {exc}")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise PresetInvalid([PresetProblem(file, mark.line + 1 if mark else 0, "yaml", "not valid YAML")]) from None
    if not isinstance(data, dict) or not isinstance(data.get("video"), list):
        raise PresetInvalid([PresetProblem(file, 1, "video", "the file must be a mapping with a `video` list")])
    defaults = data.pop("defaults", None) or {}
    try:
        dfl = _Defaults.model_validate(defaults).model_dump()
    except ValidationError as exc:
        raise PresetInvalid(_problems(exc, file, lines, ("defaults",))) from None
    data["video"] = [{**dfl, **p} if isinstance(p, dict) else p for p in data["video"]]
    try:
        return PresetSet.model_validate({**data, "source": file})
    except ValidationError as exc:
        raise PresetInvalid(_problems(exc, file, lines, ())) from None


def _problems(exc: ValidationError, file: str, lines: dict, prefix: tuple[Any, ...]) -> list[PresetProblem]:
    out = []
    for err in exc.errors():
        loc = prefix + tuple(err["loc"]) or ("video",)  # whole-file rules (unique names) are about the list
        row = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), 1)
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "file"
        msg = err["msg"] if err["type"] != "extra_forbidden" else "unknown key"
        out.append(PresetProblem(file, row, field, msg))
    return out
