"""Unit tests of the Overvis MC252 emulator (plain pytest + requests + http.client).

Secrets (the password, the login hash, session tokens) never appear in an assertion: checks on them
are reduced to booleans first, so a failure cannot print them.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import time

import pytest
import requests

from conformlab.emulators.overvis_mc252 import (
    DEFAULT_SETTINGS, FACTORY_SETTINGS, FAULTS, NEAR_MISS_FAULTS, ROUTES, SETTINGS, STATE_KEYS, VERSION, OvervisMc252Emulator)
from conformlab.emulators.server import serve
from vendor_docs import assert_faults_quote_the_documents
from emulator_controls import control, counters

LOGIN, PASSWORD = "admin", "mc252-emulator-secret"
AUTH = {"login": LOGIN, "password": PASSWORD}
VPN_ADDRESS = "127.0.0.5"


BOOT_SECONDS = 0.3  # the tests' emulators boot quickly (the targets' default is 2 s)


def start(faults=(), auth=AUTH, reading="default", **options):
    emulator = OvervisMc252Emulator(faults=faults, auth=auth, **options)
    emulator.reading, emulator.boot_seconds = reading, BOOT_SECONDS
    return serve(emulator, host="127.0.0.1", port=0)


def restarted(emu, before: int | None = None, timeout: float = 10.0) -> None:
    """Wait until the emulator has come back from the restart a command asked for (`before`: its
    restart count before the command; by default one restart more than it has gone through now
    is not required -- only that none is pending)."""
    deadline = time.monotonic() + timeout
    target = (emu.emulator.restarts if before is None else before) + 1
    while emu.emulator.restarts < target:
        assert time.monotonic() < deadline, "the emulator did not come back from its restart"
        time.sleep(0.02)


@pytest.fixture
def emu():
    with start() as running:
        yield running


def api(emu, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, emu.url + "/api" + path, timeout=5, **kw)


def get(emu, path: str, token: str | None = None, header: str = "Authorization", **kw) -> requests.Response:
    if token is not None:
        kw["headers"] = {header: f"Bearer {token}", **kw.get("headers", {})}
    return api(emu, "GET", path, **kw)


def post(emu, path: str, body=None, token: str | None = None, header: str = "Authorization", **kw) -> requests.Response:
    if token is not None:
        kw["headers"] = {header: f"Bearer {token}", **kw.get("headers", {})}
    if body is not None:
        kw["data"] = json.dumps(body)
        kw["headers"] = {"Content-Type": "application/json", **kw.get("headers", {})}
    return api(emu, "POST", path, **kw)


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def salt(emu) -> str:
    response = get(emu, "/login/salt/")
    assert response.status_code == 200
    return response.json()["salt"]


def login_answer(emu, username: str = LOGIN, password: str = PASSWORD,
                 with_salt: str | None = None) -> requests.Response:
    """POST /login/ with the hash of login + password + a fresh salt (or `with_salt`)."""
    used = with_salt if with_salt is not None else salt(emu)
    return post(emu, "/login/", {"username": username, "password": sha1(username + password + used)})


def login(emu) -> str:
    response = login_answer(emu)
    assert response.status_code == 200
    return response.json()["token"]


def assert_envelope(response: requests.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "message"}
    assert isinstance(body["error"], str) and body["error"] and isinstance(body["message"], str)
    if code is not None:
        assert body["error"] == code


def from_address(emu, source: str, method: str, path: str, headers=None, body=None) -> tuple[int, bytes]:
    """One request from a given loopback source address (e.g. the VPN cloud's 127.0.0.5)."""
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=5, source_address=(source, 0))
    try:
        conn.request(method, "/api" + path, body=None if body is None else json.dumps(body), headers=headers or {})
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def same_connection(emu, paths=("/version/", "/version/")) -> bool:
    """Whether one TCP connection serves the requests one after another (keep-alive)."""
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=5)
    try:
        sockets = []
        for path in paths:
            conn.request("GET", "/api" + path)
            answer = conn.getresponse()
            answer.read()
            sockets.append(conn.sock)
            if answer.will_close or conn.sock is None:
                # announced close: the next request would need a new connection
                return False
        return all(sock is sockets[0] for sock in sockets)
    except (http.client.RemoteDisconnected, ConnectionError):
        return False
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# Catalogue and construction


def test_fault_catalogue_quotes_the_documents():
    assert len(FAULTS) >= 12
    assert_faults_quote_the_documents(FAULTS, "overvis-mc252-api.txt")


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_name_is_accepted(fault):
    with start([fault]) as running:
        assert requests.get(running.url + "/__emulator__/", timeout=5).json() == {
            "device": "overvis-mc252", "faults": [fault]}


def test_construction_refuses_bad_options():
    with pytest.raises(ValueError, match="unknown fault"):
        OvervisMc252Emulator(faults=["nope"])
    with pytest.raises(ValueError, match="unknown auth key"):
        OvervisMc252Emulator(auth={"username": "admin"})
    with pytest.raises(ValueError, match="login"):
        OvervisMc252Emulator(auth={"login": "", "password": "x"})
    with pytest.raises(ValueError, match="token_header"):
        OvervisMc252Emulator(token_header="X-Token")
    assert OvervisMc252Emulator.NAME == "overvis-mc252" and OvervisMc252Emulator().AUTH_KEYS == ("login", "password")


def test_factory_credentials_without_auth():
    with start(auth=None) as running:
        s = salt(running)
        ok = post(running, "/login/", {"username": "admin", "password": sha1("admin" + "admin" + s)})
        assert ok.status_code == 200


# ---------------------------------------------------------------------------------------------
# Level 0: version, salt, login


def test_version_and_salt_are_open(emu):
    version = get(emu, "/version/")
    assert version.status_code == 200 and version.headers["Content-Type"] == "application/json"
    assert version.json() == VERSION
    assert get(emu, "/version/", token="not-a-session").status_code == 200  # level 0 ignores a token
    salts = [salt(emu) for _ in range(3)]
    assert all(re.fullmatch(r"[0-9a-f]{40}", s) for s in salts)
    assert len(set(salts)) == 3  # a new salt per request
    assert counters(emu)["salts"] == 3


def test_login_with_the_salted_sha1(emu):
    s = salt(emu)
    response = post(emu, "/login/", {"username": LOGIN, "password": sha1(LOGIN + PASSWORD + s)})
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"authType", "token", "ttlSec"}
    assert answer["authType"] == "Bearer" and answer["ttlSec"] == 60
    well_formed = isinstance(answer["token"], str) and re.fullmatch(r"[0-9a-f]{32}", answer["token"]) is not None
    assert well_formed, "the token is not 32 hex characters"
    token = answer["token"]
    for header in ("Authorized", "Authorization"):  # both by default
        assert get(emu, "/state/get/?system", token=token, header=header).status_code == 200
    assert counters(emu)["logins"] == 1
    assert control(emu, "sessions", method="GET") == {"sessions": 1, "salts": 0}


