"""What the WCC Lite checks share: operations (from the schema) minus the target's disabled
endpoints, requests with multipart/form-data fields, the aliases the gateway has configured, and the
line between what the document says (a FAIL) and what is only this project's reading (a NOTICE on any
device but the bundled emulator in its default reading, see DeviceUnderTest.reading).

Endpoints the target names in `disabled_endpoints` are checked only for "no data"; every other
check is parametrized over the enabled ones (the schema's operations, so a new one is covered).

What the page leaves open, and the suites therefore only read (never fail a device for): the HTTP
status of an answer (the page gives bodies, never statuses: 200 for data, 4xx for a refusal is the
reading), the Content-Type of an answer, what a disabled endpoint answers (NOTES.md: neither revision
says), the shape of the answers the page does not show (/devices, /tags, ...), `Devices` vs
`devices` (NOTES.md: the revisions disagree; a CONFLICT entry says which one the gateway follows)."""

from __future__ import annotations

import copy

import requests

from conformlab.checks import answer
from conformlab.dut import DeviceUnderTest
from conformlab.schema import Operation, device_schema
from conformlab.verdicts import not_applicable

SCHEMA = device_schema("wcc-lite")
OPS = SCHEMA.operations
PREFIX = "/api"
# A file no gateway takes as a firmware image or a configuration workbook.
NOT_AN_IMAGE = ("conformlab.bin", b"conformlab: this is not a firmware image")
NOT_A_WORKBOOK = ("conformlab.xlsx", b"conformlab: this is not an Excel workbook")
# Keys of an answer that say what happened rather than carry data.
OUTCOME_KEYS = ("error", "message", "status", "code", "success")


def disabled(device: DeviceUnderTest, op: Operation) -> bool:
    return PREFIX + op.path in device.target.options.get("disabled_endpoints", [])


def unavailable(device: DeviceUnderTest, op: Operation) -> str | None:
    """Why the gateway lacks `op` (its checks are then not applicable), or None: disabled on the
    target, or newer than its firmware ("Endpoints accepting files / field data (requires WCC Lite
    firmware version 1.8 or newer)"). The gateway reports no firmware version: the target's `firmware`
    key says it; without it the endpoints of the table are judged as there. The rule is recorded."""
    if disabled(device, op):
        return f"{PREFIX}{op.path} is disabled on {device.target.name} (disabled_endpoints)"
    since = op.since_firmware
    if since is None:
        return None
    newer = device.firmware.at_least(since)
    rule = f"the endpoints that take files or field data require firmware {since} or newer: "
    if newer is False:
        device.firmware_rule(rule + "not on this firmware")
        return (f"{PREFIX}{op.path} requires WCC Lite firmware version {since} or newer (the document's table); "
                f"{device.firmware.describe()}")
    device.firmware_rule(rule + ("this firmware has them" if newer else
                                 "judged as there (set `firmware` in the target for an older gateway)"))
    return None


def require_enabled(device: DeviceUnderTest, op: Operation) -> None:
    reason = unavailable(device, op)
    if reason:
        not_applicable(reason)


def call(device: DeviceUnderTest, op: Operation, fields: dict | None = None, **kw):
    """Send `op`; its fields (and files) as multipart/form-data, as the document says."""
    if op.method == "GET":
        return device.client.get(op.path, **kw)
    return device.client.request(op.method, op.path, multipart=fields or {}, **kw)


# -- answers: what the document says, and what only the reading says -----------------------------


def served(device: DeviceUnderTest, response, what: str) -> None:
    """A request the gateway serves: a 2xx answer (it served the data), 200 by this project's reading
    (the page gives no statuses)."""
    assert 200 <= response.status_code < 300, f"{what}: {answer(response)}"
    device.reading(response.status_code == 200,
                   f"{what}: answered {response.status_code}; the reading expects 200 (the page gives no statuses)")


def json_body(device: DeviceUnderTest, response, what: str):
    """The JSON of a served answer ("Response body example (json format)"); that it is labelled
    application/json is only the reading (the page names no media type)."""
    served(device, response, what)
    ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    device.reading(ctype == "application/json",
                   f"{what}: Content-Type {ctype or '(none)'!r}; the reading expects application/json")
    try:
        return response.json()
    except ValueError:
        raise AssertionError(f"{what}: the answer is not JSON (the page shows JSON answers): {answer(response)}") from None


def as_status(response, status: int):
    """A copy of `response` with another status (to judge a body by the schema of a 200 answer when a
    device served it with another 2xx, which the page does not rule out)."""
    other = copy.copy(response)
    other.status_code = status
    return other


