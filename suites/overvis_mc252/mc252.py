"""What the Overvis MC252 checks share: the request each operation gets, sessions of their own for
checks that end or spoil one, and putting back what a command changed.

Everything endpoint-related comes from schemas/overvis-mc252.yaml (`x-conformlab.access` is the
document's "Access Level" column, read by the access matrix in suites/common), so a new operation
there gets its access and answer checks without touching the suites. The run's own session (the profile's SaltLoginSession) logs in once and
again only when the device says it lapsed; checks that log out, let a session lapse or replay a login
use sessions of their own (`log_in`).

A FAIL quotes a sentence: what the document (with NOTES.md) leaves open -- the bodies of most
commands and the form of their answers -- is this project's reading, checked with `device.reading`
(binding on the bundled emulator in its default reading, a notice anywhere else) and, for answers,
with `device.check_answer` (the schema marks the reading's constraints x-conformlab-reading).
Restarts (reboot, settings reset and import, update program) are waited out by the client: the
schema marks them `restarts`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import time

from conformlab import secrets
from conformlab.auth import BearerAuth, salted_sha1
from conformlab.checks import DeviceChecks, answer
from conformlab.client import expect_json
from conformlab.dut import DeviceUnderTest
from conformlab.profiles import MC252_TOKEN_HEADERS, OVERVIS_MC252, mc252_session
from conformlab.schema import Operation, device_schema
from conformlab.verdicts import not_applicable, not_verified

SCHEMA = device_schema("overvis-mc252")
OPS = SCHEMA.operations
REFUSAL_STATUSES = OVERVIS_MC252.access.refused.statuses  # "an error status": those that mean "not allowed"
BUTTON_HINT = OVERVIS_MC252.access.refused.hint
SETTINGS = "/settings/saved/get/"
# Settings keys whose change nobody notices for the seconds a check holds it (the keys are the
# emulator's reading of a flat settings set; a device without them skips the write checks).
HARMLESS_SETTINGS = ("logIntervalSec", "deviceName")
SCRATCH_FILE = "/conformlab-scratch.txt"  # the only card file a run writes or removes
SCRATCH_DATA = b"conformlab scratch file: safe to delete\n"
MODBUS_READ = {"unit": 1, "func": 3, "addr": 0, "count": 2}  # read two holding registers: changes nothing
ACTIVE = "/settings/active/get/"


def unknown_token() -> BearerAuth:
    return BearerAuth("conformlab-not-a-session-token", MC252_TOKEN_HEADERS, secret=False)


def require_login(device: DeviceUnderTest) -> dict[str, str]:
    if not device.has_credentials:
        not_applicable(f"{device.target.name} has no login: give [targets.{device.target.name}.auth] login and password")
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


def wrong_login(credentials: dict[str, str], case: str, salt: str) -> tuple[str, str]:
    """(username, hash) of a login the device must refuse: "wrong-password", "unsalted" (SHA1 of login
    + password: a replayable credential) or "wrong-user"."""
    login, password = credentials["login"], credentials["password"]
    # Every one of them hashes the real password, so each is masked like any password hash.
    if case == "wrong-password":
        return login, salted_sha1(login, f"{password}-not", salt)
    if case == "unsalted":
        digest = hashlib.sha1(f"{login}{password}".encode()).hexdigest()
        secrets.register(digest)
        return login, digest
    return f"{login}-not", salted_sha1(f"{login}-not", password, salt)  # wrong-user


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
    """What the rest of a check builds on, where only this project's reading says it (an answer's
    form the document does not give): binding on the bundled emulator (its contract); on any other
    device a notice, and the check stops unverified (it cannot judge what follows)."""
    if not device.reading(holds, what):
        not_verified(f"{what} -- the document gives no form for this; the rest of the check follows this project's reading")


def read_json(device: DeviceUnderTest, response, what: str) -> dict:
    """The JSON object a request of our reading gets (200); see `as_read` where it gets none."""
    ok = response.status_code == 200 and response.headers.get("Content-Type", "").startswith("application/json")
    try:
        body = response.json() if ok else None
    except ValueError:
        body = None
    as_read(device, isinstance(body, dict), f"{what}: {answer(response)}")
    return body


def assert_shape(device: DeviceUnderTest, op: Operation, response) -> None:
    """The answer against the schema: on any device what the document gives; on the bundled emulator
    its reading too (elsewhere what breaks only the reading is a notice: device.check_answer)."""
    problems = device.check_answer(op, response)
    assert not problems, "; ".join(problems)


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
    not_verified(f"the saved settings have none of the keys the run may change ({', '.join(HARMLESS_SETTINGS)})")


def other_value(key: str, value):
    """A different valid value for a harmless settings key (the emulator's ranges)."""
    if key == "logIntervalSec":
        return value + 15 if value <= 3585 else value - 15
    return (value[:26] + " (cl)") if not str(value).endswith(" (cl)") else value[:-5]


def card_listing(device: DeviceUnderTest, path: str = "/") -> dict:
    """POST /card/dir/; skips where no card is mounted (the document's 503 Service Unavailable)."""
    response = device.client.post("/card/dir/", json={"path": path})
    if response.status_code == 503:
        not_verified(f"no SD card mounted: {answer(response)}")
    return read_json(device, response, f"listing {path} on the card")


def card_entries(device: DeviceUnderTest, listing: dict, where: str) -> list[dict]:
    """The entries of a card listing (this project's reading: {"entries": [{"name", "type"}, ...]})."""
    entries = listing.get("entries")
    as_read(device, isinstance(entries, list) and all(isinstance(e, dict) and isinstance(e.get("name"), str) and e["name"]
                                                      for e in entries),
            f"the entries of {where} are objects with a name: {listing}")
    return entries


def first_card_file(device: DeviceUnderTest) -> str:
    """A file on the card: in the root folder, or one level down."""
    folders = []
    for entry in card_entries(device, card_listing(device), "/"):
        path = "/" + entry["name"]
        if entry.get("type") == "file":
            return path
        folders.append(path)
    for folder in folders[:4]:
        for entry in card_entries(device, card_listing(device, folder), folder):
            if entry.get("type") == "file":
                return f"{folder}/{entry['name']}"
    not_verified("the SD card holds no file to read (or none this project's reading recognises as one)")


def first_template(device: DeviceUnderTest) -> str:
    meta = device.client.post("/modbus/class-find/search-meta-info/", json={})
    templates = read_json(device, meta, "the list of Modbus search templates").get("templates")
    as_read(device, isinstance(templates, list), f'the template list is {{"templates": [...]}}: {meta.json()}')
    if not templates:
        not_applicable("the device has no Modbus search template")
    first = templates[0]
    if device.reading(isinstance(first, str), f"the templates are listed by name: {templates[:3]}"):
        return first
    name = first.get("name") if isinstance(first, dict) else None
    as_read(device, isinstance(name, str) and bool(name), f"a template in the list has a name: {first}")
    return name


def new_tid(device: DeviceUnderTest, request: dict = MODBUS_READ) -> int | str:
    """The transaction id of a new Modbus request (an integer in this project's reading; a device
    that answers it as a string gets a notice and the string is sent back as it came)."""
    body = read_json(device, device.client.post("/modbus/req/", json=request), "a Modbus request")
    tid = body.get("tid")
    as_read(device, isinstance(tid, (int, str)) and not isinstance(tid, bool) and str(tid) != "",
            f"a Modbus request is answered with its tid: {body}")
    device.reading(isinstance(tid, int), f"the tid of a Modbus request is an integer: {body}")
    return tid


def scratch_write(device: DeviceUnderTest) -> dict:
    """The body that writes the scratch file; only when the card says there is no such file (404)."""
    info = device.client.post("/card/file/info/", json={"path": SCRATCH_FILE})
    if info.status_code != 404:
        not_verified(f"cannot tell that {SCRATCH_FILE} is absent ({answer(info)}): the run never overwrites or "
                    "removes a file it did not write")
    return {"path": SCRATCH_FILE, "data": base64.b64encode(SCRATCH_DATA).decode()}


def scratch_created(device: DeviceUnderTest) -> dict:
    """The scratch file, written so that a remove has something of the run's own to remove."""
    written = device.client.post("/card/file/write/", json=scratch_write(device))
    as_read(device, written.status_code == 200, f"writing the scratch file (a body of this project's reading): {answer(written)}")
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


def restart(device: DeviceUnderTest) -> None:
    """POST /cmd/reboot/. The client waits until the device has gone down and come back (the schema
    marks the reboot `restarts`); the run's session ended, its auth strategy logs in again."""
    response = device.client.post("/cmd/reboot/", json={})
    assert response.status_code == 200, f"POST /cmd/reboot/: {answer(response)}"


def card_in_use(device: DeviceUnderTest) -> bool:
    """Does the card list anything? (An ejected card answers an error, or -- another reading -- an
    empty listing.)"""
    response = device.client.post("/card/dir/", json={"path": "/"})
    try:
        return response.status_code == 200 and bool(response.json().get("entries"))
    except (ValueError, AttributeError):
        return False


def put_card_back(device: DeviceUnderTest) -> None:
    """An ejected card comes back with someone's hand or a restart (destructive already allowed)."""
    if device.target.emulator:
        device.control("card", {"inserted": True})  # whatever the eject did (refused or not)
    elif not card_in_use(device):
        restart(device)


def remove_scratch(device: DeviceUnderTest) -> None:
    if device.client.post("/card/file/info/", json={"path": SCRATCH_FILE}).status_code == 200:
        removed = device.client.post("/card/remove/", json={"path": SCRATCH_FILE})
        assert removed.status_code == 200, f"could not remove the scratch file {SCRATCH_FILE}: {answer(removed)}"


# What puts a command's effect back beyond the saved settings (restored for every write).
UNDO = {
    "/cmd/memory/card_eject/": put_card_back,
    "/cmd/time/set/": lambda device: device.client.post("/cmd/time/sync/", json={}),
    "/modbus/find/start/": lambda device: device.client.post("/modbus/find/stop/", json={}),  # frees the bus
    "/modbus/class-find/start/": lambda device: device.client.post("/modbus/class-find/stop/", json={}),
    "/card/file/write/": remove_scratch,
    "/card/remove/": remove_scratch,
}


class Mc252Checks(DeviceChecks):
    def guard(self, device: DeviceUnderTest, op: Operation) -> None:
        """A restart applies the saved settings: not while someone's change is pending in them."""
        restarts = op.restarts or (op.path == "/cmd/memory/card_eject/" and not device.target.emulator)
        if restarts and device.read(SETTINGS) != device.read(ACTIVE):
            not_verified("the saved settings differ from the active ones: a restart would apply someone's pending change")

    @contextlib.contextmanager
    def restoring(self, device: DeviceUnderTest, op: Operation):
        """The saved settings (and the operation's read) are put back; then what UNDO names. After
        a command that restarted the device with other saved settings (reset, import), the old
        ones, written back, are made active again by one more restart."""
        try:
            with super().restoring(device, op):
                try:
                    yield
                finally:
                    undo = UNDO.get(op.path)
                    if undo is not None:
                        undo(device)
        finally:
            if op.restarts and device.read(SETTINGS) != device.read(ACTIVE):
                restart(device)

    def read_effect(self, device: DeviceUnderTest, op: Operation):
        """The saved settings and, on the emulator, its counters of every command's effect."""
        effect = {"saved settings": device.read(SETTINGS)}
        if device.target.emulator:
            effect["effect counters"] = device.control("counters")
        return effect


CHECKS = Mc252Checks()
