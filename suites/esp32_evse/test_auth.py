"""Authentication, parametrized over every operation of the schema.

Which half of the matrix runs depends on the target: without credentials in targets.toml the device
must accept everything (EVSE-AUTH-OPEN); with credentials it must refuse missing and wrong ones with
401 + `WWW-Authenticate: Basic realm="Users"` and change nothing, and accept the right ones.
Changing the credentials themselves is destructive and puts the old ones back.
"""

from __future__ import annotations

import secrets as random_secrets

import pytest
import requests

from conformlab import secrets
from conformlab.auth import BasicAuth
from suites.esp32_evse.evse import (
    INERT_BINARY, OPS, answer, assert_ok, assert_unchanged, effective_body, harmless_request, ids, inert_json,
    read_effect, restoring, send,
)

REALM_HEADER = 'Basic realm="Users"'


@pytest.mark.req("EVSE-AUTH-OPEN")
@pytest.mark.parametrize("op", OPS, ids=ids(OPS))
def test_every_operation_accepted_without_credentials_when_none_are_set(device, op):
    if device.has_credentials:
        pytest.skip("the target has credentials set; EVSE-AUTH-REQUIRED applies instead")
    device.require_operation_allowed(op)
    with restoring(device, op):
        response, expect = harmless_request(device, op)
    assert response.status_code != 401, f"no credentials are set, so every request is accepted: {answer(response)}"
    if expect == 200 and op.is_write:
        assert_ok(response)


CREDENTIAL_KINDS = ["missing", "wrong-password", "unknown-user"]


def presented_auth(device, kind):
    if kind == "missing":
        return None
    username = device.target.auth.get("username", "")
    if kind == "wrong-password":
        return BasicAuth(username, "conformlab-wrong-" + random_secrets.token_hex(4))
    return BasicAuth("conformlab-nobody", device.target.auth.get("password", ""))


@pytest.mark.req("EVSE-AUTH-REQUIRED", "EVSE-AUTH-401")
@pytest.mark.parametrize("kind", CREDENTIAL_KINDS)
@pytest.mark.parametrize("op", OPS, ids=ids(OPS))
def test_operation_refused_with_missing_or_wrong_credentials(device, op, kind):
    if not device.has_credentials:
        pytest.skip("the target has no credentials set; EVSE-AUTH-OPEN applies instead")
    # A destructive operation is probed with a body the device would refuse anyway, so that a device
    # with an auth bug is not harmed; without a body it cannot be made inert.
    if op.destructive and op.body_kind is None:
        device.require_destructive(f"{op}: {op.destructive}")
    if op.destructive:
        body = INERT_BINARY if op.body_kind == "binary" else inert_json(op)
    elif op.body_kind == "json":
        body = effective_body(op, device)
    else:
        body = None
    before = read_effect(device, op)
    with restoring(device, op):
        response = send(device, op, body=body, auth=presented_auth(device, kind))
        after = read_effect(device, op)
    assert response.status_code == 401, f"{kind} credentials must be refused with 401: {answer(response)}"
    challenge = response.headers.get("WWW-Authenticate")
    assert challenge == REALM_HEADER, f"401 must carry WWW-Authenticate: {REALM_HEADER}, got {challenge!r}"
    if op.is_write and op.reads:
        assert_unchanged(before, after, f"{op} with {kind} credentials")


@pytest.mark.req("EVSE-AUTH-REQUIRED")
@pytest.mark.parametrize("op", OPS, ids=ids(OPS))
def test_operation_accepted_with_the_right_credentials(device, op):
    if not device.has_credentials:
        pytest.skip("the target has no credentials set; EVSE-AUTH-OPEN applies instead")
    device.require_operation_allowed(op)
    with restoring(device, op):
        response, expect = harmless_request(device, op)
    assert response.status_code != 401, f"the configured credentials must be accepted: {answer(response)}"
    if expect == 200 and op.is_write:
        assert_ok(response)


@pytest.mark.req("EVSE-AUTH-SET", "EVSE-AUTH-401")
@pytest.mark.destructive("changes the device's credentials (restored afterwards)")
def test_credentials_can_be_set_and_removed(device):
    """Set temporary credentials, check they gate the API, then put the original ones back."""
    client = device.client
    original = device.target.auth
    temporary = {"user": "conformlab", "password": "cl-" + random_secrets.token_urlsafe(12)}
    temporary_auth = BasicAuth(temporary["user"], temporary["password"])  # registers the secret for masking
    secrets.register(temporary["password"])
    probe = device.profile.probe_path

    assert_ok(client.post("/credentials", json=temporary))
    try:
        refused = client.get(probe, auth=None)
        assert refused.status_code == 401, f"after setting credentials, a request without them must get 401: {answer(refused)}"
        assert refused.headers.get("WWW-Authenticate") == REALM_HEADER, f"401 must carry {REALM_HEADER}"
        wrong = client.get(probe, auth=BasicAuth("conformlab", "cl-wrong"))
        assert wrong.status_code == 401, f"wrong credentials must get 401: {answer(wrong)}"
        accepted = client.get(probe, auth=temporary_auth)
        assert accepted.status_code == 200, f"the new credentials must be accepted: {answer(accepted)}"

        if not original:
            # "Sending empty strings for both disables authentication."
            assert_ok(client.post("/credentials", json={"user": "", "password": ""}, auth=temporary_auth))
            open_again = client.get(probe, auth=None)
            assert open_again.status_code == 200, f"empty credentials must disable authentication: {answer(open_again)}"
    finally:
        restore = {"user": original.get("username", ""), "password": original.get("password", "")}
        try:
            client.post("/credentials", json=restore, auth=temporary_auth)
        except requests.RequestException:
            pass
        check = client.get(probe)  # with the target's own credentials (or none)
        assert check.status_code == 200, (
            f"could not restore the original credentials (GET {probe} -> {check.status_code}); "
            f"the device may now have the temporary user 'conformlab' set")

