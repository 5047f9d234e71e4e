"""OpenAPI helpers shared by the schema tests: fixtures built from one schema file, $ref
resolution, operation lookup and JSON-Schema validators for answers, requests and parameters."""

from __future__ import annotations

from pathlib import Path

import json

import jsonschema
import pytest
import requests
import schemathesis
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT202012

DOC_URI = "urn:conformlab:schema"  # each test module builds its own registry for its own schema
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def schema_fixtures(schema_path: Path):
    """The doc, registry and st_schema fixtures of one schema file (assign them in the test module)."""

    @pytest.fixture(scope="module")
    def doc() -> dict:
        return yaml.safe_load(schema_path.read_text(encoding="utf-8"))

    @pytest.fixture(scope="module")
    def registry(doc) -> Registry:
        return Registry().with_resource(DOC_URI, DRAFT202012.create_resource(doc))

    @pytest.fixture(scope="module")
    def st_schema():
        return schemathesis.openapi.from_path(str(schema_path), config=schemathesis.Config())

    return doc, registry, st_schema


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _pointer(*tokens: str) -> str:
    return "#/" + "/".join(_escape(str(t)) for t in tokens)


def _resolve(doc: dict, obj):
    """Follow local $refs (responses, parameters, headers, schemas) to the object."""
    while isinstance(obj, dict) and "$ref" in obj:
        node = doc
        for token in obj["$ref"].removeprefix("#/").split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]
        obj = node
    return obj


def _operations(doc: dict):
    for path, item in doc["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def _op(doc: dict, method: str, path: str) -> dict:
    return doc["paths"][path][method.lower()]


def _validator(registry: Registry, pointer: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": DOC_URI + pointer}, registry=registry)


def _response_pointer(doc, method, path, status="200", media="application/json") -> str:
    response = _op(doc, method, path)["responses"][status]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        return _pointer("components", "responses", name, "content", media, "schema")
    return _pointer("paths", path, method.lower(), "responses", status, "content", media, "schema")


def response_validator(doc, registry, method, path, status="200", media="application/json"):
    return _validator(registry, _response_pointer(doc, method, path, status, media))


def request_validator(doc, registry, method, path, media="application/json"):
    return _validator(registry, _pointer("paths", path, method.lower(), "requestBody", "content", media, "schema"))


def parameter_validator(doc, registry, method, path, name):
    for i, param in enumerate(_op(doc, method, path).get("parameters", [])):
        if _resolve(doc, param)["name"] == name:
            return _validator(registry, _pointer("paths", path, method.lower(), "parameters", i, "schema"))
    raise KeyError(name)


def canned_response(status: int, body, content_type: str | None = "application/json", headers=None,
                    method: str = "GET", url: str = "http://127.0.0.1:9/api/") -> schemathesis.Response:
    """An answer as schemathesis sees one, built by hand: `body` is bytes, text, or a JSON value."""
    all_headers = {"content-type": [content_type]} if content_type else {}
    all_headers.update({name.lower(): [value] for name, value in (headers or {}).items()})
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    raw = body.encode() if isinstance(body, str) else body
    return schemathesis.Response(status, all_headers, raw, requests.Request(method, url).prepare(), 0.01, True)


def conforms(case, response, checks) -> bool:
    """Whether schemathesis's `checks` accept `response` as an answer to `case`."""
    try:
        case.validate_response(response, checks=checks)
    except BaseException as exc:  # schemathesis raises a FailureGroup (an exception group)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return False
    return True


def forbidden_additional_properties(doc: dict, exempt: tuple[str, ...] = ()) -> list[str]:
    """Where a schema says additionalProperties: false (answers must let newer firmware add fields);
    `exempt` names component schemas of requests, where that is allowed."""
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            if any(where.endswith(f"/schemas/{name}") for name in exempt):
                return
            if node.get("additionalProperties", True) is False:
                found.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(doc, "#")
    return found


def built_operations(st_schema) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation schemathesis builds; one case (and every documented
    example) is drawn from each, so an operation it cannot generate for fails here."""
    built = set()
    for result in st_schema.get_all_operations():
        operation = result.ok()
        built.add((operation.method.upper(), operation.path))
        assert operation.as_strategy().example().operation is operation
        for strategy in operation.get_strategies_from_examples():
            strategy.example()
    return built


def reading_marks(node, where="") -> list[str]:
    """The JSON pointers of every node marked as this project's reading (x-conformlab-reading or
    x-conformlab-reading-required)."""
    found = []
    if isinstance(node, dict):
        if "x-conformlab-reading" in node or "x-conformlab-reading-required" in node:
            found.append(where)
        for key, value in node.items():
            found += reading_marks(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += reading_marks(value, f"{where}/{i}")
    return found
