"""Sanity tests of schemas/overvis-mc252.yaml, the Overvis MC252 OpenAPI document.

The document (../shared/docs/overvis-mc252-api.txt) is the specification: its two path tables with the
access level of each path, the error envelope and the login procedure; NOTES.md gives the shapes the copy
lost (salt, login, logout, version, state, settings). The bundled emulator is checked against the schema
for every operation, so the schema and the emulator cannot drift apart.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import hypothesis
import jsonschema
import openapi_spec_validator
import pytest
import requests
from hypothesis import HealthCheck, Phase
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from conformlab.emulators.overvis_mc252 import (
    BAUDRATES, DEFAULT_SETTINGS, ROUTES, SETTINGS, STATE_KEYS, OvervisMc252Emulator)
from conformlab.emulators.server import serve
from conformlab.schema import DeviceSchema
from openapi_doc import DOC_URI, _op, _operations, _resolve, built_operations, forbidden_additional_properties, request_validator, response_validator, schema_fixtures

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "schemas" / "overvis-mc252.yaml"
DOCUMENT_PATH = ROOT.parent / "shared" / "docs" / "overvis-mc252-api.txt"
LOGIN, PASSWORD = "admin", "mc252-schema-secret"
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")

doc, registry, st_schema = schema_fixtures(SCHEMA_PATH)

# The schema's x-conformlab access (the access matrix's vocabulary) of each of the document's levels.
LEVEL = {"none": 0, "level-1": 1, "level-2": 2}
# The document's two tables: the first (reads) GET, the second (commands) POST; the access level column.
DOCUMENTED_LEVEL = {
    ("GET", "/version/"): 0,
    ("GET", "/login/salt/"): 0,
    ("GET", "/identify/"): 1,
    ("GET", "/state/get/"): 1,
    ("GET", "/settings/active/get/"): 1,
    ("GET", "/settings/saved/get/"): 1,
    ("GET", "/modbus/resp/"): 1,
    ("GET", "/modbus/find/result/"): 1,
    ("GET", "/modbus/class-find/result/"): 1,
    ("POST", "/login/"): 0,
    ("POST", "/cmd/logout/"): 1,
    ("POST", "/cmd/memory/card_eject/"): 1,
    ("POST", "/cmd/time/sync/"): 1,
    ("POST", "/cmd/time/set/"): 1,
    ("POST", "/cmd/reboot/"): 1,
    ("POST", "/cmd/callback/reconnect/"): 1,
    ("POST", "/cmd/updates/download/"): 1,
    ("POST", "/cmd/updates/program/"): 1,
    ("POST", "/cmd/settings/reset/"): 1,
    ("POST", "/cmd/settings/import/"): 1,
    ("POST", "/cmd/settings/export/"): 1,
    ("POST", "/cmd/gsm/sms-test/"): 1,
    ("POST", "/activation/"): 1,
    ("POST", "/card/file/info/"): 1,
    ("POST", "/card/file/read/"): 1,
    ("POST", "/card/file/write/"): 1,
    ("POST", "/card/remove/"): 1,
    ("POST", "/card/dir/"): 1,
    ("POST", "/settings/saved/set/"): 1,
    ("POST", "/modbus/req/"): 1,
    ("POST", "/modbus/find/start/"): 1,
    ("POST", "/modbus/find/stop/"): 1,
    ("POST", "/modbus/class-find/search-meta-info/"): 1,
    ("POST", "/modbus/class-find/start/"): 1,
    ("POST", "/modbus/class-find/stop/"): 1,
}

DESTRUCTIVE = {("POST", path) for path in (
    "/cmd/reboot/", "/cmd/updates/download/", "/cmd/updates/program/", "/cmd/settings/reset/",
    "/cmd/settings/import/", "/activation/", "/cmd/gsm/sms-test/", "/cmd/callback/reconnect/",
    "/cmd/memory/card_eject/", "/cmd/time/set/", "/card/file/write/", "/card/remove/")}
NOT_FUZZED = {("POST", path) for path in (
    "/cmd/logout/", "/cmd/reboot/", "/cmd/memory/card_eject/", "/cmd/time/set/", "/cmd/settings/reset/",
    "/cmd/settings/import/", "/cmd/gsm/sms-test/", "/activation/", "/card/file/write/", "/card/remove/",
    "/settings/saved/set/", "/modbus/req/", "/cmd/updates/program/")}
# Operations after whose successful answer the device restarts (x-conformlab restarts).
RESTARTS = {("POST", path) for path in ("/cmd/reboot/", "/cmd/settings/reset/", "/cmd/settings/import/", "/cmd/updates/program/")}
READS = {
    ("POST", "/settings/saved/set/"): "/settings/saved/get/",
    ("POST", "/cmd/settings/reset/"): "/settings/saved/get/",
    ("POST", "/cmd/settings/import/"): "/settings/saved/get/",
    ("POST", "/cmd/reboot/"): "/settings/active/get/",
    ("POST", "/cmd/time/sync/"): "/state/get/",
    ("POST", "/cmd/time/set/"): "/state/get/",
    ("POST", "/modbus/req/"): "/modbus/resp/",
    ("POST", "/modbus/find/start/"): "/modbus/find/result/",
    ("POST", "/modbus/find/stop/"): "/modbus/find/result/",
    ("POST", "/modbus/class-find/start/"): "/modbus/class-find/result/",
    ("POST", "/modbus/class-find/stop/"): "/modbus/class-find/result/",
}
# Statuses besides 200 (and 400 on every POST, 401 on every level-1 operation).
SPECIAL_CODES = {
    ("GET", "/state/get/"): {"400"},
    ("GET", "/settings/active/get/"): {"400"},
    ("GET", "/settings/saved/get/"): {"400"},
    ("GET", "/modbus/resp/"): {"400", "404"},
    ("GET", "/modbus/find/result/"): {"400"},
    ("POST", "/modbus/class-find/search-meta-info/"): {"404"},
    ("POST", "/modbus/class-find/start/"): {"404"},
    **{("POST", path): {"404", "503"} for path in (
        "/card/file/info/", "/card/file/read/", "/card/file/write/", "/card/remove/", "/card/dir/")},
}

# NOTES.md's answers ("..." filled with plausible values).
NOTES_SALT = {"salt": "3f786850e387550fdab836ed7e6dc881de23001b"}
NOTES_LOGIN = {"authType": "Bearer", "token": "a1b2c3d4e5f60718293a4b5c6d7e8f90", "ttlSec": 60}
NOTES_VERSION = {"device": "MC-252", "deviceId": 52, "firmwareType": "release", "firmwareVer": 46,
                 "releaseDate": "2025-01-01T00:00:00"}
NOTES_STATE = {"ethernet": {"link": True}, "gsm": {"registered": False}}
DOC_ERROR = {"error": "error code", "message": "error text"}


def document_table() -> dict[tuple[str, str], int]:
    """The two path tables of the vendor document, parsed: {(method, path without /api): level}."""
    text = DOCUMENT_PATH.read_text(encoding="utf-8")
    first, second = text.split("PathPurposeAccess Level")[1:3]
    table = {}
    for method, part in (("GET", first), ("POST", second)):
        for path, level in re.findall(r"^/api(/\S*?/)(?:\?\S*?)?[A-Z].*?(?:🟩|🟨|🟥) ([012])$", part, re.M):
            table[(method, path)] = int(level)
    return table


# ---------------------------------------------------------------------------------------------------
# The document


def test_openapi_31_document_is_valid(doc):
    assert doc["openapi"] == "3.1.0"
    openapi_spec_validator.validate(doc)
    assert doc["servers"] == [{"url": "/api"}]
    assert doc["x-conformlab"] == {"device": "overvis-mc252", "prefix": "/api"}


@pytest.mark.skipif(not DOCUMENT_PATH.exists(), reason="the vendor document is not next to the checkout")
def test_the_level_table_is_the_documents():
    assert document_table() == DOCUMENTED_LEVEL


def test_every_documented_operation_and_nothing_else(doc):
    assert {(m, p) for m, p, _ in _operations(doc)} == set(DOCUMENTED_LEVEL)
    assert all(path.endswith("/") for path in doc["paths"])  # the tables' trailing slashes


def test_the_emulator_routes_are_the_schemas():
    assert {(route.method, route.path): route.access for route in ROUTES} == DOCUMENTED_LEVEL


def test_the_harness_schema_loader_reads_it():
    schema = DeviceSchema(SCHEMA_PATH)
    assert {(op.method, op.path) for op in schema.operations} == set(DOCUMENTED_LEVEL)
    assert {(op.method, op.path): LEVEL[op.extension["access"]] for op in schema.operations} == DOCUMENTED_LEVEL
    assert {(op.method, op.path): op.access for op in schema.operations} == {
        key: ("level-1",) if level else () for key, level in DOCUMENTED_LEVEL.items()}
    assert {(op.method, op.path) for op in schema.operations if op.destructive} == DESTRUCTIVE
    assert {(op.method, op.path) for op in schema.operations if not op.fuzz} == NOT_FUZZED
    assert {(op.method, op.path): op.reads for op in schema.operations if op.reads} == READS
    assert {(op.method, op.path) for op in schema.operations if op.restarts} == RESTARTS
    assert all(schema.restarting(*key) is not None for key in RESTARTS)
    assert schema.restarting("POST", "/cmd/logout/") is None


def test_x_conformlab_keys(doc):
    for method, path, op in _operations(doc):
        ext = op["x-conformlab"]
        assert set(ext) <= {"access", "destructive", "reads", "fuzz", "written_by", "restarts", "restart_within"}, f"{method} {path}: {ext}"
        if "restarts" in ext:  # a restart is never fuzzed (each one ends the run's session) and is destructive
            assert isinstance(ext["restarts"], str) and ext["restarts"].strip() and ext.get("fuzz") is False, f"{method} {path}"
            assert "destructive" in ext, f"{method} {path}"
        assert ext["access"] in LEVEL
        if "destructive" in ext:
            assert isinstance(ext["destructive"], str) and len(ext["destructive"].strip()) > 20
        if "fuzz" in ext:
            assert ext["fuzz"] is False, f"{method} {path}: say fuzz: false or nothing"
        if "reads" in ext:
            assert method != "GET" and "get" in doc["paths"][ext["reads"]], f"{method} {path}"
        if "written_by" in ext:  # the write that restores the read: it reads back here, and is safe to use
            writer = doc["paths"][ext["written_by"]]["post"]["x-conformlab"]
            assert method == "GET" and writer.get("reads") == path and "destructive" not in writer, f"{method} {path}"
    # destructive commands are never fuzzed with random bodies where that could not be undone
    assert {key for key in DESTRUCTIVE if key not in NOT_FUZZED} == {
        ("POST", "/cmd/updates/download/"), ("POST", "/cmd/callback/reconnect/")}


def test_security_follows_the_level(doc):
    schemes = doc["components"]["securitySchemes"]
    assert (schemes["bearerAuth"]["type"], schemes["bearerAuth"]["scheme"]) == ("http", "bearer")
    assert schemes["authorizedHeader"] == {**schemes["authorizedHeader"], "type": "apiKey", "in": "header",
                                           "name": "Authorized"}
    assert "Authorized" in schemes["bearerAuth"]["description"] + schemes["authorizedHeader"]["description"]
    for method, path, op in _operations(doc):
        level = LEVEL[op["x-conformlab"]["access"]]
        expected = [{}] if level == 0 else [{"bearerAuth": []}, {"authorizedHeader": []}]
        assert op["security"] == expected, f"{method} {path}"


def test_operation_ids_summaries_tags(doc):
    tags = {t["name"] for t in doc["tags"]}
    ids = []
    for method, path, op in _operations(doc):
        ids.append(op["operationId"])
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]*", op["operationId"]), op["operationId"]
        assert op.get("summary") and len(op["tags"]) == 1 and op["tags"][0] in tags, f"{method} {path}"
    assert len(ids) == len(set(ids))


@pytest.mark.skipif(not DOCUMENT_PATH.exists(), reason="the vendor document is not next to the checkout")
def test_summaries_are_the_documents_purposes(doc):
    text = DOCUMENT_PATH.read_text(encoding="utf-8")
    for method, path, op in _operations(doc):
        assert f"{op['summary']}{'🟩' if op['x-conformlab']['access'] == 'none' else '🟨'}" in text, f"{method} {path}"


# ---------------------------------------------------------------------------------------------------
# Answers: the envelope on every error, the statuses per operation


def test_responses_per_operation(doc):
    for method, path, op in _operations(doc):
        expected = {"200"} | SPECIAL_CODES.get((method, path), set())
        if method == "POST":
            expected.add("400")  # malformed JSON at least
        if LEVEL[op["x-conformlab"]["access"]] >= 1:
            expected.add("401")
        if (method, path) == ("POST", "/login/"):
            expected.add("401")
        assert set(op["responses"]) == expected, f"{method} {path}: {sorted(op['responses'])}"
        for status, response in op["responses"].items():
            response = _resolve(doc, response)
            assert response.get("description"), f"{method} {path} {status}"
            assert set(response["content"]) == {"application/json"}, f"{method} {path} {status}"
            if status != "200":
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_error_envelope(doc, registry):
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message"]
    validator = response_validator(doc, registry, "GET", "/state/get/", "401")
    validator.validate(DOC_ERROR)
    for wrong in ({"error": "x"}, {"message": "x"}, {"error": 1, "message": "x"}, "Unauthorized", {}):
        assert not validator.is_valid(wrong), wrong


def test_response_schemas_never_forbid_additional_properties(doc):
    assert forbidden_additional_properties(doc, exempt=("SettingsWrite",)) == []


@pytest.mark.parametrize("method, path, answer", [
    ("GET", "/login/salt/", NOTES_SALT), ("POST", "/login/", NOTES_LOGIN), ("GET", "/version/", NOTES_VERSION),
    ("GET", "/state/get/", NOTES_STATE), ("GET", "/settings/saved/get/", {"logIntervalSec": 30}),
    ("GET", "/settings/active/get/", DEFAULT_SETTINGS), ("POST", "/cmd/logout/", {}),
    ("GET", "/modbus/resp/", {"tid": 3, "status": "pending"}),
])
def test_notes_answers_are_valid(doc, registry, method, path, answer):
    response_validator(doc, registry, method, path).validate(answer)


@pytest.mark.parametrize("method, path, answer", [
    ("GET", "/login/salt/", {"salt": "3f786850"}),
    ("GET", "/login/salt/", {}),
    ("POST", "/login/", {"authType": "Basic", "token": "x", "ttlSec": 60}),
    ("POST", "/login/", {"authType": "Bearer", "ttlSec": 60}),
    ("GET", "/version/", {**NOTES_VERSION, "firmwareVer": "46"}),
    ("GET", "/modbus/resp/", {"status": "ok"}),
])
def test_wrong_answers_are_invalid(doc, registry, method, path, answer):
    assert not response_validator(doc, registry, method, path).is_valid(answer)


# ---------------------------------------------------------------------------------------------------
# Requests


def test_login_body(doc, registry):
    validator = request_validator(doc, registry, "POST", "/login/")
    validator.validate({"username": "admin", "password": hashlib.sha1(b"admin" + b"x" + b"salt").hexdigest()})
    for wrong in ({"username": "admin"}, {"username": "admin", "password": "A" * 40}, {"password": "0" * 40}):
        assert not validator.is_valid(wrong)


def test_request_examples_are_valid(doc, registry):
    examples = 0
    for method, path, op in _operations(doc):
        if "requestBody" not in op:
            continue
        if "$ref" in op["requestBody"]:  # a shared request body (components/requestBodies)
            where = ("components", "requestBodies", op["requestBody"]["$ref"].rsplit("/", 1)[-1])
        else:
            where = ("paths", path, "post", "requestBody")
        media = _resolve(doc, op["requestBody"])["content"]["application/json"]
        if "example" in media:
            pointer = "#/" + "/".join(part.replace("~", "~0").replace("/", "~1")
                                      for part in (*where, "content", "application/json", "schema"))
            validator = jsonschema.Draft202012Validator({"$ref": DOC_URI + pointer}, registry=registry)
            validator.validate(media["example"])
            examples += 1
    assert examples >= 6


def test_every_post_takes_a_json_object(doc):
    for method, path, op in _operations(doc):
        if method == "POST":
            schema = _resolve(doc, _resolve(doc, op["requestBody"])["content"]["application/json"]["schema"])
            assert schema["type"] == "object", path
        else:
            assert "requestBody" not in op, path


def test_settings_write_is_the_emulators_table(doc):
    """The schema's SettingsWrite and the emulator's SETTINGS say the same types and ranges."""
    properties = doc["components"]["schemas"]["SettingsWrite"]["properties"]
    assert set(properties) == set(SETTINGS) == set(doc["components"]["schemas"]["SettingsValues"]["properties"])
    kinds = {bool: "boolean", int: "integer", str: "string"}
    for key, setting in SETTINGS.items():
        prop = _resolve(doc, properties[key])
        assert prop["type"] == kinds[setting.kind], key
        assert prop.get("minimum") == setting.min and prop.get("maximum") == setting.max, key
        assert prop.get("enum") == (list(setting.choices) if setting.choices else None), key
        assert prop.get("minLength", 0) == setting.min_len and prop.get("maxLength") == setting.max_len, key
        assert prop.get("pattern") == setting.pattern, key
    assert properties["rs485Baudrate"]["enum"] == list(BAUDRATES)


def test_bare_key_parameters(doc):
    state = [_resolve(doc, p) for p in _op(doc, "GET", "/state/get/")["parameters"]]
    assert [p["name"] for p in state] == list(STATE_KEYS)
    for path in ("/settings/active/get/", "/settings/saved/get/"):
        params = [_resolve(doc, p) for p in _op(doc, "GET", path)["parameters"]]
        assert [p["name"] for p in params] == list(SETTINGS)
        state += params
    for param in state:
        assert param["in"] == "query" and param["required"] is False and param["allowEmptyValue"] is True
        assert param["schema"] == {"$ref": "#/components/schemas/BareKey"}
    (tid,) = _op(doc, "GET", "/modbus/resp/")["parameters"]
    assert tid["name"] == "tid" and tid["required"] is True and tid["schema"]["type"] == "integer"


# ---------------------------------------------------------------------------------------------------
# The emulator's answers conform, for every operation


@pytest.fixture(scope="module")
def emu():
    with serve(OvervisMc252Emulator(auth={"login": LOGIN, "password": PASSWORD}), host="127.0.0.1", port=0) as running:
        yield running


def _control(emu, name, payload=None, method="POST"):
    response = requests.request(method, f"{emu.url}/__emulator__/{name}", json=payload, timeout=5)
    assert response.status_code == 200
    return response.json()


def _login_answer(emu) -> requests.Response:
    salt = requests.get(emu.url + "/api/login/salt/", timeout=5).json()["salt"]
    digest = hashlib.sha1((LOGIN + PASSWORD + salt).encode()).hexdigest()
    return requests.post(emu.url + "/api/login/", json={"username": LOGIN, "password": digest}, timeout=5)


def _login(emu) -> dict[str, str]:
    answer = _login_answer(emu)
    assert answer.status_code == 200
    return {"Authorization": f"Bearer {answer.json()['token']}"}


B64 = base64.b64encode(b"conformlab\n").decode()
# (method, path) -> [(query, body, status)]: at least the 200 answer, and the other statuses the operation documents.
CALLS = {
    ("GET", "/version/"): [("", None, 200)],
    ("GET", "/login/salt/"): [("", None, 200)],
    ("GET", "/identify/"): [("", None, 200)],
    ("GET", "/state/get/"): [("", None, 200), ("?ethernet&gsm", None, 200), ("?nope", None, 400)],
    ("GET", "/settings/active/get/"): [("", None, 200), ("?deviceName", None, 200), ("?deviceName=x", None, 400)],
    ("GET", "/settings/saved/get/"): [("", None, 200), ("?logIntervalSec&ethIp", None, 200), ("?nope", None, 400)],
    ("POST", "/modbus/req/"): [("", {"unit": 1, "func": 3, "addr": 0, "count": 4}, 200),
                               ("", {"unit": 99, "func": 3, "addr": 0}, 200), ("", {"unit": 1}, 400)],
    ("GET", "/modbus/resp/"): [("?tid=1", None, 200), ("?tid=2", None, 200), ("?tid=999", None, 404),
                               ("?tid=x", None, 400)],
    ("POST", "/modbus/find/start/"): [("", {}, 200), ("", None, 200)],
    ("GET", "/modbus/find/result/"): [("", None, 200), ("?list", None, 200), ("?list=1", None, 400)],
    ("POST", "/modbus/find/stop/"): [("", {}, 200)],
    ("POST", "/modbus/class-find/search-meta-info/"): [("", {}, 200), ("", {"template": "OB-215"}, 200),
                                                       ("", {"template": "XY"}, 404)],
    ("POST", "/modbus/class-find/start/"): [("", {"template": "OB-215"}, 200), ("", {"template": "XY"}, 404),
                                            ("", {}, 400)],
    ("GET", "/modbus/class-find/result/"): [("", None, 200)],
    ("POST", "/modbus/class-find/stop/"): [("", {}, 200)],
    ("POST", "/login/"): [("", {"username": LOGIN, "password": "0" * 40}, 401), ("", {"username": LOGIN}, 400)],
    ("POST", "/cmd/time/sync/"): [("", {}, 200), ("", b"{", 400)],
    ("POST", "/cmd/time/set/"): [("", {"time": 1767225600}, 200), ("", {"time": "now"}, 400)],
    ("POST", "/cmd/callback/reconnect/"): [("", {}, 200)],
    ("POST", "/cmd/updates/download/"): [("", {}, 200)],
    ("POST", "/cmd/updates/program/"): [("", {}, 200)],
    ("POST", "/cmd/settings/export/"): [("", {}, 200)],
    ("POST", "/settings/saved/set/"): [("", {"logIntervalSec": 45}, 200), ("", {"logIntervalSec": 30}, 200),
                                       ("", {"nope": 1}, 400)],
    ("POST", "/cmd/settings/reset/"): [("", {}, 200)],
    ("POST", "/cmd/settings/import/"): [("", DEFAULT_SETTINGS, 200), ("", {"ethIp": "x"}, 400)],
    ("POST", "/cmd/gsm/sms-test/"): [("", {}, 200), ("", {"phone": "x"}, 400)],
    ("POST", "/activation/"): [("", {"key": "ABCD-1234"}, 200), ("", {}, 400)],
    ("POST", "/card/dir/"): [("", {}, 200), ("", {"path": "/logs"}, 200), ("", {"path": "/nope"}, 404),
                             ("", {"path": "x"}, 400)],
    ("POST", "/card/file/info/"): [("", {"path": "/README.TXT"}, 200), ("", {"path": "/logs"}, 200),
                                   ("", {"path": "/nope"}, 404)],
    ("POST", "/card/file/read/"): [("", {"path": "/README.TXT", "length": 8}, 200), ("", {"path": "/nope"}, 404),
                                   ("", {"path": "/logs"}, 400)],
    ("POST", "/card/file/write/"): [("", {"path": "/scratch.tmp", "data": B64}, 200),
                                    ("", {"path": "/nope/x", "data": B64}, 404)],
    ("POST", "/card/remove/"): [("", {"path": "/scratch.tmp"}, 200), ("", {"path": "/scratch.tmp"}, 404)],
    ("POST", "/cmd/memory/card_eject/"): [("", {}, 200)],
    ("POST", "/cmd/logout/"): [("", {}, 200)],
    ("POST", "/cmd/reboot/"): [("", {}, 200)],
}
# The order the calls run in: eject, logout and reboot last (they end what the others need).
LAST = [("POST", "/cmd/memory/card_eject/"), ("POST", "/cmd/logout/"), ("POST", "/cmd/reboot/")]


def _send(emu, method, path, query, body, headers):
    kwargs = {"headers": dict(headers), "timeout": 5}
    if isinstance(body, bytes):
        kwargs["data"] = body
    elif body is not None:
        kwargs["json"] = body
    return requests.request(method, f"{emu.url}/api{path}{query}", **kwargs)


def test_calls_cover_every_operation_and_status(doc):
    assert list(CALLS)[-3:] == LAST and set(CALLS) == set(DOCUMENTED_LEVEL)
    for (method, path), calls in CALLS.items():
        statuses = {str(status) for _, _, status in calls} | {"401"}
        if path == "/login/":
            statuses.add("200")  # the successful login is checked on its own (it needs a fresh salt)
        documented = set(_op(doc, method, path)["responses"]) - {"503"}
        assert documented <= statuses | ({"400"} if method == "POST" else set()), f"{method} {path}"


def test_the_emulators_answers_conform(emu):
    schema = DeviceSchema(SCHEMA_PATH)
    _control(emu, "reset")
    answer = _login_answer(emu)
    assert answer.status_code == 200
    conforms = not schema.check_answer(schema.operation("POST", "/login/"), answer)
    assert conforms, "the login answer does not conform (not shown: it carries the session token)"
    auth = {"Authorization": f"Bearer {answer.json()['token']}"}
    problems = []
    for (method, path), calls in CALLS.items():
        op = schema.operation(method, path)
        if path == "/modbus/resp/":
            _control(emu, "advance", {"seconds": 1})  # the answers are there
        if path == "/cmd/reboot/":
            auth = _login(emu)  # after the logout
        for query, body, status in calls:
            answer = _send(emu, method, path, query, body, auth)
            if answer.status_code != status:
                problems.append(f"{method} {path}{query}: {answer.status_code}, expected {status}")
            problems += schema.check_answer(op, answer)
    # the error answers the calls above cannot give
    _control(emu, "reset")
    for (method, path), level in DOCUMENTED_LEVEL.items():
        if level:
            answer = _send(emu, method, path, "", {} if method == "POST" else None, {})
            assert answer.status_code == 401
            problems += schema.check_answer(schema.operation(method, path), answer)
    auth = _login(emu)
    _send(emu, "POST", "/cmd/memory/card_eject/", "", {}, auth)
    for path in ("/card/dir/", "/card/file/info/", "/card/file/read/", "/card/file/write/", "/card/remove/"):
        answer = _send(emu, "POST", path, "", {"path": "/README.TXT", "data": B64}, auth)
        assert answer.status_code == 503
        problems += schema.check_answer(schema.operation("POST", path), answer)
    assert problems == []


def test_schemathesis_builds_every_operation(st_schema):
    assert built_operations(st_schema) == set(DOCUMENTED_LEVEL)


RESPONSE_CHECKS = [openapi_checks.response_schema_conformance, openapi_checks.status_code_conformance,
                   openapi_checks.content_type_conformance]


def test_generated_requests_get_documented_answers(st_schema, doc, emu):
    """Positive requests generated from the schema (every fuzzable operation) get documented answers."""
    _control(emu, "reset")
    session = requests.Session()
    session.headers.update(_login(emu))
    fuzzable = [(m, p) for m, p, op in _operations(doc) if op["x-conformlab"].get("fuzz", True)]
    assert len(fuzzable) == len(DOCUMENTED_LEVEL) - len(NOT_FUZZED)
    for method, path in fuzzable:
        operation = st_schema[path][method]

        @hypothesis.settings(max_examples=8, deadline=None, derandomize=True, database=None,
                             phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @hypothesis.given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        def check(case):
            response = case.call(base_url=emu.url + "/api", session=session)
            if path != "/login/":  # (generated logins are refused with 401)
                assert response.status_code != 401  # the session lives through the run
            case.validate_response(response, checks=RESPONSE_CHECKS)

        check()
    assert _control(emu, "settings", method="GET")["saved"] == DEFAULT_SETTINGS
    assert _control(emu, "counters", method="GET")["logins"] == 1
