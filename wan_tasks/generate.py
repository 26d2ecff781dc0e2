"""Generation stage: pending jobs → batches → raw clips in the asset store, recorded in the catalog.

Jobs are grouped by what a batch must share (model version, size, frames, steps, guidance, flow shift,
conditioning image, LoRA) and each group is cut into batches whose size the memory model allows. A batch
runs under a memory policy chosen from the card's free memory (or the operator's setting) and falls back
down the ladder on out-of-memory. Every job records its stage times, peak memory, GPU-seconds, the policy
actually used, its dtype and its batch, so ``wanflow regenerate`` can make the same frames again. A job
that is already done is skipped; clips are written under a temporary name and renamed.

Each job also runs under a speed preset (plain | fast | turbo, ``governance.speed``): ``wanflow run --speed``, else
the brief's ``speed:``, else the deployment's ``WANFLOW_SPEED``. Jobs of different presets never share a batch; the
preset and what of it applied or fell back are recorded on the job (``speed``, ``batch["speed"]``).

Two halves: :func:`start_jobs` (the card's work: load and generate a batch) and :func:`record_jobs` (the CPU's:
encode, hash, record under the claim). :func:`generate_jobs` runs both; a fleet worker runs the second on a
background thread, outside its GPU slot, while the card makes the next batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from adapters import media, memory
from adapters import pipelines as models
from adapters import speed as speedup
from adapters.engine import GenerationParams, Lora, OnStep, run_batch
from adapters.vace import run_edit
from catalog import claims
from catalog.db import session_scope
from catalog.models import (Asset, AssetKind, Campaign, ClipStatus, GenerationJob, JobStatus, ModelVersion, PromptItem,
                            utcnow)
from core.files import safe_file_name, sha256_file, temp_path_for
from core.settings import EngineOptions
from governance import speed as speeds


class InputChanged(ValueError):
    """A conditioning image or LoRA no longer has the bytes it had when the job was planned."""


def clip_path(assets_dir: Path, campaign: str, job: GenerationJob, item_key: str) -> Path:
    return (assets_dir / "clips" / safe_file_name(campaign)
            / f"{safe_file_name(item_key)}-v{job.variant_index}-{job.idempotency_key[:12]}.mp4")


def request(job: GenerationJob, item: PromptItem) -> GenerationParams:
    p = job.params
    return GenerationParams(
        prompt=item.prompt, negative_prompt=p.get("negative_prompt", item.negative_prompt), width=p["width"],
        height=p["height"], num_frames=p["num_frames"], steps=p["steps"], guidance=p["guidance"], seed=job.seed,
        image=p["image"]["path"] if p.get("image") else None, flow_shift=p.get("flow_shift"),
        guidance_2=p.get("guidance_2"), edit=p.get("edit"))


def lora_of(job: GenerationJob) -> Lora | None:
    lo = job.params.get("lora")
    return Lora(path=lo["path"], scale=lo["scale"], sha256=lo["sha256"], low_noise_path=lo.get("low_noise_path"),
                low_noise_sha256=lo.get("low_noise_sha256")) if lo else None


def verify_inputs(job: GenerationJob) -> None:
    """The image and LoRA must be the bytes that were planned (their sha256 is part of the job's key)."""
    lora = job.params.get("lora") or {}
    low = {"path": lora["low_noise_path"], "sha256": lora["low_noise_sha256"]} if lora.get("low_noise_path") else None
    for name, ref in (("image", job.params.get("image")), ("lora", lora), ("lora (low noise)", low)):
        if ref and (not Path(ref["path"]).is_file() or sha256_file(Path(ref["path"])) != ref["sha256"]):
            raise InputChanged(f"{name}: {ref['path']} is missing or changed since the job was planned "
                               f"(expected sha256 {ref['sha256'][:12]}…)")


def speed_of(job: GenerationJob, opts: EngineOptions) -> tuple[str, str]:
    """(preset, who chose it) for a job: ``wanflow run --speed``, else the brief, else the deployment setting."""
    return speeds.choose(opts.speed_override, job.params.get("speed"), opts.speed)


def speed_preset(name: str, opts: EngineOptions) -> speeds.SpeedPreset:
    """The preset ``name`` with this deployment's knobs (compile, step cache and threshold, FP8, distill LoRA)."""
    return speeds.preset(name, compile=opts.speed_compile, step_cache=opts.speed_step_cache,
                         cache_threshold=opts.speed_cache_threshold, fp8=opts.speed_fp8,
                         distill_lora=opts.speed_distill_lora)


def batch_key(job: GenerationJob, opts: EngineOptions | None = None) -> tuple:
    p = job.params
    return (speed_of(job, opts or EngineOptions())[0], job.model_version_id, p["width"], p["height"], p["num_frames"], p["steps"], p["guidance"],
            p.get("flow_shift"), p.get("guidance_2"), (p.get("image") or {}).get("sha256"),
            job.idempotency_key if p.get("edit") else None,  # an edit runs alone
            (p.get("lora") or {}).get("sha256"), (p.get("lora") or {}).get("scale"),
            (p.get("lora") or {}).get("low_noise_sha256"))


def _done(s: Any, job: GenerationJob) -> int | None:
    asset = s.scalar(select(Asset).where(Asset.job_id == job.id, Asset.kind == AssetKind.raw_clip))
    return asset.id if job.status == JobStatus.done and asset is not None else None


def plan_batches(engine: Engine, job_ids: list[int], opts: EngineOptions) -> tuple[list[list[int]], list[int]]:
    """Pending jobs in batches (order kept), and the raw clips of jobs already done."""
    groups: dict[tuple, list[int]] = {}
    done: list[int] = []
    with session_scope(engine) as s:
        for job_id in job_ids:
            job = s.get(GenerationJob, job_id)
            if (asset_id := _done(s, job)) is not None:
                done.append(asset_id)
            else:
                groups.setdefault(batch_key(job, opts), []).append(job_id)
        sources = {k: s.get(ModelVersion, k[1]) for k in groups}
    device = models.resolve_device(opts.device)
    batches: list[list[int]] = []
    for key, ids in groups.items():
        size = _batch_size(sources[key], key[1:], len(ids), device, opts)
        batches += [ids[i:i + size] for i in range(0, len(ids), size)]
    return batches, done


def _batch_size(mv: ModelVersion, key: tuple, n: int, device: str, opts: EngineOptions) -> int:
    try:
        folder = models.resolve_source(mv.source, mv.variant)
    except Exception:  # noqa: BLE001 - missing weights: one job per batch, each records the clear error
        return 1
    fp = models.footprint(folder, device)
    card = memory.card_for(device, opts.budget_gb)
    start = None if opts.policy == "auto" else memory.Policy(opts.policy)
    _, size = memory.choose(fp, memory.Shape(key[1], key[2], key[3], 1), models.free_for(folder, device, card),
                            device, max_batch=min(opts.max_batch, n), start=start)
    return size


@dataclass
class Generated:
    """A batch made on the card and not yet recorded: what :func:`record_jobs` needs."""

    job_ids: list[int]
    claim: str | None
    todo: list[tuple[int, GenerationParams, Path, int]] = field(default_factory=list)
    made: dict[str, Any] | None = None
    out: dict[int, int] = field(default_factory=dict)  # job id -> raw clip (done before, or recorded)


def generate_jobs(engine: Engine, job_ids: list[int], assets_dir: Path, opts: EngineOptions = EngineOptions(),
                  on_step: OnStep | None = None, claim: str | None = None) -> list[int]:
    """Generate one batch of jobs (skipping finished ones). Returns the raw clips' asset ids, in job order.

    With ``claim`` (a fleet worker's token, catalog/claims.py) only jobs that token still holds are made, and
    each clip is recorded (and renamed into place) only if the token still holds its job; a job taken over
    meanwhile is left to its new holder (its id is missing from the result).
    """
    return record_jobs(engine, start_jobs(engine, job_ids, assets_dir, opts, on_step, claim))


def start_jobs(engine: Engine, job_ids: list[int], assets_dir: Path, opts: EngineOptions = EngineOptions(),
               on_step: OnStep | None = None, claim: str | None = None) -> Generated:
    """The card's half of :func:`generate_jobs`: mark the jobs running and generate their frames (in memory)."""
    g = Generated(list(job_ids), claim)
    todo, out = g.todo, g.out
    with session_scope(engine) as s:
        for job_id in job_ids:
            job = s.get(GenerationJob, job_id)
            if (asset_id := _done(s, job)) is not None:
                out[job_id] = asset_id
                continue
            if claim is not None and not claims.holds(s, job_id, claim):
                continue  # taken over by another worker: not ours to make
            item = s.get(PromptItem, job.item_id)
            if claim is None:  # a claim already marked its jobs running and counted the attempt
                job.status, job.attempts, job.started_at = JobStatus.running, job.attempts + 1, utcnow()
            job.device = models.resolve_device(opts.device)
            todo.append((job_id, request(job, item), clip_path(assets_dir, s.get(Campaign, job.campaign_id).name,
                                                               job, item.item_key), job.params["fps"]))
            mv, lora = s.get(ModelVersion, job.model_version_id), lora_of(job)
            verify, (speed, chosen_by) = job, speed_of(job, opts)
        if todo:
            source, variant = mv.source, mv.variant
    if not todo:
        return g
    try:
        verify_inputs(verify)
        g.made = make_clips(source, variant, [r for _, r, _, _ in todo], opts, on_step, lora,
                            speed=speed_preset(speed, opts))
        g.made["speed_chosen_by"] = chosen_by
    except Exception as exc:
        if not isinstance(exc, claims.LeaseLost):  # a lost lease aborts the batch; the jobs are someone else's
            _fail(engine, [j for j, *_ in todo], exc, claim)
        raise
    return g


def record_jobs(engine: Engine, g: Generated) -> list[int]:
    """The CPU's half: encode, hash and record each clip (under the claim); the raw clips' ids in job order."""
    write_error: Exception | None = None
    for i, (job_id, _, dest, fps) in enumerate(g.todo):
        try:
            g.out[job_id] = _record(engine, job_id, i, [j for j, *_ in g.todo], g.made, dest, fps, g.claim)
        except claims.LeaseLost:
            continue  # another worker holds this job now and records it; this clip is thrown away
        except OSError as exc:  # this clip could not be written; the others are kept
            _fail(engine, [job_id], exc, g.claim)
            write_error = write_error or exc
    if write_error is not None:
        raise write_error  # an I/O failure: the task is retried; finished jobs are skipped then
    return [g.out[j] for j in g.job_ids if j in g.out]


def make_clips(source: str, variant: str, requests: list[GenerationParams], opts: EngineOptions,
               on_step: OnStep | None = None, lora: Lora | None = None, policy: str | None = None,
               speed: speeds.SpeedPreset | None = None) -> dict[str, Any]:
    """Load (once per process) and run one batch under a memory policy, falling back on out-of-memory, and
    under a speed preset (None: plain)."""
    device = models.resolve_device(opts.device)
    folder = models.resolve_source(source, variant)
    card = memory.card_for(device, opts.budget_gb)
    fp = models.footprint(folder, device)
    r0 = requests[0]
    shape = memory.Shape(r0.width, r0.height, r0.num_frames, len(requests))
    chosen = policy or (opts.policy if opts.policy != "auto" else None)
    start = memory.Policy(chosen) if chosen else memory.choose(
        fp, memory.Shape(r0.width, r0.height, r0.num_frames, 1), models.free_for(folder, device, card), device)[0]
    load_s = 0.0

    def run(p: memory.Policy) -> Any:
        nonlocal load_s
        t = time.perf_counter()
        pipe = models.load_pipeline(folder, device, p, card, variant)
        load_s += time.perf_counter() - t
        if r0.edit:  # an edit runs as plain diffusers does (the speed presets are for generation)
            return run_edit(pipe, requests, on_step=on_step, lora=lora)
        try:
            return run_batch(pipe, requests, on_step=on_step, lora=lora, speed=speed)
        except speedup.NeedsReload:  # FP8 weights from a turbo batch: this preset needs the pipeline as loaded
            models.evict(folder, device)
            t = time.perf_counter()
            pipe = models.load_pipeline(folder, device, p, card, variant)
            load_s += time.perf_counter() - t
            return run_batch(pipe, requests, on_step=on_step, lora=lora, speed=speed)

    others = models.resident_elsewhere(folder, device) if isinstance(card, memory.BudgetCard) else 0
    result, used, attempts = memory.run_with_fallback(
        start, run, card, need=lambda p: memory.estimate_peak(fp, shape, p, device) + others)
    return {"result": result, "policy": used.value, "start": start.value, "attempts": attempts, "load_s": load_s,
            "device": device}


def clips_of(engine: Engine, job_ids: list[int]) -> list[int]:
    """Raw clips of the jobs that have one (after a batch, some of whose writes may have failed)."""
    with session_scope(engine) as s:
        return list(s.scalars(select(Asset.id).where(Asset.job_id.in_(job_ids), Asset.kind == AssetKind.raw_clip)
                              .order_by(Asset.id)))


def _record(engine: Engine, job_id: int, index: int, batch_ids: list[int], made: dict[str, Any], dest: Path,
            fps: int, claim: str | None = None) -> int:
    result, n = made["result"], len(batch_ids)
    frames = result.frames[index]
    t = time.perf_counter()
    # Under a claim the clip is encoded beside its place and renamed in only once the claim is confirmed, in
    # the transaction that records it: a worker that lost its lease never replaces the holder's file. The staged
    # name carries the claim's token, so a sweep leaves it while the claim is live (core.files.sweep_temps).
    staged = temp_path_for(dest, token=claim) if claim else dest
    info = media.write_clip(frames, fps, staged)
    encode_s = time.perf_counter() - t
    share = {k: round(v / n, 4) for k, v in result.timings.items()}
    on_gpu = made["device"].startswith("cuda")
    try:
        return _store(engine, job_id, index, batch_ids, made, dest, staged, info, frames, encode_s, share, on_gpu,
                      claim)
    finally:
        if claim:
            staged.unlink(missing_ok=True)


def _store(engine: Engine, job_id: int, index: int, batch_ids: list[int], made: dict[str, Any], dest: Path,
           staged: Path, info: Any, frames: Any, encode_s: float, share: dict, on_gpu: bool, claim: str | None) -> int:
    result, n = made["result"], len(batch_ids)
    with session_scope(engine) as s:
        if claim is not None:
            claims.finish(s, job_id, claim)  # first statement: takes the lock or raises LeaseLost
            staged.replace(dest)
        job = s.get(GenerationJob, job_id)
        job.status, job.error, job.finished_at = JobStatus.done, None, utcnow()
        job.timings = {"load_s": round(made["load_s"] / n, 4), **share, "encode_s": round(encode_s, 4),
                       "peak_memory_bytes": result.peak_memory_bytes, "peak_memory_kind": result.peak_memory_kind,
                       "gpu_s": round((made["load_s"] + result.timings["generate_s"]) / n, 4) if on_gpu else 0.0,
                       "batch_size": n}
        job.memory_policy, job.dtype = made["policy"], result.details["dtype"].removeprefix("torch.")
        job.batch = {"job_ids": batch_ids, "index": index, "size": n, "policy_start": made["start"],
                     "policy_attempts": made["attempts"],
                     "software": {p: version(p) for p in ("torch", "diffusers", "transformers")}}
        if "edit" in result.details:  # an edit: the pipeline that ran it and the frames it generated
            job.batch["edit"] = result.details["edit"]
        if "experts" in result.details:  # Wan 2.2 A14B: the boundary used and how many steps each expert ran
            job.batch["experts"] = result.details["experts"]
        if "speed" in result.details:  # the preset, who chose it, what applied and what fell back (and why)
            job.speed = result.details["speed"]["preset"]["name"]
            job.batch["speed"] = {**result.details["speed"], "chosen_by": made.get("speed_chosen_by")}
        asset = s.scalar(select(Asset).where(Asset.job_id == job_id, Asset.kind == AssetKind.raw_clip))
        if asset is None:
            asset = Asset(kind=AssetKind.raw_clip, job_id=job_id)
            s.add(asset)
        asset.uri, asset.sha256, asset.frames_sha256 = str(dest), info.sha256, media.frames_sha256(frames)
        asset.size, asset.width, asset.height = info.size, info.width, info.height
        asset.frames, asset.fps, asset.status = info.frames, info.fps, ClipStatus.generated
        s.flush()
        return asset.id


def _fail(engine: Engine, job_ids: list[int], exc: Exception, claim: str | None = None) -> None:
    attempts = getattr(exc, "attempts", None)
    with session_scope(engine) as s:
        for job_id in job_ids:
            if claim is not None and not claims.holds(s, job_id, claim):
                continue  # no longer ours: its new holder decides
            job = s.get(GenerationJob, job_id)
            job.status, job.error, job.finished_at = JobStatus.failed, f"{type(exc).__name__}: {exc}", utcnow()
            if attempts:
                job.batch = {**(job.batch or {}), "policy_attempts": attempts}


def generate_job(engine: Engine, job_id: int, assets_dir: Path, device: str = "auto", on_step: OnStep | None = None,
                 opts: EngineOptions | None = None) -> int:
    """One job alone (a batch of one). Returns the raw clip's asset id."""
    opts = opts or EngineOptions(device=device)
    return generate_jobs(engine, [job_id], assets_dir, opts, on_step)[0]
