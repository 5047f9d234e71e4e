"""API key authorization, over every enabled operation of the schema.

With a key in the target (authorization enabled) a missing or wrong `apiKey` gets 401 with exactly
{"error": "Unauthorized access."} and the right key passes; without a key (authorization disabled)
every request passes without it. Uploads are probed with files the gateway refuses, and only where
the target allows destructive steps (a gateway with an auth bug would flash or reconfigure)."""

from __future__ import annotations

import pytest

from conformlab.auth import HeaderKeyAuth
from conformlab.checks import answer, ids
from suites.wcc_lite.wcc import OPS, call, require_enabled, valid_fields

UNAUTHORIZED = {"error": "Unauthorized access."}


@pytest.mark.req("WCC-AUTH-401")
@pytest.mark.parametrize("kind", ["missing", "wrong"])
@pytest.mark.parametrize("op", OPS, ids=ids(OPS))
def test_missing_or_wrong_key_refused_401(device, op, kind):
    if not device.has_credentials:
        pytest.skip("the target has no api_key: API key authorization is disabled (WCC-AUTH-OFF applies)")
    require_enabled(device, op)
    device.require_operation_allowed(op)
    fields = valid_fields(device, op)
    auth = None if kind == "missing" else HeaderKeyAuth("apiKey", "conformlab-wrong-key")
    response = call(device, op, fields, auth=auth)
    assert response.status_code == 401, f"a {kind} apiKey must get 401: {answer(response)}"
    assert response.headers.get("Content-Type", "").startswith("application/json"), f"the 401 body is JSON: {answer(response)}"
    assert response.json() == UNAUTHORIZED, f"the 401 body must be exactly {UNAUTHORIZED}: {answer(response)}"


@pytest.mark.req("WCC-AUTH-KEY", "WCC-AUTH-OFF")
@pytest.mark.parametrize("op", OPS, ids=ids(OPS))
def test_request_passes_with_the_key_or_without_authorization(device, op):
    """With the target's key (or, authorization disabled, with none) the request gets past authorization."""
    require_enabled(device, op)
    device.require_operation_allowed(op)
    response = call(device, op, valid_fields(device, op))
    assert response.status_code != 401, f"the request must pass authorization: {answer(response)}"
    if op.path not in ("/sysupgrade", "/sync"):  # these get files the gateway refuses
        assert response.status_code == 200, f"expected 200: {answer(response)}"
