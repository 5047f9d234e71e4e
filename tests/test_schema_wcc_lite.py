"""Sanity tests of schemas/wcc-lite.yaml, the WCC Lite OpenAPI document.

The document (../shared/docs/wcc-lite-api.txt) is the specification: its endpoint table with the request
keys and answer examples, the 401 body and the sysupgrade messages; NOTES.md names the three paths the copy
lost and says that every value in an answer is a string and `timestamp` epoch milliseconds. There is no
vendor client to witness the undocumented answers, so the bundled emulator's answers are checked against
the schema instead (every operation, every declared status), and the emulator's value faults must fail it.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import openapi_spec_validator
import pytest
import requests
from schemathesis.specs.openapi import checks as openapi_checks

from conformlab.emulators.server import serve
from conformlab.emulators.wcc_lite import WccLiteEmulator, build_image, build_workbook
from conformlab.schema import DeviceSchema
from openapi_doc import _op, _operations, _resolve, built_operations, canned_response, conforms, request_validator, response_validator, schema_fixtures, reading_marks
from vendor_docs import DOCS  # the bundled copies of the vendor documents

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "schemas" / "wcc-lite.yaml"
DOCUMENT_PATH = DOCS / "wcc-lite-api.txt"
API_KEY = "conformlab-wcc-key-1"
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")

# Every endpoint of the table (paths below the prefix /api), with its method (see the schema's header).
OPERATIONS = {
    ("GET", "/version"), ("GET", "/actions"), ("GET", "/syncVersion"), ("POST", "/sync"), ("GET", "/syslog"),
    ("GET", "/systemInfo"), ("GET", "/gsmInfo"), ("GET", "/devices"), ("POST", "/device/info"),
    ("POST", "/device/tags"), ("POST", "/device/tag/value"), ("GET", "/tags"), ("POST", "/sysupgrade"),
}
# The request keys of the table ("key name=...") and NOTES.md.
FORM_FIELDS = {
    "/sync": {"file"}, "/sysupgrade": {"file"}, "/device/info": {"device_alias"},
    "/device/tags": {"device_alias"}, "/device/tag/value": {"device_alias", "signal_alias"},
}
ALIAS_FIELDS = {
    "/device/info": {"device_alias": "/devices"}, "/device/tags": {"device_alias": "/devices"},
    "/device/tag/value": {"device_alias": "/devices", "signal_alias": "/device/tags"},
}
DESTRUCTIVE = {("POST", "/sync"), ("POST", "/sysupgrade")}
NOT_FUZZED = DESTRUCTIVE

# The document's examples.
DOC_VERSION = {"api_version": "2", "api_patch": "1", "sync_version": "lite1"}
DOC_DEVICE_INFO = {"Devices": [{"device_alias": "INV1", "name": "INV1", "protocol": "modbus rtu"}]}
DOC_SIGNAL = {"signal_name": "Active power", "source_device_alias": "", "input_topic": "tag/INV1/P/rin",
              "output_topic": "tag/INV1/P/out", "signal_alias": "P"}
DOC_TAGS = {"total_signals": "7", "signals": [DOC_SIGNAL]}  # the page shows the first of seven
DOC_TAG_VALUE = {"total_signals": "1", "signal_values": [
    {"signal_name": "Active power", "value": "5.9589999999999996", "timestamp": "1708000203824", "flags": ""}]}
DOC_401 = {"error": "Unauthorized access."}


doc, registry, st_schema = schema_fixtures(SCHEMA_PATH)


@pytest.fixture(scope="module")
def device_schema():
    return DeviceSchema(SCHEMA_PATH)


@pytest.fixture(scope="module")
def emu():
    with serve(WccLiteEmulator(auth={"api_key": API_KEY}), host="127.0.0.1", port=0) as running:
        yield running


def _with(base: dict, **changes) -> dict:
    return {**base, **changes}


def _value(**changes) -> dict:
    return {**DOC_TAG_VALUE, "signal_values": [{**DOC_TAG_VALUE["signal_values"][0], **changes}]}


# ---------------------------------------------------------------------------------------------------
# The document


def test_openapi_31_document_is_valid(doc):
    assert doc["openapi"] == "3.1.0"
    openapi_spec_validator.validate(doc)
    assert doc["servers"] == [{"url": "/api"}]
    assert doc["x-conformlab"] == {"device": "wcc-lite", "prefix": "/api"}


def test_every_documented_operation_and_nothing_else(doc):
    assert {(m, p) for m, p, _ in _operations(doc)} == OPERATIONS


@pytest.mark.skipif(not DOCUMENT_PATH.exists(), reason="the vendor documents are not next to the checkout")
def test_the_paths_are_the_documents():
    listed = set(re.findall(r"^(/api/\S+)", DOCUMENT_PATH.read_text(encoding="utf-8"), re.MULTILINE))
    notes = (DOCS / "NOTES.md").read_text(encoding="utf-8")
    section = notes[notes.index("## WCC Lite"):]
    lost = set(re.findall(r"^- `(/api/[^`]+)`", section.split("##", 2)[1], re.MULTILINE))
    assert lost == {"/api/sync", "/api/device/tags", "/api/device/tag/value"}
    assert {"/api" + path for _, path in OPERATIONS} == listed | lost


def test_the_harness_schema_loader_reads_it(device_schema):
    assert {(op.method, op.path) for op in device_schema.operations} == OPERATIONS
    assert {(op.method, op.path) for op in device_schema.operations if op.destructive} == DESTRUCTIVE
    assert {(op.method, op.path) for op in device_schema.operations if not op.fuzz} == NOT_FUZZED
    assert all(op.body_kind == ("binary" if op.method == "POST" else None) for op in device_schema.operations)


def test_x_conformlab_keys(doc):
    for method, path, op in _operations(doc):
        ext = op["x-conformlab"]
        assert set(ext) <= {"access", "destructive", "fuzz", "fields", "restarts", "since_firmware"}, f"{method} {path}: {ext}"
        assert ext["access"] == "api_key"
        # Only a started firmware upgrade restarts the gateway; /sync restarts the protocol hub service
        # and the HTTP API stays up.
        assert ("restarts" in ext) == ((method, path) == ("POST", "/sysupgrade")), f"{method} {path}"
        if "restarts" in ext:
            assert "Upgrade started" in ext["restarts"] and "restart_within" not in ext
        if "destructive" in ext:
            assert isinstance(ext["destructive"], str) and len(ext["destructive"].strip()) > 20
        if "fuzz" in ext:
            assert ext["fuzz"] is False
        assert ext.get("fields", {}) == ALIAS_FIELDS.get(path, {}), f"{method} {path}"
        for field, source in ext.get("fields", {}).items():
            assert field in op["requestBody"]["content"]["multipart/form-data"]["example"]
            assert source in doc["paths"], f"{path}: {field} comes from {source}, which is not documented"


def test_security_is_the_apikey_header(doc):
    scheme = doc["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "apiKey")
    assert doc["security"] == [{"apiKey": []}, {}]  # {}: authorization can be disabled
    for method, path, op in _operations(doc):
        assert op["security"] == [{"apiKey": []}, {}], f"{method} {path}"


def test_operation_ids_summaries_tags(doc):
    tags = {t["name"] for t in doc["tags"]}
    ids = [op["operationId"] for _, _, op in _operations(doc)]
    assert len(ids) == len(set(ids))
    for method, path, op in _operations(doc):
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]*", op["operationId"]) and op.get("summary"), f"{method} {path}"
        assert len(op["tags"]) == 1 and op["tags"][0] in tags, f"{method} {path}"


def test_responses_per_operation(doc):
    for method, path, op in _operations(doc):
        expected = {"200", "401"} | ({"400"} if method == "POST" else set())
        assert set(op["responses"]) == expected, f"{method} {path}: {sorted(op['responses'])}"
        assert op["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}
        for status, response in op["responses"].items():
            response = _resolve(doc, response)
            assert response.get("description") and response.get("content"), f"{method} {path} {status}"


def test_media_types(doc):
    for method, path, op in _operations(doc):
        media = set(op["responses"]["200"]["content"])
        if path in ("/syslog", "/sync"):  # text; a JSON object of strings is accepted too
            assert media == {"text/plain", "application/json"}, path
        else:
            assert media == {"application/json"}, f"{method} {path}"
        for status in set(op["responses"]) - {"200"}:
            assert set(_resolve(doc, op["responses"][status])["content"]) == {"application/json"}


def test_request_bodies_are_multipart_with_the_documented_keys(doc, registry):
    for method, path, op in _operations(doc):
        if method == "GET":
            assert "requestBody" not in op, path
            continue
        body = op["requestBody"]
        assert body["required"] is True and set(body["content"]) == {"multipart/form-data"}, path
        content = body["content"]["multipart/form-data"]
        schema = _resolve(doc, content["schema"])
        assert set(schema["properties"]) == set(schema["required"]) == FORM_FIELDS[path], path
        validator = request_validator(doc, registry, method, path, "multipart/form-data")
        validator.validate(content["example"])
        assert not validator.is_valid({})
    assert _op(doc, "POST", "/sysupgrade")["requestBody"]["content"]["multipart/form-data"]["example"] == {
        "file": "1.8.0-rtu.sysupgrade"}  # the document's example
    file = doc["components"]["schemas"]["FileForm"]["properties"]["file"]
    assert file["type"] == "string" and file["format"] == "binary"


# ---------------------------------------------------------------------------------------------------
# Answers: the document's examples pass, wrong answers do not


@pytest.mark.parametrize("method, path, status, answer", [
    ("GET", "/version", "200", DOC_VERSION),
    ("POST", "/device/info", "200", DOC_DEVICE_INFO),
    ("POST", "/device/tags", "200", DOC_TAGS),
    ("POST", "/device/tag/value", "200", DOC_TAG_VALUE),
    ("POST", "/sysupgrade", "200", {"message": "Upgrade started"}),
    ("POST", "/sysupgrade", "400", {"message": "Failed to begin upgrade"}),
    ("POST", "/sysupgrade", "400", {"message": "Failed to validate image"}),
    ("GET", "/version", "401", DOC_401),
    ("POST", "/device/info", "400", {"error": "Unknown device_alias: INV9"}),
    ("GET", "/devices", "200", DOC_DEVICE_INFO),
    ("GET", "/tags", "200", {"total_signals": "1", "signals": [{"device_alias": "INV1", **DOC_SIGNAL}]}),
    ("GET", "/version", "200", _with(DOC_VERSION, build="r1234")),  # newer firmware may add keys
])
def test_documented_answers_are_valid(doc, registry, method, path, status, answer):
    response_validator(doc, registry, method, path, status).validate(answer)


@pytest.mark.parametrize("method, path, status, answer", [
    ("GET", "/version", "200", _with(DOC_VERSION, api_version=2)),  # all values in answers are strings
    ("GET", "/version", "200", {"api_version": "2", "api_patch": "1"}),
    ("GET", "/version", "200", _with(DOC_VERSION, uptime=12)),  # an added key is a string too
    ("POST", "/device/info", "200", {"devices": DOC_DEVICE_INFO["Devices"]}),  # the older page (NOTES.md)
    ("POST", "/device/info", "200", {"Devices": [{"device_alias": "INV1", "name": "INV1"}]}),
    ("POST", "/device/tags", "200", _with(DOC_TAGS, total_signals=7)),
    ("POST", "/device/tags", "200", {"total_signals": "7", "signals": [_with(DOC_SIGNAL, signal_alias=None)]}),
    ("POST", "/device/tag/value", "200", _value(value=5.959)),
    ("POST", "/device/tag/value", "200", _value(timestamp="1708000203")),  # seconds, not milliseconds
    ("POST", "/device/tag/value", "200", _value(timestamp=1708000203824)),
    ("POST", "/device/tag/value", "200", _value(timestamp="2024-02-15T12:30:03Z")),
    ("POST", "/device/tag/value", "200", _value(flags=None)),
    ("POST", "/sysupgrade", "200", {"message": "Failed to validate image"}),
    ("POST", "/sysupgrade", "400", {"message": "Upgrade started"}),
    ("GET", "/version", "401", {"error": "Unauthorized"}),
    ("GET", "/version", "401", _with(DOC_401, code="401")),  # exactly the page's body
    ("GET", "/systemInfo", "200", {"uptime": 285129}),
    ("GET", "/systemInfo", "200", {"gsm": {"registered": True}}),
    ("GET", "/tags", "200", {"signals": [{"value": None}]}),
    ("GET", "/devices", "200", ["INV1"]),
])
def test_wrong_answers_are_invalid(doc, registry, method, path, status, answer):
    assert not response_validator(doc, registry, method, path, status).is_valid(answer)


def test_response_examples_are_valid(doc, registry):
    for method, path, op in _operations(doc):
        for status, response in op["responses"].items():
            content = _resolve(doc, response)["content"]
            example = content.get("application/json", {}).get("example")
            if example is not None:
                response_validator(doc, registry, method, path, status).validate(example)


def test_only_the_401_body_forbids_additional_properties(doc):
    def closed(node) -> bool:
        if isinstance(node, dict):
            return node.get("additionalProperties") is False or any(closed(v) for v in node.values())
        return isinstance(node, list) and any(closed(v) for v in node)

    assert [name for name, schema in doc["components"]["schemas"].items() if closed(schema)] == ["UnauthorizedBody"]
    # ... and only as this project's reading: the page gives the message, not that nothing else comes.
    (closing,) = doc["components"]["schemas"]["UnauthorizedBody"]["allOf"]
    assert closing["additionalProperties"] is False and closing["x-conformlab-reading"]


def test_reading_marks_only_on_answer_schemas(doc):
    """Reading marks stand on answer schemas only (components used by responses), never on requests."""
    marks = reading_marks(doc)
    assert marks and all(m.startswith("/components/schemas/") for m in marks), marks
    request_schemas = {"DeviceForm", "TagForm", "FileForm"}
    assert not [m for m in marks if m.split("/")[3] in request_schemas]
    for name in ("StringValues", "Digits", "EpochMs", "Device", "DeviceInfo", "Signal", "UpgradeStarted",
                 "UpgradeFailed", "UnauthorizedBody", "Error"):
        assert any(m.split("/")[3] == name for m in marks), name


# What the document settles stays binding on any device; what only the reading says passes there.
DOCUMENT_ONLY_VALID = [
    ("POST", "/device/info", "200", {"devices": DOC_DEVICE_INFO["Devices"]}),  # the older page (NOTES.md)
    ("GET", "/devices", "200", [{"device_alias": "INV1", "name": "INV1", "protocol": "modbus rtu"}]),
    ("POST", "/device/tags", "200", _with(DOC_TAGS, total_signals="seven")),
    ("POST", "/device/tag/value", "200", _value(timestamp="1708000203")),  # digits: the clock tells s from ms
    ("POST", "/sysupgrade", "200", {"message": "Failed to validate image"}),
    ("POST", "/sysupgrade", "400", {"message": "Upgrade started"}),
    ("GET", "/version", "401", _with(DOC_401, code="401")),
    ("POST", "/device/info", "400", {"message": "no such device"}),
]
DOCUMENT_ONLY_INVALID = [
    ("POST", "/device/info", "200", {"Device": DOC_DEVICE_INFO["Devices"]}),
    ("POST", "/device/info", "200", {"devices": [{"device_alias": "INV1", "name": "INV1"}]}),
    ("POST", "/device/tags", "200", _with(DOC_TAGS, total_signals=7)),
    ("POST", "/device/tag/value", "200", _value(timestamp="2024-02-15T12:30:03Z")),
    ("POST", "/device/tag/value", "200", _value(timestamp=1708000203824)),
    ("POST", "/device/tag/value", "200", _value(flags=None)),
    ("POST", "/sysupgrade", "200", {"message": "Upgrade begun"}),
    ("GET", "/version", "401", {"error": "Unauthorized"}),
    ("GET", "/devices", "200", [{"device_alias": "INV1", "count": 1}]),
]


@pytest.mark.parametrize("method, path, status, answer", DOCUMENT_ONLY_VALID)
def test_document_only_schema_accepts_other_readings(device_schema, method, path, status, answer):
    op = device_schema.operation(method, path)
    assert device_schema.check_answer(op, canned(status, answer), readings=False) == []
    assert device_schema.check_answer(op, canned(status, answer)) != []  # the reading: binding on the emulator


@pytest.mark.parametrize("method, path, status, answer", DOCUMENT_ONLY_INVALID)
def test_document_only_schema_keeps_what_the_document_says(device_schema, method, path, status, answer):
    op = device_schema.operation(method, path)
    assert device_schema.check_answer(op, canned(status, answer), readings=False) != []


def canned(status: str, body) -> requests.Response:
    response = requests.Response()
    response.status_code = int(status)
    response.headers["Content-Type"] = "application/json"
    response._content = json.dumps(body).encode()
    return response


# ---------------------------------------------------------------------------------------------------
# The emulator's answers conform, for every operation and every declared status


def _requests(emu) -> list[tuple[str, str, str, dict]]:
    """(method, path, the status the request must get, requests kwargs): every (operation, status)."""
    key = {"apiKey": API_KEY}
    image = {"file": ("1.8.4-rtu.sysupgrade", build_image())}
    cases = []
    for method, path in sorted(OPERATIONS):
        cases.append((method, path, "401", {}))
        if method == "GET":
            cases.append((method, path, "200", {"headers": key}))
    cases += [
        ("POST", "/device/info", "200", {"headers": key, "files": {"device_alias": (None, "INV1")}}),
        ("POST", "/device/info", "400", {"headers": key, "files": {"device_alias": (None, "INV9")}}),
        ("POST", "/device/tags", "200", {"headers": key, "files": {"device_alias": (None, "SCADA")}}),
        ("POST", "/device/tags", "400", {"headers": key}),
        ("POST", "/device/tag/value", "200",
         {"headers": key, "files": {"device_alias": (None, "INV1"), "signal_alias": (None, "P")}}),
        ("POST", "/device/tag/value", "400", {"headers": key, "files": {"device_alias": (None, "INV1")}}),
        ("POST", "/sysupgrade", "400", {"headers": key, "files": {"file": ("x.sysupgrade", b"garbage")}}),
        ("POST", "/sysupgrade", "400", {"headers": key}),
        ("POST", "/sync", "200", {"headers": key, "files": {"file": ("config.xlsx", build_workbook())}}),
        ("POST", "/sync", "400", {"headers": key, "files": {"file": ("config.xlsx", b"not a workbook")}}),
        ("POST", "/sysupgrade", "200", {"headers": key, "files": image}),  # last: the gateway restarts
    ]
    return cases


def test_emulator_answers_conform_for_every_operation(emu, device_schema):
    exercised = set()
    for method, path, status, kwargs in _requests(emu):
        response = requests.request(method, emu.url + "/api" + path, timeout=5, **kwargs)
        assert str(response.status_code) == status, f"{method} {path}: {response.status_code} {response.text[:200]}"
        problems = device_schema.check_answer(device_schema.operation(method, path), response)
        assert problems == [], problems
        exercised.add((method, path, status))
    wait_until_booted(emu.emulator, restarts=1)  # the upgrade restarted it: the next tests need it up
    declared = {(m, p, s) for m, p, op in _operations(device_schema.doc) for s in op["responses"]}
    assert exercised == declared


def wait_until_booted(emulator, restarts: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while emulator.restarts < restarts or emulator.down:
        assert time.monotonic() < deadline, "the emulator did not come back after the upgrade"
        time.sleep(0.05)


def test_every_emulator_tag_value_conforms(emu, device_schema):
    op = device_schema.operation("POST", "/device/tag/value")
    key = {"apiKey": API_KEY}
    tags = requests.get(emu.url + "/api/tags", headers=key, timeout=5).json()["signals"]
    for tag in tags:
        response = requests.post(emu.url + "/api/device/tag/value", headers=key, timeout=5, files={
            "device_alias": (None, tag["device_alias"]), "signal_alias": (None, tag["signal_alias"])})
        assert device_schema.check_answer(op, response) == []


@pytest.mark.parametrize("fault, method, path, fields", [
    ("numeric_value", "POST", "/device/tag/value", {"device_alias": "INV1", "signal_alias": "F"}),
    ("flags_null", "POST", "/device/tag/value", {"device_alias": "INV1", "signal_alias": "F"}),
    ("timestamp_seconds", "POST", "/device/tag/value", {"device_alias": "INV1", "signal_alias": "F"}),
    ("total_signals_number", "POST", "/device/tags", {"device_alias": "INV1"}),
    ("unauthorized_other_body", "GET", "/version", None),
    ("unauthorized_403", "GET", "/version", None),
])
def test_faulty_answers_do_not_conform(device_schema, fault, method, path, fields):
    with serve(WccLiteEmulator(faults=[fault], auth={"api_key": API_KEY}), host="127.0.0.1", port=0) as emu:
        kwargs = {"headers": {"apiKey": API_KEY}, "files": {k: (None, v) for k, v in fields.items()}} if fields else {}
        response = requests.request(method, emu.url + "/api" + path, timeout=5, **kwargs)
        assert device_schema.check_answer(device_schema.operation(method, path), response) != []


def test_the_older_devices_key_does_not_conform(emu, device_schema):
    requests.post(emu.url + "/__emulator__/devices_key", json={"key": "devices"}, timeout=5)
    try:
        response = requests.post(emu.url + "/api/device/info", headers={"apiKey": API_KEY},
                                 files={"device_alias": (None, "INV1")}, timeout=5)
        problems = device_schema.check_answer(device_schema.operation("POST", "/device/info"), response)
        assert problems and "'Devices' is a required property" in " ".join(problems)
    finally:
        requests.post(emu.url + "/__emulator__/devices_key", json={"key": "Devices"}, timeout=5)


# ---------------------------------------------------------------------------------------------------
# schemathesis loads the document and builds every operation


def test_schemathesis_builds_every_operation(st_schema):
    assert built_operations(st_schema) == OPERATIONS


def test_schemathesis_checks_the_401_body(st_schema):
    case = st_schema["/version"]["GET"].Case()
    checks = [openapi_checks.response_schema_conformance, openapi_checks.status_code_conformance,
              openapi_checks.content_type_conformance]

    def answer(status, body: bytes):
        return canned_response(status, body, url="http://127.0.0.1:9/api/version")

    assert conforms(case, answer(401, b'{"error":"Unauthorized access."}'), checks)
    assert not conforms(case, answer(401, b'{"error":"Unauthorized"}'), checks)
    assert not conforms(case, answer(403, b'{"error":"Unauthorized access."}'), checks)
    assert conforms(case, answer(200, b'{"api_version":"2","api_patch":"1","sync_version":"lite1"}'), checks)
    assert not conforms(case, answer(200, b'{"api_version":2,"api_patch":"1","sync_version":"lite1"}'), checks)
