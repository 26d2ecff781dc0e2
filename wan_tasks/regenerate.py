"""Reproducibility: regenerate a job from its catalog record and compare its frames with the recorded hash.

The catalog stores, per raw clip, the sha256 of its uint8 frames *before* encoding, and per job everything
that determines them: prompt, negative prompt, seed, size, steps, guidance, flow shift, image and LoRA
(with their sha256), the model version (with its weights' sha256), the device, the dtype, the memory
policy, the speed preset (with its recorded knobs, and the distillation LoRA's sha256) and the batch it ran in. Regenerating re-runs that same batch (same jobs, same order: batch
composition changes float rounding at the 1e-6 level, enough to flip a pixel) on the same device and dtype,
under the same policy, writes nothing but an audit event, and reports whether the hashes are equal.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from adapters import media
from adapters import pipelines as models
from catalog import audit
from catalog.db import session_scope
from catalog.models import Asset, AssetKind, GenerationJob, ModelVersion, PromptItem
from core import heavy
from core.files import sha256_file
from core.settings import EngineOptions
from governance import speed as speeds
from wan_tasks.generate import lora_of, make_clips, request, verify_inputs


class CannotRegenerate(LookupError):
    """The job cannot be regenerated here (no clip, other device, changed weights or inputs)."""


@dataclass
class Report:
    job_id: int
    matches: bool
    expected_frames_sha256: str
    actual_frames_sha256: str
    device: str
    dtype: str
    memory_policy: str
    batch_job_ids: list[int]
    seconds: float
    batch_matches: dict[int, bool] = field(default_factory=dict)
    speed: str = "plain"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _device_available(device: str) -> bool:
    torch = heavy.torch()
    if device.startswith("cuda"):
        return torch.cuda.is_available() and (":" not in device or int(device.split(":")[1]) < torch.cuda.device_count())
    return device == "cpu"


def regenerate(engine: Engine, job_id: int, check_weights: bool = True, actor: str = "wanflow regenerate") -> Report:
    """Regenerate job ``job_id``'s batch and compare frame hashes. Writes only an audit event."""
    with session_scope(engine) as s:
        job = s.get(GenerationJob, job_id)
        if job is None:
            raise CannotRegenerate(f"job {job_id} not found")
        clip = s.scalar(select(Asset).where(Asset.job_id == job_id, Asset.kind == AssetKind.raw_clip))
        if clip is None or not clip.frames_sha256:
            raise CannotRegenerate(f"job {job_id} has no raw clip with a frames hash to compare with")
        ids = list(job.batch.get("job_ids") or [job_id])
        jobs = [s.get(GenerationJob, i) for i in ids]
        requests = [request(j, s.get(PromptItem, j.item_id)) for j in jobs]
        expected = {j.id: s.scalar(select(Asset.frames_sha256).where(Asset.job_id == j.id,
                                                                     Asset.kind == AssetKind.raw_clip)) for j in jobs}
        mv = s.get(ModelVersion, job.model_version_id)
        device, dtype, policy = job.device or "cpu", job.dtype or "float32", job.memory_policy or "none"
        lora = lora_of(job)
        recorded = (job.batch or {}).get("speed") or {}
        speed = speeds.from_record(recorded["preset"]) if recorded.get("preset") else speeds.preset("plain")
        distill = recorded.get("distill")
        for j in jobs:
            try:
                verify_inputs(j)
            except ValueError as exc:
                raise CannotRegenerate(f"job {j.id}: {exc}") from None
        source, variant, weights = mv.source, mv.variant, mv.weights_sha256
    if not _device_available(device):
        raise CannotRegenerate(f"job {job_id} was generated on {device} ({dtype}); this machine has no {device}")
    if models.dtype_name(device) != dtype:
        raise CannotRegenerate(f"job {job_id} ran in {dtype}; {device} runs {models.dtype_name(device)} here")
    folder = models.resolve_source(source, variant)
    if check_weights and models.weights_sha256(folder) != weights:
        raise CannotRegenerate(f"the weights at {folder} are not the ones job {job_id} used "
                               f"(catalog sha256 {weights[:12]}…)")
    if distill and (not Path(distill["file"]).is_file() or sha256_file(Path(distill["file"])) != distill["sha256"]):
        raise CannotRegenerate(f"job {job_id} ran turbo with the distillation LoRA {distill['file']}, which is missing "
                               f"or changed (catalog sha256 {distill['sha256'][:12]}…)")
    t = time.perf_counter()
    made = make_clips(source, variant, requests, EngineOptions(device=device), lora=lora, policy=policy, speed=speed)
    seconds = time.perf_counter() - t
    actual = {j: media.frames_sha256(f) for j, f in zip(ids, made["result"].frames)}
    report = Report(job_id=job_id, matches=actual[job_id] == expected[job_id],
                    expected_frames_sha256=expected[job_id] or "", actual_frames_sha256=actual[job_id],
                    device=device, dtype=dtype, memory_policy=made["policy"], batch_job_ids=ids, speed=speed.name,
                    seconds=round(seconds, 3), batch_matches={j: actual[j] == expected[j] for j in ids})
    with session_scope(engine) as s:
        audit.append(s, actor, "job.regenerated", "job", job_id,
                     {k: v for k, v in report.as_dict().items() if k != "batch_matches"}
                     | {"batch_matches": {str(k): v for k, v in report.batch_matches.items()}})
    return report

