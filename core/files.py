"""File helpers: one way to write a file (or a folder) atomically, one way to hash a file.

A writer gets a temporary name beside its destination and the result is renamed into place only when it is
complete, so a reader (or a kill -9) never sees half a file. Temporary names are hidden and carry
:data:`TEMP_MARK` (``.<name>.<uuid>.tmp<suffix>``), so what a killed writer left behind can be recognised.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

TEMP_MARK = ".tmp"


def temp_path_for(dest: Path) -> Path:
    """A fresh hidden temporary name beside ``dest``, ending in its suffix (encoders pick the format from it)."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex}{TEMP_MARK}{dest.suffix}")


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
