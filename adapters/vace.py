"""Running one edit with a loaded pipeline, shaped like the batch engine (:mod:`adapters.engine`):

1. check inputs → 2. load the source, mask and references (each against its recorded sha256) → 3. lay the
source out on the output clip and build the conditioning (video + mask) → 4. scheduler shift → 5. run the
pipeline (``WanVACEPipeline`` for reframe/extend/replace/remove/reference, ``WanVideoToVideoPipeline`` over the
T2V model's components for restyle) → 6. paste the source back outside the region → 7. uint8 frames.

Step 6 is what keeps an edit's promise whatever the model does (a stand-in's random weights preserve nothing):
outside the region the output *is* the source, optionally with a feather of a few pixels *inside* the
generated area. Where the edit's region comes from is :mod:`governance.edits`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from adapters.edit_media import read_image, read_mask, read_video
from adapters.engine import MAX_SEQUENCE_LENGTH, BatchResult, GenerationParams, Lora, OnStep, PeakMemory, set_flow_shift
from core import heavy
from core.files import sha256_file
from governance.edits import VACE_OPS, Geometry, feathered, keep_mask

GRAY = 0.5  # what VACE's own preprocessing puts where a frame is to be generated (127 of 255)


class EditInputChanged(ValueError):
    """A source, mask or reference no longer has the bytes it had when the edit was planned."""


def _checked(ref: dict[str, Any], what: str) -> Path:
    path = Path(ref["path"])
    if not path.is_file() or sha256_file(path) != ref["sha256"]:
        raise EditInputChanged(f"{what}: {path} is missing or changed since the edit was planned "
                               f"(expected sha256 {ref['sha256'][:12]}…)")
    return path


def load_inputs(edit: dict[str, Any]) -> dict[str, Any]:
    """The edit's media, each checked against the sha256 recorded when it was planned."""
    geo = Geometry(**edit["geometry"])
    out: dict[str, Any] = {"geometry": geo, "source": None, "mask": None, "references": []}
    if edit.get("source"):
        frames, _ = read_video(_checked(edit["source"], "edit.source"))
        out["source"] = frames[:geo.frames_used]
    if edit.get("mask"):
        src = edit["source"]
        out["mask"] = read_mask(_checked(edit["mask"], "edit.mask"), src["width"], src["height"], geo.frames_used)
    out["references"] = [read_image(_checked(r, "edit.references")) for r in edit.get("references") or []]
    return out


