"""The heavy libraries, imported on first use: one function each.

torch, diffusers, transformers, peft, MLflow and Great Expectations each take one to five seconds to import.
Modules that use them call these functions where they need the library (``torch = heavy.torch()``), so a
command loads only what it uses: ``wanflow --help`` and ``wanflow validate`` load none of them but Great
Expectations (validate runs the brief's suite). Each function also imports the submodules wanflow reaches
through attributes. Type hints name these libraries under ``TYPE_CHECKING`` only. Prefect is not here: only
``flows/`` imports it, and the CLI reaches the flows through :func:`cli.context.prefect_flows`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import ModuleType


def torch() -> ModuleType:
    import torch

    return torch


def diffusers() -> ModuleType:
    import diffusers
    import diffusers.hooks
    import diffusers.loaders
    import diffusers.utils.torch_utils  # noqa: F401 - reached as attributes of diffusers

    return diffusers


def transformers() -> ModuleType:
    import transformers
    import transformers.utils.logging  # noqa: F401 - reached as an attribute of transformers

    return transformers


def peft() -> ModuleType:
    import peft

    return peft


def accelerate() -> ModuleType:
    """accelerate (about a second): the training loop's Accelerator, and its gather of Python objects."""
    import accelerate
    import accelerate.utils  # noqa: F401 - reached as an attribute of accelerate

    return accelerate


def huggingface_hub() -> ModuleType:
    import huggingface_hub
    import huggingface_hub.constants  # noqa: F401 - reached as an attribute of huggingface_hub

    return huggingface_hub


def mlflow() -> ModuleType:
    import mlflow
    import mlflow.entities
    import mlflow.exceptions  # noqa: F401 - reached as attributes of mlflow

    return mlflow


def great_expectations() -> ModuleType:
    import great_expectations
    import great_expectations.data_context.types.base  # noqa: F401 - reached as an attribute

    # it announces every ephemeral context at INFO; its warnings and errors still show
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    return great_expectations


def s3fs() -> ModuleType:
    """s3fs with botocore (about a second to import): only an ``s3://`` destination needs it."""
    import botocore.exceptions  # noqa: F401 - s3fs's errors; reached as heavy.botocore_errors()
    import s3fs

    return s3fs


def botocore_errors() -> ModuleType:
    import botocore.exceptions

    return botocore.exceptions


def alembic() -> ModuleType:
    """Alembic (about half a second): loaded when the catalog is opened and brought to head."""
    import alembic.command
    import alembic.config
    import alembic.runtime.migration  # noqa: F401 - reached as attributes of alembic

    return alembic


def pandas() -> ModuleType:
    """pandas (about half a second): the expectation suites validate data frames."""
    import pandas

    return pandas


def scipy_ndimage() -> ModuleType:
    """scipy.ndimage (about half a second): the QC checks' window filters."""
    import scipy.ndimage

    return scipy.ndimage


def matplotlib() -> ModuleType:
    """matplotlib's object-oriented API on the Agg canvas (no pyplot, no display): the reports' plots."""
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401 - reached as attributes of matplotlib

    return matplotlib


def cv2() -> ModuleType:
    """OpenCV (about 0.2 s): the optical flow of the motion checks (DIS), and the remapping they predict with."""
    import cv2

    return cv2


def pypiqe():  # noqa: ANN201 - the piqe function
    """``pypiqe.piqe``: PIQE, the no-reference imaging-quality score (numpy and OpenCV; no weights)."""
    from pypiqe import piqe

    return piqe


def onnxruntime() -> ModuleType:
    """onnxruntime (about a quarter of a second): the on-screen text and nudity detectors run on it (CPU)."""
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)  # errors only: it warns about unused initialisers in the bundled models
    return onnxruntime


def nudenet() -> ModuleType:
    """NudeNet's module (its wheel bundles ``320n.onnx``); OpenCV comes with it."""
    import nudenet.nudenet

    return nudenet.nudenet


def rapidocr() -> ModuleType:
    """RapidOCR on onnxruntime (its wheel bundles the PP-OCRv4 detection and recognition models)."""
    import rapidocr_onnxruntime

    return rapidocr_onnxruntime


def imwatermark_dir() -> Path:
    """The folder of the installed ``invisible-watermark`` package (its wheel ships the rivaGan ONNX encoder and
    decoder), found without importing it (its ``__init__`` imports torch)."""
    import importlib.util

    spec = importlib.util.find_spec("imwatermark")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("invisible-watermark is not installed (pip install invisible-watermark==0.2.0)")
    return Path(list(spec.submodule_search_locations)[0])


def imwatermark_maxdct() -> type:
    """``imwatermark.maxDct.EmbedMaxDct``: the classical dwtDct watermark (PyWavelets + OpenCV, no weights)."""
    from imwatermark.maxDct import EmbedMaxDct

    return EmbedMaxDct


def imagehash() -> ModuleType:
    """ImageHash: perceptual hashes (pHash) of frames for the fingerprint."""
    import imagehash

    return imagehash


def pywt() -> ModuleType:
    """PyWavelets (the dwtDct watermark's transform)."""
    import pywt

    return pywt


def torchao_quantization() -> ModuleType:
    """torchao's quantization API (the turbo preset's FP8 linear layers); optional: ImportError when absent."""
    import torchao.quantization

    return torchao.quantization
