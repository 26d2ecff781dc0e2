"""Models for the semantic and visual-policy QC checks, loaded from local folders (never from a hub).

:class:`Models` is the :class:`governance.qc.ModelSource` the checks call; each kind has a transformers
implementation here, and anything with the same methods (:mod:`governance.qc.semantic` lists them)
plugs in (``Models(backends={"clip": my_scorer})``):

- ``clip``: a ``CLIPModel`` folder saved with ``save_pretrained``, with its tokenizer.
- ``aesthetic``: a LAION-style predictor: a state dict of linear layers applied in order
  (``.safetensors`` or ``.pth``), on normalised CLIP embeddings.
- ``subject``: a DINO/DINOv2 or CLIP folder.
- ``safety``: an image-classification folder (when set, it replaces NudeNet in ``unsafe_content``).
- ``nudity`` and ``ocr``: the detectors the install ships (:mod:`adapters.detectors`: NudeNet, RapidOCR),
  built in: no folder to set.

A model that is not configured, or fails to load, raises :class:`governance.qc.ModelUnavailable`, and its
checks are "not run" with the reason. Models are loaded once per process (per folder) and shared by every
thread.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from safetensors.numpy import load_file

from adapters.detectors import NudeNet, RapidOcr, judge_of
from core import heavy
from governance.qc import ModelUnavailable

KINDS = {"clip": "WANFLOW_CLIP_MODEL", "aesthetic": "WANFLOW_AESTHETIC_MODEL",
         "subject": "WANFLOW_SUBJECT_MODEL", "safety": "WANFLOW_SAFETY_MODEL"}
BUNDLED = {"nudity": NudeNet, "ocr": RapidOcr}  # shipped with the install: no folder
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
_cache: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _transformers() -> Any:
    """transformers, with its logging and progress bars quiet."""
    transformers = heavy.transformers()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


@dataclass(frozen=True)
class _Preprocess:
    """Resize the short side to ``size``, centre-crop ``size`` x ``size``, normalise."""

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def for_folder(cls, folder: Path, size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> _Preprocess:
        cfg_path = folder / "preprocessor_config.json"
        if cfg_path.is_file():
            cfg = json.loads(cfg_path.read_text())
            crop = cfg.get("crop_size") or cfg.get("size") or {}
            size = int(crop.get("height") or crop.get("shortest_edge") or size) if isinstance(crop, dict) else int(crop)
            mean, std = tuple(cfg.get("image_mean", mean)), tuple(cfg.get("image_std", std))
        return cls(size, mean, std)

    def __call__(self, images: list[np.ndarray]) -> Any:
        out = []
        for img in images:
            pil = Image.fromarray(img)
            f = self.size / min(pil.size)
            pil = pil.resize((max(self.size, round(pil.width * f)), max(self.size, round(pil.height * f))),
                             Image.Resampling.BICUBIC)
            x, y = (pil.width - self.size) // 2, (pil.height - self.size) // 2
            a = np.asarray(pil.crop((x, y, x + self.size, y + self.size)), dtype=np.float32) / 255.0
            out.append((a - np.array(self.mean, np.float32)) / np.array(self.std, np.float32))
        return heavy.torch().from_numpy(np.stack(out).transpose(0, 3, 1, 2).copy())


def _pooled(out: Any) -> Any:
    """transformers 4 returns a tensor from get_*_features, 5 a model output with pooler_output."""
    return out if hasattr(out, "shape") else out.pooler_output


class HFClip:
    """CLIP from a local folder: image and text features."""

    def __init__(self, folder: Path, device: str = "cpu") -> None:
        transformers = _transformers()
        self.model = transformers.CLIPModel.from_pretrained(folder, local_files_only=True).to(device).eval()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.device = device
        self.max_tokens = int(self.model.config.text_config.max_position_embeddings)
        self.pre = _Preprocess.for_folder(folder, int(self.model.config.vision_config.image_size), CLIP_MEAN, CLIP_STD)
        self.dim = int(self.model.config.projection_dim)

    def image_features(self, images: list[np.ndarray]) -> np.ndarray:
        with heavy.torch().inference_mode():
            f = _pooled(self.model.get_image_features(pixel_values=self.pre(images).to(self.device)))
        return _unit(f.float().cpu().numpy())

    def text_features(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        with heavy.torch().inference_mode():
            f = _pooled(self.model.get_text_features(**enc))
        return _unit(f.float().cpu().numpy())


class HFFeatures:
    """Image features for subject consistency: DINO/DINOv2 (CLS token) or CLIP (projected image features)."""

    def __init__(self, folder: Path, device: str = "cpu") -> None:
        transformers = _transformers()
        cfg = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
        self.device = device
        if cfg.model_type == "clip":
            self.clip: HFClip | None = HFClip(folder, device)
            return
        self.clip = None
        self.model = transformers.AutoModel.from_pretrained(folder, local_files_only=True).to(device).eval()
        size = getattr(cfg, "image_size", 224)
        self.pre = _Preprocess.for_folder(folder, int(size if isinstance(size, int) else size[0]),
                                          (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

    def features(self, images: list[np.ndarray]) -> np.ndarray:
        if self.clip is not None:
            return self.clip.image_features(images)
        with heavy.torch().inference_mode():
            out = self.model(pixel_values=self.pre(images).to(self.device))
        return _unit(out.last_hidden_state[:, 0].float().cpu().numpy())


class LinearStack:
    """A LAION-style aesthetic predictor: linear layers applied in order (no activations, as published)."""

    def __init__(self, folder: Path) -> None:
        files = sorted([*folder.glob("*.safetensors"), *folder.glob("*.pth"), *folder.glob("*.pt")])
        if not files:
            raise ModelUnavailable(f"no .safetensors/.pth weights in {folder}")
        if files[0].suffix == ".safetensors":
            state = load_file(str(files[0]))
        else:
            loaded = heavy.torch().load(files[0], map_location="cpu", weights_only=True)
            state = {k: v.float().numpy() for k, v in loaded.items()}
        prefixes = sorted({k.rsplit(".", 1)[0] if "." in k else "" for k in state if k.endswith("weight")},
                          key=lambda p: [int(n) for n in re.findall(r"\d+", p)])
        self.layers = [(state[f"{p}.weight" if p else "weight"], state.get(f"{p}.bias" if p else "bias"))
                       for p in prefixes]
        if not self.layers:
            raise ModelUnavailable(f"{files[0]}: no linear layers (keys ending in 'weight')")
        self.dim = int(self.layers[0][0].shape[1])
        self.source = files[0]

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        x = embeddings.astype(np.float32)
        for w, b in self.layers:
            x = x @ w.T + (b if b is not None else 0)
        return x[:, 0]


class HFSafety:
    """An image classifier whose labels name unsafe classes (e.g. 'nsfw')."""

    def __init__(self, folder: Path, device: str = "cpu") -> None:
        transformers = _transformers()
        self.model = transformers.AutoModelForImageClassification.from_pretrained(
            folder, local_files_only=True).to(device).eval()
        self.device = device
        cfg = self.model.config
        self.labels = [str(cfg.id2label[i]) for i in range(len(cfg.id2label))]
        size = getattr(cfg, "image_size", 224)
        self.pre = _Preprocess.for_folder(folder, int(size if isinstance(size, int) else size[0]),
                                          (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
        weights = sorted([*folder.glob("*.safetensors"), *folder.glob("*.bin")])
        self.judge = judge_of("transformers", weights) | {"detector": "image classifier (transformers)",
                                                          "folder": str(folder)}

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        torch = heavy.torch()
        with torch.inference_mode():
            logits = self.model(pixel_values=self.pre(images).to(self.device)).logits
        return torch.softmax(logits.float(), dim=-1).cpu().numpy()


_BUILDERS = {"clip": HFClip, "subject": HFFeatures, "safety": HFSafety}


class Models:
    """The configured model folders; each model is loaded on first use, once per process."""

    def __init__(self, folders: dict[str, Path | None] | None = None, device: str = "cpu",
                 backends: dict[str, Any] | None = None) -> None:
        self.folders = {k: (Path(v) if v else None) for k, v in (folders or {}).items()}
        self.device = device
        self.backends = dict(backends or {})

    @classmethod
    def from_settings(cls, settings: Any) -> Models:
        return cls({k: getattr(settings, f"{k}_model") for k in KINDS}, getattr(settings, "qc_device", "cpu"))

    def configured(self, kind: str) -> bool:
        """Whether a backend or a folder is set for ``kind`` (the bundled detectors need neither)."""
        return kind in self.backends or kind in BUNDLED or self.folders.get(kind) is not None

    def get(self, kind: str) -> Any:
        """The backend for ``kind``; raises ModelUnavailable with the reason."""
        if kind in self.backends:
            return self.backends[kind]
        if kind in BUNDLED:
            return self._load((kind, "bundled"), kind, None)
        folder = self.folders.get(kind)
        if folder is None:
            raise ModelUnavailable(f"no {kind} model configured (set {KINDS[kind]} to a local model folder)")
        return self._load((kind, str(folder.resolve())), kind, folder)

    def _load(self, key: tuple[str, str], kind: str, folder: Path | None) -> Any:
        with _lock:
            if key not in _cache:
                try:
                    if folder is None:
                        _cache[key] = BUNDLED[kind]()
                    elif not folder.is_dir():
                        raise ModelUnavailable(f"{kind} model folder {folder} does not exist")
                    else:
                        _cache[key] = (LinearStack(folder) if kind == "aesthetic"
                                       else _BUILDERS[kind](folder, self.device))
                except ModelUnavailable as exc:
                    _cache[key] = exc
                except Exception as exc:  # noqa: BLE001 — any load failure is a reason, recorded per check
                    where = f"from {folder}" if folder else "(bundled with the install)"
                    _cache[key] = ModelUnavailable(f"could not load the {kind} model {where}: "
                                                   f"{type(exc).__name__}: {exc}")
            got = _cache[key]
        if isinstance(got, ModelUnavailable):
            raise ModelUnavailable(str(got))
        return got
