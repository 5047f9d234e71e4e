"""The HTTP client: Retry-After, pacing, a fresh connection after errors, masked transcripts."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from conformlab import secrets
from conformlab.auth import BasicAuth
from conformlab.client import DeviceClient, curl_line, render_exchange
from conformlab.profiles import RateBudget


class _Busy(http.server.BaseHTTPRequestHandler):
    """Answers 429 with Retry-After: 1 to the first request, 200 afterwards; counts requests."""

    protocol_version = "HTTP/1.1"
    seen: list[float] = []

    def do_GET(self):
        self.seen.append(time.monotonic())
        if len(self.seen) == 1:
            body, status, extra = b'{"error":"busy"}', 429, {"Retry-After": "1"}
        else:
            body, status, extra = b'{"ok":true}', 200, {}
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", "Content-Length": str(len(body)), **extra}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def busy_server():
    _Busy.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Busy.seen
    server.shutdown()


def test_retry_after_is_honoured_and_shown(busy_server):
    url, seen = busy_server
    client = DeviceClient(url, "/api")
    response = client.get("/x")
    assert response.status_code == 200 and len(seen) == 2
    assert seen[1] - seen[0] >= 0.95, "the retry waited for Retry-After"
    notes = [ex.note for ex in client.transcript if ex.note]
    assert notes == ["429: waited 1 s (Retry-After) and retried"]


def test_429_returned_as_is_when_asked(busy_server):
    url, seen = busy_server
    assert DeviceClient(url, "/api").get("/x", retry=False).status_code == 429 and len(seen) == 1


def test_pacer_keeps_under_the_budget(busy_server):
    url, seen = busy_server
    client = DeviceClient(url, "/api", rate_budget=RateBudget(requests=4, seconds=1))
    client.get("/x", retry=False)
    for _ in range(5):
        client.get("/x")
    window = [t for t in seen if t - seen[0] < 1.0]
    assert len(window) <= 3, f"{len(window)} requests in the first second with a budget of 4 (margin 1)"


def test_transcript_and_curl_mask_credentials():
    from conformlab.emulators import start_emulator

    with start_emulator("esp32-evse", auth={"username": "admin", "password": "client-test-pw"}) as emulator:
        client = DeviceClient(emulator.url, "/api/v1", auth=BasicAuth("admin", "client-test-pw"))
        assert client.post("/credentials", json={"user": "admin", "password": "client-test-pw"}).status_code == 200
        assert client.get("/info", auth=None).status_code == 401
        assert client.get("/info").status_code == 200  # a fresh connection after the error answer
        text = "\n".join(render_exchange(ex) + "\n" + curl_line(ex) for ex in client.transcript)
    assert "client-test-pw" not in text and "Authorization: Basic ***" in text
    assert secrets.mask("x client-test-pw y") == "x *** y"


def test_pacer_counts_only_the_documented_api(busy_server):
    """Requests outside the API prefix (an emulator's controls) neither wait for nor spend the budget."""
    url, seen = busy_server
    client = DeviceClient(url, "/api", rate_budget=RateBudget(requests=3, seconds=5))
    client.get("/x", retry=False)
    started = time.monotonic()
    for _ in range(4):
        client.get(url + "/__emulator__/counters")
    assert time.monotonic() - started < 1.0 and client.sent == 1
    client.get("/y")
    assert client.sent == 2 and len(client.pacer.sent) == 2


def test_answer_fields_that_look_secret_are_masked():
    """A token pair or a password in a device's JSON answer is masked wherever the exchange is shown."""
    secrets.register_fields({"pending": {"token_read": "answer-token-r1", "token_write": "answer-token-w1"},
                             "wifi": [{"password": "answer-wifi-pw"}], "password_enable": True, "count": 3})
    assert secrets.mask("answer-token-r1 answer-token-w1 answer-wifi-pw True 3") == "*** *** *** True 3"


def _generated_request():
    """A request as schemathesis makes it (the fuzz checks), for GET /api/x."""
    import schemathesis

    api = schemathesis.openapi.from_dict({"openapi": "3.0.3", "info": {"title": "busy", "version": "1"},
                                          "paths": {"/x": {"get": {"responses": {"200": {"description": "ok"}}}}}},
                                         config=schemathesis.Config())
    return api["/x"]["GET"].Case()


def test_generated_requests_honour_retry_after_too(busy_server):
    """Schemathesis sends straight through the session: Retry-After is honoured there, not only in request()."""
    url, seen = busy_server
    client = DeviceClient(url, "/api")
    response = _generated_request().call(base_url=client.base_url, session=client.session)
    assert response.status_code == 200 and len(seen) == 2
    assert seen[1] - seen[0] >= 0.95, "the retry waited for Retry-After"
    assert [ex.note for ex in client.transcript if ex.note] == ["429: waited 1 s (Retry-After) and retried"]


def test_generated_requests_get_the_429_as_it_is_without_retry(busy_server):
    url, seen = busy_server
    client = DeviceClient(url, "/api")
    with client.without_retry():
        response = _generated_request().call(base_url=client.base_url, session=client.session)
    assert response.status_code == 429 and len(seen) == 1
