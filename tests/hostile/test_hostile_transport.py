"""The transport against a hostile device (hostile_server.py plays it): every exchange within its
deadline, every answer within the size limit, no redirect followed and no credential at another
origin, a device that goes away in the middle recognised; for the one client, the login, generated
requests, a suites run and the load scenarios."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from hostile_server import HostileServer
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from conformlab import fuzz
from conformlab.auth import BasicAuth, BearerAuth, HeaderKeyAuth, LoginError, SaltLoginSession
from conformlab.client import MAX_ANSWER_BYTES, DeviceClient, DeviceError, DeviceGone, DeviceWentAway
from conformlab.dut import DeviceUnderTest
from conformlab.emulators import start_emulator
from conformlab.targets import Target
from conformlab.verdicts import NO_VERDICT

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "hostile-pw-9c2e71"  # random-looking: a plain word would be masked wherever it appears


def fails(client: DeviceClient, path: str = "/info") -> tuple[str, float]:
    """The one line a failed request gives, and how long it took."""
    start = time.monotonic()
    with pytest.raises(DeviceError) as caught:
        client.get(path)
    return str(caught.value), time.monotonic() - start


# -- every exchange has a deadline -------------------------------------------------------------------


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_dripping_device_gets_the_deadline_not_hours(part):
    """One byte every 0.5 s: each read succeeds, only a deadline for the whole exchange ends it."""
    with HostileServer("drip", part=part) as server:
        message, seconds = fails(DeviceClient(server.url, "/api/v1", timeout=2))
    assert message.endswith(": no complete answer within 2 s") and "\n" not in message, message
    assert seconds < 3, f"took {seconds:.1f} s"


def test_the_deadline_holds_on_a_reused_connection():
    with HostileServer("ok", paths={"/api/v1/slow": "drip"}, part="headers") as server:
        client = DeviceClient(server.url, "/api/v1", timeout=2)
        assert client.get("/info").status_code == 200  # the connection the next request reuses
        message, seconds = fails(client, "/slow")
        assert client.get("/info").status_code == 200
    assert message.endswith("no complete answer within 2 s") and seconds < 3, (message, seconds)


def test_the_deadline_holds_over_tls(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    with HostileServer("drip", part="body", tls=(str(cert), str(key))) as server:
        client = DeviceClient(server.url, "/api/v1", timeout=2)
        client.session.verify = str(cert)
        message, seconds = fails(client)
    assert server.url.startswith("https://") and message.endswith("no complete answer within 2 s"), message
    assert seconds < 3, f"took {seconds:.1f} s"


def test_the_login_has_a_deadline_too():
    with HostileServer("ok", paths={"/api/login/salt/": "drip"}, part="body") as server:
        login = SaltLoginSession("admin", PASSWORD, prefix="/api", salt_path="/login/salt/", login_path="/login/",
                                 timeout=2)
        message, seconds = fails(DeviceClient(server.url, "/api", auth=login, timeout=2), "/settings/saved/get/")
    assert message.endswith("no complete answer within 2 s") and seconds < 3, (message, seconds)


def test_a_hung_device_gets_the_deadline():
    with HostileServer("hang") as server:
        message, seconds = fails(DeviceClient(server.url, "/api/v1", timeout=1))
    assert message.endswith("no complete answer within 1 s") and seconds < 2, (message, seconds)


# -- every answer has a size limit -----------------------------------------------------------------------

# Run in a process of its own, so that its peak memory is the request's alone. Without a size limit
# the answer would fill the memory: a guard ends the process at 500 MiB of growth instead.
MEMORY_CHILD = r"""
import json, os, resource, sys, threading, time
from conformlab.client import DeviceClient, DeviceError

def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

client = DeviceClient(sys.argv[1], "/api/v1", timeout=float(sys.argv[2]))
baseline = peak_mib()

def guard():
    while peak_mib() - baseline < 500:
        time.sleep(0.02)
    print(json.dumps({"message": "memory grew past 500 MiB", "seconds": 0, "growth_mib": peak_mib() - baseline}), flush=True)
    os._exit(3)

