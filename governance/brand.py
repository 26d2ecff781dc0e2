"""Brand profiles: who the brand is, its text policy, its palette and its QC rules.

A profile lives in ``<brands_dir>/<name>.yaml`` (see ``examples/brands/acme.yaml``)::

    name: acme
    display_name: ACME Footwear
    blocked_terms: ["competitor-x", "nike", "暴力", "ギャンブル"]   # block
    blocked_patterns: ['\\bguaranteed\\s+results\\b']               # regular expressions, block
    competitors: ["adidas", "アディダス"]                           # block
    sensitive_topics: {politics: ["election", "選挙"]}              # needs review
    allowed_terms: ["puma concolor"]                               # innocent phrases, never matched
    palette: ["#C8102E", "#FFFFFF", "#111111"]                     # brand colours (sRGB hex)
    forbidden_elements: ["a cigarette"]                            # zero-shot CLIP descriptions
    protected_names: ["ACME"]                                      # misspelt on screen: review (default: name)
    checks:                                                        # per check: parameters and outcomes
      blur: {min_sharpness: 30, on_fail: review}
      unsafe_content: {max_probability: 0.4}                     # NudeNet: exposed classes block
      watermark: {words: ["shutterstock", "getty images"]}         # on-screen OCR
      text_video_alignment: {on_not_run: review}                   # block | review | pass
    campaign: {max_block_rate: 0.5}                                # campaign-level expectation (GX)

Every key is optional except ``name`` and ``display_name``; unknown keys and bad values are errors
that name the key (``checks.blur.min_sharpnes``). The checks and their parameters are registered in
:mod:`governance.qc`. Text matching is in :mod:`governance.text_policy`.

Text on screen (``screen_text_policy``, ``watermark``, ``brand_misspelling``, ``pseudo_text``) is read by
the OCR the install ships (PP-OCRv4, Chinese/English recogniser): Latin letters and digits (accents
dropped) and CJK ideographs are read; **kana are not** — a blocked term or competitor written in hiragana
or katakana on screen is not found, and kana captions tend to be reported as unreadable pseudo-text
(docs/qc-calibration.md has the measured rates). The recogniser's dictionary holds 6,623 characters: 6,280
CJK ideographs (Chinese forms: Japanese-only kanji are missing), 77 Latin, 10 Greek, 6 Cyrillic, 5 kana and
no Hangul, Arabic, Thai or Devanagari: text in those scripts is not covered.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from governance.delivery import DeliveryPolicy, parse_delivery
from governance.qc import BY_NAME, PROFILE_OUTCOMES, CheckRule
from governance.text_policy import TextFinding, check_prompt, check_text, normalize_text

BRAND_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
HEX_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_LISTS = ("blocked_terms", "blocked_patterns", "competitors", "allowed_terms", "forbidden_elements", "protected_names")
_KEYS = {"name", "display_name", "sensitive_topics", "palette", "checks", "campaign", *_LISTS}
_CAMPAIGN_KEYS = {"max_block_rate": (0.0, 1.0), "min_pass_rate": (0.0, 1.0)}
_DELIVERY_KEYS = {"delivery"}  # framing, pad colour, AI label: governance/delivery.py


class BrandNotFound(Exception):
    """No profile file for the requested brand."""

    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path
        super().__init__(f"unknown brand {name!r}: no profile file {path}")


class BrandInvalid(Exception):
    """The profile file exists but is malformed; ``key`` names the offending key ('' for the file)."""

    def __init__(self, path: Path, key: str, message: str) -> None:
        self.path, self.key, self.message = path, key, message
        where = f"{path}: {key}" if key else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class BrandProfile:
    """A brand, its text policy, palette and QC rules (``checks`` holds the profile's overrides only)."""

    name: str
    display_name: str
    blocked_terms: tuple[str, ...]
    path: Path
    blocked_patterns: tuple[str, ...] = ()
    competitors: tuple[str, ...] = ()
    sensitive_topics: dict[str, tuple[str, ...]] = field(default_factory=dict)
    allowed_terms: tuple[str, ...] = ()
    palette: tuple[str, ...] = ()
    forbidden_elements: tuple[str, ...] = ()
    protected_names: tuple[str, ...] = ()  # the brand's own names: misspelt on screen is a finding
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    campaign: dict[str, float] = field(default_factory=dict)
    sha256: str = ""
    # --- delivery policy (governance/delivery.py): framing, pad colour, visible AI label ---
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)

    def rule(self, check: str) -> CheckRule:
        """The rule for ``check``: spec defaults overridden by this profile."""
        return BY_NAME[check].rule(self.checks.get(check, {}))

    def prompt_findings(self, prompt: str, negative_prompt: str) -> list[TextFinding]:
        """This brand's text policy on a prompt and its negative prompt."""
        return check_prompt(prompt, negative_prompt, self)

    def text_findings(self, text: str) -> list[TextFinding]:
        """This brand's text policy on text read on screen (the same normalisation as prompts)."""
        return check_text(text, self, "screen")

    def normalize(self, text: str) -> str:
        """The text policy's normalisation (:func:`governance.text_policy.normalize_text`)."""
        return normalize_text(text)


def default_profile() -> BrandProfile:
    """No brand: every check with its defaults, no text policy, no palette."""
    return BrandProfile("default", "(no brand)", (), Path("-"))


