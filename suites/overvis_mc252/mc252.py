"""What the Overvis MC252 checks share: operations by access level (from the schema), the request
each operation gets, sessions of their own for checks that end or spoil one, and putting back what a
command changed.

Everything endpoint-related comes from schemas/overvis-mc252.yaml (`x-conformlab.level` is the
document's "Access Level" column), so a new operation there gets its access and answer checks
without touching the suites. The run's own session (the profile's SaltLoginSession) logs in once and
again only when the device says it lapsed; checks that log out, let a session lapse or replay a login
use sessions of their own (`log_in`).
"""

from __future__ import annotations

import base64
import contextlib
import time

import pytest

from conformlab.auth import BearerAuth, salted_sha1
from conformlab.checks import DeviceChecks, answer, wait_until
from conformlab.client import DeviceError, expect_json
from conformlab.dut import DeviceUnderTest
from conformlab.profiles import MC252_TOKEN_HEADERS, mc252_session
from conformlab.schema import Operation, device_schema

SCHEMA = device_schema("overvis-mc252")
OPS = SCHEMA.operations
REFUSAL_STATUSES = (401, 403)  # the document says "an error status" only; these two mean "not allowed"
BUTTON_HINT = "if the front-panel button was pressed in the last 10 minutes, every guest has level 1"
SETTINGS = "/settings/saved/get/"
# Settings keys whose change nobody notices for the seconds a check holds it (the keys are the
# emulator's reading of a flat settings set; a device without them skips the write checks).
HARMLESS_SETTINGS = ("logIntervalSec", "deviceName")
SCRATCH_FILE = "/conformlab-scratch.txt"  # the only card file a run writes or removes
SCRATCH_DATA = b"conformlab scratch file: safe to delete\n"
MODBUS_READ = {"unit": 1, "func": 3, "addr": 0, "count": 2}  # read two holding registers: changes nothing
REBOOT_SECONDS = 180  # how long a restarting controller may take to answer again
GOING_DOWN_SECONDS = 30  # real firmware answers the restart command first and goes down a moment later
ACTIVE = "/settings/active/get/"
# Answers whose form the document (with NOTES.md) gives. Every other answer's form is the emulator's
# reading: a device that answers in another form is not wrong about the document, so on hardware such
# a check is left unverified (a skip that says so) instead of failed. The emulator must match it.
DOCUMENTED_ANSWERS = frozenset({"/version/", "/login/salt/", "/login/", "/cmd/logout/", "/settings/active/get/",
                                "/settings/saved/get/", "/settings/saved/set/"})


def level(op: Operation) -> int:
    return op.extension["level"]


GUEST_OPS = [op for op in OPS if level(op) == 0]
PROTECTED_OPS = [op for op in OPS if level(op) >= 1]


def unknown_token() -> BearerAuth:
    return BearerAuth("conformlab-not-a-session-token", MC252_TOKEN_HEADERS, secret=False)


def require_login(device: DeviceUnderTest) -> dict[str, str]:
    if not device.has_credentials:
        pytest.skip(f"{device.target.name} has no login: give [targets.{device.target.name}.auth] login and password")
    return device.credentials


# -- sessions of a check's own ------------------------------------------------------------------


def fresh_salt(device: DeviceUnderTest) -> str:
    return expect_json(device.client.get("/login/salt/", auth=None))["salt"]


def send_login(device: DeviceUnderTest, username: str, digest: str):
    return device.client.post("/login/", json={"username": username, "password": digest}, auth=None)


def salted_login(device: DeviceUnderTest):
    """The document's login, step by step through the run's client (its exchanges are the check's):
    (the hash sent, the answer)."""
    credentials = require_login(device)
    digest = salted_sha1(credentials["login"], credentials["password"], fresh_salt(device))
    return digest, send_login(device, credentials["login"], digest)


