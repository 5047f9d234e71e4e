"""Unit tests of the WisDM cloud emulator (plain pytest + requests against a real loopback server).

Keys are test constants, but they stay out of test ids and assertion messages: requests name the
key by its name ("reader", "admin", ...), never by its value."""

from __future__ import annotations

import base64
import gzip
import json
import socket

import pytest
import requests

from conformlab import near_miss
from conformlab.emulators import start_emulator
from conformlab.profiles import PROFILES
from conformlab.emulators.wisdm import (
    FACTORY_A, FACTORY_B, FAULTS, KEY_FLAWS, LEGACY_SITE, NEAR_MISS_FAULTS, ORG_A, ORG_B, PARTNER_DEPOT, PRIORITIES,
    ROUTES, WAREHOUSE_C, WisdmEmulator, parse_iso, wants_gzip)
from emulator_controls import control, counters
from vendor_docs import assert_faults_quote_the_documents

KEYS = {
    "reader": "wisdm-test-read-4f1c9b27e0a6",
    "ops": "wisdm-test-ops-8d3e05a1c7b2",
    "admin": "wisdm-test-admin-2b7f6c914de3",
    "partner": "wisdm-test-partner-6a0d3e8f15c4",
    "factory-a": "wisdm-test-site-93c5e1f07b8d",
    "lapsed": "wisdm-test-lapsed-0e7a4c2d9f61",
    "unknown": "wisdm-test-never-issued-5b1e0c",
}
ALL = ["WRITE_ADD_LOCATION_TO_ORGANIZATION", "WRITE_ADD_GATEWAY_TO_LOCATION", "WRITE_UPGRADE_FIRMWARE",
       "WRITE_EDIT_NETWORK_INTERFACE", "WRITE_REBOOT_GATEWAY", "WRITE_RESET_PASSWORD",
       "WRITE_ENABLE_BATTERY_MONITORING", "WRITE_EDIT_SYSTEM_SETTINGS"]
AUTH = {"keys": [
    {"name": "reader", "key": KEYS["reader"], "access": "read", "permissions": []},
    {"name": "ops", "key": KEYS["ops"], "access": "write", "permissions": ["WRITE_REBOOT_GATEWAY"]},
    {"name": "admin", "key": KEYS["admin"], "access": "write", "permissions": ALL},
    {"name": "partner", "key": KEYS["partner"], "access": "write", "permissions": ALL},
    {"name": "factory-a", "key": KEYS["factory-a"], "access": "read", "permissions": [], "locations": [FACTORY_A]},
    {"name": "lapsed", "key": KEYS["lapsed"], "access": "write", "permissions": ["WRITE_REBOOT_GATEWAY"],
     "expired": True},
]}
ONLINE = "918100M46020602001"  # Factory A, first by sn
CELLULAR = "918100RN6040814001"  # Factory A, the WAN with an APN password
OFFLINE = "918100M46020602003"  # Factory A
IN_FACTORY_B = "918100RC6051100021"
PARTNER_GW = "918100M46022300101"  # org B, Partner Depot
FREE = "918100M46022500131"  # org A, unassigned, factory-provisioned
FREE_CELL = "918100RN6042500141"
UNPROVISIONED = "918100M46022500161"
FREE_B = "918100M46022600171"  # org B, unassigned
UNKNOWN_SN = "918100ZZ6099999999"
NOT_FOUND = {"code": 404, "message": "Resource Not Found"}
LOCATION_BODY = {
    "name": "Conformlab Site", "address": {"country": "Bulgaria", "city": "Sofia", "latitude": 42.7, "longitude": 23.3},
    "workMode": "Basics station", "enableCriticalFwAutoUpdate": True,
    "basicStation": {"serverType": "CUPS", "serverURL": "https://cups.example.com", "serverPort": 443,
                     "authenticationMode": "TLS Server Authentication", "useIndividualKeys": True},
    "advancedFrequencySettings": {"region": "EU868", "regionVariation": "default", "isLoRaWANPublic": True,
                                  "frequencySubBand": "G1"},
    "channelsNumber": 8,
}


def start(faults=(), reading="default"):
    return start_emulator("wisdm", faults=faults, auth=AUTH, options={"other_organization": ["partner"]},
                          reading=reading)


class Api:
    """Requests to /v4 with a key named by its name (None: no key); plain answers unless gzip is asked."""

    def __init__(self, emu) -> None:
        self.emu, self.url = emu, emu.url

    def call(self, method: str, path: str, key: str | None = "admin", **kw) -> requests.Response:
        headers = {"Accept-Encoding": "identity", **({"X-API-KEY": KEYS[key]} if key else {}),
                   **kw.pop("headers", {})}
        return requests.request(method, self.url + "/v4" + path, headers=headers, timeout=5, **kw)

    def get(self, path: str, key: str | None = "admin", **kw) -> requests.Response:
        return self.call("GET", path, key, **kw)

    def post(self, path: str, body=None, key: str | None = "admin", **kw) -> requests.Response:
        return self.call("POST", path, key, json=body, **kw) if body is not None else self.call("POST", path, key, **kw)

    def ok(self, path: str, key: str = "admin", **kw):
        response = self.get(path, key, **kw)
        assert response.status_code == 200, response.text
        return response.json()

    def advance(self, seconds: float) -> None:
        control(self.emu, "advance", {"seconds": seconds})

    def walk(self, location: str, kind: str = "status", size: int = 5, key: str = "admin") -> list[dict]:
        pages, token = [], None
        for _ in range(20):
            params = {"pageSize": size, **({"nextToken": token} if token else {})}
            page = self.ok(f"/location/{location}/gateways/{kind}", key, params=params)
            pages.append(page)
            token = page.get("nextToken")
            if token is None:
                return pages
        raise AssertionError("the walk does not end")


@pytest.fixture(scope="module")
def shared():
    with start() as running:
        yield running


@pytest.fixture
def api(shared):
    control(shared, "reset")
    return Api(shared)


@pytest.fixture(scope="module")
def alt_shared():
    with start(reading="alternative") as running:
        yield running


@pytest.fixture
def alt(alt_shared):
    control(alt_shared, "reset")
    return Api(alt_shared)


# -- catalogue and construction ------------------------------------------------------------------


def test_faults_quote_the_document():
    assert len(FAULTS) >= 20
    assert_faults_quote_the_documents(FAULTS, "wisdm-api.txt")
    assert set(KEY_FLAWS) <= set(NEAR_MISS_FAULTS) <= set(FAULTS)
    assert set(NEAR_MISS_FAULTS) == set(KEY_FLAWS) | {"key_read_from_authorization", "key_scheme_stripped"}
    assert set(NEAR_MISS_FAULTS.values()) == {"key-empty", "key-prefix", "key-truncated", "key-extended",
                                              "key-case-swapped", "key-in-authorization-header",
                                              "key-with-bearer-scheme"}


def test_constructor_checks_other_organization_and_makes_default_keys():
    with pytest.raises(ValueError, match="no key name"):
        WisdmEmulator(auth=AUTH, other_organization=["nobody"])
    with pytest.raises(ValueError, match="unknown fault"):
        WisdmEmulator(faults=["no_such_fault"], auth=AUTH)
    emulator = WisdmEmulator()  # `conformlab emulate wisdm`: a key set of its own
    view = emulator._keys_view()
    assert {entry["name"] for entry in view} == {"reader", "ops", "admin", "partner", "factory-a", "lapsed"}
    assert all(entry["key"] for entry in view)
    assert {e["name"]: e["organizationId"] for e in view}["partner"] == ORG_B
    assert "key" not in WisdmEmulator(auth=AUTH)._keys_view()[0]


