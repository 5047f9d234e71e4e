"""What the EVSE checks share: the operation lists (from the schema), request builders, assertions.

Everything endpoint-related is derived from schemas/esp32-evse.yaml, so a new operation there gets
its auth, convention and answer checks without touching the suites.
"""

from __future__ import annotations

import contextlib
import copy
import time

import pytest

from conformlab.client import JSON
from conformlab.dut import DeviceUnderTest
from conformlab.schema import Operation, device_schema

SCHEMA = device_schema("esp32-evse")
OPS = SCHEMA.operations
READS = [op for op in OPS if op.method == "GET"]
WRITES = [op for op in OPS if op.is_write]
JSON_WRITES = [op for op in WRITES if op.body_kind == "json"]


def _body_type(op: Operation) -> str | None:
    schema = SCHEMA.resolve(op.request_schema)
    return schema.get("type") if isinstance(schema, dict) else None


# "Object endpoints apply only the keys present": the config blocks and POST /state.
OBJECT_WRITES = [op for op in JSON_WRITES if _body_type(op) == "object" and op.reads and not op.field and not op.path_parameters]
SCALAR_WRITES = [op for op in JSON_WRITES if op.field or _body_type(op) in ("boolean", "number", "integer", "string")]

# New values for the keys the write checks change: two valid, harmless values each, so that one of
# them differs from whatever the device holds. Keys are the documented field names. Live-state
# values are only ever written while no vehicle is connected (see restoring()).
NEW_VALUES = {
    "temperatureThreshold": (55, 65),
    "staticDns": ("192.0.2.53", "192.0.2.54"),
    "instanceName": ("EVSE conformance", "EVSE check"),
    "unitId": (7, 8),
    "autoReload": (False, True),
    "ntpServer": ("time.example.org", "pool.example.org"),
    "chargingCurrent": (7.5, 6.5, 6),  # "0.1 A resolution"; only values up to the board's ceiling are used
    "enabled": (False, True),
    "available": (False, True),
    "consumptionLimit": (1000000, 2000000),
    "chargingTimeLimit": (3600, 7200),
    "underPowerLimit": (100, 200),
}
# The key each object write changes in the partial-write check.
PARTIAL_KEY = {
    "/config/evse": "temperatureThreshold",
    "/config/wifi": "staticDns",
    "/config/discovery": "instanceName",
    "/config/modbus": "unitId",
    "/config/script": "autoReload",
    "/config/scheduler": "ntpServer",
    "/state": "chargingCurrent",
}


def other_value(key: str, current, device: DeviceUnderTest | None = None):
    """A valid value for `key` that differs from `current`."""
    values = NEW_VALUES[key]
    if key == "chargingCurrent":
        assert device is not None
        ceiling = device.read("/config/evse")["maxChargingCurrent"]
        values = [v for v in values if v <= ceiling]
    for value in values:
        if value != current:
            return value
    pytest.skip(f"no second valid value for {key} on this device")


def ids(ops) -> list[str]:
    return [str(op) for op in ops]


# -- requests -------------------------------------------------------------------------------------


def resolve_path(device: DeviceUnderTest, op: Operation) -> str:
    """The operation's path with real values for its parameters (e.g. an existing component id)."""
    path = op.path
    for param in op.path_parameters:
        source = param.get("x-conformlab", {})
        if source.get("from"):
            value = device.read(source["from"])
            for part in source.get("pointer", "").strip("/").split("/"):
                if part == "":
                    continue
                try:
                    value = value[int(part)] if isinstance(value, list) else value[part]
                except (IndexError, KeyError, TypeError):
                    pytest.skip(f"{op}: the device has nothing at {source['from']}{source.get('pointer', '')}")
        else:
            value = param.get("example")
        path = path.replace("{" + param["name"] + "}", str(value))
    return path


def current_body(device: DeviceUnderTest, op: Operation):
    """A body that writes back what the device already holds (harmless on any device)."""
    value = device.read(resolve_path(device, op) if op.reads == op.path else op.reads)
    if op.field:
        return value[op.field]
    return device.writable(op, value)


def read_effect(device: DeviceUnderTest, op: Operation):
    """What the write's `reads` answer holds now: JSON, or (status, text) for text reads such as
    /log/panic; None when the effect is not readable."""
    if not op.reads:
        return None
    if op.reads == "/time":
        return ClockReading(device.read("/time"))
    response = device.client.get(reads_path(device, op))
    if response.headers.get("Content-Type", "").startswith(JSON) and response.status_code == 200:
        value = response.json()
        return value.get(op.field) if op.field and isinstance(value, dict) else value
    return (response.status_code, response.text)


class ClockReading:
    """A reading of the device clock; two readings are equal when the clock only ticked between them."""

    def __init__(self, value):
        self.value, self.taken = value, time.monotonic()

    def __eq__(self, other):
        return isinstance(other, ClockReading) and abs((other.value - self.value) - (other.taken - self.taken)) <= CLOCK_TOLERANCE

    def __repr__(self):
        return f"clock {self.value}"


