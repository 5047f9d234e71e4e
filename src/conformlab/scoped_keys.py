"""API keys with permission scopes (WisDM): the targets-file form, its checks, and what each key holds.

    [targets.<name>.auth]
    keys = [
      { name = "reader", key = "${WISDM_READ_KEY}", access = "read",  permissions = [] },
      { name = "ops",    key = "${WISDM_OPS_KEY}",  access = "write", permissions = ["WRITE_REBOOT_GATEWAY"] },
    ]

Optional per key: `locations` (the key's location restriction: location ids) and `expired = true` (a key
past its lifespan, which the cloud must refuse). The organization of a key is never declared: the suites
ask the cloud (GET /v4/organization). The form is fixed: other tools write it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# wisdm-api.txt, the write permissions as the endpoints name them ("Requires ... WRITE_..._ permission").
PERMISSIONS = (
    "WRITE_ADD_LOCATION_TO_ORGANIZATION",
    "WRITE_ADD_GATEWAY_TO_LOCATION",
    "WRITE_UPGRADE_FIRMWARE",
    "WRITE_EDIT_NETWORK_INTERFACE",
    "WRITE_REBOOT_GATEWAY",
    "WRITE_RESET_PASSWORD",
    "WRITE_ENABLE_BATTERY_MONITORING",
    "WRITE_EDIT_SYSTEM_SETTINGS",
)
ACCESS = ("read", "write")  # "Read only: Grants access to GET methods"; "Read and Write: ... POST and DELETE"
KEY_FIELDS = frozenset({"name", "key", "access", "permissions", "locations", "expired"})
# A key's name becomes part of test ids: plain words only (never a secret).
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# Names the access matrix gives its own roles.
RESERVED_NAMES = frozenset({"missing", "unknown-key"})


@dataclass(frozen=True)
class ScopedKey:
    name: str
    key: str  # the secret
    access: str  # "read" or "write"
    permissions: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()  # empty: no location restriction
    expired: bool = False

    @property
    def grants(self) -> tuple[str, ...]:
        """What the key holds, in the access matrix's vocabulary: "read"; a write key also "write"
        and its permissions."""
        return ("read",) if self.access == "read" else ("read", "write", *self.permissions)


def keys_of(auth: dict) -> tuple[ScopedKey, ...]:
    """The keys of a target's (checked) auth table."""
    return tuple(ScopedKey(name=entry["name"], key=entry["key"], access=entry["access"],
                           permissions=tuple(entry.get("permissions", ())), locations=tuple(entry.get("locations", ())),
                           expired=bool(entry.get("expired", False)))
                 for entry in auth.get("keys", ()))


def run_key(auth: dict) -> ScopedKey | None:
    """The key the run sends with unless a check names another: of the keys that work (not expired)
    and are not restricted to some locations, the one holding the most grants (the first of a tie)."""
    usable = [key for key in keys_of(auth) if not key.expired]
    unrestricted = [key for key in usable if not key.locations] or usable
    return max(unrestricted, key=lambda key: len(key.grants), default=None)


def keys_problem(auth: dict) -> str | None:
    """One line saying what is wrong with a target's `keys`, or None."""
    keys = auth.get("keys")
    if not isinstance(keys, list) or not keys:
        return 'give keys = [{ name = "...", key = "...", access = "read" or "write", permissions = [...] }, ...] (at least one)'
    names = set()
    for number, entry in enumerate(keys, 1):
        where = f"keys[{number}]"
        if not isinstance(entry, dict):
            return f"{where} must be a table {{ name = ..., key = ..., access = ..., permissions = [...] }}"
        unknown = sorted(set(entry) - KEY_FIELDS)
        if unknown:
            return f'{where}: unknown field "{unknown[0]}" (fields: {", ".join(sorted(KEY_FIELDS))})'
        for field in ("name", "key", "access"):
            if field not in entry:
                return f'{where}: field "{field}" is missing'
            if not isinstance(entry[field], str):
                return f'{where}: field "{field}" must be a string'
        name = entry["name"]
        if not _NAME.fullmatch(name) or name in RESERVED_NAMES:
            # The name is not echoed: a name and a key swapped by mistake would print the key.
            return (f'{where}: the name must be a short lower-case word (letters, digits, "-", "_"), not '
                    f'{" or ".join(sorted(RESERVED_NAMES))}: it names the key in test ids')
        where = f'key "{name}"'
        if name in names:
            return f'{where}: the name is given twice'
        names.add(name)
        if not entry["key"]:
            return f"{where}: the key is empty"
        if entry["access"] not in ACCESS:
            return f'{where}: access must be "read" or "write", not "{entry["access"]}"'
        permissions = entry.get("permissions", [])
        if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
            return f"{where}: permissions must be a list of permission names"
        unknown = [p for p in permissions if p not in PERMISSIONS]
        if unknown:
            return f'{where}: unknown permission "{unknown[0]}" (known: {", ".join(PERMISSIONS)})'
        if entry["access"] == "read" and permissions:
            return f'{where}: a read-only key holds no write permissions (access = "read" with {permissions[0]})'
        locations = entry.get("locations", [])
        if not isinstance(locations, list) or not all(isinstance(item, str) and item for item in locations):
            return f"{where}: locations must be a list of location ids"
        if not isinstance(entry.get("expired", False), bool):
            return f"{where}: expired must be true or false"
    if all(entry.get("expired", False) for entry in keys):
        return "every key is expired: give at least one that works"
    return None
