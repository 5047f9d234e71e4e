"""The emulator core (conformlab.emulators.core) on a small device of its own: routes as data with
{name} segments, 404 and 405, the auth hook, the body kinds, the one error type rendered in the
device's envelope, the fault switch, and the shared controls (counters, reset, advance, restart)."""

from __future__ import annotations

import time

import pytest
import requests

from conformlab.emulators import JSON, RAW, FORM, DeviceEmulator, Refused, Response, Route
from conformlab.emulators.core import MalformedBody, json_value, multipart_form
from conformlab.emulators.server import serve


class Lamp(DeviceEmulator):
    """A lamp with a brightness, a name, a firmware upload and a form; "admin" needs a key."""

    NAME = "lamp"
    PREFIX = "/api"
    FAULTS = {"open_admin": "admin needs the key"}
    ROUTES = (
        Route("GET", "/brightness", "get_brightness"),
        Route("POST", "/brightness", "set_brightness", JSON),
        Route("GET", "/things/{thing}", "get_thing"),
        Route("POST", "/firmware", "firmware", RAW, access="admin"),
        Route("POST", "/form", "form", FORM),
    )

    def __init__(self, faults=(), auth=None) -> None:
        super().__init__(faults, auth)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.brightness = 10
        self.counters = {"writes": 0, "boots": 0}

    def boot(self) -> None:
        self.count("boots")

    def authorize(self, req, route):
        if route.access == "admin" and req.headers.get("X-Key") != "k" and not self.fault("open_admin"):
            return self.error(401, "key needed")
        return None

    def method_not_allowed(self, req, allowed):
        return self.error(405, headers={"Allow": ", ".join(allowed)})

    def error(self, status, detail=None, headers=None, *, code=None):
        return Response.json({"error": detail or str(status), "code": code}, status, headers)

    def get_brightness(self, req):
        return Response.json({"brightness": self.brightness, "at": round(self.now())})

    def set_brightness(self, req):
        if not isinstance(req.data, int) or isinstance(req.data, bool) or not 0 <= req.data <= 100:
            raise Refused("brightness: 0 to 100", code="range")
        self.brightness = req.data
        self.count("writes")
        return Response.json({"brightness": self.brightness})

    def get_thing(self, req):
        if req.params["thing"] == "missing":
            raise Refused("no such thing", 404)
        return Response.json({"thing": req.params["thing"]})

    def firmware(self, req):
        return Response.json({"size": len(req.data)})

    def form(self, req):
        return Response.json({name: part.text for name, part in req.data.items()})


@pytest.fixture
def lamp():
    with serve(Lamp()) as running:
        yield running


def call(lamp, method, path, **kw):
    return requests.request(method, lamp.url + path, timeout=5, **kw)


def test_routes_params_404_405(lamp):
    assert call(lamp, "GET", "/api/brightness").json()["brightness"] == 10
    assert call(lamp, "GET", "/api/things/chair").json() == {"thing": "chair"}
    missing = call(lamp, "GET", "/api/things/missing")
    assert missing.status_code == 404 and missing.json() == {"error": "no such thing", "code": None}
    assert call(lamp, "GET", "/api/nothing").status_code == 404
    assert call(lamp, "GET", "/elsewhere").status_code == 404
    wrong = call(lamp, "DELETE", "/api/brightness")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "GET, POST"


def test_json_body_and_the_one_error_type(lamp):
    assert call(lamp, "POST", "/api/brightness", json=55).json() == {"brightness": 55}  # a bare scalar
    refused = call(lamp, "POST", "/api/brightness", json=101)
    assert refused.status_code == 400 and refused.json() == {"error": "brightness: 0 to 100", "code": "range"}
    for body in (b"NaN", b"{", b"\xff"):
        malformed = call(lamp, "POST", "/api/brightness", data=body)
        assert malformed.status_code == 400 and malformed.json()["error"].startswith("malformed JSON")
    assert call(lamp, "GET", "/__emulator__/counters").json() == {"writes": 1, "boots": 0}


def test_raw_body_and_the_auth_hook():
    with serve(Lamp()) as lamp:
        assert call(lamp, "POST", "/api/firmware", data=b"\x00" * 7).status_code == 401
        assert call(lamp, "POST", "/api/firmware", data=b"\x00" * 7, headers={"X-Key": "k"}).json() == {"size": 7}
    with serve(Lamp(faults=["open_admin"])) as lamp:
        assert call(lamp, "POST", "/api/firmware", data=b"x").status_code == 200
    with pytest.raises(ValueError, match="unknown fault"):
        Lamp(faults=["nope"])
    with pytest.raises(KeyError):
        Lamp().fault("nope")


