"""Wan pipelines: where the weights are, loading them with the dtype policy, and one load per worker process.

A source is a local diffusers-format folder or a hub id (``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``, read from the
Hugging Face cache, ``local_files_only`` when offline). Loading: bf16 on CUDA for the transformer and the
text encoder, float32 for the VAE and the CLIP image encoder (where precision matters most); float32 on CPU.
Pipelines are cached per (folder, device): any number of jobs reuse one load; a different model is loaded
beside it and the least recently used one is evicted only when memory is short. The stand-ins live in
``adapters.standins``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adapters.engine import GenerationParams, OnStep, run_batch
from adapters.memory import (BudgetCard, Card, Footprint, Policy, apply_policy, card_for, footprint_from_folder,
                             free_device_memory)
from adapters.random_weights import is_random, refuse
from adapters.standins import quiet
from core import heavy
from governance.variants import PRESETS, UnknownVariant, preset_for

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")
PIPELINE_CLASSES = ("WanPipeline", "WanImageToVideoPipeline", "WanVACEPipeline")
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
__all__ = ["GenerationParams", "ModelNotFound", "load_pipeline", "generate_frames", "resolve_source"]


class ModelNotFound(Exception):
    """Weights missing where we looked; the message says where and how to get them."""


def _repo_for(variant: str | None) -> str:
    default = PRESETS["wan2.1-t2v-1.3b"].repo_id or ""
    try:
        return (preset_for(variant).repo_id if variant else None) or default
    except UnknownVariant:
        return default


def resolve_source(source: str | Path, variant: str | None = None, offline: bool | None = None,
                   revision: str | None = None) -> Path:
    """The local folder of a source (a folder, or a hub id in the HF cache at ``revision``); ModelNotFound says
    where and how. A revision applies to hub ids only (a folder is what it is)."""
    text = str(source)
    if "@" in text and HUB_ID.match(text.rsplit("@", 1)[0]) and not Path(text).expanduser().exists():
        text, revision = text.rsplit("@", 1)  # `org/name@revision`, as the registry records a pinned hub source
    if is_random(text):
        raise refuse(f"source {text!r}", text.split(":", 1)[-1].split("?")[0])
    path = Path(text).expanduser()
    if path.exists() or not HUB_ID.match(text):
        if not (path / "model_index.json").exists():
            raise ModelNotFound(
                f"no diffusers-format Wan pipeline at {path} (model_index.json missing). Download real weights "
                f"with, e.g.:\n  huggingface-cli download {_repo_for(variant)} --local-dir {path}")
        return path
    hub = heavy.huggingface_hub()
    offline = hub.constants.HF_HUB_OFFLINE if offline is None else offline
    try:
        return Path(hub.snapshot_download(text, revision=revision, local_files_only=offline))
    except Exception as exc:  # noqa: BLE001 - any hub failure becomes the same clear message
        raise ModelNotFound(
            f"{text} is not in the Hugging Face cache ({hub.constants.HF_HUB_CACHE}){' and HF_HUB_OFFLINE is set' if offline else ''}"
            f" ({type(exc).__name__}). Download it with:\n  huggingface-cli download {text} --local-dir "
            f"/models/{text.split('/')[-1].lower()}\nand register that folder.") from None


def _weight_files(folder: Path) -> list[Path]:
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise ModelNotFound(f"no weight files under {folder}")
    return files


def weights_sha256(folder: Path) -> str:
    """One digest over every weight/config file of a diffusers folder (relative path + bytes), for the registry."""
    h = hashlib.sha256()
    for p in _weight_files(folder):
        h.update(p.relative_to(folder).as_posix().encode())
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def weight_files(folder: Path) -> tuple[str, dict[str, dict[str, Any]]]:
    """The folder digest (as :func:`weights_sha256`) and, per weight/config file, its own sha256 and size.

    Read once: each file's bytes feed both its own digest and the folder's.
    """
    total = hashlib.sha256()
    files: dict[str, dict[str, Any]] = {}
    for p in _weight_files(folder):
        rel = p.relative_to(folder).as_posix()
        total.update(rel.encode())
        own = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                total.update(chunk)
                own.update(chunk)
        files[rel] = {"sha256": own.hexdigest(), "bytes": p.stat().st_size}
    return total.hexdigest(), files


def resolve_device(device: str = "auto") -> str:
    if device == "auto":
        return "cuda" if heavy.torch().cuda.is_available() else "cpu"
    return device


def dtype_name(device: str) -> str:
    return "bfloat16" if device.startswith("cuda") else "float32"


def _load(folder: Path, device: str) -> DiffusionPipeline:
    torch, diffusers = heavy.torch(), heavy.diffusers()
    quiet()
    name = json.loads((folder / "model_index.json").read_text()).get("_class_name")
    if name not in PIPELINE_CLASSES:
        raise ModelNotFound(f"{folder} holds a {name}, not a Wan 2.1 or 2.2 pipeline ({', '.join(PIPELINE_CLASSES)})")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    kw: dict[str, Any] = {"vae": diffusers.AutoencoderKLWan.from_pretrained(folder, subfolder="vae", dtype=torch.float32,
                                                                 local_files_only=True)}
    if (folder / "image_encoder").exists():
        kw["image_encoder"] = heavy.transformers().CLIPVisionModel.from_pretrained(folder, subfolder="image_encoder", dtype=torch.float32,
                                                              local_files_only=True)
    pipe = getattr(diffusers, name).from_pretrained(folder, dtype=dtype, local_files_only=True, **kw)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --- one load per process -------------------------------------------------------------------------------

@dataclass
class _Entry:
    pipe: Any
    policy: Policy
    resident: int
    footprint: Footprint


_lock = threading.RLock()
_cache: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
load_count = 0  # how many times weights were read from disk in this process (tests assert on it)
evictions: list[str] = []  # folders evicted to make room, oldest first (tests and logs)


def _resident(fp: Footprint, policy: Policy, device: str, card: Card) -> int:
    """Bytes a cached pipeline keeps on the card (CPU host without a simulated card: all of its weights)."""
    if device.startswith("cuda") or isinstance(card, BudgetCard):
        return fp.weights() if policy in (Policy.none, Policy.vae_tiling) else 0
    return fp.weights()


def cached(folder: Path, device: str) -> bool:
    return (str(Path(folder).resolve()), device) in _cache


def footprint(folder: Path, device: str) -> Footprint:
    """Footprint of a folder (from a cached pipeline's entry when there is one)."""
    e = _cache.get((str(Path(folder).resolve()), device))
    return e.footprint if e else footprint_from_folder(Path(folder), device)


def resident_elsewhere(folder: Path, device: str) -> int:
    """Bytes other cached pipelines keep on ``device``."""
    key = (str(Path(folder).resolve()), device)
    with _lock:
        return sum(e.resident for k, e in _cache.items() if k != key and k[1] == device)


def free_for(folder: Path, device: str, card: Card) -> int:
    """Memory the pipeline of ``folder`` may use: what is free, plus what it already holds if it is cached."""
    key = (str(Path(folder).resolve()), device)
    with _lock:
        own = _cache[key].resident if key in _cache else 0
    if isinstance(card, BudgetCard):
        return card.free_bytes(resident_elsewhere(folder, device))
    return card.free_bytes() + own


def load_pipeline(source: str | Path, device: str = "auto", policy: Policy | str = Policy.none,
                  card: Card | None = None, variant: str | None = None) -> DiffusionPipeline:
    """Load a Wan pipeline once per process and device, under a memory ``policy``.

    A cached pipeline is reused; changing between ``none`` and ``vae_tiling`` (or from those to an offload
    policy) happens in place; leaving an offload policy reloads, since its hooks cannot be taken off cleanly.
    """
    global load_count
    device, policy = resolve_device(device), Policy(policy)
    folder = resolve_source(source, variant)
    key = (str(folder.resolve()), device)
    card = card or card_for(device, None)
    with _lock:
        entry = _cache.get(key)
        if entry is not None:
            if entry.policy == policy or entry.policy in (Policy.none, Policy.vae_tiling):
                if entry.policy != policy:
                    if policy not in (Policy.none, Policy.vae_tiling):
                        entry.pipe.to("cpu")
                        free_device_memory()
                    apply_policy(entry.pipe, policy, device)
                    entry.policy, entry.resident = policy, _resident(entry.footprint, policy, device, card)
                _cache.move_to_end(key)
                return entry.pipe
            _evict(key)
        fp = footprint_from_folder(folder, device)
        need = _resident(fp, policy, device, card)
        while _cache and need > card.free_bytes(sum(e.resident for e in _cache.values())):
            _evict(next(iter(_cache)))  # least recently used first
        pipe = _load(folder, device)
        apply_policy(pipe, policy, device)
        _cache[key] = _Entry(pipe, policy, need, fp)
        load_count += 1
        return pipe


def _evict(key: tuple[str, str]) -> None:
    entry = _cache.pop(key)
    evictions.append(key[0])
    del entry
    free_device_memory()


def evict(folder: Path, device: str) -> None:
    """Drop one cached pipeline (a turbo batch changed its weights to FP8): the next load reads it again."""
    key = (str(Path(folder).resolve()), resolve_device(device))
    with _lock:
        if key in _cache:
            _evict(key)


def evict_all() -> None:
    with _lock:
        for key in list(_cache):
            _evict(key)


def policy_of(pipe: Any) -> Policy | None:
    return next((e.policy for e in _cache.values() if e.pipe is pipe), None)


def generate_frames(pipe: Any, p: GenerationParams, on_step: OnStep | None = None) -> tuple[np.ndarray, dict]:
    """One clip: uint8 frames (T, H, W, 3) and its stage timings."""
    result = run_batch(pipe, [p], on_step=on_step)
    return result.frames[0], result.timings
