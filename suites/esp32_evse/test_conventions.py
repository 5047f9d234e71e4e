"""The document's conventions: answers, content types, the body limit, status codes, partial writes."""

from __future__ import annotations

import json

import pytest

from conformlab.checks import answer, assert_unchanged, current_body, ids, resolve_path, send
from conformlab.verdicts import not_verified, requirement
from suites.esp32_evse.evse import (
    JSON_WRITES, OBJECT_WRITES, PARTIAL_KEY, READS, WRITES, assert_ok, assert_refused,
    effective_body, harmless_request, other_value, restoring,
)

BODY_LIMIT = 51_200  # "50 KB"; NOTES.md: the limit is 51,200 bytes


@pytest.mark.req("EVSE-ANSWER-SHAPES", "EVSE-CONV-JSON-READ")
@pytest.mark.parametrize("op", READS, ids=ids(READS))
def test_read_answer_matches_the_documented_shape(device, op):
    """The document's shapes fail a device; what only this project's reading of an example says is a
    notice there (device.check_answer). A wrong Content-Type is EVSE-CONV-JSON-READ's."""
    response = device.client.get(resolve_path(device, op))
    problems = device.check_answer(op, response)
    media = [p for p in problems if "Content-Type" in p or "body is not JSON" in p]
    with requirement("EVSE-CONV-JSON-READ"):
        assert not media, "\n".join(media)
    assert not problems, "\n".join(problems)


# Operations that restart the device (x-conformlab restarts) are left out: their plain-text OK is
# checked by the auth matrix (every operation, EVSE-CONV-OK) and the lifecycle checks, and each
# restart costs seconds of outage.
SUCCESSFUL_WRITES = [op for op in WRITES if op.body_kind != "binary" and not op.restarts]


@pytest.mark.req("EVSE-CONV-OK")
@pytest.mark.parametrize("op", SUCCESSFUL_WRITES, ids=ids(SUCCESSFUL_WRITES))
def test_successful_write_answers_plain_text_ok(device, op):
    device.require_operation_allowed(op)
    with restoring(device, op):
        response, _ = harmless_request(device, op)
    assert_ok(response)


@pytest.mark.req("EVSE-CONV-415")
@pytest.mark.parametrize("content_type", [None, "text/plain"], ids=["no-content-type", "text-plain"])
@pytest.mark.parametrize("op", JSON_WRITES, ids=ids(JSON_WRITES))
def test_json_body_without_json_content_type_refused_415(device, op, content_type):
    device.require_operation_allowed(op)
    body = json.dumps(effective_body(op, device)).encode()
    assert_refused(device, op, 415, f"a JSON body sent with Content-Type {content_type!r}",
                   lambda: device.client.request(op.method, resolve_path(device, op), body=body, content_type=content_type))


def padded(value, size: int) -> bytes:
    """`value` as JSON, padded with insignificant whitespace to exactly `size` bytes."""
    text = json.dumps(value).encode()
    assert len(text) <= size
    return text + b" " * (size - len(text))


@pytest.mark.req("EVSE-CONV-413")
@pytest.mark.parametrize("op", JSON_WRITES, ids=ids(JSON_WRITES))
def test_body_limit_is_51200_bytes(device, op):
    """On both sides of the limit: 51,200 bytes is processed, 51,201 bytes is refused with 413."""
    device.require_operation_allowed(op)
    if op.path == "/credentials":
        not_verified("a padded credentials body would re-key the device; the limit is checked on every other write")
    body = current_body(device, op)
    path = resolve_path(device, op)
    with restoring(device, op):
        at_limit = device.client.request(op.method, path, body=padded(body, BODY_LIMIT), content_type="application/json")
    assert at_limit.status_code == 200, f"a body of exactly {BODY_LIMIT} bytes is within the limit: {answer(at_limit)}"
    assert_refused(device, op, 413, f"a body of {BODY_LIMIT + 1} bytes is over the 50 KB limit", lambda: device.client.request(
        op.method, path, body=padded(effective_body(op, device), BODY_LIMIT + 1), content_type="application/json"))