def log_in(device: DeviceUnderTest) -> str:
    """A new session of the target's login (not the run's), by the profile's own strategy: its token."""
    return mc252_session(require_login(device)).log_in(device.client.base_url)


def with_token(token: str, headers: tuple[str, ...] = MC252_TOKEN_HEADERS) -> BearerAuth:
    return BearerAuth(token, headers)


def log_out(device: DeviceUnderTest, token: str):
    return device.client.post("/cmd/logout/", json={}, auth=with_token(token))


@contextlib.contextmanager
def own_session(device: DeviceUnderTest):
    """A session for one check; logged out afterwards (whatever the check did to it)."""
    token = log_in(device)
    try:
        yield token
    finally:
        log_out(device, token)


def run_token(device: DeviceUnderTest) -> str:
    """The run's session token (logging in if the run has not yet)."""
    require_login(device)
    device.client.get(device.profile.probe_path)
    return device.client.session.auth.token


# -- answers ---------------------------------------------------------------------------------------


def as_read(device: DeviceUnderTest, holds: bool, what: str) -> None:
    """For what only our reading says (an answer's form the document does not give): it must hold on
    the emulator; on real hardware an answer in another form leaves the check unverified."""
    if holds:
        return
    if device.target.emulator:
        raise AssertionError(what)
    pytest.skip(f"not verified: {what} -- the document gives no form for this; the check follows the emulator's reading")


def read_json(device: DeviceUnderTest, response, what: str) -> dict:
    """The JSON object a request of our reading gets (200), or an unverified skip on hardware."""
    ok = response.status_code == 200 and response.headers.get("Content-Type", "").startswith("application/json")
    as_read(device, ok and isinstance(response.json(), dict), f"{what}: {answer(response)}")
    return response.json()


def assert_shape(device: DeviceUnderTest, op: Operation, response) -> None:
    """The answer against the schema: binding where the document gives the form, else `as_read`."""
    problems = SCHEMA.check_answer(op, response)
    if op.path in DOCUMENTED_ANSWERS:
        assert not problems, "; ".join(problems)
    else:
        as_read(device, not problems, "; ".join(problems))


def assert_envelope(response, why: str) -> None:
    """The document's error envelope: {"error": "error code", "message": "error text"} as JSON."""
    assert response.headers.get("Content-Type", "").split(";")[0].strip() == "application/json", (
        f"{why}: an error answer must carry the JSON envelope, got Content-Type "
        f"{response.headers.get('Content-Type')!r}: {answer(response)}")
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{why}: the error answer is not JSON: {answer(response)}") from None
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"] \
        and isinstance(body.get("message"), str), (
        f'{why}: the error answer must be {{"error": "error code", "message": "error text"}}: {answer(response)}')


def assert_access_refused(response, why: str) -> None:
    assert response.status_code in REFUSAL_STATUSES, (
        f"{why}: expected an access refusal ({' or '.join(map(str, REFUSAL_STATUSES))}), got {answer(response)} ({BUTTON_HINT})")
    assert_envelope(response, why)


def let_time_pass(device: DeviceUnderTest, seconds: float) -> None:
    """The emulator's clock moves at once; real hardware is waited for."""
    if device.target.emulator:
        device.control("advance", {"seconds": seconds})
    else:
        time.sleep(seconds)


# -- the request each operation gets --------------------------------------------------------------


def settings_key(device: DeviceUnderTest) -> str:
    saved = device.read(SETTINGS)
    for key in HARMLESS_SETTINGS:
        if key in saved:
            return key
    pytest.skip(f"the saved settings have none of the keys the run may change ({', '.join(HARMLESS_SETTINGS)})")


def other_value(key: str, value):
    """A different valid value for a harmless settings key (the emulator's ranges)."""
    if key == "logIntervalSec":
        return value + 15 if value <= 3585 else value - 15
    return (value[:26] + " (cl)") if not str(value).endswith(" (cl)") else value[:-5]