def with_alias(value, key: str) -> list[dict]:
    """Every object in an answer that has `key` (the schema's x-conformlab `fields` rule: the answer
    of the source operation holds objects with a key named like the field), wherever they stand."""
    found = []
    if isinstance(value, dict):
        if isinstance(value.get(key), str):
            found.append(value)
        for item in value.values():
            if isinstance(item, (dict, list)):
                found += with_alias(item, key)
    elif isinstance(value, list):
        for item in value:
            found += with_alias(item, key)
    return found


def device_list(body) -> list[dict]:
    """The devices of a /devices or /device/info answer: under `Devices` (the current page), `devices`
    (the older revision, NOTES.md), or wherever objects with a device_alias stand (the page does not
    show /devices)."""
    if isinstance(body, dict):
        for key in ("Devices", "devices"):
            if isinstance(body.get(key), list):
                return [d for d in body[key] if isinstance(d, dict)]
    return with_alias(body, "device_alias")


def devices_key(body) -> str | None:
    """Which spelling of the device list's key an answer uses: `Devices` (the current page), `devices`
    (the older revision, NOTES.md: the revisions disagree, so either is one of the document's readings)."""
    if isinstance(body, dict):
        return next((key for key in ("Devices", "devices") if isinstance(body.get(key), list)), None)
    return None


def devices(device: DeviceUnderTest) -> list[dict]:
    """The configured devices (GET /devices)."""
    op = SCHEMA.operation("GET", "/devices")
    require_enabled(device, op)
    listed = device_list(json_body(device, call(device, op), "GET /api/devices (List of configured devices)"))
    return [d for d in listed if isinstance(d.get("device_alias"), str)]


def tags_of(device: DeviceUnderTest, alias: str) -> list[dict]:
    op = SCHEMA.operation("POST", "/device/tags")
    require_enabled(device, op)
    body = json_body(device, call(device, op, {"device_alias": alias}), f"POST /api/device/tags for {alias}")
    signals = body.get("signals") if isinstance(body, dict) else None
    assert isinstance(signals, list), f"/api/device/tags for {alias}: no list under \"signals\" (the page's example): {body}"
    return [s for s in signals if isinstance(s, dict) and isinstance(s.get("signal_alias"), str)]


def first_tag(device: DeviceUnderTest) -> tuple[str, str]:
    for entry in devices(device):
        tags = tags_of(device, entry["device_alias"])
        if tags:
            return entry["device_alias"], tags[0]["signal_alias"]
    not_applicable("the gateway has no configured device with tags")


def valid_fields(device: DeviceUnderTest, op: Operation) -> dict:
    """Fields that name configured things (real aliases), or for uploads a file the gateway refuses."""
    if op.path == "/sysupgrade":
        return {"file": NOT_AN_IMAGE}
    if op.path == "/sync":
        return {"file": NOT_A_WORKBOOK}
    names = set((op.extension.get("fields") or {}))
    if not names:
        return {}
    alias, signal = first_tag(device)
    return {name: value for name, value in (("device_alias", alias), ("signal_alias", signal)) if name in names}


# -- refusals ----------------------------------------------------------------------------------


def _data(value, key: str = "") -> bool:
    """Does a JSON answer carry data (anything but what says what happened, empty lists, zero counts)?"""
    if isinstance(value, dict):
        return any(_data(item, name) for name, item in value.items() if name.lower() not in OUTCOME_KEYS)
    if isinstance(value, list):
        return bool(value)
    if value in (None, ""):
        return False
    return not (key.lower().startswith("total") and str(value) == "0")


def carries_data(response: requests.Response) -> bool:
    """Does the answer carry data? A JSON answer: see _data. Any other answer: a 2xx with a body
    (a text answer such as the syslog); an error page of another status is no data."""
    try:
        body = response.json()
    except ValueError:
        return 200 <= response.status_code < 300 and bool(response.content.strip())
    return _data(body)


def assert_refused_without_data(device: DeviceUnderTest, response, why: str, status_reading: str) -> None:
    """A refusal: no data (what the document's sentence says); a non-2xx status (4xx with
    `status_reading` = "4xx") only by this project's reading."""
    assert not carries_data(response), f"{why}: the answer carries data: {answer(response)}"
    if status_reading == "4xx":
        ok = 400 <= response.status_code < 500
    else:
        ok = not 200 <= response.status_code < 300
    device.reading(ok, f"{why}: answered {response.status_code} without data; the reading expects "
                       f"{'a 4xx refusal' if status_reading == '4xx' else 'no 2xx status'}: {answer(response)}")


def non_strings(value, where: str = "") -> list[str]:
    """Where a JSON answer holds a value that is not a string (NOTES.md: all values are strings)."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in non_strings(item, f"{where}/{key}")]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in non_strings(item, f"{where}/{i}")]
    return [] if isinstance(value, str) else [f"{where or '(body)'}: {value!r}"]
