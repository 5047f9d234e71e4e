"""What is the MC252's own in its access: the salt login, the session token and the header it
travels in, logout, the session's lapse, and the two ways to a level that an API client cannot take
(the front-panel button, the VPN cloud: emulator controls). Every operation with and without a
session, and the near misses of the login and the token, are the access matrix's
(suites/common/test_access.py).
"""

from __future__ import annotations

import pytest

from conformlab.checks import answer
from conformlab.client import bounded_session, expect_json
from conformlab.profiles import MC252_TOKEN_HEADERS
from conformlab.verdicts import not_verified, requirement
from suites.overvis_mc252.mc252 import (
    SCHEMA, assert_access_refused, assert_envelope, assert_shape, fresh_salt, let_time_pass, log_in, log_out,
    require_login, run_token, salted_login, send_login, with_token, wrong_login,
)

PROTECTED_READ = "/state/get/?system"  # level 1, cheap, changes nothing
LOGIN = SCHEMA.operation("POST", "/login/")


@pytest.mark.req("MC252-TOKEN-HEADER")
def test_token_in_the_documented_authorized_header_is_honoured(device, notice):
    """Reading: the document is the specification and names "Authorized"; NOTES.md says the standard
    name is "Authorization" and nothing public settles which one the firmware reads. So the check
    reports which header(s) the device reads, and fails when it ignores the documented one (a
    firmware documented to read only Authorization can waive MC252-TOKEN-HEADER on its target)."""
    token = run_token(device)
    answers = {name: device.client.get(PROTECTED_READ, auth=with_token(token, (name,))) for name in MC252_TOKEN_HEADERS}
    honoured = [name for name, response in answers.items() if response.status_code == 200]
    notice("the device reads the session token from "
           + (" and ".join(f'"{name}"' for name in honoured) if honoured else "neither header alone"))
    assert answers["Authorized"].status_code == 200, (
        f'the token in the documented "Authorized" header must give level 1: {answer(answers["Authorized"])}')


@pytest.mark.req("MC252-LOGIN-HASH", "MC252-LOGIN-LEVEL1", "MC252-ANSWER-SHAPES")
def test_login_with_the_salted_hash_gives_a_bearer_session(device):
    _, response = salted_login(device)
    assert response.status_code == 200, f"the login with SHA1(login + password + salt) must succeed: {answer(response)}"
    with requirement("MC252-ANSWER-SHAPES"):
        assert_shape(device, LOGIN, response)
    token = response.json()["token"]
    try:
        served = device.client.get(PROTECTED_READ, auth=with_token(token))
        with requirement("MC252-LOGIN-LEVEL1"):
            assert served.status_code == 200, f"the new session must have level 1: {answer(served)}"
    finally:
        log_out(device, token)


@pytest.mark.req("MC252-LOGIN-HASH", "MC252-ERROR-ENVELOPE")
@pytest.mark.parametrize("case", ["wrong-password", "unsalted", "wrong-user"])
def test_login_with_another_hash_refused(device, case):
    username, digest = wrong_login(require_login(device), case, fresh_salt(device))
    response = send_login(device, username, digest)
    assert 400 <= response.status_code < 500, f"a login with a {case} hash must be refused: {answer(response)}"
    with requirement("MC252-ERROR-ENVELOPE"):
        assert_envelope(response, f"login with a {case} hash")
    assert "token" not in response.json(), f"a refused login must hand out no token: {answer(response)}"


@pytest.mark.req("MC252-LOGIN-SALT")
def test_salt_serves_one_login(device):
    """Reading: step 1 gets a salt for the login of step 2. A hash that logs in again later (a
    captured login replayed) would make the salt pointless, so this project reads it as refused.
    The document does not say how long a salt serves: binding on the bundled emulator, a notice
    elsewhere. A refusal carries the document's envelope."""
    digest, first = salted_login(device)
    log_out(device, expect_json(first)["token"])
    replay = send_login(device, require_login(device)["login"], digest)
    if replay.status_code == 200:
        log_out(device, replay.json()["token"])
    device.reading(400 <= replay.status_code < 500,
                   f"the same salted hash logged in twice (a salt serves one login in this project's reading): {answer(replay)}")
    if replay.status_code >= 400:
        assert_envelope(replay, "a replayed login")