def card_listing(device: DeviceUnderTest, path: str = "/") -> dict:
    """POST /card/dir/; skips where no card is mounted (the document's 503 Service Unavailable)."""
    response = device.client.post("/card/dir/", json={"path": path})
    if response.status_code == 503:
        pytest.skip(f"no SD card mounted: {answer(response)}")
    return read_json(device, response, f"listing {path} on the card")


def first_card_file(device: DeviceUnderTest) -> str:
    """A file on the card: in the root folder, or one level down."""
    listing = card_listing(device)
    folders = []
    for entry in listing.get("entries", []):
        path = "/" + entry["name"]
        if entry.get("type") == "file":
            return path
        folders.append(path)
    for folder in folders[:4]:
        for entry in card_listing(device, folder).get("entries", []):
            if entry.get("type") == "file":
                return f"{folder}/{entry['name']}"
    pytest.skip("the SD card holds no file to read")


def first_template(device: DeviceUnderTest) -> str:
    meta = device.client.post("/modbus/class-find/search-meta-info/", json={})
    templates = read_json(device, meta, "the list of Modbus search templates").get("templates") or []
    if not templates:
        pytest.skip("the device has no Modbus search template")
    return templates[0]


def new_tid(device: DeviceUnderTest, request: dict = MODBUS_READ) -> int:
    body = read_json(device, device.client.post("/modbus/req/", json=request), "a Modbus request")
    as_read(device, isinstance(body.get("tid"), int), f"a Modbus request is answered with its tid: {body}")
    return body["tid"]


def scratch_write(device: DeviceUnderTest) -> dict:
    """The body that writes the scratch file; only when the card says there is no such file (404)."""
    info = device.client.post("/card/file/info/", json={"path": SCRATCH_FILE})
    if info.status_code != 404:
        pytest.skip(f"cannot tell that {SCRATCH_FILE} is absent ({answer(info)}): the run never overwrites or "
                    "removes a file it did not write")
    return {"path": SCRATCH_FILE, "data": base64.b64encode(SCRATCH_DATA).decode()}


def scratch_created(device: DeviceUnderTest) -> dict:
    """The scratch file, written so that a remove has something of the run's own to remove."""
    written = device.client.post("/card/file/write/", json=scratch_write(device))
    assert written.status_code == 200, f"could not write the scratch file: {answer(written)}"
    return {"path": SCRATCH_FILE}


# Bodies of the commands that take one; every other POST gets {} (NOTES.md shows logout with {}).
# Beyond the salt and login, the bodies are the emulator's reading (see the schema).
BODIES = {
    "/cmd/time/set/": lambda device: {"time": int(time.time())},
    "/cmd/settings/import/": lambda device: read_json(
        device, device.client.post("/cmd/settings/export/", json={}), "the exported settings"),
    "/activation/": lambda device: {"key": "CONFORMLAB-TEST-KEY"},
    "/card/file/info/": lambda device: {"path": "/"},
    "/card/file/read/": lambda device: {"path": first_card_file(device)},
    "/card/file/write/": scratch_write,
    "/card/remove/": lambda device: scratch_created(device),
    "/card/dir/": lambda device: {"path": "/"},
    "/settings/saved/set/": lambda device: {key: device.read(SETTINGS)[key] for key in [settings_key(device)]},
    "/modbus/req/": lambda device: dict(MODBUS_READ),
    "/modbus/class-find/start/": lambda device: {"template": first_template(device)},
}


def request_for(device: DeviceUnderTest, op: Operation) -> tuple[str, dict | None]:
    """(path with query, JSON body) of a request the device takes from a logged-in user."""
    if op.method == "GET":
        return (f"{op.path}?tid={new_tid(device)}" if op.path == "/modbus/resp/" else op.path), None
    body = BODIES.get(op.path)
    return op.path, (body(device) if body else {})


def body_is_documented(op: Operation) -> bool:
    """Whether the document (with NOTES.md) fixes the whole request: GETs without a value, {} commands."""
    if op.method == "GET":
        return op.path != "/modbus/resp/"
    return op.path not in BODIES


