"""targets.toml: named targets, validated before any test runs.

The file's form is a fixed contract (other tools write it):

    [targets.<name>]
    device      = "esp32-evse"
    base_url    = "http://192.168.4.1"     # origin only; the profile adds the API prefix
    emulator    = true                     # instead of base_url
    faults      = ["..."]                  # emulator targets only
    destructive = false
    timeout     = 10
    waive       = ["EVSE-...", { id = "EVSE-...", reason = "fixed in 2.1, FW-812", until = "2027-03-31" }]
    [targets.<name>.auth]
    username = "admin"
    password = "${EVSE_PASSWORD}"

Every problem is reported as one line naming the file, the target and the key. Structure is checked
for every target in the file; `${NAME}` variables are resolved only for the targets that run, so a
lab target's secrets need not be set to run the emulators.
"""

from __future__ import annotations

import datetime
import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from conformlab.client import origin_of
from conformlab.profiles import PROFILES

COMMON_KEYS = {"device", "base_url", "emulator", "faults", "destructive", "timeout", "waive", "auth",
               "restart_timeout", "reading", "boot_seconds", "tls", "ca_bundle", "firmware"}
DEFAULT_TIMEOUT = 10.0
# How long a device may take to go down and come back after a request that restarts it (real
# controllers take seconds to minutes to boot; a device not back by then ends the target's run).
DEFAULT_RESTART_TIMEOUT = 120.0
# Emulator targets: how long the emulated device is off the network while it boots.
DEFAULT_BOOT_SECONDS = 2.0
# Emulator targets: "default" is this project's reading of what the documents leave open (its
# emulators' contract); "alternative" makes every such choice the other way a conforming device may.
READINGS = ("default", "alternative")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TargetsError(Exception):
    """A targets file that cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class Waiver:
    """A known deviation a target accepts: its failures are expected (WAIVED), a pass is stale
    (UNEXPECTED PASS), and after `until` it has expired: it waives nothing and fails the run until
    it is removed or renewed."""

    id: str
    reason: str = ""
    until: datetime.date | None = None

    def expired(self, today: datetime.date | None = None) -> bool:
        return self.until is not None and self.until < (today or datetime.datetime.now(datetime.timezone.utc).date())

    def describe(self) -> str:
        """The waiver as the report shows it next to the verdict."""
        parts = [self.reason] if self.reason else []
        if self.until:
            parts.append(f"until {self.until.isoformat()}")
        return f"waived: {'; '.join(parts)}" if parts else "waived"


IDENTITY_KEYS = frozenset({"username", "login"})  # auth keys that name the user
# Fields of structured credentials (WisDM's scoped keys) that describe a key, not hold it.
DESCRIPTIVE_FIELDS = frozenset({"name", "access", "permissions", "locations", "expired"})


@dataclass(frozen=True)
class Target:
    name: str
    device: str
    base_url: str | None  # origin of real hardware; None for an emulator target
    emulator: bool
    faults: tuple[str, ...] = ()
    destructive: bool = False
    timeout: float = DEFAULT_TIMEOUT
    waivers: tuple[Waiver, ...] = ()
    auth: dict = field(default_factory=dict)  # resolved values (strings, or WisDM's key list): secrets, never print
    options: dict[str, object] = field(default_factory=dict)  # device-specific keys
    restart_timeout: float = DEFAULT_RESTART_TIMEOUT
    reading: str = "default"  # emulator targets only
    boot_seconds: float = DEFAULT_BOOT_SECONDS  # emulator targets only
    tls: bool = False  # emulator targets only: serve HTTPS with a throwaway test CA's certificate
    ca_bundle: str | None = None  # a private CA (PEM file) that an https device's certificate is verified with
    firmware: str | None = None  # the firmware the device runs, for a device that does not report it (WCC Lite)

    @property
    def waive(self) -> tuple[str, ...]:
        """The requirement IDs the target waives now (an expired waiver waives nothing)."""
        return tuple(w.id for w in self.waivers if not w.expired())

    def waiver(self, rid: str) -> Waiver | None:
        return next((w for w in self.waivers if w.id == rid), None)

    @property
    def expired_waivers(self) -> tuple[Waiver, ...]:
        return tuple(w for w in self.waivers if w.expired())

    @property
    def enforces_readings(self) -> bool:
        """Is this project's reading of what a document leaves open binding here? Only on the
        bundled emulators in their default reading: it is their contract, not the device's."""
        return self.emulator and self.reading == "default"

    @property
    def profile(self):
        return PROFILES[self.device]

    def secrets(self) -> list[str]:
        """The credentials to mask: every auth value but the user's name (not a secret, and masking
        a name such as "admin" would mangle every word that contains it) and what describes a
        structured credential (a key's name, access, permissions)."""
        return [value for key, value in _strings(self.auth) if value and key not in IDENTITY_KEYS | DESCRIPTIVE_FIELDS]

    def describe(self) -> str:
        """One line for reports and logs; never includes secrets."""
        where = self.base_url or "bundled emulator"
        extra = f", faults: {', '.join(self.faults)}" if self.faults else ""
        if self.emulator and self.reading != "default":
            extra += f", {self.reading} reading"
        auth = "credentials set" if any(self.auth.values()) else "no credentials"
        return f"{self.name} ({self.device} at {where}, {auth}{extra})"