@pytest.mark.req("MC252-LOGOUT", "MC252-LEVEL1-REFUSED")
def test_logged_out_token_refused(device):
    token = log_in(device)
    served = device.client.get(PROTECTED_READ, auth=with_token(token))
    assert served.status_code == 200, f"the session must have level 1 before the logout: {answer(served)}"
    out = log_out(device, token)
    assert out.status_code == 200 and out.json() == {}, f"the logout must answer {{}}: {answer(out)}"
    assert_access_refused(device.client.get(PROTECTED_READ, auth=with_token(token)), "a logged-out token")


@pytest.mark.req("MC252-SESSION-TTL", "MC252-LEVEL1-REFUSED")
@pytest.mark.slow("waits the session's ttlSec (60 s) on real hardware")
def test_session_lapses_after_its_ttl(device):
    """ttlSec 60 (NOTES.md): a session unused for longer than ttlSec is refused. (Whether the 60 s
    count from the login or from the last use is not said; after a use and ttlSec + 1 s of quiet,
    both readings agree that it has lapsed.)"""
    session = expect_json(salted_login(device)[1])
    token, ttl = session["token"], session["ttlSec"]
    if not device.target.emulator and ttl > 600:
        not_verified(f"ttlSec is {ttl} s: too long to wait for on hardware")
    try:
        served = device.client.get(PROTECTED_READ, auth=with_token(token))
        assert served.status_code == 200, f"a fresh session must have level 1: {answer(served)}"
        let_time_pass(device, ttl + 1)
        assert_access_refused(device.client.get(PROTECTED_READ, auth=with_token(token)), f"a session unused for ttlSec + 1 = {ttl + 1} s")
    finally:
        log_out(device, token)  # in case it did not lapse


@pytest.mark.req("MC252-BUTTON")
@pytest.mark.emulator_only("presses the front-panel button, which no API request can")
def test_button_gives_guests_level_1_for_10_minutes(device):
    def as_guest():
        return device.client.get(PROTECTED_READ, auth=None)

    assert_access_refused(as_guest(), "a guest before the button is pressed")
    granted = device.control("button", {})["level1ForSec"]
    try:
        assert as_guest().status_code == 200, f"after the button a guest has level 1: {answer(as_guest())}"
        device.control("advance", {"seconds": granted - 5})
        assert as_guest().status_code == 200, "a guest keeps level 1 until the 10 minutes are over"
        device.control("advance", {"seconds": 10})
        assert_access_refused(as_guest(), "a guest 10 minutes and 5 s after the button")
    finally:
        device.control("advance", {"seconds": granted + 1})  # the window is over whatever the check saw


VPN_ADDRESS = "127.0.0.5"


@pytest.mark.req("MC252-VPN")
@pytest.mark.emulator_only("makes requests arrive through the VPN cloud")
def test_vpn_cloud_requests_get_the_administrator_level(device):
    """No path needs level 2, so level 2 shows as every level-1 path served without a session."""
    device.control("vpn", {"addresses": [VPN_ADDRESS]})
    try:
        # Sent from the VPN address (the emulator sees it as the VPN cloud), on the bounded transport.
        with bounded_session(device.target.timeout, origin=device.client.origin, source_address=VPN_ADDRESS) as vpn:
            for path, body in (("/settings/active/get/", None), ("/card/dir/", {"path": "/"})):
                url = device.client.url(path)
                response = vpn.get(url) if body is None else vpn.post(url, json=body)
                assert response.status_code == 200, f"a request from the VPN cloud must be served without a session: {answer(response)}"
        assert_access_refused(device.client.get(PROTECTED_READ, auth=None), "a guest outside the VPN")
    finally:
        device.control("vpn", {"addresses": []})
