"""Settings: partial writes change only the keys sent, the answer echoes the request, and passwords
are never read back. Every value a check writes is put back (ww.restoring)."""

from __future__ import annotations

import copy

import pytest

from conformlab.checks import answer
from conformlab.client import expect_json
from suites.wattwaechter.ww import SCHEMA, not_applicable, restoring

SETTINGS_WRITE = SCHEMA.operation("POST", "/settings")

# Keys the partial-write check changes, with two harmless values each (one differs from the device's).
# The nested one shows that a partial write inside a block keeps the block's other keys. Nothing a
# user sees elsewhere (device_name may name the device in MQTT discovery) and no connection setting.
PARTIAL_CHANGES = {
    "ledEnable": (False, True),
    "mqtt.sendInterval": (60, 120),  # round values any firmware takes as they are
}


def get_key(settings: dict, dotted: str):
    value = settings
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def set_key(settings: dict, dotted: str, value) -> dict:
    parts = dotted.split(".")
    for part in parts[:-1]:
        settings = settings.setdefault(part, {})
    settings[parts[-1]] = value


def nested(dotted: str, value) -> dict:
    body: dict = {}
    set_key(body, dotted, value)
    return body


def differences(before, after, where="") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after)):
            found += differences(before.get(key), after.get(key), f"{where}.{key}" if where else key)
        return found
    return [] if before == after else [f"{where}: {before!r} -> {after!r}"]


@pytest.mark.req("WW-SETTINGS-PARTIAL")
@pytest.mark.parametrize("key", sorted(PARTIAL_CHANGES))
def test_partial_write_changes_only_the_keys_sent(device, key):
    with restoring(device, SETTINGS_WRITE):
        before = device.read("/settings")
        if get_key(before, key) is None:
            not_applicable(f"this device's GET /settings has no {key}")
        value = next(v for v in PARTIAL_CHANGES[key] if v != get_key(before, key))
        body = nested(key, value)
        response = device.client.post("/settings", json=body)
        problems = device.check_answer(SETTINGS_WRITE, response)
        assert not problems, "; ".join(problems)
        result = expect_json(response)
        assert result.get("success") is True, f"a settings write must answer success: true: {answer(response)}"
        assert result.get("applied") == body, f"`applied` must echo the request {body}: {answer(response)}"
        after = device.read("/settings")
        expected = copy.deepcopy(before)
        set_key(expected, key, value)
        changed = differences(device.writable(SETTINGS_WRITE, expected), device.writable(SETTINGS_WRITE, after))
        assert not changed, f"writing only {key} must change only {key}; also changed: {changed}"


def password_keys(value, where="") -> list[str]:
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if "password" in key.lower() and not isinstance(item, bool):  # password_enable is a switch
                found.append(path)
            found += password_keys(item, path)
    return found


def masked(value) -> bool:
    """Empty, or nothing but a mask: not a password."""
    return value is None or (isinstance(value, str) and set(value) <= {"*"})


# NOTES says GET /settings never returns passwords: a password key with a value that is not empty or a
# mask ("***") is a FAIL. Reading: the key is left out altogether (the vendor client's settings model
# has no password field to fill); a key shown empty or masked is a NOTICE.
@pytest.mark.req("WW-SETTINGS-NO-PASSWORDS")
def test_settings_never_return_passwords(device):
    settings = device.read("/settings")
    keys = password_keys(settings)
    leaked = [key for key in keys if not masked(get_key(settings, key))]
    # The key names only: the values are the device's secrets and must not reach the report.
    assert not leaked, f"GET /settings returned password fields: {', '.join(leaked)}"
    device.reading(not keys, f"GET /settings shows password keys, empty or masked: {', '.join(keys)}; "
                             "the reading expects them left out")
