"""How a brief names a model: ``<name>@<alias>`` (resolved in the registry) or ``<name>/<version>`` (fixed).

The registered model names and the aliases wanflow itself moves live here, with the parser; resolving a
reference against MLflow is the registry adapter's job (:mod:`adapters.registry`).
"""

from __future__ import annotations

import re

REGISTERED_MODELS = ("wan-t2v", "wan-i2v", "wan-vace")
TASK_OF = {"wan-t2v": "t2v", "wan-i2v": "i2v", "wan-vace": "vace"}  # wan-vace: the edit model (governance.edits)
BOOTSTRAP_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"
ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
REF_RE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>[1-9][0-9]*))$")


class ModelRefError(ValueError):
    """A model reference that is malformed or names nothing in the registry."""


def parse_ref(ref: str) -> tuple[str, str | None, int | None]:
    """`wan-t2v@champion` → (name, alias, None); `wan-t2v/3` → (name, None, 3)."""
    m = REF_RE.match(ref or "")
    if not m:
        raise ModelRefError(f"malformed model ref {ref!r}: use '<name>@<alias>' or '<name>/<version>'")
    if m["name"] not in REGISTERED_MODELS:
        raise ModelRefError(f"unknown model name {m['name']!r} (known: {', '.join(REGISTERED_MODELS)})")
    return m["name"], m["alias"], int(m["version"]) if m["version"] else None


# Brand LoRAs trained by wanflow live in the registry as `lora-<name>` (adapters.lora_registry); a brief names them
# `<name>@<alias>` or `<name>/<version>`, e.g. `lora: acme-style@champion`.
LORA_PREFIX = "lora-"
LORA_REF_RE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9-]{1,62})(?:@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>[1-9][0-9]*))$")


def parse_lora_ref(ref: str) -> tuple[str, str | None, int | None]:
    """``acme-style@champion`` → (``lora-acme-style``, alias, None); ``acme-style/2`` → (…, None, 2)."""
    m = LORA_REF_RE.match((ref or "").removeprefix(LORA_PREFIX)) if isinstance(ref, str) else None
    if not m:
        raise ModelRefError(f"malformed LoRA ref {ref!r}: use '<name>@<alias>' or '<name>/<version>' "
                            "(e.g. acme-style@champion)")
    return LORA_PREFIX + m["name"], m["alias"], int(m["version"]) if m["version"] else None
