"""Unit tests of the WCC Lite emulator (plain pytest + requests; multipart bodies built by requests'
files=/data=, the way a client of the gateway sends them).

The API key is a test constant, but it is still kept out of assertion messages: requests are made
through helpers that take the *kind* of key ("good", "wrong", None), never the key itself."""

from __future__ import annotations

import math
import time

import pytest
import requests

from conformlab.emulators.server import serve
from conformlab.emulators.wcc_lite import (
    BY_ALIAS, DESCRIPTIONS, DEVICES, ENDPOINTS, FAULTS, FIRMWARE, NEAR_MISS_FAULTS, WccLiteEmulator, build_image,
    build_workbook, disabled_endpoints_problem, format_value, house_kw, image_is_valid, inverter_kw,
    inverter_kwh, poll_time, tag_reading, workbook_sheets)
from vendor_docs import assert_faults_quote_the_documents
from emulator_controls import control, counters

API_KEY = "conformlab-wcc-key-1"  # >= 12 characters, as the web UI requires
OTHER_KEY = "another-key-0815"
UNAUTHORIZED = {"error": "Unauthorized access."}
METHODS = {"/api" + path: method for method, path, _, _ in ENDPOINTS}  # full path -> its method
GET_PATHS = [path for path, method in METHODS.items() if method == "GET"]
POST_PATHS = [path for path, method in METHODS.items() if method == "POST"]
LOCAL = 2 * 3600


def start(faults=(), auth=True, disabled=(), reading="default", restart_delay=60.0, boot_seconds=2.0):
    """An emulator on loopback. A started upgrade restarts it `restart_delay` seconds later: long by
    default, so that tests about other things never meet the outage (stopping cancels the restart)."""
    emulator = WccLiteEmulator(faults=faults, auth={"api_key": API_KEY} if auth else None, disabled_endpoints=disabled)
    emulator.reading = reading
    emulator.upgrade_restart_delay = restart_delay
    emulator.boot_seconds = boot_seconds
    return serve(emulator, host="127.0.0.1", port=0)


@pytest.fixture
def emu():
    with start() as running:
        yield running


@pytest.fixture
def open_emu():
    with start(auth=False) as running:
        yield running


def _headers(key: str | None) -> dict[str, str]:
    return {} if key is None else {"apiKey": {"good": API_KEY, "wrong": OTHER_KEY, "other": OTHER_KEY}.get(key, key)}


def call(emu, method: str, path: str, key: str | None = "good", **kw) -> requests.Response:
    """A request to /api<path>; `key` is "good", "wrong" or None (no apiKey header)."""
    headers = {**_headers(key), **kw.pop("headers", {})}
    return requests.request(method, emu.url + "/api" + path, headers=headers, timeout=5, **kw)


def get(emu, path: str, key: str | None = "good", **kw) -> requests.Response:
    return call(emu, "GET", path, key, **kw)


def form(emu, path: str, key: str | None = "good", **fields: str) -> requests.Response:
    """POST multipart/form-data with plain fields (requests sends (None, value) parts without a filename)."""
    return call(emu, "POST", path, key, files={name: (None, value) for name, value in fields.items()})


def upload(emu, path: str, content: bytes, filename: str = "1.8.0-rtu.sysupgrade", key: str | None = "good"):
    return call(emu, "POST", path, key, files={"file": (filename, content, "application/octet-stream")})


def leaves(value):
    """Every non-container value of a JSON answer."""
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    return [value]


def objects_with(value, key: str) -> list[dict]:
    """Every object in a JSON answer that carries `key` (the schema's `fields` convention)."""
    found = []
    if isinstance(value, dict):
        if key in value:
            found.append(value)
        for item in value.values():
            found += objects_with(item, key)
    elif isinstance(value, list):
        for item in value:
            found += objects_with(item, key)
    return found