def test_login_refusals(emu):
    s = salt(emu)
    unsalted = sha1(LOGIN + PASSWORD)
    cases = [
        ({"username": LOGIN, "password": sha1(LOGIN + "wrong" + s)}, 401, "login_failed"),
        ({"username": "operator", "password": sha1("operator" + PASSWORD + s)}, 401, "login_failed"),
        ({"username": LOGIN, "password": unsalted}, 401, "login_failed"),  # no salt: a replayable hash
        ({"username": LOGIN, "password": sha1(PASSWORD + LOGIN + s)}, 401, "login_failed"),  # wrong order
        ({"username": LOGIN, "password": sha1(LOGIN + PASSWORD + "f" * 40)}, 401, "login_failed"),  # salt never issued
        ({"username": LOGIN, "password": sha1(LOGIN + PASSWORD + s).upper()}, 400, "bad_request"),  # not lowercase
        ({"username": LOGIN, "password": "secret"}, 400, "bad_request"),
        ({"username": LOGIN}, 400, "bad_request"),
        ({"password": "0" * 40}, 400, "bad_request"),
        ({"username": 1, "password": "0" * 40}, 400, "bad_request"),
    ]
    for body, status, code in cases:
        response = post(emu, "/login/", body)
        assert_envelope(response, status, code)
        assert response.headers.get("WWW-Authenticate") == ("Bearer" if status == 401 else None)
    assert_envelope(api(emu, "POST", "/login/", data=b"{nope"), 400, "invalid_json")
    assert_envelope(post(emu, "/login/", ["admin"]), 400, "bad_request")
    assert counters(emu)["logins"] == 0 and counters(emu)["loginFailures"] == 5
    # a failed attempt consumes nothing: the salt still serves a correct login
    assert login_answer(emu, with_salt=s).status_code == 200


def test_a_salt_serves_one_login(emu):
    s = salt(emu)
    assert login_answer(emu, with_salt=s).status_code == 200
    assert_envelope(login_answer(emu, with_salt=s), 401, "login_failed")  # replayed hash
    # the device remembers the last 8 unused salts
    salts = [salt(emu) for _ in range(9)]
    assert_envelope(login_answer(emu, with_salt=salts[0]), 401, "login_failed")
    assert login_answer(emu, with_salt=salts[1]).status_code == 200
    assert login_answer(emu, with_salt=salts[8]).status_code == 200


def test_session_lapses_60_s_after_its_last_use(emu):
    token = login(emu)
    control(emu, "advance", {"seconds": 59})
    assert get(emu, "/state/get/?system", token=token).status_code == 200  # used: 60 s again
    control(emu, "advance", {"seconds": 59})
    assert get(emu, "/state/get/?system", token=token).status_code == 200
    control(emu, "advance", {"seconds": 60.5})
    assert_envelope(get(emu, "/state/get/?system", token=token), 401, "invalid_token")
    assert control(emu, "sessions", method="GET")["sessions"] == 0
    assert get(emu, "/state/get/?system", token=login(emu)).status_code == 200  # log in again


def test_logout_ends_the_session(emu):
    token, other = login(emu), login(emu)
    assert post(emu, "/cmd/logout/", {}, token=token).json() == {}
    assert_envelope(get(emu, "/state/get/", token=token), 401, "invalid_token")
    assert_envelope(post(emu, "/cmd/logout/", {}, token=token), 401, "invalid_token")
    assert get(emu, "/state/get/", token=other).status_code == 200  # other sessions live on
    assert post(emu, "/cmd/logout/", token=other, header="Authorized").json() == {}  # empty body = {}
    assert_envelope(get(emu, "/state/get/", token=other), 401, "invalid_token")
    assert_envelope(post(emu, "/cmd/logout/", {}), 401, "unauthorized")
    assert counters(emu)["logouts"] == 2


def test_token_header_control(emu):
    token = login(emu)
    assert control(emu, "token_header", method="GET") == {"header": "both"}
    control(emu, "token_header", {"header": "Authorized"})
    assert get(emu, "/state/get/", token=token, header="Authorized").status_code == 200
    assert_envelope(get(emu, "/state/get/", token=token, header="Authorization"), 401, "unauthorized")
    control(emu, "token_header", {"header": "Authorization"})
    assert get(emu, "/state/get/", token=token, header="Authorization").status_code == 200
    assert_envelope(get(emu, "/state/get/", token=token, header="Authorized"), 401, "unauthorized")
    control(emu, "token_header", {"header": "both"})
    # either header with a valid token is enough; a lower-case scheme is accepted
    both = {"Authorized": "Bearer nope", "Authorization": f"bearer {token}"}
    assert get(emu, "/state/get/", headers=both).status_code == 200
    assert_envelope(get(emu, "/state/get/", headers={"Authorization": f"Basic {token}"}), 401, "invalid_token")
    for payload in ({"header": "X-Token"}, {}, None):
        assert requests.post(f"{emu.url}/__emulator__/token_header", json=payload, timeout=5).status_code == 400
    with start(token_header="Authorized") as running:
        assert control(running, "token_header", method="GET") == {"header": "Authorized"}
        assert get(running, "/state/get/", token=login(running), header="Authorization").status_code == 401


# ---------------------------------------------------------------------------------------------
# Access levels on every path

REQUEST_BODIES = {
    "/login/": {"username": LOGIN, "password": "0" * 40},
    "/cmd/time/set/": {"time": 1767225600},
    "/cmd/gsm/sms-test/": {},
    "/activation/": {"key": "ABCD-EFGH"},
    "/card/file/info/": {"path": "/README.TXT"},
    "/card/file/read/": {"path": "/README.TXT"},
    "/card/file/write/": {"path": "/scratch.tmp", "data": "eA=="},
    "/card/remove/": {"path": "/logs/2025-06-01.csv"},
    "/card/dir/": {"path": "/"},
    "/settings/saved/set/": {"logIntervalSec": 45},
    "/cmd/settings/import/": {"logIntervalSec": 45},
    "/modbus/req/": {"unit": 1, "func": 3, "addr": 0, "count": 2},
    "/modbus/class-find/search-meta-info/": {},
    "/modbus/class-find/start/": {"template": "OB-215"},
}
QUERIES = {"/modbus/resp/": "?tid=1", "/state/get/": "?system", "/modbus/find/result/": "?list"}


def call(emu, method: str, path: str, token: str | None = None, header: str = "Authorization") -> requests.Response:
    if method == "GET":
        return get(emu, path + QUERIES.get(path, ""), token=token, header=header)
    return post(emu, path, REQUEST_BODIES.get(path, {}), token=token, header=header)


