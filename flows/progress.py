"""Progress of long work: a Rich progress display in the CLI and a Prefect progress artifact in a flow run.

Flows call `start(...)`, then feed the per-step callback of each batch (`bar.for_batch(n)`) and call
`bar.done(n)` after it; this module forwards to the Rich display the CLI installed (if any) and, inside a
flow run, to a Prefect progress artifact (updated at most every ``ARTIFACT_EVERY_S`` seconds, and at the end).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import FlowRunContext

_display: Any = None  # a rich.progress.Progress, or None
ARTIFACT_EVERY_S = 2.0
log = logging.getLogger(__name__)


def install(display: Any) -> None:
    global _display
    _display = display


@dataclass
class Bar:
    task_id: Any = None
    total: int = 0
    completed: float = field(default=0.0)
    finished: int = 0
    artifact_id: Any = None
    _last_push: float = 0.0

    def _show(self, completed: float, force: bool = False) -> None:
        self.completed = completed
        if _display is not None and self.task_id is not None:
            _display.update(self.task_id, completed=completed)
        now = time.monotonic()
        if self.artifact_id is not None and (force or now - self._last_push >= ARTIFACT_EVERY_S):
            self._last_push = now
            _push(self.artifact_id, 100.0 * completed / max(self.total, 1))

    def for_batch(self, n: int) -> Callable[[int, int], None]:
        """The per-step callback of a batch of ``n`` clips: each step moves the bar by n/steps clips."""
        base = self.finished

        def step(i: int, steps: int) -> None:
            self._show(base + n * i / max(steps, 1))

        return step

    def step(self, step: int, steps: int) -> None:
        """Per-step callback when clips are made one at a time."""
        self._show(self.finished + step / max(steps, 1))

    def done(self, n: int = 1) -> None:
        self.finished += n
        self._show(float(self.finished), force=True)

    def done_one(self) -> None:
        self.done(1)


def _push(artifact_id: Any, percent: float) -> None:
    try:
        update_progress_artifact(artifact_id, progress=min(100.0, percent))
    except Exception as exc:  # noqa: BLE001 - progress must never fail a generation
        log.debug("progress artifact update failed: %s", exc)


def _artifact(name: str, total: int) -> Any:
    if FlowRunContext.get() is None:
        return None
    try:
        return create_progress_artifact(progress=0.0, description=f"{name}: {total} clip(s)")
    except Exception as exc:  # noqa: BLE001
        log.debug("progress artifact not created: %s", exc)
        return None


def start(name: str, total: int) -> Bar:
    task_id = _display.add_task(name, total=total) if _display is not None else None
    return Bar(task_id=task_id, total=total, artifact_id=_artifact(name, total))


def stop(bar: Bar) -> None:
    bar._show(float(bar.total), force=True)
