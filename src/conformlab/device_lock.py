"""One run per device on a host: a lock file per device origin, held while a run talks to it.

Two runs against one device would each spend its rate budget and change its state behind the
other's back. The lock is an advisory `flock` on ~/.conformlab/locks/<origin>.lock: the kernel
releases it when the holding process ends, also after kill -9, so a dead run never blocks the next.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import re
from pathlib import Path


class DeviceBusy(Exception):
    """Another run holds the device; the message is one line for the user."""


def lock_path(origin: str) -> Path:
    return Path.home() / ".conformlab" / "locks" / (re.sub(r"[^A-Za-z0-9.-]+", "_", origin) + ".lock")


def hold(origin: str, target: str):
    """Take the device's lock for this process; returns the open file (close it to release)."""
    path = lock_path(origin)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 -- held for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise DeviceBusy(f"another conformlab run is testing {origin} ({holder}): one run per device at a time, "
                         "its rate budget and its state are one") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}, target {target}, since {datetime.datetime.now():%Y-%m-%d %H:%M:%S}")
    handle.flush()
    return handle
