"""Gateways: the listing by location, registration (201; 406 for a location not in Basics Station mode or
a gateway not factory-provisioned; the TLS or token fields the location's mode requires; another
organization's gateway), single status and battery, performance metrics by metric and interval, and 404
for an unknown serial number wherever a section's table lists it (the reading elsewhere).

Registration binds a gateway in the field to a location and cannot be undone: only with destructive =
true, and only on the emulator, whose fixtures say which gateways can be registered and which location
is not in Basics Station mode (the API does not tell)."""

from __future__ import annotations

import datetime as dt

import pytest

from conformlab.checks import answer
from conformlab.verdicts import not_applicable, requirement
from suites.wisdm.wisdm import (
    GATEWAY_STATES, OPS, PREFIX, absent_sn, absent_uuid, all_gateways, body_of, build, call, conforms,
    fixture_location, fixtures, gateway, gateways, json_of, operation, register_body, registered, registrable, run_scope,
    send_built, without, writer,
)

LIST = operation("GET", "/location/{locationId}/gateways")
REGISTER = operation("POST", "/location/{locationId}/gateways")
STATUS = operation("GET", "/gateway/{sn}/status")
BATTERY = operation("GET", "/gateway/{sn}/battery")
PERF = operation("GET", "/gateway/{sn}/perf/{metric}")
REGISTRAR = ("write", "WRITE_ADD_GATEWAY_TO_LOCATION")
SUMMARY_FIELDS = ("sn", "eui", "name", "model", "mac", "status", "lastDyingGasp")


@pytest.mark.req("WISDM-GW-LIST", "WISDM-ANSWERS")
def test_gateway_listing_per_location(device):
    """Every location of the run key's organization lists its gateways with their documented fields and
    a status of ONLINE / OFFLINE / PROVISIONING. That `total` (shown in the example, not in the table) is
    the number listed is the reading."""
    of = run_scope(device)
    if not of.locations:
        not_applicable("the organization has no location")
    for loc in of.locations:
        response = call(device, "GET", f"/location/{loc['id']}/gateways", key=of.key)
        body = body_of(device, response, f"GET {PREFIX}/location/{loc['id']}/gateways")
        listed = body.get("gateways")
        assert isinstance(listed, list), f"location {loc['id']}: the listing must hold `gateways`: {body}"
        for gw in listed:
            missing = [name for name in SUMMARY_FIELDS if name not in gw]
            assert not missing, f"location {loc['id']}: a gateway is listed without {', '.join(missing)}: {gw}"
            assert gw["status"] in GATEWAY_STATES, f"status is ONLINE / OFFLINE / PROVISIONING, got {gw['status']!r}"
        conforms(device, LIST, response)
        device.reading(body.get("total") == len(listed),
                       f"location {loc['id']}: total {body.get('total')!r} but {len(listed)} gateways listed")


@pytest.mark.req("WISDM-GW-STATUS", "WISDM-ANSWERS")
def test_listed_gateway_status_single(device):
    """The status of each listed gateway, by its serial number: that gateway's snapshot (its sn, eui
    and model as listed; its status one of the three, the same as listed by the reading)."""
    of = run_scope(device)
    found = all_gateways(device, of, fresh=True)  # listed now: a status may have moved since (provisioning ends)
    if not found:
        not_applicable("the organization has no gateway")
    for loc, gw in found:
        response = call(device, "GET", f"/gateway/{gw['sn']}/status", key=of.key)
        body = body_of(device, response, f"GET {PREFIX}/gateway/{gw['sn']}/status")
        for name in ("sn", "eui", "model"):
            assert body.get(name) == gw.get(name), (
                f"gateway {gw['sn']}: the status names {name} {body.get(name)!r}, the listing of {loc} {gw.get(name)!r}")
        assert body.get("status") in GATEWAY_STATES, f"gateway {gw['sn']}: status {body.get('status')!r}"
        conforms(device, STATUS, response)
        device.reading(body.get("status") == gw.get("status"),
                       f"gateway {gw['sn']}: status {body.get('status')} but listed {gw.get('status')}")


