"""What the WCC Lite checks share: operations (from the schema) minus the target's disabled
endpoints, requests with multipart/form-data fields, and the aliases the gateway has configured.

Endpoints the target names in `disabled_endpoints` are checked only for "no 2xx, no data"; every other
check is parametrized over the enabled ones (the schema's operations, so a new one is covered)."""

from __future__ import annotations

import pytest

from conformlab.checks import answer
from conformlab.client import expect_json
from conformlab.dut import DeviceUnderTest
from conformlab.schema import Operation, device_schema

SCHEMA = device_schema("wcc-lite")
OPS = SCHEMA.operations
PREFIX = "/api"
# A file no gateway takes as a firmware image or a configuration workbook.
NOT_AN_IMAGE = ("conformlab.bin", b"conformlab: this is not a firmware image")
NOT_A_WORKBOOK = ("conformlab.xlsx", b"conformlab: this is not an Excel workbook")


def disabled(device: DeviceUnderTest, op: Operation) -> bool:
    return PREFIX + op.path in device.target.options.get("disabled_endpoints", [])


def require_enabled(device: DeviceUnderTest, op: Operation) -> None:
    if disabled(device, op):
        pytest.skip(f"{PREFIX}{op.path} is disabled on {device.target.name} (disabled_endpoints)")


def call(device: DeviceUnderTest, op: Operation, fields: dict | None = None, **kw):
    """Send `op`; its fields (and files) as multipart/form-data, as the document says."""
    if op.method == "GET":
        return device.client.get(op.path, **kw)
    return device.client.request(op.method, op.path, multipart=fields or {}, **kw)


def device_list(answer: dict) -> list[dict]:
    """The devices of a /devices or /device/info answer. The older page's spelling `devices` is
    read too; the shape check reports it (the schema requires `Devices`)."""
    return answer.get("Devices", answer.get("devices", []))


def devices(device: DeviceUnderTest) -> list[dict]:
    """The configured devices (GET /devices)."""
    require_enabled(device, SCHEMA.operation("GET", "/devices"))
    return device_list(device.read("/devices"))


def tags_of(device: DeviceUnderTest, alias: str) -> list[dict]:
    op = SCHEMA.operation("POST", "/device/tags")
    require_enabled(device, op)
    return expect_json(call(device, op, {"device_alias": alias})).get("signals", [])


def first_tag(device: DeviceUnderTest) -> tuple[str, str]:
    for entry in devices(device):
        tags = tags_of(device, entry["device_alias"])
        if tags:
            return entry["device_alias"], tags[0]["signal_alias"]
    pytest.skip("the gateway has no configured device with tags")


def valid_fields(device: DeviceUnderTest, op: Operation) -> dict:
    """Fields that name configured things (real aliases), or for uploads a file the gateway refuses."""
    if op.path == "/sysupgrade":
        return {"file": NOT_AN_IMAGE}
    if op.path == "/sync":
        return {"file": NOT_A_WORKBOOK}
    names = set((op.extension.get("fields") or {}))
    if not names:
        return {}
    alias, signal = first_tag(device)
    return {name: value for name, value in (("device_alias", alias), ("signal_alias", signal)) if name in names}


def assert_refused_without_data(response, why: str) -> None:
    assert not 200 <= response.status_code < 300, f"{why}: {answer(response)}"
    if response.headers.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        data = {key: value for key, value in body.items() if key not in ("error", "message")} if isinstance(body, dict) else body
        assert not data, f"{why}: the refusal carries data: {answer(response)}"