def call(device: DeviceUnderTest, op: Operation, request: tuple[str, dict | None], **kw):
    path, body = request
    if op.method == "GET":
        return device.client.get(path, **kw)
    return device.client.post(path, json=body, **kw)


# -- putting back what a command changed ----------------------------------------------------------


def answering(device: DeviceUnderTest) -> bool:
    """GET /version/ gets an answer that is not a 5xx (whether a guest may read it is another check's business)."""
    try:
        return device.client.get("/version/", auth=None, timeout=5).status_code < 500
    except DeviceError:  # a restarting device refuses or drops connections
        return False


def wait_for_restart(device: DeviceUnderTest) -> None:
    """After POST /cmd/reboot/: real firmware answers, goes down, comes back (the emulator restarts
    at once). The run's session ended; it logs in again when it next needs to."""
    if not device.target.emulator:
        wait_until(lambda: not answering(device), GOING_DOWN_SECONDS, step=0.5)
    assert wait_until(lambda: answering(device), REBOOT_SECONDS, step=1.0), (
        f"the device did not answer within {REBOOT_SECONDS} s of a restart")


def restart(device: DeviceUnderTest) -> None:
    response = device.client.post("/cmd/reboot/", json={})
    assert response.status_code == 200, f"POST /cmd/reboot/: {answer(response)}"
    wait_for_restart(device)


def put_card_back(device: DeviceUnderTest) -> None:
    """An ejected card comes back with someone's hand or a restart (destructive already allowed)."""
    if device.client.post("/card/dir/", json={"path": "/"}).status_code == 200:
        return  # still mounted (the eject was refused)
    if device.target.emulator:
        device.control("card", {"inserted": True})
    else:
        restart(device)


def remove_scratch(device: DeviceUnderTest) -> None:
    if device.client.post("/card/file/info/", json={"path": SCRATCH_FILE}).status_code == 200:
        removed = device.client.post("/card/remove/", json={"path": SCRATCH_FILE})
        assert removed.status_code == 200, f"could not remove the scratch file {SCRATCH_FILE}: {answer(removed)}"


# What puts a command's effect back beyond the saved settings (restored for every write).
UNDO = {
    "/cmd/memory/card_eject/": put_card_back,
    "/cmd/time/set/": lambda device: device.client.post("/cmd/time/sync/", json={}),
    "/cmd/reboot/": wait_for_restart,
    "/modbus/find/start/": lambda device: device.client.post("/modbus/find/stop/", json={}),  # frees the bus
    "/modbus/class-find/start/": lambda device: device.client.post("/modbus/class-find/stop/", json={}),
    "/card/file/write/": remove_scratch,
    "/card/remove/": remove_scratch,
}


class Mc252Checks(DeviceChecks):
    def guard(self, device: DeviceUnderTest, op: Operation) -> None:
        """A restart applies the saved settings: not while someone's change is pending in them."""
        restarts = op.path == "/cmd/reboot/" or (op.path == "/cmd/memory/card_eject/" and not device.target.emulator)
        if restarts and device.read(SETTINGS) != device.read(ACTIVE):
            pytest.skip("the saved settings differ from the active ones: a restart would apply someone's pending change")

    @contextlib.contextmanager
    def restoring(self, device: DeviceUnderTest, op: Operation):
        """The saved settings (and the operation's read) are put back; then what UNDO names."""
        with super().restoring(device, op):
            try:
                yield
            finally:
                undo = UNDO.get(op.path)
                if undo is not None:
                    undo(device)

    def read_effect(self, device: DeviceUnderTest, op: Operation):
        """The saved settings and, on the emulator, its counters of every command's effect."""
        effect = {"saved settings": device.read(SETTINGS)}
        if device.target.emulator:
            effect["effect counters"] = device.control("counters")
        return effect


CHECKS = Mc252Checks()
