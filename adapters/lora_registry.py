"""Brand LoRAs in the MLflow registry: one registered model per brand, ``lora-<name>``, governed like the base models.

A version references the LoRA folder (``pytorch_lora_weights.safetensors``), never a copy; its tags carry the
weights' sha256, the base model version it was trained on (``base_model`` = ``wan-t2v/1`` and that version's
``base_weights_sha256``), the dataset version (``dataset`` = ``acme-style@3``, ``dataset_sha256``), the training
run, whether it is a stand-in, and ``recalled`` once an asset it was trained on is withdrawn. Aliases
(``champion``, ``challenger``, …) as for the base models. :meth:`LoraRegistry.resolve` refuses a recalled version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from adapters.registry import SERVER_PATH_SCHEME, RegistryClient, mlflow_error
from core.files import sha256_file
from governance.model_refs import ModelRefError, parse_lora_ref

LORA_FILE = "pytorch_lora_weights.safetensors"  # diffusers' default name, as the trainer writes it


class LoraRecalled(ModelRefError):
    """A LoRA version trained on a withdrawn asset: no new job may use it."""


@dataclass(frozen=True)
class ResolvedLora:
    registry_name: str
    version: int
    path: str  # the safetensors file
    sha256: str
    base_model: str  # e.g. wan-t2v/1
    base_weights_sha256: str
    dataset: str  # e.g. acme-style@3
    stand_in: bool
    resolved_from: str = ""

    @property
    def ref(self) -> str:
        return f"{self.registry_name}/{self.version}"

    def check_base(self, registry_name: str, version: int, weights_sha256: str) -> None:
        """Refuse this LoRA on a base model other than the one it was trained on (by the weights' digest)."""
        if weights_sha256 != self.base_weights_sha256:
            raise ModelRefError(
                f"LoRA {self.ref} was trained on {self.base_model} (weights {self.base_weights_sha256[:12]}…), not on "
                f"{registry_name}/{version} (weights {weights_sha256[:12]}…): a LoRA only fits the base it was trained "
                "on; train one for this base or use its base model")


class LoraRegistry(RegistryClient):
    """The brand LoRAs, ``lora-<name>``: registration by digest, aliases, recall, resolution."""

    def register(self, name: str, folder: Path, tags: dict[str, str], description: str = "") -> tuple[int, bool]:
        """Register the LoRA in ``folder`` as a version of ``lora-<name>``; the same weights give back their version."""
        registry_name, _, _ = parse_lora_ref(f"{name}/1")
        digest = sha256_file(Path(folder) / LORA_FILE)
        try:
            self.client.get_registered_model(registry_name)
        except mlflow_error():
            self.client.create_registered_model(registry_name, description=f"brand LoRA {name} trained by wanflow")
        for mv in self.client.search_model_versions(f"name='{registry_name}'"):
            if mv.tags.get("weights_sha256") == digest:
                return int(mv.version), False
        mv = self.client.create_model_version(registry_name, source=self._registry_source(folder),
                                              tags={**tags, "weights_sha256": digest}, description=description)
        return int(mv.version), True

    def recall(self, registry_name: str, version: int, reason: str) -> None:
        """Tag a version recalled (the catalog holds the record; the tag makes the registry refuse it too)."""
        self.client.set_model_version_tag(registry_name, str(version), "recalled", "true")
        self.client.set_model_version_tag(registry_name, str(version), "recalled_reason", reason[:4000])

    def resolve(self, ref: str) -> ResolvedLora:
        """An alias or version → a fixed version; a recalled one is refused."""
        registry_name, alias, version = parse_lora_ref(ref)
        try:
            mv = (self.client.get_model_version_by_alias(registry_name, alias) if alias
                  else self.client.get_model_version(registry_name, str(version)))
        except mlflow_error() as e:
            raise ModelRefError(f"LoRA {ref!r} is not in the registry ({e.error_code}); train one with "
                                "`wanflow personalize train`") from None
        if mv.tags.get("recalled") == "true":
            raise LoraRecalled(f"LoRA {registry_name}/{mv.version} ({ref}) is recalled: "
                               f"{mv.tags.get('recalled_reason', 'an asset it was trained on was withdrawn')}; "
                               "no new job may use it")
        folder = Path(mv.source.removeprefix(SERVER_PATH_SCHEME))
        return ResolvedLora(registry_name=registry_name, version=int(mv.version),
                            path=str(folder / LORA_FILE), sha256=mv.tags["weights_sha256"],
                            base_model=mv.tags.get("base_model", ""), base_weights_sha256=mv.tags.get("base_weights_sha256", ""),
                            dataset=mv.tags.get("dataset", ""), stand_in=mv.tags.get("stand_in") == "true",
                            resolved_from=ref)