def _read(path: Path) -> tuple[dict[str, Any], bytes]:
    try:
        raw = path.read_bytes()
        data = yaml.safe_load(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BrandInvalid(path, "", f"cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise BrandInvalid(path, "", f"not valid YAML{line}") from exc
    if not isinstance(data, dict):
        raise BrandInvalid(path, "", "top level must be a mapping")
    return data, raw


def _strings(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) and normalize_text(t).strip() for t in value):
        raise BrandInvalid(path, key, "must be a list of non-empty strings")
    return tuple(t.strip() for t in value)


def _number(path: Path, key: str, value: Any, lo: float | None, hi: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BrandInvalid(path, key, f"must be a number, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"{'-inf' if lo is None else f'{lo:g}'}..{'inf' if hi is None else f'{hi:g}'}"
        raise BrandInvalid(path, key, f"{value!r} is out of range {bounds}")
    return value


def _check_rules(path: Path, value: Any) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BrandInvalid(path, "checks", "must be a mapping of check name to settings")
    out: dict[str, dict[str, Any]] = {}
    for name, settings in value.items():
        key = f"checks.{name}"
        spec = BY_NAME.get(name)
        if spec is None:
            raise BrandInvalid(path, key, f"unknown check (known: {', '.join(BY_NAME)})")
        if settings is None:
            settings = {}
        if not isinstance(settings, dict):
            raise BrandInvalid(path, key, "must be a mapping of parameter to value")
        rule: dict[str, Any] = {}
        for k, v in settings.items():
            if k in ("on_fail", "on_not_run"):
                if v not in PROFILE_OUTCOMES:
                    raise BrandInvalid(path, f"{key}.{k}", f"must be one of block, review, pass; got {v!r}")
                if k == "on_fail" and spec.fixed_on_fail and PROFILE_OUTCOMES[v] != spec.on_fail:
                    raise BrandInvalid(path, f"{key}.{k}", f"is a hard limit: a failure always means {spec.on_fail}")
                rule[k] = v
            elif k in spec.params:
                p = spec.params[k]
                rule[k] = (list(_strings(path, f"{key}.{k}", v)) if isinstance(p.default, list)
                           else _number(path, f"{key}.{k}", v, p.lo, p.hi))
            else:
                allowed = ", ".join([*spec.params, "on_fail", "on_not_run"])
                raise BrandInvalid(path, f"{key}.{k}", f"unknown setting (allowed: {allowed})")
        out[name] = rule
    return out


def _topics(path: Path, value: Any) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BrandInvalid(path, "sensitive_topics", "must be a mapping of topic to a list of terms")
    return {str(t): _strings(path, f"sensitive_topics.{t}", terms) for t, terms in value.items()}


def _patterns(path: Path, value: Any) -> tuple[str, ...]:
    patterns = _strings(path, "blocked_patterns", value)
    for i, p in enumerate(patterns):
        try:
            re.compile(p)
        except re.error as exc:
            raise BrandInvalid(path, f"blocked_patterns[{i}]", f"not a valid regular expression: {exc}") from exc
    return patterns


def _campaign(path: Path, value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BrandInvalid(path, "campaign", "must be a mapping")
    for k in value:
        if k not in _CAMPAIGN_KEYS:
            raise BrandInvalid(path, f"campaign.{k}", f"unknown key (allowed: {', '.join(_CAMPAIGN_KEYS)})")
    return {k: _number(path, f"campaign.{k}", v, *_CAMPAIGN_KEYS[k]) for k, v in value.items()}


def load_brand(name: str, brands_dir: Path) -> BrandProfile:
    """Load ``<brands_dir>/<name>.yaml``; raise BrandNotFound or BrandInvalid."""
    path = Path(brands_dir) / f"{name}.yaml"
    if not isinstance(name, str) or not BRAND_NAME_RE.match(name):
        raise BrandNotFound(str(name), path)
    if not path.is_file():
        raise BrandNotFound(name, path)
    data, raw = _read(path)
    for key in data:
        if key not in _KEYS | _DELIVERY_KEYS:
            raise BrandInvalid(path, str(key), f"unknown key (allowed: {', '.join(sorted(_KEYS | _DELIVERY_KEYS))})")
    for key in ("name", "display_name"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise BrandInvalid(path, key, "required, must be a non-empty string")
    if data["name"] != name:
        raise BrandInvalid(path, "name", f"is {data['name']!r} but the file is for brand {name!r}")
    palette = _strings(path, "palette", data.get("palette"))
    for i, colour in enumerate(palette):
        if not HEX_RE.match(colour):
            raise BrandInvalid(path, f"palette[{i}]", f"{colour!r} is not an sRGB colour like '#C8102E'")
    try:
        delivery = parse_delivery(data.get("delivery"))
    except ValueError as exc:
        key, _, message = str(exc).partition(": ")
        raise BrandInvalid(path, key, message) from None
    return BrandProfile(
        name=name, display_name=data["display_name"], path=path,
        blocked_terms=_strings(path, "blocked_terms", data.get("blocked_terms")),
        blocked_patterns=_patterns(path, data.get("blocked_patterns")),
        competitors=_strings(path, "competitors", data.get("competitors")),
        sensitive_topics=_topics(path, data.get("sensitive_topics")),
        allowed_terms=_strings(path, "allowed_terms", data.get("allowed_terms")),
        palette=palette, forbidden_elements=_strings(path, "forbidden_elements", data.get("forbidden_elements")),
        protected_names=(_strings(path, "protected_names", data["protected_names"]) if "protected_names" in data
                         else (name,)),
        checks=_check_rules(path, data.get("checks")), campaign=_campaign(path, data.get("campaign")),
        sha256=hashlib.sha256(raw).hexdigest(), delivery=delivery,
    )


def load_brand_ref(ref: str, brands_dir: Path) -> BrandProfile:
    """A brand by name (in ``brands_dir``) or by the path of its profile file (``brands/acme.yaml``)."""
    p = Path(ref)
    if p.suffix in (".yaml", ".yml") and (p.is_file() or "/" in ref):
        return load_brand(p.stem, p.parent)
    return load_brand(ref, brands_dir)
