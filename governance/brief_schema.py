"""What a validated brief is: its items, rejected rows, brand LoRA, and the problems that make one invalid.

Reading and checking a brief file is :mod:`governance.brief`; the value rules over its prompt table are
:mod:`governance.brief_rules`, and the files it names (images, a LoRA) :mod:`governance.media_inputs`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from governance.brand import BrandProfile

ALLOWED_FORMATS: tuple[str, ...] = ("16:9", "9:16", "1:1", "4:5")
CAMPAIGN_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
CSV_REQUIRED = ("id", "prompt")
CSV_OPTIONAL = ("negative_prompt", "locale", "num_frames", "width", "height", "variants", "image")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a brief, located by file, line and field."""

    file: str
    row: int | None
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row or 0}:{self.field}: {self.message}"


class BriefInvalid(Exception):
    """The brief has problems; ``problems`` lists all of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in brief:\n" + "\n".join(map(str, problems)))


@dataclass(frozen=True)
class ItemSpec:
    """One prompt row with defaults applied."""

    key: str
    prompt: str
    negative_prompt: str
    locale: str
    num_frames: int
    fps: int
    width: int
    height: int
    variants: int
    formats: tuple[str, ...]
    steps: int
    guidance: float
    seed: int
    source_file: str
    row: int
    image: str | None = None  # I2V conditioning image: absolute path, checked at intake
    image_sha256: str | None = None


@dataclass(frozen=True)
class Rejection:
    """A structurally valid row that breaks the brand's text policy."""

    item: ItemSpec
    field: str
    reason: str


@dataclass(frozen=True)
class LoraSpec:
    """A brand LoRA named by the brief: a diffusers-format LoRA safetensors file, its scale and digest; or a LoRA
    version in the registry by reference (``ref``, resolved and frozen on the brief when it is first planned).

    For a Wan 2.2 A14B model (two experts) ``path`` goes onto the high-noise expert and ``low_noise_path`` onto
    the low-noise one; without ``low_noise_path`` the one file goes onto both (as the community trainers emit).
    """

    path: str
    scale: float
    sha256: str
    low_noise_path: str | None = None
    low_noise_sha256: str | None = None
    ref: str | None = None  # a registry LoRA (`acme-style@champion`): path and sha256 are frozen at the first plan


@dataclass(frozen=True)
class ValidBrief:
    """A validated brief. ``sha256`` is over the brief's bytes, then the CSV's bytes (if any), then the
    digests of its conditioning images and LoRA (if any): a changed image is a new brief version."""

    path: Path
    sha256: str
    campaign: str
    brand: BrandProfile
    model_ref: str
    items: list[ItemSpec]
    rejected: list[Rejection]
    lora: LoraSpec | None = None
    warnings: tuple[str, ...] = ()  # e.g. a size the model's variant advises against (governance.fit)
    canary: float = 0.0  # fraction of the jobs routed to ``canary_model`` (deterministic by seed)
    canary_model: str | None = None  # default: the same model's `challenger` alias
