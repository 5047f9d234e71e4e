"""How firmware compares a presented secret with the stored one: right, and in the ways it goes wrong.

Every emulator names its own faults (each tied to the sentence of its document it breaks); the ones
that make the credential comparison accept an almost-right value map onto the flaws below, so the
same bug behaves the same on every device. The harness's side is `conformlab.near_miss`, which sends
exactly these almost-right values.
"""

from __future__ import annotations

import hmac
from typing import Mapping

EMPTY = "empty"  # an empty value passes: the firmware compares only when something was given
PREFIX = "prefix"  # compared over the given length, strncmp(given, stored, strlen(given)); not empty
SHORT = "short"  # compared over one character less than stored, strncmp(given, stored, strlen(stored) - 1)
STORED_LENGTH = "stored-length"  # compared over the stored length only, strncmp(given, stored, strlen(stored))
CASE = "case"  # compared without regard to case, strcasecmp(given, stored)
TRIMMED = "trimmed"  # whitespace around the given value is trimmed before it is compared
FLAWS = frozenset({EMPTY, PREFIX, SHORT, STORED_LENGTH, CASE, TRIMMED})


def matches(given: str, stored: str, flaws: frozenset[str] = frozenset()) -> bool:
    """Whether `given` passes for `stored`: only when equal, unless the comparison has `flaws`."""
    if hmac.compare_digest(given.encode(), stored.encode()):
        return True
    if TRIMMED in flaws and given.strip() != given:
        return matches(given.strip(), stored, flaws - {TRIMMED})
    if EMPTY in flaws and given == "":
        return True
    if PREFIX in flaws and given and stored.startswith(given):
        return True
    if SHORT in flaws and len(given) >= len(stored) - 1 and given[:len(stored) - 1] == stored[:-1]:
        return True
    if STORED_LENGTH in flaws and given.startswith(stored):
        return True
    return CASE in flaws and given.lower() == stored.lower()


def flaws_of(emulator, faults: Mapping[str, str]) -> frozenset[str]:
    """The comparison flaws switched on: `faults` maps an emulator's fault names to flaws."""
    return frozenset(flaw for fault, flaw in faults.items() if emulator.fault(fault))