def layout(edit: dict[str, Any], inputs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The source laid out on the output clip (uint8 T,H,W,3; gray where nothing is kept) and where it is kept."""
    geo, src = inputs["geometry"], inputs["source"]
    keep = keep_mask(edit, geo, inputs["mask"])
    laid = np.full((geo.num_frames, geo.height, geo.width, 3), 127, dtype=np.uint8)
    op = edit["op"]
    if op == "reframe":
        laid[:, geo.y:geo.y + src.shape[1], geo.x:geo.x + src.shape[2]] = src
    elif op == "extend":
        at = 0 if edit["direction"] == "forward" else geo.num_frames - geo.frames_used
        laid[at:at + geo.frames_used] = src
    else:
        laid[:] = src
    laid[~keep] = 127
    return laid, keep


def _pil(frames: np.ndarray) -> list[Image.Image]:
    return [Image.fromarray(f) for f in frames]


def _masks(gen: np.ndarray) -> list[Image.Image]:
    return [Image.fromarray(np.where(m, 255, 0).astype(np.uint8), mode="L") for m in gen]


def video_to_video(pipe: Any) -> Any:
    """A T2V ``WanPipeline`` as ``WanVideoToVideoPipeline`` (``from_pipe``: the same components, no copy), cached."""
    view = getattr(pipe, "_wanflow_v2v", None)
    if view is None:
        view = heavy.diffusers().WanVideoToVideoPipeline.from_pipe(pipe)
        view.set_progress_bar_config(disable=True)
        pipe._wanflow_v2v = view  # noqa: SLF001 - one view per loaded pipeline
    return view


def check_edit(pipe: Any, params: list[GenerationParams]) -> dict[str, Any]:
    if len(params) != 1:
        raise ValueError(f"params: an edit runs alone (batch of 1), got {len(params)}")
    edit = params[0].edit
    if not edit:
        raise ValueError("edit: the request carries no edit")
    name = type(pipe).__name__
    if edit["op"] in VACE_OPS and name != "WanVACEPipeline":
        raise ValueError(f"edit.op: {edit['op']} needs a VACE model (WanVACEPipeline), got {name}")
    if edit["op"] == "restyle" and name != "WanPipeline":
        raise ValueError(f"edit.op: restyle runs video-to-video on a T2V model (WanPipeline), got {name}")
    return edit


def run_edit(pipe: Any, params: list[GenerationParams], on_step: OnStep | None = None,
             lora: Lora | None = None) -> BatchResult:
    """One edit; returns the output frames (uint8) with the source pasted back, and the stage timings."""
    torch = heavy.torch()
    # 1. check inputs
    edit = check_edit(pipe, params)
    p = params[0]
    if lora is not None:
        raise ValueError("lora: brand LoRAs are not applied to edits yet")
    op = edit["op"]
    t0 = time.perf_counter()
    # 2. the source, mask and references, as planned
    inputs = load_inputs(edit)
    geo: Geometry = inputs["geometry"]
    # 3. the conditioning: the source laid out on the output, gray where the model generates
    laid, keep = (layout(edit, inputs) if inputs["source"] is not None else (None, None))
    lo, hi = (geo.offset, geo.offset + geo.window) if op == "extend" else (0, geo.num_frames)
    run = pipe if op != "restyle" else video_to_video(pipe)
    device = str(run._execution_device)
    # 4. scheduler: the preset's flow shift
    set_flow_shift(run, p.flow_shift)
    common = dict(prompt=p.prompt, negative_prompt=p.negative_prompt, height=geo.height, width=geo.width,
                  num_inference_steps=p.steps, guidance_scale=p.guidance, output_type="np",
                  generator=torch.Generator(device="cpu").manual_seed(p.seed), max_sequence_length=MAX_SEQUENCE_LENGTH,
                  callback_on_step_end=(lambda _pipe, step, _t, kw: (on_step and on_step(step + 1, p.steps)) or kw))
    if op == "restyle":
        extra = {"video": _pil(laid), "strength": float(edit["strength"])}
    else:
        extra = {"num_frames": hi - lo, "conditioning_scale": float(edit.get("conditioning_scale", 1.0))}
        if laid is not None:
            extra |= {"video": _pil(laid[lo:hi]), "mask": _masks(~keep[lo:hi])}
        if inputs["references"]:
            extra["reference_images"] = inputs["references"]
    # 5. the pipeline
    with PeakMemory(device) as peak, torch.no_grad():
        t1 = time.perf_counter()
        generated = np.asarray(run(**common, **extra).frames[0], dtype=np.float32)
        t2 = time.perf_counter()
    # 6. paste the source back outside the region (feathered inside the generated area, if asked)
    if laid is None or op == "restyle":
        out = generated
    else:
        alpha = feathered(keep[lo:hi], int(edit.get("feather", 0)))[..., None]
        window = alpha * (laid[lo:hi].astype(np.float32) / 255.0) + (1.0 - alpha) * generated
        out = laid.astype(np.float32) / 255.0
        out[lo:hi] = window
        exact = keep.copy()
        exact[lo:hi] &= alpha[..., 0] >= 1.0
    # 7. uint8 frames; where the source is kept, its own bytes (no float round trip)
    frames = (np.clip(out, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if laid is not None and op != "restyle":
        frames[exact] = laid[exact]
    t3 = time.perf_counter()
    timings = {"text_encode_s": 0.0, "denoise_s": round(t2 - t1, 4), "decode_s": 0.0, "prepare_s": round(t1 - t0, 4),
               "composite_s": round(t3 - t2, 4), "generate_s": t3 - t0}
    details = {"batch_size": 1, "device": device, "dtype": str(run.transformer.dtype),
               "edit": {"op": op, "pipeline": type(run).__name__, "generated_frames": [lo, hi],
                        "references": len(inputs["references"]), "kept_pixels": int(keep.sum()) if keep is not None else 0}}
    return BatchResult(frames=[frames], timings=timings, peak_memory_bytes=peak.bytes, peak_memory_kind=peak.kind,
                       details=details)
