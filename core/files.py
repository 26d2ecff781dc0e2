"""File helpers: one way to write a file (or a folder) atomically, one way to hash a file.

A writer gets a temporary name beside its destination and the result is renamed into place only when it is
complete, so a reader (or a kill -9) never sees half a file. Every temporary file the product writes is named by
:func:`temp_path_for` (hidden, ``.<name>.<token>.tmp<suffix>``, the token a fresh uuid or a claim's token), so
what a killed writer left behind is recognised by :func:`is_temp` and removed by :func:`sweep_temps` once it is
older than a grace period (a writer still running elsewhere is never hurt).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

TEMP_MARK = ".tmp"
# .<name>.<32 hex: uuid or claim token>.tmp<suffix of up to two short parts>; the name may itself be a temp name
_TOKEN = r"\.([0-9a-f]{32})" + re.escape(TEMP_MARK)
_TEMP_NAME = re.compile(r"\..+" + _TOKEN + r"(?:\.[A-Za-z0-9]{1,8}){0,2}")


def temp_path_for(dest: Path, suffix: str | None = None, token: str | None = None) -> Path:
    """A fresh hidden temporary name beside ``dest``, ending in its suffix (encoders pick the format from it) or
    in ``suffix``. ``token`` (32 hex digits, a claim's token) replaces the fresh uuid, so that a sweep can tell
    the temporary file of a live claim."""
    dest = Path(dest)
    token = token or uuid.uuid4().hex
    if not re.fullmatch(r"[0-9a-f]{32}", token):
        raise ValueError(f"temporary file token must be 32 hex digits, got {token!r}")
    return dest.with_name(f".{dest.name}.{token}{TEMP_MARK}{dest.suffix if suffix is None else suffix}")


def temp_token(path: Path) -> str | None:
    """The token of a temporary name made by :func:`temp_path_for`; None for any other name."""
    m = _TEMP_NAME.fullmatch(Path(path).name)
    return m[1] if m else None


def is_temp(path: Path) -> bool:
    """True if ``path`` is named as :func:`temp_path_for` names temporary files."""
    return temp_token(path) is not None


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest`` (its folder is created). When the block succeeds, the file
    written there is fsynced and renamed onto ``dest`` (a folder is renamed as it is); on any error it is
    removed and ``dest`` is left as it was."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(dest)
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, dest)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows
        fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass
class Sweep:
    """What :func:`sweep_temps` removed (and how many bytes), and the temporary files it left because they were
    younger than the grace period or belonged to a live claim."""

    removed: list[Path] = field(default_factory=list)
    bytes: int = 0
    kept: list[Path] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"{len(self.removed)} temporary files removed ({self.bytes} bytes), "
                f"{len(self.kept)} kept (younger than the grace period or of a live claim)")


def _newest_and_size(path: Path) -> tuple[float, int]:
    """(newest mtime, total bytes) of a file, or of a folder and everything in it (links are not followed)."""
    st = path.lstat()
    if not path.is_dir() or path.is_symlink():
        return st.st_mtime, st.st_size
    newest, size = st.st_mtime, 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                s = Path(root, name).lstat()
                newest, size = max(newest, s.st_mtime), size + (s.st_size if name in files else 0)
    return newest, size


def sweep_temps(roots: Iterable[Path], grace_s: float, live: Callable[[str], bool] = lambda token: False,
                now: float | None = None) -> Sweep:
    """Remove the temporary files and folders (:func:`is_temp`) under ``roots`` that nothing has written for
    ``grace_s`` seconds and none of whose tokens is ``live`` (a claim still held: a temporary file of a temporary
    file, such as an encode of a claim's staged clip, carries both tokens). Anything else is never touched;
    links are not followed; a temporary file that disappears meanwhile (its writer renamed it) is skipped."""
    now = time.time() if now is None else now
    out = Sweep()
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            for name in [*files, *dirs]:
                path = Path(dirpath, name)
                if not is_temp(path):
                    continue
                if name in dirs:
                    dirs.remove(name)  # a temporary folder is removed (or kept) whole, never entered
                try:
                    newest, size = _newest_and_size(path)
                    if now - newest < grace_s or any(map(live, re.findall(_TOKEN, name))):
                        out.kept.append(path)
                        continue
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
                except FileNotFoundError:
                    continue
                out.removed.append(path)
                out.bytes += size
    return out


_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|\s]+')  # separators, control and shell/Windows-reserved characters


def safe_file_name(name: str) -> str:
    """``name`` as one file or folder name, readable in its own script: Unicode NFC, each run of whitespace
    (full-width spaces too), path separators, control characters and ``:*?"<>|`` made one ``_``, no leading
    dot. ``春の新作 2027`` → ``春の新作_2027``; ``桜　並木`` → ``桜_並木``; ``hero-shot`` stays ``hero-shot``."""
    safe = _UNSAFE.sub("_", unicodedata.normalize("NFC", name)).lstrip(".")
    return safe or "_"


def ascii_key(name: str) -> str:
    """``name`` for a system that takes only ``[a-z0-9-]`` (Prefect's artifact keys): ASCII names as they are
    (lower-cased), other names as their ASCII letters plus a short hash, so two Japanese names never collide."""
    plain = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if plain == name.lower():
        return plain
    digest = hashlib.sha256(unicodedata.normalize("NFC", name).encode()).hexdigest()[:10]
    return f"{plain[:40]}-{digest}".lstrip("-")
