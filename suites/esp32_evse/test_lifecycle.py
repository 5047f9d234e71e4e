"""Lifecycles: logs and their paging headers, script components, firmware channel and updates,
the clock, the Nextion display, Wi-Fi secrets and the access point, restart."""

from __future__ import annotations

import struct
import time
from urllib.parse import urlsplit

import pytest

from conformlab.checks import answer, send, wait_until
from conformlab.verdicts import not_applicable, not_verified, requirement
from suites.esp32_evse.evse import SCHEMA, assert_ok, require_no_vehicle, restoring

# -- logs ------------------------------------------------------------------------------------------

LOGS = [
    pytest.param("/log", "log", marks=pytest.mark.req("EVSE-LOG"), id="log"),
    pytest.param("/script/output", "script-output", marks=pytest.mark.req("EVSE-SCRIPT-OUTPUT"), id="script-output"),
]


def _lines(response) -> list[str]:
    return response.text.splitlines()


def _count(response) -> int:
    value = response.headers.get("X-Count")
    assert value is not None and value.strip().isdigit(), f"X-Count must give the number of buffered lines: {answer(response)}"
    return int(value)


@pytest.mark.parametrize("path, control", LOGS)
def test_log_is_plain_text_with_count_and_index_paging(device, path, control):
    if device.emulator:
        device.control(control, {"lines": [f"conformlab line {i}" for i in range(5)]})
    full = device.client.get(path)
    assert full.status_code == 200, answer(full)
    assert full.headers.get("Content-Type", "").split(";")[0] == "text/plain", f"plain-text log expected: {answer(full)}"
    lines, count = _lines(full), _count(full)
    assert count == len(lines), f"X-Count {count} is not the number of buffered lines ({len(lines)})"
    if count < 2:
        not_verified("the log holds fewer than 2 lines; paging cannot be shown")
    start = count // 2
    part = device.client.get(path, params={"index": start})
    assert part.status_code == 200, answer(part)
    # On hardware new lines may arrive between the two reads: what was there must come first.
    assert _lines(part)[: count - start] == lines[start:], (
        f"?index={start} must return the lines from {start} on; got {_lines(part)[:3]}..., expected {lines[start:start + 3]}...")
    if device.emulator:  # on hardware new lines may arrive at any time
        end = device.client.get(path, params={"index": _count(part)})
        assert end.status_code == 200 and end.text.strip() == "", f"?index=<X-Count> returns nothing new: {answer(end)}"


@pytest.mark.req("EVSE-LOG-PANIC")
def test_panic_log_answer(device):
    """GET /log/panic: the stored log as text with X-Time. The document does not say what a device
    with nothing stored answers: 404 ("the requested resource does not exist"), 204 or 200 with an
    empty body all say so (not verified here: nothing to check without a crash)."""
    response = device.client.get("/log/panic")
    if response.status_code in (204, 404) or (response.status_code == 200 and not response.text.strip()):
        not_verified(f"no panic log is stored ({response.status_code}); nothing more to check without a crash")
    assert response.status_code == 200, answer(response)
    assert response.headers.get("Content-Type", "").split(";")[0] == "text/plain", answer(response)
    assert (response.headers.get("X-Time") or "").strip(), f"X-Time (timestamp of the panic) missing: {answer(response)}"


@pytest.mark.req("EVSE-LOG-PANIC")
@pytest.mark.emulator_only("needs a stored panic")
@pytest.mark.destructive("DELETE /log/panic erases the crash log")
def test_panic_log_read_and_cleared(device):
    device.control("panic", {"text": "Guru Meditation Error: conformlab", "time": 1767225600})
    stored = device.client.get("/log/panic")
    assert stored.status_code == 200 and "Guru Meditation Error: conformlab" in stored.text, answer(stored)
    assert (stored.headers.get("X-Time") or "").strip(), f"X-Time (timestamp of the panic) missing: {answer(stored)}"
    # Reading: the timestamp is Unix epoch seconds, like GET /time (the document says only "timestamp").
    device.reading(stored.headers.get("X-Time") == "1767225600",
                   f"X-Time is {stored.headers.get('X-Time')!r} for a panic at epoch 1767225600; the reading expects epoch seconds")
    assert_ok(device.client.delete("/log/panic"))
    cleared = device.client.get("/log/panic")
    assert "conformlab" not in cleared.text or cleared.status_code >= 400, f"DELETE /log/panic clears it: {answer(cleared)}"
    device.reading(cleared.status_code in (200, 404),
                   f"GET /log/panic after DELETE answered {cleared.status_code}; the reading expects 404 or an empty 200")


