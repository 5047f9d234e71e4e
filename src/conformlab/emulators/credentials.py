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


# flaw -> how a device's fault for it is named ({word}: what the device compares: password, token, key)
FAULT_NAMES = {EMPTY: "empty_{word}_accepted", PREFIX: "{word}_prefix_accepted", SHORT: "{word}_last_char_ignored",
               STORED_LENGTH: "{word}_extra_ignored", CASE: "{word}_case_insensitive",
               TRIMMED: "{word}_whitespace_trimmed"}


def comparison_faults(word: str, flaws: tuple[str, ...] = (EMPTY, PREFIX, SHORT, STORED_LENGTH, CASE)) -> dict[str, str]:
    """fault -> flaw for the comparison faults a device has, named the same way on every device."""
    return {FAULT_NAMES[flaw].format(word=word): flaw for flaw in flaws}


# flaw -> the near-miss credential (conformlab.near_miss) that shows it: "{name}-<this>"
NEAR_MISS_SUFFIXES = {EMPTY: "empty", PREFIX: "prefix", SHORT: "truncated", STORED_LENGTH: "extended",
                      CASE: "case-swapped", TRIMMED: "trailing-space"}


def near_misses_let_through(flaw_faults: Mapping[str, str], name: str, **named: str) -> dict[str, str]:
    """fault -> the near-miss credential each comparison fault lets through, `{name}-{suffix}`
    (e.g. key-truncated); `named` gives another name per flaw where the family names it so."""
    return {fault: named.get(flaw, f"{name}-{NEAR_MISS_SUFFIXES[flaw]}") for fault, flaw in flaw_faults.items()}


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


def bearer_token(value: str, emulator) -> str | None:
    """The token of an `Authorization: Bearer <token>` value (the scheme without regard to case),
    None when the value carries none. Two firmware flaws, switched by the emulator's faults of these
    names: `bearer_scheme_optional` takes a bare value for the token, `token_scheme_unchecked` takes
    the token of any scheme."""
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" or (token and emulator.fault("token_scheme_unchecked")):
        return token
    return scheme if not token and emulator.fault("bearer_scheme_optional") else None


def flaws_of(emulator, faults: Mapping[str, str]) -> frozenset[str]:
    """The comparison flaws switched on: `faults` maps an emulator's fault names to flaws."""
    return frozenset(flaw for fault, flaw in faults.items() if emulator.fault(fault))
