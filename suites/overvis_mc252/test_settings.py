"""State and settings read by bare keys (`?ethernet&gsm`) or all at once, saved settings written and
read back while the active ones stay as they are until the next start, refused writes that change
nothing, and (destructive: two restarts) the saved settings taking effect at the next start. The
client waits out every restart (the schema marks POST /cmd/reboot/ `restarts`).

Every write changes one harmless key (mc252.HARMLESS_SETTINGS) and the old value is put back.
"""

from __future__ import annotations

import pytest

from conformlab.checks import answer
from conformlab.client import expect_json
from conformlab.verdicts import not_verified, requirement
from suites.overvis_mc252.mc252 import ACTIVE, SETTINGS, assert_envelope, other_value, require_login, restart, settings_key

SAVED_SET = "/settings/saved/set/"


def bare(path: str, keys) -> str:
    return path + ("?" + "&".join(keys) if keys else "")


@pytest.mark.req("MC252-STATE-KEYS")
@pytest.mark.parametrize("keys", [("ethernet",), ("ethernet", "gsm"), ("gsm", "ethernet")], ids="&".join)
def test_state_by_bare_keys_answers_those_keys(device, keys):
    require_login(device)
    everything = device.read("/state/get/")
    for key in ("ethernet", "gsm"):  # NOTES.md: {"ethernet": {...}, "gsm": {...}}
        assert isinstance(everything.get(key), dict), f"GET /state/get/ (all) must hold the {key!r} object: {sorted(everything)}"
    asked = device.read(bare("/state/get/", keys))
    assert sorted(asked) == sorted(keys), f"GET /state/get/?{'&'.join(keys)} must answer exactly those keys, got {sorted(asked)}"
    for key in keys:
        assert isinstance(asked[key], dict), f"{key} must be an object: {asked[key]!r}"


@pytest.mark.req("MC252-SETTINGS-KEYS")
@pytest.mark.parametrize("path", [ACTIVE, SETTINGS], ids=["active", "saved"])
def test_settings_by_bare_keys_answer_those_keys(device, path):
    require_login(device)
    everything = device.read(path)
    assert isinstance(everything, dict) and everything, f"GET {path} (all) must answer the settings: {everything!r}"
    keys = sorted(everything)[:2]
    asked = device.read(bare(path, keys))
    assert asked == {key: everything[key] for key in keys}, (
        f"GET {path}?{'&'.join(keys)} must answer exactly those keys with the values of the whole set, got {asked}")


@pytest.mark.req("MC252-SAVED-SET", "MC252-SAVED-NEXT-START")
def test_saved_setting_read_back_and_active_unchanged(device):
    require_login(device)
    key = settings_key(device)
    active_before = device.read(ACTIVE)
    with device.preserved(SETTINGS) as before:
        new = other_value(key, before[SETTINGS][key])
        response = device.client.post(SAVED_SET, json={key: new})
        assert response.status_code == 200 and response.json() == {}, f"POST {SAVED_SET} must answer {{}}: {answer(response)}"
        saved = device.read(bare(SETTINGS, [key]))
        assert saved == {key: new}, f"the saved {key} must read back as written ({new!r}), got {saved}"
        active = device.read(ACTIVE)
        with requirement("MC252-SAVED-NEXT-START"):
            assert active == active_before, (
                f"the active settings must not change before the next start; changed: "
            f"{ {k: (active_before.get(k), active.get(k)) for k in set(active) | set(active_before) if active.get(k) != active_before.get(k)} }")


@pytest.mark.req("MC252-SAVED-SET", "MC252-ERROR-STATUS", "MC252-ERROR-ENVELOPE")
@pytest.mark.parametrize("case", ["unknown-key", "unknown-key-with-a-valid-one", "wrong-type"])
def test_invalid_settings_write_refused_and_nothing_changes(device, case):
    """Reading: a key the device does not have, or a value of the wrong type, is a bad request (400
    is the document's status for it); the write is all or nothing, so a valid key sent alongside is
    not applied either. The document says none of this (which keys and values a device takes, or
    whether it ignores the rest): binding on the bundled emulator, notices elsewhere. An error
    answer carries the document's envelope."""
    require_login(device)
    key = settings_key(device)
    with device.preserved(SETTINGS) as before:
        old = before[SETTINGS][key]
        body = {
            "unknown-key": {"conformlabNoSuchKey": 1},
            "unknown-key-with-a-valid-one": {key: other_value(key, old), "conformlabNoSuchKey": 1},
            "wrong-type": {key: [old]},
        }[case]
        response = device.client.post(SAVED_SET, json=body)
        now = device.read(SETTINGS)
    with requirement("MC252-ERROR-STATUS"):
        assert response.status_code < 500, f"{case}: a bad write is the client's error, not the device's: {answer(response)}"
        device.reading(response.status_code == 400, f"{case}: refused with 400 in this project's reading: {answer(response)}")
    if response.status_code >= 400:
        with requirement("MC252-ERROR-ENVELOPE"):
            assert_envelope(response, case)
    device.reading(now == before[SETTINGS],
                   f"{case}: the saved settings changed ({key}={now.get(key)!r}, was {old!r}); in this project's reading "
                   "a write with a bad key is refused as a whole")


@pytest.mark.req("MC252-SAVED-NEXT-START")
@pytest.mark.destructive("restarts the controller twice (to apply a changed setting, and to apply the old value again)")
def test_saved_setting_takes_effect_at_the_next_start(device):
    require_login(device)
    key = settings_key(device)
    active_before = device.read(ACTIVE)
    if device.read(SETTINGS) != active_before:
        not_verified("the saved settings differ from the active ones already: a restart would apply someone's pending change")
    try:
        with device.preserved(SETTINGS) as before:
            new = other_value(key, before[SETTINGS][key])
            expect_json(device.client.post(SAVED_SET, json={key: new}))
            restart(device)  # the client returns once the device has gone down and come back
            active = device.read(ACTIVE)
            assert active.get(key) == new, f"after the restart the active {key} must be the saved {new!r}, got {active.get(key)!r}"
    finally:
        restart(device)  # the old value, restored in the saved settings, becomes active again
    active = device.read(ACTIVE)
    assert active == active_before, f"after the second restart the active settings must be as found: {active} (was {active_before})"
