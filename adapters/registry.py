"""Which Wan model a campaign gets: MLflow registry versions and aliases, resolved once per campaign.

A registry version is a *reference* to weights (a folder in diffusers format, or a hub id — pinned as
``org/name@revision`` — in the local Hugging Face cache), not a copy: its tags carry the variant (one of the
presets in governance.variants), the folder's sha256 and each weight file's (split over numbered tags), whether
it is a stand-in, and the variant's default parameters, supported sizes, licence and VRAM. The same weights
registered twice give back the existing version. Aliases: ``champion``, ``challenger`` and per-brand pins
(``acme-champion``, honoured by :meth:`Registry.resolve` for that brand's ``@champion`` briefs); wanflow moves
them through wan_tasks.rollout, which records and audits every move. On first use on a fresh machine the
embedded stand-ins are built and registered with alias `champion`: `wan-tiny` as `wan-t2v`, `wan-tiny-i2v` as
`wan-i2v`. On an MLflow tracking server a local folder is stored as ``wanflow-path://…`` (a server refuses
local paths as sources) and read back as the folder.
Random-weights mode (benchmarks only) is refused here, both when registering and when resolving.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.memory import Policy, Shape, estimate_peak, footprint_from_folder
from adapters.pipelines import resolve_source, weight_files
from adapters.random_weights import is_random, refuse
from adapters.standins import BUILDERS, LABELS, TINY_I2V_VARIANT, TINY_VACE_VARIANT, TINY_VARIANT
from adapters.tracking import mlflow_client
from core import heavy
from governance.model_refs import ALIAS_RE, BOOTSTRAP_ALIAS, REGISTERED_MODELS, TASK_OF, ModelRefError, parse_ref
from governance.variants import PRESETS, UnknownVariant, preset_for

BOOTSTRAP = {"wan-t2v": TINY_VARIANT, "wan-i2v": TINY_I2V_VARIANT, "wan-vace": TINY_VACE_VARIANT}  # what a fresh store gets, per model name
# the tags every version gets, `weights_sha256` written last: a version without it is half-registered
REQUIRED_TAGS = ("variant", "stand_in", "label", "task", "licence", "sizes", "default_params", "weights_bytes",
                 "weight_files", "vram_gb_published", "weights_sha256")
TAG_CHUNK = 4000  # MLflow caps a tag value (5000 chars); the per-file digests are split over numbered tags


SERVER_PATH_SCHEME = "wanflow-path://"


@dataclass(frozen=True)
class ResolvedModel:
    registry_name: str
    version: int
    variant: str
    source: str
    weights_sha256: str
    stand_in: bool
    resolved_from: str = ""  # the ref that was resolved (e.g. `wan-t2v@acme-champion` for a brand pin)
    # Wan 2.2 A14B: each expert's digest and the folder's boundary (empty for a single transformer)
    experts: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def ref(self) -> str:
        return f"{self.registry_name}/{self.version}"

    @property
    def uri(self) -> str:
        return f"models:/{self.registry_name}/{self.version}"

    @property
    def label(self) -> str:
        if self.variant in LABELS:
            return LABELS[self.variant]
        return PRESETS[self.variant].label if self.variant in PRESETS else self.variant


def mlflow_error() -> type[Exception]:
    """MLflow's exception class (MLflow itself is imported on first use, through core.heavy)."""
    return heavy.mlflow().exceptions.MlflowException


