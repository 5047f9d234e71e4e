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
from conformlab.checks import answer, ids, send
from conformlab import near_miss
from conformlab.checks import current_body
from conformlab.profiles import ESP32_EVSE
from conformlab.verdicts import not_applicable, requirement
from suites.esp32_evse.evse import (
    INERT_BINARY, OPS, assert_ok, assert_refused, effective_body, harmless_request, restoring,
)

REALM_HEADER = 'Basic realm="Users"'


@pytest.mark.req("EVSE-AUTH-OPEN", "EVSE-CONV-OK")
@pytest.mark.parametrize("op", OPS, ids=ids(OPS))
def test_every_operation_accepted_without_credentials_when_none_are_set(device, op):
    if device.has_credentials:
        not_applicable("the target has credentials set; EVSE-AUTH-REQUIRED applies instead")
    assert_accepted(device, op, "no credentials are set, so every request is accepted")


def assert_accepted(device, op, why: str) -> None:
    """A harmless request of `op` is not refused for auth (and a write of current values is OK)."""
    device.require_operation_allowed(op)
    with restoring(device, op):
        response, expect = harmless_request(device, op)
    assert response.status_code != 401, f"{why}: {answer(response)}"
    if expect == 200 and op.is_write:
        with requirement("EVSE-CONV-OK"):
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
        not_applicable("the target has no credentials set; EVSE-AUTH-OPEN applies instead")
    # Destructive operations are probed only where allowed: a device with an auth bug would execute them.
    device.require_operation_allowed(op)
    body = None
    if op.body_kind == "binary":
        body = INERT_BINARY
    elif op.body_kind == "json":
        body = effective_body(op, device)
    response = assert_refused(device, op, 401, f"{kind} credentials must be refused",
                              lambda: send(device, op, body=body, auth=presented_auth(device, kind)))
    challenge = response.headers.get("WWW-Authenticate")
    with requirement("EVSE-AUTH-401"):
        assert challenge == REALM_HEADER, f"401 must carry WWW-Authenticate: {REALM_HEADER}, got {challenge!r}"


def assert_basic_refusal(response, why: str) -> None:
    assert response.status_code == 401, f"{why}: expected 401, got {answer(response)}"
    challenge = response.headers.get("WWW-Authenticate")
    assert challenge == REALM_HEADER, f"{why}: 401 must carry WWW-Authenticate: {REALM_HEADER}, got {challenge!r}"


@pytest.mark.req("EVSE-AUTH-401", "EVSE-AUTH-REQUIRED")
@pytest.mark.parametrize("name", near_miss.names(ESP32_EVSE))
def test_near_miss_credentials_refused_like_wrong_ones(device, name, notice):
    """Credentials that are almost the configured ones (conformlab.near_miss: an empty, cut, longer
    or case-swapped password, the right pair in another scheme or header) are refused like a wrong
    password: the same 401 with the realm, no data, and a write of the current values has no effect."""
    from suites.esp32_evse.evse import CHECKS, SCHEMA

    near_miss.require_credentials(device)
    write = SCHEMA.operation("POST", "/config/modbus")
    probes = [near_miss.read_probe(device, device.profile.probe_path),
              near_miss.write_probe(device, write, current_body(device, write))]
    near_miss.assert_refused_like_wrong(device, name, probes=probes, wrong=presented_auth(device, "wrong-password"),
                                        refusal=assert_basic_refusal, checks=CHECKS, notice=notice)


@pytest.mark.req("EVSE-AUTH-REQUIRED", "EVSE-CONV-OK")
@pytest.mark.parametrize("op", OPS, ids=ids(OPS))
def test_operation_accepted_with_the_right_credentials(device, op):
    if not device.has_credentials:
        not_applicable("the target has no credentials set; EVSE-AUTH-OPEN applies instead")
    assert_accepted(device, op, "the configured credentials must be accepted")


@pytest.mark.req("EVSE-AUTH-SET", "EVSE-AUTH-401")
@pytest.mark.destructive("changes the device's credentials (restored afterwards)")
def test_credentials_can_be_set_and_removed(device):
    """Set temporary credentials, check they gate the API, then put the original ones back."""
    client = device.client
    temporary = {"user": "conformlab", "password": "cl-" + random_secrets.token_urlsafe(12)}
    temporary_auth = BasicAuth(temporary["user"], temporary["password"])  # registers the secret for masking
    probe = device.profile.probe_path
    try:
        assert_ok(client.post("/credentials", json=temporary))
        refused = client.get(probe, auth=None)
        assert refused.status_code == 401, f"after setting credentials, a request without them must get 401: {answer(refused)}"
        with requirement("EVSE-AUTH-401"):
            assert refused.headers.get("WWW-Authenticate") == REALM_HEADER, f"401 must carry {REALM_HEADER}"
        wrong = client.get(probe, auth=BasicAuth("conformlab", "cl-wrong"))
        assert wrong.status_code == 401, f"wrong credentials must get 401: {answer(wrong)}"
        accepted = client.get(probe, auth=temporary_auth)
        assert accepted.status_code == 200, f"the new credentials must be accepted: {answer(accepted)}"
        # "Sending empty strings for both disables authentication." (the original ones come back below)
        assert_ok(client.post("/credentials", json={"user": "", "password": ""}, auth=temporary_auth))
        open_again = client.get(probe, auth=None)
        assert open_again.status_code == 200, f"empty credentials must disable authentication: {answer(open_again)}"
    finally:
        restore_credentials(device, temporary)


def restore_credentials(device, temporary: dict) -> None:
    """Put the target's own credentials back, whatever state the check left the device in.

    If that fails the operator must not be locked out: the temporary credentials are written to a
    file only they can read (never into the report) and the failure says where."""
    client, probe = device.client, device.profile.probe_path
    original = {"user": device.target.auth.get("username", ""), "password": device.target.auth.get("password", "")}
    for auth in (None, BasicAuth(temporary["user"], temporary["password"]), device.client.auth):
        try:
            client.post("/credentials", json=original, auth=auth)
            if client.get(probe).status_code == 200:
                return
        except (requests.RequestException, AssertionError):
            continue
    keep = secrets.write_private(f"{device.target.name}-temporary-credentials",
                                 f"user={temporary['user']}\npassword={temporary['password']}\n")
    pytest.fail(f"could not restore the original credentials of {device.target.name}; the device may still have the "
                f"temporary user 'conformlab', whose password is in {keep} (readable only by you)", pytrace=False)
