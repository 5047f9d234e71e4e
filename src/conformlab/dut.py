"""The device under test, as the suites see it: target + client + schema + (for emulators) controls.

It also owns "leave the device as we found it": `preserved()` snapshots readable state before a
check writes and puts back whatever changed afterwards, through the documented API only.
"""

from __future__ import annotations

import contextlib
import copy
import time

import requests

from conformlab import secrets
from conformlab.client import DeviceClient, expect_json
from conformlab.schema import DeviceSchema, Operation, device_schema
from conformlab.targets import Target
from conformlab.verdicts import not_verified

CONTROL_PREFIX = "/__emulator__"


class RestoreError(AssertionError):
    pass


class DeviceUnderTest:
    def __init__(self, target: Target, client: DeviceClient, emulator=None):
        self.target = target
        self.client = client
        self.emulator = emulator  # RunningEmulator for emulator targets, else None
        self.profile = target.profile
        self.schema: DeviceSchema = device_schema(target.device)
        self.snapshot: dict[str, object] = {}
        self.started = time.monotonic()
        self.load_seconds = 0.0  # time spent in load scenarios, which send outside the client
        # The credentials in use: the target's, until a destructive check re-keys real hardware.
        self.credentials: dict[str, str] = dict(target.auth)
        # The client waits out every restart the schema marks, wherever the request comes from.
        client.restarting = self.schema.restarting
        self.notice = lambda text: None  # the running check's notice recorder (set by the fixture)

    # -- what the target allows ---------------------------------------------------------------

    @property
    def has_credentials(self) -> bool:
        return any(self.credentials.values())

    def auth_level(self, level: str):
        """The auth strategy of one access level ("read", "write") of the credentials in use."""
        return self.profile.auth_levels(self.credentials).get(level)

    # -- what the document settles, and what only this project's reading does --------------------

    @property
    def enforces_readings(self) -> bool:
        """Is this project's reading of what the document leaves open binding on this target?
        Only on the bundled emulators in their default reading: it is their contract."""
        return self.target.enforces_readings

    def reading(self, ok: bool, what: str) -> bool:
        """A check of this project's reading, not of a sentence of the document: binding on the
        bundled emulators (a failure there), a notice of what the device did anywhere else (never
        a failure). `what` says what was seen and what the reading expected. Returns `ok`."""
        if ok:
            return True
        if self.enforces_readings:
            raise AssertionError(f"{what} (this project's reading, binding on its own emulator)")
        self.notice(f"{what}; the document does not settle this, so it is a notice, not a failure")
        return False

    def check_answer(self, op: Operation, response) -> list[str]:
        """Problems of an answer against the schema: on the bundled emulators every constraint, on
        any other device only the document's (what breaks only this project's reading is a notice)."""
        full = self.schema.check_answer(op, response)
        if self.enforces_readings or not full:
            return full
        documented = self.schema.check_answer(op, response, readings=False)
        readings_only = [problem for problem in full if problem not in documented]
        if readings_only:
            self.notice(f"{op}: the answer differs from this project's reading where the document is silent: "
                        + "; ".join(readings_only[:3]))
        return documented

    def rekey(self, credentials: dict[str, str]) -> None:
        """Use new credentials for the rest of the run (after a check re-keyed real hardware)."""
        self.credentials = dict(credentials)
        self.client.auth = self.client.session.auth = self.profile.make_auth(self.credentials)

    def require_destructive(self, why: str) -> None:
        if not self.target.destructive:
            not_verified(f"destructive ({why}); target {self.target.name} has destructive = false")

    def require_emulator(self, why: str) -> None:
        if not self.target.emulator:
            not_verified(f"needs an emulator-only control ({why}); {self.target.name} is real hardware")

    def require_operation_allowed(self, op: Operation) -> None:
        if op.destructive:
            self.require_destructive(f"{op}: {op.destructive}")

    # -- emulator-only controls ---------------------------------------------------------------

    def control(self, name: str, payload=...):
        """Drive an emulator-only control (never used against real hardware): GET without a
        payload, POST with one (None is sent as JSON null)."""
        assert self.emulator is not None, "emulator controls exist only on emulator targets"
        url = self.client.origin + f"{CONTROL_PREFIX}/{name}"
        if payload is ...:
            response = self.client.request("GET", url, auth=None)
        else:
            response = self.client.request("POST", url, json=payload, auth=None)
        assert response.status_code == 200, f"emulator control {name}: {response.status_code} {response.text[:200]}"
        return response.json() if response.content else None

    # -- snapshots and restore ----------------------------------------------------------------

    def read(self, path: str):
        return expect_json(self.client.get(path))

    def comparable(self, path: str, value):
        """What of a read answer the run must leave as found: the part its write takes (GET /state
        also carries live measurements), or all of it where there is no write."""
        op = self.writer(path)
        return self.writable(op, value) if op is not None else value

    def writer(self, path: str) -> Operation | None:
        """The write that puts a read's values back: the POST on the same path, or the one the read
        names (x-conformlab written_by, e.g. MC252 GET /settings/saved/get/ -> /settings/saved/set/)."""
        op = self.schema.match("POST", path)
        if op is not None:
            return op
        read = self.schema.match("GET", path)
        written_by = read.extension.get("written_by") if read is not None else None
        return self.schema.operation("POST", written_by) if written_by else None

    def take_snapshot(self) -> None:
        self.snapshot = {path: self.read(path) for path in self.profile.snapshot_paths}

    def differences_from_snapshot(self) -> dict[str, tuple[object, object]]:
        changed = {}
        for path, before in self.snapshot.items():
            now = self.read(path)
            if self.comparable(path, now) != self.comparable(path, before):
                changed[path] = (self.comparable(path, before), self.comparable(path, now))
        return changed

    def writable(self, op: Operation, value):
        """The part of a read answer that the write operation takes (declared properties only)."""
        return _filter_to_schema(self.schema, op.request_schema, value)

    def restore(self, path: str, old) -> None:
        """Write `old` back through the documented API and check it took.

        Only what the write takes is compared: a read such as GET /state also carries live values.
        """
        op = self.writer(path)
        if op is not None:
            wanted = self.writable(op, old)
            current = self.writable(op, self.read(path))
            if current == wanted:
                return
            # Only what differs: writing a whole settings object back would re-apply (and may
            # restart) Wi-Fi or MQTT on a device whose partial writes apply only the keys sent.
            write_path = path if self.schema.match("POST", path) is not None else op.path
            response = self.client.post(write_path, json=_changed_part(current, wanted))
            if response.status_code != 200:
                raise RestoreError(f"could not restore {path}: POST answered {response.status_code} {secrets.mask(response.text)[:120]}")
            now = self.writable(op, self.read(path))
            if now != wanted:
                raise RestoreError(f"{path} is not as it was after restoring: was {wanted!r}, now {now!r}")
        elif isinstance(old, dict):
            # A composite read (GET /config): each block has its own write endpoint.
            current = self.read(path)
            for key, value in old.items():
                if current.get(key) != value:
                    self.restore(f"{path}/{key}", value)
        elif self.read(path) != old:
            raise RestoreError(f"no documented way to restore {path}")

    @contextlib.contextmanager
    def preserved(self, *paths: str):
        """Snapshot the given GET paths; afterwards write back whatever changed."""
        before = {path: copy.deepcopy(self.read(path)) for path in paths}
        try:
            yield before
        finally:
            problems = []
            for path, old in before.items():
                try:
                    self.restore(path, old)
                except (RestoreError, requests.RequestException, AssertionError) as exc:
                    problems.append(str(exc))
            if problems:
                raise RestoreError("; ".join(problems))


def _changed_part(current, wanted):
    """The part of `wanted` that differs from `current`, nested objects compared key by key."""
    if not (isinstance(current, dict) and isinstance(wanted, dict)):
        return wanted
    return {key: _changed_part(current.get(key), value) for key, value in wanted.items() if current.get(key) != value}


def _filter_to_schema(schema_doc: DeviceSchema, schema, value):
    schema = schema_doc.resolve(schema)
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict) and "properties" in schema:
        return {k: _filter_to_schema(schema_doc, schema["properties"][k], v)
                for k, v in value.items() if k in schema["properties"]}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_filter_to_schema(schema_doc, schema["items"], v) for v in value]
    for key in ("oneOf", "anyOf", "allOf"):
        for option in schema.get(key, []):
            option = schema_doc.resolve(option)
            if isinstance(option, dict) and "properties" in option and isinstance(value, dict):
                return _filter_to_schema(schema_doc, option, value)
    return value
