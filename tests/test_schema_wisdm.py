"""Sanity tests of schemas/wisdm.yaml, the WisDM OpenAPI document.

The document (../shared/docs/wisdm-api.txt) is the specification: per endpoint its "Requires ..."
sentence (the permission), request and response examples, field tables and error-code table; NOTES.md
says that no error body format is published and that the page types `commandId` as a number in one answer
and a string in another, and battery `voltage` as integer with decimal examples. The tables below are the
document's, written out; where the document is next to the checkout, tests parse it and compare.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import openapi_spec_validator
import pytest
import requests
import yaml

from conformlab.schema import DeviceSchema
from openapi_doc import _operations, _resolve, built_operations, forbidden_additional_properties, request_validator, schema_fixtures, reading_marks
from vendor_docs import DOCS  # the bundled copies of the vendor documents

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "schemas" / "wisdm.yaml"
DOCUMENT_PATH = DOCS / "wisdm-api.txt"
needs_document = pytest.mark.skipif(not DOCUMENT_PATH.exists(), reason="the vendor documents are not next to the checkout")
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")

# Every endpoint of the document (paths below /v4) with the grants its "Requires ..." sentence names, in
# the access matrix's vocabulary: "Read permission" -> read; "Read and Write permission" -> read, write;
# "WRITE_<X> permission" -> write and WRITE_<X>.
NET, SYS = "WRITE_EDIT_NETWORK_INTERFACE", "WRITE_EDIT_SYSTEM_SETTINGS"
ACCESS = {
    ("GET", "/version"): "read",
    ("GET", "/organization"): "read",
    ("GET", "/organization/{organizationId}/locations"): "read",
    ("POST", "/organization/{organizationId}/locations"): ["write", "WRITE_ADD_LOCATION_TO_ORGANIZATION"],
    ("GET", "/location/{locationId}/gateways"): "read",
    ("POST", "/location/{locationId}/gateways"): ["write", "WRITE_ADD_GATEWAY_TO_LOCATION"],
    ("GET", "/location/{locationId}/gateways/status"): "read",
    ("GET", "/location/{locationId}/gateways/battery"): "read",
    ("GET", "/gateway/{sn}/status"): "read",
    ("GET", "/gateway/{sn}/perf/{metric}"): "read",
    ("GET", "/gateway/{sn}/battery"): "read",
    ("POST", "/gateway/{sn}/battery"): ["write", "WRITE_ENABLE_BATTERY_MONITORING"],
    ("POST", "/gateway/{sn}/async-cmd"): ["read", "write"],
    ("GET", "/gateway/{sn}/async-cmd/{commandId}"): "read",
    ("POST", "/gateway/{sn}/reboot"): ["write", "WRITE_REBOOT_GATEWAY"],
    ("POST", "/gateway/{sn}/password"): ["write", "WRITE_RESET_PASSWORD"],
    ("POST", "/gateway/{sn}/upgrade"): ["write", "WRITE_UPGRADE_FIRMWARE"],
    ("GET", "/gateway/{sn}/network/priority"): "read",
    ("POST", "/gateway/{sn}/network/priority"): ["write", NET],
    ("GET", "/gateway/{sn}/network/lan"): "read",
    ("POST", "/gateway/{sn}/network/lan"): ["write", NET],
    ("GET", "/gateway/{sn}/network/wan"): "read",
    ("POST", "/gateway/{sn}/network/wan"): ["write", NET],
    ("GET", "/gateway/{sn}/syslog"): "read",
    ("POST", "/gateway/{sn}/syslog"): ["write", SYS],
    ("GET", "/gateway/{sn}/syslog/download"): "read",
}
OPERATIONS = set(ACCESS)
PERMISSIONS = {"WRITE_ADD_LOCATION_TO_ORGANIZATION", "WRITE_ADD_GATEWAY_TO_LOCATION", "WRITE_UPGRADE_FIRMWARE", NET,
               "WRITE_REBOOT_GATEWAY", "WRITE_RESET_PASSWORD", "WRITE_ENABLE_BATTERY_MONITORING", SYS}
DESTRUCTIVE = {("POST", "/organization/{organizationId}/locations"), ("POST", "/location/{locationId}/gateways"),
               ("POST", "/gateway/{sn}/reboot"), ("POST", "/gateway/{sn}/password"),
               ("POST", "/gateway/{sn}/upgrade"), ("POST", "/gateway/{sn}/battery"), ("POST", "/gateway/{sn}/network/wan")}
SETTINGS = {"/gateway/{sn}/network/priority", "/gateway/{sn}/network/lan", "/gateway/{sn}/network/wan", "/gateway/{sn}/syslog"}
NO_BODY = {("POST", "/gateway/{sn}/reboot")}
SUCCESS = {key: ("200" if key[0] == "GET" else "204") for key in OPERATIONS} | {
    ("POST", "/organization/{organizationId}/locations"): "201",
    ("POST", "/location/{locationId}/gateways"): "201",
    ("POST", "/gateway/{sn}/async-cmd"): "200",
}

# The "Error Codes" tables (the sections without one are not listed).
_COMMON = {"400": "Invalid Parameters", "403": "Insufficient permission", "404": "Gateway Not Found",
           "500": "Internal Server Error"}
ERROR_TABLES = {
    ("GET", "/version"): {"400": "Invalid parameters", "403": "Insufficient permission", "500": "Internal Server Error"},
    ("GET", "/organization"): {"400": "Invalid parameters", "403": "Insufficient permission",
                               "404": "Resource Not Found", "500": "Internal Server Error"},
    ("POST", "/organization/{organizationId}/locations"): {
        "400": "Invalid parameters", "403": "Insufficient permission", "404": "Organization not found",
        "409": "Location already exists or conflicting configuration", "500": "Internal Server Error"},
    ("POST", "/location/{locationId}/gateways"): {
        "400": "Invalid Parameters", "403": "Insufficient Permission", "404": "Resource Not Found",
        "406": "Invalid Mode Location is not in Basics Station mode, or the gateway is not factory-registered",
        "500": "Internal Server Error"},
    ("POST", "/gateway/{sn}/battery"): _COMMON,
    ("POST", "/gateway/{sn}/async-cmd"): _COMMON,
    ("GET", "/gateway/{sn}/async-cmd/{commandId}"): {
        "400": "Incorrect or missing commandId", "403": "Insufficient permission",
        "404": "CommandId does not exist or has expired", "500": "Gateway offline or internal fault"},
    ("POST", "/gateway/{sn}/reboot"): {
        "400": "Missing or incorrect Serial Number", "403": "Insufficient Permission", "404": "Gateway Not Found",
        "500": "Gateway offline or unable to receive command"},
    ("POST", "/gateway/{sn}/password"): {
        "400": "The password field was omitted or invalid", "403": "Insufficient Permission",
        "500": "Gateway offline or internal configuration issue"},
    ("POST", "/gateway/{sn}/upgrade"): {
        "400": "Invalid serial number or firmware version", "403": "Insufficient Permission",
        "404": "Gateway Not Found", "500": "Internal Server Error"},
    ("GET", "/gateway/{sn}/network/priority"): {
        "400": "Incorrect or missing Serial Number", "403": "Insufficient Permission", "404": "Gateway Not Found",
        "500": "Gateway not reachable or config file error"},
    ("POST", "/gateway/{sn}/network/priority"): {
        "400": "Missing priority field or incorrect syntax", "403": "Insufficient Permission",
        "404": "Gateway Not Found", "500": "Gateway not reachable or config file error"},
    ("GET", "/gateway/{sn}/network/lan"): {
        "400": "Missing or malformed Serial Number", "403": "Insufficient Permission", "404": "Gateway Not Found",
        "500": "Gateway unreachable or data retrieval error"},
    ("POST", "/gateway/{sn}/network/lan"): {
        "400": "JSON syntax error or missing required field", "403": "Insufficient Permission",
        "404": "Gateway Not Found", "500": "Gateway unreachable or failed configuration push"},
    ("POST", "/gateway/{sn}/network/wan"): {**_COMMON, "403": "Insufficient Permission"},
}
# What the schema declares besides: 401 everywhere (a missing, unknown or expired key may get it; the page
# lists only 403); the sections without a table: 400, 403, 404 (a reading); password also 404 (a reading).
# Password: the page's table has no 404 (the contract's reading); location creation: the page gives its answer
# without a status, so 200 is declared beside the reading's 201.
EXTRA_DECLARED = {("POST", "/gateway/{sn}/password"): {"404"}, ("POST", "/organization/{organizationId}/locations"): {"200"}}
NO_TABLE_DECLARED = {"400", "403", "404", "4XX", "500"}


def declared_statuses(key) -> set[str]:
    errors = set(ERROR_TABLES[key]) if key in ERROR_TABLES else NO_TABLE_DECLARED
    return {SUCCESS[key], "401"} | errors | EXTRA_DECLARED.get(key, set())


# ---------------------------------------------------------------------------------------------------
# Fixtures and helpers

doc, registry, st_schema = schema_fixtures(SCHEMA_PATH)


@pytest.fixture(scope="module")
def device_schema():
    return DeviceSchema(SCHEMA_PATH)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key written twice in one mapping (yaml.safe_load keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise AssertionError(f"line {key_node.start_mark.line + 1}: {key!r} is written twice")
            seen.add(key)
        return super().construct_mapping(node, deep)


def canned(status: str | int, body=None, content_type: str | None = "application/json") -> requests.Response:
    response = requests.Response()
    response.status_code = int(status)
    if content_type:
        response.headers["Content-Type"] = content_type
    if body is None:
        response._content = b""
    elif isinstance(body, str) and content_type != "application/json":
        response._content = body.encode()
    else:
        response._content = json.dumps(body).encode()
    return response


def check(device_schema, method, path, status, body, readings=True, content_type="application/json"):
    op = device_schema.operation(method, path)
    return device_schema.check_answer(op, canned(status, body, content_type), readings=readings)


def _json_block(lines: list[str], start: int):
    """The JSON value starting at lines[start] (lines of dots, the page's "more items", dropped)."""
    depth, taken = 0, []
    for line in lines[start:]:
        if re.fullmatch(r"\s*\.{3,}\s*", line):
            continue
        taken.append(line)
        depth += line.count("{") + line.count("[") - line.count("}") - line.count("]")
        if depth == 0:
            break
    return json.loads(re.sub(r",\s*([\]}])", r"\1", "\n".join(taken)))


def document_endpoints() -> list[dict]:
    """Each endpoint of the document: method, path, grants, error table, request and response example."""
    lines = DOCUMENT_PATH.read_text(encoding="utf-8").splitlines()
    marks = [i for i, line in enumerate(lines) if line.strip() == "Endpoint"]
    endpoints = []
    for n, at in enumerate(marks):
        method, url = lines[at + 1].split()
        before = lines[(marks[n - 1] + 2 if n else 0):at]
        after = lines[at + 2:(marks[n + 1] if n + 1 < len(marks) else len(lines))]
        requires = [line for line in before if line.startswith("Requires")][-1]
        if permission := re.search(r"\bWRITE_[A-Z_]+", requires):
            grants = ["write", permission.group()]
        elif "Read and Write permission" in requires:
            grants = ["read", "write"]
        else:
            assert "Read permission" in requires, requires
            grants = "read"
        table = {}
        if "Error Codes" in after:
            for row in after[after.index("Error Codes") + 1:]:
                cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
                if not row.startswith("|"):
                    break
                if cells[0].isdigit():
                    table[cells[0]] = cells[1]
        request = response = None
        if "Request Example" in after:
            first = after.index("Request Example")
            body = next((i for i in range(first, len(after)) if after[i].startswith("{")
                         or after[i] in ("Request Fields", "Response Example")), None)
            if body is not None and after[body].startswith("{"):
                request = _json_block(after, body)
        if "Response Example" in after:
            first = after.index("Response Example") + 1
            response = 204 if after[first].strip() == "204 No Content" else _json_block(after, first)
        endpoints.append({"key": (method, url.removeprefix("/v4")), "grants": grants, "errors": table,
                          "request": request, "response": response})
    return endpoints


def connection_test_example() -> dict:
    """The "Test Your Connection" response example (GET /v4/organization), before the API reference."""
    lines = DOCUMENT_PATH.read_text(encoding="utf-8").splitlines()
    return _json_block(lines, lines.index("Response Example") + 1)


# ---------------------------------------------------------------------------------------------------
# The document


def test_openapi_31_document_is_valid(doc):
    assert doc["openapi"] == "3.1.0"
    openapi_spec_validator.validate(doc)
    assert doc["servers"] == [{"url": "/v4"}]
    assert doc["x-conformlab"] == {"device": "wisdm", "prefix": "/v4"}
    scheme = doc["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-KEY")
    assert doc["security"] == [{"apiKey": []}]  # "Every request requires a valid API key"
    assert all("security" not in op for _, _, op in _operations(doc))


def test_no_key_is_written_twice():
    yaml.load(SCHEMA_PATH.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)


def test_every_documented_operation_once_and_nothing_else(doc, device_schema):
    listed = [(m, p) for m, p, _ in _operations(doc)]
    assert len(listed) == len(set(listed)) == 26
    assert set(listed) == OPERATIONS
    assert [op.key for op in device_schema.operations] == [f"{m} {p}" for m, p in listed]


@needs_document
def test_the_operations_are_the_documents():
    endpoints = [e["key"] for e in document_endpoints()]
    assert len(endpoints) == len(set(endpoints)) and set(endpoints) == OPERATIONS


def test_the_harness_schema_loader_reads_it(device_schema):
    from conformlab.schema import device_schema as load

    assert {op.key for op in load("wisdm").operations} == {f"{m} {p}" for m, p in OPERATIONS}
    ops = {(op.method, op.path): op for op in device_schema.operations}
    assert {key for key, op in ops.items() if op.destructive} == DESTRUCTIVE
    assert {key for key, op in ops.items() if not op.fuzz} == DESTRUCTIVE
    assert {key for key, op in ops.items() if op.reads} == {("POST", path) for path in SETTINGS}
    for (method, path), op in ops.items():
        if op.reads:
            assert op.reads == path and ("GET", path) in ops
        assert op.body_kind == (None if method == "GET" or (method, path) in NO_BODY else "json"), op
        names = re.findall(r"\{([^}]+)\}", path)
        assert [p["name"] for p in op.path_parameters] == names, op
        assert all(p["required"] is True and p.get("example") for p in op.path_parameters), op
        assert op.statuses == declared_statuses((method, path)), f"{op}: {sorted(op.statuses)}"
        assert not op.restarts  # a rebooted or upgraded gateway is in the field; the cloud stays up


def test_access_and_x_conformlab(device_schema):
    for op in device_schema.operations:
        ext = op.extension
        assert set(ext) <= {"access", "destructive", "reads", "fuzz"}, f"{op}: {ext}"
        assert ext["access"] == ACCESS[(op.method, op.path)], op
        if op.method == "GET":
            assert op.access == ("read",)
        else:
            assert "write" in op.access and set(op.access) - {"read", "write"} <= PERMISSIONS
        if "destructive" in ext:
            assert isinstance(ext["destructive"], str) and len(ext["destructive"]) > 30 and ext["fuzz"] is False
    assert device_schema.operation("GET", "/organization/{organizationId}/locations").path_parameters[0][
        "x-conformlab"] == {"from": "/organization", "pointer": "/id"}


@needs_document
def test_access_is_the_documents_requires_sentence():
    for endpoint in document_endpoints():
        assert endpoint["grants"] == ACCESS[endpoint["key"]], endpoint["key"]


@needs_document
def test_error_tables_are_the_documents():
    tables = {e["key"]: e["errors"] for e in document_endpoints() if e["errors"]}
    assert tables == ERROR_TABLES


def test_documented_statuses_are_declared_with_the_tables_meaning(doc):
    for method, path, op in _operations(doc):
        responses = op["responses"]
        for status, meaning in ERROR_TABLES.get((method, path), {}).items():
            assert responses[status]["description"] == meaning, f"{method} {path} {status}"
        success = SUCCESS[(method, path)]
        if success == "204":
            assert "content" not in responses["204"], f"{method} {path}"
        else:
            assert set(responses[success]["content"]) == {"application/json"}, f"{method} {path}"
        for status, response in responses.items():
            if status[0] in "45":
                assert response["description"]
                assert response["content"] == {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
                    "text/plain": {"schema": {"$ref": "#/components/schemas/ErrorText"}},
                }, f"{method} {path} {status}"


# ---------------------------------------------------------------------------------------------------
# The document's examples


@needs_document
def test_document_response_examples_validate(device_schema):
    endpoints = document_endpoints()
    assert sum(1 for e in endpoints if e["response"] is not None) == 26
    for endpoint in endpoints:
        method, path = key = endpoint["key"]
        example = endpoint["response"]
        if example == 204:
            assert SUCCESS[key] == "204", key
            assert check(device_schema, method, path, "204", None, content_type=None) == []
            continue
        status = SUCCESS[key]
        assert check(device_schema, method, path, status, example, readings=False) == [], key
        problems = check(device_schema, method, path, status, example)
        if key == ("GET", "/gateway/{sn}/async-cmd/{commandId}"):
            # the page's example has no state field: `status` is only the reading
            assert len(problems) == 1 and "'status' is a required property" in problems[0]
        else:
            assert problems == [], problems
        op = device_schema.operation(method, path)
        assert op.spec["responses"][status]["content"]["application/json"]["example"] == example, key
    assert check(device_schema, "GET", "/organization", "200", connection_test_example()) == []


@needs_document
def test_document_request_examples_validate(doc, registry, device_schema):
    with_body = [e for e in document_endpoints() if e["request"] is not None]
    assert {e["key"] for e in with_body} == {(m, p) for m, p in OPERATIONS if m == "POST"} - NO_BODY
    for endpoint in with_body:
        method, path = endpoint["key"]
        request_validator(doc, registry, method, path).validate(endpoint["request"])
        assert device_schema.operation(method, path).example == endpoint["request"], endpoint["key"]


def test_schema_examples_validate(doc, registry, device_schema):
    for method, path, op in _operations(doc):
        if "requestBody" in op:
            request_validator(doc, registry, method, path).validate(op["requestBody"]["content"]["application/json"]["example"])
        for status, response in op["responses"].items():
            example = (_resolve(doc, response).get("content") or {}).get("application/json", {}).get("example")
            if example is not None:
                assert check(device_schema, method, path, status, example, readings=False) == []


# ---------------------------------------------------------------------------------------------------
# Request field rules


LOCATION = {"name": "Factory Z", "workMode": "Basics station", "channelsNumber": 16,
            "basicStation": {"serverType": "LNS", "serverURL": "https://lns.example.com", "serverPort": 443,
                             "authenticationMode": "TLS Server and Client Authentication"}}
WIFI = {"enabled": True, "ssid": "GW-LAN", "encryption": "WPA2-PSK", "key": "StrongKey123", "channel": "Auto", "hidden": False}
SYSLOG = {"shareLogs": "externalAndWisdm", "logsRotationCycle": 7, "externalLogServer": {"ip": "192.168.1.10", "port": 514}}


def _station(**changes):
    return {**LOCATION, "basicStation": {**LOCATION["basicStation"], **changes}}


@pytest.mark.parametrize("path, body, valid", [
    ("/organization/{organizationId}/locations", LOCATION, True),
    ("/organization/{organizationId}/locations", {**LOCATION, "name": "abcd"}, True),
    ("/organization/{organizationId}/locations", {**LOCATION, "name": "a" * 50}, True),
    ("/organization/{organizationId}/locations", {**LOCATION, "name": "abc"}, False),
    ("/organization/{organizationId}/locations", {**LOCATION, "name": "a" * 51}, False),
    ("/organization/{organizationId}/locations", {**LOCATION, "channelsNumber": 8}, True),
    ("/organization/{organizationId}/locations", {**LOCATION, "channelsNumber": 12}, False),
    ("/organization/{organizationId}/locations", {**LOCATION, "channelsNumber": "8"}, False),
    ("/organization/{organizationId}/locations", {**LOCATION, "workMode": "Packet forwarder"}, False),
    ("/organization/{organizationId}/locations", _station(serverPort=1), True),
    ("/organization/{organizationId}/locations", _station(serverPort=65535), True),
    ("/organization/{organizationId}/locations", _station(serverPort=0), False),
    ("/organization/{organizationId}/locations", _station(serverPort=65536), False),
    ("/organization/{organizationId}/locations", _station(serverPort="443"), False),
    ("/organization/{organizationId}/locations", _station(serverType="CUPS-BOOT"), True),
    ("/organization/{organizationId}/locations", _station(serverType="MQTT"), False),
    ("/organization/{organizationId}/locations", _station(authenticationMode="None"), True),
    ("/organization/{organizationId}/locations",
     _station(authenticationMode="TLS Server Authentication and Client Token Authentication"), True),
    ("/organization/{organizationId}/locations", _station(authenticationMode="Token"), False),
    ("/location/{locationId}/gateways", {"sn": "918100M46020602001", "eui": "ac1f09fffe0707a1"}, True),
    ("/location/{locationId}/gateways", {"eui": "ac1f09fffe0707a1"}, False),
    ("/gateway/{sn}/battery", {"enabled": False}, True),
    ("/gateway/{sn}/battery", {"enabled": "yes"}, False),
    ("/gateway/{sn}/async-cmd", {"command": "netstat"}, True),
    ("/gateway/{sn}/async-cmd", {"args": "-apn"}, False),
    ("/gateway/{sn}/async-cmd", {"command": "netstat", "timeout": "60"}, False),
    ("/gateway/{sn}/password", {"password": "x"}, True),
    ("/gateway/{sn}/password", {"password": ""}, False),
    ("/gateway/{sn}/password", {}, False),
    ("/gateway/{sn}/upgrade", {"version": "2.2.15"}, True),
    ("/gateway/{sn}/upgrade", {"version": "latest"}, False),
    ("/gateway/{sn}/network/priority", {"priority": "WIFI_ETH_CELLULAR"}, True),
    ("/gateway/{sn}/network/priority", {"priority": 1}, False),
    ("/gateway/{sn}/network/priority", {}, False),
    ("/gateway/{sn}/network/lan", {"wifi": WIFI}, True),
    ("/gateway/{sn}/network/lan", {"wifi": {**WIFI, "ssid": "s" * 32, "key": "k" * 63}}, True),
    ("/gateway/{sn}/network/lan", {"wifi": {**WIFI, "ssid": "s" * 33}}, False),
    ("/gateway/{sn}/network/lan", {"wifi": {**WIFI, "key": "k" * 8}}, True),
    ("/gateway/{sn}/network/lan", {"wifi": {**WIFI, "key": "k" * 7}}, False),
    ("/gateway/{sn}/network/lan", {"wifi": {**WIFI, "key": "k" * 64}}, False),
    ("/gateway/{sn}/network/lan", {"wifi": {**WIFI, "encryption": "WPA-WPA2-PSK-MIXED"}}, True),
    ("/gateway/{sn}/network/lan", {"wifi": {**WIFI, "encryption": "WEP"}}, False),
    ("/gateway/{sn}/network/wan", {"ethernet": {"enabled": True, "protocol": "static", "staticAddress": {}}}, True),
    ("/gateway/{sn}/network/wan", {"ethernet": {"enabled": True, "protocol": "static"}}, False),
    ("/gateway/{sn}/network/wan", {"ethernet": {"enabled": True, "protocol": "pppoe"}}, False),
    ("/gateway/{sn}/network/wan", {"ethernet": {"enabled": True, "protocol": "dhcp"}}, False),
    ("/gateway/{sn}/network/wan", {"wifi": {"enabled": True, "protocol": "pppoe", "pppoe": {}}}, False),
    ("/gateway/{sn}/network/wan", {"cellular": {"enabled": True, "apn": "internet"}}, True),
    ("/gateway/{sn}/syslog", SYSLOG, True),
    ("/gateway/{sn}/syslog", {"shareLogs": "wisdm"}, True),
    ("/gateway/{sn}/syslog", {"shareLogs": "all"}, False),
    ("/gateway/{sn}/syslog", {"shareLogs": "external"}, False),  # "Required when shareLogs includes external"
    ("/gateway/{sn}/syslog", {**SYSLOG, "externalLogServer": {"ip": "192.168.1.10", "port": 65536}}, False),
])
def test_request_field_rules(doc, registry, path, body, valid):
    assert request_validator(doc, registry, "POST", path).is_valid(body) is valid


def _parameter(device_schema, method, path, name) -> dict:
    (param,) = [p for p in device_schema.operation(method, path).spec["parameters"] if p["name"] == name]
    return param


def test_query_and_path_parameters(device_schema):
    for path in ("/location/{locationId}/gateways/status", "/location/{locationId}/gateways/battery"):
        page_size = _parameter(device_schema, "GET", path, "pageSize")
        assert page_size["in"] == "query" and page_size["schema"]["type"] == "integer"
        assert _parameter(device_schema, "GET", path, "nextToken")["schema"]["type"] == "string"
    assert _parameter(device_schema, "GET", "/gateway/{sn}/perf/{metric}", "interval")["in"] == "query"
    assert _parameter(device_schema, "GET", "/gateway/{sn}/perf/{metric}", "metric")["schema"]["enum"] == [
        "rssi", "snr", "uplink", "downlink"]
    download = "/gateway/{sn}/syslog/download"
    assert _parameter(device_schema, "GET", download, "maxFiles")["schema"] == {
        "type": "integer", "minimum": 1, "maximum": 200, "default": 20}
    for name in ("startDate", "endDate"):
        assert _parameter(device_schema, "GET", download, name)["schema"]["type"] == "string"


# ---------------------------------------------------------------------------------------------------
# Answers: the document's ambiguities pass either way; what the document says stays binding


GATEWAY = {"sn": "918100M46020602001", "eui": "ac1f09fffe0707a1", "name": "RAK7268V2H-918100M46020602001",
           "model": "RAK7268V2H", "mac": "AC:1F:09:07:07:A1", "status": "ONLINE", "lastDyingGasp": "None"}
STATUS = {**GATEWAY, "system": {"uptime": 3142, "cpu": 35, "memory": 51}, "gps": {"longitude": 0.0, "latitude": 0.0},
          "network": {"lan": {"subnet": "192.168.230.1/24", "ethernet": {"enabled": False}, "wifi": {"enabled": False}},
                      "wan": {"active": "ETH", "ethernet": {"enabled": True, "priority": 1},
                              "wifi": {"enabled": False, "priority": 2}, "cellular": {"enabled": False, "priority": 3}}},
          "lora": {"activeNodes": 3, "txPackets": 0, "rxPackets": 497},
          "storage": {"healthy": True, "total": 15176, "free": 15139, "used_percent": 0}}
BATTERY = {"temperature": 26, "voltage": 13.6, "soc": 51, "current": -180, "soh": 100, "cycles": 5,
           "remainCapacity": 25520, "fullChargeCapacity": 50000, "mode": "DISCHARGING"}
RESULT = {"sn": "GW123456", "commandId": "1760413840", "result": "tcp 0 0 0.0.0.0:80 LISTEN", "status": "SUCCESS"}
SYSLOG_ANSWER = {"sn": "918100RN6040814001", "shareLogs": "externalAndWisdm", "logsRotationCycle": 7,
                 "wisdmLogsRetrievalCycle": 10, "wisdmLogsRotationCycle": 14,
                 "externalLogServer": {"ip": "192.168.1.10", "port": 514}}
WAN = {"ethernet": {"enabled": True, "protocol": "dhcp"}, "wifi": {"enabled": False}, "cellular": {"enabled": False}}
ASYNC, RESULT_PATH = "/gateway/{sn}/async-cmd", "/gateway/{sn}/async-cmd/{commandId}"


def _without(base: dict, *keys) -> dict:
    return {k: v for k, v in base.items() if k not in keys}


def _status(**changes) -> dict:
    return {**STATUS, **changes}


# Both forms pass everywhere (the page's own contradictions and tolerances).
TOLERATED = [
    ("POST", ASYNC, "200", {"commandId": 1760413840}),
    ("GET", RESULT_PATH, "200", RESULT),
    ("GET", "/gateway/{sn}/battery", "200", {"sn": "s", "battery": {**BATTERY, "voltage": 13}}),  # integer, as typed
    ("GET", "/gateway/{sn}/battery", "200", {"sn": "s", "battery": {**BATTERY, "voltage": 13.6}}),  # as shown
    ("GET", "/gateway/{sn}/status", "200", _status(lastDyingGasp="2025-10-09T10:00:00Z")),
    ("GET", "/version", "200", {"version": "v4.1.0", "commitId": "b", "buildDate": "2026-01-01"}),  # a newer cloud
    ("GET", "/gateway/{sn}/status", "200", _status(firmware="2.2.15")),
    ("GET", "/location/{locationId}/gateways/status", "200", {"pageSize": 5, "totalPages": 1, "gateways": [STATUS]}),
    ("GET", "/gateway/{sn}/perf/{metric}", "200", {"result": [{"value": -87.5, "timestamp": "2025-10-09T10:00:00Z"}]}),
    ("GET", "/gateway/{sn}/syslog", "200", {**_without(SYSLOG_ANSWER, "externalLogServer"), "shareLogs": "wisdm"}),
    ("GET", "/gateway/{sn}/network/wan", "200", WAN),
    ("POST", "/gateway/{sn}/reboot", "204", None),
    ("GET", "/gateway/{sn}/status", "403", {"code": 403, "message": "Action is not allowed"}),
]


@pytest.mark.parametrize("method, path, status, answer", TOLERATED)
def test_tolerated_answers_pass(device_schema, method, path, status, answer):
    content_type = None if answer is None else "application/json"
    assert check(device_schema, method, path, status, answer, content_type=content_type) == []
    assert check(device_schema, method, path, status, answer, readings=False, content_type=content_type) == []


# The document's words leave these open: they pass on a device other than the bundled emulator in its default
# reading, and fail there (the reading binds it).
DOCUMENT_ONLY_VALID = [
    ("POST", ASYNC, "200", {"commandId": "1760413840"}),  # a string: the GET answer's type (NOTES.md)
    ("GET", RESULT_PATH, "200", {**RESULT, "commandId": 1760413840}),  # a number: the POST answer's type
    ("GET", RESULT_PATH, "200", _without(RESULT, "status")),  # the page names the states, no field for them
    ("GET", RESULT_PATH, "200", {**RESULT, "status": "DONE"}),
    ("GET", RESULT_PATH, "200", {**RESULT, "status": 1}),
    ("GET", "/gateway/{sn}/status", "404", {"error": "Resource Not Found"}),  # no error body format is published
    ("GET", "/gateway/{sn}/status", "404", {"code": "404", "message": ""}),
    ("POST", "/gateway/{sn}/reboot", "500", ["offline"]),
    ("GET", "/gateway/{sn}/status", "200", _status(lastDyingGasp="yesterday")),
    ("GET", "/gateway/{sn}/status", "200", _status(eui="ac-1f-09")),
    ("GET", "/gateway/{sn}/status", "200", _status(mac="ac1f09070 7a1")),
    ("GET", "/gateway/{sn}/status", "200", _status(system={"uptime": "3142 s"})),
    ("GET", "/gateway/{sn}/status", "200", _status(gps={"state": "GPS_NO_OUTPUT"})),
    ("GET", "/gateway/{sn}/status", "200", _status(network={"lan": {}, "wan": {}})),
    ("GET", "/gateway/{sn}/status", "200", _status(lora={"activeNodes": -1})),
    ("GET", "/gateway/{sn}/status", "200", _status(storage={"healthy": "yes"})),
    ("GET", "/location/{locationId}/gateways/status", "200",
     {"pageSize": 5, "totalPages": 1, "gateways": [_status(storage={})]}),
    ("GET", "/gateway/{sn}/network/priority", "200", {"sn": "s", "priority": "ETH_ETH_WIFI"}),
    ("GET", "/gateway/{sn}/network/wan", "200", {**WAN, "wifi": {}}),
    ("GET", "/gateway/{sn}/syslog", "200", _without(SYSLOG_ANSWER, "externalLogServer")),  # shareLogs includes external
]
# What the document says stays binding on any device.
DOCUMENT_ONLY_INVALID = [
    ("GET", "/version", "200", {"version": "v4.0.0"}),
    ("GET", "/version", "200", {"version": 4, "commitId": "a12b3c4"}),
    ("GET", "/organization", "200", {"id": "f53d5b7d"}),
    ("GET", "/organization/{organizationId}/locations", "200", {"total": "2", "locations": []}),
    ("GET", "/organization/{organizationId}/locations", "200", {"total": 1, "locations": [{"id": "x"}]}),
    ("POST", "/organization/{organizationId}/locations", "201", {"locationId": "x", "name": "Factory A"}),
    ("GET", "/location/{locationId}/gateways", "200", {"total": 1, "gateways": [{**GATEWAY, "status": "SLEEPING"}]}),
    ("GET", "/location/{locationId}/gateways", "200", {"total": 1, "gateways": [_without(GATEWAY, "lastDyingGasp")]}),
    ("GET", "/location/{locationId}/gateways", "200", {"total": 1, "gateways": [{**GATEWAY, "lastDyingGasp": None}]}),
    ("POST", "/location/{locationId}/gateways", "201", {"sn": "GW123456", "eui": "ABCDEF1234567890"}),
    ("GET", "/location/{locationId}/gateways/status", "200", {"pageSize": 5, "gateways": []}),
    ("GET", "/location/{locationId}/gateways/status", "200", {"pageSize": 5, "totalPages": 1, "gateways": [GATEWAY]}),
    ("GET", "/location/{locationId}/gateways/status", "200", {"pageSize": 5, "totalPages": 1, "nextToken": 2, "gateways": []}),
    ("GET", "/location/{locationId}/gateways/battery", "200",
     {"pageSize": 5, "totalPages": 1, "gateways": [{"sn": "s", "battery": {**BATTERY, "soc": 51.5}}]}),
    ("GET", "/gateway/{sn}/status", "200", _status(system="busy")),
    ("GET", "/gateway/{sn}/status", "200", _without(STATUS, "storage")),
    ("GET", "/gateway/{sn}/battery", "200", {"sn": "s", "battery": {**BATTERY, "voltage": "13.6"}}),
    ("GET", "/gateway/{sn}/battery", "200", {"sn": "s", "battery": {**BATTERY, "mode": "IDLE"}}),
    ("GET", "/gateway/{sn}/battery", "200", {"sn": "s", "battery": _without(BATTERY, "soh")}),
    ("GET", "/gateway/{sn}/perf/{metric}", "200", {"result": [{"value": "120", "timestamp": "2025-10-09T10:00:00Z"}]}),
    ("GET", "/gateway/{sn}/perf/{metric}", "200", {"nextToken": "abc123"}),
    ("POST", ASYNC, "200", {"commandId": True}),
    ("POST", ASYNC, "200", {}),
    ("GET", RESULT_PATH, "200", _without(RESULT, "result")),
    ("GET", RESULT_PATH, "200", {**RESULT, "commandId": None}),
    ("GET", "/gateway/{sn}/network/priority", "200", {"sn": "s"}),
    ("GET", "/gateway/{sn}/network/lan", "200", {"sn": "s", "ethernet": {"enabled": False},
                                                 "wifi": {**WIFI, "encryption": "WEP"}}),
    ("GET", "/gateway/{sn}/network/lan", "200", {"sn": "s", "ethernet": {}, "wifi": WIFI}),
    ("GET", "/gateway/{sn}/network/wan", "200", _without(WAN, "cellular")),
    ("GET", "/gateway/{sn}/network/wan", "200", {**WAN, "wifi": {"enabled": "no"}}),
    ("GET", "/gateway/{sn}/syslog", "200", {**SYSLOG_ANSWER, "shareLogs": "both"}),
    ("GET", "/gateway/{sn}/syslog", "200", _without(SYSLOG_ANSWER, "logsRotationCycle")),
    ("GET", "/gateway/{sn}/syslog/download", "200",
     {"sn": "s", "startDate": "a", "endDate": "b", "totalFiles": 1, "files": [{"key": "k", "sizeBytes": 1}]}),
    ("GET", "/gateway/{sn}/syslog/download", "200", {"sn": "s", "startDate": "a", "endDate": "b", "files": []}),
    ("GET", "/version", "418", {"code": 418, "message": "teapot"}),  # not in the section's error table
    ("POST", "/gateway/{sn}/password", "409", {"code": 409, "message": "conflict"}),
    ("POST", "/gateway/{sn}/reboot", "200", {}),  # the page's answer is 204 No Content
]


@pytest.mark.parametrize("method, path, status, answer", DOCUMENT_ONLY_VALID)
def test_readings_are_dropped_with_readings_false(device_schema, method, path, status, answer):
    assert check(device_schema, method, path, status, answer, readings=False) == []
    assert check(device_schema, method, path, status, answer) != []  # the reading: binding on the emulator


@pytest.mark.parametrize("method, path, status, answer", DOCUMENT_ONLY_INVALID)
def test_what_the_document_says_stays_binding(device_schema, method, path, status, answer):
    assert check(device_schema, method, path, status, answer, readings=False) != []


def test_error_bodies_as_text_are_only_refused_by_the_reading(device_schema):
    """No error body format is published (NOTES.md): a text/plain error passes on any device but the bundled
    emulator in its default reading. Every error form declared is the reading's, so on another device no
    media type of an error answer is judged (an HTML error page of a proxy in front of the cloud included);
    the emulator is held to JSON."""
    for status in ("403", "404"):
        assert check(device_schema, "GET", "/gateway/{sn}/status", status, "Forbidden", readings=False,
                     content_type="text/plain") == []
        assert check(device_schema, "GET", "/gateway/{sn}/status", status, "Forbidden", content_type="text/plain") != []
    assert check(device_schema, "GET", "/gateway/{sn}/status", "404", "<html/>", readings=False, content_type="text/html") == []
    assert check(device_schema, "GET", "/gateway/{sn}/status", "404", "<html/>", content_type="text/html") != []


def test_answers_are_never_closed(doc):
    requests_only = ("Address", "BasicStation", "CreateLocation", "RegisterGateway", "BatterySwitch", "AsyncCommand",
                     "Password", "Upgrade", "PrioritySetting", "LanSetting", "Tracking", "WanEthernetSetting",
                     "WanWifiSetting", "WanCellularSetting", "WanSetting", "SyslogSetting")
    assert forbidden_additional_properties(doc, exempt=requests_only) == []


def test_reading_marks_stand_on_answer_schemas_only(doc):
    marks = reading_marks(doc)
    assert marks and all(m.startswith("/components/schemas/") for m in marks), marks
    marked = {m.split("/")[3] for m in marks}
    assert marked == {"Error", "ErrorText", "Eui", "Mac", "LastDyingGasp", "GatewaySystem", "GatewayGps",
                      "GatewayNetwork", "WanInterfaceStatus", "GatewayLora", "GatewayStorage", "CommandAccepted",
                      "CommandResult", "Priority", "WanInterface", "SyslogConfig"}
    result = doc["components"]["schemas"]["CommandResult"]
    assert result["x-conformlab-reading-required"] == ["status"] and result["properties"]["status"]["x-conformlab-reading"]
    assert doc["components"]["schemas"]["CommandId"]["type"] == ["integer", "string"]
    assert doc["components"]["schemas"]["Battery"]["properties"]["voltage"]["type"] == "number"
    error = doc["components"]["schemas"]["Error"]
    assert error["x-conformlab-reading"] and error["required"] == ["code", "message"]
    assert error["properties"]["code"]["type"] == "integer" and error["properties"]["message"]["type"] == "string"


# ---------------------------------------------------------------------------------------------------
# schemathesis loads the document and builds every operation


def test_schemathesis_builds_every_operation(st_schema):
    assert built_operations(st_schema) == OPERATIONS
