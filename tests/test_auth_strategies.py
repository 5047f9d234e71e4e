"""Auth strategies against the emulators that need them: the MC252's salt login session (once per
run, again after it lapses, never per request; hash and token masked) and the WCC Lite's apiKey."""

from __future__ import annotations

import hashlib
import re

import requests

from conformlab import secrets
from conformlab.auth import HeaderKeyAuth, SaltLoginSession
from conformlab.client import DeviceClient, render_exchange
from conformlab.emulators import start_emulator
from emulator_controls import control

PASSWORD = "strategy-test-pw"


def mc252_session() -> SaltLoginSession:
    return SaltLoginSession("admin", PASSWORD, prefix="/api", salt_path="/login/salt/", login_path="/login/",
                            headers=("Authorized", "Authorization"))


def test_salt_login_once_and_again_after_the_session_lapsed():
    with start_emulator("overvis-mc252", auth={"login": "admin", "password": PASSWORD}) as emu:
        session = mc252_session()
        client = DeviceClient(emu.url, "/api", auth=session)
        for _ in range(3):
            assert client.get("/settings/saved/get/").status_code == 200  # level 1
        assert session.logins == 1, "the session is obtained once, not per request"
        control(emu, "advance", {"seconds": 61})  # "ttlSec": 60
        assert client.get("/settings/saved/get/").status_code == 200
        assert session.logins == 2, "a lapsed session is obtained again"
        token = session.token
        text = "\n".join(render_exchange(ex) for ex in client.transcript)
    assert token and token not in text and PASSWORD not in text
    assert secrets.mask(token) == secrets.MASK


def sha1_like_secrets() -> set[str]:
    return {value for value in secrets._secrets if re.fullmatch(r"[0-9a-f]{40}", value)}


def test_salt_login_registers_the_hash_it_sends():
    with start_emulator("overvis-mc252", auth={"login": "admin", "password": PASSWORD}) as emu:
        before = sha1_like_secrets()
        session = mc252_session()
        assert requests.get(emu.url + "/api/settings/saved/get/", auth=session, timeout=5).status_code == 200
    new = sha1_like_secrets() - before
    assert len(new) == 1, "the SHA1 hash sent at login is masked wherever it could show"
    assert new != {hashlib.sha1(f"admin{PASSWORD}".encode()).hexdigest()}, "the hash includes the salt"


def test_header_key_auth_passes_and_is_masked():
    with start_emulator("wcc-lite", auth={"api_key": "strategy-key-123"}) as emu:
        client = DeviceClient(emu.url, "/api", auth=HeaderKeyAuth("apiKey", "strategy-key-123"))
        assert client.get("/version").status_code == 200
        assert client.get("/version", auth=None).status_code == 401
        text = "\n".join(render_exchange(ex) for ex in client.transcript)
    assert "strategy-key-123" not in text and "apiKey: ***" in text


def test_headers_auth_sends_its_lines_in_order_and_replaces_the_session_credentials():
    """A near miss's raw header lines (conformlab.near_miss): a repeated name goes out as two lines,
    and the session's own credentials are not sent along."""
    import http.server
    import threading

    from conformlab.auth import BasicAuth, HeadersAuth

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.headers.get_all("Authorization"), self.headers.get_all("apiKey")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = DeviceClient(f"http://127.0.0.1:{server.server_port}", "/api", auth=BasicAuth("admin", "strategy-pw-1"))
        lines = HeadersAuth(("apiKey", "first-value"), ("apiKey", "second-value"))
        assert client.get("/x", auth=lines).status_code == 200
        text = render_exchange(client.transcript[-1])
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [(None, ["first-value", "second-value"])]
    assert "> apiKey: ***" in text and "-value" not in text
