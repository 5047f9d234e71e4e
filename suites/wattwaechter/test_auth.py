"""Authentication, parametrized from the schema's access levels (the document's Auth column).

Without tokens in targets.toml the device has api_auth_required false and must accept everything
(WW-AUTH-OPEN). With tokens: no token and a wrong token get 401 on READ and WRITE endpoints, a READ
token on a WRITE endpoint gets 403, and a refused write changes nothing; the READ token reads, the
WRITE token reads and writes; the "—" endpoints stay open. Operations that are destructive on real
hardware are probed only where the target allows it: a device with an auth bug would execute them.
"""

from __future__ import annotations

import contextlib

import pytest

from conformlab.auth import BearerAuth
from conformlab.checks import answer, ids, send
from conformlab import near_miss
from conformlab.profiles import WATTWAECHTER
from suites.wattwaechter.ww import (
    OPEN_OPS, OPS, READ_OPS, WRITE_OPS, assert_refused, assert_refused_unchanged_for, assert_status, changing_body, generate_tokens,
    harmless_request, not_applicable, read_params, requirement, restoring, token_works, tokens_kept, wrong_token,
)


def needs_tokens(device) -> None:
    if not device.has_credentials:
        not_applicable("the target has no tokens (api_auth_required false); WW-AUTH-OPEN applies instead")


@pytest.mark.req("WW-AUTH-OPEN")
@pytest.mark.parametrize("op", OPS, ids=ids(OPS))
def test_every_operation_accepted_without_a_token_when_auth_is_off(device, op, notice):
    if device.has_credentials:
        not_applicable("the target has tokens (api_auth_required true); the token matrix applies instead")
    device.require_operation_allowed(op)
    with tokens_kept(device, notice, op), restoring(device, op):
        response, expected, reading = harmless_request(device, op, auth=None)
    assert_status(device, response, expected, "authentication is off, so the request must be served", reading)


REFUSALS = [pytest.param(op, kind, id=f"{op}-{kind}")
            for op in READ_OPS + WRITE_OPS for kind in ("no-token", "wrong-token")]


@pytest.mark.req("WW-AUTH-401", "WW-AUTH-BEARER")
@pytest.mark.parametrize("op, kind", REFUSALS)
def test_missing_or_wrong_token_refused_401(device, op, kind, notice):
    needs_tokens(device)
    device.require_operation_allowed(op)
    auth = None if kind == "no-token" else wrong_token()
    body = changing_body(device, op) if op.body_kind else None
    with tokens_kept(device, notice, op):
        # 401: NOTES.md; that the refused request did nothing: the token levels (WW-AUTH-BEARER)
        assert_refused_unchanged_for(device, op, 401, f"a request with {kind.replace('-', ' ')} must be refused",
                                     lambda: send(device, op, body=body, auth=auth, params=read_params(op)),
                                     "WW-AUTH-BEARER")
    # The document names no WWW-Authenticate challenge for the 401, so none is required here.


def assert_token_refusal(response, why: str) -> None:
    assert response.status_code == 401, f"{why}: a wrong token gets 401, got {answer(response)}"


@pytest.mark.req("WW-AUTH-401", "WW-AUTH-BEARER")
@pytest.mark.parametrize("name", near_miss.names(WATTWAECHTER))
def test_near_miss_tokens_refused_like_wrong_ones(device, name, notice):
    """Tokens that are almost the configured ones (conformlab.near_miss: cut, longer or case-swapped
    READ and WRITE tokens, the WRITE token without its scheme, in another scheme or header) get the
    401 a wrong token gets, serve no data, and a write of the current LED setting has no effect.
    A READ token's near misses go to a READ endpoint only."""
    from suites.wattwaechter.ww import CHECKS, SCHEMA

    near_miss.require_credentials(device)
    write = SCHEMA.operation("POST", "/settings")
    probes = [near_miss.read_probe(device, device.profile.probe_path),
              near_miss.write_probe(device, write, {"ledEnable": device.read("/settings").get("ledEnable", True)})]
    near_miss.assert_refused_like_wrong(device, name, probes=probes, wrong=wrong_token(),
                                        refusal=assert_token_refusal, checks=CHECKS, notice=notice)


@pytest.mark.req("WW-AUTH-403")
@pytest.mark.parametrize("op", WRITE_OPS, ids=ids(WRITE_OPS))
def test_read_token_refused_403_on_write_endpoints(device, op, notice):
    needs_tokens(device)
    device.require_operation_allowed(op)
    body = changing_body(device, op) if op.body_kind else None
    with tokens_kept(device, notice, op):
        assert_refused(device, op, 403, "a READ token on a WRITE endpoint must be refused",
                       lambda: send(device, op, body=body, auth=device.auth_level("read")))