class RegistryClient:
    """The MLflow registry of one tracking URI (the embedded SQLite store by default): the client, made on first
    use, and what base models and brand LoRAs share: aliases and the source a version records."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = mlflow_client(self.tracking_uri)
        return self._client

    def aliases(self, name: str) -> dict[str, int]:
        """alias → version for a registered model (empty if it does not exist)."""
        try:
            rm = self.client.get_registered_model(name)
        except mlflow_error():
            return {}
        return {a: int(v) for a, v in (rm.aliases or {}).items()}

    def set_alias(self, name: str, alias: str, version: int) -> int | None:
        """Point `name@alias` at `version`; returns the version it pointed at before (None if unset)."""
        if not ALIAS_RE.match(alias or ""):
            raise ModelRefError(f"alias {alias!r}: letters, digits, '-' and '_' only (e.g. champion, acme-champion)")
        try:
            self.client.get_model_version(name, str(version))
        except mlflow_error():
            raise ModelRefError(f"{name}/{version} is not in the registry") from None
        before = self.aliases(name).get(alias)
        self.client.set_registered_model_alias(name, alias, str(version))
        return before

    def _registry_source(self, source: Path | str) -> str:
        """An MLflow tracking *server* refuses local paths as sources (it cannot vouch for them); there the
        folder (or hub id) is written as ``wanflow-path://…``, which resolve() reads back. The path must be the
        same on every worker (shared storage), as with the embedded store."""
        text = str(Path(source).resolve()) if Path(source).is_dir() else str(source)
        if self.tracking_uri.startswith(("http://", "https://")) and "://" not in text:
            return SERVER_PATH_SCHEME + text
        return text


class Registry(RegistryClient):
    """The Wan base models: versions, aliases, resolution, and the stand-in bootstrap of a fresh store."""

    def __init__(self, tracking_uri: str, models_dir: Path, tiny_seed: int = 0):
        super().__init__(tracking_uri)
        self.models_dir = models_dir
        self.tiny_seed = tiny_seed

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
        if alias == BOOTSTRAP_ALIAS and self._bootstrap_pending(name):
            return BOOTSTRAP[name]
        if not self._store_exists():
            return None
        try:
            mv = (self.client.get_model_version_by_alias(name, alias) if alias
                  else self.client.get_model_version(name, str(version)))
        except mlflow_error():
            return None
        _refuse_random(ref, mv)
        return mv.tags.get("variant", "unknown")

    def register(self, name: str, source: Path | str, variant: str, stand_in: bool | None = None,
                 description: str = "", revision: str | None = None) -> int:
        """Create a version referencing `source`; the same weights (same sha256) are never registered twice."""
        return self.register_version(name, source, variant, stand_in, description, revision)[0]

    def register_version(self, name: str, source: Path | str, variant: str, stand_in: bool | None = None,
                         description: str = "", revision: str | None = None) -> tuple[int, bool]:
        """Register `source` (a diffusers folder, or a hub id in the local cache, optionally at `revision`) as a
        version of `name`: a reference with its digests and the variant's published facts, never a copy.

        Returns (version, created). Weights already registered (same folder digest) give back that version.
        """
        if name not in REGISTERED_MODELS:
            raise ModelRefError(f"unknown model name {name!r} (known: {', '.join(REGISTERED_MODELS)})")
        if is_random(str(source)) or is_random(variant):
            raise ModelRefError(str(refuse(f"registering {source}", variant)))
        try:
            preset = preset_for(variant)
        except UnknownVariant as exc:
            raise ModelRefError(str(exc)) from None
        if preset.task != TASK_OF[name] and not (preset.task == "ti2v" and name != "wan-vace"):  # TI2V-5B: either
            raise ModelRefError(f"variant {variant!r} is a {preset.task.upper()} model; register it under "
                                f"{next(n for n, t in TASK_OF.items() if t == preset.task)}, not {name}")
        text = str(source)
        if revision and "@" not in text and not Path(text).expanduser().exists():
            text = f"{text}@{revision}"  # a hub id pinned to a revision: resolve_source reads it back
        folder = resolve_source(text, variant)
        digest, files = weight_files(folder)
        stand_in = preset.stand_in if stand_in is None else stand_in
        tags = {"variant": variant, "weights_sha256": digest, "stand_in": str(stand_in).lower(),
                "label": LABELS.get(variant, preset.label), "task": preset.task, "licence": preset.licence,
                "sizes": preset.sizes_text, "default_params": json.dumps(preset.default_params, sort_keys=True),
                "weights_bytes": str(sum(f["bytes"] for f in files.values())), "weight_files": str(len(files))}
        if revision or "@" in text and not Path(text).expanduser().exists():
            tags["revision"] = revision or text.rsplit("@", 1)[1]
        tags |= _vram_tags(folder, preset) | _expert_tags(folder, files)
        blob = json.dumps({k: v["sha256"] for k, v in files.items()}, sort_keys=True, separators=(",", ":"))
        for i in range(0, len(blob), TAG_CHUNK):
            tags[f"weight_files_sha256.{i // TAG_CHUNK}"] = blob[i:i + TAG_CHUNK]
        source = self._registry_source(text)
        try:
            self.client.get_registered_model(name)
        except mlflow_error():
            self.client.create_registered_model(name, description=f"Wan {name} versions managed by wanflow")
        for mv in sorted(self.client.search_model_versions(f"name='{name}'"), key=lambda m: int(m.version)):
            # the same weights; or a version of this source a kill left without its digest (half-registered)
            if mv.tags.get("weights_sha256", digest if mv.source == source else None) == digest:
                if mv.tags.get("variant", variant) != variant:
                    raise ModelRefError(f"these weights are already {name}/{mv.version} with variant "
                                        f"{mv.tags.get('variant')!r}, not {variant!r}")
                for key in sorted(tags.keys() - mv.tags.keys(), key=lambda k: k == "weights_sha256"):
                    self.client.set_model_version_tag(name, mv.version, key, tags[key])  # the digest last
                return int(mv.version), False
        mv = self.client.create_model_version(name, source=source, tags=tags,
                                              description=description or LABELS.get(variant, preset.label))
        return int(mv.version), True

    def file_digests(self, name: str, version: int) -> dict[str, str]:
        """The per-file sha256 recorded for a version (joined back from its numbered tags)."""
        tags = self.client.get_model_version(name, str(version)).tags
        parts = sorted((int(k.rsplit(".", 1)[1]), v) for k, v in tags.items() if k.startswith("weight_files_sha256."))
        return json.loads("".join(v for _, v in parts)) if parts else {}

    def delete_alias(self, name: str, alias: str) -> int | None:
        before = self.aliases(name).get(alias)
        if before is not None:
            self.client.delete_registered_model_alias(name, alias)
        return before

    def versions(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every version (of `name`, or of every Wan model) with its aliases and tags, oldest first."""
        rows = []
        names = [name] if name else [rm.name for rm in self.client.search_registered_models()]
        for n in names:
            try:
                mvs = self.client.search_model_versions(f"name='{n}'")
            except mlflow_error():
                continue
            aliases = self.aliases(n)
            for mv in sorted(mvs, key=lambda m: int(m.version)):
                rows.append({"model": n, "version": int(mv.version),
                             "source": mv.source.removeprefix(SERVER_PATH_SCHEME),
                             "aliases": sorted(a for a, v in aliases.items() if v == int(mv.version)),
                             "tags": {k: v for k, v in mv.tags.items() if not k.startswith("weight_files_sha256.")}})
        return rows

    def ensure_bootstrap(self, name: str = "wan-t2v") -> None:
        """On a fresh store: build the stand-in for `name` and make it `name@champion` (labelled as a stand-in).

        Every step can be killed and run again, so the store converges from any interrupted state: the folder is
        written atomically (a kill leaves only a hidden temporary folder, and the build starts over), the version
        is found again by its digest or, half-registered, by its source and its tags completed, and the alias is
        set last. A store with a complete champion, or with versions of its own, is left alone.
        """
        if not self._bootstrap_pending(name):
            return
        variant = BOOTSTRAP[name]
        folder = BUILDERS[variant](self.models_dir / variant, seed=self.tiny_seed)
        version = self.register(name, folder, variant, stand_in=True, description=LABELS[variant])
        self.client.set_registered_model_alias(name, BOOTSTRAP_ALIAS, str(version))

    def _bootstrap_pending(self, name: str) -> bool:
        """True while `name` still needs (the rest of) its first-use bootstrap: no store yet, or no complete
        `@champion` and no version other than the stand-in's (tagged as its variant, or half-registered)."""
        if name not in BOOTSTRAP:
            return False
        if not self._store_exists():
            return True
        try:
            champion = self.client.get_model_version_by_alias(name, BOOTSTRAP_ALIAS)
            if "weights_sha256" in champion.tags or champion.tags.get("variant", BOOTSTRAP[name]) != BOOTSTRAP[name]:
                return False
        except mlflow_error():
            pass
        try:
            versions = self.client.search_model_versions(f"name='{name}'")
        except mlflow_error():
            return True
        return all(mv.tags.get("variant", BOOTSTRAP[name]) == BOOTSTRAP[name] for mv in versions)

    def resolve(self, ref: str, brand: str | None = None) -> ResolvedModel:
        """Resolve an alias or version to a fixed version, once, at plan time.

        With a brand, `NAME@champion` honours the brand's pin `NAME@<brand>-champion` when one is set.
        """
        name, alias, version = parse_ref(ref)
        if alias and brand and f"{brand}-{alias}" in self.aliases(name):
            alias, ref = f"{brand}-{alias}", f"{name}@{brand}-{alias}"
        try:
            mv = (self.client.get_model_version_by_alias(name, alias) if alias
                  else self.client.get_model_version(name, str(version)))
        except mlflow_error() as e:
            raise ModelRefError(f"model {ref!r} is not in the registry ({e.error_code})") from None
        _refuse_random(ref, mv)
        return ResolvedModel(
            registry_name=name, version=int(mv.version), variant=mv.tags.get("variant", "unknown"),
            source=mv.source.removeprefix(SERVER_PATH_SCHEME), weights_sha256=mv.tags.get("weights_sha256", ""),
            stand_in=mv.tags.get("stand_in") == "true", resolved_from=ref, experts=experts_of(mv.tags),
        )


