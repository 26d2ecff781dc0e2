"""Which process this is, and whether a process recorded earlier still runs: a process is known by its host, its
pid and its start time, so a pid the OS has since given to another process is never taken for the one recorded."""

from __future__ import annotations

import os
import socket

import psutil


def this_host() -> str:
    return socket.gethostname()


def this_process() -> tuple[str, int, float]:
    """(host, pid, start time as seconds since the epoch) of the running process."""
    pid = os.getpid()
    return this_host(), pid, psutil.Process(pid).create_time()


def process_alive(pid: int | None, started: float | None) -> bool:
    """True if process `pid` of this host runs, started at `started` (within a second), and is no zombie."""
    if not pid:
        return False
    try:
        p = psutil.Process(pid)
        return abs(p.create_time() - (started or 0)) < 1.0 and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
