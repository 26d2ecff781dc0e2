"""Memory policies: how much of a Wan pipeline lives on the card, chosen from the card's free memory.

The ladder, fastest (most memory) first; on an out-of-memory error a job is retried one rung down:

1. ``none`` — every component resident on the device.
2. ``vae_tiling`` — as ``none``, the VAE decodes (and encodes) in spatial tiles.
3. ``model_cpu_offload`` — one whole component on the device at a time (accelerate hooks), VAE tiled.
4. ``group_offload_block`` — one transformer block at a time, prefetched on a CUDA stream, VAE tiled.
5. ``group_offload_leaf`` — one leaf module at a time (with streams on CUDA), VAE tiled.

Each rung's peak is *estimated* from the weights (read from safetensors headers, or from a ``meta``-device
model) and an activation model of Wan's shapes (tokens = frames/4 × H/16 × W/16 — H/32 × W/32 with the Wan 2.2
VAE's 16x compression; the VAE decodes four frames at a time at full resolution, the 2.2 VAE's last stages at
half of it, its 2x2 patches). ``choose`` takes the first rung whose estimate fits 92 % of the free
memory, then the largest batch that still fits. Estimates can be wrong, so the real arbiter is the card:
``run_with_fallback`` catches ``torch.OutOfMemoryError`` and moves down the ladder, recording every attempt.
On CPU a :class:`BudgetCard` simulates a card of a given size (it raises the same error) so the order is tested.

Wan 2.2 A14B has two experts (``transformer`` and ``transformer_2``), of which only one runs at any step. With
every component resident (``none``, ``vae_tiling``) both sit on the card; with ``model_cpu_offload`` one
component at a time does, so the idle expert waits on the CPU between the two phases (diffusers' offload
sequence ``text_encoder->transformer->transformer_2->vae``); group offloading streams each expert's blocks.
"""

from __future__ import annotations

import enum
import gc
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
from safetensors import safe_open

from core import heavy

T = TypeVar("T")
GIB = 1024**3
USABLE = 0.92  # of free memory: headroom for the allocator's fragmentation and cuBLAS/cuDNN workspaces
VAE_TILE = 256  # AutoencoderKLWan's default tile_sample_min_height/width
VAE_ACT_FACTOR = 6  # live full-resolution tensors per decoded chunk (input, norms, convs, residual, caches)
COMPONENTS = ("text_encoder", "image_encoder", "transformer", "transformer_2", "vae")
BLOCK_RE = re.compile(r"^(.*?\b(?:blocks|block|layers|layer|down_blocks|up_blocks)\.\d+)\.")
# transformers models whose repeated blocks sit below the top level: group offloading recurses into these
TRANSFORMERS_BLOCK_MODULES = {"UMT5EncoderModel": ["encoder"], "T5EncoderModel": ["encoder"],
                              "CLIPVisionModel": ["vision_model", "encoder"],
                              "CLIPVisionModelWithProjection": ["vision_model", "encoder"]}


class Policy(str, enum.Enum):
    none = "none"
    vae_tiling = "vae_tiling"
    model_cpu_offload = "model_cpu_offload"
    group_offload_block = "group_offload_block"
    group_offload_leaf = "group_offload_leaf"


LADDER: tuple[Policy, ...] = tuple(Policy)


class OutOfMemoryOnEveryPolicy(RuntimeError):
    """Even the smallest policy ran out of memory; ``attempts`` lists what was tried."""

    def __init__(self, attempts: list[dict[str, str]]):
        self.attempts = attempts
        super().__init__("out of memory with every memory policy: " + "; ".join(
            f"{a['policy']}: {a['outcome']}" for a in attempts))


# --- what a pipeline weighs -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Part:
    """One component's parameters: total, its largest repeated block, what is outside blocks, largest leaf."""

    params: int
    largest_block: int
    outside_blocks: int
    largest_leaf: int
    bytes_per_param: int


@dataclass(frozen=True)
class Footprint:
    parts: dict[str, Part]
    transformer_dim: int
    transformer_ffn: int
    vae_base_dim: int
    text_dim: int
    text_ffn: int
    spatial: int = 16  # pixels per token side: the VAE's spatial compression x the transformer's 2x2 patch
    vae_patch: int = 1  # the 2.2 VAE decodes to 2x2 patches: its widest stages run at half resolution

    def weights(self, names: Iterable[str] | None = None) -> int:
        return sum(p.params * p.bytes_per_param for n, p in self.parts.items() if names is None or n in names)


def dtype_bytes(component: str, device: str) -> int:
    """The dtype policy: bf16 transformers and text encoder on CUDA; VAE and image encoder float32; CPU float32."""
    return 2 if device.startswith("cuda") and component in ("transformer", "transformer_2", "text_encoder") else 4