threading.Thread(target=guard, daemon=True).start()
start = time.monotonic()
try:
    client.get("/info")
    message = "a whole answer"
except DeviceError as exc:
    message = str(exc)
print(json.dumps({"message": message, "seconds": time.monotonic() - start, "growth_mib": peak_mib() - baseline}))
"""


@pytest.mark.parametrize("behaviour, options", [
    ("endless", {"framing": "chunked"}),
    ("endless", {"framing": "close"}),
    ("huge", {}),
], ids=["endless-chunked", "endless-unlengthed", "huge"])
def test_an_answer_without_end_is_cut_at_the_size_limit(behaviour, options):
    with HostileServer(behaviour, **options) as server:
        child = subprocess.run([sys.executable, "-c", MEMORY_CHILD, server.url, "10"], capture_output=True, text=True,
                               timeout=60)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["message"].endswith(f": answer larger than {MAX_ANSWER_BYTES} bytes"), result
    assert result["seconds"] < 5, result
    assert result["growth_mib"] < 100, f"peak memory grew by {result['growth_mib']:.0f} MiB"


def test_the_size_limit_is_the_clients_and_answers_below_it_are_whole():
    big = {"values": ["x" * 1000] * 1000}  # about 1 MB: more than any answer of the four documents
    with HostileServer("ok", json=big) as server:
        assert DeviceClient(server.url, "/api/v1").get("/info").json() == big
        message, _ = fails(DeviceClient(server.url, "/api/v1", max_answer_bytes=100_000))
    assert message.endswith("answer larger than 100000 bytes"), message


def test_an_answer_broken_off_or_not_http_is_one_line():
    with HostileServer("reset") as server:
        reset, seconds = fails(DeviceClient(server.url, "/api/v1", timeout=2))
    with HostileServer("garbage") as server:
        garbage, _ = fails(DeviceClient(server.url, "/api/v1", timeout=2))
    assert "the answer broke off in the middle of its body" in reset and seconds < 1, reset
    assert "not HTTP" in garbage and "\n" not in reset + garbage, garbage


# -- no redirect is followed; no credential goes to another origin ---------------------------------------

CREDENTIALS = {
    "basic": lambda: BasicAuth("admin", PASSWORD),
    "bearer": lambda: BearerAuth(PASSWORD),
    "Authorized": lambda: BearerAuth(PASSWORD, ("Authorized",)),
    "apiKey": lambda: HeaderKeyAuth("apiKey", PASSWORD),
    "X-API-KEY": lambda: HeaderKeyAuth("X-API-KEY", PASSWORD),
}


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("credential", sorted(CREDENTIALS))
def test_a_redirect_is_the_answer_and_credentials_stay_home(status, credential):
    with HostileServer("redirect", status=status) as server:
        client = DeviceClient(server.url, "/api/v1", auth=CREDENTIALS[credential]())
        assert client.get("/info").status_code == status
        assert client.post("/config", json={"a": 1}).status_code == status
        # Whatever a caller asks of requests: the session follows nothing.
        assert client.session.get(client.url("/info"), allow_redirects=True).status_code == status
        with pytest.raises(DeviceError, match="refusing to send to another origin"):
            client.session.get(server.recorder.url + "/api/v1/info")
        reached, elsewhere = len(server.requests), server.recorder.requests
    assert reached == 3 and elsewhere == [], [r.text() for r in elsewhere]


@pytest.mark.parametrize("redirected", ["/api/login/salt/", "/api/login/"])
def test_the_mc252_login_never_follows_a_redirect(redirected):
    """A redirected salt or login would send the salted hash to another host (an offline attack on
    the password); it is a login failure in one line instead."""
    answers = {"/api/login/salt/": "ok", "/api/login/": "ok", redirected: "redirect"}
    with HostileServer("ok", paths=answers, json={"salt": "hostile-salt", "token": "hostile-token-4e1"}) as server:
        login = SaltLoginSession("admin", PASSWORD, prefix="/api", salt_path="/login/salt/", login_path="/login/",
                                 headers=("Authorized", "Authorization"))
        message, _ = fails(DeviceClient(server.url, "/api", auth=login), "/settings/saved/get/")
        elsewhere = server.recorder.requests
    method = "GET" if redirected.endswith("salt/") else "POST"
    assert f"LoginError: {method} {redirected} answered 307, a redirect: not followed" in message, message
    assert elsewhere == [] and PASSWORD not in message and "\n" not in message


def test_a_logged_in_session_token_is_not_carried_to_another_origin():
    json_answer = {"salt": "hostile-salt", "token": "hostile-token-8d2"}
    with HostileServer("redirect", paths={"/api/login/salt/": "ok", "/api/login/": "ok"}, json=json_answer) as server:
        login = SaltLoginSession("admin", PASSWORD, prefix="/api", salt_path="/login/salt/", login_path="/login/",
                                 logout_path="/cmd/logout/", headers=("Authorized", "Authorization"))
        client = DeviceClient(server.url, "/api", auth=login)
        assert client.get("/settings/saved/get/").status_code == 307 and login.token == "hostile-token-8d2"
        login.log_out(client.base_url)
        paths = [r.path for r in server.requests]
        elsewhere = server.recorder.requests
    assert paths == ["/api/login/salt/", "/api/login/", "/api/settings/saved/get/", "/api/cmd/logout/"], paths
    assert elsewhere == [], [r.text() for r in elsewhere]


def test_the_login_error_names_the_redirect_directly():
    with HostileServer("redirect", status=302) as server:
        login = SaltLoginSession("admin", PASSWORD, prefix="/api", salt_path="/login/salt/", login_path="/login/")
        with pytest.raises(LoginError, match=r"^GET /api/login/salt/ answered 302, a redirect: not followed"):
            login.log_in(server.url + "/api")
        assert server.recorder.requests == []


@pytest.mark.parametrize("device, path, credential", [
    ("esp32-evse", "/info", "basic"),
    ("esp32-evse", "/info", "X-API-KEY"),
    ("wcc-lite", "/version", "apiKey"),
])
def test_generated_requests_do_not_follow_a_redirect(device, path, credential):
    """Schemathesis follows redirects unless told otherwise; through the target's session it cannot."""
    with HostileServer("redirect", status=307) as server:
        target = Target(name="bench", device=device, base_url=server.url, emulator=False)
        client = DeviceClient(server.url, target.profile.prefix, auth=CREDENTIALS[credential](), timeout=5)
        dut = DeviceUnderTest(target, client)
        op = dut.schema.operation("GET", path)
        fuzz.run_generated(dut, fuzz.load(dut.schema), op, GenerationMode.POSITIVE, [not_a_server_error], 3)
        statuses = {ex.response.status_code for ex in client.transcript if ex.response is not None}
        reached, elsewhere = len(server.requests), server.recorder.requests
    assert reached >= 1 and statuses == {307}, statuses
    assert elsewhere == [], [r.text() for r in elsewhere]