def test_level_0_paths_are_open_and_level_1_paths_refused_to_guests(emu):
    before = counters(emu)
    for route in ROUTES:
        method, path = route.method, route.path
        response = call(emu, method, path)
        if route.access == 0:
            assert response.status_code in (200, 401) and response.json().get("error") != "unauthorized", path
        else:
            assert_envelope(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert_envelope(call(emu, method, path, token="0123456789abcdef0123456789abcdef"), 401, "invalid_token")
    after = counters(emu)
    assert after == {**before, "salts": 1, "loginFailures": 1}  # refused requests did nothing
    assert control(emu, "settings", method="GET")["saved"] == DEFAULT_SETTINGS


def test_level_1_paths_accepted_after_login(emu):
    token = login(emu)
    for route in ROUTES:
        method, path = route.method, route.path
        if path in ("/cmd/logout/", "/cmd/reboot/", "/login/", "/cmd/memory/card_eject/", "/cmd/settings/reset/",
                    "/cmd/settings/import/", "/cmd/updates/program/"):
            continue  # these end the session, restart the device or unmount the card; covered elsewhere
        response = call(emu, method, path, token=token, header="Authorized")
        assert response.status_code in (200, 404), f"{method} {path}: {response.status_code}"  # 404: tid 1 unknown
        assert response.headers["Content-Type"] == "application/json"
    assert call(emu, "POST", "/cmd/memory/card_eject/", token=token).json() == {}


def test_front_panel_button_grants_level_1_for_10_minutes(emu):
    assert control(emu, "button", method="GET") == {"level1ForSec": 0}
    assert control(emu, "button", {}) == {"level1ForSec": 600}
    assert get(emu, "/state/get/").status_code == 200
    assert post(emu, "/card/dir/", {"path": "/"}, token="not-a-session").status_code == 200  # still a guest
    control(emu, "advance", {"seconds": 599})
    assert get(emu, "/identify/").status_code == 200
    control(emu, "advance", {"seconds": 2})
    assert_envelope(get(emu, "/identify/"), 401, "unauthorized")
    assert control(emu, "button", method="GET") == {"level1ForSec": 0}
    control(emu, "button")  # a new press: another 10 minutes
    assert get(emu, "/identify/").status_code == 200
    assert requests.post(f"{emu.url}/__emulator__/button", json={"minutes": 99}, timeout=5).status_code == 400


def test_vpn_cloud_requests_get_level_2(emu):
    assert control(emu, "vpn", method="GET") == {"addresses": []}
    assert from_address(emu, VPN_ADDRESS, "GET", "/state/get/?gsm")[0] == 401
    assert control(emu, "vpn", {"addresses": [VPN_ADDRESS]}) == {"addresses": [VPN_ADDRESS]}
    status, body = from_address(emu, VPN_ADDRESS, "GET", "/state/get/?gsm")
    assert status == 200 and set(json.loads(body)) == {"gsm"}
    assert from_address(emu, VPN_ADDRESS, "POST", "/card/dir/", {"Authorized": "Bearer wrong"}, {"path": "/"})[0] == 200
    assert from_address(emu, VPN_ADDRESS, "POST", "/cmd/logout/", body={})[0] == 200  # nothing to end
    assert from_address(emu, "127.0.0.6", "GET", "/state/get/?gsm")[0] == 401  # other addresses: guests
    assert get(emu, "/state/get/?gsm").status_code == 401
    control(emu, "vpn", {"addresses": []})
    assert from_address(emu, VPN_ADDRESS, "GET", "/state/get/?gsm")[0] == 401
    assert requests.post(f"{emu.url}/__emulator__/vpn", json={"addresses": "127.0.0.5"}, timeout=5).status_code == 400


# ---------------------------------------------------------------------------------------------
# Conventions: envelope, paths, methods, keep-alive


def test_every_error_carries_the_envelope(emu):
    token = login(emu)
    assert_envelope(get(emu, "/nope/"), 404, "not_found")
    assert_envelope(requests.get(emu.url + "/", timeout=5), 404, "not_found")
    assert_envelope(requests.get(emu.url + "/api", timeout=5), 404, "not_found")
    for path in ("/version", "/login/salt", "/state/get", "/cmd/logout", "/card/dir"):
        assert_envelope(get(emu, path), 404, "not_found")  # the trailing slash is part of the path
        assert_envelope(post(emu, path, {}, token=token), 404, "not_found")
    for method, path, allowed in (("POST", "/version/", "GET"), ("GET", "/login/", "POST"),
                                  ("PUT", "/settings/saved/set/", "POST"), ("DELETE", "/state/get/", "GET"),
                                  ("HEAD", "/cmd/reboot/", "POST")):
        response = api(emu, method, path)
        assert response.status_code == 405 and response.headers["Allow"] == allowed
        if method != "HEAD":
            assert_envelope(response, 405, "method_not_allowed")
    assert_envelope(get(emu, "/state/get/?nope", token=token), 400, "unknown_key")
    assert_envelope(post(emu, "/settings/saved/set/", {"nope": 1}, token=token), 400, "unknown_key")
    assert_envelope(post(emu, "/settings/saved/set/", {"logIntervalSec": 0}, token=token), 400, "invalid_value")
    assert_envelope(api(emu, "POST", "/cmd/time/sync/", data=b"[1,", headers={"Authorization": f"Bearer {token}"}),
                    400, "invalid_json")
    assert_envelope(get(emu, "/modbus/resp/?tid=77", token=token), 404, "unknown_tid")
    assert_envelope(post(emu, "/card/file/info/", {"path": "/nope.txt"}, token=token), 404, "file_not_found")
    post(emu, "/cmd/memory/card_eject/", {}, token=token)
    assert_envelope(post(emu, "/card/dir/", {}, token=token), 503, "card_not_mounted")
    assert_envelope(get(emu, "/state/get/"), 401, "unauthorized")


def test_keep_alive_also_after_errors(emu):
    assert same_connection(emu)
    assert same_connection(emu, ("/version/", "/nope/", "/state/get/", "/version", "/login/salt/"))
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=5)
    try:
        conn.request("GET", "/api/state/get/")
        answer = conn.getresponse()
        assert answer.status == 401 and answer.getheader("Connection") is None and not answer.will_close
        answer.read()
        conn.request("POST", "/api/login/", body=b"{broken", headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        assert answer.status == 400 and not answer.will_close
        answer.read()
        conn.request("GET", "/api/version/")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# State and settings


def test_state_by_bare_keys_and_all(emu):
    token = login(emu)
    everything = get(emu, "/state/get/", token=token).json()
    assert list(everything) == list(STATE_KEYS)
    assert everything["ethernet"]["ip"] == DEFAULT_SETTINGS["ethIp"] and everything["gsm"]["registered"] is True
    card = everything["card"]
    assert card["mounted"] is True and 0 < card["freeBytes"] < card["totalBytes"]
    assert set(get(emu, "/state/get/?ethernet&gsm", token=token).json()) == {"ethernet", "gsm"}
    assert set(get(emu, "/state/get/?ethernet=&power", token=token).json()) == {"ethernet", "power"}
    assert_envelope(get(emu, "/state/get/?ethernet=1", token=token), 400, "bad_request")  # no values
    assert_envelope(get(emu, "/state/get/?all", token=token), 400, "unknown_key")  # none = all; "all" is no key


def test_saved_settings_take_effect_at_the_next_start(emu):
    token = login(emu)
    saved = get(emu, "/settings/saved/get/", token=token).json()
    assert saved == get(emu, "/settings/active/get/", token=token).json() == DEFAULT_SETTINGS
    assert get(emu, "/settings/saved/get/?logIntervalSec&deviceName", token=token).json() == {
        "logIntervalSec": 30, "deviceName": "Pump station 3"}
    assert_envelope(get(emu, "/settings/active/get/?nope", token=token), 400, "unknown_key")

    assert post(emu, "/settings/saved/set/", {"logIntervalSec": 45, "deviceName": "Test"}, token=token).json() == {}
    assert get(emu, "/settings/saved/get/?logIntervalSec&deviceName", token=token).json() == {
        "logIntervalSec": 45, "deviceName": "Test"}
    assert get(emu, "/settings/active/get/?logIntervalSec", token=token).json() == {"logIntervalSec": 30}

    # all or nothing: one bad key refuses the whole body
    for body, code in (({"logIntervalSec": 50, "nope": 1}, "unknown_key"),
                       ({"logIntervalSec": 50, "ethDhcp": "yes"}, "invalid_value"),
                       ({"logIntervalSec": 0}, "invalid_value"), ({"logIntervalSec": True}, "invalid_value"),
                       ({"rs485Baudrate": 9601}, "invalid_value"), ({"ethIp": "192.168.1.300"}, "invalid_value"),
                       ({"ethIp": "192.168.01.1"}, "invalid_value"), ({"deviceName": ""}, "invalid_value"),
                       ({"alarmPhone": "call me"}, "invalid_value"), ({"tzOffsetMin": 841}, "invalid_value")):
        assert_envelope(post(emu, "/settings/saved/set/", body, token=token), 400, code)
    assert get(emu, "/settings/saved/get/?logIntervalSec", token=token).json() == {"logIntervalSec": 45}
    assert_envelope(post(emu, "/settings/saved/set/", [1], token=token), 400, "bad_request")
    assert post(emu, "/settings/saved/set/", {}, token=token).json() == {}
    assert post(emu, "/settings/saved/set/", {"modbusTimeoutMs": 750.0}, token=token).json() == {}  # integral number

    # the next start applies them, and ends the session
    before = emu.emulator.restarts
    assert post(emu, "/cmd/reboot/", {}, token=token).json() == {}
    restarted(emu, before)
    assert_envelope(get(emu, "/settings/active/get/", token=token), 401, "invalid_token")
    token = login(emu)
    assert get(emu, "/settings/active/get/?logIntervalSec&modbusTimeoutMs", token=token).json() == {
        "logIntervalSec": 45, "modbusTimeoutMs": 750}
    assert get(emu, "/state/get/?system", token=token).json()["system"]["uptimeSec"] < 5

    # old values restored
    old = {key: DEFAULT_SETTINGS[key] for key in ("logIntervalSec", "deviceName", "modbusTimeoutMs")}
    assert post(emu, "/settings/saved/set/", old, token=token).json() == {}
    assert get(emu, "/settings/saved/get/", token=token).json() == DEFAULT_SETTINGS
    assert counters(emu)["savedWrites"] == 4 and counters(emu)["reboots"] == 1 and counters(emu)["restarts"] == 1


def test_settings_reset_import_export(emu):
    token = login(emu)
    assert post(emu, "/cmd/settings/export/", {}, token=token).json() == DEFAULT_SETTINGS
    before = emu.emulator.restarts
    assert post(emu, "/cmd/settings/reset/", {}, token=token).json() == {}
    # answered first; the restart it causes (about a second later) applies the factory settings
    assert get(emu, "/settings/saved/get/", token=token).json() == FACTORY_SETTINGS
    assert get(emu, "/settings/active/get/", token=token).json() == DEFAULT_SETTINGS  # until the restart
    restarted(emu, before)
    token = login(emu)  # the restart ended the session
    assert get(emu, "/settings/active/get/", token=token).json() == FACTORY_SETTINGS
    extra = {**DEFAULT_SETTINGS, "extra": 1}
    assert_envelope(post(emu, "/cmd/settings/import/", extra, token=token), 400, "unknown_key")  # no restart
    before = emu.emulator.restarts
    assert post(emu, "/cmd/settings/import/", DEFAULT_SETTINGS, token=token).json() == {}
    assert get(emu, "/settings/saved/get/", token=token).json() == DEFAULT_SETTINGS
    restarted(emu, before)
    token = login(emu)
    assert get(emu, "/settings/active/get/", token=token).json() == DEFAULT_SETTINGS
    assert {k: counters(emu)[k] for k in ("settingsResets", "settingsImports", "settingsExports")} == {
        "settingsResets": 1, "settingsImports": 1, "settingsExports": 1}
    assert control(emu, "settings", method="GET") == {"active": DEFAULT_SETTINGS, "saved": DEFAULT_SETTINGS}


def test_settings_table_is_consistent():
    for key, value in DEFAULT_SETTINGS.items():
        assert SETTINGS[key].check(value) == value, key
        assert SETTINGS[key].check(FACTORY_SETTINGS[key]) == FACTORY_SETTINGS[key], key
    assert set(DEFAULT_SETTINGS) == set(FACTORY_SETTINGS) == set(SETTINGS)


# ---------------------------------------------------------------------------------------------
# Modbus


def modbus(emu, token, body) -> int:
    response = post(emu, "/modbus/req/", body, token=token)
    assert response.status_code == 200, response.json()
    return response.json()["tid"]


def test_modbus_request_and_response_by_tid(emu):
    token = login(emu)
    first = modbus(emu, token, {"unit": 1, "func": 3, "addr": 0, "count": 2})
    assert first == 1
    assert get(emu, f"/modbus/resp/?tid={first}", token=token).json()["status"] in ("pending", "ok")  # 0.1 s
    control(emu, "advance", {"seconds": 0.2})
    answer = get(emu, f"/modbus/resp/?tid={first}", token=token).json()
    assert answer["status"] == "ok" and answer["tid"] == 1 and answer["values"][0] == 215 and len(answer["values"]) == 2
    assert get(emu, f"/modbus/resp/?tid={first}", token=token).json() == answer  # readable again

    write = modbus(emu, token, {"unit": 17, "func": 6, "addr": 3, "values": [1234]})
    many = modbus(emu, token, {"unit": 17, "func": 16, "addr": 4, "values": [5, 6]})
    read = modbus(emu, token, {"unit": 17, "func": 4, "addr": 3, "count": 3})
    absent = modbus(emu, token, {"unit": 99, "func": 3, "addr": 0})
    beyond = modbus(emu, token, {"unit": 17, "func": 3, "addr": 15, "count": 2})
    assert (write, many, read, absent, beyond) == (2, 3, 4, 5, 6)
    control(emu, "advance", {"seconds": 0.2})
    assert get(emu, f"/modbus/resp/?tid={read}", token=token).json()["values"] == [1234, 5, 6]
    assert get(emu, f"/modbus/resp/?tid={write}", token=token).json()["values"] == [1234]
    assert get(emu, f"/modbus/resp/?tid={absent}", token=token).json() == {"tid": 5, "status": "pending"}
    control(emu, "advance", {"seconds": 0.5})  # the active modbusTimeoutMs
    assert get(emu, f"/modbus/resp/?tid={absent}", token=token).json() == {"tid": 5, "status": "timeout"}
    assert get(emu, f"/modbus/resp/?tid={beyond}", token=token).json() == {
        "tid": 6, "status": "exception", "exception": 2}

    assert_envelope(get(emu, "/modbus/resp/?tid=999", token=token), 404, "unknown_tid")
    for query in ("", "?tid=", "?tid=x", "?tid=1&tid=2", "?tid=-1"):
        assert_envelope(get(emu, "/modbus/resp/" + query, token=token), 400, "bad_request")
    for body in ({"unit": 0, "func": 3, "addr": 0}, {"unit": 1, "func": 5, "addr": 0}, {"unit": 1, "func": 3},
                 {"unit": 1, "func": 3, "addr": 0, "count": 126}, {"unit": 1, "func": 6, "addr": 0, "values": [1, 2]},
                 {"unit": 1, "func": 16, "addr": 0}, {"unit": 1, "func": 16, "addr": 0, "values": [70000]},
                 {"unit": True, "func": 3, "addr": 0}):
        assert_envelope(post(emu, "/modbus/req/", body, token=token), 400, "invalid_value")
    assert counters(emu)["modbusRequests"] == 6
    assert get(emu, "/state/get/?rs485", token=token).json()["rs485"]["requests"] == 6


def test_device_search(emu):
    token = login(emu)
    assert get(emu, "/modbus/find/result/", token=token).json() == {"status": "idle", "progress": 0}
    assert get(emu, "/modbus/find/result/?list", token=token).json() == {"status": "idle", "progress": 0, "devices": []}
    assert post(emu, "/modbus/find/start/", {}, token=token).json() == {}
    assert get(emu, "/modbus/find/result/", token=token).json()["status"] == "running"
    control(emu, "advance", {"seconds": 5})
    assert get(emu, "/modbus/find/result/?list", token=token).json() == {
        "status": "done", "progress": 100, "devices": [{"unit": 1, "baudrate": 9600}, {"unit": 17, "baudrate": 9600}]}
    # stopped part-way: what was found so far stays
    post(emu, "/modbus/find/start/", token=token)
    control(emu, "advance", {"seconds": 0.1})  # past unit 1, before unit 17 (5 s over 247 units)
    assert post(emu, "/modbus/find/stop/", {}, token=token).json() == {}
    stopped = get(emu, "/modbus/find/result/?list", token=token).json()
    assert stopped["status"] == "stopped" and stopped["progress"] < 100
    assert stopped["devices"] == [{"unit": 1, "baudrate": 9600}]
    control(emu, "advance", {"seconds": 5})
    assert get(emu, "/modbus/find/result/?list", token=token).json() == stopped
    assert_envelope(get(emu, "/modbus/find/result/?list=1", token=token), 400, "bad_request")
    assert counters(emu)["findStarts"] == 2


def test_template_search(emu):
    token = login(emu)
    assert post(emu, "/modbus/class-find/search-meta-info/", {}, token=token).json() == {
        "templates": ["OB-215", "TH-1"]}
    meta = post(emu, "/modbus/class-find/search-meta-info/", {"template": "TH-1"}, token=token).json()
    assert meta["template"] == "TH-1" and 9600 in meta["baudrates"] and meta["units"] == {"from": 1, "to": 247}
    assert_envelope(post(emu, "/modbus/class-find/search-meta-info/", {"template": "XY"}, token=token), 404,
                    "template_not_found")
    assert get(emu, "/modbus/class-find/result/", token=token).json() == {
        "status": "idle", "progress": 0, "devices": [], "template": None}
    assert_envelope(post(emu, "/modbus/class-find/start/", {}, token=token), 400, "bad_request")
    assert_envelope(post(emu, "/modbus/class-find/start/", {"template": "XY"}, token=token), 404, "template_not_found")
    assert post(emu, "/modbus/class-find/start/", {"template": "OB-215"}, token=token).json() == {}
    control(emu, "advance", {"seconds": 5})
    assert get(emu, "/modbus/class-find/result/", token=token).json() == {
        "status": "done", "progress": 100, "template": "OB-215",
        "devices": [{"unit": 1, "baudrate": 9600, "model": "OB-215"}]}
    post(emu, "/modbus/class-find/start/", {"template": "TH-1"}, token=token)
    assert post(emu, "/modbus/class-find/stop/", {}, token=token).json() == {}
    assert get(emu, "/modbus/class-find/result/", token=token).json()["status"] == "stopped"


# ---------------------------------------------------------------------------------------------
# SD card


def test_card_files(emu):
    token = login(emu)
    root = post(emu, "/card/dir/", {}, token=token).json()
    assert root["path"] == "/" and [(e["name"], e["type"]) for e in root["entries"]] == [
        ("README.TXT", "file"), ("config", "dir"), ("logs", "dir")]
    logs = post(emu, "/card/dir/", {"path": "/logs/"}, token=token).json()
    assert [e["name"] for e in logs["entries"]] == ["2025-06-01.csv", "2025-06-02.csv"]
    info = post(emu, "/card/file/info/", {"path": "/logs/2025-06-01.csv"}, token=token).json()
    assert info["type"] == "file" and info["size"] > 100 and info["path"] == "/logs/2025-06-01.csv"
    chunk = post(emu, "/card/file/read/", {"path": "/logs/2025-06-01.csv", "length": 27}, token=token).json()
    assert base64.b64decode(chunk["data"]) == b"time,voltage,current,power\n" and chunk["eof"] is False
    rest = post(emu, "/card/file/read/", {"path": "/logs/2025-06-01.csv", "offset": 27}, token=token).json()
    assert rest["eof"] is True and 27 + len(base64.b64decode(rest["data"])) == info["size"]

    # write, append, read back, remove a scratch file
    scratch = "/conformlab-scratch.tmp"
    hello, card = base64.b64encode(b"hello ").decode(), base64.b64encode(b"card").decode()
    assert post(emu, "/card/file/write/", {"path": scratch, "data": hello}, token=token).json() == {}
    post(emu, "/card/file/write/", {"path": scratch, "data": card, "append": True}, token=token)
    back = post(emu, "/card/file/read/", {"path": scratch}, token=token).json()
    assert base64.b64decode(back["data"]) == b"hello card" and back["size"] == 10
    assert post(emu, "/card/remove/", {"path": scratch}, token=token).json() == {}
    assert_envelope(post(emu, "/card/file/info/", {"path": scratch}, token=token), 404, "file_not_found")
    assert counters(emu)["cardWrites"] == 2 and counters(emu)["cardRemoves"] == 1

    for path, body, status, code in [
        ("/card/dir/", {"path": "/README.TXT"}, 400, "not_a_dir"),
        ("/card/dir/", {"path": "/nope"}, 404, "file_not_found"),
        ("/card/file/read/", {"path": "/logs"}, 400, "not_a_file"),
        ("/card/file/read/", {"path": "/README.TXT", "length": 5000}, 400, "invalid_value"),
        ("/card/file/read/", {"path": "/README.TXT", "offset": 10_000}, 400, "invalid_value"),
        ("/card/file/info/", {"path": "relative.txt"}, 400, "invalid_value"),
        ("/card/file/info/", {"path": "/logs/../README.TXT"}, 400, "invalid_value"),
        ("/card/file/info/", {}, 400, "invalid_value"),
        ("/card/file/write/", {"path": "/nope/x.txt", "data": "eA=="}, 404, "file_not_found"),
        ("/card/file/write/", {"path": "/x.txt", "data": "not base64!"}, 400, "invalid_value"),
        ("/card/file/write/", {"path": "/logs", "data": "eA=="}, 400, "not_a_file"),
        ("/card/file/write/", {"path": "/x.txt", "data": base64.b64encode(b"x" * 4097).decode()}, 400, "invalid_value"),
        ("/card/remove/", {"path": "/logs"}, 400, "dir_not_empty"),
        ("/card/remove/", {"path": "/"}, 400, "bad_request"),
        ("/card/remove/", {"path": "/nope.txt"}, 404, "file_not_found"),
    ]:
        assert_envelope(post(emu, path, body, token=token), status, code)


def test_card_eject_until_reinserted_or_restarted(emu):
    token = login(emu)
    assert post(emu, "/cmd/memory/card_eject/", {}, token=token).json() == {}
    assert get(emu, "/state/get/?card", token=token).json()["card"]["mounted"] is False
    for path in ("/card/dir/", "/card/file/info/", "/card/file/read/", "/card/file/write/", "/card/remove/"):
        assert_envelope(post(emu, path, REQUEST_BODIES[path], token=token), 503, "card_not_mounted")
    assert control(emu, "card", method="GET") == {"inserted": False}
    control(emu, "card", {"inserted": True})
    assert post(emu, "/card/dir/", {}, token=token).status_code == 200
    post(emu, "/cmd/memory/card_eject/", {}, token=token)
    before = emu.emulator.restarts
    post(emu, "/cmd/reboot/", {}, token=token)
    restarted(emu, before)
    assert post(emu, "/card/dir/", {}, token=login(emu)).status_code == 200
    assert counters(emu)["cardEjects"] == 2


# ---------------------------------------------------------------------------------------------
# Commands


def test_commands_are_harmless_and_counted(emu):
    token = login(emu)
    for method, path, key in (("GET", "/identify/", "identify"),
                              ("POST", "/cmd/callback/reconnect/", "cloudReconnects"),
                              ("POST", "/cmd/updates/download/", "updateDownloads"),
                              ("POST", "/cmd/updates/program/", "updatePrograms")):
        before, restarts = counters(emu)[key], emu.emulator.restarts
        response = get(emu, path, token=token) if method == "GET" else post(emu, path, {}, token=token)
        assert response.json() == {} and counters(emu)[key] == before + 1, path
        if path == "/cmd/updates/program/":  # applying the update restarts the device
            restarted(emu, restarts)
            token = login(emu)
    assert get(emu, "/state/get/?cloud", token=token).json()["cloud"]["reconnects"] == 1

    assert post(emu, "/cmd/time/set/", {"time": 1767225600}, token=token).json() == {}
    system = get(emu, "/state/get/?system", token=token).json()["system"]
    assert abs(system["time"] - 1767225600) < 5 and system["timeSynced"] is False
    for body in ({}, {"time": "2026-01-01T00:00:00"}, {"time": 10}, {"time": True}):
        assert_envelope(post(emu, "/cmd/time/set/", body, token=token), 400, "invalid_value")
    assert post(emu, "/cmd/time/sync/", token=token).json() == {}
    assert get(emu, "/state/get/?system", token=token).json()["system"]["timeSynced"] is True

    assert post(emu, "/cmd/gsm/sms-test/", {}, token=token).json() == {}  # to the alarmPhone setting
    assert post(emu, "/cmd/gsm/sms-test/", {"phone": "+4915100000000"}, token=token).json() == {}
    assert_envelope(post(emu, "/cmd/gsm/sms-test/", {"phone": "me"}, token=token), 400, "invalid_value")
    assert post(emu, "/activation/", {"key": "ABCD-EFGH-IJKL"}, token=token).json() == {}
    assert_envelope(post(emu, "/activation/", {"key": " "}, token=token), 400, "bad_request")
    seen = counters(emu)
    assert (seen["timeSets"], seen["timeSyncs"], seen["smsTests"], seen["activations"]) == (1, 1, 2, 1)


def test_sms_test_without_any_phone():
    with start() as running:
        token = login(running)
        before = running.emulator.restarts
        post(running, "/cmd/settings/reset/", {}, token=token)  # factory: no alarmPhone, applied by its restart
        restarted(running, before)
        assert_envelope(post(running, "/cmd/gsm/sms-test/", {}, token=login(running)), 400, "no_phone")


def test_controls_validate_and_reset(emu):
    for name, payload in (("advance", {"seconds": -1}), ("advance", {}), ("card", {"inserted": False}),
                          ("vpn", None), ("button", [1])):
        assert requests.post(f"{emu.url}/__emulator__/{name}", json=payload, timeout=5).status_code == 400, name
    assert requests.get(f"{emu.url}/__emulator__/nope", timeout=5).status_code == 404
    token = login(emu)
    post(emu, "/settings/saved/set/", {"logIntervalSec": 45}, token=token)
    control(emu, "vpn", {"addresses": [VPN_ADDRESS]})
    control(emu, "button")
    control(emu, "reset")
    assert control(emu, "settings", method="GET")["saved"] == DEFAULT_SETTINGS
    assert control(emu, "vpn", method="GET") == {"addresses": []}
    assert control(emu, "button", method="GET") == {"level1ForSec": 0}
    assert counters(emu)["logins"] == 0
    assert_envelope(get(emu, "/state/get/", token=token), 401, "invalid_token")


def test_answers_never_echo_secrets(emu):
    s = salt(emu)
    digest = sha1(LOGIN + "wrong" + s)
    refused = post(emu, "/login/", {"username": LOGIN, "password": digest})
    leaked = digest in refused.text or PASSWORD in refused.text
    assert not leaked, "a login refusal echoes the hash or the password"
    token = login(emu)
    texts = [get(emu, "/state/get/", token=token).text, get(emu, "/settings/saved/get/", token=token).text,
             post(emu, "/cmd/settings/export/", {}, token=token).text, requests.get(
                 f"{emu.url}/__emulator__/sessions", timeout=5).text]
    leaked = any(token in text or PASSWORD in text for text in texts)
    assert not leaked, "an answer carries the session token or the password"


# ---------------------------------------------------------------------------------------------
# Faults: each one changes its probe's answer, and no other probe's


def probe_bad_hash(emu):
    salt(emu)
    return post(emu, "/login/", {"username": LOGIN, "password": "0" * 40}).status_code


def probe_replay(emu):
    s = salt(emu)
    login_answer(emu, with_salt=s)
    return login_answer(emu, with_salt=s).status_code


def probe_unsalted(emu):
    # no salt handed out before: only a device that takes the unsalted hash lets this in
    return post(emu, "/login/", {"username": LOGIN, "password": sha1(LOGIN + PASSWORD)}).status_code


def probe_logout(emu):
    token = login(emu)
    post(emu, "/cmd/logout/", {}, token=token)
    return get(emu, "/state/get/?system", token=token).status_code


def probe_expiry(emu):
    token = login(emu)
    control(emu, "advance", {"seconds": 61})
    return get(emu, "/state/get/?system", token=token).status_code


def probe_button(emu):
    control(emu, "button")
    control(emu, "advance", {"seconds": 601})
    return get(emu, "/state/get/?system").status_code


def probe_vpn(emu):
    control(emu, "vpn", {"addresses": [VPN_ADDRESS]})
    return from_address(emu, VPN_ADDRESS, "GET", "/state/get/?system")[0]


def probe_envelope(emu):
    response = get(emu, "/nope/")
    try:
        keys = sorted(response.json())
    except ValueError:
        keys = None
    return response.headers.get("Content-Type"), keys


def probe_saved(emu):
    token = login(emu)
    post(emu, "/settings/saved/set/", {"logIntervalSec": 45}, token=token)
    return get(emu, "/settings/active/get/?logIntervalSec", token=token).json()["logIntervalSec"]


def probe_tid(emu):
    token = login(emu)
    first = modbus(emu, token, {"unit": 1, "func": 3, "addr": 0, "count": 1})
    modbus(emu, token, {"unit": 1, "func": 3, "addr": 0, "count": 3})
    control(emu, "advance", {"seconds": 1})
    return len(get(emu, f"/modbus/resp/?tid={first}", token=token).json()["values"])


PROBES = {
    "card_open_to_guests": (lambda e: post(e, "/card/dir/", {"path": "/"}).status_code, 401, 200),
    "version_needs_login": (lambda e: get(e, "/version/").status_code, 200, 401),
    "any_hash_accepted": (probe_bad_hash, 401, 200),
    "unsalted_hash_accepted": (probe_unsalted, 401, 200),
    "salt_reusable": (probe_replay, 401, 200),
    "salt_short": (lambda e: len(salt(e)), 40, 8),
    "logout_keeps_token": (probe_logout, 401, 200),
    "session_never_expires": (probe_expiry, 401, 200),
    "authorized_header_ignored": (
        lambda e: get(e, "/state/get/?system", token=login(e), header="Authorized").status_code, 200, 401),
    "button_forever": (probe_button, 401, 200),
    "vpn_not_admin": (probe_vpn, 200, 401),
    "error_bare_text": (probe_envelope, ("application/json", ["error", "message"]), ("text/plain", None)),
    "keepalive_broken": (same_connection, True, False),
    "saved_applied_at_once": (probe_saved, 30, 45),
    "state_keys_ignored": (lambda e: sorted(get(e, "/state/get/?ethernet&gsm", token=login(e)).json()),
                           ["ethernet", "gsm"], sorted(STATE_KEYS)),
    "invalid_setting_accepted": (
        lambda e: post(e, "/settings/saved/set/", {"noSuchKey": 1}, token=login(e)).status_code, 400, 200),
    "modbus_resp_ignores_tid": (probe_tid, 1, 3),
}


def test_probe_table_covers_every_fault():
    # The near-miss-credential faults are probed in test_near_miss.py (conformlab.near_miss).
    assert set(PROBES) == set(FAULTS) - set(NEAR_MISS_FAULTS)


@pytest.mark.parametrize("fault", [None, *sorted(FAULTS)])
def test_fault_changes_its_behaviour_and_only_it(fault):
    with start([fault] if fault else []) as emu:
        for name, (probe, clean, faulty) in PROBES.items():
            control(emu, "reset")
            assert probe(emu) == (faulty if name == fault else clean), f"fault {fault}, probe {name}"


def test_registered_in_the_emulator_registry():
    from conformlab.emulators import EMULATORS

    assert EMULATORS["overvis-mc252"] is OvervisMc252Emulator


# ---------------------------------------------------------------------------------------------
# Restarts: answered first, off the network while booting, back with what survives a start


def _refused_or_dropped(emu) -> bool:
    """Is the emulated device off the network (the connection refused, closed or reset unanswered, or
    its answer broken off: the probe may meet the very moment it goes down)?"""
    try:
        requests.get(emu.url + "/api/version/", timeout=2)
        return False
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
        return True


@pytest.mark.parametrize("path, body", [("/cmd/reboot/", {}), ("/cmd/settings/reset/", {}),
                                        ("/cmd/settings/import/", {"logIntervalSec": 45}), ("/cmd/updates/program/", {})])
def test_restarting_commands_answer_then_go_down_and_come_back(path, body):
    with start() as emu:
        token = login(emu)
        assert post(emu, "/settings/saved/set/", {"deviceName": "Next start"}, token=token).json() == {}
        keep_alive = requests.Session()
        assert keep_alive.get(emu.url + "/api/version/", timeout=5).status_code == 200  # an open connection
        answered = time.monotonic()
        assert post(emu, path, body, token=token).json() == {}  # the answer leaves first
        assert get(emu, "/version/").status_code == 200  # still up right after the answer
        deadline = answered + 5
        while not _refused_or_dropped(emu):
            assert time.monotonic() < deadline, f"{path}: the device never went down"
            time.sleep(0.02)
        went_down = time.monotonic() - answered
        assert 0.8 <= went_down <= 2.0, f"{path}: down {went_down:.2f} s after the answer (about 1 s expected)"
        with pytest.raises(requests.ConnectionError):  # the connection open before the restart was dropped
            keep_alive.get(emu.url + "/api/version/", timeout=2)
        assert emu.emulator.restarts == 0 and emu.emulator.down
        restarted(emu, 0)
        assert get(emu, "/version/").status_code == 200
        # what survives a start: the saved settings (now active); the session did not survive
        assert_envelope(get(emu, "/settings/active/get/", token=token), 401, "invalid_token")
        token = login(emu)
        saved = get(emu, "/settings/saved/get/", token=token).json()
        assert get(emu, "/settings/active/get/", token=token).json() == saved
        assert saved["deviceName"] == ("MC-252" if path == "/cmd/settings/reset/" else "Next start")
        if path == "/cmd/settings/import/":
            assert saved["logIntervalSec"] == 45
        assert get(emu, "/state/get/?system", token=token).json()["system"]["uptimeSec"] < 2
        assert counters(emu)["restarts"] == 1 and emu.emulator.restarts == 1


def test_refused_restarting_commands_do_not_restart(emu):
    post(emu, "/cmd/reboot/", {})  # a guest: 401
    token = login(emu)
    assert_envelope(post(emu, "/cmd/settings/import/", {"nope": 1}, token=token), 400, "unknown_key")
    time.sleep(1.5)
    assert not emu.emulator.down and emu.emulator.restarts == 0 and counters(emu)["restarts"] == 0


def test_reset_control_forgets_a_pending_restart(emu):
    token = login(emu)
    post(emu, "/cmd/reboot/", {}, token=token)
    control(emu, "reset")
    time.sleep(1.5)
    assert not emu.emulator.down and emu.emulator.restarts == 0
    assert get(emu, "/version/").status_code == 200


# ---------------------------------------------------------------------------------------------
# The alternative reading (what the document leaves open, decided the other way)


@pytest.fixture
def alt():
    with start(reading="alternative") as running:
        yield running


def test_default_reading_is_the_schema_reading(emu):
    assert not emu.emulator.alternative
    assert get(emu, "/version").status_code == 404


def test_alternative_reading_answers_other_forms(alt):
    assert alt.emulator.alternative
    token = login(alt)
    # paths without the trailing slash are the same paths
    assert get(alt, "/version").json() == get(alt, "/version/").json()
    # state: unknown keys and values ignored, members of other shapes
    assert get(alt, "/state/get/?conformlab", token=token).status_code == 200
    state = get(alt, "/state/get/?ethernet=1&gsm", token=token).json()
    assert sorted(state) == ["ethernet", "gsm"]
    assert state["ethernet"]["link"] in ("up", "down") and state["gsm"]["signalDbm"].endswith(" dBm")
    # saved settings: an unknown key is ignored, the rest applied; a bad value is still refused
    assert post(alt, "/settings/saved/set/", {"logIntervalSec": 45, "nope": 1}, token=token).json() == {}
    assert get(alt, "/settings/saved/get/?logIntervalSec", token=token).json() == {"logIntervalSec": 45}
    assert_envelope(post(alt, "/settings/saved/set/", {"logIntervalSec": "x"}, token=token), 400, "invalid_value")
    # Modbus: the tid as a string, the registers under "data"
    tid = post(alt, "/modbus/req/", {"unit": 1, "func": 3, "addr": 0, "count": 2}, token=token).json()["tid"]
    assert isinstance(tid, str)
    control(alt, "advance", {"seconds": 1})
    answer = get(alt, f"/modbus/resp/?tid={tid}", token=token).json()
    assert answer["tid"] == tid and answer["status"] == "ok" and len(answer["data"]) == 2 and "values" not in answer
    # searches: other status words, the devices always listed, no template named
    templates = post(alt, "/modbus/class-find/search-meta-info/", {}, token=token).json()["templates"]
    assert templates[0]["name"] == "OB-215"
    assert post(alt, "/modbus/find/start/", {}, token=token).json() == {}
    result = get(alt, "/modbus/find/result/", token=token).json()
    assert result["status"] == "searching" and "devices" in result
    control(alt, "advance", {"seconds": 6})
    assert get(alt, "/modbus/find/result/", token=token).json()["status"] == "finished"
    assert post(alt, "/modbus/class-find/start/", {"template": "TH-1"}, token=token).json() == {}
    assert "template" not in get(alt, "/modbus/class-find/result/", token=token).json()
    # SD card: folders are "directory", a chunk has no size or eof, an ejected card lists nothing
    listing = post(alt, "/card/dir/", {"path": "/"}, token=token).json()
    assert {e["type"] for e in listing["entries"]} == {"file", "directory"}
    chunk = post(alt, "/card/file/read/", {"path": "/README.TXT"}, token=token).json()
    assert "data" in chunk and "eof" not in chunk and "size" not in chunk
    assert post(alt, "/cmd/memory/card_eject/", {}, token=token).json() == {}
    assert post(alt, "/card/dir/", {"path": "/"}, token=token).json() == {"path": "/", "entries": []}
    assert_envelope(post(alt, "/card/file/info/", {"path": "/README.TXT"}, token=token), 503, "card_not_mounted")


def test_alternative_answers_keep_to_the_document(alt):
    """What the document (with NOTES.md) gives stays as it is in the alternative reading."""
    from conformlab.schema import device_schema

    schema = device_schema("overvis-mc252")
    token = login(alt)
    for method, path, body in (("GET", "/state/get/", None), ("POST", "/modbus/req/", {"unit": 1, "func": 3, "addr": 0}),
                               ("POST", "/card/dir/", {"path": "/"}), ("GET", "/modbus/find/result/", None),
                               ("POST", "/modbus/class-find/search-meta-info/", {}), ("GET", "/version/", None)):
        response = get(alt, path, token=token) if method == "GET" else post(alt, path, body, token=token)
        op = schema.operation(method, path)
        assert schema.check_answer(op, response, readings=False) == [], path
        if path not in ("/version/", "/modbus/find/result/"):  # (an idle search looks the same in both readings)
            assert schema.check_answer(op, response), f"{path}: the alternative answer differs from the reading"


def test_alternative_reading_lets_a_salt_serve_again(alt, emu):
    one_salt = salt(alt)
    assert login_answer(alt, with_salt=one_salt).status_code == 200
    assert login_answer(alt, with_salt=one_salt).status_code == 200  # the salt is not consumed
    one_salt = salt(emu)
    assert login_answer(emu, with_salt=one_salt).status_code == 200
    assert_envelope(login_answer(emu, with_salt=one_salt), 401, "login_failed")  # default: one login per salt