def _refuse_random(ref: str, mv) -> None:  # noqa: ANN001 - an mlflow ModelVersion
    variant = mv.tags.get("variant", "")
    if is_random(mv.source) or is_random(variant) or mv.tags.get("random_weights") == "true":
        raise ModelRefError(str(refuse(f"model {ref!r}", variant or mv.source.split(":", 1)[-1])))


def _expert_tags(folder: Path, files: dict[str, dict[str, Any]]) -> dict[str, str]:
    """A folder with two experts (Wan 2.2 A14B): each expert's digest (over its files' paths and sha256, so
    from the per-file digests, without reading the weights again) and the boundary its model_index.json sets."""
    if not any(rel.startswith("transformer_2/") for rel in files):
        return {}
    tags = {}
    for expert in ("transformer", "transformer_2"):
        h = hashlib.sha256()
        for rel in sorted(r for r in files if r.startswith(f"{expert}/")):
            h.update(f"{rel}\0{files[rel]['sha256']}\n".encode())
        tags[f"expert_sha256.{expert}"] = h.hexdigest()
    ratio = json.loads((folder / "model_index.json").read_text()).get("boundary_ratio")
    tags["boundary_ratio"] = "none" if ratio is None else str(float(ratio))
    return tags


def experts_of(tags: dict[str, str]) -> dict[str, Any]:
    """The experts a version's tags record: {"transformer": sha256, "transformer_2": sha256, "boundary_ratio": x}."""
    if "expert_sha256.transformer_2" not in tags:
        return {}
    ratio = tags.get("boundary_ratio", "none")
    return {"transformer": tags.get("expert_sha256.transformer", ""), "transformer_2": tags["expert_sha256.transformer_2"],
            "boundary_ratio": None if ratio == "none" else float(ratio)}


