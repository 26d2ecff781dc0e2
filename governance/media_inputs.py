"""Files a brief names: I2V conditioning images (per item) and a brand LoRA (per campaign).

Each is checked at intake, so that a bad or missing file is a ``file:row:field`` problem before anything is
written, and its sha256 is recorded so that a clip can be traced to (and regenerated from) the exact bytes.
Paths are relative to the file that names them (the brief, or the CSV prompt list).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from safetensors import SafetensorError, safe_open

from core.files import sha256_file
from governance.brief_schema import ItemSpec, LoraSpec, Problem
from governance.model_refs import ModelRefError, parse_lora_ref

MIN_IMAGE_SIDE = 16
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"  # diffusers' default LoRA file name
MAX_LORA_SCALE = 4.0


def image_problem(path: Path) -> str | None:
    """Why ``path`` is not a usable conditioning image, or None."""
    if not path.is_file():
        return f"image {path} does not exist" if not path.exists() else f"image {path} is not a file"
    try:
        with Image.open(path) as im:
            im.verify()  # structure and checksums, without decoding everything
        with Image.open(path) as im:
            im.load()
            w, h = im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"image {path} cannot be read as an image ({type(exc).__name__}: {exc})"
    if min(w, h) < MIN_IMAGE_SIDE:
        return f"image {path} is {w}x{h}; it needs at least {MIN_IMAGE_SIDE} pixels on each side"
    return None


def check_images(specs: list[ItemSpec], origin: dict, problems: list[Problem]) -> list[ItemSpec]:
    """Resolve and check each item's image; a bad one is a problem at the line that names it."""

    out = []
    for spec in specs:
        if spec.image is None:
            out.append(spec)
            continue
        where = origin.get((spec.source_file, spec.row, "image"), (spec.source_file, spec.row, "image"))
        path = (Path(where[0]).parent / spec.image).resolve()
        why = image_problem(path)
        if why:
            problems.append(Problem(where[0], where[1], where[2], why))
            out.append(spec)
            continue
        out.append(dataclasses.replace(spec, image=str(path), image_sha256=sha256_file(path)))
    return out


def lora_file(path: Path) -> Path:
    """The safetensors file of a LoRA given as a file or as a folder holding diffusers' default file name."""
    if path.is_dir():
        files = [path / LORA_WEIGHT_NAME] if (path / LORA_WEIGHT_NAME).exists() else sorted(path.glob("*.safetensors"))
        if len(files) != 1:
            raise ValueError(f"LoRA folder {path} must hold {LORA_WEIGHT_NAME} (or exactly one .safetensors file)")
        return files[0]
    if not path.exists():
        raise ValueError(f"LoRA {path} does not exist")
    return path


def lora_problem(path: Path) -> tuple[Path | None, str | None]:
    """(the LoRA's safetensors file, None) or (None, why it is not a LoRA)."""
    try:
        f = lora_file(path)
        with safe_open(str(f), framework="pt") as st:
            keys = list(st.keys())
    except (ValueError, OSError, SafetensorError) as exc:
        return None, str(exc) if isinstance(exc, ValueError) else f"LoRA {path} is not a safetensors file ({exc})"
    if not any("lora" in k for k in keys):
        return None, f"{f} holds no LoRA weights (no 'lora_A'/'lora_B' or 'lora_down'/'lora_up' tensors)"
    return f, None


def check_lora(raw: Any, brief_path: Path, lines: dict, problems: list[Problem]) -> LoraSpec | None:
    """``lora: {path: …, scale: …}`` at the top of a brief → a LoraSpec, or problems. A Wan 2.2 A14B LoRA pair:
    ``path`` (the high-noise file) and ``low_noise_path``."""

    if raw is None:
        return None
    file = str(brief_path)
    line = lines.get(("lora",), 1)
    if isinstance(raw, str):  # `lora: acme-style@champion`: a LoRA version in the registry, at scale 1
        raw = {"ref": raw}
    unknown = sorted(set(raw) - {"path", "scale", "low_noise_path", "ref"})
    if unknown:
        problems.append(Problem(file, line, "lora", f"unknown key(s) {', '.join(map(repr, unknown))} "
                                                    "(allowed: ref or path, scale, low_noise_path)"))
    scale = raw.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) \
            or not 0 < scale <= MAX_LORA_SCALE:
        problems.append(Problem(file, lines.get(("lora", "scale"), line), "lora.scale",
                                f"scale must be a number in (0, {MAX_LORA_SCALE}] (got {scale!r})"))
        scale = None
    if raw.get("ref") is not None:
        return _lora_ref(raw, file, line, lines, problems, scale)
    if not isinstance(raw.get("path"), str) or not raw["path"].strip():
        problems.append(Problem(file, line, "lora.path", "required key 'path' is missing (a LoRA .safetensors file)"))
        return None
    found, why = lora_problem((brief_path.parent / raw["path"]).resolve())
    if why:
        problems.append(Problem(file, lines.get(("lora", "path"), line), "lora.path", why))
        return None
    low = None
    if raw.get("low_noise_path") is not None:
        if not isinstance(raw["low_noise_path"], str) or not raw["low_noise_path"].strip():
            why = "low_noise_path must name the low-noise expert's LoRA .safetensors file"
        else:
            low, why = lora_problem((brief_path.parent / raw["low_noise_path"]).resolve())
        if why:
            problems.append(Problem(file, lines.get(("lora", "low_noise_path"), line), "lora.low_noise_path", why))
            return None
    if scale is None:
        return None
    return LoraSpec(path=str(found), scale=float(scale), sha256=sha256_file(found),
                    low_noise_path=str(low) if low else None, low_noise_sha256=sha256_file(low) if low else None)


def _lora_ref(raw: dict, file: str, line: int, lines: dict, problems: list[Problem], scale: Any) -> LoraSpec | None:
    """``lora: {ref: acme-style@champion, scale: 0.8}``: a registry LoRA; the registry is asked at intake and plan."""
    where = lines.get(("lora", "ref"), line)
    if raw.get("path") is not None or raw.get("low_noise_path") is not None:
        problems.append(Problem(file, where, "lora.ref", "give either 'ref' (a registry LoRA) or 'path' (a file), "
                                                         "not both"))
        return None
    try:
        parse_lora_ref(raw["ref"])
    except ModelRefError as exc:
        problems.append(Problem(file, where, "lora.ref", str(exc)))
        return None
    if scale is None:
        return None
    return LoraSpec(path="", scale=float(scale), sha256="", ref=raw["ref"])
