"""The first-use bootstrap (`wan-t2v@champion` = the wan-tiny stand-in) converges from every state a kill can
leave: alias missing, a registered model without versions, a version without its tags (with or without the
alias), a half-written stand-in folder — each built for real with MLflow's client on the sqlite store — and a
real `wanflow run` killed (SIGKILL to its process group) during its first bootstrap."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from test_cli import GOOD, ROOT, WANFLOW, write

from adapters.registry import REQUIRED_TAGS, Registry
from adapters.standins import TINY_VARIANT

NAME = "wan-t2v"


@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "models")


@pytest.fixture
def standin(registry, tiny_model) -> Path:
    """The stand-in folder as a finished bootstrap leaves it (same seed, so the same weights)."""
    return Path(shutil.copytree(tiny_model, registry.models_dir / TINY_VARIANT))


def assert_converged(registry: Registry) -> None:
    rows = registry.versions(NAME)
    assert [r["version"] for r in rows] == [rows[0]["version"]], rows  # exactly one version
    assert registry.aliases(NAME) == {"champion": rows[0]["version"]}
    assert set(REQUIRED_TAGS) <= set(rows[0]["tags"]), rows[0]["tags"]
    assert rows[0]["tags"]["variant"] == TINY_VARIANT and rows[0]["tags"]["stand_in"] == "true"
    assert registry.file_digests(NAME, rows[0]["version"])  # the per-file digests too
    assert registry.resolve(f"{NAME}@champion").variant == TINY_VARIANT
    assert registry.variant_of(f"{NAME}@champion") == TINY_VARIANT


def bootstrap_twice(registry: Registry) -> None:
    assert registry.variant_of(f"{NAME}@champion") == TINY_VARIANT  # validation accepts the brief meanwhile
    registry.ensure_bootstrap(NAME)
    assert_converged(registry)
    registry.ensure_bootstrap(NAME)  # idempotent
    assert_converged(registry)


def test_killed_between_version_and_alias(registry, standin):
    registry.register(NAME, standin, TINY_VARIANT, stand_in=True)
    assert registry.aliases(NAME) == {}
    bootstrap_twice(registry)


def test_killed_after_the_registered_model_before_its_version(registry, standin):
    registry.client.create_registered_model(NAME)
    bootstrap_twice(registry)


@pytest.mark.parametrize("alias", [False, True])
def test_killed_before_the_version_had_its_tags(registry, standin, alias):
    registry.client.create_registered_model(NAME)
    mv = registry.client.create_model_version(NAME, source=str(standin.resolve()))
    registry.client.set_model_version_tag(NAME, mv.version, "variant", TINY_VARIANT)  # some tags, not all
    if alias:
        registry.client.set_registered_model_alias(NAME, "champion", mv.version)
    bootstrap_twice(registry)
    assert registry.versions(NAME)[0]["version"] == int(mv.version)  # completed, not registered again


def test_killed_while_the_standin_folder_was_written(registry, tiny_model):
    """atomic_path writes the folder under a hidden temporary name: a kill leaves that, never a partial folder."""
    partial = registry.models_dir / f".{TINY_VARIANT}.{uuid.uuid4().hex}.tmp"
    shutil.copytree(tiny_model / "transformer", partial / "transformer")
    bootstrap_twice(registry)
    assert (registry.models_dir / TINY_VARIANT / "model_index.json").exists()


def test_a_store_with_its_own_versions_is_left_alone(registry, standin, tiny_model):
    """Someone registered a model of their own and has not chosen a champion yet: no stand-in is forced on them."""
    registry.register(NAME, standin, "wan2.1-t2v-1.3b", stand_in=True)
    registry.ensure_bootstrap(NAME)
    assert registry.aliases(NAME) == {} and len(registry.versions(NAME)) == 1
    assert registry.variant_of(f"{NAME}@champion") is None


def _env(home: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "WANFLOW_"))}
    return environ | {"WANFLOW_HOME": str(home), "COLUMNS": "200"}


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 240) -> bool:
    """SIGKILL `proc`'s process group as soon as `ready()` holds; False if it finished or timed out first."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if ready():
                os.killpg(proc.pid, signal.SIGKILL)
                return True
            time.sleep(0.02)
        return False
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def test_a_run_killed_during_its_first_bootstrap_does_not_block_the_next(tmp_path):
    brief, home = write(tmp_path, GOOD), tmp_path / "home"
    models = home / "models"

    def building() -> bool:  # the stand-in is being written, or has just been
        return models.exists() and any(models.iterdir())

    proc = subprocess.Popen([*WANFLOW, "run", str(brief)], cwd=ROOT, env=_env(home), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _kill_when(proc, building), "the run finished before its bootstrap could be killed"
    done = subprocess.run([*WANFLOW, "run", str(brief)], cwd=ROOT, env=_env(home), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_converged(Registry(f"sqlite:///{home / 'mlflow.db'}", models))