def _near(word: str, choices) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _known(words) -> str:
    return ", ".join(sorted(words))


def load_targets(path: Path | str, selected: list[str] | None = None, environ=None) -> list[Target]:
    """Read the file, validate every target, and return the selected ones.

    With no selection, every target with `emulator = true` is selected.
    """
    path = Path(path)
    environ = os.environ if environ is None else environ
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TargetsError(f"{path}: no such targets file (give one with --targets-file)") from None
    except tomllib.TOMLDecodeError as exc:
        raise TargetsError(f"{path}: not valid TOML: {exc}") from None

    unknown_top = set(data) - {"targets"}
    if unknown_top:
        raise TargetsError(f'{path}: unknown top-level key "{sorted(unknown_top)[0]}" (only [targets.<name>] tables)')
    tables = data.get("targets")
    if not isinstance(tables, dict) or not tables:
        raise TargetsError(f"{path}: no [targets.<name>] tables")

    targets = {name: _parse_target(path, name, table) for name, table in tables.items()}

    if selected:
        for name in selected:
            if name not in targets:
                raise TargetsError(f'{path}: no target "{name}"{_near(name, targets)}; known: {_known(targets)}')
        chosen = [targets[name] for name in dict.fromkeys(selected)]
    else:
        chosen = [t for t in targets.values() if t.emulator]
        if not chosen:
            raise TargetsError(f"{path}: no emulator targets to run by default; choose one with --target ({_known(targets)})")

    _resolve_variables(path, chosen, environ)
    resolved = [_with_resolved(t, environ) for t in chosen]
    _one_target_per_device(path, resolved)
    return resolved


def _one_target_per_device(path: Path, targets: list[Target]) -> None:
    """Two targets that name the same device would each spend its rate budget and change its state
    behind the other's back: one run takes one target per device."""
    seen: dict[str, str] = {}
    for target in targets:
        if target.base_url is None:
            continue
        origin = origin_of(target.base_url)  # the device, spelled one way
        if origin in seen:
            raise TargetsError(f'{path}: targets "{seen[origin]}" and "{target.name}" name the same device ({origin}): '
                               "its rate budget and its state are one; run them one after the other")
        seen[origin] = target.name


