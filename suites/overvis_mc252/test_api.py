"""The API's conventions: the error envelope on every error answer, appropriate error statuses,
keep-alive, and schemathesis's property-based requests against schemas/overvis-mc252.yaml."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from conformlab.client import DeviceError, deadline_for
from conformlab.checks import answer, ids
from conformlab.fuzz import load, require_fuzzable, run_generated
from conformlab.verdicts import not_verified, requirement
from suites.overvis_mc252.mc252 import CHECKS, OPS, SCHEMA, assert_envelope, require_login, unknown_token

# Error answers to provoke: (id, method, path, JSON body or raw bytes, session?, statuses the document
# makes "appropriate"; None where only our reading says it is an error, so only its envelope is checked).
ERRORS = [
    ("unknown-path", "GET", "/conformlab-no-such-path/", None, False, (404,)),
    ("unknown-path-logged-in", "GET", "/conformlab-no-such-path/", None, True, (404,)),
    ("without-trailing-slash", "GET", "/version", None, False, None),
    ("unsupported-method", "DELETE", "/version/", None, False, (404, 405)),
    ("guest-on-level-1", "GET", "/settings/active/get/", None, False, (401, 403)),
    ("unknown-token-on-level-1", "POST", "/card/dir/", {"path": "/"}, "unknown", (401, 403)),
    ("malformed-json", "POST", "/settings/saved/set/", b'{"logIntervalSec": ', True, (400,)),
    ("unknown-state-key", "GET", "/state/get/?conformlab", None, True, None),
    ("state-key-with-a-value", "GET", "/state/get/?ethernet=1", None, True, None),
    ("unknown-tid", "GET", "/modbus/resp/?tid=999999999", None, True, None),
    ("missing-card-file", "POST", "/card/file/info/", {"path": "/conformlab-no-such-file"}, True, None),
    ("unknown-template", "POST", "/modbus/class-find/start/", {"template": "conformlab-no-such-template"}, True, None),
]


@pytest.mark.req("MC252-ERROR-ENVELOPE", "MC252-ERROR-STATUS")
@pytest.mark.parametrize("method, path, body, session, statuses", [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS])
def test_error_answers_carry_the_envelope(device, method, path, body, session, statuses):
    if session is True:
        require_login(device)
    kwargs = {} if session is True else {"auth": None if session is False else unknown_token()}
    if isinstance(body, bytes):
        kwargs.update(body=body, content_type="application/json")
    elif body is not None:
        kwargs["json"] = body
    response = device.client.request(method, path, **kwargs)
    if path == "/modbus/class-find/start/" and response.status_code == 200:
        device.client.post("/modbus/class-find/stop/", json={})  # a device that started a search frees the bus
    with requirement("MC252-ERROR-STATUS"):
        assert response.status_code < 500, f"a bad request is the client's error, not the device's: {answer(response)}"
        if statuses is not None:
            assert response.status_code in statuses, f"expected {' or '.join(map(str, statuses))}: {answer(response)}"
    if response.status_code < 400:
        # Only this project's reading makes it an error (statuses None): binding on the emulator.
        device.reading(False, f"{method} {path} answered {response.status_code}, which this project's reading makes an error")
        not_verified(f"answered {response.status_code}: not an error on this device, so no envelope to check")
    assert_envelope(response, f"{method} {path}")


@pytest.mark.req("MC252-KEEPALIVE")
def test_keep_alive_serves_several_requests_on_one_connection(device):
    """Three requests on one HTTP/1.1 connection: none may say `Connection: close`, and the
    connection must still be there for the next one (a device that drops it silently fails)."""
    url = urlsplit(device.client.base_url)
    factory = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    connection = factory(url.hostname, url.port, timeout=device.target.timeout)
    try:
        connection.connect()
        first_socket = connection.sock
        for number in range(1, 4):
            with deadline_for(connection.sock, device.target.timeout) as deadline:  # bounded, as every exchange
                try:
                    connection.request("GET", url.path + "/version/", headers={"Connection": "keep-alive"})
                    response = connection.getresponse()
                    body = response.read(device.client.max_answer_bytes + 1)
                except (http.client.HTTPException, OSError) as exc:
                    late = f"no complete answer within {device.target.timeout:g} s: " if deadline.expired else ""
                    raise AssertionError(f"request {number} on the kept-alive connection failed: {late}{type(exc).__name__}: {exc}") from None
            if len(body) > device.client.max_answer_bytes:  # the transport's limit: no verdict, as everywhere
                raise DeviceError(f"request {number}: answer larger than {device.client.max_answer_bytes} bytes")
            assert response.status == 200, f"request {number}: GET /api/version/ answered {response.status}"
            assert not response.will_close, f"answer {number} closes the connection (Connection: {response.getheader('Connection')})"
            assert connection.sock is first_socket, f"request {number} needed a new connection"
    finally:
        connection.close()


EXAMPLES = 6  # per operation: bounded, repeatable (derandomized)
API = load(SCHEMA)
FUZZED = [op for op in OPS if op.fuzz and op.path != "/login/"]  # logins are checked one by one
CHECKS_RUN = [
    openapi_checks.status_code_conformance,  # 500 is never declared: any 500 fails
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,  # the envelope on every declared error
]


@pytest.mark.req("MC252-ANSWER-SHAPES", "MC252-ERROR-ENVELOPE")
@pytest.mark.parametrize("op", FUZZED, ids=ids(FUZZED))
def test_generated_requests_get_documented_answers(device, op):
    require_login(device)
    require_fuzzable(device, op)
    with CHECKS.restoring(device, op):
        run_generated(device, API, op, GenerationMode.POSITIVE, CHECKS_RUN, EXAMPLES)