# -- a device that goes away in the middle ---------------------------------------------------------------


def test_a_device_that_reboots_by_itself_is_recognised_and_waited_for():
    with start_emulator("esp32-evse", boot_seconds=2.0) as emu:
        client = DeviceClient(emu.url, "/api/v1", probe_path="/info", restart_timeout=10, name="bench")
        assert client.get("/info").status_code == 200
        emu.emulator.restart(0.0)  # not asked for by the harness
        time.sleep(0.3)
        with pytest.raises(DeviceWentAway) as caught:
            client.get("/state")
        assert client.get("/info").status_code == 200, "it answers again"
    away = caught.value
    assert 1.0 <= away.seconds < 5, away.seconds
    assert str(away) == f"the device went away for {away.seconds:.1f} s during this check (it answers again)"
    notes = [ex.note for ex in client.transcript if ex.note]
    assert notes == [f"the device went away for {away.seconds:.1f} s (not a restart the harness asked for)"], notes


def test_a_device_that_goes_away_for_good_ends_the_talk():
    with start_emulator("esp32-evse", boot_seconds=30.0) as emu:
        client = DeviceClient(emu.url, "/api/v1", probe_path="/info", restart_timeout=2, name="bench")
        assert client.get("/info").status_code == 200
        emu.emulator.restart(0.0)
        time.sleep(0.3)
        start = time.monotonic()
        with pytest.raises(DeviceGone, match=r"went away during GET /api/v1/state and did not come back within 2 s"):
            client.get("/state")
        assert time.monotonic() - start < 5 and client.gone
        with pytest.raises(DeviceGone, match="nothing more is sent to it"):
            client.get("/info")


