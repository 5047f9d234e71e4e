"""Named requirements: each check carries the ID of the documented behaviour it verifies.

Each suite folder has a `requirements.yaml`:

    EVSE-AUTH-401:
      section: Authentication
      source: esp32-evse-api.txt        # or NOTES.md where the sentence is restored from there
      text: "A failed or missing credential returns 401 Unauthorized with a WWW-Authenticate: Basic realm=\"Users\" header."

Where the vendor's own pages disagree (NOTES.md), the requirement names both readings, each with its
sentence and source; its checks accept either and record which one the device follows
(`DeviceUnderTest.follows`), and the reports show a CONFLICT entry with both sentences:

    EVSE-CFG-SCHED-TZ-POSIX:
      ...
      conflict:
        POSIX: {source: esp32-evse-api.txt, text: "timezone: POSIX TZ string ..."}
        IANA: {source: NOTES.md, text: "the vendor's scheduler page says it is an IANA zone name ..."}
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import yaml

from conformlab.profiles import PROFILES
from conformlab.schema import project_root


@dataclass(frozen=True)
class Reading:
    """One side of a disagreement between the vendor's pages: a name, its sentence and where it stands."""
    name: str
    source: str
    text: str


@dataclass(frozen=True)
class Requirement:
    id: str
    text: str
    section: str
    source: str
    device: str | None  # None: a promise of the harness itself, for every device
    conflict: tuple[Reading, ...] = ()  # the readings, where the vendor's pages disagree (else empty)

    def cite(self) -> str:
        return f'{self.id} ({self.source}, {self.section}): "{self.text}"'


@functools.cache
def all_requirements() -> dict[str, Requirement]:
    found: dict[str, Requirement] = {}
    root = project_root() / "suites"
    # suites/common holds the harness's own promises (device None); each device suite its document's.
    folders = [("common", None, "conformlab")] + [(p.suite, p.name, p.document) for p in PROFILES.values()]
    for folder, device, document in folders:
        path = root / folder / "requirements.yaml"
        if not path.exists():
            continue
        for rid, entry in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            if rid in found:
                raise ValueError(f"{path}: requirement {rid} is defined twice")
            readings = tuple(Reading(name, side.get("source", document), " ".join(str(side["text"]).split()))
                             for name, side in (entry.get("conflict") or {}).items())
            if len(readings) == 1:
                raise ValueError(f"{path}: {rid}: a conflict has two readings or more")
            found[rid] = Requirement(id=rid, text=" ".join(str(entry["text"]).split()), section=entry.get("section", ""),
                                     source=entry.get("source", document), device=device, conflict=readings)
    return found


def requirement(rid: str) -> Requirement:
    return all_requirements()[rid]