def assert_error(response: requests.Response, status: int, message: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    if message is not None:
        assert body["error"] == message


# ---------------------------------------------------------------------------------------------
# Construction, registry, fault catalogue


def test_registered_in_the_emulator_registry():
    from conformlab.emulators import EMULATORS

    assert EMULATORS["wcc-lite"] is WccLiteEmulator


def test_class_attributes():
    assert WccLiteEmulator.NAME == "wcc-lite" and WccLiteEmulator().AUTH_KEYS == ("api_key",)
    with start() as running:
        assert requests.get(running.url + "/__emulator__/", timeout=5).json() == {"device": "wcc-lite", "faults": []}


@pytest.mark.parametrize("kwargs, word", [
    ({"faults": ["nope"]}, "unknown fault"),
    ({"auth": {"token": "x" * 12}}, "unknown auth key"),
    ({"auth": {"api_key": "short-key"}}, "at least 12"),  # "equal to or longer than 12 characters"
    ({"auth": {"api_key": "has a space!"}}, "without spaces"),
    ({"auth": {"api_key": 123456789012}}, "must be a string"),
    ({"disabled_endpoints": ["/api/nope"]}, "not documented"),
    ({"disabled_endpoints": ["/sysupgrade"]}, "not documented"),  # paths carry the /api prefix
    ({"disabled_endpoints": [1]}, "list of endpoint paths"),
    ({"firmware": "beta"}, "a version such as"),
])
def test_constructor_refuses_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        WccLiteEmulator(**kwargs)


def test_disabled_endpoints_problem():
    assert disabled_endpoints_problem([]) is None
    assert disabled_endpoints_problem(["/api/sysupgrade", "/api/sync"]) is None
    assert "list" in disabled_endpoints_problem("/api/sysupgrade")
    assert "/api/x" in disabled_endpoints_problem(["/api/x"])


def test_fault_catalogue_quotes_the_documents():
    assert len(FAULTS) >= 12
    assert_faults_quote_the_documents(FAULTS, "wcc-lite-api.txt")


# ---------------------------------------------------------------------------------------------
# Every endpoint


def test_version_is_the_documents_example(emu):
    response = get(emu, "/version")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert response.json() == {"api_version": "2", "api_patch": "1", "sync_version": "lite1"}
    assert get(emu, "/syncVersion").json() == {"sync_version": "lite1"}  # the same sync service


def test_every_get_endpoint_answers_strings(emu):
    for path in GET_PATHS:
        response = get(emu, path[len("/api"):])
        assert response.status_code == 200, path
        if path == "/api/syslog":
            assert response.headers["Content-Type"] == "text/plain"
            continue
        assert response.headers["Content-Type"] == "application/json", path
        values = leaves(response.json())
        assert values and all(isinstance(v, str) for v in values), path


def test_actions_lists_the_enabled_endpoints(emu):
    actions = get(emu, "/actions").json()
    assert [a["path"] for a in actions["actions"]] == list(DESCRIPTIONS)
    assert actions["total_actions"] == str(len(DESCRIPTIONS))
    assert actions["actions"][0] == {"path": "/api/version", "description": "Version of the API"}
    control(emu, "disabled", {"disabled": ["/api/sysupgrade", "/api/sync"]})
    actions = get(emu, "/actions").json()
    assert "/api/sysupgrade" not in [a["path"] for a in actions["actions"]] and actions["total_actions"] == "11"


def test_system_and_gsm_info(emu):
    info = get(emu, "/systemInfo").json()
    assert info["firmware_version"] == FIRMWARE and info["lan_ip"] == "192.168.1.70"
    assert len(info["timestamp"]) == 13 and abs(int(info["timestamp"]) / 1000 - time.time()) < 5
    assert int(info["uptime"]) > 86400 and 0 < int(info["memory_free"]) < int(info["memory_total"])
    gsm = get(emu, "/gsmInfo").json()
    assert gsm["sim_state"] == "ready" and -90 < int(gsm["signal_strength"]) < -60 and len(gsm["imei"]) == 15


def test_syslog_is_text_and_logs_uploads(emu):
    log = get(emu, "/syslog").text
    assert log.endswith("\n") and "protocol-hub: configuration loaded: 4 devices, 17 signals" in log
    upload(emu, "/sysupgrade", b"not an image", "bad.sysupgrade")
    upload(emu, "/sync", build_workbook(), "config.xlsx")
    log = get(emu, "/syslog").text.splitlines()
    assert "sysupgrade: bad.sysupgrade: image check failed" in log[-2]
    assert "excel-utility: config.xlsx: configuration generated" in log[-1]
    leaked = API_KEY in "\n".join(log)
    assert not leaked, "the syslog shows the API key"


def test_head_and_methods(emu):
    head = call(emu, "HEAD", "/version")
    assert head.status_code == 200 and head.content == b""
    for path in GET_PATHS:
        response = call(emu, "POST", path[len("/api"):])
        assert_error(response, 405, "Method not allowed")
        assert response.headers["Allow"] == "GET, HEAD"
    for path in POST_PATHS:
        response = call(emu, "GET", path[len("/api"):])
        assert_error(response, 405)
        assert response.headers["Allow"] == "POST"
    assert_error(call(emu, "DELETE", "/devices"), 405)


def test_firmware_before_1_8_lacks_the_endpoints_with_files_or_field_data():
    """"* Endpoints accepting files / ** Endpoints accepting field data (requires WCC Lite firmware version
    1.8 or newer)": an older gateway answers them as unknown paths, whatever the method; the others serve."""
    emulator = WccLiteEmulator(auth={"api_key": API_KEY}, firmware="1.7.4")
    with serve(emulator, host="127.0.0.1", port=0) as old:
        for path in ("/sync", "/sysupgrade", "/device/info", "/device/tags", "/device/tag/value"):
            for method in ("GET", "POST"):
                assert_error(call(old, method, path), 404, "Not found")
        assert get(old, "/devices").status_code == 200
        assert get(old, "/systemInfo").json()["firmware_version"] == "1.7.4"
    with start() as current:
        assert call(current, "POST", "/device/info").status_code == 400  # there: a missing alias is refused


def test_unknown_paths(emu):
    assert_error(get(emu, "/nope"), 404, "Not found")
    assert_error(get(emu, "/version/"), 404)
    assert_error(get(emu, ""), 404)
    assert requests.get(emu.url + "/", timeout=5).status_code == 404
    assert_error(get(emu, "/nope", key=None), 401, "Unauthorized access.")  # auth comes first


# ---------------------------------------------------------------------------------------------
# Authorization


def test_auth_on_every_endpoint(emu):
    for path, method in METHODS.items():
        for key in (None, "wrong", ""):
            response = call(emu, method, path[len("/api"):], key=key)
            assert response.status_code == 401, (path, key)
            assert response.headers["Content-Type"] == "application/json"
            assert response.content == b'{"error":"Unauthorized access."}' and response.json() == UNAUTHORIZED
    assert counters(emu)["upgradesRefused"] == counters(emu)["syncRefused"] == 0  # nothing ran
    for path in GET_PATHS:
        assert get(emu, path[len("/api"):]).status_code == 200, path
    # header names are case-insensitive in HTTP; the value is compared exactly
    statuses = [requests.get(emu.url + "/api/version", headers=headers, timeout=5).status_code
                for headers in ({"APIKEY": API_KEY}, {"apiKey": API_KEY.upper()}, {"apiKey": API_KEY[:-1]},
                                {"Authorization": API_KEY})]
    assert statuses == [200, 401, 401, 401]
    assert counters(emu)["unauthorized"] == 3 * len(METHODS) + 3


def test_auth_off_requests_pass_without_key(open_emu):
    view = control(open_emu, "auth", method="GET")
    enabled, key_length = view["enabled"], len(view["api_key"])
    assert enabled is False and key_length == 12  # the first-boot key is still there
    for path in GET_PATHS:
        assert get(open_emu, path[len("/api"):], key=None).status_code == 200, path
    assert get(open_emu, "/version", key="wrong").status_code == 200  # a header is ignored
    assert form(open_emu, "/device/info", key=None, device_alias="INV1").status_code == 200
    # switched on (the web UI's Services -> API): the device's key applies
    control(open_emu, "auth", {"enabled": True})
    assert get(open_emu, "/version", key=None).status_code == 401
    status = requests.get(open_emu.url + "/api/version", headers={"apiKey": view["api_key"]}, timeout=5).status_code
    assert status == 200


def test_auth_control_changes_the_key(emu):
    view = control(emu, "auth", method="GET")
    enabled, same = view["enabled"], view["api_key"] == API_KEY
    assert enabled is True and same, "the control does not show the key given at start"
    control(emu, "auth", {"api_key": OTHER_KEY})
    assert get(emu, "/version").status_code == 401
    assert get(emu, "/version", key="other").status_code == 200
    control(emu, "auth", {"enabled": False})
    assert get(emu, "/version", key=None).status_code == 200
    control(emu, "reset")
    assert get(emu, "/version", key=None).status_code == 401 and get(emu, "/version").status_code == 200


# ---------------------------------------------------------------------------------------------
# Devices, tags, values: consistent with each other


def test_devices_and_device_info_agree(emu):
    listed = get(emu, "/devices").json()
    assert set(listed) == {"Devices"}
    aliases = [d["device_alias"] for d in listed["Devices"]]
    assert aliases == ["INV1", "MTR1", "RTU1", "SCADA"]  # MTR2 is disabled in the configuration
    for entry in listed["Devices"]:
        info = form(emu, "/device/info", device_alias=entry["device_alias"])
        assert info.status_code == 200 and info.json() == {"Devices": [entry]}
    assert listed["Devices"][0] == {"device_alias": "INV1", "name": "INV1", "protocol": "modbus rtu"}  # the example


def test_tags_and_values_agree(emu):
    every_tag = get(emu, "/tags").json()
    assert every_tag["total_signals"] == str(len(every_tag["signals"])) == "17"
    collected = []
    for alias in [d["device_alias"] for d in get(emu, "/devices").json()["Devices"]]:
        tags = form(emu, "/device/tags", device_alias=alias).json()
        assert tags["total_signals"] == str(len(tags["signals"]))
        for tag in tags["signals"]:
            assert set(tag) == {"signal_name", "source_device_alias", "input_topic", "output_topic", "signal_alias"}
            collected.append({"device_alias": alias, **tag})
            answer = form(emu, "/device/tag/value", device_alias=alias, signal_alias=tag["signal_alias"])
            assert answer.status_code == 200, (alias, tag["signal_alias"])
            body = answer.json()
            assert body["total_signals"] == "1" and len(body["signal_values"]) == 1
            (value,) = body["signal_values"]
            assert set(value) == {"signal_name", "value", "timestamp", "flags"}
            assert value["signal_name"] == tag["signal_name"] and value["flags"] == ""
            assert all(isinstance(v, str) for v in value.values())
            assert len(value["timestamp"]) == 13 and int(value["timestamp"]) <= time.time() * 1000
            assert time.time() * 1000 - int(value["timestamp"]) < 11_000  # the slowest poll: every 10 s
            float(value["value"])
    assert collected == every_tag["signals"]


def test_the_documents_example_tag(emu):
    tags = form(emu, "/device/tags", device_alias="INV1").json()
    assert tags["total_signals"] == "7"  # as in the document's example
    assert tags["signals"][0] == {"signal_name": "Active power", "source_device_alias": "",
                                  "input_topic": "tag/INV1/P/rin", "output_topic": "tag/INV1/P/out",
                                  "signal_alias": "P"}
    scada = form(emu, "/device/tags", device_alias="SCADA").json()["signals"]
    assert scada[0]["source_device_alias"] == "INV1" and scada[0]["input_topic"] == "tag/INV1/P/out"


def test_values_follow_the_clock():
    assert format_value(5.959, 3) == "5.9589999999999996"  # the document's example
    assert format_value(-0.0001, 3) == "0" and format_value(2, 0) == "2"
    day = 20_000 * 86400 - LOCAL  # local midnight of some day
    assert inverter_kw(day + 3 * 3600) == 0 and inverter_kw(day + 13 * 3600) > 7  # night, noon
    energies = [inverter_kwh(day + h * 1800) for h in range(48 * 3)]
    assert all(b >= a for a, b in zip(energies, energies[1:])) and energies[-1] - energies[0] > 100
    inv, mtr, scada = BY_ALIAS["INV1"], BY_ALIAS["MTR1"], BY_ALIAS["SCADA"]
    noon = day + 13 * 3600 + 0.5
    grid = float(tag_reading(mtr, mtr.tags[0], noon)[0])
    assert grid == pytest.approx(house_kw(poll_time(mtr, noon)) - inverter_kw(poll_time(mtr, noon)), abs=1e-3)
    assert grid < 0  # exporting at noon
    # forwarded tags show their source's value and timestamp
    assert tag_reading(scada, scada.tags[0], noon) == tag_reading(inv, inv.tags[0], noon)
    assert tag_reading(scada, scada.tags[1], noon) == tag_reading(mtr, mtr.tags[0], noon)
    # a poll time is never in the future and moves with the device's period
    for device in DEVICES:
        for now in (noon, noon + 0.3, noon + 7.7):
            assert now - device.period < poll_time(device, now) <= now
    value, stamp = tag_reading(inv, inv.tags[0], noon)
    later = tag_reading(inv, inv.tags[0], noon + 2.0)
    assert later[1] == stamp + 2000 and later[0] != value


def test_values_change_between_polls(emu):
    first = form(emu, "/device/tag/value", device_alias="MTR1", signal_alias="U").json()["signal_values"][0]
    time.sleep(1.05)  # MTR1 is polled every second
    second = form(emu, "/device/tag/value", device_alias="MTR1", signal_alias="U").json()["signal_values"][0]
    assert int(second["timestamp"]) > int(first["timestamp"])


@pytest.mark.parametrize("path, fields, message", [
    ("/device/info", {}, "Missing field device_alias"),
    ("/device/info", {"device_alias": ""}, "Missing field device_alias"),
    ("/device/info", {"device_alias": "INV9"}, "Unknown device_alias: INV9"),
    ("/device/info", {"device_alias": "inv1"}, "Unknown device_alias: inv1"),  # aliases are case-sensitive
    ("/device/info", {"device_alias": "MTR2"}, "Unknown device_alias: MTR2"),  # disabled in the configuration
    ("/device/info", {"alias": "INV1"}, "Missing field device_alias"),
    ("/device/tags", {}, "Missing field device_alias"),
    ("/device/tags", {"device_alias": "INV9"}, "Unknown device_alias: INV9"),
    ("/device/tag/value", {"device_alias": "INV1"}, "Missing field signal_alias"),
    ("/device/tag/value", {"signal_alias": "P"}, "Missing field device_alias"),
    ("/device/tag/value", {"device_alias": "INV9", "signal_alias": "P"}, "Unknown device_alias: INV9"),
    ("/device/tag/value", {"device_alias": "INV1", "signal_alias": "X"}, "Unknown signal_alias: X"),
    ("/device/tag/value", {"device_alias": "INV1", "signal_alias": "CB"}, "Unknown signal_alias: CB"),  # RTU1's
])
def test_missing_and_unknown_aliases_are_refused(emu, path, fields, message):
    response = form(emu, path, **fields) if fields else call(emu, "POST", path, files={"other": (None, "x")})
    assert_error(response, 400, message)


# ---------------------------------------------------------------------------------------------
# multipart/form-data


def test_fields_come_only_from_multipart_bodies(emu):
    assert_error(call(emu, "POST", "/device/info", data={"device_alias": "INV1"}), 400, "Missing field device_alias")
    assert_error(call(emu, "POST", "/device/info", json={"device_alias": "INV1"}), 400, "Missing field device_alias")
    assert_error(call(emu, "POST", "/device/info", params={"device_alias": "INV1"}), 400, "Missing field device_alias")
    assert_error(call(emu, "POST", "/device/info"), 400, "Missing field device_alias")
    # data= next to files= makes requests send the plain fields as multipart parts too
    both = call(emu, "POST", "/device/tag/value", data={"device_alias": "INV1", "signal_alias": "F"},
                files={"note": ("note.txt", b"x")})
    assert both.status_code == 200 and both.json()["signal_values"][0]["signal_name"] == "Frequency"
    # a field sent as a file part (with a filename and a Content-Type) still counts
    as_file = call(emu, "POST", "/device/info", files={"device_alias": ("alias.txt", b"RTU1", "text/plain")})
    assert as_file.json()["Devices"][0]["device_alias"] == "RTU1"


def test_hand_made_multipart_bodies(emu):
    def post(body: bytes, content_type: str):
        return call(emu, "POST", "/device/info", data=body, headers={"Content-Type": content_type})

    body = (b"preamble to ignore\r\n--b0undary\r\nContent-Disposition: form-data; name=\"device_alias\"\r\n\r\n"
            b"MTR1\r\n--b0undary\r\nContent-Disposition: form-data; name=\"device_alias\"\r\n\r\nINV1\r\n"
            b"--b0undary--\r\nepilogue")
    assert post(body, 'multipart/form-data; boundary="b0undary"').json()["Devices"][0]["device_alias"] == "MTR1"
    assert post(body, "multipart/form-data; boundary=b0undary").status_code == 200
    assert_error(post(body, "multipart/form-data; boundary=other"), 400, "Malformed multipart/form-data body")
    assert_error(post(body, "multipart/form-data"), 400, "Malformed multipart/form-data body")
    assert_error(post(body[:-30], "multipart/form-data; boundary=b0undary"), 400, "Malformed multipart/form-data body")
    assert_error(post(body, "multipart/mixed; boundary=b0undary"), 400, "Missing field device_alias")


# ---------------------------------------------------------------------------------------------
# Disabled endpoints


def test_disabled_at_start_and_by_control():
    with start(disabled=("/api/sysupgrade",)) as emu:
        assert control(emu, "disabled", method="GET") == {"disabled": ["/api/sysupgrade"]}
        response = upload(emu, "/sysupgrade", build_image())
        assert_error(response, 404, "Not found")
        assert counters(emu)["upgradesStarted"] == 0
        assert upload(emu, "/sysupgrade", build_image(), key=None).status_code == 401  # auth first
        assert get(emu, "/version").status_code == 200
        control(emu, "disabled", {"disabled": []})
        assert upload(emu, "/sysupgrade", build_image()).json() == {"message": "Upgrade started"}
        control(emu, "reset")
        assert control(emu, "disabled", method="GET") == {"disabled": ["/api/sysupgrade"]}


def test_every_endpoint_can_be_disabled(emu):
    control(emu, "disabled", {"disabled": list(METHODS)})
    for path, method in METHODS.items():
        kw = {"files": {"device_alias": (None, "INV1"), "signal_alias": (None, "P"),
                        "file": ("f", build_image())}} if method == "POST" else {}
        response = call(emu, method, path[len("/api"):], **kw)
        assert_error(response, 404, "Not found")  # no 2xx, no data
    assert counters(emu)["upgradesStarted"] == counters(emu)["syncUploads"] == 0


# ---------------------------------------------------------------------------------------------
# Firmware upgrade and configuration upload


def test_image_helpers():
    image = build_image(b"kernel" * 100)
    assert image_is_valid(image) and image_is_valid(build_image())
    assert not image_is_valid(image[:-1])  # truncated data
    assert not image_is_valid(image[:40])  # truncated header
    assert not image_is_valid(image[:-1] + bytes([image[-1] ^ 1]))  # data CRC
    assert not image_is_valid(image[:40] + b"X" + image[41:])  # header CRC (the name)
    assert not image_is_valid(b"\x00" * 4 + image[4:])  # magic
    assert workbook_sheets(build_workbook(("Devices", "Signals & more"))) == ["Devices", "Signals & more"]
    assert workbook_sheets(b"PK\x03\x04 broken") is None and workbook_sheets(b"") is None


def test_sysupgrade_outcomes(emu):
    assert upload(emu, "/sysupgrade", build_image(), "1.8.4-rtu.sysupgrade").json() == {"message": "Upgrade started"}
    assert upload(emu, "/sysupgrade", build_image(), "any-name.bin").status_code == 200  # the name does not matter
    for bad in (b"garbage", build_image()[:-1], b"\x27\x05\x19\x56" + b"\x00" * 100):
        response = upload(emu, "/sysupgrade", bad)
        assert response.status_code == 400 and response.json() == {"message": "Failed to validate image"}
    for response in (upload(emu, "/sysupgrade", b""), call(emu, "POST", "/sysupgrade"),
                     form(emu, "/sysupgrade", other="x"),
                     call(emu, "POST", "/sysupgrade", data=build_image(),
                          headers={"Content-Type": "application/octet-stream"}),
                     call(emu, "POST", "/sysupgrade", data=b"--x\r\n",
                          headers={"Content-Type": "multipart/form-data; boundary=x"})):
        assert response.status_code == 400 and response.json() == {"message": "Failed to begin upgrade"}
    assert counters(emu)["upgradesStarted"] == 2 and counters(emu)["upgradesRefused"] == 8
    assert get(emu, "/systemInfo").json()["firmware_version"] == FIRMWARE  # the emulated upgrade is harmless


def test_sync_outcomes(emu):
    response = upload(emu, "/sync", build_workbook(("Devices", "Signals")), "config.xlsx")
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/plain"
    assert "excel-utility: sheets: Devices, Signals" in response.text
    assert_error(upload(emu, "/sync", b"device_alias;name\nINV1;INV1\n", "config.csv"), 400,
                 "excel-utility: config.csv is not an Excel workbook (.xlsx)")
    assert_error(upload(emu, "/sync", b""), 400, "Missing file")
    assert_error(call(emu, "POST", "/sync"), 400, "Missing file")
    assert counters(emu)["syncUploads"] == 1 and counters(emu)["syncRefused"] == 3
    assert len(get(emu, "/tags").json()["signals"]) == 17  # the rows are not applied


# ---------------------------------------------------------------------------------------------
# Controls


def test_controls_validate_their_payloads(emu):
    for name, payload in [("disabled", {"disabled": ["/api/nope"]}), ("disabled", ["/api/sync"]),
                          ("disabled", {"disabled": "/api/sync"}), ("auth", {"enabled": "yes"}),
                          ("auth", {"api_key": "short"}), ("auth", {}), ("auth", {"key": "x" * 12}),
                          ("devices_key", {"key": "DEVICES"}), ("devices_key", None)]:
        response = requests.post(f"{emu.url}/__emulator__/{name}", json=payload, timeout=5)
        assert response.status_code == 400, (name, payload)
    assert requests.get(f"{emu.url}/__emulator__/nope", timeout=5).status_code == 404


def test_devices_key_shows_the_older_page(emu):
    assert control(emu, "devices_key", {"key": "devices"}) == {"key": "devices"}
    assert set(get(emu, "/devices").json()) == {"devices"}
    assert form(emu, "/device/info", device_alias="INV1").json() == {
        "devices": [{"device_alias": "INV1", "name": "INV1", "protocol": "modbus rtu"}]}
    control(emu, "reset")
    assert set(get(emu, "/devices").json()) == {"Devices"}


def test_counters_and_reset(emu):
    get(emu, "/version")
    get(emu, "/version", key=None)
    assert counters(emu)["requests"] == 2 and counters(emu)["unauthorized"] == 1
    control(emu, "reset")
    assert counters(emu) == {"requests": 0, "unauthorized": 0, "upgradesStarted": 0, "upgradesRefused": 0,
                             "syncUploads": 0, "syncRefused": 0, "restarts": 0}


# ---------------------------------------------------------------------------------------------
# Faults: each one changes its probe's answer, and no other probe's


def tag_value(emu, device="INV1", signal="P") -> dict:
    return form(emu, "/device/tag/value", device_alias=device, signal_alias=signal).json()


def probe_auth_off(emu):
    control(emu, "auth", {"enabled": False})
    return get(emu, "/version", key=None).status_code


def probe_disabled(emu):
    control(emu, "disabled", {"disabled": ["/api/version"]})
    return get(emu, "/version").status_code


def probe_other_401_body(emu):
    answers = [get(emu, "/version", key=None), get(emu, "/version", key="wrong")]
    return any(r.status_code == 401 and (r.headers.get("Content-Type"), r.content)
               != ("application/json", b'{"error":"Unauthorized access."}') for r in answers)


def probe_ghost_devices(emu):
    aliases = [d["device_alias"] for d in objects_with(get(emu, "/devices").json(), "device_alias")]
    return [a for a in aliases if form(emu, "/device/info", device_alias=a).status_code != 200]


def probe_ghost_tags(emu):
    unreadable = []
    for device in objects_with(get(emu, "/devices").json(), "device_alias"):
        tags = form(emu, "/device/tags", device_alias=device["device_alias"])
        for tag in objects_with(tags.json(), "signal_alias") if tags.status_code == 200 else []:
            answer = form(emu, "/device/tag/value", device_alias=device["device_alias"],
                          signal_alias=tag["signal_alias"])
            if answer.status_code != 200:
                unreadable.append((device["device_alias"], tag["signal_alias"]))
    return unreadable


PROBES = {
    "missing_key_accepted": (lambda e: get(e, "/version", key=None).status_code == 200, False, True),
    "wrong_key_accepted": (lambda e: get(e, "/version", key="wrong").status_code == 200, False, True),
    "unauthorized_403": (lambda e: 403 in (get(e, "/version", key=None).status_code,
                                           get(e, "/version", key="wrong").status_code), False, True),
    "unauthorized_other_body": (probe_other_401_body, False, True),
    "auth_always_on": (probe_auth_off, 200, 401),
    "disabled_still_serves": (probe_disabled, 404, 200),
    "numeric_value": (lambda e: type(tag_value(e)["signal_values"][0]["value"]).__name__, "str", "float"),
    "flags_null": (lambda e: tag_value(e)["signal_values"][0]["flags"], "", None),
    "total_signals_number": (lambda e: form(e, "/device/tags", device_alias="INV1").json()["total_signals"], "7", 7),
    "timestamp_seconds": (lambda e: len(tag_value(e)["signal_values"][0]["timestamp"]), 13, 10),
    "ghost_device": (probe_ghost_devices, [], ["MTR2"]),
    "ghost_tag": (probe_ghost_tags, [], [("SCADA", "INV1_P"), ("SCADA", "GRID_P")]),
    "unknown_alias_empty_200": (lambda e: form(e, "/device/tags", device_alias="INV9").status_code, 400, 200),
    "missing_alias_all_devices": (lambda e: call(e, "POST", "/device/info").status_code, 400, 200),
    "signal_alias_ignored": (lambda e: len(tag_value(e)["signal_values"]), 1, 7),
    "bad_image_started": (lambda e: upload(e, "/sysupgrade", b"garbage").json()["message"],
                          "Failed to validate image", "Upgrade started"),
    "no_file_wrong_message": (lambda e: call(e, "POST", "/sysupgrade").json()["message"],
                              "Failed to begin upgrade", "Failed to validate image"),
    "upload_reads_raw_body": (lambda e: upload(e, "/sysupgrade", build_image()).json()["message"],
                              "Upgrade started", "Failed to validate image"),
}


def test_probe_table_covers_every_fault():
    # The near-miss-credential faults are probed in test_near_miss.py (conformlab.near_miss).
    assert set(PROBES) == set(FAULTS) - set(NEAR_MISS_FAULTS)


@pytest.mark.parametrize("fault", [None, *sorted(FAULTS)])
def test_fault_changes_its_behaviour_and_only_it(fault):
    with start(faults=[fault] if fault else []) as emu:
        assert requests.get(emu.url + "/__emulator__/", timeout=5).json()["faults"] == ([fault] if fault else [])
        for name, (probe, clean, faulty) in PROBES.items():
            control(emu, "reset")
            assert probe(emu) == (faulty if name == fault else clean), f"fault {fault}, probe {name}"


def test_raw_body_fault_takes_a_raw_image():
    with start(faults=["upload_reads_raw_body"]) as emu:
        raw = call(emu, "POST", "/sysupgrade", data=build_image(), headers={"Content-Type": "application/octet-stream"})
        assert raw.json() == {"message": "Upgrade started"}
        assert counters(emu)["upgradesStarted"] == 1


def test_uptime_grows(emu):
    first = int(get(emu, "/systemInfo").json()["uptime"])
    assert math.isclose(first, 3 * 86400 + 7 * 3600 + 12 * 60 + 9, abs_tol=5)


# ---------------------------------------------------------------------------------------------
# Restart after a started upgrade: the answer first, then off the network while it boots


def _answers(emu) -> bool:
    try:
        requests.get(emu.url + "/api/version", headers=_headers("good"), timeout=1)
        return True
    except requests.RequestException:
        return False


def test_started_upgrade_restarts_with_an_outage():
    with start(disabled=("/api/syslog",), restart_delay=0.5, boot_seconds=1.0) as emu:
        control(emu, "auth", {"api_key": OTHER_KEY})  # a key changed in the web UI (uci): survives
        control(emu, "auth", {"api_key": API_KEY})
        before = int(get(emu, "/systemInfo").json()["uptime"])
        assert upload(emu, "/sysupgrade", build_image()).json() == {"message": "Upgrade started"}
        assert get(emu, "/version").status_code == 200  # the answer goes out first; still up
        started = time.monotonic()
        while _answers(emu):
            assert time.monotonic() - started < 3, "the gateway did not go down after the upgrade"
            time.sleep(0.05)
        down_at = time.monotonic()
        assert emu.emulator.down and emu.emulator.restarts == 0
        with pytest.raises(requests.RequestException):  # off the network while it boots
            requests.get(emu.url + "/api/version", timeout=1)
        while not _answers(emu):
            assert time.monotonic() - down_at < 5, "the gateway did not come back"
            time.sleep(0.05)
        assert time.monotonic() - down_at >= 0.8  # boot_seconds
        assert emu.emulator.restarts == 1 and counters(emu)["restarts"] == 1
        # What survives (the uci configuration) and what starts again.
        assert get(emu, "/version", key=None).status_code == 401 and get(emu, "/version").status_code == 200
        assert control(emu, "disabled", method="GET") == {"disabled": ["/api/syslog"]}
        uptime = int(get(emu, "/systemInfo").json()["uptime"])
        assert uptime < 60 < before  # the kernel booted ~35 s before the API answers
        control(emu, "disabled", {"disabled": []})
        log = get(emu, "/syslog").text
        assert "upgrade started" not in log and "Linux version" in log  # the RAM log starts again
        assert "T1 timeout" not in log  # lines of later hours have not happened yet
        assert get(emu, "/systemInfo").json()["firmware_version"] == FIRMWARE


def test_refused_upgrade_and_sync_do_not_restart():
    with start(restart_delay=0.2, boot_seconds=0.5) as emu:
        assert upload(emu, "/sysupgrade", b"garbage").status_code == 400
        assert call(emu, "POST", "/sysupgrade").status_code == 400
        assert upload(emu, "/sync", build_workbook(), "config.xlsx").status_code == 200  # the service restarts
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert _answers(emu)
            time.sleep(0.05)
        assert emu.emulator.restarts == 0 and counters(emu)["restarts"] == 0


def test_restart_counter_is_reset_and_the_delay_is_one_second():
    emulator = WccLiteEmulator()
    assert emulator.upgrade_restart_delay == 1.0  # the page gives no delay
    assert emulator.counters["restarts"] == 0


# ---------------------------------------------------------------------------------------------
# The alternative reading: every silent choice made the other way a conforming gateway may


@pytest.fixture
def alt():
    with start(reading="alternative", disabled=("/api/syslog",)) as running:
        yield running


def test_alternative_reading_switch():
    assert WccLiteEmulator().alternative is False
    with start(reading="alternative") as emu:
        assert emu.emulator.alternative is True


def test_alternative_401_is_text_plain_with_the_documents_body(alt):
    response = get(alt, "/version", key=None)
    assert response.status_code == 401 and response.headers["Content-Type"].startswith("text/plain")
    assert response.json() == UNAUTHORIZED


def test_alternative_disabled_endpoint_answers_200_without_data(alt):
    response = get(alt, "/syslog")
    assert response.status_code == 200 and response.json() == {"error": "API endpoint is disabled"}


def test_alternative_unknown_or_missing_alias_answers_an_empty_200(alt):
    for response, empty in (
            (form(alt, "/device/info", device_alias="INV9"), {"devices": []}),
            (call(alt, "POST", "/device/info"), {"devices": []}),
            (form(alt, "/device/tags", device_alias="INV9"), {"total_signals": "0", "signals": []}),
            (form(alt, "/device/tag/value", device_alias="INV1"), {"total_signals": "0", "signal_values": []}),
            (form(alt, "/device/tag/value", device_alias="INV1", signal_alias="NOPE"),
             {"total_signals": "0", "signal_values": []})):
        assert response.status_code == 200 and response.json() == empty


def test_alternative_device_lists(alt):
    listed = get(alt, "/devices").json()
    assert isinstance(listed, list) and [d["device_alias"] for d in listed] == ["INV1", "MTR1", "RTU1", "SCADA"]
    assert form(alt, "/device/info", device_alias="INV1").json() == {
        "devices": [{"device_alias": "INV1", "name": "INV1", "protocol": "modbus rtu"}]}  # the older page
    tags = get(alt, "/tags").json()
    assert isinstance(tags, list) and len(tags) == 17
    control(alt, "devices_key", {"key": "Devices"})  # the control still sets the spelling
    assert "Devices" in form(alt, "/device/info", device_alias="INV1").json()


def test_alternative_upgrade_failures_answer_200_with_the_documents_messages(alt):
    for response, message in ((upload(alt, "/sysupgrade", b"garbage"), "Failed to validate image"),
                              (call(alt, "POST", "/sysupgrade"), "Failed to validate image")):
        assert response.status_code == 200 and response.json() == {"message": message}
    assert upload(alt, "/sysupgrade", build_image()).json() == {"message": "Upgrade started"}
    assert counters(alt)["upgradesStarted"] == 1 and counters(alt)["upgradesRefused"] == 2


def test_alternative_sync_answers_json_output(alt):
    response = upload(alt, "/sync", build_workbook(), "config.xlsx")
    assert response.status_code == 200 and "configuration generated" in response.json()["output"]
    response = upload(alt, "/sync", b"not a workbook", "config.csv")
    assert response.status_code == 200 and "is not an Excel workbook" in response.json()["output"]
    assert counters(alt)["syncUploads"] == 1 and counters(alt)["syncRefused"] == 1


def test_default_reading_is_unchanged_by_the_switch(emu):
    assert get(emu, "/version", key=None).headers["Content-Type"] == "application/json"
    assert "Devices" in get(emu, "/devices").json()
    assert form(emu, "/device/tags", device_alias="INV9").status_code == 400
