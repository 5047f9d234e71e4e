"""What the EVSE checks share: the operation lists (from the schema), request builders, assertions.

Everything endpoint-related is derived from schemas/esp32-evse.yaml, so a new operation there gets
its auth, convention and answer checks without touching the suites.
"""

from __future__ import annotations

import contextlib
import copy
import time

from conformlab.checks import DeviceChecks, answer, current_body, send
from conformlab.dut import DeviceUnderTest
from conformlab.schema import Operation, device_schema
from conformlab.verdicts import not_applicable, not_verified

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
    not_applicable(f"no second valid value for {key} on this device")


# -- EVSE policy for writes: no live-state changes with a vehicle connected; the clock moves ------

# IEC 61851 states with no vehicle connected: A (none), E (error), F (out of service).
NO_VEHICLE_STATES = {"A", "E", "F"}
CLOCK_TOLERANCE = 5  # seconds


def require_no_vehicle(device: DeviceUnderTest, why: str) -> None:
    """Live charging values are changed only while no vehicle is connected: a session that is
    stopped or limited by a check cannot be given back by restoring the value."""
    if device.emulator:
        return
    state = device.read("/state")
    if state.get("state") not in NO_VEHICLE_STATES or state.get("pendingAuth"):
        not_verified(f"a vehicle is connected (state {state.get('state')}); {why} could end or change its session")


class ClockReading:
    """A reading of the device clock; two readings are equal when the clock only ticked between them."""

    def __init__(self, value):
        self.value, self.taken = value, time.monotonic()

    def __eq__(self, other):
        return isinstance(other, ClockReading) and abs((other.value - self.value) - (other.taken - self.taken)) <= CLOCK_TOLERANCE

    def __repr__(self):
        return f"clock {self.value}"


class EvseChecks(DeviceChecks):
    def guard(self, device, op):
        if op.reads == "/state":
            require_no_vehicle(device, str(op))

    def read_effect(self, device, op):
        if op.reads == "/time":
            return ClockReading(device.read("/time"))
        return super().read_effect(device, op)

    def restored_paths(self, device, op):
        return [path for path in super().restored_paths(device, op) if path != "/time"]  # see restoring()

    @contextlib.contextmanager
    def restoring(self, device, op):
        with super().restoring(device, op), self.clock_kept(device, op):
            yield

    @staticmethod
    @contextlib.contextmanager
    def clock_kept(device, op):
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


CHECKS = EvseChecks()
restoring = CHECKS.restoring
read_effect = CHECKS.read_effect
assert_refused = CHECKS.assert_refused


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


def harmless_body(device, op):
    """A body of `op` after which the device ends as it was: the values it holds (for /credentials
    the target's own), a junk image for an upload (which must fail later), or none."""
    if op.path == "/credentials":
        return effective_body(op, device)
    if op.body_kind == "binary":
        return INERT_BINARY
    if op.body_kind == "json":
        return current_body(device, op)
    return None


def harmless_request(device, op):
    """Send `op` so that the device ends as it was (harmless_body).

    Returns (response, expect): expect is the status a conforming device answers, or None where the
    document only promises "accepted" (not 401) - uploads of a junk image, which must fail later.
    """
    expect = None if op.method == "GET" or op.body_kind == "binary" else 200
    return send(device, op, body=harmless_body(device, op)), expect


# -- assertions -----------------------------------------------------------------------------------


def assert_ok(response) -> None:
    """A successful write: 200 with the plain-text body OK (EVSE-CONV-OK)."""
    assert response.status_code == 200, f"expected 200 OK: {answer(response)}"
    ctype = response.headers.get("Content-Type", "").split(";")[0].strip()
    assert ctype == "text/plain", f"a successful write answers plain text, got Content-Type {ctype!r}: {answer(response)}"
    assert response.text.strip() == "OK", f"a successful write answers the body OK: {answer(response)}"