def test_form_body(lamp):
    answer = call(lamp, "POST", "/api/form", files={"a": (None, "one"), "f": ("f.bin", b"two")})
    assert answer.json() == {"a": "one", "f": "two"}
    assert call(lamp, "POST", "/api/form", data=b"x", headers={"Content-Type": "text/plain"}).status_code == 400


def test_controls_reset_advance_restart(lamp):
    call(lamp, "POST", "/api/brightness", json=70)
    before = call(lamp, "GET", "/api/brightness").json()["at"]
    assert call(lamp, "POST", "/__emulator__/advance", json={"seconds": 3600}).json() == {"advanced": 3600}
    assert call(lamp, "GET", "/api/brightness").json()["at"] >= before + 3600
    assert call(lamp, "POST", "/__emulator__/advance", json={"seconds": -1}).status_code == 400
    call(lamp, "POST", "/__emulator__/reset")
    assert call(lamp, "GET", "/api/brightness").json()["brightness"] == 10
    for wrong in ({"boot_seconds": True}, {"boot_seconds": -1}, {"other": 1}, [1]):
        assert call(lamp, "POST", "/__emulator__/restart", json=wrong).status_code == 400
    assert call(lamp, "POST", "/__emulator__/restart", json={"boot_seconds": 0.5}).json() == {"bootSeconds": 0.5}
    time.sleep(0.2)
    with pytest.raises(requests.ConnectionError):  # off the network while it boots
        call(lamp, "GET", "/api/brightness")
    time.sleep(0.6)
    assert call(lamp, "GET", "/api/brightness").status_code == 200
    assert call(lamp, "GET", "/__emulator__/counters").json()["boots"] == 1
    assert call(lamp, "GET", "/__emulator__/nothing").status_code == 404


def test_json_value_is_strict():
    assert json_value(b'"x"') == "x" and json_value(b"[1]") == [1]
    for text in (b"NaN", b"Infinity", b"", b"\xff"):
        with pytest.raises(MalformedBody):
            json_value(text)


def test_multipart_form():
    body = (b"preamble\r\n--xyz\r\nContent-Disposition: form-data; name=\"device_alias\"\r\n\r\nINV1\r\n"
            b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.sysupgrade\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n\r\n--xy\x00\xff\r\n"
            b"--xyz\r\nContent-Disposition: form-data; name=\"f2\"; filename*=UTF-8''%C3%A4.xlsx\r\n\r\n\r\n"
            b"--xyz\r\nContent-Disposition: attachment; name=\"ignored\"\r\n\r\nx\r\n"
            b"--xyz\r\n\r\nno headers\r\n"
            b"--xyz--")
    parts = multipart_form(body, "multipart/form-data; boundary=xyz")
    assert set(parts) == {"device_alias", "file", "f2"}
    assert parts["device_alias"].text == "INV1" and parts["device_alias"].filename is None
    assert parts["file"].filename == "a b.sysupgrade" and parts["file"].content == b"\r\n--xy\x00\xff"
    assert parts["f2"].filename == "ä.xlsx" and parts["f2"].content == b""
    for bad_body, ctype in [(body, "multipart/form-data"), (b"no boundary here", "multipart/form-data; boundary=xyz"),
                            (body.replace(b"--xyz--", b""), "multipart/form-data; boundary=xyz"),
                            (b"--xyz\r\nContent-Disposition form-data\r\n\r\nx\r\n--xyz--",
                             "multipart/form-data; boundary=xyz"),
                            (b"--xyzjunk\r\n\r\nx\r\n--xyz--", "multipart/form-data; boundary=xyz"),
                            (body, "multipart/mixed; boundary=xyz")]:
        with pytest.raises(MalformedBody):
            multipart_form(bad_body, ctype)


def test_https_with_a_throwaway_ca_is_verified():
    """tls: a certificate from a test CA; the client verifies it with the CA's PEM, and a client
    without it is refused. A connection that never finishes its handshake holds up no one else."""
    import socket

    with serve(Lamp(), tls=True) as lamp:
        assert lamp.url.startswith("https://127.0.0.1:") and lamp.ca_file
        stalled = socket.create_connection((lamp.host, lamp.port))  # no ClientHello ever
        try:
            answer = requests.get(lamp.url + "/api/brightness", verify=lamp.ca_file, timeout=5)
            assert answer.status_code == 200
            with pytest.raises(requests.exceptions.SSLError):
                requests.get(lamp.url + "/api/brightness", timeout=5)  # the system CAs do not know it
        finally:
            stalled.close()
        ca_file = lamp.ca_file
    assert not __import__("os").path.exists(ca_file)  # the throwaway CA goes with the emulator