def test_default_keys_work_through_the_keys_control():
    with start_emulator("wisdm") as emu:
        view = control(emu, "keys", method="GET")
        admin = next(e["key"] for e in view if e["name"] == "admin")
        response = requests.get(emu.url + "/v4/organization", headers={"X-API-KEY": admin}, timeout=5)
        assert response.status_code == 200 and response.json()["id"] == ORG_A


def _near_misses_through(faults=()) -> set[str]:
    """The near misses of the profile's family (conformlab.near_miss) an emulator with `faults` serves."""
    through = set()
    with start(faults=faults) as emu:
        for near in PROFILES["wisdm"].near_misses:
            try:
                what = near.present(AUTH, {})
            except near_miss.NotApplicable:
                continue
            if requests.get(emu.url + "/v4/organization", auth=what, timeout=5).status_code == 200:
                through.add(near.name)
    return through


def test_near_misses_refused_and_each_fault_lets_its_own_through():
    assert _near_misses_through() == set()
    let_through = set()
    for fault, name in NEAR_MISS_FAULTS.items():
        through = _near_misses_through((fault,))
        assert name in through, fault
        let_through |= through
    settled = {near.name for near in PROFILES["wisdm"].near_misses if near.settled}
    assert settled <= let_through


def test_routes_cover_the_document():
    paths = {(r.method, r.path) for r in ROUTES}
    assert len(paths) == 26
    assert all(r.access == ("read",) for r in ROUTES if r.method == "GET")
    assert {r.access for r in ROUTES if r.path.endswith("async-cmd")} == {("read", "write")}
    assert {r.access[1] for r in ROUTES if r.method == "POST" and not r.path.endswith("async-cmd")} == set(ALL)


def test_helpers():
    assert parse_iso("2025-12-01T00:00:00Z") == 1764547200.0
    assert parse_iso("2025-12-01T00:00:00+00:00") == 1764547200.0
    assert parse_iso("2025-02-30T00:00:00Z") is None and parse_iso("2025-12-01") is None
    assert wants_gzip("gzip, deflate") and wants_gzip("*") and wants_gzip("br;q=1, GZIP;q=0.5")
    assert not wants_gzip(None) and not wants_gzip("identity") and not wants_gzip("gzip;q=0")
    assert not wants_gzip("*, gzip;q=0")


# -- system and organization ---------------------------------------------------------------------


def test_version_and_organization(api):
    assert set(api.ok("/version", "reader")) == {"version", "commitId"}
    assert api.ok("/organization", "reader") == {"id": ORG_A, "name": "Conformlab Test Org A"}
    assert api.ok("/organization", "partner") == {"id": ORG_B, "name": "Conformlab Partner Org B"}