def reads_path(device: DeviceUnderTest, op: Operation) -> str:
    return resolve_path(device, op) if op.reads == op.path else op.reads


# IEC 61851 states with no vehicle connected: A (none), E (error), F (out of service).
NO_VEHICLE_STATES = {"A", "E", "F"}


def require_no_vehicle(device: DeviceUnderTest, why: str) -> None:
    """Live charging values are changed only while no vehicle is connected: a session that is
    stopped or limited by a check cannot be given back by restoring the value."""
    if device.emulator:
        return
    state = device.read("/state")
    if state.get("state") not in NO_VEHICLE_STATES or state.get("pendingAuth"):
        pytest.skip(f"a vehicle is connected (state {state.get('state')}); {why} could end or change its session")


@contextlib.contextmanager
def restoring(device: DeviceUnderTest, op: Operation):
    """Put back the run's snapshot paths and whatever this operation writes, after the block.

    A write of live state (reads /state) runs only while no vehicle is connected."""
    if op.reads == "/state":
        require_no_vehicle(device, str(op))
    paths = list(device.profile.snapshot_paths)
    if op.reads and op.reads not in paths and op.reads != "/time" and SCHEMA.has("POST", op.reads):
        paths.append(reads_path(device, op))
    with device.preserved(*paths), clock_kept(device, op):
        yield


@contextlib.contextmanager
def clock_kept(device: DeviceUnderTest, op: Operation):
    """A write to /time (wanted or not) is undone: the clock is set to where it would be now."""
    if op.reads != "/time":
        yield
        return
    device_time, started = device.read("/time"), time.monotonic()
    try:
        yield
    finally:
        expected = device_time + (time.monotonic() - started)
        if abs(device.read("/time") - expected) > CLOCK_TOLERANCE:
            assert_ok(device.client.post("/time", json=round(expected)))


CLOCK_TOLERANCE = 5  # seconds


def effective_body(op: Operation, device: DeviceUnderTest | None = None):
    """A valid body that changes the device when applied: the schema's example.

    For /credentials it is the target's own credentials instead, so that a device that wrongly
    accepts the request is not re-keyed.
    """
    if op.path == "/credentials" and device is not None:
        auth = device.target.auth
        return {"user": auth.get("username", ""), "password": auth.get("password", "")}
    assert op.example is not None, f"{op}: the schema gives no request example"
    return copy.deepcopy(op.example)


# The body of a probe of an upload: not an image (uploads run only where destructive steps are allowed).
INERT_BINARY = b"conformlab: this is not a firmware image"


def send(device: DeviceUnderTest, op: Operation, *, body=None, path=None, **kw):
    """Send the operation with a JSON or raw body as its schema says."""
    path = path or resolve_path(device, op)
    if op.body_kind == "json" and body is not None:
        return device.client.request(op.method, path, json=body, **kw)
    if op.body_kind == "binary" and body is not None:
        return device.client.request(op.method, path, body=body, content_type="application/octet-stream", **kw)
    return device.client.request(op.method, path, **kw)


def harmless_request(device, op):
    """Send `op` so that the device ends as it was: same values back, refused bodies for the rest.

    Returns (response, expect): expect is the status a conforming device answers, or None where the
    document only promises "accepted" (not 401) - uploads of a junk image, which must fail later.
    """
    if op.path == "/credentials":
        return send(device, op, body=effective_body(op, device)), 200
    if op.body_kind == "binary":
        return send(device, op, body=INERT_BINARY), None
    if op.body_kind == "json":
        return send(device, op, body=current_body(device, op)), 200
    return send(device, op), None if op.method == "GET" else 200


# -- assertions -----------------------------------------------------------------------------------


def answer(response) -> str:
    text = response.text[:160].replace("\n", " ")
    return f"{response.request.method} {response.request.path_url} -> {response.status_code} {response.headers.get('Content-Type', '')!r} {text!r}"


def assert_ok(response) -> None:
    """A successful write: 200 with the plain-text body OK (EVSE-CONV-OK)."""
    assert response.status_code == 200, f"expected 200 OK: {answer(response)}"
    ctype = response.headers.get("Content-Type", "").split(";")[0].strip()
    assert ctype == "text/plain", f"a successful write answers plain text, got Content-Type {ctype!r}: {answer(response)}"
    assert response.text.strip() == "OK", f"a successful write answers the body OK: {answer(response)}"


def assert_unchanged(before, after, what: str) -> None:
    if before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        diff = {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}
        raise AssertionError(f"{what}: the device changed although the request was refused: {diff}")
    raise AssertionError(f"{what}: the device changed although the request was refused: {before!r} -> {after!r}")


def assert_refused(device: DeviceUnderTest, op: Operation, status: int, why: str, request):
    """Send `request()`; the device must answer `status` and the write's effect must be unchanged.

    Whatever the request changed anyway is put back afterwards."""
    before = read_effect(device, op)
    with restoring(device, op):
        response = request()
        after = read_effect(device, op)
    assert response.status_code == status, f"{why}: expected {status}, got {answer(response)}"
    assert_unchanged(before, after, str(op))
    return response
