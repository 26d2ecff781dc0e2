"""The heavy libraries, imported on first use: one function each.

torch, diffusers, transformers, MLflow and Great Expectations each take one to two and a half seconds to
import. Modules that use them call these functions where they need the library, so that a command loads
only what it uses (``wanflow --help`` and ``wanflow validate`` load none of torch, diffusers or MLflow).
Type hints name them under ``TYPE_CHECKING`` only. Prefect is not here: only ``flows/`` imports it, and
the CLI reaches the flows through :func:`cli.context.prefect_flows`.
"""

from __future__ import annotations

from types import ModuleType


def torch() -> ModuleType:
    import torch

    return torch


def diffusers() -> ModuleType:
    import diffusers

    return diffusers


def transformers() -> ModuleType:
    import transformers

    return transformers


def mlflow() -> ModuleType:
    import mlflow

    return mlflow


def great_expectations() -> ModuleType:
    import great_expectations

    return great_expectations