@pytest.mark.req("WISDM-GW-BATTERY", "WISDM-ANSWERS", "WISDM-NOTES-TYPES")
def test_gateway_battery_single(device):
    of = run_scope(device)
    _, sn = gateway(device, of)
    response = call(device, "GET", f"/gateway/{sn}/battery", key=of.key)
    body = body_of(device, response, f"GET {PREFIX}/gateway/{sn}/battery")
    battery = body.get("battery")
    assert body.get("sn") == sn and isinstance(battery, dict), f"the battery of gateway {sn}: {body}"
    for name in ("temperature", "voltage", "soc", "current", "soh", "cycles", "remainCapacity", "fullChargeCapacity"):
        value = battery.get(name)
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"battery.{name} must be a number: {battery}"
    assert battery.get("mode") in ("CHARGING", "DISCHARGING", "FULLY_CHARGED"), f"battery.mode: {battery.get('mode')!r}"
    conforms(device, BATTERY, response)
    if isinstance(battery["voltage"], float) and not battery["voltage"].is_integer():
        device.notice(f"battery voltage {battery['voltage']} has decimals: the page types it integer but shows decimals "
                      "(NOTES.md); both are accepted")


@pytest.mark.req("WISDM-GW-PERF", "WISDM-ANSWERS")
@pytest.mark.parametrize("metric", ["rssi", "snr", "uplink", "downlink"])
def test_gateway_perf_by_metric(device, metric):
    """Each documented metric over the page's example interval (12h): values with UTC timestamps, within
    the interval (by the reading: the page says "Time range")."""
    _perf(device, metric, "12h", documented=True)


@pytest.mark.req("WISDM-GW-PERF", "WISDM-ANSWERS")
@pytest.mark.parametrize("interval", ["1h", "24h", "7d"])
def test_gateway_perf_by_interval(device, interval):
    """Other intervals than the page's "12h": their form is not documented (taking them is the reading)."""
    _perf(device, "rssi", interval, documented=False)


def _perf(device, metric: str, interval: str, documented: bool) -> None:
    of = run_scope(device)
    _, sn = gateway(device, of)
    response = call(device, "GET", f"/gateway/{sn}/perf/{metric}", key=of.key, params={"interval": interval})
    what = f"GET {PREFIX}/gateway/{sn}/perf/{metric}?interval={interval}"
    if not documented and not device.reading(response.status_code == 200, f"{what}: {answer(response)}"):
        return
    body = body_of(device, response, what)
    result = body.get("result")
    assert isinstance(result, list), f"{what}: `result` is the list of values: {body}"
    conforms(device, PERF, response)
    span = dt.timedelta(hours=int(interval[:-1]) * (24 if interval.endswith("d") else 1))
    stamps = []
    for point in result:
        assert isinstance(point.get("value"), (int, float)) and not isinstance(point.get("value"), bool), f"{what}: value: {point}"
        try:
            stamps.append(dt.datetime.fromisoformat(str(point.get("timestamp")).replace("Z", "+00:00")))
        except ValueError:
            raise AssertionError(f"{what}: timestamp is a UTC timestamp: {point}") from None
        assert stamps[-1].tzinfo is not None, f"{what}: timestamp is a UTC timestamp: {point}"
    device.reading(bool(result), f"{what}: an ONLINE gateway has no {metric} values over {interval}")
    if stamps:  # the cloud's clock is its own: the values span at most the time range asked for
        device.reading(max(stamps) - min(stamps) <= span,
                       f"{what}: the values span {max(stamps) - min(stamps)}, more than the time range {interval}")


@pytest.mark.req("WISDM-GW-PERF")
@pytest.mark.parametrize("metric, interval", [("temperature", "12h"), ("rssi", "forever")],
                         ids=["unknown-metric", "unknown-interval"])
def test_perf_unknown_metric_or_interval_refused(device, metric, interval):
    """A metric other than rssi / snr / uplink / downlink, an interval that is no time range: refused
    (400 by the reading; the section has no error table)."""
    of = run_scope(device)
    _, sn = gateway(device, of)
    response = call(device, "GET", f"/gateway/{sn}/perf/{metric}", key=of.key, params={"interval": interval})
    device.reading(response.status_code == 400, f"GET {PREFIX}/gateway/{sn}/perf/{metric}?interval={interval}: "
                                                f"{answer(response)}")