def test_error_envelope_405_and_unknown_path(api):
    response = api.get("/nowhere")
    assert response.status_code == 404 and response.json() == NOT_FOUND
    assert response.headers["Content-Type"] == "application/json"
    response = api.call("DELETE", "/version")
    assert response.status_code == 405 and response.headers["Allow"] == "GET"
    assert api.call("PUT", f"/gateway/{ONLINE}/network/lan").headers["Allow"] == "GET, POST"
    response = api.post(f"/gateway/{ONLINE}/network/priority", data=b"{not json",
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == 400


# -- keys and scopes -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "unknown", "lapsed"], ids=["missing", "unknown-key", "lapsed"])
def test_missing_unknown_expired_key_refused_403(api, key):
    for path in ("/version", "/organization", f"/gateway/{ONLINE}/status"):
        response = api.get(path, key)
        assert response.status_code == 403 and response.json() == {"code": 403, "message": "Action is not allowed"}
    assert api.post(f"/gateway/{ONLINE}/reboot", key=key).status_code == 403
    assert counters(api.emu)["reboots"] == 0


@pytest.mark.parametrize("key", [None, "unknown", "lapsed"], ids=["missing", "unknown-key", "lapsed"])
def test_alternative_refuses_keys_with_401_text(alt, key):
    response = alt.get("/organization", key)
    assert response.status_code == 401 and response.headers["Content-Type"] == "text/plain"
    assert "WWW-Authenticate" in response.headers and response.text == "Invalid or missing API key"
    response = alt.get("/nowhere")
    assert response.status_code == 404 and response.text == "Resource Not Found"


def test_read_key_reads_and_is_refused_every_post(api):
    assert api.get(f"/gateway/{ONLINE}/status", "reader").status_code == 200
    posts = [(f"/organization/{ORG_A}/locations", LOCATION_BODY), (f"/location/{FACTORY_A}/gateways", {}),
             (f"/gateway/{ONLINE}/battery", {"enabled": True}),
             (f"/gateway/{ONLINE}/async-cmd", {"command": "netstat"}),
             (f"/gateway/{ONLINE}/reboot", None), (f"/gateway/{ONLINE}/password", {"password": "x"}),
             (f"/gateway/{ONLINE}/upgrade", {"version": "2.2.15"}),
             (f"/gateway/{ONLINE}/network/priority", {"priority": "ETH_WIFI_CELLULAR"}),
             (f"/gateway/{ONLINE}/network/lan", {"wifi": {"enabled": False}}),
             (f"/gateway/{ONLINE}/network/wan", {"wifi": {"enabled": False}}),
             (f"/gateway/{ONLINE}/syslog", {"shareLogs": "none"})]
    for path, body in posts:
        response = api.post(path, body, key="reader")
        assert response.status_code == 403, path
        assert response.json()["message"] == "Action is not allowed"
    assert set(counters(api.emu).values()) == {0}


def test_write_key_needs_the_operations_permission(api):
    assert api.post(f"/gateway/{ONLINE}/reboot", key="ops").status_code == 204
    response = api.post(f"/gateway/{ONLINE}/network/priority", {"priority": "WIFI_ETH_CELLULAR"}, key="ops")
    assert response.status_code == 403
    assert api.ok(f"/gateway/{ONLINE}/network/priority")["priority"] == "ETH_WIFI_CELLULAR"
    assert api.post(f"/gateway/{ONLINE}/password", {"password": "StrongPass!2025"}, key="ops").status_code == 403
    # "Requires Read and Write permission": any write key, no WRITE_* permission needed
    assert api.post(f"/gateway/{ONLINE}/async-cmd", {"command": "netstat"}, key="ops").status_code == 200
    assert counters(api.emu)["reboots"] == 1 and counters(api.emu)["passwordResets"] == 0


def test_scope_checked_before_existence_and_body(api):
    assert api.post(f"/gateway/{UNKNOWN_SN}/password", {"password": "x"}, key="ops").status_code == 403
    assert api.post(f"/gateway/{ONLINE}/password", data=b"{", key="ops").status_code == 403


# -- organizations, isolation, location restriction ----------------------------------------------


def test_other_organization_answers_like_nonexistent(api):
    pairs = [(f"/organization/{ORG_A}/locations", "/organization/00000000-0000-4000-8000-000000000000/locations"),
             (f"/location/{FACTORY_A}/gateways", "/location/00000000-0000-4000-8000-000000000000/gateways"),
             (f"/location/{FACTORY_A}/gateways/status", "/location/nope/gateways/status"),
             (f"/gateway/{ONLINE}/status", f"/gateway/{UNKNOWN_SN}/status"),
             (f"/gateway/{ONLINE}/network/wan", f"/gateway/{UNKNOWN_SN}/network/wan")]
    for foreign, missing in pairs:
        a, b = api.get(foreign, "partner"), api.get(missing, "partner")
        assert (a.status_code, a.content) == (b.status_code, b.content)
        assert a.status_code == 404 and a.json() == NOT_FOUND
    assert api.post(f"/gateway/{ONLINE}/reboot", key="partner").status_code == 404
    assert api.post(f"/organization/{ORG_A}/locations", LOCATION_BODY, key="partner").status_code == 404
    assert counters(api.emu)["reboots"] == counters(api.emu)["locationsCreated"] == 0
    listed = api.ok(f"/organization/{ORG_B}/locations", "partner")
    assert listed == {"total": 1, "locations": [{"id": PARTNER_DEPOT, "name": "Partner Depot"}]}
    assert api.get(f"/organization/{ORG_B}/locations", "admin").json() == NOT_FOUND
    assert api.get(f"/gateway/{PARTNER_GW}/status", "admin").json() == NOT_FOUND
    assert api.ok(f"/gateway/{PARTNER_GW}/status", "partner")["sn"] == PARTNER_GW


def test_other_organizations_command_is_not_found(api):
    command = api.post(f"/gateway/{PARTNER_GW}/async-cmd", {"command": "netstat"}, key="partner").json()["commandId"]
    assert api.get(f"/gateway/{PARTNER_GW}/async-cmd/{command}", "admin").json() == NOT_FOUND
    assert api.get(f"/gateway/{ONLINE}/async-cmd/{command}", "admin").status_code == 404
    assert api.get(f"/gateway/{PARTNER_GW}/async-cmd/{command}", "partner").status_code == 200


def test_location_restricted_key(api):
    assert api.ok(f"/organization/{ORG_A}/locations", "factory-a") == {
        "total": 1, "locations": [{"id": FACTORY_A, "name": "Factory A"}]}
    assert api.get(f"/location/{FACTORY_B}/gateways", "factory-a").json() == NOT_FOUND
    assert api.get(f"/gateway/{IN_FACTORY_B}/status", "factory-a").json() == NOT_FOUND
    assert api.get(f"/gateway/{FREE}/status", "factory-a").status_code == 404
    assert api.ok(f"/gateway/{ONLINE}/status", "factory-a")["sn"] == ONLINE
    assert len(api.ok(f"/location/{FACTORY_A}/gateways", "factory-a")["gateways"]) == 14


# -- locations -------------------------------------------------------------------------------------


def test_locations_listed_with_total(api):
    listed = api.ok(f"/organization/{ORG_A}/locations", "reader")
    assert listed["total"] == len(listed["locations"]) == 4
    assert [loc["name"] for loc in listed["locations"]] == ["Factory A", "Factory B", "Warehouse C", "Legacy Site"]


def test_location_created_201_and_listed(api):
    response = api.post(f"/organization/{ORG_A}/locations", LOCATION_BODY)
    assert response.status_code == 201
    created = response.json()
    assert set(created) == {"locationId", "organizationId", "name", "workMode"}
    assert created["organizationId"] == ORG_A and created["workMode"] == "Basics station"
    listed = api.ok(f"/organization/{ORG_A}/locations")
    assert {"id": created["locationId"], "name": "Conformlab Site"} in listed["locations"] and listed["total"] == 5
    assert api.ok(f"/location/{created['locationId']}/gateways") == {"total": 0, "gateways": []}
    assert api.ok(f"/location/{created['locationId']}/gateways/status") == {"pageSize": 100, "totalPages": 0,
                                                                           "gateways": []}
    assert counters(api.emu)["locationsCreated"] == 1
    fixture = next(l for l in control(api.emu, "fixtures", method="GET")["locations"] if l["id"] == created["locationId"])
    assert fixture["authenticationMode"] == "TLS Server Authentication"
    # 409 for an existing name (also one created at start), nothing created
    for name in ("Conformlab Site", "Factory A"):
        response = api.post(f"/organization/{ORG_A}/locations", {**LOCATION_BODY, "name": name})
        assert response.status_code == 409 and response.json()["code"] == 409
    assert counters(api.emu)["locationsCreated"] == 1
    # another organization may use the name
    assert api.post(f"/organization/{ORG_B}/locations", LOCATION_BODY, key="partner").status_code == 201


def test_alternative_location_created_200(alt):
    response = alt.post(f"/organization/{ORG_A}/locations", LOCATION_BODY)
    assert response.status_code == 200 and response.json()["name"] == "Conformlab Site"


def _station(**changes):
    return {**LOCATION_BODY, "basicStation": {**LOCATION_BODY["basicStation"], **changes}}


@pytest.mark.parametrize("body", [
    {**LOCATION_BODY, "name": "abc"}, {**LOCATION_BODY, "name": "x" * 51}, {**LOCATION_BODY, "name": 1234},
    {k: v for k, v in LOCATION_BODY.items() if k != "name"}, {**LOCATION_BODY, "channelsNumber": 12},
    {**LOCATION_BODY, "channelsNumber": "8"}, {**LOCATION_BODY, "workMode": "Packet forwarder"},
    _station(serverPort=0), _station(serverPort=65536), _station(serverPort="443"), _station(serverType="MQTT"),
    _station(authenticationMode="Password"), _station(serverURL="cups.example.com"),
    _station(authenticationMode="TLS Server and Client Authentication", useIndividualKeys=False),
    _station(authenticationMode="TLS Server Authentication and Client Token Authentication", useIndividualKeys=False),
    {k: v for k, v in LOCATION_BODY.items() if k != "basicStation"},
    {**LOCATION_BODY, "address": {"latitude": 123}}, {**LOCATION_BODY, "advancedFrequencySettings": {"region": "XX1"}},
    ["not", "an", "object"],
], ids=["name-3", "name-51", "name-number", "name-missing", "channels-12", "channels-string", "work-mode",
        "port-0", "port-65536", "port-string", "server-type", "auth-mode", "url", "client-cert-missing",
        "token-missing", "station-missing", "latitude", "region", "array"])
def test_location_validation_400(api, body):
    response = api.post(f"/organization/{ORG_A}/locations", body)
    assert response.status_code == 400 and response.json()["code"] == 400
    assert counters(api.emu)["locationsCreated"] == 0


def test_location_edges_accepted(api):
    for name, channels, port in (("abcd", 16, 1), ("y" * 50, 8, 65535)):
        body = {**_station(serverPort=port), "name": name, "channelsNumber": channels}
        assert api.post(f"/organization/{ORG_A}/locations", body).status_code == 201
    minimal = {"name": "Minimal Site", "basicStation": {"serverType": "LNS", "serverURL": "wss://lns.example.com",
                                                        "serverPort": 8887, "authenticationMode": "None"}}
    assert api.post(f"/organization/{ORG_A}/locations", minimal).status_code == 201


# -- gateways by location and registration ---------------------------------------------------------


def test_gateways_listed_by_location(api):
    listed = api.ok(f"/location/{FACTORY_A}/gateways", "reader")
    gateways = listed["gateways"]
    assert listed["total"] == len(gateways) == 14
    assert [g["sn"] for g in gateways] == sorted(g["sn"] for g in gateways)
    statuses = [g["status"] for g in gateways]
    assert (statuses.count("ONLINE"), statuses.count("OFFLINE"), statuses.count("PROVISIONING")) == (8, 3, 3)
    for g in gateways:
        assert set(g) == {"sn", "eui", "name", "model", "mac", "status", "lastDyingGasp"}
        assert len(g["sn"]) == 18 and len(g["eui"]) == 16 and g["eui"] == g["eui"].lower()
        assert g["mac"].count(":") == 5 and g["mac"].replace(":", "").lower()[-6:] == g["eui"][-6:]
    offline = [g for g in gateways if g["status"] == "OFFLINE"]
    assert all(g["lastDyingGasp"] != "None" for g in offline)
    sizes = {loc: len(api.ok(f"/location/{loc}/gateways")["gateways"]) for loc in (FACTORY_B, WAREHOUSE_C, LEGACY_SITE)}
    assert sizes == {FACTORY_B: 3, WAREHOUSE_C: 3, LEGACY_SITE: 2}


def test_alternative_lists_in_registration_order(alt):
    sns = [g["sn"] for g in alt.ok(f"/location/{FACTORY_A}/gateways")["gateways"]]
    assert sns[0] == ONLINE and sns != sorted(sns) and len(sns) == 14


def _fixture_eui(api, sn):
    return next(g["eui"] for g in control(api.emu, "fixtures", method="GET")["unassigned"] if g["sn"] == sn)


def test_registration_201_listed_and_provisioned(api):
    eui = _fixture_eui(api, FREE)
    response = api.post(f"/location/{FACTORY_A}/gateways", {"sn": FREE, "eui": eui.upper(), "name": "Gateway-1",
                                                            "bsHasLocalAuthSuite": True})
    assert response.status_code == 201
    assert response.json() == {"locationId": FACTORY_A, "sn": FREE, "eui": eui.upper()}
    listed = {g["sn"]: g for g in api.ok(f"/location/{FACTORY_A}/gateways")["gateways"]}
    assert listed[FREE]["status"] == "PROVISIONING" and listed[FREE]["name"] == "Gateway-1"
    api.advance(31)
    assert api.ok(f"/gateway/{FREE}/status")["status"] == "ONLINE"
    assert FREE not in [g["sn"] for g in control(api.emu, "fixtures", method="GET")["unassigned"]]
    assert counters(api.emu)["gatewaysRegistered"] == 1
    again = api.post(f"/location/{FACTORY_B}/gateways", {"sn": FREE, "eui": eui, "bsHasLocalAuthSuite": True})
    assert again.status_code == 400


def test_registration_refusals(api):
    eui, cell_eui = _fixture_eui(api, FREE), _fixture_eui(api, FREE_CELL)
    cases = [
        (LEGACY_SITE, {"sn": FREE, "eui": eui}, 406),
        (FACTORY_A, {"sn": UNPROVISIONED, "eui": _fixture_eui(api, UNPROVISIONED)}, 406),
        (FACTORY_B, {"sn": FREE, "eui": eui, "bsHasLocalAuthSuite": False}, 400),
        (FACTORY_B, {"sn": FREE, "eui": eui, "bsClientCertificate": "-----BEGIN CERTIFICATE-----..."}, 400),
        (WAREHOUSE_C, {"sn": FREE, "eui": eui}, 400),
        (FACTORY_A, {"sn": FREE_B, "eui": _fixture_eui(api, FREE_B)}, 404),
        (FACTORY_A, {"sn": UNKNOWN_SN, "eui": "ac1f09fffe000000"}, 404),
        (FACTORY_A, {"sn": FREE, "eui": "ac1f09fffe000000"}, 400),
        (FACTORY_A, {"sn": FREE, "eui": "xyz"}, 400),
        (FACTORY_A, {"eui": eui}, 400),
        (PARTNER_DEPOT, {"sn": FREE, "eui": eui}, 404),
        ("00000000-0000-4000-8000-000000000000", {"sn": FREE, "eui": eui}, 404),
    ]
    for location, body, status in cases:
        response = api.post(f"/location/{location}/gateways", body)
        assert response.status_code == status, (location, sorted(body))
    assert counters(api.emu)["gatewaysRegistered"] == 0
    tls = {"sn": FREE, "eui": eui, "bsHasLocalAuthSuite": False, "bsClientCertificate": "-----BEGIN CERTIFICATE-----...",
           "bsClientKey": "-----BEGIN PRIVATE KEY-----..."}
    assert api.post(f"/location/{FACTORY_B}/gateways", tls).status_code == 201
    token = {"sn": FREE_CELL, "eui": cell_eui, "bsToken": "eyJhbGciOiJIUzI1NiIs..."}
    assert api.post(f"/location/{WAREHOUSE_C}/gateways", token).status_code == 201


# -- status, battery, pagination -------------------------------------------------------------------


def test_single_status_has_the_documented_shape(api):
    status = api.ok(f"/gateway/{CELLULAR}/status", "reader")
    assert set(status) == {"sn", "eui", "name", "model", "mac", "status", "lastDyingGasp", "system", "gps", "network",
                           "lora", "storage"}
    assert set(status["system"]) == {"uptime", "cpu", "memory"}
    assert set(status["gps"]) == {"state", "satellites_number", "longitude", "latitude"}
    assert set(status["network"]["lan"]["wifi"]) == {"enabled", "ssid", "encryption", "key", "channel", "hidden"}
    cellular = status["network"]["wan"]["cellular"]
    assert {"imsi", "iccid", "imei", "rsrp", "plmn"} <= set(cellular) and len(cellular["iccid"]) == 20
    assert status["network"]["wan"]["active"] == "ETH"
    assert set(status["storage"]) == {"healthy", "total", "free", "used_percent"}
    assert set(status["lora"]) == {"activeNodes", "txPackets", "rxPackets"}
    before = status["system"]["uptime"]
    api.advance(100)
    assert api.ok(f"/gateway/{CELLULAR}/status")["system"]["uptime"] >= before + 100
    cached = api.ok(f"/gateway/{OFFLINE}/status")  # the state before the last dying gasp
    api.advance(100)
    assert api.ok(f"/gateway/{OFFLINE}/status")["system"]["uptime"] == cached["system"]["uptime"]


def test_battery_single_and_listing(api):
    battery = api.ok(f"/gateway/{ONLINE}/battery", "reader")
    assert battery["sn"] == ONLINE
    assert set(battery["battery"]) == {"temperature", "voltage", "soc", "current", "soh", "cycles", "remainCapacity",
                                       "fullChargeCapacity", "mode"}
    assert battery["battery"]["mode"] in ("CHARGING", "DISCHARGING", "FULLY_CHARGED")
    assert isinstance(battery["battery"]["voltage"], float)
    listing = api.ok(f"/location/{FACTORY_A}/gateways/battery")
    assert listing["totalPages"] == 1 and "nextToken" not in listing and len(listing["gateways"]) == 14
    assert set(listing["gateways"][0]) == {"sn", "battery"}


def test_alternative_voltage_in_whole_volts(alt):
    assert isinstance(alt.ok(f"/gateway/{ONLINE}/battery")["battery"]["voltage"], int)


@pytest.mark.parametrize("kind", ["status", "battery"])
def test_pagination_walk_visits_every_gateway_once(api, kind):
    plain = [g["sn"] for g in api.ok(f"/location/{FACTORY_A}/gateways")["gateways"]]
    pages = api.walk(FACTORY_A, kind, 5)
    assert len(pages) == 3 and all(page["totalPages"] == 3 and page["pageSize"] == 5 for page in pages)
    assert [len(page["gateways"]) for page in pages] == [5, 5, 4]
    assert "nextToken" not in pages[-1] and all("nextToken" in page for page in pages[:-1])
    walked = [g["sn"] for page in pages for g in page["gateways"]]
    assert walked == plain
    assert json.loads(base64.b64decode(pages[0]["nextToken"])) == {"page": 2}
    assert [len(p["gateways"]) for p in api.walk(FACTORY_A, kind, 7)] == [7, 7]
    assert len(api.walk(FACTORY_A, kind, 14)) == 1


@pytest.mark.parametrize("params", [{"pageSize": 0}, {"pageSize": 101}, {"pageSize": "abc"}, {"nextToken": "%%%"},
                                    {"nextToken": "bm90IGpzb24="}, {"nextToken": base64.b64encode(b'{"page":9}').decode()},
                                    {"nextToken": base64.b64encode(b'{"page":1}').decode()},
                                    {"nextToken": base64.b64encode(b'{"offset":5}').decode()}],
                         ids=["size-0", "size-101", "size-abc", "token-garbage", "token-not-json", "token-page-9",
                              "token-page-1", "token-other-shape"])
def test_pagination_refusals_400(api, params):
    response = api.get(f"/location/{FACTORY_A}/gateways/status", params={"pageSize": 5, **params})
    assert response.status_code == 400 and response.json()["code"] == 400


def test_alternative_tokens_are_opaque_and_per_location(alt):
    pages = alt.walk(FACTORY_A, "status", 5)
    assert [len(p["gateways"]) for p in pages] == [5, 5, 4]
    walked = [g["sn"] for page in pages for g in page["gateways"]]
    assert walked == [g["sn"] for g in alt.ok(f"/location/{FACTORY_A}/gateways")["gateways"]]
    token = pages[0]["nextToken"]
    assert "=" not in token
    other = alt.get(f"/location/{FACTORY_B}/gateways/status", params={"pageSize": 1, "nextToken": token})
    assert other.status_code == 400


# -- performance metrics ---------------------------------------------------------------------------


def test_perf_metrics(api):
    for metric in ("rssi", "snr", "uplink", "downlink"):
        answer = api.ok(f"/gateway/{ONLINE}/perf/{metric}", params={"interval": "12h"})
        assert len(answer["result"]) == 72 and "nextToken" not in answer and answer["clientToken"]
        assert set(answer["result"][0]) == {"value", "timestamp"}
        assert answer["result"][0]["timestamp"].endswith("Z")
    day = api.ok(f"/gateway/{ONLINE}/perf/rssi", params={"interval": "24h"})
    assert len(day["result"]) == 100 and day["nextToken"]
    rest = api.ok(f"/gateway/{ONLINE}/perf/rssi", params={"interval": "24h", "nextToken": day["nextToken"]})
    assert len(rest["result"]) == 44 and "nextToken" not in rest
    assert rest["result"][0]["timestamp"] > day["result"][-1]["timestamp"]
    assert len(api.ok(f"/gateway/{ONLINE}/perf/snr", params={"interval": "7d"})["result"]) == 100
    assert api.ok(f"/gateway/{ONLINE}/perf/rssi")["result"]  # interval: 24h
    for bad in ({"interval": "12x"}, {"interval": "0h"}, {"interval": "31d"}, {"interval": "12h", "nextToken": "zz"}):
        assert api.get(f"/gateway/{ONLINE}/perf/rssi", params=bad).status_code == 400
    assert api.get(f"/gateway/{ONLINE}/perf/latency", params={"interval": "1h"}).status_code == 400
    assert api.get(f"/gateway/{UNKNOWN_SN}/perf/rssi", params={"interval": "1h"}).status_code == 404


def test_alternative_perf_needs_interval(alt):
    assert alt.get(f"/gateway/{ONLINE}/perf/rssi").status_code == 400
    assert alt.get(f"/gateway/{ONLINE}/perf/rssi", params={"interval": "1h"}).status_code == 200


# -- asynchronous commands -------------------------------------------------------------------------


def test_command_lifecycle(api):
    response = api.post(f"/gateway/{ONLINE}/async-cmd", {"command": "netstat", "args": "-apn",
                                                         "pipes": [{"command": "grep", "args": "LISTEN"}], "timeout": 60})
    assert response.status_code == 200
    command = response.json()["commandId"]
    assert isinstance(command, int)
    first = api.ok(f"/gateway/{ONLINE}/async-cmd/cmd-{command}", "reader")
    assert first == {"sn": ONLINE, "commandId": str(command), "status": "PENDING", "result": ""}
    api.advance(1.1)
    done = api.ok(f"/gateway/{ONLINE}/async-cmd/{command}", "reader")
    assert done["status"] == "SUCCESS" and "LISTEN" in done["result"] and "ESTABLISHED" not in done["result"]
    assert "lighttpd" in done["result"]
    api.advance(3600)
    assert api.get(f"/gateway/{ONLINE}/async-cmd/{command}").json() == {
        "code": 404, "message": "CommandId does not exist or has expired"}
    assert counters(api.emu)["commands"] == 1


def test_command_fails_on_offline_gateway(api):
    command = api.post(f"/gateway/{OFFLINE}/async-cmd", {"command": "netstat"}).json()["commandId"]
    api.advance(1.5)
    result = api.ok(f"/gateway/{OFFLINE}/async-cmd/{command}")
    assert result["status"] == "FAILED" and result["result"] == "gateway offline"


def test_command_refusals(api):
    for body in ({"command": "reboot"}, {}, {"command": "netstat", "timeout": 0}, {"command": "netstat", "timeout": 3601},
                 {"command": "netstat", "args": 5}, {"command": "netstat", "pipes": [{"command": "rm", "args": "-rf"}]},
                 {"command": "netstat", "pipes": "grep"}):
        assert api.post(f"/gateway/{ONLINE}/async-cmd", body).status_code == 400
    assert api.post(f"/gateway/{UNKNOWN_SN}/async-cmd", {"command": "netstat"}).status_code == 404
    assert api.get(f"/gateway/{ONLINE}/async-cmd/abc").status_code == 400
    assert api.get(f"/gateway/{ONLINE}/async-cmd/job-17").status_code == 400
    assert api.get(f"/gateway/{ONLINE}/async-cmd/1760413840").status_code == 404
    assert counters(api.emu)["commands"] == 0


def test_command_pipes(api):
    body = {"command": "netstat", "args": "-an", "pipes": [{"command": "grep", "args": "tcp"}, {"command": "wc", "args": "-l"}]}
    command = api.post(f"/gateway/{ONLINE}/async-cmd", body).json()["commandId"]
    api.advance(2)
    assert api.ok(f"/gateway/{ONLINE}/async-cmd/{command}")["result"] == "6\n"


def test_alternative_command_id_is_a_string(alt):
    command = alt.post(f"/gateway/{ONLINE}/async-cmd", {"command": "netstat"}).json()["commandId"]
    assert isinstance(command, str) and command.isdigit()
    alt.advance(2)
    assert alt.ok(f"/gateway/{ONLINE}/async-cmd/cmd-{command}")["status"] == "SUCCESS"


# -- maintenance -----------------------------------------------------------------------------------


def test_reboot_password_upgrade_battery(api):
    response = api.post(f"/gateway/{ONLINE}/reboot")
    assert response.status_code == 204 and response.content == b""
    response = api.post(f"/gateway/{OFFLINE}/reboot")
    assert response.status_code == 500 and response.json()["message"] == "Gateway offline or unable to receive command"
    assert api.post(f"/gateway/{UNKNOWN_SN}/reboot").status_code == 404
    assert api.post(f"/gateway/{ONLINE}/password", {"password": "StrongPass!2025"}).status_code == 204
    for bad in ({}, {"password": ""}, {"password": 5}):
        assert api.post(f"/gateway/{ONLINE}/password", bad).status_code == 400
    assert api.post(f"/gateway/{UNKNOWN_SN}/password", {"password": "StrongPass!2025"}).status_code == 404
    assert api.post(f"/gateway/{ONLINE}/upgrade", {"version": "2.2.13"}).status_code == 204
    for bad in ({}, {"version": "latest"}, {"version": "2.2"}):
        assert api.post(f"/gateway/{ONLINE}/upgrade", bad).status_code == 400
    assert api.post(f"/gateway/{UNKNOWN_SN}/upgrade", {"version": "2.2.13"}).status_code == 404
    assert api.post(f"/gateway/{ONLINE}/battery", {"enabled": False}).status_code == 204
    assert api.post(f"/gateway/{ONLINE}/battery", {"enabled": "no"}).status_code == 400
    assert api.post(f"/gateway/{UNKNOWN_SN}/battery", {"enabled": True}).status_code == 404
    assert {k: v for k, v in counters(api.emu).items() if v} == {"reboots": 1, "passwordResets": 1, "upgrades": 1,
                                                                  "batteryMonitoring": 1}


# -- settings --------------------------------------------------------------------------------------


def test_priority_set_and_read_back(api):
    assert api.ok(f"/gateway/{CELLULAR}/network/priority") == {"sn": CELLULAR, "priority": "ETH_CELLULAR_WIFI"}
    assert api.post(f"/gateway/{CELLULAR}/network/priority", {"priority": "CELLULAR_WIFI_ETH"}).status_code == 204
    assert api.ok(f"/gateway/{CELLULAR}/network/priority")["priority"] == "CELLULAR_WIFI_ETH"
    wan = api.ok(f"/gateway/{CELLULAR}/status")["network"]["wan"]
    assert (wan["active"], wan["cellular"]["priority"], wan["ethernet"]["priority"]) == ("CELLULAR", 1, 3)
    for bad in ({"priority": "ETH_ETH_WIFI"}, {"priority": "eth_cellular_wifi"}, {}, {"priority": "ETH_WIFI"}):
        assert api.post(f"/gateway/{CELLULAR}/network/priority", bad).status_code == 400
    assert len(PRIORITIES) == 6
    assert counters(api.emu)["settingsWritten"] == 1


def test_lan_set_read_back_and_ethernet_restricted(api):
    lan = api.ok(f"/gateway/{ONLINE}/network/lan")
    assert set(lan) == {"sn", "ethernet", "wifi"} and lan["wifi"]["key"]
    wifi = {**lan["wifi"], "ssid": "GW-LAN", "encryption": "WPA2-PSK", "key": "StrongKey123"}
    assert api.post(f"/gateway/{ONLINE}/network/lan", {"wifi": wifi}).status_code == 204
    assert api.ok(f"/gateway/{ONLINE}/network/lan")["wifi"] == wifi
    assert api.ok(f"/gateway/{ONLINE}/status")["network"]["lan"]["wifi"] == wifi
    response = api.post(f"/gateway/{ONLINE}/network/lan", {"ethernet": {"enabled": True}, "wifi": wifi})
    assert response.status_code == 400 and "restricted" in response.json()["message"]
    assert api.ok(f"/gateway/{ONLINE}/network/lan")["ethernet"] == {"enabled": False}
    for bad in ({"key": "short"}, {"key": "k" * 64}, {"ssid": "s" * 33}, {"ssid": ""}, {"encryption": "WEP"},
                {"enabled": "yes"}, {"channel": "fast"}):
        assert api.post(f"/gateway/{ONLINE}/network/lan", {"wifi": {**wifi, **bad}}).status_code == 400, sorted(bad)
    assert api.post(f"/gateway/{ONLINE}/network/lan", {"wifi": {**wifi, "encryption": "NONE", "key": ""}}).status_code == 204
    assert api.post(f"/gateway/{ONLINE}/network/lan", {}).status_code == 400
    assert api.post(f"/gateway/{ONLINE}/network/lan", {"wifi": {**wifi, "key": "k" * 63}}).status_code == 204
    assert api.post(f"/gateway/{ONLINE}/network/lan", {"sn": ONLINE, "wifi": wifi}).status_code == 204  # sn ignored


def test_wan_set_and_read_back(api):
    wan = api.ok(f"/gateway/{CELLULAR}/network/wan")
    assert set(wan) == {"ethernet", "wifi", "cellular"} and wan["cellular"]["password"]
    assert api.post(f"/gateway/{CELLULAR}/network/wan", wan).status_code == 204
    assert api.ok(f"/gateway/{CELLULAR}/network/wan") == wan
    changed = {"cellular": {"enabled": False}}
    assert api.post(f"/gateway/{CELLULAR}/network/wan", changed).status_code == 204
    assert api.ok(f"/gateway/{CELLULAR}/network/wan") == {**wan, **changed}
    assert api.ok(f"/gateway/{CELLULAR}/status")["network"]["wan"]["cellular"]["enabled"] is False
    static = {"enabled": True, "protocol": "static"}
    for bad in ({"ethernet": static}, {"ethernet": {"enabled": True, "protocol": "pppoe"}},
                {"ethernet": {"enabled": True, "protocol": "ftp"}}, {"wifi": {"enabled": True, "protocol": "pppoe"}},
                {}, {"modem": {"enabled": True}}, {"ethernet": {"protocol": "dhcp"}},
                {"ethernet": {**wan["ethernet"], "tracking": {"pingCount": -1}}}):
        assert api.post(f"/gateway/{CELLULAR}/network/wan", bad).status_code == 400, sorted(bad)
    ok = {"ethernet": {**static, "staticAddress": {"ipAddress": "10.0.10.74", "netmask": "255.255.255.0"}}}
    assert api.post(f"/gateway/{CELLULAR}/network/wan", ok).status_code == 204


def test_syslog_set_and_read_back(api):
    syslog = api.ok(f"/gateway/{ONLINE}/syslog")
    assert set(syslog) == {"sn", "shareLogs", "logsRotationCycle", "wisdmLogsRetrievalCycle", "wisdmLogsRotationCycle",
                           "externalLogServer"}
    assert api.post(f"/gateway/{ONLINE}/syslog", syslog).status_code == 204
    assert api.ok(f"/gateway/{ONLINE}/syslog") == syslog
    new = {"shareLogs": "external", "logsRotationCycle": 3, "externalLogServer": {"ip": "192.168.1.10", "port": 514}}
    assert api.post(f"/gateway/{ONLINE}/syslog", new).status_code == 204
    assert api.ok(f"/gateway/{ONLINE}/syslog") == {**syslog, **new}
    for bad in ({"shareLogs": "everywhere"}, {"logsRotationCycle": 0}, {"wisdmLogsRotationCycle": "7"},
                {"externalLogServer": {"ip": "logs.example.com", "port": 514}},
                {"externalLogServer": {"ip": "10.0.0.1", "port": 70000}}, {}):
        assert api.post(f"/gateway/{ONLINE}/syslog", bad).status_code == 400, sorted(bad)
    assert api.post(f"/gateway/{ONLINE}/syslog", {"shareLogs": "wisdm"}).status_code == 204
    # shareLogs "external" needs a server: a gateway that has one keeps it, a body without one is refused
    assert api.post(f"/gateway/{ONLINE}/syslog", {"shareLogs": "externalAndWisdm"}).status_code == 400


def test_syslog_download(api):
    answer = api.ok(f"/gateway/{ONLINE}/syslog/download", params={"startDate": "2000-01-01T00:00:00Z",
                                                                  "endDate": "2100-01-01T00:00:00Z"})
    assert answer["sn"] == ONLINE and answer["startDate"] == "2000-01-01T00:00:00Z"
    assert answer["totalFiles"] == 30 and len(answer["files"]) == 20
    entry = answer["files"][0]
    assert set(entry) == {"key", "sizeBytes", "lastModified", "downloadUrl", "expiresAt"}
    assert entry["downloadUrl"].startswith("https://example.invalid/") and entry["key"] in entry["downloadUrl"]
    assert entry["key"].startswith(f"logs/{ONLINE}/")
    assert [f["lastModified"] for f in answer["files"]] == sorted((f["lastModified"] for f in answer["files"]), reverse=True)
    three = api.ok(f"/gateway/{ONLINE}/syslog/download", params={"startDate": "2000-01-01T00:00:00Z", "maxFiles": 3})
    assert len(three["files"]) == 3 and three["totalFiles"] == 30
    week = api.ok(f"/gateway/{ONLINE}/syslog/download")
    assert 7 <= week["totalFiles"] <= 8
    empty = api.ok(f"/gateway/{ONLINE}/syslog/download", params={"startDate": "2001-01-01T00:00:00Z",
                                                                 "endDate": "2001-02-01T00:00:00Z"})
    assert empty["totalFiles"] == 0 and empty["files"] == []
    for bad in ({"maxFiles": 0}, {"maxFiles": 201}, {"maxFiles": "many"}, {"startDate": "yesterday"},
                {"endDate": "2025-12-08"}, {"startDate": "2025-12-08T00:00:00Z", "endDate": "2025-12-01T00:00:00Z"}):
        assert api.get(f"/gateway/{ONLINE}/syslog/download", params=bad).status_code == 400, sorted(bad)
    assert api.get(f"/gateway/{ONLINE}/syslog/download", params={"maxFiles": 200}).status_code == 200


# -- gzip --------------------------------------------------------------------------------------------


def _raw(url: str, path: str, accept: str | None) -> tuple[dict, bytes]:
    """Headers and the raw (undecoded) body of a GET, through a plain socket."""
    host, port = url.removeprefix("http://").split(":")
    lines = [f"GET /v4{path} HTTP/1.1", f"Host: {host}", f"X-API-KEY: {KEYS['admin']}", "Connection: close"]
    if accept is not None:
        lines.append(f"Accept-Encoding: {accept}")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    return {k.lower(): v for k, v in headers.items()}, body


def test_gzip_with_accept_encoding(api):
    headers, body = _raw(api.url, "/organization", "gzip")
    assert headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
    assert body[:2] == b"\x1f\x8b" and json.loads(gzip.decompress(body))["id"] == ORG_A
    headers, body = _raw(api.url, "/organization", None)
    assert "content-encoding" not in headers and json.loads(body)["id"] == ORG_A
    headers, _ = _raw(api.url, "/organization", "identity")
    assert "content-encoding" not in headers
    headers, body = _raw(api.url, f"/gateway/{UNKNOWN_SN}/status", "gzip")  # errors too
    assert headers["content-encoding"] == "gzip" and json.loads(gzip.decompress(body)) == NOT_FOUND
    response = api.get(f"/location/{FACTORY_A}/gateways/status", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip" and len(response.json()["gateways"]) == 14


def test_alternative_gzip_only_for_large_answers(alt):
    headers, _ = _raw(alt.url, "/organization", "gzip")
    assert "content-encoding" not in headers and headers["vary"] == "Accept-Encoding"
    headers, body = _raw(alt.url, f"/location/{FACTORY_A}/gateways/status", "gzip")
    assert headers["content-encoding"] == "gzip" and len(json.loads(gzip.decompress(body))["gateways"]) == 14


# -- controls ----------------------------------------------------------------------------------------


def test_fixtures_and_counters(api):
    fixtures = control(api.emu, "fixtures", method="GET")
    assert {o["id"] for o in fixtures["organizations"]} == {ORG_A, ORG_B}
    by_name = {loc["name"]: loc for loc in fixtures["locations"]}
    assert by_name["Legacy Site"]["workMode"] == "Packet forwarder"
    assert by_name["Factory B"]["authenticationMode"] == "TLS Server and Client Authentication"
    assert by_name["Partner Depot"]["organizationId"] == ORG_B
    unassigned = fixtures["unassigned"]
    assert sum(g["organizationId"] == ORG_A and g["provisioned"] for g in unassigned) == 3
    assert sum(g["organizationId"] == ORG_A and not g["provisioned"] for g in unassigned) == 1
    assert sum(g["organizationId"] == ORG_B for g in unassigned) == 1
    assert set(counters(api.emu)) == {"reboots", "passwordResets", "upgrades", "batteryMonitoring", "locationsCreated",
                                      "gatewaysRegistered", "commands", "settingsWritten"}
    api.post(f"/gateway/{ONLINE}/network/priority", {"priority": "WIFI_ETH_CELLULAR"})
    control(api.emu, "reset")
    assert api.ok(f"/gateway/{ONLINE}/network/priority")["priority"] == "ETH_WIFI_CELLULAR"
    assert set(counters(api.emu).values()) == {0}
    keys = control(api.emu, "keys", method="GET")
    assert all("key" not in entry for entry in keys)
    assert {e["name"]: e["organizationId"] for e in keys} == {
        "reader": ORG_A, "ops": ORG_A, "admin": ORG_A, "partner": ORG_B, "factory-a": ORG_A, "lapsed": ORG_A}


# -- faults: each one changes the behaviour it names -------------------------------------------------

# fault -> probe(api) returning an observation; the probe's observation on the faulty emulator
# differs from the clean one's (and the clean one is what the tests above hold to the document).


def _status_code(method, path, body=None, key="admin"):
    def probe(api):
        return api.call(method, path, key, **({"json": body} if body is not None else {})).status_code
    return probe


def _walk_sns(api):
    pages = api.walk(FACTORY_A, "status", 5)
    return [g["sn"] for page in pages for g in page["gateways"]]


def _register(location, sn, **extra):
    def probe(api):
        return api.post(f"/location/{location}/gateways", {"sn": sn, "eui": _fixture_eui(api, sn), **extra}).status_code
    return probe


def _lan_probe(body):
    def probe(api):
        status = api.post(f"/gateway/{ONLINE}/network/lan", body).status_code
        return status, api.ok(f"/gateway/{ONLINE}/network/lan")["ethernet"]
    return probe


def _command_probe(api):
    command = api.post(f"/gateway/{ONLINE}/async-cmd", {"command": "netstat"}).json()["commandId"]
    api.advance(5)
    return api.ok(f"/gateway/{ONLINE}/async-cmd/{command}")["status"]


def _gzip_probe(api):
    return _raw(api.url, "/organization", "gzip")[0].get("content-encoding")


def _page_sizes(api):
    return [len(p["gateways"]) for p in api.walk(FACTORY_A, "status", 5)]


def _download_count(params):
    def probe(api):
        response = api.get(f"/gateway/{ONLINE}/syslog/download", params={"startDate": "2000-01-01T00:00:00Z", **params})
        return response.status_code, len(response.json().get("files", [])) if response.status_code == 200 else None
    return probe


def _near_miss(transform, header="X-API-KEY"):
    def probe(api):
        response = requests.get(api.url + "/v4/organization", headers={header: transform(KEYS["admin"])}, timeout=5)
        return response.status_code
    return probe


WAN_OK = f"/gateway/{ONLINE}/network/wan"
PROBES = {
    "read_key_can_write": _status_code("POST", f"/gateway/{ONLINE}/reboot", key="reader"),
    "permission_unchecked": _status_code("POST", f"/gateway/{ONLINE}/upgrade", {"version": "2.2.15"}, key="ops"),
    "expired_key_accepted": _status_code("GET", "/organization", key="lapsed"),
    "empty_key_accepted": _near_miss(lambda key: ""),
    "key_prefix_accepted": _near_miss(lambda key: key[:-6]),
    "key_last_char_ignored": _near_miss(lambda key: key[:-1]),
    "key_extra_ignored": _near_miss(lambda key: key + "0"),
    "key_case_insensitive": _near_miss(str.swapcase),
    "key_read_from_authorization": _near_miss(lambda key: key, "Authorization"),
    "key_scheme_stripped": _near_miss(lambda key: "Bearer " + key),
    "other_organization_locations_listed": _status_code("GET", f"/organization/{ORG_A}/locations", key="partner"),
    "other_organization_location_served": _status_code("GET", f"/location/{FACTORY_A}/gateways", key="partner"),
    "other_organization_gateway_served": _status_code("GET", f"/gateway/{ONLINE}/status", key="partner"),
    "existence_leaked_403": _status_code("GET", f"/location/{FACTORY_A}/gateways", key="partner"),
    "location_restriction_ignored": _status_code("GET", f"/location/{FACTORY_B}/gateways", key="factory-a"),
    "total_mismatch": lambda api: api.ok(f"/organization/{ORG_A}/locations")["total"],
    "page_larger_than_page_size": _page_sizes,
    "pages_overlap": _walk_sns,
    "pages_skip_one": _walk_sns,
    "total_pages_off_by_one": lambda api: api.ok(f"/location/{FACTORY_A}/gateways/status", params={"pageSize": 5})["totalPages"],
    "next_token_on_last_page": lambda api: [("nextToken" in p, len(p["gateways"])) for p in api.walk(FACTORY_A, "battery", 5)],
    "malformed_token_first_page": _status_code("GET", f"/location/{FACTORY_A}/gateways/status?nextToken=%25%25"),
    "location_name_length_unchecked": _status_code("POST", f"/organization/{ORG_A}/locations", {**LOCATION_BODY, "name": "abc"}),
    "channels_number_unchecked": _status_code("POST", f"/organization/{ORG_A}/locations", {**LOCATION_BODY, "channelsNumber": 12}),
    "server_port_unchecked": _status_code("POST", f"/organization/{ORG_A}/locations", _station(serverPort=70000)),
    "duplicate_location_201": _status_code("POST", f"/organization/{ORG_A}/locations", {**LOCATION_BODY, "name": "Factory A"}),
    "non_basics_station_registration_accepted": _register(LEGACY_SITE, FREE),
    "unprovisioned_gateway_registered": _register(FACTORY_A, UNPROVISIONED),
    "tls_fields_not_required": _register(FACTORY_B, FREE),
    "max_files_unchecked": _download_count({"maxFiles": 500}),
    "more_files_than_max_files": _download_count({"maxFiles": 3}),
    "wifi_key_length_unchecked": _status_code("POST", f"/gateway/{ONLINE}/network/lan",
                                              {"wifi": {"encryption": "WPA2-PSK", "key": "short"}}),
    "ethernet_lan_change_applied": _lan_probe({"ethernet": {"enabled": True}}),
    "command_stays_pending": _command_probe,
    "unknown_command_200": _status_code("GET", f"/gateway/{ONLINE}/async-cmd/1760413840"),
    "created_as_200": _register(FACTORY_A, FREE),
    "no_content_as_200": lambda api: (lambda r: (r.status_code, r.content))(api.post(f"/gateway/{ONLINE}/reboot")),
    "unknown_gateway_200": _status_code("GET", f"/gateway/{UNKNOWN_SN}/status"),
    "unknown_gateway_500": _status_code("GET", f"/gateway/{UNKNOWN_SN}/network/lan"),
    "gzip_ignored": _gzip_probe,
}
EXPECTED = {  # what the faulty emulator shows, where one value says it
    "read_key_can_write": 204, "permission_unchecked": 204, "expired_key_accepted": 200, "key_prefix_accepted": 200,
    "key_case_insensitive": 200, "empty_key_accepted": 200, "key_last_char_ignored": 200, "key_extra_ignored": 200,
    "key_read_from_authorization": 200, "key_scheme_stripped": 200, "other_organization_locations_listed": 200, "other_organization_location_served": 200,
    "other_organization_gateway_served": 200, "existence_leaked_403": 403, "location_restriction_ignored": 200,
    "total_mismatch": 5, "page_larger_than_page_size": [6, 6, 4], "total_pages_off_by_one": 2,
    "next_token_on_last_page": [(True, 5), (True, 5), (True, 4), (False, 0)], "malformed_token_first_page": 200,
    "location_name_length_unchecked": 201, "channels_number_unchecked": 201, "server_port_unchecked": 201,
    "duplicate_location_201": 201, "non_basics_station_registration_accepted": 201,
    "unprovisioned_gateway_registered": 201, "tls_fields_not_required": 201, "max_files_unchecked": (200, 30),
    "more_files_than_max_files": (200, 30), "wifi_key_length_unchecked": 204,
    "ethernet_lan_change_applied": (204, {"enabled": True}), "command_stays_pending": "PENDING",
    "unknown_command_200": 200, "created_as_200": 200, "no_content_as_200": (200, b'{"success":true}'),
    "unknown_gateway_200": 200, "unknown_gateway_500": 500, "gzip_ignored": None,
}


def test_every_fault_has_a_probe():
    assert set(PROBES) == set(FAULTS)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_changes_the_behaviour_it_names(api, fault):
    clean = PROBES[fault](api)
    with start(faults=[fault]) as faulty:
        seen = PROBES[fault](Api(faulty))
    assert seen != clean
    if fault in EXPECTED:
        assert seen == EXPECTED[fault]
    if fault == "pages_overlap":
        assert len(seen) == 15 and len(set(seen)) == 14
    if fault == "pages_skip_one":
        assert len(seen) == len(set(seen)) == 13
