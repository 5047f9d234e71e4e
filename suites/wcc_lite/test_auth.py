"""API key authorization, over every enabled operation of the schema.

With a key in the target (authorization enabled) a missing or wrong `apiKey` gets 401 with exactly
{"error": "Unauthorized access."} and the right key passes; without a key (authorization disabled)
every request passes without it. Uploads are probed with files the gateway refuses, and only where
the target allows destructive steps (a gateway with an auth bug would flash or reconfigure)."""

from __future__ import annotations

import pytest

from conformlab import near_miss
from conformlab.auth import HeaderKeyAuth
from conformlab.checks import DeviceChecks, answer, ids
from conformlab.profiles import WCC_LITE
from conformlab.verdicts import not_applicable, requirement
from suites.wcc_lite.wcc import OPS, call, require_enabled, served, valid_fields

UNAUTHORIZED = {"error": "Unauthorized access."}


@pytest.mark.req("WCC-AUTH-401")
@pytest.mark.parametrize("kind", ["missing", "wrong"])
@pytest.mark.parametrize("op", OPS, ids=ids(OPS))
def test_missing_or_wrong_key_refused_401(device, op, kind):
    if not device.has_credentials:
        not_applicable("the target has no api_key: API key authorization is disabled (WCC-AUTH-OFF applies)")
    require_enabled(device, op)
    device.require_operation_allowed(op)
    fields = valid_fields(device, op)
    auth = None if kind == "missing" else HeaderKeyAuth("apiKey", "conformlab-wrong-key")
    response = call(device, op, fields, auth=auth)
    assert_unauthorized(device, response, f"a {kind} apiKey")


def assert_unauthorized(device, response, why: str) -> None:
    """The documented refusal: "it returns an error response 401 with the message. "error":
    "Unauthorized access."" The page gives neither the media type nor that nothing else comes with
    the message: those two are this project's reading."""
    assert response.status_code == 401, f"{why}: expected 401, got {answer(response)}"
    try:
        body = response.json()
    except ValueError:
        body = None
    assert isinstance(body, dict) and body.get("error") == UNAUTHORIZED["error"], (
        f"{why}: the 401 must carry the message {UNAUTHORIZED}: {answer(response)}")
    device.reading(response.headers.get("Content-Type", "").startswith("application/json"),
                   f"{why}: the 401 body comes as {response.headers.get('Content-Type', '(no Content-Type)')!r}; the reading expects application/json")
    device.reading(body == UNAUTHORIZED, f"{why}: the 401 body is {body}; the reading expects exactly {UNAUTHORIZED}")


@pytest.mark.req("WCC-AUTH-401", "WCC-AUTH-KEY")
@pytest.mark.parametrize("name", near_miss.names(WCC_LITE))
def test_near_miss_keys_refused_like_wrong_ones(device, name, notice):
    """Keys that are almost the configured one (conformlab.near_miss: empty, cut, longer or
    case-swapped, the right key in Authorization or after a scheme word) get the 401 a wrong key
    gets, with the documented message and no data."""
    from suites.wcc_lite.wcc import SCHEMA, disabled

    near_miss.require_credentials(device)
    probes = [near_miss.read_probe(device, device.profile.probe_path)]
    info = SCHEMA.operation("POST", "/device/info")
    if not disabled(device, info):
        fields = valid_fields(device, info)
        probes.append(near_miss.Probe(str(info), lambda auth: call(device, info, fields, auth=auth)))

    near_miss.assert_refused_like_wrong(device, name, probes=probes, wrong=HeaderKeyAuth("apiKey", "conformlab-wrong-key"),
                                        refusal=lambda response, why: assert_unauthorized(device, response, why), checks=DeviceChecks(), notice=notice)


@pytest.mark.req("WCC-AUTH-KEY", "WCC-AUTH-OFF")
@pytest.mark.parametrize("op", OPS, ids=ids(OPS))
def test_request_passes_with_the_key_or_without_authorization(device, op):
    """With the target's key (or, authorization disabled, with none) the request gets past authorization."""
    require_enabled(device, op)
    device.require_operation_allowed(op)
    response = call(device, op, valid_fields(device, op))
    # With a key: "If the value is correct it continues with the API request" (WCC-AUTH-KEY); without
    # one, authorization is disabled and nothing is checked (WCC-AUTH-OFF).
    with requirement("WCC-AUTH-KEY" if device.has_credentials else "WCC-AUTH-OFF"):
        assert response.status_code != 401, f"the request must pass authorization: {answer(response)}"
        if op.path not in ("/sysupgrade", "/sync"):  # these get files the gateway refuses
            served(device, response, f"{op} past authorization")