@pytest.mark.req("WW-AUTH-BEARER")
@pytest.mark.parametrize("op", READ_OPS, ids=ids(READ_OPS))
def test_read_token_reads(device, op):
    needs_tokens(device)
    response, expected, reading = harmless_request(device, op, auth=device.auth_level("read"))
    assert_status(device, response, expected, "the READ token must be accepted on a READ endpoint", reading)


@pytest.mark.req("WW-AUTH-BEARER", "WW-AUTH-WRITE-READS")
@pytest.mark.parametrize("op", READ_OPS + WRITE_OPS, ids=ids(READ_OPS + WRITE_OPS))
def test_write_token_reads_and_writes(device, op, notice):
    needs_tokens(device)
    device.require_operation_allowed(op)
    with tokens_kept(device, notice, op), restoring(device, op):
        response, expected, reading = harmless_request(device, op, auth=device.auth_level("write"))
    # On a READ endpoint this shows NOTES.md's "A WRITE token also reads"; on a WRITE one the levels.
    with requirement("WW-AUTH-WRITE-READS") if op in READ_OPS else contextlib.nullcontext():
        assert_status(device, response, expected, "the WRITE token must be accepted", reading)


@pytest.mark.req("WW-AUTH-OPEN-ENDPOINTS")
@pytest.mark.parametrize("op", OPEN_OPS, ids=ids(OPEN_OPS))
def test_open_endpoints_need_no_token_with_auth_on(device, op):
    needs_tokens(device)
    response, expected, reading = harmless_request(device, op, auth=None)
    assert_status(device, response, expected, 'an endpoint whose Auth column is "—" must answer without a token', reading)


# -- switching authentication ---------------------------------------------------------------------


def set_auth_required(device, value: bool, auth) -> None:
    response = device.client.post("/settings", json={"api_auth_required": value}, auth=auth)
    assert response.status_code == 200, f"POST /settings api_auth_required={value} must answer 200: {answer(response)}"


def assert_gate(device, closed: bool, read_auth) -> None:
    """With auth on, a READ endpoint refuses a request without a token and serves the READ token."""
    probe = device.profile.probe_path
    without = device.client.get(probe, auth=None)
    if closed:
        assert without.status_code == 401, f"with api_auth_required true, a request without a token must get 401: {answer(without)}"
        with_read = device.client.get(probe, auth=read_auth)
        assert with_read.status_code == 200, f"with api_auth_required true, the READ token must be served: {answer(with_read)}"
    else:
        assert without.status_code == 200, f"with api_auth_required false, a request without a token must be served: {answer(without)}"


@pytest.mark.req("WW-AUTH-ENABLE")
def test_auth_can_be_switched_off_and_on(device):
    """With the target's tokens: switch authentication off, see the API open, switch it on again."""
    needs_tokens(device)
    write = device.auth_level("write")
    with restoring(device, device.schema.operation("POST", "/settings")):
        set_auth_required(device, False, write)
        assert_gate(device, closed=False, read_auth=None)
        set_auth_required(device, True, write)
        assert_gate(device, closed=True, read_auth=device.auth_level("read"))


@pytest.mark.req("WW-AUTH-ENABLE", "WW-TOKEN-CONFIRM")
@pytest.mark.emulator_only("with authentication off no token can be verified before it is switched on: on a device "
                           "whose confirm failed silently, switching it on would lock everyone out")
def test_auth_can_be_switched_on_when_it_is_off(device, notice):
    """Without tokens in the target: renew the tokens (to know them), switch auth on, check the gate
    and the 403, switch it off again. Real hardware without tokens runs the other half
    (test_auth_can_be_switched_off_and_on) once its tokens are in the target."""
    if device.has_credentials:
        not_applicable("the target has tokens (auth is on); test_auth_can_be_switched_off_and_on applies instead")
    with tokens_kept(device, notice), restoring(device, device.schema.operation("POST", "/settings")):
        with requirement("WW-TOKEN-CONFIRM"):
            tokens = generate_tokens(device)
            confirm = device.client.post("/auth/tokens/confirm", json={"new_write_token": tokens["write_token"]})
            assert confirm.status_code == 200, f"confirm within the window must answer 200: {answer(confirm)}"
        read, write = BearerAuth(tokens["read_token"]), BearerAuth(tokens["write_token"])
        try:
            set_auth_required(device, True, write)
            assert_gate(device, closed=True, read_auth=read)
            refused = device.client.post("/settings", json={"api_auth_required": False}, auth=read)
            assert refused.status_code == 403, f"a READ token on POST /settings must get 403: {answer(refused)}"
            assert token_works(device, tokens["write_token"]), "the WRITE token must also read"
        finally:
            set_auth_required(device, False, write)
        assert_gate(device, closed=False, read_auth=None)