# -- unknown serial number ---------------------------------------------------------------------------

GATEWAY_OPS = [op for op in OPS if op.path.startswith("/gateway/{sn}")]
# Where the section's Error Codes table lists "404 | Gateway Not Found" (or, for a command, "404 |
# CommandId does not exist"); elsewhere the 404 is the reading.
# The sections whose table has "404 Gateway Not Found" (the async-cmd query's 404 is for the commandId).
DOCUMENTED_404 = {
    "POST /gateway/{sn}/battery", "POST /gateway/{sn}/async-cmd",
    "POST /gateway/{sn}/reboot", "POST /gateway/{sn}/upgrade", "GET /gateway/{sn}/network/priority",
    "POST /gateway/{sn}/network/priority", "GET /gateway/{sn}/network/lan", "POST /gateway/{sn}/network/lan",
    "POST /gateway/{sn}/network/wan",
}


@pytest.mark.req("WISDM-GW-404", "WISDM-ANSWERS")
@pytest.mark.parametrize("op", GATEWAY_OPS, ids=[str(op) for op in GATEWAY_OPS])
def test_unknown_gateway_answers_404(device, op):
    """A serial number that exists nowhere: 404 where the table lists it, refused (404 by the reading)
    elsewhere. The request is otherwise valid (a netstat, a setting of the page's example ...)."""
    device.require_operation_allowed(op)  # reboot, password, firmware, battery: only where allowed at all
    of = run_scope(device)
    built = build(device, op, of)
    sn = built.note["sn"]
    absent = absent_sn(device, sn)
    built.path = built.path.replace(sn, absent)
    response = send_built(device, op, built, key=of.key)
    why = f"{op} for gateway {absent}, which does not exist"
    if op.key in DOCUMENTED_404:
        assert response.status_code == 404, f"{why}: expected 404, got {answer(response)}"
    else:
        assert not 200 <= response.status_code < 300, f"{why}: must not be served: {answer(response)}"
        device.reading(response.status_code == 404, f"{why}: {answer(response)}; the reading expects 404")
    conforms(device, op, response)


# -- registration (emulator: its fixtures; destructive) ---------------------------------------------


def _register(device, location_id: str, body: dict, key=None):
    key = key or writer(device, *REGISTRAR)
    response = call(device, "POST", f"/location/{location_id}/gateways", key=key, json=body)
    if 200 <= response.status_code < 300:
        registered(device, body.get("sn", "?"), location_id)
    return response


@pytest.mark.emulator_only("which gateways can be registered is not told by the API")
@pytest.mark.destructive("binds a gateway to a location; the API cannot undo it")
@pytest.mark.req("WISDM-GW-REGISTER", "WISDM-GW-REGISTER-AUTH", "WISDM-GW-LIST", "WISDM-ANSWERS")
def test_gateway_registered_201_and_listed(device):
    """A factory-provisioned gateway of the organization, registered to a location in TLS Server and
    Client Authentication mode with the client certificate and key the mode requires: 201, the
    documented answer, and the gateway listed in the location afterwards."""
    of = run_scope(device)
    loc = fixture_location(device, of.org_id, mode="TLS Server and Client Authentication")
    gw = registrable(device, of.org_id, of=of)
    response = _register(device, loc["id"], register_body(gw, loc["authenticationMode"]))
    with requirement("WISDM-GW-REGISTER"):
        assert response.status_code == 201, f"registration must answer 201 Created: {answer(response)}"
        body = json_of(response)
        assert isinstance(body, dict) and body.get("locationId") == loc["id"] and body.get("sn") == gw["sn"], (
            f"the answer names the location and the gateway: {answer(response)}")
        assert str(body.get("eui", "")).lower() == gw["eui"].lower(), f"the answer names the gateway's EUI: {body}"
    conforms(device, REGISTER, response)
    listed = [item["sn"] for item in gateways(device, of, loc["id"], fresh=True)]
    with requirement("WISDM-GW-LIST"):
        assert gw["sn"] in listed, f"the registered gateway {gw['sn']} must be listed in location {loc['id']}: {listed}"


