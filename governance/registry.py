"""Which Wan model a campaign gets: MLflow registry versions and aliases, resolved once per campaign.

A registry version is a *reference* to weights (a folder in diffusers format, or a hub id in the local
Hugging Face cache), not a copy: its tags carry the variant (one of the presets in wan_tasks.variants), the
weights' sha256 and whether it is a stand-in. On first use on a fresh machine the embedded stand-ins are
built and registered with alias `champion`: `wan-tiny` as `wan-t2v`, `wan-tiny-i2v` as `wan-i2v`.
Random-weights mode (benchmarks only) is refused here, both when registering and when resolving.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from wan_tasks.model import resolve_source, weights_sha256
from wan_tasks.random_weights import is_random, refuse
from wan_tasks.standins import BUILDERS, LABELS, TINY_I2V_VARIANT, TINY_VARIANT
from wan_tasks.variants import PRESETS, UnknownVariant, preset_for

REGISTERED_MODELS = ("wan-t2v", "wan-i2v")
BOOTSTRAP_ALIAS = "champion"
BOOTSTRAP = {"wan-t2v": TINY_VARIANT, "wan-i2v": TINY_I2V_VARIANT}  # what a fresh store gets, per model name
REF_RE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>[1-9][0-9]*))$")


SERVER_PATH_SCHEME = "wanflow-path://"


class ModelRefError(ValueError):
    """A model reference that is malformed or names nothing in the registry."""


@dataclass(frozen=True)
class ResolvedModel:
    registry_name: str
    version: int
    variant: str
    source: str
    weights_sha256: str
    stand_in: bool

    @property
    def uri(self) -> str:
        return f"models:/{self.registry_name}/{self.version}"

    @property
    def label(self) -> str:
        if self.variant in LABELS:
            return LABELS[self.variant]
        return PRESETS[self.variant].label if self.variant in PRESETS else self.variant


def parse_ref(ref: str) -> tuple[str, str | None, int | None]:
    """`wan-t2v@champion` → (name, alias, None); `wan-t2v/3` → (name, None, 3)."""
    m = REF_RE.match(ref or "")
    if not m:
        raise ModelRefError(f"malformed model ref {ref!r}: use '<name>@<alias>' or '<name>/<version>'")
    if m["name"] not in REGISTERED_MODELS:
        raise ModelRefError(f"unknown model name {m['name']!r} (known: {', '.join(REGISTERED_MODELS)})")
    return m["name"], m["alias"], int(m["version"]) if m["version"] else None


class Registry:
    """Thin wrapper over MlflowClient with the embedded SQLite store as the default."""

    def __init__(self, tracking_uri: str, models_dir: Path, tiny_seed: int = 0):
        self.tracking_uri = tracking_uri
        self.models_dir = models_dir
        self.tiny_seed = tiny_seed
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient

            logging.getLogger("mlflow").setLevel(logging.WARNING)
            logging.getLogger("alembic").setLevel(logging.WARNING)
            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    def _store_exists(self) -> bool:
        if self.tracking_uri.startswith("sqlite:///"):
            return Path(self.tracking_uri.removeprefix("sqlite:///")).exists()
        return True

    def known(self, ref: str) -> bool:
        """True if `ref` resolves, or would after the first-use bootstrap. Reads only; writes nothing."""
        name, alias, version = parse_ref(ref)
        return self.variant_of(ref) is not None

    def variant_of(self, ref: str) -> str | None:
        """The variant `ref` resolves to (or would, after the bootstrap), None if unknown. Reads only.

        Raises ModelRefError for a version in random-weights mode: it is never for a campaign.
        """
        name, alias, version = parse_ref(ref)
        bootstrap = BOOTSTRAP.get(name) if alias == BOOTSTRAP_ALIAS else None
        if not self._store_exists():
            return bootstrap
        from mlflow.exceptions import MlflowException

        try:
            mv = (self.client.get_model_version_by_alias(name, alias) if alias
                  else self.client.get_model_version(name, str(version)))
        except MlflowException:
            return bootstrap if not self._has_versions_safe(name) else None
        _refuse_random(ref, mv)
        return mv.tags.get("variant", "unknown")

    def _has_versions(self, name: str) -> bool:
        return bool(self.client.search_model_versions(f"name='{name}'", max_results=1))

    def register(self, name: str, source: Path | str, variant: str, stand_in: bool, description: str = "") -> int:
        """Create a version referencing `source`; the same weights (same sha256) are never registered twice."""
        from mlflow.exceptions import MlflowException

        if is_random(str(source)) or is_random(variant):
            raise ModelRefError(str(refuse(f"registering {source}", variant)))
        try:
            preset_for(variant)
        except UnknownVariant as exc:
            raise ModelRefError(str(exc)) from None
        digest = weights_sha256(resolve_source(source, variant))
        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(name, description=f"Wan {name} versions managed by wanflow")
        for mv in self.client.search_model_versions(f"name='{name}'"):
            if mv.tags.get("weights_sha256") == digest and mv.tags.get("variant") == variant:
                return int(mv.version)
        tags = {"variant": variant, "weights_sha256": digest, "stand_in": str(stand_in).lower()}
        mv = self.client.create_model_version(name, source=self._registry_source(source), tags=tags,
                                              description=description)
        return int(mv.version)

    def _registry_source(self, source: Path | str) -> str:
        """An MLflow tracking *server* refuses local paths as sources (it cannot vouch for them); there the
        folder (or hub id) is written as ``wanflow-path://…``, which resolve() reads back. The path must be the
        same on every worker (shared storage), as with the embedded store."""
        text = str(Path(source).resolve()) if Path(source).is_dir() else str(source)
        if self.tracking_uri.startswith(("http://", "https://")) and "://" not in text:
            return SERVER_PATH_SCHEME + text
        return text

    def ensure_bootstrap(self, name: str = "wan-t2v") -> None:
        """On a fresh store: build the stand-in for `name` and make it `name@champion` (labelled as a stand-in)."""
        if name not in BOOTSTRAP or (self._store_exists() and self._has_versions_safe(name)):
            return
        variant = BOOTSTRAP[name]
        folder = BUILDERS[variant](self.models_dir / variant, seed=self.tiny_seed)
        version = self.register(name, folder, variant, stand_in=True, description=LABELS[variant])
        self.client.set_registered_model_alias(name, BOOTSTRAP_ALIAS, str(version))

    def _has_versions_safe(self, name: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            return self._has_versions(name)
        except MlflowException:
            return False

    def resolve(self, ref: str) -> ResolvedModel:
        """Resolve an alias or version to a fixed version, once, at plan time."""
        from mlflow.exceptions import MlflowException

        name, alias, version = parse_ref(ref)
        try:
            mv = (self.client.get_model_version_by_alias(name, alias) if alias
                  else self.client.get_model_version(name, str(version)))
        except MlflowException as e:
            raise ModelRefError(f"model {ref!r} is not in the registry ({e.error_code})") from None
        _refuse_random(ref, mv)
        return ResolvedModel(
            registry_name=name, version=int(mv.version), variant=mv.tags.get("variant", "unknown"),
            source=mv.source.removeprefix(SERVER_PATH_SCHEME), weights_sha256=mv.tags.get("weights_sha256", ""),
            stand_in=mv.tags.get("stand_in") == "true",
        )


def _refuse_random(ref: str, mv) -> None:  # noqa: ANN001 - an mlflow ModelVersion
    variant = mv.tags.get("variant", "")
    if is_random(mv.source) or is_random(variant) or mv.tags.get("random_weights") == "true":
        raise ModelRefError(str(refuse(f"model {ref!r}", variant or mv.source.split(":", 1)[-1])))