# -- script components -----------------------------------------------------------------------------


@pytest.mark.req("EVSE-SCRIPT-COMPONENT-NULL")
def test_missing_component_is_json_null(device):
    response = device.client.get("/script/components/conformlab-no-such-component")
    assert response.status_code == 200 and response.headers.get("Content-Type", "").startswith("application/json"), (
        f"a non-existent id returns JSON null: {answer(response)}")
    assert response.json() is None, f"a non-existent id returns JSON null, got {response.text[:100]!r}"


@pytest.mark.req("EVSE-SCRIPT-COMPONENT-SET")
def test_component_parameter_write_reads_back(device):
    components = device.read("/script/components")
    for component in components:
        path = f"/script/components/{component['id']}"
        params = (device.read(path) or {}).get("params", [])
        flippable = [p for p in params if p.get("type") == "boolean" or isinstance(p.get("value"), bool)]
        if flippable:
            break
    else:
        not_applicable("no script component with a boolean parameter to change")
    param = flippable[0]
    op = SCHEMA.operation("POST", "/script/components/{id}")
    with device.preserved(path):
        assert_ok(device.client.post(path, json={"params": [{"key": param["key"], "value": not param["value"]}]}))
        after = {p["key"]: p["value"] for p in device.read(path)["params"]}
    assert after[param["key"]] is (not param["value"]), f"{op} {param['key']} reads back {after[param['key']]!r}"
    unchanged = {p["key"]: p["value"] for p in params if p["key"] != param["key"]}
    assert {k: after[k] for k in unchanged} == unchanged, "other parameters changed"


# -- firmware --------------------------------------------------------------------------------------


@pytest.mark.req("EVSE-FW-CHANNEL")
def test_firmware_channel_round_trip(device):
    channels = device.read("/firmware/channels")
    active = device.read("/firmware/channel")
    assert isinstance(channels, list) and all(isinstance(c, str) for c in channels), f"channels are names: {channels!r}"
    assert isinstance(active, str), f"channel reads a string: {active!r}"
    # Reading: the document does not say that the active channel is one of the declared ones.
    device.reading(active in channels, f"the active channel {active!r} is not one of the declared channels {channels}")
    other = next((c for c in channels if c != active), None)
    if other is None:
        not_applicable(f"the board declares one OTA channel ({active!r}); a change cannot be shown")
    op = SCHEMA.operation("POST", "/firmware/channel")
    with restoring(device, op):
        assert_ok(send(device, op, body=other))
        assert device.read("/firmware/channel") == other, "the channel set does not read back"


@pytest.mark.req("EVSE-FW-CHANNEL", "EVSE-CONV-400-RANGE")
def test_undeclared_firmware_channel_refused(device):
    """Reading only: channels are "declared in board.yaml", so this project's emulator takes any other
    name as an out-of-range value (400). The document says only what `channels` returns and that
    `channel` sets the active one; real firmware stores any string. A device that stores it gets a
    notice, never a failure."""
    op = SCHEMA.operation("POST", "/firmware/channel")
    with restoring(device, op):
        before = device.read("/firmware/channel")
        response = send(device, op, body="conformlab-no-such-channel")
        after = device.read("/firmware/channel")
    with requirement("EVSE-CONV-400-RANGE"):
        device.reading(response.status_code == 400 and after == before,
                       f"an undeclared channel name was answered {response.status_code} and the channel reads {after!r} "
                       f"(was {before!r}); the reading expects 400 and no change")


@pytest.mark.req("EVSE-FW-CHECK")
def test_check_update_compares_with_the_running_version(device):
    """Reading: "compare available with current yourself" - current is the running firmware, the
    appVersion that GET /info reports."""
    response = device.client.get("/firmware/check-update")
    if response.status_code == 404:
        not_verified("check-update answered 404: the latest-version info cannot be fetched (documented)")
    assert response.status_code == 200, answer(response)
    current = response.json()["current"]
    running = device.read("/info").get("appVersion")
    device.reading(current == running, f"check-update says current {current!r}, /info says appVersion {running!r}")


@pytest.fixture
def version_server(device):
    """Set what the emulator's version server offers (None: unreachable); reset afterwards."""
    device.require_emulator("needs control of the version server")
    yield lambda available: device.control("update-info", {"available": available})
    device.control("update-info", {"available": "v1.2.0"})


