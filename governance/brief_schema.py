"""What a validated brief is: its items, rejected rows, brand LoRA, and the problems that make one invalid.

Reading and checking a brief file is :mod:`governance.brief`; the value rules over its prompt table are
:mod:`governance.brief_rules`, and the files it names (images, a LoRA) :mod:`governance.media_inputs`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from governance.brand import BrandProfile

ALLOWED_FORMATS: tuple[str, ...] = ("16:9", "9:16", "1:1", "4:5")
CAMPAIGN_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")  # the ASCII names; is_campaign_name also takes Unicode
NAME_PUNCTUATION = frozenset("-_. \u3000・")  # besides letters and digits of any script (full-width too)
CAMPAIGN_RULE = "2..63 letters or digits (any script; ASCII in lower case), - _ . ・ or spaces, starting with a letter or digit"
ITEM_ID_RULE = "1..64 letters or digits (any script), - _ . ・ or spaces, starting with a letter or digit"


def _is_name(v: object, low: int, high: int, lower_ascii: bool) -> bool:
    """Letters and digits of any script, NAME_PUNCTUATION, no leading or trailing space, in Unicode NFC."""
    if not isinstance(v, str) or not low <= len(v) <= high or unicodedata.normalize("NFC", v) != v:
        return False
    if not v[0].isalnum() or v[-1].isspace() or (lower_ascii and any("A" <= c <= "Z" for c in v)):
        return False
    return all(c.isalnum() or c in NAME_PUNCTUATION for c in v)


def is_campaign_name(v: object) -> bool:
    """A campaign name: ``spring-launch``, ``春の新作 2027`` (file names made from it: core.files.safe_file_name)."""
    return _is_name(v, 2, 63, lower_ascii=True)


def is_item_id(v: object) -> bool:
    """An item id: ``hero-shot``, ``桜 並木``, ``ＳＡＫＵＲＡ１``."""
    return _is_name(v, 1, 64, lower_ascii=False)
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
    edit: dict | None = None  # an edit of a source (governance.edits): parsed here, resolved at intake


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
    edit_model: str | None = None  # the model of the brief's VACE edits (governance.edits.DEFAULT_EDIT_MODEL)
    speed: str | None = None  # plain | fast | turbo (governance/speed.py); None: the deployment's setting
