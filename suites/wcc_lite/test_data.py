"""Answers: their documented shapes, every value a string, epoch-millisecond timestamps, devices,
tags and values consistent with each other, aliases refused when missing or unknown, and disabled
endpoints serving nothing."""

from __future__ import annotations

import time

import pytest

from conformlab.checks import answer, ids
from conformlab.client import expect_json
from suites.wcc_lite.wcc import (
    OPS, PREFIX, SCHEMA, assert_refused_without_data, call, device_list, devices, disabled, require_enabled, tags_of, valid_fields,
)

READ_OPS = [op for op in OPS if op.path not in ("/sysupgrade", "/sync")]


@pytest.mark.req("WCC-ANSWER-SHAPES", "WCC-STRINGS", "WCC-MULTIPART")
@pytest.mark.parametrize("op", READ_OPS, ids=ids(READ_OPS))
def test_answer_matches_the_documented_shape(device, op):
    require_enabled(device, op)
    response = call(device, op, valid_fields(device, op))
    assert response.status_code == 200, f"expected 200: {answer(response)}"
    problems = SCHEMA.check_answer(op, response)
    assert not problems, "; ".join(problems)


def timestamps(value) -> list[str]:
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += [item] if key == "timestamp" else timestamps(item)
    elif isinstance(value, list):
        for item in value:
            found += timestamps(item)
    return found


@pytest.mark.req("WCC-STRINGS")
def test_timestamps_are_epoch_milliseconds(device):
    op = SCHEMA.operation("POST", "/device/tag/value")
    require_enabled(device, op)
    values = expect_json(call(device, op, valid_fields(device, op)))
    stamps = timestamps(values)
    assert stamps, f"a tag value carries its timestamp: {values}"
    now_ms = time.time() * 1000
    for stamp in stamps:
        assert isinstance(stamp, str) and stamp.isdigit(), f"timestamp {stamp!r} must be a string of digits"
        # Epoch milliseconds: 13 digits today; a reading within a year of now (seconds would be 1000x smaller).
        assert abs(int(stamp) - now_ms) < 365 * 86400 * 1000, f"timestamp {stamp!r} is not epoch milliseconds near now"


@pytest.mark.req("WCC-CONSISTENT")
def test_every_listed_device_can_be_read(device):
    op = SCHEMA.operation("POST", "/device/info")
    require_enabled(device, op)
    for entry in devices(device):
        alias = entry["device_alias"]
        info = expect_json(call(device, op, {"device_alias": alias}))
        listed = device_list(info)
        assert [d.get("device_alias") for d in listed] == [alias], f"/device/info for {alias} must describe {alias}: {info}"


@pytest.mark.req("WCC-CONSISTENT", "WCC-ALIASES")
def test_every_listed_tag_can_be_read(device):
    op = SCHEMA.operation("POST", "/device/tag/value")
    require_enabled(device, op)
    for entry in devices(device):
        alias = entry["device_alias"]
        for tag in tags_of(device, alias):
            response = call(device, op, {"device_alias": alias, "signal_alias": tag["signal_alias"]})
            assert response.status_code == 200, f"tag {alias}/{tag['signal_alias']} is listed but cannot be read: {answer(response)}"
            values = response.json().get("signal_values", [])
            assert len(values) == 1 and values[0].get("signal_name") == tag.get("signal_name"), (
                f"{alias}/{tag['signal_alias']}: one value of that tag expected, got {values}")


FIRST_DEVICE = "<the first configured device>"  # replaced by its alias when the check runs


@pytest.mark.req("WCC-ALIASES")
@pytest.mark.parametrize("path, fields", [
    ("/device/info", {}), ("/device/tags", {}), ("/device/tag/value", {"device_alias": FIRST_DEVICE}),
    ("/device/info", {"device_alias": "conformlab-no-such-device"}),
    ("/device/tags", {"device_alias": "conformlab-no-such-device"}),
    ("/device/tag/value", {"device_alias": FIRST_DEVICE, "signal_alias": "conformlab-no-such-tag"}),
], ids=["info-missing", "tags-missing", "value-missing-signal", "info-unknown", "tags-unknown", "value-unknown-signal"])
def test_missing_or_unknown_alias_refused(device, path, fields):
    op = SCHEMA.operation("POST", path)
    require_enabled(device, op)
    if fields.get("device_alias") == FIRST_DEVICE:
        fields = {**fields, "device_alias": devices(device)[0]["device_alias"]}
    response = call(device, op, fields)
    assert 400 <= response.status_code < 500, f"a missing or unknown alias must be refused (4xx): {answer(response)}"
    assert_refused_without_data(response, "a missing or unknown alias must be refused")


@pytest.mark.req("WCC-DISABLED")
@pytest.mark.parametrize("op", OPS, ids=ids(OPS))
def test_disabled_endpoint_serves_no_data(device, op):
    if not disabled(device, op):
        pytest.skip(f"{PREFIX}{op.path} is enabled on {device.target.name}")
    response = call(device, op, {"file": ("conformlab.bin", b"x")} if op.path in ("/sysupgrade", "/sync") else {})
    assert_refused_without_data(response, f"{PREFIX}{op.path} is disabled and must not serve")