@pytest.mark.req("EVSE-FW-CHECK")
@pytest.mark.emulator_only("needs the version server to be unreachable")
def test_check_update_404_when_info_cannot_be_fetched(device, version_server):
    version_server(None)
    response = device.client.get("/firmware/check-update")
    assert response.status_code == 404, f"no version info must answer 404: {answer(response)}"


@pytest.mark.req("EVSE-FW-UPDATE")
@pytest.mark.emulator_only("needs control of the version server")
@pytest.mark.destructive("OTA update")
def test_firmware_update_fails_with_520_without_version_info(device, version_server):
    version_server(None)
    response = device.client.post("/firmware/update")
    assert response.status_code == 520, f"cannot fetch version info must answer 520: {answer(response)}"


@pytest.mark.req("EVSE-FW-UPDATE")
@pytest.mark.emulator_only("needs control of the version server")
@pytest.mark.destructive("OTA update")
def test_firmware_update_with_same_version_does_not_flash(device, version_server):
    running = device.read("/info")["appVersion"]
    version_server(running)
    before = device.control("counters")["firmwareUpdates"]
    assert_ok(device.client.post("/firmware/update"))
    assert device.control("counters")["firmwareUpdates"] == before, "the same version must not be flashed"
    assert device.read("/info")["appVersion"] == running


@pytest.mark.req("EVSE-FW-UPDATE")
@pytest.mark.emulator_only("needs a version server offering another version")
@pytest.mark.destructive("OTA update and restart")
def test_firmware_update_to_another_version_flashes_and_restarts(device, version_server):
    counters = device.control("counters")
    version_server("v9.9.9")
    with device.preserved("/state"):  # the boot applies the default current and limits
        assert_ok(device.client.post("/firmware/update"))  # the client waits until it is back
        after = device.control("counters")
    assert after["firmwareUpdates"] == counters["firmwareUpdates"] + 1, "the other version must be flashed"
    assert after["restarts"] > counters["restarts"], "the device restarts after flashing"
    assert device.read("/info")["appVersion"] == "v9.9.9"


def esp_image(project: str, size: int = 256) -> bytes:
    """An ESP-IDF app image header: 0xE9 magic, then the app description with the project name."""
    image = bytearray(size)
    image[0] = 0xE9
    struct.pack_into("<I", image, 32, 0xABCD5432)
    image[48:48 + 6] = b"v9.9.9"
    name = project.encode()[:31]
    image[80:80 + len(name)] = name
    return bytes(image)


@pytest.mark.req("EVSE-FW-UPLOAD")
@pytest.mark.destructive("firmware upload (the images sent are invalid and must be refused)")
@pytest.mark.parametrize("image", [b"\xe9short", esp_image("some-other-project")], ids=["too-short", "other-project"])
def test_invalid_firmware_image_refused_523(device, image):
    before = device.read("/info")["appVersion"]
    response = device.client.post("/firmware/upload", body=image, content_type="application/octet-stream")
    assert response.status_code == 523, f"an invalid firmware image returns 523: {answer(response)}"
    assert device.read("/info")["appVersion"] == before


@pytest.mark.req("EVSE-FW-UPLOAD")
@pytest.mark.emulator_only("a valid image for real hardware cannot be made up")
@pytest.mark.destructive("firmware upload and restart")
def test_valid_firmware_image_accepted_and_restarts(device):
    counters = device.control("counters")
    with device.preserved("/state"):  # the boot applies the default current and limits
        # The client waits until the device has gone down and come back.
        assert_ok(device.client.post("/firmware/upload", body=esp_image("esp32-evse"), content_type="application/octet-stream"))
        after = device.control("counters")
    assert after["firmwareUploads"] == counters["firmwareUploads"] + 1 and after["restarts"] > counters["restarts"], (
        f"a valid image is taken and the device restarts into it: {counters} -> {after}")


# -- Nextion ---------------------------------------------------------------------------------------


@pytest.mark.req("EVSE-NEXTION")
@pytest.mark.emulator_only("needs a display to attach and detach")
def test_nextion_info_null_without_display(device):
    device.control("nextion", {"model": "NX4832T035", "touch": True, "flashSize": 16777216})
    try:
        info = device.read("/nextion/info")
        assert info and info["model"] == "NX4832T035", f"an attached display is reported: {info!r}"
    finally:
        device.control("nextion", None)
    assert device.read("/nextion/info") is None, "JSON null if no display answers"


