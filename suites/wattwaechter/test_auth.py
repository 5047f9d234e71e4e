"""Switching authentication off and on (api_auth_required). Every operation with and without tokens
is the access matrix's (suites/common/test_access.py); the token renewal is test_tokens.py.
"""

from __future__ import annotations

import pytest

from conformlab.auth import BearerAuth
from conformlab.checks import answer
from suites.wattwaechter.ww import generate_tokens, not_applicable, requirement, restoring, token_works, tokens_kept


def needs_tokens(device) -> None:
    if not device.has_credentials:
        not_applicable("the target has no tokens (api_auth_required false); WW-AUTH-OPEN applies instead")


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
