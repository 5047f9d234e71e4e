"""The device schemas (schemas/<device>.yaml): the single source of the endpoint list.

Suites are parametrized from `device_schema(device).operations`; answers are validated with
`check_answer()`. The harness's own extension on each operation:

    x-conformlab:
      access: [write]        # the grants it needs (a name, a list of names, or none): the access
                             # matrix (suites/common/test_access.py) serves it to a role holding them
      destructive: "<why>"   # only with destructive = true on the target
      reads: /config/evse    # the GET that shows this write's effect
      field: chargingCurrent # the key inside that answer, for single-value writes
      fuzz: false            # keep out of property-based testing (e.g. it re-keys the device)
      restarts: "<sentence>" # a successful answer means the device restarts: the client waits
                             # until it has gone down and come back before anything else is sent
      restart_within: 5      # seconds in which it goes down (default 5; none seen: it did not restart)

Constraints of answers that are this project's reading, not the document's, are marked where they
stand, with the reason:

    x-conformlab-reading: "the document shows this field only in an example"   # on a schema node
    x-conformlab-reading-required: [a, b]   # names of `required` that only the reading requires

`check_answer(..., readings=False)` (any device but the bundled emulators in their default reading)
drops them: a FAIL only for what the document says.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from conformlab import secrets
from conformlab.profiles import PROFILES

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def project_root() -> Path:
    """The checkout that holds schemas/ and suites/ (the harness is run from a clone)."""
    candidates = [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]
    for folder in candidates:
        if (folder / "schemas").is_dir() and (folder / "suites").is_dir():
            return folder
    raise FileNotFoundError("cannot find the conformlab checkout (a folder with schemas/ and suites/)")


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str  # relative to the prefix, with {params}
    operation_id: str
    summary: str
    spec: dict = field(repr=False, compare=False)
    extension: dict = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def destructive(self) -> str | None:
        return self.extension.get("destructive")

    @property
    def reads(self) -> str | None:
        return self.extension.get("reads")

    @property
    def field(self) -> str | None:
        return self.extension.get("field")

    @property
    def fuzz(self) -> bool:
        return self.extension.get("fuzz", True)

    @property
    def restarts(self) -> str | None:
        return self.extension.get("restarts")

    @property
    def since_firmware(self) -> str | None:
        """The firmware version the document says the operation needs (conformlab.firmware), if any."""
        return self.extension.get("since_firmware")

    @property
    def restart_within(self) -> float:
        return float(self.extension.get("restart_within", 5))

    @property
    def access(self) -> tuple[str, ...]:
        """The grants the operation needs, in the one vocabulary of every schema (a level, token kind
        or permission name; the access matrix compares them with the grants a role holds): empty
        for an operation open to anyone (`access: none`)."""
        if "access" not in self.extension:
            raise KeyError(f"{self}: the schema gives no x-conformlab access")
        value = self.extension["access"]
        names = [value] if isinstance(value, str) else list(value)
        return tuple(name for name in names if name != "none")

    @property
    def is_write(self) -> bool:
        return self.method != "GET"

    def _media(self) -> dict:
        return (self.spec.get("requestBody") or {}).get("content") or {}

    @property
    def body_kind(self) -> str | None:
        """None (no body), "json", or "binary"."""
        media = self._media()
        if "application/json" in media:
            return "json"
        if media:
            return "binary"
        return None

    @property
    def request_schema(self) -> dict | None:
        media = self._media().get("application/json")
        return media.get("schema") if media else None

    @property
    def example(self):
        media = self._media().get("application/json") or {}
        return media.get("example")

    @property
    def statuses(self) -> set[str]:
        return set(self.spec.get("responses", {}))

    @property
    def path_parameters(self) -> list[dict]:
        return [p for p in self.spec.get("parameters", []) if p.get("in") == "path"]

    def __str__(self) -> str:
        return self.key


class DeviceSchema:
    def __init__(self, path: Path):
        self.path = path
        self.doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.operations: list[Operation] = []
        for op_path, item in self.doc.get("paths", {}).items():
            shared = item.get("parameters", [])
            for method in HTTP_METHODS:
                if method not in item:
                    continue
                spec = dict(item[method])
                spec["parameters"] = shared + spec.get("parameters", [])
                self.operations.append(Operation(
                    method=method.upper(), path=op_path, operation_id=spec.get("operationId", f"{method} {op_path}"),
                    summary=spec.get("summary", ""), spec=spec, extension=spec.get("x-conformlab", {}),
                ))

    def operation(self, method: str, path: str) -> Operation:
        for op in self.operations:
            if op.method == method.upper() and op.path == path:
                return op
        raise KeyError(f"{method} {path} is not in {self.path.name}")

    def has(self, method: str, path: str) -> bool:
        return self.match(method, path) is not None

    def match(self, method: str, path: str) -> Operation | None:
        """The operation for a concrete path ("/script/components/x" matches "/script/components/{id}")."""
        for op in self.operations:
            if op.method == method.upper() and re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(op.path)), path):
                return op
        return None

    def resolve(self, schema: dict | None) -> dict | None:
        """Follow a top-level $ref (enough for the component references the schemas use)."""
        while isinstance(schema, dict) and "$ref" in schema and len(schema) == 1:
            node = self.doc
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def validator(self, schema: dict, readings: bool = True) -> Draft202012Validator:
        # The components travel with the sub-schema so that "#/components/..." references resolve.
        components = self.doc.get("components", {})
        if not readings:
            schema, components = document_only(schema), document_only(components)
        return Draft202012Validator({**schema, "components": components})

    def restarting(self, method: str, path: str) -> Operation | None:
        """The operation if a successful `method path` restarts the device, else None."""
        op = self.match(method, path)
        return op if op is not None and op.restarts else None

    def document_only(self) -> dict:
        """The whole schema without the constraints of this project's reading (for fuzzing a device
        that is not the bundled emulator: its answers are judged by the document alone)."""
        return document_only(self.doc)

    def check_answer(self, op: Operation, response, readings: bool = True) -> list[str]:
        """Problems of an answer against the operation's documented responses (empty = conforms).
        `readings=False`: only the document's constraints (see x-conformlab-reading)."""
        status = str(response.status_code)
        responses = op.spec.get("responses", {})
        declared = responses.get(status) or responses.get(status[0] + "XX") or responses.get("default")
        if declared is None:
            return [f"{op}: status {status} is not documented (documented: {', '.join(sorted(responses))})"]
        declared = self.resolve(declared)
        problems = []
        for name, header in (declared.get("headers") or {}).items():
            header = self.resolve(header)
            value = response.headers.get(name)
            if value is None:
                if header.get("required"):
                    problems.append(f"{op}: {status} answer lacks the header {name}")
                continue
            schema = header.get("schema") or {}
            if not readings and ("x-conformlab-reading" in header or "x-conformlab-reading" in schema):
                continue  # the header's form is only this project's reading
            if schema.get("type") == "integer" and not value.strip().lstrip("-").isdigit():
                problems.append(f"{op}: header {name}: {value!r} is not an integer")
        content = declared.get("content") or {}
        if not content:
            return problems
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype not in content:
            if not readings and all("x-conformlab-reading" in self.resolve(media.get("schema") or {})
                                    for media in content.values()):
                return problems  # every form declared is only this project's reading (an error body no page shows)
            return problems + [f"{op}: {status} answer has Content-Type {ctype or '(none)'!r}; documented: {', '.join(content)}"]
        schema = content[ctype].get("schema")
        if schema is None:
            return problems
        if ctype == "application/json":
            try:
                body = response.json()
            except ValueError:
                return problems + [f"{op}: body is not JSON: {secrets.mask(response.text)[:120]!r}"]
        else:
            body = response.text
        for error in sorted(self.validator(schema, readings).iter_errors(body), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in error.absolute_path) or "(body)"
            problems.append(f"{op}: {where}: {secrets.mask(error.message)[:300]}")
        return problems


def document_only(node):
    """A copy of a schema (or any part of one) without the constraints marked as this project's
    reading: a node marked x-conformlab-reading accepts anything, names listed in
    x-conformlab-reading-required are no longer required."""
    if isinstance(node, list):
        return [document_only(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "x-conformlab-reading" in node:
        return {}
    copy = {key: document_only(value) for key, value in node.items() if key != "x-conformlab-reading-required"}
    dropped = set(node.get("x-conformlab-reading-required", ()))
    if dropped and isinstance(copy.get("required"), list):
        copy["required"] = [name for name in copy["required"] if name not in dropped]
    return copy


@functools.cache
def device_schema(device: str) -> DeviceSchema:
    return DeviceSchema(project_root() / "schemas" / PROFILES[device].schema)