def _parse_target(path: Path, name: str, table) -> Target:
    where = f'{path}: target "{name}"'
    if not isinstance(table, dict):
        raise TargetsError(f"{where}: must be a table")
    device = table.get("device")
    if device is None:
        raise TargetsError(f'{where}: key "device" is missing (one of {_known(PROFILES)})')
    if device not in PROFILES:
        raise TargetsError(f'{where}: key "device": unknown device "{device}"{_near(str(device), PROFILES)}; known: {_known(PROFILES)}')
    profile = PROFILES[device]

    allowed = COMMON_KEYS | set(profile.target_options)
    for key in table:
        if key not in allowed:
            raise TargetsError(f'{where}: unknown key "{key}"{_near(key, allowed)}')

    base_url = table.get("base_url")
    emulator = table.get("emulator", False)
    if not isinstance(emulator, bool):
        raise TargetsError(f'{where}: key "emulator" must be true or false')
    if (base_url is None) == (not emulator):
        raise TargetsError(f'{where}: key "base_url"/"emulator": give exactly one of base_url (real hardware) or emulator = true')
    if base_url is not None:
        base_url = _check_origin(where, base_url)

    faults = table.get("faults", [])
    if not _is_list_of_str(faults):
        raise TargetsError(f'{where}: key "faults" must be a list of fault names')
    if faults and not emulator:
        raise TargetsError(f'{where}: key "faults" is for emulator targets only')
    if faults:
        from conformlab.emulators import EMULATORS

        known_faults = EMULATORS[device].FAULTS
        for fault in faults:
            if fault not in known_faults:
                raise TargetsError(f'{where}: key "faults": unknown fault "{fault}"{_near(fault, known_faults)}; see `conformlab faults {device}`')

    destructive = table.get("destructive", False)
    if not isinstance(destructive, bool):
        raise TargetsError(f'{where}: key "destructive" must be true or false')

    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 600:
        raise TargetsError(f'{where}: key "timeout" must be a number of seconds between 0 and 600')

    restart_timeout = table.get("restart_timeout", DEFAULT_RESTART_TIMEOUT)
    if isinstance(restart_timeout, bool) or not isinstance(restart_timeout, (int, float)) or not 0 < restart_timeout <= 3600:
        raise TargetsError(f'{where}: key "restart_timeout" must be a number of seconds between 0 and 3600')

    reading = table.get("reading", "default")
    boot_seconds = table.get("boot_seconds", DEFAULT_BOOT_SECONDS)
    for key in ("reading", "boot_seconds"):
        if key in table and not emulator:
            raise TargetsError(f'{where}: key "{key}" is for emulator targets only')
    if reading not in READINGS:
        raise TargetsError(f'{where}: key "reading" must be one of {", ".join(map(repr, READINGS))}')
    if isinstance(boot_seconds, bool) or not isinstance(boot_seconds, (int, float)) or not 0 <= boot_seconds <= 60:
        raise TargetsError(f'{where}: key "boot_seconds" must be a number of seconds between 0 and 60')

    tls = table.get("tls", False)
    if "tls" in table and not emulator:
        raise TargetsError(f'{where}: key "tls" is for emulator targets only (a real device\'s base_url says https)')
    if not isinstance(tls, bool):
        raise TargetsError(f'{where}: key "tls" must be true or false')
    ca_bundle = table.get("ca_bundle")
    if ca_bundle is not None:
        if emulator or not str(base_url).startswith("https://"):
            raise TargetsError(f'{where}: key "ca_bundle" is for devices at an https base_url (an emulator brings its own CA)')
        if not isinstance(ca_bundle, str) or not ca_bundle:
            raise TargetsError(f'{where}: key "ca_bundle" must be the path of a PEM file')
        ca_path = (path.parent / ca_bundle) if not Path(ca_bundle).is_absolute() else Path(ca_bundle)
        if not ca_path.is_file():
            raise TargetsError(f'{where}: key "ca_bundle": no such file {ca_path}')
        ca_bundle = str(ca_path)

    waivers = _waivers(where, table.get("waive", []))

    auth = table.get("auth", {})
    if not isinstance(auth, dict):
        raise TargetsError(f'{where}: key "auth" must be a table [targets.{name}.auth]')
    for key, value in auth.items():
        if key not in profile.auth_keys:
            raise TargetsError(f'{where}: unknown key "auth.{key}"{_near(key, profile.auth_keys)}; {device} takes {_known(profile.auth_keys)}')
        if not isinstance(value, str) and not profile.structured_auth:
            raise TargetsError(f'{where}: key "auth.{key}" must be a string')
    problem = profile.check_auth(auth)
    if problem:
        raise TargetsError(f"{where}: key \"auth\": {problem}")

    firmware = table.get("firmware")
    if firmware is not None and (not isinstance(firmware, str) or not firmware.strip()):
        raise TargetsError(f'{where}: key "firmware" must be the version the device runs, as a string (e.g. "1.8.2")')

    options = {}
    for key, check in profile.target_options.items():
        if key in table:
            if key in profile.emulator_only_options and not emulator:
                raise TargetsError(f'{where}: key "{key}" is for emulator targets only')
            problem = check(table[key])
            if problem:
                raise TargetsError(f'{where}: key "{key}" {problem}')
            options[key] = table[key]

    return Target(
        name=name, device=device, base_url=base_url, emulator=emulator, faults=tuple(faults),
        destructive=destructive, timeout=float(timeout), waivers=waivers, auth=dict(auth), options=options,
        restart_timeout=float(restart_timeout), reading=reading, boot_seconds=float(boot_seconds),
        tls=tls, ca_bundle=ca_bundle, firmware=firmware,
    )


