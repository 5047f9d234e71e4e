"""The write journal: what a run found on a real device, kept where a killed run cannot lose it.

Before the first write to a real device (a target with `base_url`; an emulator starts fresh each
run, so it has none), the harness records the values it must leave as found: the snapshot the
target's session takes at its start (the profile's `snapshot_paths`, which the end-of-run check
compares) and the before-value of every `preserved(*paths)` block, the first value per path (the
state as found; a path inside one already recorded, such as /config/evse inside /config, is covered
by it). The journal is `~/.conformlab/journal/<target>.json`, readable only by the user (mode 600),
written whole (a new file renamed over the old one) and fsynced before the write it covers is sent.
It holds the device's values, never the target's credentials, and never goes into a report.

- A clean end (the device is as the run found it): the journal is removed.
- Any other end: it stays, and one line says where it is and what to run.
- A run that died (kill -9, a power cut of the test host): the next run against that target puts the
  recorded values back before anything else, or `conformlab restore TARGET` does, one line per path
  ("put back /config as recorded by an interrupted run of 2025-06-01 14:03:22"). See
  `DeviceUnderTest.recover_journal`.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import re
from pathlib import Path

from conformlab import secrets

# Lines a run's journal recovery produced, for the report of the check that was set up meanwhile
# (the plugin takes them as notices; they are also printed at once).
NOTICES: list[str] = []


def folder() -> Path:
    return Path.home() / ".conformlab" / "journal"


def file_for(target: str) -> Path:
    return folder() / (re.sub(r"[^A-Za-z0-9._-]", "_", target) + ".json")


class JournalError(Exception):
    """A journal that cannot be used as it is; the message is one line for the user."""


class Journal:
    """The values one run recorded for one target, in the order it recorded them."""

    def __init__(self, target: str, device: str, origin: str, started: str | None = None):
        self.target, self.device, self.origin = target, device, origin
        self.started = started or datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        self.values: dict[str, object] = {}
        self.path = file_for(target)

    @classmethod
    def load(cls, target: str) -> Journal | None:
        """The journal a run left for `target`, or None."""
        path = file_for(target)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            journal = cls(data["target"], data["device"], data["origin"], data["started"])
            journal.values = {entry["path"]: entry["value"] for entry in data["values"]}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise JournalError(f"{path}: not a conformlab journal ({type(exc).__name__}); move it away to go on") from None
        if journal.target != target:
            raise JournalError(f"{path} is the journal of target {journal.target!r}, not {target!r}; move it away to go on")
        return journal

    def record(self, values: dict[str, object]) -> None:
        """Add the paths not recorded yet (the first value wins) and write the file before returning."""
        added = False
        for path, value in values.items():
            if not any(path == known or path.startswith(known.rstrip("/") + "/") for known in self.values):
                self.values[path] = copy.deepcopy(value)
                added = True
        if added:
            self._write()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        data = {"target": self.target, "device": self.device, "origin": self.origin, "started": self.started,
                "written_by": f"conformlab run, pid {os.getpid()}",
                "values": [{"path": path, "value": value} for path, value in self.values.items()]}
        secrets.write_private(f"journal/{self.path.name}", json.dumps(data, indent=1))

