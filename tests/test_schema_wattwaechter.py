"""Sanity tests of schemas/wattwaechter.yaml, the WattWächter OpenAPI document.

The document (../shared/docs/wattwaechter-api.txt) is the specification: its endpoint tables (with the
Auth column) and its 429/503 bodies. It shows no answer bodies; NOTES.md gives the shapes it lost, and the
vendor's client aio-wattwaechter (installed) is the outside witness of every answer: a key its parser
reads with data[key] is required in the schema, a key it reads with data.get(key, default) is not. The
tests below check both directions against the installed client.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import openapi_spec_validator
import pytest
from aio_wattwaechter import models as ww_models
from schemathesis.specs.openapi import checks as openapi_checks

from openapi_doc import _op, _operations, _resolve, built_operations, canned_response, conforms, forbidden_additional_properties, parameter_validator, request_validator, response_validator, schema_fixtures

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "schemas" / "wattwaechter.yaml"
DOCUMENT_PATH = ROOT.parent / "shared" / "docs" / "wattwaechter-api.txt"
BASE = "http://127.0.0.1:9/api/v1"
# `.example()` is exactly what these sanity checks want (build one case per operation).
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")


# The document's endpoint tables, with their Auth column ("—" = none).
DOCUMENTED_ACCESS = {
    ("GET", "/system/alive"): "none",
    ("GET", "/system/info"): "read",
    ("GET", "/system/led"): "read",
    ("GET", "/system/wifi_scan"): "none",
    ("GET", "/system/timezones"): "read",
    ("POST", "/system/reboot"): "write",
    ("GET", "/history/latest"): "read",
    ("GET", "/history/highRes"): "read",
    ("GET", "/history/lowRes"): "read",
    ("GET", "/settings"): "read",
    ("POST", "/settings"): "write",
    ("POST", "/auth/tokens/generate"): "write",
    ("POST", "/auth/tokens/confirm"): "write",
    ("GET", "/mqtt/ca"): "read",
    ("POST", "/mqtt/ca"): "write",
    ("DELETE", "/mqtt/ca"): "write",
    ("POST", "/cloud/pair"): "write",
    ("DELETE", "/cloud/pair"): "write",
    ("GET", "/ota/check"): "read",
    ("POST", "/ota/start"): "write",
    ("GET", "/logs/rawdump"): "read",
    ("GET", "/logs/persistent"): "read",
    ("GET", "/logs/ram"): "read",
    ("GET", "/modbus/status"): "read",
}

DESTRUCTIVE = {
    ("POST", "/system/reboot"), ("POST", "/ota/start"),
    ("POST", "/auth/tokens/generate"), ("POST", "/auth/tokens/confirm"),
    ("POST", "/cloud/pair"), ("DELETE", "/cloud/pair"),
    ("POST", "/mqtt/ca"), ("DELETE", "/mqtt/ca"),  # the old custom CA cannot be read back, so not restored
}
NOT_FUZZED = {("POST", "/settings"), ("POST", "/auth/tokens/generate"), ("POST", "/auth/tokens/confirm")}
READS = {("POST", "/settings"): "/settings", ("POST", "/mqtt/ca"): "/mqtt/ca", ("DELETE", "/mqtt/ca"): "/mqtt/ca"}
JSON_BODY_WRITES = {("POST", "/settings"), ("POST", "/auth/tokens/confirm"), ("POST", "/mqtt/ca"),
                    ("POST", "/cloud/pair")}

# Per operation, the statuses besides 200/429/503/401/403 (and 400/413 of the JSON-body writes).
SPECIAL_CODES = {
    ("GET", "/history/latest"): {"204"},
    ("GET", "/history/highRes"): {"204", "400"},
    ("GET", "/history/lowRes"): {"204", "400"},
    ("DELETE", "/mqtt/ca"): {"404"},
    ("GET", "/logs/rawdump"): {"204", "404"},
    ("GET", "/logs/persistent"): {"204", "404"},
    ("GET", "/logs/ram"): {"204"},
}

# ---------------------------------------------------------------------------------------------------
# The document's bodies and NOTES.md's answers (placeholders "..." filled with plausible values).

DOC_429 = {"error": "Too many requests"}
DOC_503 = {"error": "Service temporary unavailable"}
NOTES_ALIVE = {"alive": True, "version": "1.3.0"}
NOTES_LATEST = {"timestamp": 1708000000, "datetime": "2024-02-15 12:26:40",
                "1.8.0": {"value": 123.4, "unit": "kWh", "name": "Bezug"}}
NOTES_HIGH_RES = {
    "start": "2026-01-15", "days": 1,
    "items": [{"date": "2026-01-15 00:00", "timestamp": 1768431600, "import_total_kWh": 4711.25,
               "export_total_kWh": 12.5, "import_kW": 0.31, "export_kW": 0.0, "power_W": 310}],
    "import_total_kWh": 7.4, "export_total_kWh": 0.0,
}
NOTES_LOW_RES = {
    "start": "2026-01-01",
    "items": [{"date": "2026-01-01", "timestamp": 1767222000, "import_total_kWh": 4600.0, "export_total_kWh": 12.0,
               "import_kWh": 8.1, "export_kWh": 0.0},
              {"date": "2026-01-02", "timestamp": 1767308400, "import_total_kWh": 4608.1, "export_total_kWh": 12.0,
               "import_kWh": 7.6, "export_kWh": 0.2}],
    "import_total_kWh": 15.7, "export_total_kWh": 0.2,
}
NOTES_SETTINGS_RESULT = {"success": True, "applied": {"ledEnable": False}}
NOTES_TOKEN_GENERATE = {"success": True, "pending": {"token_read": "R3adT0kenR3adT0k", "token_write": "Wr1teT0kenWr1teT"},
                        "expires_in": 60}
NOTES_TOKEN_CONFIRM = {"new_write_token": "Wr1teT0kenWr1teT"}

# Answers in the shape the vendor client's models describe.
GAS_LATEST = {"timestamp": 1768431600, "datetime": "2026-01-15 00:00:00",
              "7-0:3.0.0": {"value": 1234.567, "unit": "m³", "name": "Volumen"},
              "7-0:43.0.0": {"value": 0.0, "unit": "m³/h", "name": "Durchfluss"},
              "gw": {"ok": True, "medium": "gas", "revolutions": 12.5, "coils": 2, "activeCoils": 2,
                     "energyFactor": 10.5, "meterSince": 1767222000, "driverTemp": 21}}
GAS_HIGH_RES = {"start": "2026-01-15", "days": 1, "consumption_m3": 1.25,
                "items": [{"date": "2026-01-15 00:00", "timestamp": 1768431600, "import_total_m3": 1234.5,
                           "import_m3h": 0.1, "flow_m3h": None}]}
SETTINGS = {
    "wifi": {"primary": {"enable": True, "ssid": "lab", "static_ip": False, "ip": "", "subnet": "", "gateway": "",
                         "dns": ""},
             "secondary": {"enable": False, "ssid": "", "static_ip": False, "ip": "", "subnet": "", "gateway": "",
                           "dns": ""}},
    "accessPoint": {"enable": False, "password_enable": True, "ssid": "WattWaechter-AB12"},
    "mqtt": {"enable": False, "host": "", "port": 8883, "use_tls": True, "user": "", "sendInterval": 60,
             "client_id": "", "topic_prefix": "wattwaechter"},
    "language": {"active": "de", "installed": [{"code": "de", "name": "Deutsch"}, {"code": "en", "name": "English"}]},
    "timezone": "Europe/Berlin", "ntp_server": "pool.ntp.org", "rebootCounter": 0, "rebootsTotal": 3,
    "rebootsAll": 7, "ledEnable": True, "api_auth_required": False, "device_name": "WattWaechter",
    "awsIotEnabled": False,
}
SYSTEM_INFO = {"uptime": [{"name": "Uptime", "value": "1d 2h", "unit": ""}],
               "wifi": [{"name": "RSSI", "value": -61, "unit": "dBm"}], "ap": [],
               "esp": [{"name": "esp_id", "value": "9BFEFF453AB4", "unit": ""},
                       {"name": "model_id", "value": "ww_plus", "unit": ""}],
               "heap": [{"name": "free", "value": 151000, "unit": "bytes"}]}
LED = {"status": "OK", "priority": 1, "color": "green", "mode": "dimmed", "rgb": {"r": 0, "g": 255, "b": 0},
       "enabled": True, "active_statuses": {"OK": True, "ERROR": False}}
WIFI_SCAN = {"networks": [{"ssid": "lab", "rssi": -52}], "count": 1, "scanning": False}
TIMEZONES = [{"name": "Europe/Berlin", "utcOffsetMin": 60}, {"name": "Etc/UTC", "utcOffsetMin": 0}]
CA_STATUS = {"has_custom_cert": False, "bundle_size": 5750, "custom_size": 0}
CA_ACTION = {"success": True, "message": "Certificate added", "bundle_size": 6300}
OTA_CHECK = {"ok": True, "data": {"update_available": False, "version": "", "tag": "", "release_date": "",
                                  "release_note_de": "", "release_note_en": "", "last_checked": 1768431600}}
MODBUS = {"enabled": True, "running": True, "port": 502, "active_connections": 1,
          "registers": [{"register": 40072, "name": "W", "obis": "16.7.0", "value": 310.0, "unit": "W", "valid": True,
                         "raw": 310, "scale_factor": 0, "scale_register": 40073},
                        {"register": 40074, "name": "Hz", "obis": "", "value": None, "unit": "Hz", "valid": False}]}

# The client's parser per answer (the JSON answers it parses with a model).
CLIENT_PARSERS = {
    ("GET", "/system/alive"): ww_models._parse_alive,
    ("GET", "/system/info"): ww_models._parse_system_info,
    ("GET", "/system/led"): ww_models._parse_led_info,
    ("GET", "/system/wifi_scan"): ww_models._parse_wifi_scan,
    ("GET", "/system/timezones"): ww_models._parse_timezones,
    ("GET", "/history/latest"): ww_models._parse_meter_data,
    ("GET", "/history/highRes"): ww_models._parse_high_res_history,
    ("GET", "/history/lowRes"): ww_models._parse_low_res_history,
    ("GET", "/settings"): ww_models._parse_settings,
    ("POST", "/auth/tokens/generate"): ww_models._parse_token_generate,
    ("GET", "/mqtt/ca"): ww_models._parse_ca_cert_status,
    ("POST", "/mqtt/ca"): ww_models._parse_ca_cert_action,
    ("DELETE", "/mqtt/ca"): ww_models._parse_ca_cert_action,
    ("GET", "/ota/check"): ww_models._parse_ota_check,
    ("GET", "/modbus/status"): ww_models._parse_modbus_status,
}


# ---------------------------------------------------------------------------------------------------
# helpers


doc, registry, st_schema = schema_fixtures(SCHEMA_PATH)


def _with(base, **changes):
    value = copy.deepcopy(base)
    value.update(changes)
    return value


def _without(base, key):
    value = copy.deepcopy(base)
    del value[key]
    return value


def _set_in(base, keys, value):
    result = copy.deepcopy(base)
    node = result
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return result


def document_table() -> dict[tuple[str, str], str]:
    """The endpoint tables of the vendor document, parsed: {(method, path without prefix): access}."""
    text = DOCUMENT_PATH.read_text(encoding="utf-8")
    rows = re.findall(r"\|\s*(GET|POST|PUT|PATCH|DELETE)\s*\|\s*/api/v1(/[^\s|?]+)[^|]*\|\s*(—|READ|WRITE)\s*\|", text)
    return {(method, path): {"—": "none", "READ": "read", "WRITE": "write"}[auth] for method, path, auth in rows}


# ---------------------------------------------------------------------------------------------------
# 1. The document is a valid OpenAPI 3.1 document.


def test_openapi_31_document_is_valid(doc):
    assert doc["openapi"] == "3.1.0"
    openapi_spec_validator.validate(doc)
    assert doc["servers"] == [{"url": "/api/v1"}]
    assert doc["x-conformlab"] == {"device": "wattwaechter", "prefix": "/api/v1"}


def test_the_harness_schema_loader_reads_it():
    from conformlab.schema import DeviceSchema

    schema = DeviceSchema(SCHEMA_PATH)
    assert {(op.method, op.path) for op in schema.operations} == set(DOCUMENTED_ACCESS)
    assert {(op.method, op.path) for op in schema.operations if op.destructive} == DESTRUCTIVE
    assert {(op.method, op.path) for op in schema.operations if not op.fuzz} == NOT_FUZZED
    assert {(op.method, op.path): op.reads for op in schema.operations if op.reads} == READS


# ---------------------------------------------------------------------------------------------------
# Operations, access levels, security


@pytest.mark.skipif(not DOCUMENT_PATH.exists(), reason="the vendor document is not next to the checkout")
def test_the_access_table_is_the_documents():
    assert document_table() == DOCUMENTED_ACCESS


def test_every_documented_operation_and_nothing_else(doc):
    assert {(m, p) for m, p, _ in _operations(doc)} == set(DOCUMENTED_ACCESS)


def test_access_levels_match_the_document(doc):
    found = {}
    for method, path, op in _operations(doc):
        assert "access" in op["x-conformlab"], f"{method} {path}"
        found[(method, path)] = op["x-conformlab"]["access"]
    assert found == DOCUMENTED_ACCESS


def test_security_follows_the_access_level(doc):
    bearer = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    assert doc["security"] == [{"bearerAuth": []}, {}]
    for method, path, op in _operations(doc):
        expected = [{}] if op["x-conformlab"]["access"] == "none" else [{"bearerAuth": []}, {}]
        assert op["security"] == expected, f"{method} {path}"


def test_operation_ids_summaries_tags(doc):
    tags = {t["name"] for t in doc["tags"]}
    assert tags == {"system", "history", "settings", "ota", "logs", "modbus"}
    ids = []
    for method, path, op in _operations(doc):
        ids.append(op["operationId"])
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]*", op["operationId"]), op["operationId"]
        assert op.get("summary"), f"{method} {path} has no summary"
        assert len(op["tags"]) == 1 and op["tags"][0] in tags, f"{method} {path}: {op.get('tags')}"
    assert len(ids) == len(set(ids)), "operationIds must be unique"


def test_x_conformlab_keys(doc):
    destructive, not_fuzzed, reads, restarts = set(), set(), {}, set()
    for method, path, op in _operations(doc):
        ext = op["x-conformlab"]
        assert set(ext) <= {"access", "destructive", "reads", "fuzz", "restarts", "restart_within"}, f"{method} {path}: {ext}"
        if "restarts" in ext:
            # a sentence of the document; a restart is destructive on real hardware
            assert isinstance(ext["restarts"], str) and (not DOCUMENT_PATH.exists() or ext["restarts"] in DOCUMENT_PATH.read_text(encoding="utf-8")), f"{method} {path}: {ext['restarts']!r}"
            assert "destructive" in ext, f"{method} {path}: a restart needs the target's permission"
            restarts.add((method, path))
        if "restart_within" in ext:
            assert "restarts" in ext and isinstance(ext["restart_within"], (int, float)) and ext["restart_within"] > 0
        assert ext["access"] in ("none", "read", "write")
        assert (ext["access"] == "write") == (method != "GET"), f"{method} {path}: every write needs WRITE"
        if "destructive" in ext:
            assert isinstance(ext["destructive"], str) and len(ext["destructive"].strip()) > 20
            destructive.add((method, path))
        if "fuzz" in ext:
            assert ext["fuzz"] is False, f"{method} {path}: say fuzz: false or nothing"
            not_fuzzed.add((method, path))
        if "reads" in ext:
            assert method != "GET", f"{method} {path}"
            assert "get" in doc["paths"][ext["reads"]], f"{method} {path}: reads {ext['reads']} has no GET"
            reads[(method, path)] = ext["reads"]
    assert destructive == DESTRUCTIVE
    assert not_fuzzed == NOT_FUZZED
    # Every operation the document says restarts the device: a reboot, and OTA (an installed update
    # starts the new firmware). The document lists no factory reset and no settings import.
    assert restarts == {("POST", "/system/reboot"), ("POST", "/ota/start")}
    assert reads == READS


def test_token_renewal_is_never_fuzzed_and_needs_permission(doc):
    for path in ("/auth/tokens/generate", "/auth/tokens/confirm"):
        ext = _op(doc, "POST", path)["x-conformlab"]
        assert ext["fuzz"] is False and ext["destructive"] and ext["access"] == "write"


# ---------------------------------------------------------------------------------------------------
# Responses per operation: 429/503 everywhere, 401 on read/write, 403 on write only


def test_responses_per_operation(doc):
    for method, path, op in _operations(doc):
        access = op["x-conformlab"]["access"]
        expected = {"200", "429", "503"} | SPECIAL_CODES.get((method, path), set())
        if access in ("read", "write"):
            expected.add("401")
        if access == "write":
            expected.add("403")
        if (method, path) in JSON_BODY_WRITES:
            expected |= {"400", "413"}
        responses = op["responses"]
        assert set(responses) == expected, f"{method} {path}: {sorted(responses)} != {sorted(expected)}"
        assert responses["429"] == {"$ref": "#/components/responses/TooManyRequests"}, f"{method} {path}"
        assert responses["503"] == {"$ref": "#/components/responses/ServiceUnavailable"}, f"{method} {path}"
        for status, response in responses.items():
            response = _resolve(doc, response)
            assert response.get("description"), f"{method} {path} {status}"
            if status in ("200", "429", "503"):
                assert response.get("content"), f"{method} {path} {status}"
            else:
                # 204 has no body; the document publishes no body for 400/401/403/404/413.
                assert "content" not in response, f"{method} {path} {status}: no documented body"
                assert "headers" not in response, f"{method} {path} {status}"


@pytest.mark.parametrize("name, seconds, error", [
    ("TooManyRequests", 10, "Too many requests"),
    ("ServiceUnavailable", 5, "Service temporary unavailable"),
])
def test_rate_limit_and_heap_protection_answers(doc, name, seconds, error):
    response = doc["components"]["responses"][name]
    header = _resolve(doc, response["headers"]["Retry-After"])
    assert header["required"] is True
    assert header["schema"]["type"] == "integer"  # whole seconds (NOTES)
    assert header["example"] == seconds
    ((media, content),) = response["content"].items()
    assert media == "application/json"
    schema = _resolve(doc, content["schema"])
    assert schema["required"] == ["error"] and schema["properties"]["error"]["const"] == error


def test_error_responses_without_bodies(doc):
    for name in ("Unauthorized", "Forbidden", "BadRequest", "ContentTooLarge", "BadHistoryRequest", "NoHistory"):
        response = doc["components"]["responses"][name]
        assert set(response) == {"description"}, name


def test_media_types(doc):
    for method, path, op in _operations(doc):
        ok = _resolve(doc, op["responses"]["200"])
        media = set(ok["content"])
        if path == "/logs/rawdump":
            assert ok["content"] == {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        elif path in ("/logs/persistent", "/logs/ram"):
            assert ok["content"] == {"text/csv": {"schema": {"type": "string"}}, "text/plain": {"schema": {"type": "string"}}}, path
        else:
            assert media == {"application/json"}, f"{method} {path}"


# ---------------------------------------------------------------------------------------------------
# Parameters


def test_history_parameters(doc, registry):
    def params(path):
        return {p["name"]: p for p in (_resolve(doc, p) for p in _op(doc, "GET", path)["parameters"])}

    high = params("/history/highRes")
    assert set(high) == {"date"} and high["date"]["in"] == "query" and high["date"]["required"] is True
    low = params("/history/lowRes")
    assert set(low) == {"start", "days"}
    assert all(p["in"] == "query" and p["required"] is True for p in low.values())
    assert _resolve(doc, low["days"]["schema"]) == {"type": "integer", "minimum": 1, "maximum": 31}
    date = parameter_validator(doc, registry, "GET", "/history/highRes", "date")
    start = parameter_validator(doc, registry, "GET", "/history/lowRes", "start")
    days = parameter_validator(doc, registry, "GET", "/history/lowRes", "days")
    for value in ("2026-01-15", "2024-02-29"):
        date.validate(value)
        start.validate(value)
    for value in ("2026-1-15", "15.01.2026", "20260115", "2026-01-15T00:00", ""):
        assert not date.is_valid(value), value
        assert not start.is_valid(value), value
    for value in (1, 7, 31):
        days.validate(value)
    for value in (32, 0, -1, 7.5, "7"):
        assert not days.is_valid(value), value
    # the parameter examples (schemathesis sends them) are valid
    date.validate(high["date"]["example"])
    start.validate(low["start"]["example"])
    days.validate(low["days"]["example"])
    assert low["days"]["example"] == 7  # the document's own lowRes?start=YYYY-MM-DD&days=7


def test_wifi_scan_refresh_parameter(doc):
    (param,) = _op(doc, "GET", "/system/wifi_scan")["parameters"]
    assert param["name"] == "refresh" and param["in"] == "query" and param["required"] is False
    assert param["schema"] == {"type": "boolean"}


# ---------------------------------------------------------------------------------------------------
# Request bodies and their examples


def test_request_bodies_where_documented(doc):
    for method, path, op in _operations(doc):
        body = op.get("requestBody")
        if (method, path) not in JSON_BODY_WRITES:
            assert body is None, f"{method} {path} must not take a body"
            continue
        assert body["required"] is True and set(body["content"]) == {"application/json"}, f"{method} {path}"


def test_request_examples_are_valid(doc, registry):
    for method, path, op in _operations(doc):
        body = op.get("requestBody")
        if not body:
            continue
        content = body["content"]["application/json"]
        assert "example" in content and "examples" not in content, f"{method} {path}: needs ONE example"
        request_validator(doc, registry, method, path).validate(content["example"])


def test_request_examples_are_safe(doc):
    def example(method, path):
        return _op(doc, method, path)["requestBody"]["content"]["application/json"]["example"]

    # The vendor's own harmless round trip; differs from the default (LED on).
    assert example("POST", "/settings") == {"ledEnable": False}
    assert example("POST", "/settings")["ledEnable"] != SETTINGS["ledEnable"]
    # Never a real pending token: a conforming device refuses it and re-keys nothing.
    assert example("POST", "/auth/tokens/confirm")["new_write_token"] != NOTES_TOKEN_GENERATE["pending"]["token_write"]
    cert = example("POST", "/mqtt/ca")["certificate"]
    assert cert.startswith("-----BEGIN CERTIFICATE-----\n") and cert.rstrip().endswith("-----END CERTIFICATE-----")
    assert "PRIVATE KEY" not in json.dumps(doc)
    assert re.fullmatch(r"WW-0{8}", example("POST", "/cloud/pair")["pairing_token"])


def test_settings_write_is_partial(doc):
    schema = doc["components"]["schemas"]["SettingsWrite"]
    assert "required" not in schema and schema["minProperties"] == 1
    assert schema.get("additionalProperties", True) is not False
    read = doc["components"]["schemas"]["Settings"]["properties"]
    # writable keys are keys of GET /settings; the reboot counters are read-only
    assert set(schema["properties"]) == set(read) - {"rebootCounter", "rebootsTotal", "rebootsAll"}


def _write_only_paths(doc, schema, where=()):
    schema = _resolve(doc, schema)
    for key, sub in schema.get("properties", {}).items():
        if _resolve(doc, sub).get("writeOnly"):
            yield (*where, key)
        else:
            yield from _write_only_paths(doc, sub, (*where, key))


def test_get_settings_never_returns_a_write_only_key(doc):
    """Every password the write takes is excluded from the read by `not: {required: [...]}`."""
    write_only = list(_write_only_paths(doc, doc["components"]["schemas"]["SettingsWrite"]))
    assert sorted(write_only) == sorted([("wifi", "primary", "password"), ("wifi", "secondary", "password"),
                                         ("accessPoint", "password"), ("mqtt", "password")])
    for path in write_only:
        node = doc["components"]["schemas"]["Settings"]
        for key in path[:-1]:
            node = _resolve(doc, _resolve(doc, node)["properties"][key])
        # absent: this project's reading; if there at all, empty or masked: NOTES.md (always checked)
        assert node["allOf"] == [{"x-conformlab-reading": node["allOf"][0]["x-conformlab-reading"],
                                  "not": {"required": [path[-1]]}}], path
        assert node["patternProperties"] == {f"^{path[-1]}$": {"$ref": "#/components/schemas/MaskedPassword"}}, path
        assert path[-1] not in node["properties"], path


def test_documented_request_bodies_are_valid(doc, registry):
    request_validator(doc, registry, "POST", "/auth/tokens/confirm").validate(NOTES_TOKEN_CONFIRM)
    request_validator(doc, registry, "POST", "/cloud/pair").validate({"pairing_token": "WW-ABCD2345"})
    settings = request_validator(doc, registry, "POST", "/settings")
    settings.validate({"ledEnable": True})
    settings.validate({"mqtt": {"enable": True, "host": "broker.lan", "port": 1883, "use_tls": False,
                                "user": "ww", "password": "secret"}})
    settings.validate({"wifi": {"primary": {"ssid": "lab", "password": "secret"}}, "timezone": "Europe/Berlin"})
    settings.validate({"api_auth_required": True})


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/settings", {}),
    ("POST", "/settings", []),
    ("POST", "/settings", {"ledEnable": "false"}),
    ("POST", "/settings", {"mqtt": {"port": 70000}}),
    ("POST", "/settings", {"mqtt": {"port": "1883"}}),
    ("POST", "/settings", {"api_auth_required": 1}),
    ("POST", "/auth/tokens/confirm", {}),
    ("POST", "/auth/tokens/confirm", {"new_write_token": ""}),
    ("POST", "/auth/tokens/confirm", {"token_write": "abc"}),
    ("POST", "/mqtt/ca", {}),
    ("POST", "/mqtt/ca", {"certificate": "not a certificate"}),
    ("POST", "/mqtt/ca", "-----BEGIN CERTIFICATE-----"),
    ("POST", "/cloud/pair", {}),
    ("POST", "/cloud/pair", {"pairing_token": "ABCD2345"}),
    ("POST", "/cloud/pair", {"pairing_token": "WW-ABCD23456"}),
])
def test_invalid_request_bodies_are_rejected_by_the_schema(doc, registry, method, path, body):
    assert not request_validator(doc, registry, method, path).is_valid(body)


# ---------------------------------------------------------------------------------------------------
# Answers: documented ones validate, wrong ones do not


@pytest.mark.parametrize("method, path, status, answer", [
    ("GET", "/system/alive", "200", NOTES_ALIVE),
    ("GET", "/history/latest", "200", NOTES_LATEST),
    ("GET", "/history/latest", "200", GAS_LATEST),
    ("GET", "/history/highRes", "200", NOTES_HIGH_RES),
    ("GET", "/history/highRes", "200", GAS_HIGH_RES),
    ("GET", "/history/lowRes", "200", NOTES_LOW_RES),
    ("GET", "/settings", "200", SETTINGS),
    ("POST", "/settings", "200", NOTES_SETTINGS_RESULT),
    ("POST", "/auth/tokens/generate", "200", NOTES_TOKEN_GENERATE),
    ("POST", "/auth/tokens/confirm", "200", {"success": True, "message": "Tokens activated."}),
    ("GET", "/system/info", "200", SYSTEM_INFO),
    ("GET", "/system/led", "200", LED),
    ("GET", "/system/wifi_scan", "200", WIFI_SCAN),
    ("GET", "/system/wifi_scan", "200", {"networks": [], "count": 0, "scanning": True}),
    ("GET", "/system/timezones", "200", TIMEZONES),
    ("POST", "/system/reboot", "200", {"rebooting": True}),
    ("GET", "/mqtt/ca", "200", CA_STATUS),
    ("POST", "/mqtt/ca", "200", CA_ACTION),
    ("DELETE", "/mqtt/ca", "200", CA_ACTION),
    ("POST", "/cloud/pair", "200", {"success": True, "message": "Pairing started"}),
    ("DELETE", "/cloud/pair", "200", {"success": True}),
    ("GET", "/ota/check", "200", OTA_CHECK),
    ("POST", "/ota/start", "200", {"ok": True, "msg": "OTA started"}),
    ("POST", "/ota/start", "200", {"ok": True, "update_available": False}),
    ("GET", "/modbus/status", "200", MODBUS),
    *[(m, p, "429", DOC_429) for m, p in DOCUMENTED_ACCESS],
    *[(m, p, "503", DOC_503) for m, p in DOCUMENTED_ACCESS],
])
def test_documented_answers_are_valid(doc, registry, method, path, status, answer):
    response_validator(doc, registry, method, path, status).validate(answer)


@pytest.mark.parametrize("method, path, status, answer", [
    # GET /settings never returns passwords
    ("GET", "/settings", "200", _set_in(SETTINGS, ["wifi", "primary", "password"], "secret")),
    ("GET", "/settings", "200", _set_in(SETTINGS, ["wifi", "secondary", "password"], "")),
    ("GET", "/settings", "200", _set_in(SETTINGS, ["accessPoint", "password"], "secret")),
    ("GET", "/settings", "200", _set_in(SETTINGS, ["mqtt", "password"], "secret")),
    ("GET", "/settings", "200", _with(SETTINGS, ledEnable="true")),
    ("GET", "/settings", "200", _set_in(SETTINGS, ["mqtt", "port"], "8883")),
    # 429/503 bodies are the document's, exactly
    ("GET", "/system/info", "429", {"error": "Too Many Requests"}),
    ("GET", "/system/info", "429", {"error": "rate limit"}),
    ("GET", "/system/alive", "429", DOC_503),
    ("POST", "/settings", "429", {}),
    ("GET", "/history/lowRes", "503", DOC_429),
    ("GET", "/history/lowRes", "503", {"error": "Service temporarily unavailable"}),
    ("GET", "/history/lowRes", "503", "Service temporary unavailable"),
    # shapes the client's models describe
    ("GET", "/history/latest", "200", _with(NOTES_LATEST, **{"1.8.0": {"unit": "kWh"}})),
    ("GET", "/history/latest", "200", _with(NOTES_LATEST, **{"1.8.0": {"value": {"v": 1}}})),
    ("GET", "/history/latest", "200", _with(NOTES_LATEST, timestamp="1708000000")),
    ("GET", "/history/highRes", "200", _without(NOTES_HIGH_RES, "start")),
    ("GET", "/history/highRes", "200", _with(NOTES_HIGH_RES, items=[_without(NOTES_HIGH_RES["items"][0], "timestamp")])),
    ("GET", "/history/lowRes", "200", _with(NOTES_LOW_RES, items=[_without(NOTES_LOW_RES["items"][0], "date")])),
    ("GET", "/history/lowRes", "200", _with(NOTES_LOW_RES, items=NOTES_LOW_RES["items"] * 16)),  # 32 days
    ("POST", "/auth/tokens/generate", "200", _without(NOTES_TOKEN_GENERATE, "pending")),
    ("POST", "/auth/tokens/generate", "200", _with(NOTES_TOKEN_GENERATE, pending={"token_read": "R"})),
    ("POST", "/auth/tokens/generate", "200", _with(NOTES_TOKEN_GENERATE, expires_in=61)),
    ("POST", "/settings", "200", _with(NOTES_SETTINGS_RESULT, applied=[])),
    ("GET", "/system/led", "200", _with(LED, status="BLINKING")),
    ("GET", "/system/led", "200", _with(LED, color="purple")),
    ("GET", "/system/led", "200", _without(LED, "enabled")),
    ("GET", "/system/timezones", "200", {"Europe/Berlin": 60}),
    ("GET", "/system/timezones", "200", [{"name": "Europe/Berlin", "gmtOffset": 3600}]),
    ("GET", "/mqtt/ca", "200", _without(CA_STATUS, "custom_size")),
    ("GET", "/ota/check", "200", _without(OTA_CHECK, "ok")),
    ("GET", "/modbus/status", "200", _without(MODBUS, "port")),
    ("GET", "/system/info", "200", _with(SYSTEM_INFO, esp=[{"name": "esp_id"}])),
])
def test_wrong_answers_are_invalid(doc, registry, method, path, status, answer):
    assert not response_validator(doc, registry, method, path, status).is_valid(answer)


def test_answers_may_grow_new_fields(doc, registry):
    response_validator(doc, registry, "GET", "/settings").validate(_with(SETTINGS, newFeature={"on": True}))
    response_validator(doc, registry, "GET", "/history/latest").validate(_with(NOTES_LATEST, **{"2.8.0": {
        "value": 1.0, "unit": "kWh", "name": "Einspeisung"}, "meterStatus": "ok"}))
    response_validator(doc, registry, "GET", "/system/alive").validate(_with(NOTES_ALIVE, uptime=12))


def test_response_schemas_never_forbid_additional_properties(doc):
    assert forbidden_additional_properties(doc) == []


# ---------------------------------------------------------------------------------------------------
# The vendor client: required in the schema <=> required by the client's parser


def _full_instance(doc, schema):
    """An answer with every declared property (recursively), each at a plain valid value."""
    schema = _resolve(doc, schema)
    if "allOf" in schema:
        merged = {}
        for part in schema["allOf"]:
            merged.update(_resolve(doc, part))
        merged.update({k: v for k, v in schema.items() if k != "allOf"})
        schema = merged
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object":
        return {key: _full_instance(doc, sub) for key, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [_full_instance(doc, schema["items"])]
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 0))
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return True
    raise AssertionError(f"no plain value for {schema}")


def _required_and_optional_paths(doc, schema, where=()):
    """(path, required?) for every declared property, reached through properties and array items."""
    schema = _resolve(doc, schema)
    for part in schema.get("allOf", []):
        schema = {**_resolve(doc, part), **schema}
    required = set(schema.get("required", []))
    for key, sub in schema.get("properties", {}).items():
        yield (*where, key), key in required
        yield from _required_and_optional_paths(doc, sub, (*where, key))
    if "items" in schema:
        yield from _required_and_optional_paths(doc, schema["items"], (*where, 0))


def _delete(value, path):
    value = copy.deepcopy(value)
    node = value
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return value


@pytest.mark.parametrize("method, path", sorted(CLIENT_PARSERS))
def test_the_vendor_client_needs_exactly_the_required_keys(doc, registry, method, path):
    parse = CLIENT_PARSERS[(method, path)]
    schema = _op(doc, method, path)["responses"]["200"]["content"]["application/json"]["schema"]
    full = _full_instance(doc, schema)
    validator = response_validator(doc, registry, method, path)
    validator.validate(full)
    parse(full)
    for key_path, required in _required_and_optional_paths(doc, schema):
        answer = _delete(full, key_path)
        if required:
            assert not validator.is_valid(answer)
            with pytest.raises((KeyError, TypeError, ValueError)):
                parse(answer)  # the client cannot do without it
        else:
            validator.validate(answer)
            parse(answer)  # the client falls back to a default: not required


@pytest.mark.parametrize("method, path, answer", [
    ("GET", "/system/alive", NOTES_ALIVE), ("GET", "/history/latest", NOTES_LATEST),
    ("GET", "/history/latest", GAS_LATEST), ("GET", "/history/highRes", NOTES_HIGH_RES),
    ("GET", "/history/highRes", GAS_HIGH_RES), ("GET", "/history/lowRes", NOTES_LOW_RES),
    ("GET", "/settings", SETTINGS), ("POST", "/auth/tokens/generate", NOTES_TOKEN_GENERATE),
    ("GET", "/system/info", SYSTEM_INFO), ("GET", "/system/led", LED), ("GET", "/system/wifi_scan", WIFI_SCAN),
    ("GET", "/system/timezones", TIMEZONES), ("GET", "/mqtt/ca", CA_STATUS), ("POST", "/mqtt/ca", CA_ACTION),
    ("GET", "/ota/check", OTA_CHECK), ("GET", "/modbus/status", MODBUS),
])
def test_the_vendor_client_reads_the_example_answers(method, path, answer):
    CLIENT_PARSERS[(method, path)](answer)


def test_obis_values_are_what_the_client_reads(doc, registry):
    meter = ww_models._parse_meter_data(GAS_LATEST)
    assert meter.volume == 1234.567 and meter.gw is not None and meter.medium is ww_models.Medium.GAS
    assert ww_models._parse_meter_data(NOTES_LATEST).total_consumption == 123.4
    # an OBIS entry without a value is dropped by the client: the schema calls it invalid
    assert "1.8.0" not in ww_models._parse_meter_data(_with(NOTES_LATEST, **{"1.8.0": {"unit": "kWh"}})).values
    assert not response_validator(doc, registry, "GET", "/history/latest").is_valid(
        _with(NOTES_LATEST, **{"1.8.0": {"unit": "kWh"}}))


def test_led_enums_are_the_clients(doc):
    schema = doc["components"]["schemas"]["LedInfo"]["properties"]
    assert schema["status"]["enum"] == [s.value for s in ww_models.LedStatus]
    assert schema["color"]["enum"] == [c.value for c in ww_models.LedColor]
    assert schema["mode"]["enum"] == [m.value for m in ww_models.LedMode]


# ---------------------------------------------------------------------------------------------------
# 2. schemathesis loads the document, builds every operation and checks answers with it.


def test_schemathesis_builds_every_operation(st_schema):
    assert built_operations(st_schema) == set(DOCUMENTED_ACCESS)


def test_schemathesis_uses_the_examples(st_schema, doc):
    for method, path, op in _operations(doc):
        operation = st_schema[path][method]
        cases = [s.example() for s in operation.get_strategies_from_examples()]
        if op.get("requestBody"):
            assert op["requestBody"]["content"]["application/json"]["example"] in [c.body for c in cases], path
    (case,) = [s.example() for s in st_schema["/history/lowRes"]["GET"].get_strategies_from_examples()]
    assert case.query == {"start": "2026-01-01", "days": 7}


def _response(status, body, content_type="application/json", headers=None, method="GET", path="/"):
    return canned_response(status, body, content_type, headers, method, url=BASE + path)


RESPONSE_CHECKS = [
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
]


def _conforms(case, response) -> bool:
    return conforms(case, response, RESPONSE_CHECKS)


def test_schemathesis_checks_catch_documented_violations(st_schema):
    settings = st_schema["/settings"]["GET"].Case()

    def answer(status, body, *args, **kwargs):
        return _response(status, body, *args, path="/settings", **kwargs)

    assert _conforms(settings, answer(200, SETTINGS))
    assert not _conforms(settings, answer(200, _set_in(SETTINGS, ["mqtt", "password"], "secret")))
    assert _conforms(settings, answer(429, DOC_429, headers={"Retry-After": "10"}))
    assert not _conforms(settings, answer(429, DOC_429))  # Retry-After missing
    assert not _conforms(settings, answer(429, DOC_429, headers={"Retry-After": "soon"}))
    assert not _conforms(settings, answer(429, {"error": "Too Many Requests"}, headers={"Retry-After": "10"}))
    assert not _conforms(settings, answer(429, DOC_429, "text/plain", headers={"Retry-After": "10"}))
    assert _conforms(settings, answer(503, DOC_503, headers={"Retry-After": "5"}))
    assert not _conforms(settings, answer(503, DOC_429, headers={"Retry-After": "5"}))
    assert _conforms(settings, answer(401, b"", None))  # no documented body
    assert not _conforms(settings, answer(403, b"", None))  # 403 is for WRITE endpoints
    assert not _conforms(settings, answer(500, b"", None))  # 500 is never documented

    update = st_schema["/settings"]["POST"].Case(body={"ledEnable": False}, media_type="application/json")
    assert _conforms(update, _response(200, NOTES_SETTINGS_RESULT, method="POST", path="/settings"))
    assert _conforms(update, _response(403, b"", None, method="POST", path="/settings"))

    alive = st_schema["/system/alive"]["GET"].Case()
    assert _conforms(alive, _response(200, NOTES_ALIVE, path="/system/alive"))
    assert not _conforms(alive, _response(401, b"", None, path="/system/alive"))  # alive needs no token

    latest = st_schema["/history/latest"]["GET"].Case()
    assert _conforms(latest, _response(204, b"", None, path="/history/latest"))

    low = st_schema["/history/lowRes"]["GET"].Case(query={"start": "2026-01-01", "days": 7})
    assert _conforms(low, _response(200, NOTES_LOW_RES, path="/history/lowRes"))
    assert _conforms(low, _response(400, b"", None, path="/history/lowRes"))

    ram = st_schema["/logs/ram"]["GET"].Case()
    assert _conforms(ram, _response(200, "12:00:01,INFO,boot\n", "text/plain", path="/logs/ram"))
    assert _conforms(ram, _response(200, "12:00:01,INFO,boot\n", "text/csv", path="/logs/ram"))
    assert not _conforms(ram, _response(200, {"log": []}, path="/logs/ram"))

    dump = st_schema["/logs/rawdump"]["GET"].Case()
    assert _conforms(dump, _response(200, b"\x1b\x1b\x1b\x1b\x01\x01\x01\x01", "application/octet-stream",
                                     path="/logs/rawdump"))
