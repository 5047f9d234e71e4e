"""The device under test, as the suites see it: target + client + schema + (for emulators) controls.

It also owns "leave the device as we found it": `preserved()` snapshots readable state before a
check writes and puts back whatever changed afterwards, through the documented API only. On real
hardware what the run found is also written to the target's journal (conformlab.journal) before the
first write, so that a run killed in the middle is undone by the next one or by `conformlab restore`;
Ctrl-C and SIGTERM (conformlab.interrupt) stop a check and still put back what it changed.
"""

from __future__ import annotations

import contextlib
import copy
import time

import requests

from conformlab import firmware, interrupt, secrets
from conformlab.client import DeviceClient, DeviceError, DeviceWentAway, expect_json
from conformlab.journal import NOTICES, Journal, JournalError
from conformlab.requirements import requirement
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
        # Why the target cannot be tested at all (unreachable, not this device, busy): one line,
        # reported once as the target's ERROR; its other checks are not run.
        self.unusable: str | None = None
        self.unusable_reported = False
        self.outages: list[float] = []  # seconds the device was away by itself (a reboot the harness did not cause)
        self.identity: dict | None = None  # the identity endpoint's answer: what the device says it is
        self.firmware: firmware.Firmware = firmware.UNKNOWN  # what it runs (read_firmware, at the start)
        self.capabilities: dict | None = None  # what the device declares it has (the profile's capabilities GET)
        self.record = lambda name, value: None  # the running check's user-property recorder (set by the fixture)

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

    # -- what the document leaves to the firmware, and where its pages disagree -----------------------

    def read_firmware(self) -> None:
        """What firmware the device runs: its documented answer (the identity's, or one GET of the
        profile's firmware endpoint), else the target's `firmware` key (conformlab.firmware)."""
        report = self.profile.firmware
        found = None
        if report is not None:
            answer = self.identity if self.profile.identity and report.path == self.profile.identity.path else None
            if answer is None:
                try:
                    response = self.client.get(report.path)
                    answer = response.json() if response.status_code == 200 else None
                except (ValueError, requests.RequestException, DeviceError):
                    answer = None
            found = firmware.from_answer(report, answer, f"GET {self.profile.prefix}{report.path}")
        if found is None and self.target.firmware:
            found = firmware.declared(self.target.firmware)
        elif found is not None and self.target.firmware and found.version != self.target.firmware:
            NOTICES.append(f"the targets file says firmware {self.target.firmware!r}, the device reports "
                           f"{found.version!r}: the device's word is used")
        self.firmware = found or firmware.UNKNOWN

    def read_capabilities(self) -> None:
        """What the device declares it has (EVSE: GET /board-config), kept for the results file."""
        path = self.profile.capabilities
        if path is None:
            return
        try:
            response = self.client.get(path)
            body = response.json() if response.status_code == 200 else None
        except (ValueError, requests.RequestException, DeviceError):
            body = None
        self.capabilities = body if isinstance(body, dict) else None

    def said(self) -> dict:
        """What the device said of itself, as the results file keeps it: the identity endpoint's answer,
        the firmware (and where it was read), and the capabilities it declares where it has such an endpoint."""
        identity, said = self.profile.identity, {}
        said["identity"] = {"path": identity.path, "answer": self.identity} if identity and self.identity is not None else None
        built = self.firmware.built
        said["firmware"] = {"version": self.firmware.version, "built": built.isoformat() if built else None,
                            "source": self.firmware.source}
        if self.capabilities is not None:
            said["capabilities"] = {"path": self.profile.capabilities, "answer": self.capabilities}
        return said

    def firmware_rule(self, rule: str) -> None:
        """Say which firmware-dependent rule of the document this check judged by: the reports show it,
        with the firmware and where it was read, beside the verdicts of the check's requirements."""
        self.record("firmware_rule", f"{rule}; {self.firmware.describe()}")

    def follows(self, rid: str, reading: str) -> None:
        """Record that the device follows `reading`, one of the readings of a requirement on which the
        vendor's pages disagree (its `conflict` in requirements.yaml): the CONFLICT entry shows it."""
        names = [r.name for r in requirement(rid).conflict]
        if reading not in names:
            raise ValueError(f"{rid} has no reading {reading!r} (its readings: {names})")
        self.record("follows", f"{rid} {reading}")

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

    def close(self) -> None:
        """End the talk with the device: log out where the auth holds a login session (MC252; it is
        not left to lapse), then close the client."""
        log_out = getattr(self.client.session.auth, "log_out", None)
        if log_out is not None:
            try:
                log_out(self.client.base_url)
            except (requests.RequestException, DeviceError):
                pass  # the device is gone or hung: its session lapses by itself
        self.client.close()

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

    # -- the write journal (conformlab.journal): nothing is lost when a run is killed ------------

    journal: Journal | None = None  # what this run found (real hardware), once it recorded anything

    def recover_journal(self) -> None:
        """First thing of a target's session: put back what a run that died recorded in the target's
        journal, one line per path (printed at once, and a notice of the report), and remove it.
        RestoreError, the journal kept, when a value cannot be put back."""
        for line in self.put_back_journal():
            interrupt.tell(f"{self.target.name}: {line}")
            NOTICES.append(line)

    def put_back_journal(self) -> list[str]:
        """Put back the values a run that died left in the target's journal, through the documented
        API (`restore`), then remove the journal; one line per path. Nothing to do for an emulator
        target or without a journal. RestoreError, the journal kept, when a value cannot be put back
        or the device cannot be reached (`conformlab restore TARGET` runs this too)."""
        if self.target.emulator:
            return []
        name = self.target.name
        try:
            found = Journal.load(name)
        except JournalError as exc:
            raise RestoreError(str(exc)) from None
        if found is None:
            return []
        if (found.device, found.origin) != (self.target.device, self.client.origin):
            raise RestoreError(f"the journal {found.path} was recorded for the {found.device} at {found.origin}, but target "
                               f"{name} is the {self.target.device} at {self.client.origin}: nothing was put back; point the "
                               "target at that device again, or move the journal away if that device is gone")
        kept = f"the journal {found.path} is kept (`conformlab restore {name}` tries again)"
        try:
            done, problems = self._put_back(found.values)
        except DeviceError as exc:
            raise RestoreError(f"cannot put back what an interrupted run of {found.started} recorded: "
                               f"{self._without_name(exc)}; {kept}") from None
        if problems:
            raise RestoreError(f"could not put back what an interrupted run of {found.started} recorded: "
                               f"{'; '.join(problems)}; {kept}")
        found.remove()
        return [f"put back {path} as recorded by an interrupted run of {found.started}" if path in done
                else f"{path} was as recorded by an interrupted run of {found.started}: nothing to put back"
                for path in found.values]

    def finish_journal(self) -> None:
        """Last thing of a target's session, also an interrupted one: put back what the journal holds
        and the device no longer does (a check cut short by Ctrl-C may have left it), and remove the
        journal if the device is as the run found it; otherwise keep it and say so in one line.
        Never raises: the session's own end (log out, close) must still run."""
        if self.journal is None:
            return
        name = self.target.name
        try:
            done, problems = self._put_back(self.journal.values)
            if not problems:
                problems = [f"GET {path} differs" for path in self.differences_from_snapshot()]
        except (AssertionError, requests.RequestException) as exc:  # DeviceError: unreachable, gone
            done, problems = [], [self._without_name(exc)]
        for path in done:
            interrupt.tell(f"{name}: put back {path} as the run found it")
        if problems:
            interrupt.tell(f"{name}: the device is NOT as the run found it ({'; '.join(problems)[:300]}); what the run found "
                           f"is kept in {self.journal.path}: run `conformlab restore {name}` (the next run against {name} "
                           "puts it back first)")
            return
        self.journal.remove()
        self.journal = None
        if interrupt.interrupted():
            interrupt.tell(f"{name}: the device is as the run found it")

    def _put_back(self, values: dict[str, object]) -> tuple[list[str], list[str]]:
        """Write back every recorded value the device no longer holds: (paths put back, problems).
        DeviceError (unreachable) ends it at once: the other paths would only wait for it again."""
        done, problems = [], []
        for path, old in values.items():
            try:
                if self.comparable(path, self.read(path)) != self.comparable(path, old):
                    self.restore(path, old)
                    done.append(path)
            except DeviceError:
                raise
            except (RestoreError, AssertionError, requests.RequestException) as exc:
                problems.append(f"{path}: {self._without_name(exc)}")
        return done, problems

    def _without_name(self, exc: BaseException) -> str:
        """The message of a client error without the target's name in front (a line names it once)."""
        return str(exc).removeprefix(f"{self.target.name}: ")

    def _record(self, values: dict[str, object]) -> None:
        """Journal what the device holds before anything is written (real hardware only)."""
        if self.target.emulator or not values:
            return
        if self.journal is None:
            try:
                left = Journal.load(self.target.name)
            except JournalError as exc:
                raise RestoreError(str(exc)) from None
            if left is not None:  # never overwrite what a run that died found: it goes back first
                raise RestoreError(f"{left.path} holds what an interrupted run of {left.started} found: put it back first "
                                   f"(`conformlab restore {self.target.name}`)")
            self.journal = Journal(self.target.name, self.target.device, self.client.origin)
        self.journal.record(values)

    def take_snapshot(self) -> None:
        """Read what the end-of-run check compares (the profile's snapshot_paths); on real hardware
        it is the first thing the journal records."""
        self.snapshot = {path: self.read(path) for path in self.profile.snapshot_paths}
        self._record(self.snapshot)

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
            if not 200 <= response.status_code < 300:  # 200 with a body, or 204 (WisDM): the read-back judges
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
        """Snapshot the given GET paths (on real hardware: in the journal, on disk, before the block
        writes anything); afterwards write back whatever changed, and raise RestoreError for what
        could not be.

        Interrupted (Ctrl-C, SIGTERM: a KeyboardInterrupt in the block or while putting back), it
        still puts back every path, then lets the KeyboardInterrupt go on: a restore that fails then
        is told in one line, never raised in its place (that would turn the interruption into a
        failure of the device and let the run go on); the target's session tries again at its end."""
        before = {path: copy.deepcopy(self.read(path)) for path in paths}
        self._record(before)
        stopped = None
        try:
            yield before
        except KeyboardInterrupt as exc:
            stopped = exc
            raise
        finally:
            problems = []
            outage = None
            for path, old in before.items():
                try:
                    try:
                        self.restore(path, old)
                    except DeviceWentAway as exc:  # a reboot the harness did not cause: it is back now
                        outage = exc
                        self.restore(path, old)
                except KeyboardInterrupt as exc:  # the first Ctrl-C while putting back: the others still go back
                    stopped = stopped or exc
                    problems.append(f"{path}: interrupted while it was put back")
                except (RestoreError, requests.RequestException, AssertionError) as exc:
                    problems.append(str(exc))
            if stopped is not None:
                if problems:
                    said = "; ".join(problem.removeprefix(f"{self.target.name}: ") for problem in problems)
                    interrupt.tell(f"{self.target.name}: not put back yet: {said[:300]} (the end of the target's session "
                                   "tries again)")
                raise stopped
            if problems:
                raise RestoreError("; ".join(problems))
            if outage is not None:
                raise outage  # the check met the outage: it is run once more (plugin)


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


def connect(target: Target, emulator=None) -> DeviceUnderTest:
    """The device under test of a target, its client made from the target and its profile: at the
    target's base_url, or at the running emulator's address (the run's session fixture starts it and
    identifies the device; `conformlab restore` uses this as it is)."""
    profile = target.profile
    origin = emulator.url if emulator is not None else target.base_url
    verify = (emulator.ca_file if emulator is not None else target.ca_bundle) or True
    client = DeviceClient(origin, profile.prefix, auth=profile.make_auth(target.auth), timeout=target.timeout,
                          rate_budget=profile.rate_budget, name=target.name, probe_path=profile.probe_path,
                          restart_timeout=target.restart_timeout, verify=verify)
    return DeviceUnderTest(target, client, emulator)