def _waivers(where: str, value) -> tuple[Waiver, ...]:
    """`waive`: requirement IDs, or tables { id = "...", reason = "...", until = "YYYY-MM-DD" }."""
    form = ('must be a list of requirement IDs or tables { id = "EVSE-...", reason = "why", until = "2027-03-31" }')
    if not isinstance(value, list):
        raise TargetsError(f'{where}: key "waive" {form}')
    waivers = []
    for entry in value:
        if isinstance(entry, str):
            waivers.append(Waiver(entry))
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise TargetsError(f'{where}: key "waive" {form}')
        unknown = sorted(set(entry) - {"id", "reason", "until"})
        if unknown:
            raise TargetsError(f'{where}: key "waive": waiver {entry["id"]}: unknown field "{unknown[0]}" (id, reason, until)')
        reason = entry.get("reason", "")
        if not isinstance(reason, str) or "\n" in reason:
            raise TargetsError(f'{where}: key "waive": waiver {entry["id"]}: reason must be one line of text')
        until = entry.get("until")
        if isinstance(until, str):
            try:
                until = datetime.date.fromisoformat(until)
            except ValueError:
                until = False
        if until is not None and (not isinstance(until, datetime.date) or isinstance(until, datetime.datetime)):
            raise TargetsError(f'{where}: key "waive": waiver {entry["id"]}: until must be a date like "2027-03-31"')
        waivers.append(Waiver(entry["id"], reason, until))
    ids = [w.id for w in waivers]
    twice = sorted({rid for rid in ids if ids.count(rid) > 1})
    if twice:
        raise TargetsError(f'{where}: key "waive": {twice[0]} is waived twice')
    return tuple(waivers)


def _check_origin(where: str, base_url) -> str:
    if not isinstance(base_url, str):
        raise TargetsError(f'{where}: key "base_url" must be a string like "http://192.168.4.1"')
    if _VARIABLE.search(base_url):
        return base_url  # checked again once resolved
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetsError(f'{where}: key "base_url": "{base_url}" is not an http(s) URL like "http://192.168.4.1"')
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise TargetsError(f'{where}: key "base_url": give the origin only ("{parts.scheme}://{parts.netloc}"); the device profile adds the API prefix')
    return f"{parts.scheme}://{parts.netloc}"


def _is_list_of_str(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _strings(value, where: str = ""):
    """(the key that holds it, the string) for every string in a value of the file, at any depth."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from ((sub or key, text) for sub, text in _strings(item))
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, where)


def _string_values(target: Target):
    if target.base_url:
        yield "base_url", target.base_url
    for key, value in target.auth.items():
        yield from ((f"auth.{key}", text) for _, text in _strings(value))


def _resolve_variables(path: Path, targets: list[Target], environ) -> None:
    """Report every unset variable of the chosen targets in one line."""
    missing = []
    for target in targets:
        for key, value in _string_values(target):
            for name in _VARIABLE.findall(value):
                if name not in environ:
                    missing.append(f'target "{target.name}" key "{key}" needs ${{{name}}}')
    if missing:
        raise TargetsError(f"{path}: environment variable not set: " + "; ".join(missing))


def _substitute(value, environ):
    """`${NAME}` replaced in every string of a value (a string, or a structured credential)."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: environ[m.group(1)], value)
    if isinstance(value, dict):
        return {key: _substitute(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, environ) for item in value]
    return value


def _with_resolved(target: Target, environ) -> Target:
    base_url = target.base_url
    if base_url:
        base_url = _check_origin(f'target "{target.name}"', _substitute(base_url, environ))
    auth = {k: _substitute(v, environ) for k, v in target.auth.items()}
    return Target(**{**target.__dict__, "base_url": base_url, "auth": auth})