def _part(shapes: dict[str, int], bpp: int) -> Part:
    blocks: dict[str, int] = defaultdict(int)
    leaves: dict[str, int] = defaultdict(int)
    outside = 0
    for name, n in shapes.items():
        m = BLOCK_RE.match(name)
        if m:
            blocks[m.group(1)] += n
        else:
            outside += n
        leaves[name.rsplit(".", 1)[0]] += n
    return Part(params=sum(shapes.values()), largest_block=max(blocks.values(), default=0), outside_blocks=outside,
                largest_leaf=max(leaves.values(), default=0), bytes_per_param=bpp)


def _numel(shape: Iterable[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def footprint_from_folder(folder: Path, device: str) -> Footprint:
    """Read parameter counts from the safetensors headers and sizes from config.json; loads no weights."""
    parts = {}
    for comp in COMPONENTS:
        files = sorted((folder / comp).glob("*.safetensors"))
        shapes: dict[str, int] = {}
        for f in files:
            with safe_open(str(f), framework="pt") as st:
                for k in st.keys():
                    shapes[k] = _numel(st.get_slice(k).get_shape())
        if shapes:
            parts[comp] = _part(shapes, dtype_bytes(comp, device))
    cfg = {c: _config(folder / c / "config.json") for c in ("transformer", "vae", "text_encoder")}
    return _footprint(parts, cfg)


def footprint_from_modules(components: dict[str, Any], device: str) -> Footprint:
    """The same from nn.Modules (a loaded pipeline, or real configs built on the ``meta`` device)."""
    parts, cfg = {}, {}
    for comp in COMPONENTS:
        mod = components.get(comp)
        if mod is None:
            continue
        parts[comp] = _part({k: p.numel() for k, p in mod.named_parameters()}, dtype_bytes(comp, device))
        cfg[comp] = mod.config.to_dict() if hasattr(mod.config, "to_dict") else dict(mod.config)
    return _footprint(parts, cfg)


def _config(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _footprint(parts: dict[str, Part], cfg: dict[str, dict[str, Any]]) -> Footprint:
    tr, vae, te = cfg.get("transformer", {}), cfg.get("vae", {}), cfg.get("text_encoder", {})
    patch = (tr.get("patch_size") or (1, 2, 2))[-1]
    return Footprint(parts=parts, transformer_dim=tr.get("num_attention_heads", 0) * tr.get("attention_head_dim", 0),
                     transformer_ffn=tr.get("ffn_dim", 0),
                     vae_base_dim=vae.get("decoder_base_dim") or vae.get("base_dim", 96),
                     text_dim=te.get("d_model", 0), text_ffn=te.get("d_ff", 0),
                     spatial=(vae.get("scale_factor_spatial") or 8) * patch, vae_patch=vae.get("patch_size") or 1)


# --- what a run needs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Shape:
    width: int
    height: int
    num_frames: int
    batch: int = 1


def _activations(fp: Footprint, s: Shape, device: str, tiled: bool) -> dict[str, int]:
    act = 2 if device.startswith("cuda") else 4
    tokens = s.batch * ((s.num_frames - 1) // 4 + 1) * (s.height // fp.spatial) * (s.width // fp.spatial)
    h, w = (min(s.height, VAE_TILE), min(s.width, VAE_TILE)) if tiled else (s.height, s.width)
    video_out = s.batch * 3 * s.num_frames * s.height * s.width * 4
    transformer = tokens * (4 * fp.transformer_dim + fp.transformer_ffn) * act + 8 * tokens * 64 * 4
    return {
        "text_encoder": 2 * s.batch * 512 * (4 * fp.text_dim + 2 * fp.text_ffn) * act,
        "image_encoder": s.batch * 257 * 4 * 1280 * 4,
        "transformer": transformer,
        "transformer_2": transformer,  # the other expert: the same shapes, at other steps
        # decoded one sample at a time
        "vae": VAE_ACT_FACTOR * fp.vae_base_dim * 4 * (h // fp.vae_patch) * (w // fp.vae_patch) * 4 + video_out,
    }


def estimate_peak(fp: Footprint, shape: Shape, policy: Policy, device: str, streams: bool | None = None) -> int:
    """Estimated peak bytes on the device for one batch under ``policy``."""
    streams = device.startswith("cuda") if streams is None else streams
    act = _activations(fp, shape, device, tiled=policy != Policy.none)
    if policy in (Policy.none, Policy.vae_tiling):
        return fp.weights() + max(act[c] for c in fp.parts)
    per_part = []
    for name, p in fp.parts.items():
        if policy == Policy.model_cpu_offload:
            resident = p.params
        elif policy == Policy.group_offload_block:
            resident = p.outside_blocks + p.largest_block * (2 if streams else 1)
        else:
            resident = p.largest_leaf * (2 if streams else 1)
        per_part.append(resident * p.bytes_per_param + act[name])
    return max(per_part)


def choose(fp: Footprint, shape: Shape, free_bytes: int, device: str, max_batch: int = 1,
           start: Policy | None = None) -> tuple[Policy, int]:
    """The fastest policy whose estimate fits ``free_bytes`` at batch 1, then the largest batch that fits it.

    ``start`` forces a policy (an operator's setting); the batch is still sized for it.
    """
    usable = int(free_bytes * USABLE)
    one = Shape(shape.width, shape.height, shape.num_frames, 1)
    if start is None:
        fitting = [p for p in LADDER if estimate_peak(fp, one, p, device) <= usable]
        start = fitting[0] if fitting else LADDER[-1]
    batch = 1
    while batch < max_batch and estimate_peak(
            fp, Shape(shape.width, shape.height, shape.num_frames, batch + 1), start, device) <= usable:
        batch += 1
    return start, batch


# --- the card ---------------------------------------------------------------------------------------------

@dataclass
class Card:
    """Free memory of the device that runs the pipeline; ``check`` is a no-op on real hardware."""

    device: str
    budget: int | None = None  # bytes; on CUDA a cap on what wanflow plans to use

    def free_bytes(self, resident: int = 0) -> int:
        if self.device.startswith("cuda"):
            torch = heavy.torch()
            free, _total = torch.cuda.mem_get_info(torch.device(self.device))
            return min(free, self.budget) if self.budget else free
        return psutil.virtual_memory().available

    def check(self, need: int, what: str) -> None:
        return None


@dataclass
class BudgetCard(Card):
    """A simulated card of ``budget`` bytes (CPU): a run whose estimate exceeds what is free raises OOM."""

    reserved: int = 0  # bytes taken by someone else after the policy was chosen (tests)
    checks: list[str] = field(default_factory=list)

    def free_bytes(self, resident: int = 0) -> int:
        return max(0, (self.budget or 0) - self.reserved - resident)

    def check(self, need: int, what: str) -> None:
        self.checks.append(what)
        free = self.free_bytes()
        if need > free:
            raise heavy.torch().OutOfMemoryError(f"simulated card: {what} needs {need / GIB:.3f} GiB, "
                                         f"{free / GIB:.3f} GiB free of a {(self.budget or 0) / GIB:.3f} GiB budget")


def card_for(device: str, budget_gb: float | None) -> Card:
    budget = int(budget_gb * GIB) if budget_gb else None
    if device.startswith("cuda") or budget is None:
        return Card(device, budget)
    return BudgetCard(device, budget)


# --- applying and falling back ----------------------------------------------------------------------------

def apply_policy(pipe: Any, policy: Policy, device: str) -> None:
    """Put a freshly loaded pipeline (all on CPU, no hooks) under ``policy`` for ``device``."""
    torch = heavy.torch()

    tiled = policy != Policy.none
    if policy in (Policy.none, Policy.vae_tiling):
        pipe.to(device)
    elif policy == Policy.model_cpu_offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        level = "block_level" if policy == Policy.group_offload_block else "leaf_level"
        streams = device.startswith("cuda")
        kw = dict(onload_device=torch.device(device), offload_device=torch.device("cpu"), offload_type=level,
                  use_stream=streams, num_blocks_per_group=1 if level == "block_level" else None)
        for name, comp in pipe.components.items():
            if not isinstance(comp, torch.nn.Module):
                continue
            if hasattr(comp, "enable_group_offload"):
                comp.enable_group_offload(**kw)
            else:  # transformers models: name where their blocks are, or each would be one big group
                heavy.diffusers().hooks.apply_group_offloading(comp, block_modules=TRANSFORMERS_BLOCK_MODULES.get(type(comp).__name__), **kw)
    if tiled:
        pipe.vae.enable_tiling()
    else:
        pipe.vae.disable_tiling()


def free_device_memory() -> None:
    gc.collect()
    torch = heavy.torch()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_with_fallback(start: Policy, run: Callable[[Policy], T], card: Card,
                      need: Callable[[Policy], int]) -> tuple[T, Policy, list[dict[str, str]]]:
    """Run at ``start``; on out-of-memory retry one rung down the ladder. Returns (result, policy, attempts)."""
    torch = heavy.torch()

    attempts: list[dict[str, str]] = []
    for policy in LADDER[LADDER.index(start):]:
        try:
            card.check(need(policy), policy.value)
            result = run(policy)
        except torch.OutOfMemoryError as exc:
            attempts.append({"policy": policy.value, "outcome": "out of memory", "detail": str(exc)[:300]})
            free_device_memory()
            continue
        attempts.append({"policy": policy.value, "outcome": "ok"})
        return result, policy, attempts
    raise OutOfMemoryOnEveryPolicy(attempts)