def _vram_tags(folder: Path, preset) -> dict[str, str]:  # noqa: ANN001 - governance.variants.Preset
    """VRAM needed at the variant's first supported size (or 832x480), 81 frames, batch 1, bf16 on CUDA.

    ``vram_gb_published`` is the Wan authors' figure where there is one; the estimates come from the memory
    model over this folder's safetensors headers (no offload, and the least with block-level group offload).
    """
    tags = {"vram_gb_published": f"{preset.published_min_memory_gb}" if preset.published_min_memory_gb else "none"}
    w, h = (preset.sizes or ((832, 480),))[0]
    try:
        fp = footprint_from_folder(folder, "cuda")
        shape = Shape(w, h, preset.num_frames, 1)
        tags["vram_gb_estimate"] = f"{estimate_peak(fp, shape, Policy.none, 'cuda') / 2**30:.2f}"
        tags["vram_gb_estimate_offload"] = f"{estimate_peak(fp, shape, Policy.group_offload_block, 'cuda') / 2**30:.2f}"
        tags["vram_estimate_at"] = f"{w}x{h}x{preset.num_frames}, batch 1, bf16, no offload / group offload (block)"
    except Exception as exc:  # noqa: BLE001 - an estimate that cannot be made is recorded as such
        tags["vram_gb_estimate"] = f"not estimated: {type(exc).__name__}"
    return tags