def test_a_failure_of_one_request_is_no_outage_when_the_device_answers():
    with HostileServer("ok", paths={"/api/v1/broken": "reset"}) as server:
        client = DeviceClient(server.url, "/api/v1", probe_path="/info", restart_timeout=10)
        assert client.get("/info").status_code == 200
        with pytest.raises(DeviceError) as caught:
            client.get("/broken")
    assert type(caught.value) is DeviceError and "broke off" in str(caught.value)
    assert not client.gone


# -- a suites run, and the load scenarios ----------------------------------------------------------------


def test_a_suites_run_against_a_dripping_device_ends_in_time_with_one_clear_line(tmp_path):
    with HostileServer("drip", part="headers") as server:
        targets = tmp_path / "targets.toml"
        targets.write_text(f'[targets.bench]\ndevice = "esp32-evse"\nbase_url = "{server.url}"\ntimeout = 2\n')
        started = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "pytest", "suites", f"--targets-file={targets}", "--target=bench",
                              "-p", "no:cacheprovider", "-q", "-k", "test_read_answer_matches or left_as_found",
                              f"--html={tmp_path / 'r.html'}", f"--junitxml={tmp_path / 'r.xml'}"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "HOME": str(tmp_path)})
        seconds = time.monotonic() - started
    output = run.stdout + run.stderr
    assert run.returncode == NO_VERDICT, output[-3000:]
    assert "no complete answer within 2 s" in output, output[-3000:]
    assert "Traceback" not in output and "MaxRetryError" not in output, output[-3000:]
    assert seconds < 45, f"took {seconds:.0f} s"


# In a process of its own: importing locust monkey-patches the standard library with gevent.
LOAD_CHILD = r"""
import locust  # first, as in the runner
import json, sys, time
from locust.clients import HttpSession
from locust.event import EventHook
from conformlab.load import scenario

scenario.REQUEST_TIMEOUT = float(sys.argv[2])
host = sys.argv[1] + "/api/v1"
start = time.monotonic()
record = scenario.send(host, "/system/info", source="", auth=None, kind="rate", phase="recovery")
send_seconds = time.monotonic() - start
user_client = HttpSession(host, request_event=EventHook(), user=None)  # what a DeviceUser sends with
scenario.bound(user_client, "")
start = time.monotonic()
answer = user_client.get("/system/info", timeout=scenario.REQUEST_TIMEOUT, allow_redirects=False)
print(json.dumps({"send": [record["error"], send_seconds], "user": [str(answer.error), time.monotonic() - start]}))
"""


def test_the_load_scenarios_sessions_are_bounded():
    with HostileServer("drip", part="headers") as server:
        child = subprocess.run([sys.executable, "-c", LOAD_CHILD, server.url, "2"], capture_output=True, text=True,
                               timeout=60)
    assert child.returncode == 0, child.stderr[-2000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    for who, (error, seconds) in result.items():
        assert "no complete answer within 2 s" in error and seconds < 3, (who, error, seconds)


def test_a_plain_session_would_have_followed():
    """The hostile server's redirect is real: an ordinary requests session carries the custom
    credential header to the recorder (what the bounded transport prevents)."""
    with HostileServer("redirect", status=307) as server, requests.Session() as plain:
        plain.trust_env = False
        assert plain.get(server.url + "/x", headers={"X-API-KEY": "followed-key"}, timeout=5).status_code == 200
        got = server.recorder.requests
    assert len(got) == 1 and ("X-API-KEY", "followed-key") in got[0].headers

