"""What every `wanflow` command group shares: the consoles, the settings, the catalog, error handling and exit
codes, a brand's profile, and the two imports that wait for a command (the Prefect flows, the dashboard).

Exit codes: 0 success, 2 invalid input (every problem listed as `file:row:field: message`), 1 runtime failure.
Commands wrap themselves in :func:`guard`, which maps the known errors to those codes.

The project's modules are imported at the top of each command module. Two imports wait for the command that
needs them: Prefect, through :func:`prefect_flows`, in the commands that run a flow, and the web stack (FastAPI,
uvicorn, the review dashboard), through :func:`serve_dashboard`, in `review serve`. The heavy libraries of the
commands that generate or check video (torch, diffusers, MLflow, …) load on first use through :mod:`core.heavy`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from types import ModuleType

import typer
from rich.console import Console
from sqlalchemy import Engine

from adapters.provenance import ProvenanceError
from catalog.db import open_catalog
from core.settings import Settings
from governance.brand import BrandInvalid, BrandNotFound, BrandProfile, load_brand_ref
from governance.brief_schema import BriefInvalid
from governance.model_refs import ModelRefError
from governance.renditions import PresetInvalid
from wan_tasks.accounts import AccountError
from wan_tasks.review import ReviewError

console = Console()
err = Console(stderr=True, soft_wrap=True)


class InputError(Exception):
    """Bad input from the user: exit 2 with the listed problems."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@functools.cache
def settings() -> Settings:
    """The settings, read from the environment once per command (:func:`guard` starts each command afresh)."""
    return Settings()


def catalog() -> Engine:
    """The catalog database of the settings, its schema brought to head on first open."""
    return open_catalog(settings().catalog_db_url)


def fail(code: int, lines: list[str]) -> None:
    """Print ``lines`` on stderr and exit with ``code``."""
    for line in lines:
        err.print(line, markup=False, highlight=False)
    raise typer.Exit(code)


def guard(fn):
    """Turn known errors into clear messages and exit codes; never a traceback unless WANFLOW_DEBUG=1.

    Each command reads the settings afresh, so that one process can run several commands with different
    environments (tests invoke the app in-process)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        settings.cache_clear()
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except BriefInvalid as e:
            fail(2, [str(p) for p in e.problems] + [f"{len(e.problems)} problem(s); nothing was written."])
        except InputError as e:
            fail(2, e.problems)
        except PresetInvalid as e:
            fail(2, [str(p) for p in e.problems])
        except (ProvenanceError, ModelRefError, ReviewError, AccountError, LookupError) as e:
            fail(2, [f"error: {e}"])
        except Exception as e:  # noqa: BLE001
            if os.environ.get("WANFLOW_DEBUG") == "1":
                raise
            fail(1, [f"error: {type(e).__name__}: {e}", "(set WANFLOW_DEBUG=1 for the traceback)"])

    return wrapper


def brand_profile(ref: str, brands_dir: Path | None) -> BrandProfile:
    """A brand's profile by name (in ``brands_dir``, WANFLOW_BRANDS_DIR or ./brands) or profile file; exit 2 if
    it is missing or invalid."""
    folder = brands_dir or settings().brands_dir or Path("brands")
    try:
        return load_brand_ref(ref, folder)
    except BrandNotFound as e:
        raise InputError([f"error: {e} (use --brands-dir, WANFLOW_BRANDS_DIR, or a profile file path)"]) from e
    except BrandInvalid as e:
        raise InputError([f"{e.path}:0:{e.key or 'file'}: {e.message}"]) from e


def prefect_flows() -> ModuleType:
    """The :mod:`flows` package with every flow the commands run loaded: the CLI's one deferred import of Prefect
    (about a second), made only by the commands that run a flow or emit a Prefect event.

    Prefect's INFO logs would scroll over the Rich progress bar; its warnings and errors still show."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    import flows.campaign
    import flows.events
    import flows.personalize
    import flows.progress
    import flows.publish
    import flows.revisions
    import flows.rollout
    import flows.shard

    return flows


def serve_dashboard(cfg: Settings, host: str, port: int, workers: int = 1) -> None:
    """Serve the review dashboard for ``cfg`` (FastAPI, run by uvicorn) until interrupted: the CLI's one deferred
    import of the web stack (over a second), made only by `review serve`.

    ``workers`` > 1: that many uvicorn worker processes share the port; each builds its app from the same
    environment (``WANFLOW_*``, .env) that ``cfg`` was read from."""
    import uvicorn

    if workers > 1:
        uvicorn.run("dashboard.app:app_from_environment", factory=True, workers=workers, host=host, port=port,
                    log_level="warning")
        return
    from dashboard import create_app

    uvicorn.run(create_app(cfg), host=host, port=port, log_level="warning")
