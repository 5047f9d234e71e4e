"""The firmware a device runs, for the rules of its document that depend on it.

Some sentences hold only from a firmware on: WebDAV credentials from mid-2026 EVSE firmware (NOTES.md),
the WCC Lite endpoints that take files or field data from firmware 1.8. A check asks the device under
test for its `Firmware` (what the device reports at its documented endpoint, else what the target's
`firmware` key says) and judges by the rule that applies; it records the rule (`DeviceUnderTest.
firmware_rule`), and the reports say which rule applied and why.

Comparisons answer None when the firmware is not known or cannot be read: the check then says so and
judges by what the document states without a firmware condition, or accepts either rule.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

# The forms of build date devices report: "Feb 21 2025" (the EVSE's appDate, C's __DATE__), an ISO
# date or date-time (the MC252's releaseDate "2025-01-01T00:00:00": its first ten characters).
DATE_FORMATS = ("%b %d %Y", "%Y-%m-%d", "%d %b %Y")


@dataclass(frozen=True)
class FirmwareReport:
    """Where a device says which firmware it runs: a documented GET answering a JSON object, the key
    of its version and, where it reports one, the key of its build date."""

    path: str
    version: str
    date: str | None = None


@dataclass(frozen=True)
class Firmware:
    version: str | None
    built: datetime.date | None
    source: str  # where it was read, for the reports: the device's answer, the targets file, or unknown

    def describe(self) -> str:
        if self.version is None and self.built is None:
            return f"firmware not known ({self.source})"
        parts = [f"firmware {self.version}" if self.version else "firmware"]
        if self.built:
            parts.append(f"built {self.built.isoformat()}")
        return " ".join(parts) + f" ({self.source})"

    def at_least(self, wanted: str) -> bool | None:
        """Is the version `wanted` or newer? None: the version is not known or has no number."""
        have = version_numbers(self.version)
        if not have:
            return None
        want = version_numbers(wanted)
        width = max(len(have), len(want))
        return have + (0,) * (width - len(have)) >= want + (0,) * (width - len(want))

    def built_on_or_after(self, day: datetime.date) -> bool | None:
        return None if self.built is None else self.built >= day


UNKNOWN = Firmware(None, None, "the device does not report it and the target has no `firmware` key")


def version_numbers(text) -> tuple[int, ...]:
    """The numbers of a version, from its first digit: "v1.8.0-rtu" -> (1, 8, 0), 46 -> (46,), "beta" -> ()."""
    found = re.search(r"\d+(?:\.\d+)*", str(text)) if text is not None else None
    return tuple(int(part) for part in found.group(0).split(".")) if found else ()


def build_date(text) -> datetime.date | None:
    if not isinstance(text, str):
        return None
    flat = " ".join(text.split())
    if re.match(r"\d{4}-\d\d-\d\dT", flat):
        flat = flat[:10]
    for form in DATE_FORMATS:
        try:
            return datetime.datetime.strptime(flat, form).date()
        except ValueError:
            continue
    return None


def from_answer(report: FirmwareReport, answer, where: str) -> Firmware | None:
    """The firmware an answer of the report's endpoint gives (None: it gives no version or date)."""
    if not isinstance(answer, dict):
        return None
    version = answer.get(report.version)
    built = build_date(answer.get(report.date)) if report.date else None
    if version is None and built is None:
        return None
    said = [f"{report.version} {version!r}"] + ([f"{report.date} {answer.get(report.date)!r}"] if report.date else [])
    return Firmware(None if version is None else str(version), built, f"the device: {where} answered {', '.join(said)}")


def declared(version: str) -> Firmware:
    return Firmware(version, None, f'the targets file: firmware = "{version}"')