@pytest.mark.req("EVSE-CONV-400-MALFORMED")
@pytest.mark.parametrize("op", JSON_WRITES, ids=ids(JSON_WRITES))
def test_malformed_json_refused_400(device, op):
    device.require_operation_allowed(op)
    assert_refused(device, op, 400, "malformed JSON", lambda: device.client.request(
        op.method, resolve_path(device, op), body=b'{"chargingCurrent": 1', content_type="application/json"))


@pytest.mark.req("EVSE-CONV-400-NOFIELD")
@pytest.mark.parametrize("body", [{}, {"conformlabUnknownKey": 1}], ids=["empty-object", "unknown-key-only"])
@pytest.mark.parametrize("op", OBJECT_WRITES, ids=ids(OBJECT_WRITES))
def test_object_write_without_a_known_key_refused_400(device, op, body):
    device.require_operation_allowed(op)
    assert_refused(device, op, 400, "at least one known key must be supplied", lambda: send(device, op, body=body))


@pytest.mark.req("EVSE-CONV-PARTIAL", "EVSE-STATE-POST")
@pytest.mark.parametrize("op", OBJECT_WRITES, ids=ids(OBJECT_WRITES))
def test_partial_write_changes_only_the_keys_sent(device, op):
    device.require_operation_allowed(op)
    assert op.path in PARTIAL_KEY, f"{op} is an object write: give it a key to change in PARTIAL_KEY"
    key = PARTIAL_KEY[op.path]
    with restoring(device, op):
        before = current_body(device, op)
        new = other_value(key, before[key], device)
        assert_ok(send(device, op, body={key: new}))
        after = current_body(device, op)
    # For POST /state this is "Sets one or more live values at once" (EVSE-STATE-POST).
    with requirement("EVSE-STATE-POST" if op.path == "/state" else "EVSE-CONV-PARTIAL"):
        assert after[key] == new, f"{op} {{{key}: {new!r}}} was answered OK but {key} is {after[key]!r}"
    others_before = {k: v for k, v in before.items() if k != key}
    others_after = {k: v for k, v in after.items() if k != key}
    assert others_before == others_after, (
        f"{op} with only {key!r} changed other keys: "
        + str({k: (others_before.get(k), others_after.get(k)) for k in others_before if others_before.get(k) != others_after.get(k)}))


UNKNOWN_PATHS = ["/conformlab-no-such-endpoint", "/config/conformlab-no-such-block", "/state/conformlab-no-such-field"]


@pytest.mark.req("EVSE-CONV-404")
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", UNKNOWN_PATHS)
def test_unknown_endpoint_answers_404(device, path, method):
    kwargs = {"json": True} if method == "POST" else {}
    response = device.client.request(method, path, **kwargs)
    assert response.status_code == 404, f"an unknown endpoint answers 404: {answer(response)}"


@pytest.mark.req("EVSE-CFG-COMBINED")
def test_config_holds_every_block_as_its_own_endpoint_reads_it(device):
    config = device.read("/config")
    blocks = ("evse", "wifi", "discovery", "serial", "modbus", "script", "scheduler")
    assert set(config) >= set(blocks), f"GET /config keys: {sorted(config)}"
    for block in blocks:
        alone = device.read(f"/config/{block}")
        assert config[block] == alone, f"GET /config .{block} differs from GET /config/{block}: {config[block]} != {alone}"


@pytest.mark.req("EVSE-CFG-COMBINED")
def test_config_has_no_combined_post(device):
    """POST /config must not write the blocks (there is no such endpoint): any 2xx, or any change,
    is a violation. Reading: the document does not pin the refusal; this project's emulator answers
    404 (unknown endpoint), 405 (method not allowed) says the same; anything else is a notice."""
    config = device.read("/config")
    change = {"modbus": {"unitId": other_value("unitId", config["modbus"].get("unitId"))}}
    with device.preserved("/config"):
        response = device.client.post("/config", json=change)
        after = device.read("/config")
    assert not 200 <= response.status_code < 300, f"there is no combined POST on /config: {answer(response)}"
    assert_unchanged(config, after, "POST /config")
    device.reading(response.status_code in (404, 405),
                   f"POST /config was refused with {response.status_code}; the reading expects 404 (unknown endpoint) or 405")