@pytest.mark.emulator_only("which location is not in Basics Station mode, which gateway is not provisioned")
@pytest.mark.destructive("a registration the cloud took by mistake cannot be undone")
@pytest.mark.req("WISDM-GW-REGISTER-406")
@pytest.mark.parametrize("case", ["location-not-basics-station", "gateway-not-provisioned"])
def test_registration_refused_406(device, case):
    of = run_scope(device)
    if case == "location-not-basics-station":
        loc = fixture_location(device, of.org_id, basics=False)
        gw = registrable(device, of.org_id, of=of)
    else:
        loc = fixture_location(device, of.org_id, mode="TLS Server Authentication")
        gw = registrable(device, of.org_id, provisioned=False, of=of)
    response = _register(device, loc["id"], register_body(gw, loc.get("authenticationMode")))
    assert response.status_code == 406, f"{case}: registration must fail with 406: {answer(response)}"
    listed = [item["sn"] for item in gateways(device, of, loc["id"], fresh=True)]
    assert gw["sn"] not in listed, f"{case}: the refused gateway {gw['sn']} is listed in location {loc['id']}"


@pytest.mark.emulator_only("which location needs which gateway credentials is not told by the API")
@pytest.mark.destructive("a registration the cloud took by mistake cannot be undone")
@pytest.mark.req("WISDM-GW-REGISTER-AUTH")
@pytest.mark.parametrize("mode", ["TLS Server and Client Authentication",
                                  "TLS Server Authentication and Client Token Authentication"],
                         ids=["tls-client-certificate-and-key", "client-token"])
def test_registration_without_required_credentials_refused_400(device, mode):
    of = run_scope(device)
    loc = fixture_location(device, of.org_id, mode=mode)
    gw = registrable(device, of.org_id, of=of)
    body = register_body(gw, mode, credentials=False)  # bsHasLocalAuthSuite false, no certificate, key, token
    response = _register(device, loc["id"], body)
    assert response.status_code == 400, (
        f"bsHasLocalAuthSuite false in a location with {mode} and no credentials: expected 400, got {answer(response)}")


@pytest.mark.emulator_only("which gateways of another organization can be registered is not told by the API")
@pytest.mark.destructive("a registration the cloud took by mistake cannot be undone")
@pytest.mark.req("WISDM-GW-REGISTER-ORG", "WISDM-ORG-ISOLATION")
def test_registration_of_another_organizations_gateway_refused_404(device):
    """"Confirms that the gateway belongs to the same organization": another organization's unassigned
    gateway is refused as an unknown one (404)."""
    of = run_scope(device)
    other = next((g for g in (fixtures(device).get("unassigned") or [])
                  if g.get("organizationId") != of.org_id and g.get("provisioned")), None)
    if other is None:
        not_applicable("the emulator has no unassigned gateway of another organization")
    loc = fixture_location(device, of.org_id, mode="TLS Server Authentication")
    response = _register(device, loc["id"], register_body(other, loc["authenticationMode"]))
    assert response.status_code == 404, f"another organization's gateway: expected 404, got {answer(response)}"
    unknown = dict(other, sn=absent_sn(device, other["sn"]))
    nowhere = _register(device, loc["id"], register_body(unknown, loc["authenticationMode"]))
    with requirement("WISDM-ORG-ISOLATION"):
        assert response.status_code == nowhere.status_code, (
            f"another organization's gateway answered {response.status_code}, an unknown one {nowhere.status_code}: "
            "the answer tells that it exists")
    device.reading(without(response.text, other["sn"]) == without(nowhere.text, unknown["sn"]),
                   f"another organization's gateway and an unknown one answered differently: {answer(response)} / "
                   f"{answer(nowhere)}")


@pytest.mark.emulator_only("which gateways can be registered is not told by the API")
@pytest.mark.destructive("a registration the cloud took by mistake cannot be undone")
@pytest.mark.req("WISDM-GW-REGISTER", "WISDM-ANSWERS")
def test_registration_into_unknown_location_refused_404(device):
    of = run_scope(device)
    gw = registrable(device, of.org_id, of=of)
    response = _register(device, absent_uuid(), register_body(gw, "TLS Server Authentication"))
    assert response.status_code == 404, f"a location that does not exist: expected 404 (Resource Not Found), got {answer(response)}"
    conforms(device, REGISTER, response)

