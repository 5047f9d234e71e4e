"""Answers: their documented shapes, every value a string, epoch-millisecond timestamps, devices,
tags and values consistent with each other, aliases refused when missing or unknown, and disabled
endpoints serving nothing.

A FAIL quotes a sentence of the page or NOTES.md; what the page leaves open (statuses, media types,
the shape of answers it does not show, the refusal of an unknown alias with a 4xx) is this project's
reading: binding on its own emulator, a notice on any other device."""

from __future__ import annotations

import contextlib
import time

import pytest

from conformlab.checks import answer, ids
from conformlab.verdicts import not_applicable, requirement
from suites.wcc_lite.wcc import (
    OPS, PREFIX, SCHEMA, as_status, assert_refused_without_data, call, device_list, devices, disabled, json_body,
    devices_key, non_strings, require_enabled, served, tags_of, valid_fields,
)

READ_OPS = [op for op in OPS if op.path not in ("/sysupgrade", "/sync")]


@pytest.mark.req("WCC-ANSWER-SHAPES", "WCC-STRINGS", "WCC-MULTIPART")
@pytest.mark.parametrize("op", READ_OPS, ids=ids(READ_OPS))
def test_answer_matches_the_documented_shape(device, op):
    require_enabled(device, op)
    response = call(device, op, valid_fields(device, op))
    # The fields went as multipart/form-data: the gateway must take them and serve.
    with requirement("WCC-MULTIPART") if op.method == "POST" else contextlib.nullcontext():
        served(device, response, f"{op} with valid fields")
    try:
        body = response.json()
    except ValueError:
        body = None  # a text answer (the syslog): no JSON values to type
    with requirement("WCC-STRINGS"):
        wrong = non_strings(body) if body is not None else []
        assert not wrong, f"{op}: all values in answers are strings (NOTES.md): {'; '.join(wrong[:5])}"
    # The schema: the page's example keys bind everywhere; what only the reading says is a notice.
    problems = device.check_answer(op, response if response.status_code == 200 else as_status(response, 200))
    assert not problems, "; ".join(problems)


def timestamps(value) -> list:
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
    values = json_body(device, call(device, op, valid_fields(device, op)), f"{op} with valid fields")
    stamps = timestamps(values)
    assert stamps, f"a tag value carries its timestamp (\"Returns tags value, name, timestamp, and flags\"): {values}"
    now_ms = time.time() * 1000
    year_ms = 365 * 86400 * 1000
    for stamp in stamps:
        assert isinstance(stamp, str) and stamp.isdigit(), f"timestamp {stamp!r} must be epoch milliseconds as a string of digits (NOTES.md)"
        # Epoch seconds of today are 1000x smaller than milliseconds: unmistakable, whatever the clock.
        assert abs(int(stamp) * 1000 - now_ms) >= year_ms, f"timestamp {stamp!r} is epoch seconds of today, not milliseconds (NOTES.md)"
        device.reading(abs(int(stamp) - now_ms) < year_ms,
                       f"timestamp {stamp!r} is not within a year of now in epoch milliseconds (the reading: the gateway's clock is set)")


@pytest.mark.req("WCC-CONSISTENT")
def test_every_listed_device_can_be_read(device):
    op = SCHEMA.operation("POST", "/device/info")
    require_enabled(device, op)
    for entry in devices(device):
        alias = entry["device_alias"]
        info = json_body(device, call(device, op, {"device_alias": alias}), f"/api/device/info for the listed device {alias}")
        listed = device_list(info)
        assert [d.get("device_alias") for d in listed] == [alias], f"/device/info for {alias} must describe {alias}: {info}"


@pytest.mark.req("WCC-DEVICES-KEY")
def test_device_info_lists_under_the_key_of_one_revision(device):
    """`Devices` (the current page's example) or `devices` (an older revision, NOTES.md): the revisions
    disagree, so either passes and the CONFLICT entry says which one the gateway follows; a list under
    neither key follows no revision of the page."""
    op = SCHEMA.operation("POST", "/device/info")
    require_enabled(device, op)
    listed = devices(device)
    if not listed:
        not_applicable("the gateway has no configured device to describe")
    alias = listed[0]["device_alias"]
    info = json_body(device, call(device, op, {"device_alias": alias}), f"/api/device/info for {alias}")
    key = devices_key(info)
    assert key is not None, (f"/api/device/info for {alias} lists the device under neither `Devices` (the page: "
                             f'"Devices": [ "device_alias": "INV1", ...) nor `devices` (its older revision, NOTES.md): {info}')
    device.follows("WCC-DEVICES-KEY", key)


@pytest.mark.req("WCC-CONSISTENT", "WCC-ALIASES")
def test_every_listed_tag_can_be_read(device):
    op = SCHEMA.operation("POST", "/device/tag/value")
    require_enabled(device, op)
    for entry in devices(device):
        alias = entry["device_alias"]
        for tag in tags_of(device, alias):
            values = json_body(device, call(device, op, {"device_alias": alias, "signal_alias": tag["signal_alias"]}),
                               f"tag {alias}/{tag['signal_alias']} is listed by /api/device/tags; reading it")
            values = values.get("signal_values", []) if isinstance(values, dict) else values
            with requirement("WCC-ALIASES"):  # signal_alias names the one tag whose value comes back
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
    """The endpoints answer for "a particular configured device" (and tag): a missing or unknown alias
    gets nothing of any device. That the refusal is a 4xx is this project's reading (the page shows
    no refusal; a gateway may answer an empty 200)."""
    op = SCHEMA.operation("POST", path)
    require_enabled(device, op)
    if fields.get("device_alias") == FIRST_DEVICE:
        listed = devices(device)
        if not listed:
            not_applicable("the gateway has no configured device")
        fields = {**fields, "device_alias": listed[0]["device_alias"]}
    response = call(device, op, fields)
    assert_refused_without_data(device, response, "a missing or unknown alias must get nothing of a configured device", "4xx")


@pytest.mark.req("WCC-DISABLED")
@pytest.mark.parametrize("op", OPS, ids=ids(OPS))
def test_disabled_endpoint_serves_no_data(device, op):
    """A disabled endpoint does not serve ("Individual API endpoints can be enabled or disabled"):
    no data. What it answers instead is not documented (NOTES.md): no 2xx is the reading."""
    if not disabled(device, op):
        not_applicable(f"the endpoint is enabled on {device.target.name} (only its disabled_endpoints are checked here)")
    response = call(device, op, {"file": ("conformlab.bin", b"x")} if op.path in ("/sysupgrade", "/sync") else {})
    why = f"{PREFIX}{op.path} is disabled and must not serve"
    if op.path == "/sysupgrade":
        try:
            started = response.json().get("message") == "Upgrade started"
        except (ValueError, AttributeError):
            started = False
        assert not started, f"{why}: {answer(response)}"
    assert_refused_without_data(device, response, why, "no 2xx")
