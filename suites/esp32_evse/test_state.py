"""Live state: the single-value endpoints, availability, authorization and the energy counter."""

from __future__ import annotations

import pytest

from conformlab.checks import answer, current_body, ids, send
from suites.esp32_evse.evse import NEW_VALUES, SCALAR_WRITES, SCHEMA, assert_ok, other_value, restoring

STATE_VALUE_WRITES = [op for op in SCALAR_WRITES if op.reads == "/state" and op.field in NEW_VALUES]


@pytest.mark.req("EVSE-STATE-SCALAR")
@pytest.mark.parametrize("op", STATE_VALUE_WRITES, ids=ids(STATE_VALUE_WRITES))
def test_single_value_write_reads_back(device, op):
    """A bare scalar sets its field; the other writable state fields stay as they were."""
    state_write = SCHEMA.operation("POST", "/state")
    with restoring(device, op):
        before = device.writable(state_write, device.read("/state"))
        new = other_value(op.field, before[op.field], device)
        assert_ok(send(device, op, body=new))
        after = device.writable(state_write, device.read("/state"))
    assert after[op.field] == new, f"{op} {new!r} was answered OK but {op.field} reads {after[op.field]!r}"
    # Reading: chargingCurrent is the "active current offered to the vehicle", which a device may
    # report as 0 while charging is disabled or out of service; every other writable field must stay.
    ignored = {op.field} | ({"chargingCurrent"} if op.field in ("enabled", "available") else set())
    changed = {k: (before[k], after.get(k)) for k in before if k not in ignored and after.get(k) != before[k]}
    assert not changed, f"{op} changed other state fields: {changed}"


@pytest.mark.req("EVSE-STATE-AVAILABLE")
def test_taken_out_of_service_is_state_f(device):
    op = SCHEMA.operation("POST", "/state/available")
    with restoring(device, op):
        assert_ok(send(device, op, body=False))
        state = device.read("/state")
    assert state["available"] is False and state["state"] == "F", (
        f"available false = taken out of service (state F); reads available={state['available']!r} state={state['state']!r}")


@pytest.mark.req("EVSE-STATE-AUTHORIZE")
@pytest.mark.emulator_only("needs a vehicle waiting for authorization")
def test_authorize_clears_a_pending_authorization(device):
    device.control("live", {"pendingAuth": True, "state": "B1"})
    try:
        assert device.read("/state")["pendingAuth"] is True
        assert_ok(device.client.post("/state/authorize"))
        state = device.read("/state")
        assert state["pendingAuth"] is False, f"POST /state/authorize answered OK but pendingAuth is {state['pendingAuth']!r}"
    finally:
        device.control("live", {"pendingAuth": False, "state": "A"})


@pytest.mark.req("EVSE-STATE-RESET-TOTAL")
@pytest.mark.destructive("zeroes the lifetime energy counter")
def test_reset_total_consumption_zeroes_the_counter(device):
    if device.emulator:
        device.control("live", {"totalConsumption": 412900000})
    assert_ok(device.client.post("/state/reset-total-consumption"))
    total = device.read("/state")["totalConsumption"]
    # On hardware a charging vehicle may add a little energy between the two requests.
    assert total == 0 or (not device.emulator and total < 1000), f"totalConsumption after reset: {total}"


@pytest.mark.req("EVSE-STATE-POST")
def test_state_post_sets_several_fields_at_once(device):
    op = SCHEMA.operation("POST", "/state")
    with restoring(device, op):
        before = current_body(device, op)
        change = {key: other_value(key, before[key], device) for key in ("chargingCurrent", "consumptionLimit", "underPowerLimit")}
        assert_ok(send(device, op, body=change))
        after = current_body(device, op)
    assert {k: after[k] for k in change} == change, f"POST /state {change} reads back {after}"


@pytest.mark.req("EVSE-CFG-MAX-CEILING")
def test_charging_current_never_above_the_hard_ceiling(device):
    """maxChargingCurrent is the "hard ceiling in A". Reading: a higher active current is an
    out-of-range value (400, nothing changes); a device that clamps it to the ceiling also keeps the
    promise. Answering OK and reading back a current above the ceiling breaks it."""
    ceiling = device.read("/config/evse")["maxChargingCurrent"]
    op = SCHEMA.operation("POST", "/state/charging-current")
    with restoring(device, op):
        before = device.read("/state")["chargingCurrent"]
        response = send(device, op, body=ceiling + 1)
        after = device.read("/state")["chargingCurrent"]
    if response.status_code == 400:
        assert after == before, f"refused with 400 but chargingCurrent changed {before} -> {after}"
    else:
        assert response.status_code == 200 and after <= ceiling, (
            f"{ceiling + 1} A is above the hard ceiling maxChargingCurrent={ceiling} A: {answer(response)}; reads back {after}")
