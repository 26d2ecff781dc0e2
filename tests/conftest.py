"""Shared fixtures: a throwaway wanflow home, the catalog on SQLite and on PostgreSQL, a Prefect test API.

PostgreSQL: this machine serves it at 127.0.0.1:5432 (user postgres, trust auth). Each test gets a
fresh database created from the `test` maintenance database and dropped afterwards. Outside CI a
test may skip, visibly, when PostgreSQL is unreachable; in CI (CI=true) that is a failure.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest

# Nothing a test does may touch a developer's own ./.wanflow: every test process gets its own home.
os.environ["WANFLOW_HOME"] = tempfile.mkdtemp(prefix="wanflow-test-home-")
import flows  # noqa: E402, F401 — creates the Prefect home

PG_ADMIN = os.environ.get("WANFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# One small campaign that publishes fast (2 clips x 2 renditions + poster + preview), for the tests that kill
# `wanflow run` / `wanflow publish` processes (tests/test_publish_manifest.py, tests/test_temp_files.py).
SMALL_PRESETS = """video:
  - {name: square-small, aspect: "1:1", width: 128, height: 128, fps: 24, x264_preset: veryfast}
  - {name: square-tiny, aspect: "1:1", width: 64, height: 64, fps: 30, x264_preset: veryfast}
preview: {width: 64, fps: 8, seconds: 1}
"""
SMALL_DELIVERABLES = {f"shoe-v{v}-{name}" for v in (0, 1)
                      for name in ("square-small.mp4", "square-tiny.mp4", "poster.jpg", "preview.webp")}


def small_brief(campaign: str) -> str:
    """The small campaign's brief (the example brand, the bootstrapped model), under ``campaign``."""
    return f"""campaign: {campaign}
brand: acme
model: wan-t2v@champion
defaults: {{num_frames: 5, width: 32, height: 32, variants: 2, formats: ["1:1"], steps: 2, seed: 5}}
items:
  - id: shoe
    prompt: "A red sneaker on a white floor"
"""


def write_brief(folder: Path, brief: str, presets: str | None = None) -> Path:
    """``brief`` at folder/brief.yaml beside a copy of the example brand (and ``presets`` at folder/presets.yaml)."""
    (folder / "brands").mkdir(exist_ok=True)
    (folder / "brands" / "acme.yaml").write_text((EXAMPLES / "brands" / "acme.yaml").read_text("utf-8"), "utf-8")
    if presets is not None:
        (folder / "presets.yaml").write_text(presets, "utf-8")
    (folder / "brief.yaml").write_text(brief, "utf-8")
    return folder / "brief.yaml"


@pytest.fixture
def one_thread():
    """torch on one thread for the test (the small training runs are steadier and no slower that way)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def prefect_api():
    """One throwaway Prefect API for the whole session (a real server on a temporary database)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _postgres_url() -> str:
    import psycopg

    name = f"wanflow_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as e:
        if os.environ.get("CI"):
            raise RuntimeError(f"PostgreSQL unreachable at {PG_ADMIN} and CI is set: {e}") from e
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN}: {e}")
    return f"postgresql+psycopg://{PG_ADMIN.split('://', 1)[1].rsplit('/', 1)[0]}/{name}"


def _drop_postgres(url: str) -> None:
    import psycopg

    from catalog.db import dispose

    dispose(url)
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
        yield url
        from catalog.db import dispose

        dispose(url)
    else:
        url = _postgres_url()
        yield url
        _drop_postgres(url)


@pytest.fixture(scope="session")
def dev_ca(tmp_path_factory):
    """A development CA and C2PA signer, made locally once per session (publishing signs every file)."""
    from adapters.provenance import make_dev_ca

    return make_dev_ca(tmp_path_factory.mktemp("dev-ca"))


@pytest.fixture
def settings(tmp_path, catalog_url, dev_ca):
    from core.settings import Settings

    return Settings(home=tmp_path / "home", catalog_url=catalog_url, c2pa_key=dev_ca.key,
                    c2pa_cert_chain=dev_ca.cert_chain, c2pa_trust_anchors=dev_ca.cert_chain.parent / "dev-root-ca.pem",
                    publish_retry_delay_s=0.1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The wan-tiny stand-in, built once per test session (seeded random weights, no download)."""
    from adapters.standins import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "wan-tiny")


@pytest.fixture(scope="session")
def tiny_i2v_model(tmp_path_factory) -> Path:
    """The wan-tiny-i2v stand-in (WanImageToVideoPipeline, tiny CLIP vision encoder), built once per session."""
    from adapters.standins import build_tiny_i2v_model

    return build_tiny_i2v_model(tmp_path_factory.mktemp("models") / "wan-tiny-i2v")


@pytest.fixture(scope="session")
def tiny_vace_model(tmp_path_factory) -> Path:
    """The wan-tiny-vace stand-in (a tiny WanVACEPipeline, seeded random weights), built once per session."""
    from adapters.standins import build_tiny_vace_model

    return build_tiny_vace_model(tmp_path_factory.mktemp("models") / "wan-tiny-vace")


@pytest.fixture(scope="session")
def tiny_lora(tmp_path_factory, tiny_model) -> Path:
    """A brand LoRA made locally with peft on wan-tiny's transformer (random, so it visibly changes clips)."""
    from adapters.standins import build_tiny_lora

    return build_tiny_lora(tiny_model, tmp_path_factory.mktemp("loras") / "acme-style")


@pytest.fixture
def still_image(tmp_path) -> Path:
    """A real PNG conditioning image (a red square on white), larger than and not shaped like the clips."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (120, 90), "white")
    ImageDraw.Draw(im).rectangle((30, 20, 90, 70), fill=(200, 20, 30))
    path = tmp_path / "product.png"
    im.save(path)
    return path
