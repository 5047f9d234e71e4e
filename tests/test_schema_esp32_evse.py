"""Sanity tests of schemas/esp32-evse.yaml, the ESP32 EVSE OpenAPI document.

The document (../shared/docs/esp32-evse-api.txt, plus the shapes NOTES.md restores) is the
specification; its own example bodies are copied below and must validate against the schema.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import openapi_spec_validator
import pytest
from schemathesis.specs.openapi import checks as openapi_checks

from openapi_doc import _escape, _op, _operations, _resolve, _validator, built_operations, canned_response, conforms, forbidden_additional_properties, request_validator, response_validator, schema_fixtures

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "esp32-evse.yaml"
# `.example()` is exactly what these sanity checks want (build one case per operation).
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")


# Every operation of the document's overview tables.
DOCUMENTED_OPERATIONS = {
    ("GET", "/state"), ("POST", "/state"),
    ("POST", "/state/enabled"), ("POST", "/state/available"), ("POST", "/state/charging-current"),
    ("POST", "/state/consumption-limit"), ("POST", "/state/charging-time-limit"),
    ("POST", "/state/under-power-limit"), ("POST", "/state/authorize"),
    ("POST", "/state/reset-total-consumption"),
    *{(m, f"/config/{block}") for m in ("GET", "POST")
      for block in ("evse", "wifi", "discovery", "serial", "modbus", "script", "scheduler")},
    ("GET", "/config"),
    ("GET", "/wifi/scan"), ("GET", "/wifi/state"), ("POST", "/wifi/state/ap"),
    ("GET", "/script/output"), ("POST", "/script/reload"), ("GET", "/script/components"),
    ("GET", "/script/components/{id}"), ("POST", "/script/components/{id}"),
    ("GET", "/firmware/channels"), ("GET", "/firmware/channel"), ("POST", "/firmware/channel"),
    ("GET", "/firmware/check-update"), ("POST", "/firmware/update"), ("POST", "/firmware/upload"),
    ("GET", "/nextion/info"), ("POST", "/nextion/upload"),
    ("GET", "/info"), ("GET", "/board-config"), ("GET", "/time"), ("POST", "/time"),
    ("POST", "/restart"), ("POST", "/credentials"), ("GET", "/log"),
    ("GET", "/log/panic"), ("DELETE", "/log/panic"),
}

DESTRUCTIVE = {
    ("POST", "/restart"), ("POST", "/firmware/update"), ("POST", "/firmware/upload"),
    ("POST", "/nextion/upload"), ("POST", "/credentials"), ("POST", "/state/reset-total-consumption"),
    ("DELETE", "/log/panic"), ("POST", "/config/wifi"), ("POST", "/wifi/state/ap"),
    ("POST", "/state/authorize"),  # starts a charge that waits for authorization
}

NO_BODY_WRITES = {
    ("POST", "/state/authorize"), ("POST", "/state/reset-total-consumption"), ("POST", "/script/reload"),
    ("POST", "/firmware/update"), ("POST", "/restart"), ("DELETE", "/log/panic"),
}

BINARY_UPLOADS = {("POST", "/firmware/upload"), ("POST", "/nextion/upload")}

# The special status codes the document gives per operation (besides 200/400/401/413/415).
SPECIAL_CODES = {
    ("POST", "/script/components/{id}"): {"404"},
    ("GET", "/firmware/check-update"): {"404"},
    ("GET", "/log/panic"): {"404"},
    ("POST", "/firmware/update"): {"520", "521"},
    ("POST", "/firmware/upload"): {"512", "521", "522", "523"},
    ("POST", "/nextion/upload"): {"512", "531", "532"},
}

# ---------------------------------------------------------------------------------------------------
# The document's own examples (esp32-evse-api.txt) and the shapes NOTES.md restores.

DOC_STATE = {
    "state": "C2", "available": True, "enabled": True, "pendingAuth": False, "limitReached": False,
    "chargingCurrent": 16.0, "consumptionLimit": 0, "chargingTimeLimit": 0, "underPowerLimit": 0,
    "errors": None, "sessionTime": 1820, "chargingTime": 1740, "consumption": 9320000,
    "totalConsumption": 412900000, "power": 3680, "voltage": [231.4, 0.0, 0.0], "current": [16.0, 0.0, 0.0],
}
DOC_STATE_WRITE = {
    "available": True, "enabled": True, "chargingCurrent": 10, "consumptionLimit": 0,
    "chargingTimeLimit": 0, "underPowerLimit": 0,
}
DOC_CONFIG_EVSE = {
    "maxChargingCurrent": 16, "defaultChargingCurrent": 10.0, "requireAuth": False, "socketOutlet": False,
    "rcm": False, "temperatureThreshold": 60, "defaultConsumptionLimit": 0, "defaultChargingTimeLimit": 0,
    "defaultUnderPowerLimit": 0, "socketLockOperatingTime": 3000, "socketLockBreakTime": 1000,
    "socketLockDetectionHigh": False, "socketLockRetryCount": 3, "energyMeterMode": "cur",
    "energyMeterAcVoltage": 230, "energyMeterThreePhases": False,
}
DOC_CONFIG_WIFI = {
    "enabled": True, "ssid": "myhome", "staticEnabled": False, "staticIp": "", "staticGateway": "",
    "staticNetmask": "", "staticDns": "",
}
DOC_WIFI_STATE = {
    "ip": "192.168.1.50", "mac": "AA:BB:CC:DD:EE:FF", "rssi": -57, "apIp": "192.168.4.1",
    "apMac": "AA:BB:CC:DD:EE:F0", "apEnabled": True, "apSsid": "esp32-evse",
}
DOC_WIFI_SCAN = [{"ssid": "myhome", "rssi": -57, "auth": True}, {"ssid": "guest", "rssi": -71, "auth": False}]
DOC_CONFIG_SERIAL = [
    {"mode": "log", "baudRate": 115200, "dataBits": "8", "stopBits": "1", "parity": "disable"},
    {"mode": "modbus", "baudRate": 9600, "dataBits": "8", "stopBits": "1", "parity": "even"},
]
DOC_CONFIG_SCHEDULER = {
    "ntpEnabled": True, "ntpServer": "pool.ntp.org", "ntpFromDhcp": False,
    "timezone": "CET-1CEST,M3.5.0,M10.5.0/3",
    "schedules": [{"action": "ch_cur_6a", "mon": 16777215, "tue": 16777215, "wed": 16777215,
                   "thu": 16777215, "fri": 16777215, "sat": 0, "sun": 0}],
}
DOC_SCRIPT_COMPONENT = {
    "params": [
        {"key": "min_current", "name": "Minimum current", "type": "number", "value": 6},
        {"key": "enabled", "name": "Enabled", "type": "boolean", "value": True},
    ]
}
DOC_INFO = {
    "uptime": 86400, "appVersion": "v1.1.0", "appDate": "Feb 21 2025", "appTime": "07:13:00",
    "idfVersion": "v5.4.1", "chip": "esp32", "chipCores": 2, "chipRevision": 3,
    "heap": {"allocated": 120000, "free": 90000, "largestFreeBlock": 60000, "minFree": 70000},
    "temperatureSensorCount": 1, "temperatureLow": 24.5, "temperatureHigh": 41.0,
}
DOC_BOARD_CONFIG = {
    "deviceName": "ESP32-S2 EVSE", "socketLock": True, "proximity": True, "socketLockMinBreakTime": 1000,
    "rcm": True, "temperatureSensor": True, "energyMeter": "cur_vlt", "energyMeterThreePhases": True,
    "serials": [{"type": "uart", "name": "UART"}, {"type": "rs485", "name": "RS485"}],
    "auxInputs": ["AUX_IN1"], "auxOutputs": ["AUX_OUT1"], "auxAnalogInputs": [],
}
# NOTES.md
NOTES_DISCOVERY = {"hostname": "evse", "instanceName": "EVSE"}
NOTES_MODBUS = {"tcpEnabled": False, "unitId": 1}
NOTES_SCRIPT = {"enabled": True, "autoReload": True}
NOTES_SCRIPT_COMPONENTS = [{"id": "charging-profile", "name": "Charging profile", "description": "..."}]
NOTES_CHECK_UPDATE = {"available": "v1.2.0", "current": "v1.1.0"}
NOTES_NEXTION_INFO = {"model": "NX4832T035_011", "touch": True, "flashSize": 16777216}
NOTES_CREDENTIALS = {"user": "admin", "password": "secret"}
DOC_CONFIG = {
    "evse": DOC_CONFIG_EVSE, "wifi": DOC_CONFIG_WIFI, "discovery": NOTES_DISCOVERY, "serial": DOC_CONFIG_SERIAL,
    "modbus": NOTES_MODBUS, "script": NOTES_SCRIPT, "scheduler": DOC_CONFIG_SCHEDULER,
}

# What a GET shows before a write (document examples/defaults); the request examples must differ.
DOCUMENTED_READ_VALUES = {
    "/state": DOC_STATE,
    "/config/evse": DOC_CONFIG_EVSE,
    "/config/wifi": DOC_CONFIG_WIFI,
    "/config/discovery": NOTES_DISCOVERY,
    "/config/serial": DOC_CONFIG_SERIAL,
    "/config/modbus": NOTES_MODBUS,
    "/config/script": NOTES_SCRIPT,
    "/config/scheduler": DOC_CONFIG_SCHEDULER,
    "/wifi/state": DOC_WIFI_STATE,
    "/firmware/channel": "stable",  # the bundled emulator's active channel
}


# ---------------------------------------------------------------------------------------------------
# helpers


doc, registry, st_schema = schema_fixtures(SCHEMA_PATH)


# ---------------------------------------------------------------------------------------------------
# 1. The document is a valid OpenAPI 3.1 document.


def test_openapi_31_document_is_valid(doc):
    assert doc["openapi"] == "3.1.0"
    openapi_spec_validator.validate(doc)
    assert doc["servers"] == [{"url": "/api/v1"}]
    assert doc["x-conformlab"] == {"device": "esp32-evse", "prefix": "/api/v1"}


def test_security_is_optional_basic_auth(doc):
    basic = doc["components"]["securitySchemes"]["basicAuth"]
    assert (basic["type"], basic["scheme"]) == ("http", "basic")
    assert doc["security"] == [{"basicAuth": []}, {}]
    for method, path, op in _operations(doc):
        assert "security" not in op, f"{method} {path} overrides the top-level security"


def test_webdav_is_described_outside_the_openapi_surface(doc):
    dav = doc["x-webdav"]
    assert dav["path"] == "/dav/"
    assert set(dav["methods"]) == {"PROPFIND", "GET", "PUT", "DELETE", "MKCOL", "COPY", "MOVE"}
    assert dav["documentedCredentialCheck"] is False
    assert not any(p.startswith("/dav") for p in doc["paths"])


# ---------------------------------------------------------------------------------------------------
# Operations, ids, tags, x-conformlab


def test_every_documented_operation_and_nothing_else(doc):
    assert {(m, p) for m, p, _ in _operations(doc)} == DOCUMENTED_OPERATIONS


def test_operation_ids_summaries_tags(doc):
    tags = {t["name"] for t in doc["tags"]}
    assert tags == {"state", "config", "wifi", "script", "firmware", "nextion", "system"}
    ids = []
    for method, path, op in _operations(doc):
        ids.append(op["operationId"])
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]*", op["operationId"]), op["operationId"]
        assert op.get("summary"), f"{method} {path} has no summary"
        assert len(op["tags"]) == 1 and op["tags"][0] in tags, f"{method} {path}: {op.get('tags')}"
    assert len(ids) == len(set(ids)), "operationIds must be unique"


def test_x_conformlab_destructive_set(doc):
    found = set()
    for method, path, op in _operations(doc):
        ext = op["x-conformlab"]
        assert set(ext) <= {"access", "destructive", "reads", "field", "restarts", "restart_within"}, f"{method} {path}: {ext}"
        # "As soon as a non-empty credential pair is stored, all endpoints require it": one grant, "user".
        assert ext["access"] == "user", f"{method} {path}"
        if "destructive" in ext:
            assert isinstance(ext["destructive"], str) and ext["destructive"].strip()
            found.add((method, path))
    assert found == DESTRUCTIVE


def vendor_text() -> str | None:
    """The document's text, or None where ../shared is not beside the checkout (the quotes are then
    not checked; everything else is)."""
    from vendor_docs import DOCS

    path = DOCS / "esp32-evse-api.txt"
    return path.read_text(encoding="utf-8") if path.exists() else None


RESTARTS = {("POST", "/restart"): 1, ("POST", "/firmware/upload"): 1, ("POST", "/firmware/update"): 1}


def test_restarting_operations_are_marked_with_the_document_sentence(doc):
    """Every operation the document says restarts the device carries x-conformlab restarts: the
    sentence, quoted from the document; restarting operations are destructive."""
    text = " ".join((vendor_text() or "").split())
    marked = {}
    for method, path, op in _operations(doc):
        ext = op["x-conformlab"]
        if "restarts" in ext:
            assert not text or " ".join(ext["restarts"].split()) in text, f"{method} {path}: {ext['restarts']!r} is not a sentence of the document"
            assert "destructive" in ext, f"{method} {path} restarts the device: it is destructive"
            assert float(ext.get("restart_within", 5)) > 0
            marked[(method, path)] = 1
    assert marked == RESTARTS


def test_reading_marks_only_on_answer_schemas(doc):
    """x-conformlab-reading marks stand in answer schemas only: never in a request body."""
    import json as _json

    for method, path, op in _operations(doc):
        body = _json.dumps(op.get("requestBody", {}))
        assert "x-conformlab-reading" not in body, f"{method} {path}"
    schemas = doc["components"]["schemas"]
    request_refs = set()
    for method, path, op in _operations(doc):
        for media in (op.get("requestBody") or {}).get("content", {}).values():
            ref = (media.get("schema") or {}).get("$ref", "")
            if ref:
                request_refs.add(ref.rsplit("/", 1)[1])
    for name in request_refs:
        assert "x-conformlab-reading" not in _json.dumps(schemas[name]), name


def test_x_conformlab_reads_and_field_point_at_readable_values(doc, registry):
    for method, path, op in _operations(doc):
        ext = op["x-conformlab"]
        if method == "GET":
            assert "reads" not in ext and "field" not in ext, f"{method} {path}"
            continue
        if "field" in ext:
            assert "reads" in ext, f"{method} {path}: field without reads"
        if "reads" not in ext:
            continue
        reads = ext["reads"]
        assert "get" in doc["paths"][reads], f"{method} {path}: reads {reads} has no GET"
        if "field" not in ext:
            continue
        answer = doc["paths"][reads]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert set(answer) == {"$ref"}, f"{reads}: answer schema is expected to be a component"
        assert ext["field"] in _resolve(doc, answer)["properties"], f"{method} {path}: {ext['field']} not in {reads}"
        body = op.get("requestBody")
        if body:
            # the written example is a valid value of the answer field it lands in
            field = _validator(registry, answer["$ref"] + "/properties/" + _escape(ext["field"]))
            field.validate(body["content"]["application/json"]["example"])


def test_expected_reads_and_fields(doc):
    expected = {
        ("POST", "/state"): ("/state", None),
        ("POST", "/state/enabled"): ("/state", "enabled"),
        ("POST", "/state/available"): ("/state", "available"),
        ("POST", "/state/charging-current"): ("/state", "chargingCurrent"),
        ("POST", "/state/consumption-limit"): ("/state", "consumptionLimit"),
        ("POST", "/state/charging-time-limit"): ("/state", "chargingTimeLimit"),
        ("POST", "/state/under-power-limit"): ("/state", "underPowerLimit"),
        ("POST", "/wifi/state/ap"): ("/wifi/state", "apEnabled"),
        ("POST", "/firmware/channel"): ("/firmware/channel", None),
        ("POST", "/time"): ("/time", None),
        ("POST", "/script/components/{id}"): ("/script/components/{id}", None),
        **{("POST", f"/config/{b}"): (f"/config/{b}", None)
           for b in ("evse", "wifi", "discovery", "serial", "modbus", "script", "scheduler")},
    }
    for (method, path), (reads, field) in expected.items():
        ext = _op(doc, method, path)["x-conformlab"]
        assert ext.get("reads") == reads, f"{method} {path}"
        assert ext.get("field") == field, f"{method} {path}"


def test_script_component_id_parameter(doc):
    (param,) = doc["paths"]["/script/components/{id}"]["parameters"]
    assert param["in"] == "path" and param["name"] == "id" and param["required"] is True
    assert param["x-conformlab"] == {"from": "/script/components", "pointer": "/0/id"}
    assert param["example"] == "charging-profile"


# ---------------------------------------------------------------------------------------------------
# Request bodies and their examples


def test_request_bodies_where_documented(doc):
    for method, path, op in _operations(doc):
        body = op.get("requestBody")
        if method == "GET" or (method, path) in NO_BODY_WRITES:
            assert body is None, f"{method} {path} must not take a body"
            continue
        assert body and body["required"] is True, f"{method} {path}"
        expected_media = "application/octet-stream" if (method, path) in BINARY_UPLOADS else "application/json"
        assert set(body["content"]) == {expected_media}, f"{method} {path}"
        if expected_media == "application/octet-stream":
            assert body["content"][expected_media]["schema"] == {"type": "string", "format": "binary"}


def test_bare_scalar_bodies(doc):
    scalar = {
        "/state/enabled": "boolean", "/state/available": "boolean", "/state/charging-current": "number",
        "/state/consumption-limit": "number", "/state/charging-time-limit": "number",
        "/state/under-power-limit": "number", "/firmware/channel": "string", "/time": "number",
        "/wifi/state/ap": "boolean",
    }
    for path, kind in scalar.items():
        schema = _resolve(doc, _op(doc, "POST", path)["requestBody"]["content"]["application/json"]["schema"])
        assert schema["type"] == kind, path
        if path.endswith("-limit"):
            assert schema["minimum"] == 0, path


def test_object_write_bodies_are_partial(doc):
    for name in ("StateWrite", "ConfigEvseWrite", "ConfigWifiWrite", "ConfigDiscoveryWrite", "ConfigModbusWrite",
                 "ConfigScriptWrite", "ConfigSchedulerWrite"):
        schema = doc["components"]["schemas"][name]
        assert "required" not in schema, name
        assert schema["minProperties"] == 1, name
        assert schema.get("additionalProperties", True) is not False, name
        # "at least one known key": one anyOf branch per documented property
        assert sorted(b["required"][0] for b in schema["anyOf"]) == sorted(schema["properties"]), name


@pytest.mark.parametrize("read, write", [
    ("ConfigEvse", "ConfigEvseWrite"), ("ConfigDiscovery", "ConfigDiscoveryWrite"),
    ("ConfigModbus", "ConfigModbusWrite"), ("ConfigScript", "ConfigScriptWrite"),
    ("ConfigScheduler", "ConfigSchedulerWrite"),
])
def test_write_properties_match_read_properties(doc, read, write):
    schemas = doc["components"]["schemas"]
    # The answer's schedules are ScheduleRead (weekdays with a 0 mask may be left out: a reading).
    read_props = json.loads(json.dumps(schemas[read]["properties"]).replace("/ScheduleRead", "/Schedule"))
    assert schemas[write]["properties"] == read_props
    assert set(schemas[read]["required"]) == set(schemas[read]["properties"])


def test_wifi_write_adds_only_password(doc):
    schemas = doc["components"]["schemas"]
    write = dict(schemas["ConfigWifiWrite"]["properties"])
    assert write.pop("password") == {"type": "string"}
    assert write == schemas["ConfigWifi"]["properties"]


def test_request_examples_are_valid_small_and_visible(doc, registry):
    for method, path, op in _operations(doc):
        body = op.get("requestBody")
        if not body:
            continue
        ((media, content),) = body["content"].items()
        assert "example" in content and "examples" not in content, f"{method} {path}: needs ONE example"
        example = content["example"]
        if media != "application/json":
            assert isinstance(example, str) and example
            continue
        request_validator(doc, registry, method, path).validate(example)
        if isinstance(example, dict):
            assert 1 <= len(example) <= 2, f"{method} {path}: keep examples small"
        ext = op["x-conformlab"]
        documented = DOCUMENTED_READ_VALUES.get(ext.get("reads"))
        if documented is None:
            continue
        if "field" in ext:
            assert example != documented[ext["field"]], f"{method} {path}: example equals the documented value"
        elif isinstance(example, dict):
            for key, value in example.items():
                assert documented.get(key) != value, f"{method} {path}: {key} equals the documented value"
        else:
            assert example != documented, f"{method} {path}: example equals the documented value"


def test_specific_request_examples(doc):
    def example(method, path):
        return _op(doc, method, path)["requestBody"]["content"]["application/json"]["example"]

    assert example("POST", "/state/charging-current") == 6.5  # valid on any board (ceiling >= 6 A)
    assert example("POST", "/config/evse") == {"temperatureThreshold": 55}
    assert example("POST", "/config/modbus") == {"unitId": 7}
    assert example("POST", "/firmware/channel") == "beta"
    assert example("POST", "/time") == 1767225600
    assert example("POST", "/state") != DOC_STATE_WRITE
    assert example("POST", "/script/components/{id}")["params"][0]["value"] != 6  # documented min_current


def test_documented_request_bodies_are_valid(doc, registry):
    request_validator(doc, registry, "POST", "/state").validate(DOC_STATE_WRITE)
    request_validator(doc, registry, "POST", "/state/enabled").validate(True)  # quick start
    request_validator(doc, registry, "POST", "/state/charging-current").validate(10)  # quick start
    for path, value in [("/state/enabled", True), ("/state/available", False), ("/state/charging-current", 13.5),
                        ("/state/consumption-limit", 10000000), ("/state/charging-time-limit", 7200),
                        ("/state/under-power-limit", 200)]:
        request_validator(doc, registry, "POST", path).validate(value)
    request_validator(doc, registry, "POST", "/config/evse").validate(DOC_CONFIG_EVSE)
    request_validator(doc, registry, "POST", "/config/wifi").validate({**DOC_CONFIG_WIFI, "password": "secret"})
    request_validator(doc, registry, "POST", "/config/serial").validate(DOC_CONFIG_SERIAL)
    request_validator(doc, registry, "POST", "/config/scheduler").validate(DOC_CONFIG_SCHEDULER)
    request_validator(doc, registry, "POST", "/config/scheduler").validate({"timezone": "Europe/Berlin"})
    request_validator(doc, registry, "POST", "/config/discovery").validate(NOTES_DISCOVERY)
    request_validator(doc, registry, "POST", "/config/modbus").validate(NOTES_MODBUS)
    request_validator(doc, registry, "POST", "/config/script").validate(NOTES_SCRIPT)
    request_validator(doc, registry, "POST", "/credentials").validate(NOTES_CREDENTIALS)
    request_validator(doc, registry, "POST", "/credentials").validate({"user": "", "password": ""})
    request_validator(doc, registry, "POST", "/script/components/{id}").validate(
        {"params": [{"key": "a", "value": "x"}, {"key": "b", "value": 1.5}, {"key": "c", "value": False}]})


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/config/evse", {"maxChargingCurrent": 64}),
    ("POST", "/config/evse", {"maxChargingCurrent": 5}),
    ("POST", "/config/evse", {"maxChargingCurrent": 16.5}),
    ("POST", "/config/evse", {"energyMeterMode": "voltage"}),
    ("POST", "/config/evse", {}),
    ("POST", "/config/evse", {"unknownKey": 1}),
    ("POST", "/state", {}),
    ("POST", "/state", {"chargingCurrent": "16"}),
    ("POST", "/state", {"consumptionLimit": -1}),
    ("POST", "/state/enabled", {"enabled": True}),
    ("POST", "/state/enabled", "true"),
    ("POST", "/state/charging-current", "13.5"),
    ("POST", "/state/under-power-limit", -1),
    ("POST", "/config/modbus", {"unitId": 0}),
    ("POST", "/config/modbus", {"unitId": 256}),
    ("POST", "/config/discovery", {"hostname": "h" * 32}),
    ("POST", "/config/serial", {"mode": "log"}),
    ("POST", "/config/serial", [{"mode": "log", "baudRate": 115200, "dataBits": 8, "stopBits": "1",
                                 "parity": "disable"}]),
    ("POST", "/config/serial", [{"mode": "rtu", "baudRate": 115200, "dataBits": "8", "stopBits": "1",
                                 "parity": "disable"}]),
    ("POST", "/config/scheduler", {"schedules": [{"action": "ch_cur_6a", "mon": 16777216, "tue": 0, "wed": 0,
                                                  "thu": 0, "fri": 0, "sat": 0, "sun": 0}]}),
    ("POST", "/config/scheduler", {"schedules": [{"action": "ch_cur_12a", "mon": 0, "tue": 0, "wed": 0,
                                                  "thu": 0, "fri": 0, "sat": 0, "sun": 0}]}),
    ("POST", "/credentials", {"user": "admin"}),
    ("POST", "/script/components/{id}", {"params": [{"key": "a", "value": None}]}),
    ("POST", "/firmware/channel", 1),
])
def test_invalid_request_bodies_are_rejected_by_the_schema(doc, registry, method, path, body):
    assert not request_validator(doc, registry, method, path).is_valid(body)


# ---------------------------------------------------------------------------------------------------
# Responses


@pytest.mark.parametrize("method, path, answer", [
    ("GET", "/state", DOC_STATE),
    ("GET", "/config/evse", DOC_CONFIG_EVSE),
    ("GET", "/config/wifi", DOC_CONFIG_WIFI),
    ("GET", "/config/discovery", NOTES_DISCOVERY),
    ("GET", "/config/serial", DOC_CONFIG_SERIAL),
    ("GET", "/config/modbus", NOTES_MODBUS),
    ("GET", "/config/script", NOTES_SCRIPT),
    ("GET", "/config/scheduler", DOC_CONFIG_SCHEDULER),
    ("GET", "/config", DOC_CONFIG),
    ("GET", "/wifi/state", DOC_WIFI_STATE),
    ("GET", "/wifi/scan", DOC_WIFI_SCAN),
    ("GET", "/script/components", NOTES_SCRIPT_COMPONENTS),
    ("GET", "/script/components/{id}", DOC_SCRIPT_COMPONENT),
    ("GET", "/script/components/{id}", None),
    ("GET", "/firmware/channels", ["stable", "beta"]),
    ("GET", "/firmware/channel", "stable"),
    ("GET", "/firmware/check-update", NOTES_CHECK_UPDATE),
    ("GET", "/nextion/info", NOTES_NEXTION_INFO),
    ("GET", "/nextion/info", None),
    ("GET", "/info", DOC_INFO),
    ("GET", "/board-config", DOC_BOARD_CONFIG),
    ("GET", "/time", 1767225600),
])
def test_documented_answers_are_valid(doc, registry, method, path, answer):
    response_validator(doc, registry, method, path).validate(answer)


def _with(base, **changes):
    value = copy.deepcopy(base)
    value.update(changes)
    return value


def _without(base, key):
    value = copy.deepcopy(base)
    del value[key]
    return value


@pytest.mark.parametrize("method, path, answer", [
    ("GET", "/config/wifi", _with(DOC_CONFIG_WIFI, password="secret")),
    ("GET", "/config/wifi", _with(DOC_CONFIG_WIFI, password="")),
    ("GET", "/config", _with(DOC_CONFIG, wifi=_with(DOC_CONFIG_WIFI, password="secret"))),
    ("GET", "/config", _without(DOC_CONFIG, "discovery")),
    ("GET", "/state", _with(DOC_STATE, chargingCurrent="16.0")),
    ("GET", "/state", _with(DOC_STATE, state="C3")),
    ("GET", "/state", _with(DOC_STATE, errors=[])),
    ("GET", "/state", _with(DOC_STATE, errors=["overcurrent"])),
    ("GET", "/state", _with(DOC_STATE, voltage=[231.4, 0.0])),
    ("GET", "/state", _with(DOC_STATE, current=[16.0, 0.0, 0.0, 0.0])),
    ("GET", "/state", _without(DOC_STATE, "power")),
    ("GET", "/config/evse", _with(DOC_CONFIG_EVSE, maxChargingCurrent=16.5)),
    ("GET", "/config/evse", _with(DOC_CONFIG_EVSE, defaultConsumptionLimit=0.5)),
    ("GET", "/config/serial", [_with(DOC_CONFIG_SERIAL[0], dataBits=8)]),
    ("GET", "/config/discovery", _with(NOTES_DISCOVERY, hostname="h" * 32)),
    ("GET", "/board-config", _with(DOC_BOARD_CONFIG, energyMeter="dummy")),
    ("GET", "/board-config", _with(DOC_BOARD_CONFIG, serials=[{"type": "usb", "name": "USB"}])),
    ("GET", "/info", _with(DOC_INFO, heap={"allocated": 1, "free": 2, "largestFreeBlock": 3})),
    ("GET", "/nextion/info", {}),
    ("GET", "/script/components/{id}", {"params": None}),
    ("GET", "/firmware/channel", ["stable"]),
    ("GET", "/time", "1767225600"),
])
def test_wrong_answers_are_invalid(doc, registry, method, path, answer):
    assert not response_validator(doc, registry, method, path).is_valid(answer)


def test_answers_may_grow_new_fields(doc, registry):
    response_validator(doc, registry, "GET", "/state").validate(_with(DOC_STATE, newField=1))
    response_validator(doc, registry, "GET", "/info").validate(_with(DOC_INFO, heapSize=1, mac="x"))


def test_response_schemas_never_forbid_additional_properties(doc):
    assert forbidden_additional_properties(doc) == []


def test_responses_per_operation(doc):
    for method, path, op in _operations(doc):
        responses = op["responses"]
        assert "500" not in responses, f"{method} {path}"
        assert "401" in responses, f"{method} {path}"
        unauthorized = _resolve(doc, responses["401"])
        header = _resolve(doc, unauthorized["headers"]["WWW-Authenticate"])
        assert header["required"] is True and header["schema"] == {"type": "string"}
        body = op.get("requestBody")
        expected = {"200", "401"} | SPECIAL_CODES.get((method, path), set())
        if body or any(p.get("in") == "query" or "$ref" in p for p in op.get("parameters", [])):
            expected.add("400")  # a bad body or query parameter (e.g. ?index=-1) is a bad request
        if body:
            if "application/json" in body["content"]:
                expected |= {"413", "415"}
        assert set(responses) == expected, f"{method} {path}: {sorted(responses)} != {sorted(expected)}"
        for status, response in responses.items():
            if status != "200":
                response = _resolve(doc, response)
                assert response.get("description"), f"{method} {path} {status}"
                assert "content" not in response, f"{method} {path} {status}: errors have no documented body"


def test_successful_writes_answer_plain_ok(doc):
    for method, path, op in _operations(doc):
        if method == "GET":
            continue
        ok = _resolve(doc, op["responses"]["200"])
        assert ok["content"] == {"text/plain": {"schema": {"type": "string", "const": "OK"}}}, f"{method} {path}"


def test_text_reads(doc):
    for path, header in (("/script/output", "X-Count"), ("/log", "X-Count"), ("/log/panic", "X-Time")):
        op = _op(doc, "GET", path)
        ok = op["responses"]["200"]
        assert ok["content"] == {"text/plain": {"schema": {"type": "string"}}}, path
        assert set(ok["headers"]) == {header}, path
        declared = _resolve(doc, ok["headers"][header])
        # X-Time is optional: "nothing stored" may be a 200 with an empty body (the panic checks
        # require it whenever a log is returned).
        schema = {k: v for k, v in declared["schema"].items() if k != "x-conformlab-reading"}
        assert declared.get("required", False) is (header == "X-Count") and schema == {"type": "integer"}, path
        # X-Time's form (epoch seconds) is this project's reading: the document says "timestamp".
        assert ("x-conformlab-reading" in declared["schema"]) is (header == "X-Time"), path
        params = [_resolve(doc, p) for p in op.get("parameters", [])]
        if header == "X-Count":
            assert params == [{"name": "index", "in": "query", "required": False,
                               "description": params[0]["description"],
                               "schema": {"type": "integer", "minimum": 0}}], path
        else:
            assert params == [], path


def test_nextion_upload_baud_rate(doc):
    (param,) = _op(doc, "POST", "/nextion/upload")["parameters"]
    assert param["name"] == "baud-rate" and param["in"] == "query" and param["required"] is False
    assert param["schema"] == {"type": "integer", "minimum": 1, "default": 921600}


def test_config_blocks_reference_the_endpoint_schemas(doc):
    config = doc["components"]["schemas"]["Config"]
    assert set(config["required"]) == {"evse", "wifi", "discovery", "serial", "modbus", "script", "scheduler"}
    for block, ref in config["properties"].items():
        endpoint = doc["paths"][f"/config/{block}"]["get"]["responses"]["200"]["content"]["application/json"]
        assert ref == endpoint["schema"], block
    assert doc["components"]["schemas"]["ConfigWifi"]["not"] == {"required": ["password"]}


# ---------------------------------------------------------------------------------------------------
# 2. schemathesis loads the document and builds every operation.


def test_schemathesis_builds_every_operation(st_schema):
    assert built_operations(st_schema) == DOCUMENTED_OPERATIONS


def test_schemathesis_uses_the_request_examples(st_schema, doc):
    for method, path, op in _operations(doc):
        if not op.get("requestBody"):
            continue
        ((media, content),) = op["requestBody"]["content"].items()
        operation = st_schema[path][method]
        bodies = [s.example().body for s in operation.get_strategies_from_examples()]
        assert content["example"] in bodies, f"{method} {path}"
        if media == "application/octet-stream":
            case = operation.get_strategies_from_examples()[0].example()
            kwargs = case.as_transport_kwargs(base_url="http://127.0.0.1:9/api/v1")
            assert kwargs["data"] == content["example"].encode()
            assert kwargs["headers"]["Content-Type"] == "application/octet-stream"


RESPONSE_CHECKS = [
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.status_code_conformance,
]


def _conforms(case, response) -> bool:
    return conforms(case, response, RESPONSE_CHECKS)


def test_schemathesis_checks_catch_documented_violations(st_schema):
    wifi = st_schema["/config/wifi"]["GET"].Case()
    url = "http://127.0.0.1:9/api/v1/config/wifi"
    assert _conforms(wifi, canned_response(200, json.dumps(DOC_CONFIG_WIFI), "application/json", url=url))
    assert not _conforms(wifi, canned_response(200, json.dumps(_with(DOC_CONFIG_WIFI, password="x")), "application/json",
                                         url=url))
    html = "<html><body>401 Unauthorized</body></html>"
    assert _conforms(wifi, canned_response(401, html, "text/html", {"WWW-Authenticate": 'Basic realm="Users"'}, url=url))
    assert not _conforms(wifi, canned_response(401, html, "text/html", url=url))  # header missing
    assert not _conforms(wifi, canned_response(500, "error", "text/html", url=url))  # 500 is never documented

    log = st_schema["/log"]["GET"].Case()
    url = "http://127.0.0.1:9/api/v1/log"
    assert _conforms(log, canned_response(200, "line\n", "text/plain", {"X-Count": "1"}, url=url))
    assert not _conforms(log, canned_response(200, "line\n", "text/plain", url=url))
    assert not _conforms(log, canned_response(200, "line\n", "text/plain", {"X-Count": "many"}, url=url))

    state = st_schema["/state"]["GET"].Case()
    url = "http://127.0.0.1:9/api/v1/state"
    assert _conforms(state, canned_response(200, json.dumps(DOC_STATE), "application/json", url=url))
    assert not _conforms(state, canned_response(200, json.dumps(_with(DOC_STATE, chargingCurrent="16.0")),
                                          "application/json", url=url))

    # Error bodies are not documented, so a short text/html body on a documented code is fine.
    evse = st_schema["/config/evse"]["POST"].Case(body={"maxChargingCurrent": 64}, media_type="application/json")
    url = "http://127.0.0.1:9/api/v1/config/evse"
    assert _conforms(evse, canned_response(400, "<html>Bad Request</html>", "text/html", method="POST", url=url))


# -- this project's readings: enforced on its own emulator, not on other devices ---------------------

READING_ONLY_ANSWERS = [
    # weekdays with no hours left out of a schedule entry (the example shows all seven)
    ("GET", "/config/scheduler", _with(DOC_CONFIG_SCHEDULER, schedules=[{"action": "enable", "mon": 1}])),
    # serial bits as the table lists them (numbers), not as the example writes them (strings)
    ("GET", "/config/serial", [_with(DOC_CONFIG_SERIAL[0], dataBits=8, stopBits=1.5)]),
    # an empty error list; a negative limit
    ("GET", "/state", _with(DOC_STATE, errors=[], consumptionLimit=-1)),
    # Wi-Fi, info and board fields shown only in examples, left out
    ("GET", "/config/wifi", {"ssid": "myhome"}),
    ("GET", "/info", {"uptime": 12.5, "appVersion": "v1.1.0", "heap": {}}),
    ("GET", "/board-config", {"energyMeter": "cur", "serials": []}),
    ("GET", "/wifi/scan", [{"ssid": "x", "rssi": -57.5}]),
]


def _answer_problems(method, path, body, readings):
    from conformlab.schema import device_schema

    schema = device_schema("esp32-evse")
    op = schema.operation(method, path)
    media = op.spec["responses"]["200"]["content"]["application/json"]["schema"]
    return list(schema.validator(media, readings).iter_errors(body))


@pytest.mark.parametrize("method, path, answer", READING_ONLY_ANSWERS)
def test_reading_only_constraints_bind_only_the_default_reading(method, path, answer):
    assert _answer_problems(method, path, answer, readings=True), "the reading rejects it on the emulator"
    assert not _answer_problems(method, path, answer, readings=False), "the document alone accepts it"


@pytest.mark.parametrize("method, path, answer", [
    ("GET", "/config/serial", [_with(DOC_CONFIG_SERIAL[0], dataBits=9)]),  # not a listed value
    ("GET", "/config/scheduler", _with(DOC_CONFIG_SCHEDULER, schedules=[{"mon": 1}])),  # no action
    ("GET", "/config/scheduler", _with(DOC_CONFIG_SCHEDULER, schedules=[{"action": "enable", "mon": 1 << 24}])),
    ("GET", "/config/wifi", _with(DOC_CONFIG_WIFI, password="secret")),  # "never returns the password"
    ("GET", "/info", {"appVersion": "v1.1.0"}),  # uptime is named in the text
    ("GET", "/board-config", {"energyMeter": "dummy", "serials": []}),  # energyMeter's values are listed
    ("GET", "/state", _with(DOC_STATE, errors=["overcurrent"])),
])
def test_documented_constraints_bind_every_device(method, path, answer):
    assert _answer_problems(method, path, answer, readings=False)