@pytest.mark.req("EVSE-NEXTION")
@pytest.mark.emulator_only("needs a display")
@pytest.mark.destructive("reflashes the display")
def test_nextion_upload_with_baud_rate(device):
    device.control("nextion", {"model": "NX4832T035", "touch": True, "flashSize": 16777216})
    try:
        response = device.client.request("POST", "/nextion/upload", body=b"\x00" * 4096, content_type="application/octet-stream",
                                         params={"baud-rate": 115200})
        assert_ok(response)
    finally:
        device.control("nextion", None)


# -- clock -----------------------------------------------------------------------------------------


@pytest.mark.req("EVSE-TIME")
def test_time_set_and_read_back(device):
    # Setting the clock re-evaluates the schedules, which may act on a connected vehicle.
    require_no_vehicle(device, "a clock change")
    op = SCHEMA.operation("POST", "/time")
    with restoring(device, op):
        now = device.read("/time")
        assert isinstance(now, (int, float)) and not isinstance(now, bool), f"GET /time is a bare number: {now!r}"
        target = int(now) + 86_400
        assert_ok(send(device, op, body=target))
        read = device.read("/time")
    assert abs(read - target) <= 5, f"POST /time {target} but GET /time reads {read}"


# -- Wi-Fi -----------------------------------------------------------------------------------------


@pytest.mark.req("EVSE-CFG-WIFI-PASSWORD")
@pytest.mark.parametrize("path, block", [("/config/wifi", None), ("/config", "wifi")])
def test_wifi_password_never_returned(device, path, block):
    answer_ = device.read(path)
    wifi = answer_[block] if block else answer_
    assert "password" not in wifi, f"GET {path} returns the Wi-Fi password"


@pytest.mark.req("EVSE-CFG-WIFI-PASSWORD")
@pytest.mark.emulator_only("a real device's Wi-Fi password cannot be read back to restore it")
@pytest.mark.destructive("changes the Wi-Fi password")
def test_wifi_password_written_is_not_returned(device):
    from conformlab import secrets

    password = "conformlab-wifi-secret"
    secrets.register(password)
    op = SCHEMA.operation("POST", "/config/wifi")
    with restoring(device, op):
        assert_ok(send(device, op, body={"password": password}))
        for path in ("/config/wifi", "/config"):
            text = device.client.get(path).text
            assert password not in text and '"password"' not in text, f"GET {path} returns the Wi-Fi password"


@pytest.mark.req("EVSE-WIFI-AP")
@pytest.mark.destructive("stops or starts the access point")
def test_access_point_toggle_applies_after_a_short_delay(device):
    op = SCHEMA.operation("POST", "/wifi/state/ap")
    wifi = device.read("/wifi/state")
    original = wifi["apEnabled"]
    if urlsplit(device.client.origin).hostname == wifi.get("apIp"):
        not_verified(f"the harness reaches the device through its access point ({wifi.get('apIp')}); stopping it would cut the run off")
    try:
        assert_ok(send(device, op, body=not original))
        wait_until(lambda: device.read("/wifi/state")["apEnabled"] != original, 5)
        assert device.read("/wifi/state")["apEnabled"] is (not original), "apEnabled did not change within 5 s"
    finally:
        assert_ok(send(device, op, body=original))
        wait_until(lambda: device.read("/wifi/state")["apEnabled"] == original, 5)


# -- restart ---------------------------------------------------------------------------------------


@pytest.mark.req("EVSE-RESTART")
@pytest.mark.destructive("reboots the device")
def test_restart_is_scheduled_and_the_device_comes_back(device):
    """The client itself waits after POST /restart (the schema marks it `restarts`) until the device
    has gone down and answers again; a device that never comes back ends the run as unreachable.
    Here: it did restart (uptime started again; on the emulator its restart counter)."""
    restarts = device.control("counters")["restarts"] if device.emulator else None
    uptime = device.read("/info")["uptime"]
    asked = time.monotonic()
    with device.preserved("/state"):  # the boot applies the default current and limits
        assert_ok(device.client.post("/restart"))
        info = device.read("/info")
    if device.emulator:
        assert device.control("counters")["restarts"] > restarts, "POST /restart answered OK but the device did not restart"
    assert info["uptime"] + 2 < uptime + (time.monotonic() - asked), (
        f"uptime {uptime} s before POST /restart, {info['uptime']} s after: the device did not restart")
