"""Emulator of the ESP32 EVSE charger's REST API (esp32-evse-api.txt + NOTES.md).

A stateful device behind base path /api/v1: live state, seven configuration blocks validated
against a deliberately limited board, optional HTTP Basic auth, scripting, firmware/OTA, Nextion,
system endpoints, and an unauthenticated WebDAV filesystem under /dav/. Conventions: JSON bodies
need `Content-Type: application/json` exactly (415), bodies above 51,200 bytes get 413 (decided
from Content-Length before the body is read; not for the raw uploads), successful writes answer
`text/plain` `OK`, every error answer is a short text/html body after which the connection is
closed. Processing order: route (404) -> auth (401) -> size (413) -> content type (415) ->
JSON parse/validate (400) -> apply.

Switch on named faults (FAULTS; each one realistic firmware bug tied to the sentence it breaks)
to check that a conformance suite catches it.

Readings of ambiguous passages
------------------------------
- chargingCurrent range: the document gives none for the live current. Read as 6 A (the lowest
  current IEC 61851 lets a PWM pilot offer) .. maxChargingCurrent; defaultChargingCurrent the
  same. Values are kept at the documented 0.1 A resolution (rounded).
- maxChargingCurrent is checked on its own (like a firmware setter): lowering it does not
  re-validate or change defaultChargingCurrent or the live current.
- Panic log when none is stored: GET /log/panic answers 404 ("the requested resource does not
  exist"); DELETE /log/panic answers OK even when none is stored.
- Unknown keys next to known ones are ignored; a body with no recognised key is 400.
- Validation is all-or-nothing: the whole body is validated before anything is applied, so a 400
  changes nothing (the document does not say; partial application would be a worse reading).
- A documented path called with an undocumented method answers 404 (like unknown endpoints; the
  document lists no 405), e.g. POST /config ("There is no combined POST").
- timezone: the REST page says "POSIX TZ string" (NOTES.md: the scheduler page says IANA names
  and current firmware accepts only those). The emulator follows the REST page: POSIX TZ syntax
  (std offset [dst [offset] [,start[/time],end[/time]]]) is accepted, anything else is 400.
- /config/serial: the array must have exactly as many entries as the board declares serials;
  within each entry only the keys present are applied (an entry {} leaves that port as it is);
  at least one entry must carry a recognised key.
- Schedules replace the whole array; each entry needs action and all seven weekday masks.
- Credentials: auth is on when the stored user or password is non-empty ("both empty strings
  disable"); both keys are required in POST /credentials.
- The /api/v1 size and content-type rules apply to every endpoint with a JSON body; endpoints
  without a body ignore one. /firmware/upload and /nextion/upload take raw bodies: no 415, no
  50 KB limit. Bare-number endpoints for limits and time take numbers >= 0.
- dataBits / stopBits: the table lists 5, 6, 7, 8 and 1, 1.5, 2; the example writes them as JSON
  strings ("8", "1"). Strings, as in the example; numbers are a wrong type (400).
- check-update 404: the status table says "firmware check with nothing available", the section
  says "if the latest-version info cannot be fetched". The section wins: 404 only when the info
  cannot be fetched; an up-to-date device answers 200 with available == current.
- Depth of PROPFIND: 0 or 1; a missing Depth or "infinity" is answered like 1.

Restarts
--------
POST /restart ("Schedules a restart about one second later"), a successful POST /firmware/upload
and a POST /firmware/update that flashes a new version restart through the core's `restart()`:
the answer leaves, one second later every connection drops and the device is off the network for
`boot_seconds`; then it boots: uptime starts again, the runtime log starts again, the live values
take the configured defaults ("defaultChargingCurrent: Current applied at boot", the default
limits), a pending authorization is gone; configuration, credentials, channel, firmware version,
panic log, files and the emulator's counters survive (counters["restarts"] += 1).

Emulator controls (/__emulator__/): the core's (counters, reset, advance, restart) and the device's
own: live (set /state fields), panic, log, script-output, update-info, nextion.

The alternative reading (`reading = "alternative"`)
---------------------------------------------------
Every silent choice above that a check depends on, made the other way a conforming device may:
- the firmware channel stores any non-empty string (the document only says what `channels` lists);
- timezone takes IANA zone names only (the scheduler page, and current firmware: NOTES.md); the
  default zone is Europe/Berlin; a POSIX string is 400;
- GET /config/scheduler leaves out the weekday masks that are 0; a POST may leave them out (0);
- error answers are a small JSON object {"error": ...}, and the connection stays open;
- a documented path called with an undocumented method answers 405 with an Allow header;
- capabilities beyond the document's two examples (rcm, three-phase metering, socket outlet,
  the board's minimum lock break time) are not checked: the write is stored;
- a charging current above maxChargingCurrent is clamped to the ceiling (answered OK);
- a negative session limit means "none" (stored as 0);
- GET /log/panic with nothing stored answers 200 with an empty body;
- WebDAV checks the HTTP Basic credentials, and GET /info reports a build date (appDate) from
  September 2026 (firmware from mid-2026 on, NOTES.md);
- serial dataBits/stopBits are answered as JSON numbers (the table lists 5, 6, 7, 8 and 1, 1.5,
  2); a POST takes numbers or strings;
- answers carry a few fields the document does not show (GET /info mac, GET /wifi/state hostname,
  scan entries channel).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import json
import math
import posixpath
import re
import struct
import zoneinfo
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape as xml_escape

from . import credentials as compare
from .core import JSON, RAW, ControlError, DeviceEmulator, Refused, Route
from .server import Request, Response

PREFIX = "/api/v1"
DAV = "/dav"
# The build date the alternative reports: firmware from mid-2026 on, which checks credentials on WebDAV
# (NOTES.md); the default reports the document's "Feb 21 2025", firmware whose WebDAV is open.
NEW_FIRMWARE_DATE = "Sep 12 2026"
BODY_LIMIT = 51_200  # "50 KB" = 51,200 bytes (NOTES.md)
# IEC 61851: the pilot PWM cannot offer less than 6 A; read as the lower bound of every current.
MIN_CURRENT = 6
REALM = 'Basic realm="Users"'

FAILED_CREDENTIAL = ('A failed or missing credential returns 401 Unauthorized with a WWW-Authenticate: '
                     'Basic realm="Users" header.')
FAULTS: dict[str, str] = {
    "partial_write_resets_others":
        "Object endpoints apply only the keys present; at least one known key must be supplied",
    "oversized_body_accepted":
        "50 KB (larger bodies are rejected with 413)",
    "body_limit_too_small":
        "The 50 KB limit is 51,200 bytes. (NOTES.md)",
    "write_without_credentials":
        "As soon as a non-empty credential pair is stored, all endpoints require it.",
    "wifi_password_returned":
        "The GET response never returns the password.",
    "max_current_range_unchecked":
        "you cannot select cur_vlt on a board without voltage sensing, or a maxChargingCurrent "
        "outside 6–63 A — such writes return 400.",
    "empty_object_accepted":
        "at least one known key must be supplied",
    "wrong_auth_realm":
        "A failed or missing credential returns 401 Unauthorized with a WWW-Authenticate: "
        "Basic realm=\"Users\" header.",
    "content_type_unchecked":
        "Body sent without Content-Type: application/json",
    "serial_length_unchecked":
        "A POST must contain exactly the same number of entries as the GET returns, otherwise "
        "it is rejected.",
    "capability_unchecked":
        "Writes are validated against the board's real capabilities. For example you cannot "
        "select cur_vlt on a board without voltage sensing",
    "schedule_mask_unchecked":
        "Each weekday value is a 24-bit hour mask",
    "unknown_timezone_accepted":
        "POSIX TZ string; an unknown value returns 400",
    "write_answers_json":
        "on success respond 200 with the plain-text body OK",
    "missing_component_404":
        "A non-existent id returns JSON null.",
    "log_count_missing":
        "GET /log streams the runtime log as plain text, with an X-Count header",
    "malformed_json_500":
        "Bad request — malformed JSON, wrong value type, out-of-range value, or no recognised field",
    "bare_scalar_type_unchecked":
        "These take a bare JSON scalar as the body, not an object.",
    "unknown_path_served":
        "Unknown endpoint, or the requested resource does not exist",
    "authorize_ignored":
        "the first clears a pending authorization so charging can begin",
    "panic_time_missing":
        "GET /log/panic returns the stored panic/crash log as plain text with an X-Time header "
        "(timestamp of the panic)",
    "state_current_as_string":
        "chargingCurrent | number | Active current offered to the vehicle, in A (0.1 A resolution)",
    "log_index_ignored":
        "optional ?index=<n> for incremental reads (same scheme as /script/output)",
    "combined_config_post":
        "There is no combined POST — write each block to its own endpoint.",
    # firmware built after mid-2026 (appDate) that still serves WebDAV without credentials
    "dav_open_on_new_firmware":
        "Firmware from mid-2026 on checks the HTTP Basic credentials on WebDAV too. (NOTES.md)",
    # Near-miss credentials (conformlab.near_miss): the comparison lets an almost-right one through.
    # the right user with an empty password passes (the password is compared only when one is given)
    "empty_password_accepted": FAILED_CREDENTIAL,
    # the password is compared over the given length: the right one cut short passes
    "password_prefix_accepted": FAILED_CREDENTIAL,
    # the password is compared over one character less than stored: without its last character it passes
    "password_last_char_ignored": FAILED_CREDENTIAL,
    # the password is compared over the stored length only: with anything appended it passes
    "password_extra_ignored": FAILED_CREDENTIAL,
    # the password is compared without regard to case
    "password_case_insensitive": FAILED_CREDENTIAL,
    # the decoded password is trimmed before the comparison: with a space appended it passes
    "password_whitespace_trimmed": FAILED_CREDENTIAL,
    # the scheme is not checked: the right user:password in the Bearer scheme passes
    "basic_scheme_unchecked": FAILED_CREDENTIAL,
    # the header is found by a substring search: the credentials in Proxy-Authorization pass
    "proxy_authorization_read": FAILED_CREDENTIAL,
}
# fault -> the flaw it gives the password comparison
PASSWORD_FLAWS = compare.comparison_faults("password", (compare.EMPTY, compare.PREFIX, compare.SHORT,
                                                         compare.STORED_LENGTH, compare.CASE, compare.TRIMMED))
# fault -> the near-miss credential (conformlab.near_miss) it lets through
NEAR_MISS_FAULTS: dict[str, str] = {
    **compare.near_misses_let_through(PASSWORD_FLAWS, "password"),
    "basic_scheme_unchecked": "credentials-in-bearer-scheme",
    "proxy_authorization_read": "credentials-in-proxy-authorization",
}

# ---------------------------------------------------------------------------------------------
# Defaults: the document's example values.

DEFAULT_STATE: dict[str, Any] = {
    "state": "C2", "available": True, "enabled": True, "pendingAuth": False, "limitReached": False,
    "chargingCurrent": 16.0, "consumptionLimit": 0, "chargingTimeLimit": 0, "underPowerLimit": 0,
    "errors": None, "sessionTime": 1820, "chargingTime": 1740, "consumption": 9320000,
    "totalConsumption": 412900000, "power": 3680, "voltage": [231.4, 0.0, 0.0],
    "current": [16.0, 0.0, 0.0],
}

DEFAULT_CONFIG: dict[str, Any] = {
    "evse": {
        "maxChargingCurrent": 16, "defaultChargingCurrent": 10.0, "requireAuth": False,
        "socketOutlet": False, "rcm": False, "temperatureThreshold": 60,
        "defaultConsumptionLimit": 0, "defaultChargingTimeLimit": 0, "defaultUnderPowerLimit": 0,
        "socketLockOperatingTime": 3000, "socketLockBreakTime": 1000,
        "socketLockDetectionHigh": False, "socketLockRetryCount": 3, "energyMeterMode": "cur",
        "energyMeterAcVoltage": 230, "energyMeterThreePhases": False,
    },
    "wifi": {
        "enabled": True, "ssid": "myhome", "password": "hunter2hunter2", "staticEnabled": False,
        "staticIp": "", "staticGateway": "", "staticNetmask": "", "staticDns": "",
    },
    "discovery": {"hostname": "evse", "instanceName": "EVSE"},
    "serial": [
        {"mode": "log", "baudRate": 115200, "dataBits": "8", "stopBits": "1", "parity": "disable"},
        {"mode": "modbus", "baudRate": 9600, "dataBits": "8", "stopBits": "1", "parity": "even"},
    ],
    "modbus": {"tcpEnabled": False, "unitId": 1},
    "script": {"enabled": True, "autoReload": True},
    "scheduler": {
        "ntpEnabled": True, "ntpServer": "pool.ntp.org", "ntpFromDhcp": False,
        "timezone": "CET-1CEST,M3.5.0,M10.5.0/3",
        "schedules": [{"action": "ch_cur_6a", "mon": 16777215, "tue": 16777215, "wed": 16777215,
                       "thu": 16777215, "fri": 16777215, "sat": 0, "sun": 0}],
    },
}
BLOCKS = tuple(DEFAULT_CONFIG)  # evse, wifi, discovery, serial, modbus, script, scheduler

# Factory values of the firmware (differ from the document's example): what the
# partial_write_resets_others fault writes into the keys a POST /config/evse leaves out.
FACTORY_EVSE: dict[str, Any] = {
    **DEFAULT_CONFIG["evse"], "maxChargingCurrent": 32, "defaultChargingCurrent": 6.0,
    "temperatureThreshold": 70, "socketLockOperatingTime": 300, "socketLockBreakTime": 1500,
    "socketLockRetryCount": 5, "energyMeterMode": "dummy", "energyMeterAcVoltage": 250,
}

# The emulated board: limited on purpose so that capability checks have something to refuse.
BOARD: dict[str, Any] = {
    "deviceName": "ESP32 EVSE", "socketLock": True, "proximity": True,
    "socketLockMinBreakTime": 1000, "rcm": False, "temperatureSensor": True,
    "energyMeter": "cur", "energyMeterThreePhases": False,
    "serials": [{"type": "uart", "name": "UART"}, {"type": "rs485", "name": "RS485"}],
    "auxInputs": ["AUX_IN1"], "auxOutputs": ["AUX_OUT1"], "auxAnalogInputs": [],
}

WIFI_STATE = {"ip": "192.168.1.50", "mac": "AA:BB:CC:DD:EE:FF", "rssi": -57, "apIp": "192.168.4.1",
              "apMac": "AA:BB:CC:DD:EE:F0", "apEnabled": True, "apSsid": "esp32-evse"}
WIFI_SCAN = [{"ssid": "myhome", "rssi": -57, "auth": True}, {"ssid": "guest", "rssi": -71, "auth": False}]
INFO = {
    "uptime": 86400, "appVersion": "v1.1.0", "appDate": "Feb 21 2025", "appTime": "07:13:00",
    "idfVersion": "v5.4.1", "chip": "esp32", "chipCores": 2, "chipRevision": 3,
    "heap": {"allocated": 120000, "free": 90000, "largestFreeBlock": 60000, "minFree": 70000},
    "temperatureSensorCount": 1, "temperatureLow": 24.5, "temperatureHigh": 41.0,
}
CHANNELS = ["stable", "beta"]
COMPONENTS = [
    {"id": "solar", "name": "Solar surplus", "description": "Follows the PV surplus with the charging current",
     "params": [{"key": "min_current", "name": "Minimum current", "type": "number", "value": 6},
                {"key": "enabled", "name": "Enabled", "type": "boolean", "value": True}]},
    {"id": "night", "name": "Night tariff", "description": "Charges only during the low tariff hours",
     "params": [{"key": "start_hour", "name": "Start hour", "type": "number", "value": 22},
                {"key": "end_hour", "name": "End hour", "type": "number", "value": 6},
                {"key": "enabled", "name": "Enabled", "type": "boolean", "value": False}]},
]
BOOT_LOG = ["I (312) evse: Starting", "I (845) wifi: Connected to myhome", "I (1203) http: Server started"]
SCRIPT_OUTPUT = ["main.lua started", "solar: surplus 0 W, waiting"]
DAV_FILES = {
    "main.lua": b'-- Entry script, loaded by the Lua engine at boot\nlocal util = require("lib.util")\n'
                b'print("main.lua started")\nutil.every(60, function() print(evse.getpower()) end)\n',
    "lib/util.lua": b"local M = {}\nfunction M.every(seconds, fn)\n  timer.every(seconds * 1000, fn)\n"
                    b"end\nreturn M\n",
}
INDEX_HTML = (b'<!DOCTYPE html><html><head><title>ESP32 EVSE</title></head>'
              b'<body><div id="app"></div><script src="/app.js"></script></body></html>')
STATES = ("A", "B1", "B2", "C1", "C2", "D1", "D2", "E", "F")
ERRORS = ("pilot_fault", "diode_short", "lock_fault", "unlock_fault", "rcm_triggered",
          "rcm_selftest_fault", "temperature_high", "temperature_fault")

# ---------------------------------------------------------------------------------------------
# Table-driven validation (a refused value raises the core's Refused: 400)


@dataclass(frozen=True)
class Field:
    kind: str  # "bool" | "int" | "number" | "str" | "list" (of `items` objects)
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    min_len: int = 0
    max_len: int | None = None
    syntax: Callable[[str], bool] | None = None
    items: dict[str, Field] | None = None  # kind "list": every entry needs all these keys
    unchecked_by: str | None = None  # fault that skips the range / choices / syntax check


BOOL = Field("bool")
STR = Field("str")
UINT = Field("int", min=0)
NONNEG = Field("number", min=0)


def check_value(field: Field, value: Any, faults: frozenset[str], name: str = "value") -> Any:
    """Return the value (integers normalised: 16.0 -> 16) or raise Refused."""
    if field.kind == "bool":
        if type(value) is not bool:
            raise Refused(f"{name}: expected a boolean")
    elif field.kind in ("int", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise Refused(f"{name}: expected a number")
        if field.kind == "int" and isinstance(value, float):
            if not value.is_integer():
                raise Refused(f"{name}: expected an integer")
            value = int(value)
    elif field.kind == "str":
        if not isinstance(value, str):
            raise Refused(f"{name}: expected a string")
    elif field.kind == "list":
        if not isinstance(value, list):
            raise Refused(f"{name}: expected an array")
        return [_check_entry(field.items or {}, entry, faults, f"{name}[{i}]") for i, entry in enumerate(value)]
    if field.unchecked_by in faults:
        return value
    if field.min is not None and value < field.min:
        raise Refused(f"{name}: must be at least {field.min}")
    if field.max is not None and value > field.max:
        raise Refused(f"{name}: must be at most {field.max}")
    if field.choices and value not in field.choices:
        raise Refused(f"{name}: must be one of {', '.join(map(str, field.choices))}")
    if field.kind == "str" and not (field.min_len <= len(value) <= (field.max_len or len(value))):
        raise Refused(f"{name}: length must be {field.min_len}..{field.max_len}")
    if field.syntax and not field.syntax(value):
        raise Refused(f"{name}: unknown value")
    return value


def _check_entry(table: dict[str, Field], entry: Any, faults: frozenset[str], name: str) -> dict:
    if not isinstance(entry, dict):
        raise Refused(f"{name}: expected an object")
    missing = [key for key in table if key not in entry]
    if missing:
        raise Refused(f"{name}: missing {', '.join(missing)}")
    return {key: check_value(field, entry[key], faults, f"{name}.{key}") for key, field in table.items()}


def coerce(kind: str, value: Any) -> Any:
    """What a firmware that does not check the JSON type makes of a bare scalar
    (fault bare_scalar_type_unchecked): "true"/1 -> True, "10" -> 10.0, 5 -> "5"."""
    if kind == "bool":
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value != 0
    elif kind in ("int", "number"):
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
    elif kind == "str" and isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return value


# POSIX TZ: std offset [dst [offset] [,start[/time],end[/time]]]
_TZ_NAME = re.compile(r"[A-Za-z]{3,}|<[A-Za-z0-9+-]{3,}>")
_TZ_OFFSET = re.compile(r"[+-]?(\d{1,3})(?::(\d{1,2}))?(?::(\d{1,2}))?")
_TZ_DATE = re.compile(r"J(\d{1,3})|(\d{1,3})|M(\d{1,2})\.(\d)\.(\d)")


def is_posix_tz(text: str) -> bool:
    """True for POSIX TZ strings such as "CET-1CEST,M3.5.0,M10.5.0/3", "UTC0", "<+03>-3"."""
    pos = 0

    def take(pattern: re.Pattern[str] | str) -> re.Match[str] | None:
        nonlocal pos
        match = re.compile(re.escape(pattern)).match(text, pos) if isinstance(pattern, str) \
            else pattern.match(text, pos)
        if match:
            pos = match.end()
        return match

    def offset(max_hours: int, required: bool) -> bool:
        match = take(_TZ_OFFSET)
        if match is None:
            return not required
        hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
        return hours <= max_hours and minutes <= 59 and seconds <= 59

    def date() -> bool:
        match = take(_TZ_DATE)
        if match is None:
            return False
        julian, day, month, week, weekday = (int(g) if g else None for g in match.groups())
        if julian is not None:
            return 1 <= julian <= 365
        if day is not None:
            return day <= 365
        return 1 <= month <= 12 and 1 <= week <= 5 and weekday <= 6

    if not take(_TZ_NAME) or not offset(24, required=True):
        return False
    if pos == len(text):
        return True
    if not take(_TZ_NAME) or not offset(24, required=False):
        return False
    if pos == len(text):
        return True
    for _ in range(2):  # ,start[/time],end[/time]
        if not take(",") or not date():
            return False
        if take("/") and not offset(167, required=True):
            return False
    return pos == len(text)


_IANA = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")


def is_iana_tz(text: str) -> bool:
    """True for IANA zone names the tz database knows (Europe/Berlin, Etc/UTC)."""
    if not _IANA.fullmatch(text) or text.startswith(("posix", "right")):
        return False
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


MASK = Field("int", min=0, max=0xFFFFFF, unchecked_by="schedule_mask_unchecked")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SCHEDULE = {"action": Field("str", choices=("enable", "available", "ch_cur_6a", "ch_cur_8a", "ch_cur_10a")),
            **{day: MASK for day in WEEKDAYS}}
IANA_TIMEZONE = Field("str", syntax=is_iana_tz, unchecked_by="unknown_timezone_accepted")
NUMBER_CHOICES = {"dataBits": (5, 6, 7, 8), "stopBits": (1, 1.5, 2)}  # the alternative's serial values

CONFIG_FIELDS: dict[str, dict[str, Field]] = {
    "evse": {
        "maxChargingCurrent": Field("int", min=6, max=63, unchecked_by="max_current_range_unchecked"),
        "defaultChargingCurrent": Field("number", min=MIN_CURRENT),  # max: maxChargingCurrent
        "requireAuth": BOOL, "socketOutlet": BOOL, "rcm": BOOL,
        "temperatureThreshold": Field("number"),
        "defaultConsumptionLimit": UINT, "defaultChargingTimeLimit": UINT,
        "defaultUnderPowerLimit": UINT, "socketLockOperatingTime": UINT,
        "socketLockBreakTime": UINT, "socketLockDetectionHigh": BOOL, "socketLockRetryCount": UINT,
        "energyMeterMode": Field("str", choices=("dummy", "cur", "cur_vlt")),
        "energyMeterAcVoltage": UINT, "energyMeterThreePhases": BOOL,
    },
    "wifi": {"enabled": BOOL, "ssid": STR, "password": STR, "staticEnabled": BOOL, "staticIp": STR,
             "staticGateway": STR, "staticNetmask": STR, "staticDns": STR},
    "discovery": {"hostname": Field("str", min_len=1, max_len=31),
                  "instanceName": Field("str", min_len=1, max_len=31)},
    "serial": {  # one entry of the array
        "mode": Field("str", choices=("none", "at", "log", "nextion", "modbus", "script")),
        "baudRate": Field("int", min=1),
        "dataBits": Field("str", choices=("5", "6", "7", "8")),
        "stopBits": Field("str", choices=("1", "1.5", "2")),
        "parity": Field("str", choices=("disable", "even", "odd")),
    },
    "modbus": {"tcpEnabled": BOOL, "unitId": Field("int", min=1, max=255)},
    "script": {"enabled": BOOL, "autoReload": BOOL},
    "scheduler": {
        "ntpEnabled": BOOL, "ntpServer": STR, "ntpFromDhcp": BOOL,
        "timezone": Field("str", syntax=is_posix_tz, unchecked_by="unknown_timezone_accepted"),
        "schedules": Field("list", items=SCHEDULE),
    },
}

STATE_FIELDS: dict[str, Field] = {  # writable live values; chargingCurrent max: maxChargingCurrent
    "available": BOOL, "enabled": BOOL, "chargingCurrent": Field("number", min=MIN_CURRENT),
    "consumptionLimit": NONNEG, "chargingTimeLimit": NONNEG, "underPowerLimit": NONNEG,
}
SCALAR_STATE = {"/state/enabled": "enabled", "/state/available": "available",
                "/state/charging-current": "chargingCurrent", "/state/consumption-limit": "consumptionLimit",
                "/state/charging-time-limit": "chargingTimeLimit", "/state/under-power-limit": "underPowerLimit"}

LIVE_FIELDS: dict[str, Field] = {  # what POST /__emulator__/live may set directly
    "state": Field("str", choices=STATES), "pendingAuth": BOOL, "limitReached": BOOL,
    "sessionTime": NONNEG, "chargingTime": NONNEG, "consumption": NONNEG, "totalConsumption": NONNEG,
    "power": NONNEG, "enabled": BOOL, "available": BOOL, "chargingCurrent": NONNEG,
}

# ---------------------------------------------------------------------------------------------
# Routes (paths below /api/v1). Every endpoint needs the stored credential pair, if one is set: the
# auth hook reads no access level from a route.

ROUTES = (
    Route("GET", "/state", "get_state"),
    Route("POST", "/state", "post_state", JSON),
    *(Route("POST", path, "post_state_scalar", JSON, arg=key) for path, key in SCALAR_STATE.items()),
    Route("POST", "/state/authorize", "authorize_charging"),
    Route("POST", "/state/reset-total-consumption", "reset_total_consumption"),
    *(Route("GET", f"/config/{block}", "get_block", arg=block) for block in BLOCKS),
    *(Route("POST", f"/config/{block}", "post_block", JSON, arg=block) for block in BLOCKS),
    Route("GET", "/config", "get_config"),
    Route("GET", "/wifi/scan", "wifi_scan"),
    Route("GET", "/wifi/state", "get_wifi_state"),
    Route("POST", "/wifi/state/ap", "wifi_ap", JSON),
    Route("GET", "/script/output", "script_output"),
    Route("POST", "/script/reload", "script_reload"),
    Route("GET", "/script/components", "list_components"),
    Route("GET", "/script/components/{id}", "get_component"),
    Route("POST", "/script/components/{id}", "post_component", JSON),
    Route("GET", "/firmware/channels", "channels"),
    Route("GET", "/firmware/channel", "get_channel"),
    Route("POST", "/firmware/channel", "post_channel", JSON),
    Route("GET", "/firmware/check-update", "check_update"),
    Route("POST", "/firmware/update", "firmware_update"),
    Route("POST", "/firmware/upload", "firmware_upload", RAW),
    Route("GET", "/nextion/info", "nextion_info"),
    Route("POST", "/nextion/upload", "nextion_upload", RAW),
    Route("GET", "/info", "info"),
    Route("GET", "/board-config", "board_config"),
    Route("GET", "/time", "get_time"),
    Route("POST", "/time", "post_time", JSON),
    Route("POST", "/restart", "post_restart"),
    Route("POST", "/credentials", "post_credentials", JSON),
    Route("GET", "/log", "log"),
    Route("GET", "/log/panic", "get_panic"),
    Route("DELETE", "/log/panic", "delete_panic"),
)
# The endpoint the firmware has only with fault combined_config_post ("There is no combined POST").
COMBINED_CONFIG_POST = Route("POST", "/config", "post_config", JSON)
RESTART_DELAY = 1.0  # "Schedules a restart about one second later"
COUNTERS = ("restarts", "firmwareUpdates", "firmwareUploads", "nextionUploads")  # GET /__emulator__/counters


def is_app_image(data: bytes, project: str = "esp32-evse") -> bool:
    """An ESP-IDF app image of `project`: magic 0xE9, app description magic 0xABCD5432 at 32,
    NUL-padded project name at 80..112."""
    return (len(data) >= 112 and data[0] == 0xE9
            and struct.unpack_from("<I", data, 32)[0] == 0xABCD5432
            and data[80:112].split(b"\0", 1)[0] == project.encode())


# ---------------------------------------------------------------------------------------------


class Esp32EvseEmulator(DeviceEmulator):
    NAME = "esp32-evse"
    PREFIX = PREFIX
    ROUTES = ROUTES
    FAULTS = FAULTS

    @property
    def reading(self) -> str:
        return self.__dict__.get("_reading", "default")

    @reading.setter
    def reading(self, value: str) -> None:
        """Set after construction (start_emulator): the state at start depends on it."""
        self.__dict__["_reading"] = value
        if hasattr(self, "config"):
            self.config["scheduler"]["timezone"] = self._default_timezone()

    def _default_timezone(self) -> str:
        return "Europe/Berlin" if self.alternative else DEFAULT_CONFIG["scheduler"]["timezone"]

    def __init__(self, faults=(), auth=None) -> None:
        super().__init__(faults, auth)
        self.reset()

    def reset(self) -> None:
        """Back to the state at start (also POST /__emulator__/reset)."""
        super().reset()
        self.live = copy.deepcopy(DEFAULT_STATE)
        self.config = copy.deepcopy(DEFAULT_CONFIG)
        self.config["scheduler"]["timezone"] = self._default_timezone()
        self.credentials = (self.auth.get("username") or "", self.auth.get("password") or "")
        self.wifi_state = dict(WIFI_STATE)
        self.components = copy.deepcopy(COMPONENTS)
        self.channel = "stable"
        self.app_version = INFO["appVersion"]
        self.update_available: str | None = "v1.2.0"
        self.nextion: dict | None = None
        self.panic: tuple[str, float] | None = None
        self.log_lines = list(BOOT_LOG)
        self.script_lines = list(SCRIPT_OUTPUT)
        self.time_shift = 0.0  # POST /time: how far the device's clock is set from the wall clock
        self.booted_at = self.now() - INFO["uptime"]
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.state_before_unavailable = "A"
        self.dav = DavTree(DAV_FILES)

    # -- request pipeline: route -> auth -> size -> content type -> parse/validate -> apply ----

    def device_head(self, req: Request) -> Response | None:
        """The firmware answers 404/405, 401, 413 and 415 from the request head, before it reads
        a body: the pipeline of a full request up to the body."""
        if _is_dav(req.path):
            return None  # WebDAV needs the body (PUT): answered by outside_prefix
        admitted = self.admit(req)
        return admitted if isinstance(admitted, Response) else None

    def authorize(self, req: Request, route: Route) -> Response | None:
        """What the firmware checks before the body: the credentials (401), the size (413), the
        content type (415). On the head and again on the full request (a chunked body's size is
        known only then)."""
        exempt = self.fault("write_without_credentials") and route.arg == "chargingCurrent"
        if not exempt and not self._authorized(req):
            return self._unauthorized()
        if route.body != RAW:
            size, limit = _body_size(req), self._body_limit()
            if size is not None and limit is not None and size > limit:
                return self.error(413)
        if (route.body == JSON and not self.fault("content_type_unchecked")
                and req.headers.get("Content-Type") != "application/json"):
            return self.error(415)
        return None

    def read_body(self, req: Request, route: Route) -> Any:
        try:
            return super().read_body(req, route)
        except Refused as exc:  # malformed JSON
            if self.fault("malformed_json_500"):
                raise Refused(exc.detail, 500) from None
            raise

    def resolve(self, req: Request) -> Route | None:
        route, combined = super().resolve(req), COMBINED_CONFIG_POST
        if route is None and self.fault("combined_config_post") \
                and (req.method, self.subpath(req.path)) == (combined.method, combined.path):
            req.route = route = combined  # the one endpoint that exists only under a fault
        return route

    def outside_prefix(self, req: Request) -> Response:
        if not _is_dav(req.path):
            return self.error(404)
        if self.alternative and not self._authorized(req):
            return self._unauthorized()  # firmware from mid-2026 on (NOTES.md)
        return self.dav.handle(req, self)

    def not_found(self, req: Request) -> Response:
        if self.fault("unknown_path_served") and req.path.startswith(PREFIX + "/"):
            # the web UI's catch-all answers an unknown API path with its page (behind the credentials)
            return self._unauthorized() if not self._authorized(req) else \
                Response(200, {"Content-Type": "text/html"}, INDEX_HTML)
        return self.error(404)

    def method_not_allowed(self, req: Request, allowed: list[str]) -> Response:
        if self.alternative:
            return self.error(405, "method not allowed", headers={"Allow": ", ".join(allowed)})
        return self.error(404)  # like an unknown endpoint: the document lists no 405

    def _body_limit(self) -> int | None:
        if self.fault("oversized_body_accepted"):
            return None
        return 50_000 if self.fault("body_limit_too_small") else BODY_LIMIT

    # -- the one place for auth ------------------------------------------------------------------

    def _authorized(self, req: Request) -> bool:
        user, password = self.credentials
        if not user and not password:
            return True
        header = req.headers.get("Authorization")
        if header is None and self.fault("proxy_authorization_read"):
            header = req.headers.get("Proxy-Authorization")
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "basic" and not (self.fault("basic_scheme_unchecked") and token):
            return False
        try:
            given_user, sep, given_password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return bool(sep) & hmac.compare_digest(given_user.encode(), user.encode()) \
            & compare.matches(given_password, password, compare.flaws_of(self, PASSWORD_FLAWS))

    def _unauthorized(self) -> Response:
        realm = 'Basic realm="EVSE"' if self.fault("wrong_auth_realm") else REALM
        return self.error(401, headers={"WWW-Authenticate": realm})

    def error(self, status: int, detail: str | None = None, headers=None, *, code: str | None = None) -> Response:
        """The firmware's short text/html error, connection closed (NOTES.md); the alternative
        answers a JSON object and keeps the connection."""
        if not self.alternative:
            return super().error(status, detail, headers)
        return Response.json({"error": detail or f"{status}"}, status, headers)

    # -- helpers ---------------------------------------------------------------------------------

    def _ok(self) -> Response:
        if self.fault("write_answers_json"):
            return Response.json({"success": True})
        return Response.text("OK")

    def _fields(self, table: dict[str, Field], body: Any, *, config: bool = False) -> dict[str, Any]:
        """Validate the recognised keys of an object body; no recognised key -> 400."""
        if not isinstance(body, dict):
            raise Refused("expected a JSON object")
        known = [key for key in body if key in table]
        if not known and not (config and self.fault("empty_object_accepted")):
            raise Refused("no recognised field")
        return {key: check_value(table[key], body[key], self.faults, key) for key in known}

    def _scalar(self, field: Field, body: Any) -> Any:
        """A bare JSON scalar body."""
        if self.fault("bare_scalar_type_unchecked"):
            body = coerce(field.kind, body)
        if isinstance(body, (dict, list)) or body is None:
            raise Refused("expected a bare JSON scalar")
        return check_value(field, body, self.faults)

    def _text_lines(self, req: Request, lines: list[str], *, count: bool = True, index: bool = True) -> Response:
        start = 0
        if index and "index" in req.query:
            raw = req.query["index"][0]
            if not raw.isascii() or not raw.isdigit():
                raise Refused("index must be a non-negative integer")
            start = int(raw)
        headers = {"X-Count": str(len(lines))} if count else {}
        return Response.text("".join(line + "\n" for line in lines[start:]), headers=headers)

    def boot(self) -> None:
        """What a start does: see "Restarts" above."""
        self.count("restarts")
        self.booted_at = self.now()
        self.log_lines = list(BOOT_LOG)
        evse = self.config["evse"]
        self.live.update({
            "chargingCurrent": round(float(evse["defaultChargingCurrent"]), 1),
            "consumptionLimit": evse["defaultConsumptionLimit"],
            "chargingTimeLimit": evse["defaultChargingTimeLimit"],
            "underPowerLimit": evse["defaultUnderPowerLimit"],
            "pendingAuth": False, "limitReached": False,
        })

    # -- state -----------------------------------------------------------------------------------

    def get_state(self, req: Request) -> Response:
        state = copy.deepcopy(self.live)
        if self.fault("state_current_as_string"):
            state["chargingCurrent"] = f"{state['chargingCurrent']:.1f}"
        return Response.json(state)

    def _state_fields(self) -> dict[str, Field]:
        if not self.alternative:
            return STATE_FIELDS
        # the alternative: a negative limit means "none" (0)
        return {**STATE_FIELDS, **{key: Field("number") for key in ("consumptionLimit", "chargingTimeLimit", "underPowerLimit")}}

    def post_state(self, req: Request) -> Response:
        self._set_state(self._fields(self._state_fields(), req.data))
        return self._ok()

    def post_state_scalar(self, req: Request) -> Response:
        self._set_state({req.route.arg: self._scalar(self._state_fields()[req.route.arg], req.data)})
        return self._ok()

    def _set_state(self, changes: dict[str, Any]) -> None:
        for key in ("consumptionLimit", "chargingTimeLimit", "underPowerLimit"):
            if key in changes and changes[key] < 0:
                changes[key] = 0
        current = changes.get("chargingCurrent")
        ceiling = self.config["evse"]["maxChargingCurrent"]
        if current is not None and current > ceiling and self.alternative:
            current = changes["chargingCurrent"] = ceiling  # clamped to the hard ceiling
        if current is not None and current > ceiling:
            raise Refused(f"chargingCurrent: must be at most maxChargingCurrent ({ceiling})")
        if current is not None:
            changes["chargingCurrent"] = round(float(current), 1)
        if "available" in changes and changes["available"] != self.live["available"]:
            if not changes["available"]:
                self.state_before_unavailable = self.live["state"]
                self.live["state"] = "F"
            elif self.live["state"] == "F":
                self.live["state"] = self.state_before_unavailable
        self.live.update(changes)

    def authorize_charging(self, req: Request) -> Response:
        if not self.fault("authorize_ignored"):
            self.live["pendingAuth"] = False
        return self._ok()

    def reset_total_consumption(self, req: Request) -> Response:
        self.live["totalConsumption"] = 0
        return self._ok()

    # -- configuration ---------------------------------------------------------------------------

    def _block_view(self, block: str) -> Any:
        value = copy.deepcopy(self.config[block])
        if block == "wifi" and not self.fault("wifi_password_returned"):
            value.pop("password", None)
        if self.alternative and block == "scheduler":
            value["schedules"] = [{k: v for k, v in entry.items() if not (k in WEEKDAYS and v == 0)}
                                  for entry in value["schedules"]]
        if self.alternative and block == "serial":
            for entry in value:
                for key, choices in NUMBER_CHOICES.items():
                    entry[key] = next(c for c in choices if str(c) == entry[key])
        return value

    def get_block(self, req: Request) -> Response:
        return Response.json(self._block_view(req.route.arg))

    def get_config(self, req: Request) -> Response:
        return Response.json({block: self._block_view(block) for block in BLOCKS})

    def post_block(self, req: Request) -> Response:
        block = req.route.arg
        self.config[block] = self._validate_block(block, req.data)
        return self._ok()

    def post_config(self, req: Request) -> Response:  # only with fault combined_config_post
        if not isinstance(req.data, dict) or not any(block in req.data for block in BLOCKS):
            raise Refused("no recognised block")
        new = {block: self._validate_block(block, req.data[block]) for block in BLOCKS if block in req.data}
        self.config.update(new)
        return self._ok()

    def _validate_block(self, block: str, body: Any) -> Any:
        """The complete new value of a block, or Refused; nothing is applied here."""
        if block == "serial":
            return self._validate_serial(body)
        table = CONFIG_FIELDS[block]
        if self.alternative and block == "scheduler":
            table = {**table, "timezone": IANA_TIMEZONE}
            if isinstance(body, dict) and isinstance(body.get("schedules"), list):
                body = {**body, "schedules": [{**{day: 0 for day in WEEKDAYS}, **entry} if isinstance(entry, dict) else entry
                                              for entry in body["schedules"]]}
        changes = self._fields(table, body, config=True)
        base = self.config[block]
        if block == "evse" and self.fault("partial_write_resets_others"):
            base = FACTORY_EVSE
        candidate = {**copy.deepcopy(base), **changes}
        if block == "evse":
            self._check_evse(changes, candidate)
        return candidate

    def _check_evse(self, changes: dict[str, Any], candidate: dict[str, Any]) -> None:
        """Cross-field rules and the board's capabilities, for the keys being written."""
        if "defaultChargingCurrent" in changes:
            if changes["defaultChargingCurrent"] > candidate["maxChargingCurrent"]:
                raise Refused("defaultChargingCurrent: must be at most maxChargingCurrent")
            candidate["defaultChargingCurrent"] = round(float(changes["defaultChargingCurrent"]), 1)
        meter = changes.get("energyMeterMode")
        if meter == "cur_vlt" and BOARD["energyMeter"] != "cur_vlt" and not self.fault("capability_unchecked"):
            raise Refused("energyMeterMode: the board has no voltage sensing")
        if meter == "cur" and BOARD["energyMeter"] == "none":
            raise Refused("energyMeterMode: the board has no energy meter")
        if self.alternative:
            return  # the document names only cur_vlt and the 6-63 A range; the rest is stored
        if changes.get("rcm") and not BOARD["rcm"]:
            raise Refused("rcm: the board has no residual current monitor")
        if changes.get("energyMeterThreePhases") and not BOARD["energyMeterThreePhases"]:
            raise Refused("energyMeterThreePhases: the board meters one phase")
        if changes.get("socketOutlet") and not (BOARD["socketLock"] and BOARD["proximity"]):
            raise Refused("socketOutlet: the board has no socket lock / proximity sensing")
        if changes.get("socketLockBreakTime", math.inf) < BOARD["socketLockMinBreakTime"]:
            raise Refused(f"socketLockBreakTime: must be at least {BOARD['socketLockMinBreakTime']}")

    def _validate_serial(self, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, list):
            raise Refused("expected an array")
        ports = len(BOARD["serials"])
        if len(body) != ports and not (self.fault("serial_length_unchecked") and len(body) < ports):
            raise Refused(f"expected {ports} entries, one per serial port of the board")
        new = copy.deepcopy(self.config["serial"])
        recognised = False
        table = CONFIG_FIELDS["serial"]
        for i, entry in enumerate(body):
            if not isinstance(entry, dict):
                raise Refused(f"[{i}]: expected an object")
            if self.alternative:  # numbers as the table lists them, or strings as the example shows
                entry = {key: (str(value) if key in NUMBER_CHOICES and value in NUMBER_CHOICES[key]
                               and not isinstance(value, bool) else value) for key, value in entry.items()}
            changes = {key: check_value(table[key], value, self.faults, f"[{i}].{key}")
                       for key, value in entry.items() if key in table}
            recognised = recognised or bool(changes)
            new[i].update(changes)
        if not recognised and not self.fault("empty_object_accepted"):
            raise Refused("no recognised field")
        return new

    # -- Wi-Fi -----------------------------------------------------------------------------------

    def wifi_scan(self, req: Request) -> Response:
        if self.alternative:
            return Response.json([{**network, "channel": 6} for network in WIFI_SCAN])
        return Response.json(WIFI_SCAN)

    def get_wifi_state(self, req: Request) -> Response:
        if self.alternative:
            return Response.json({**self.wifi_state, "hostname": self.config["discovery"]["hostname"]})
        return Response.json(self.wifi_state)

    def wifi_ap(self, req: Request) -> Response:
        enabled = self._scalar(BOOL, req.data)
        self.later(1.0, lambda: self.wifi_state.__setitem__("apEnabled", enabled))
        return self._ok()

    # -- scripting -------------------------------------------------------------------------------

    def script_output(self, req: Request) -> Response:
        return self._text_lines(req, self.script_lines)

    def script_reload(self, req: Request) -> Response:
        return self._ok()

    def list_components(self, req: Request) -> Response:
        return Response.json([{key: c[key] for key in ("id", "name", "description")} for c in self.components])

    def _component(self, component_id: str) -> dict | None:
        return next((c for c in self.components if c["id"] == component_id), None)

    def get_component(self, req: Request) -> Response:
        component = self._component(req.params["id"])
        if component is None:
            return self.error(404) if self.fault("missing_component_404") else Response.json(None)
        return Response.json({"params": component["params"]})

    def post_component(self, req: Request) -> Response:
        component = self._component(req.params["id"])
        if component is None:
            return self.error(404)
        if not isinstance(req.data, dict) or not isinstance(req.data.get("params"), list) or not req.data["params"]:
            raise Refused("expected {\"params\": [{\"key\": ..., \"value\": ...}, ...]}")
        params = {p["key"]: p for p in component["params"]}
        kinds = {"number": Field("number"), "boolean": BOOL, "string": STR}
        updates = []
        for i, item in enumerate(req.data["params"]):
            if not isinstance(item, dict) or "key" not in item or "value" not in item:
                raise Refused(f"params[{i}]: expected an object with key and value")
            param = params.get(item["key"]) if isinstance(item["key"], str) else None
            if param is None:
                raise Refused(f"params[{i}]: unknown key {item['key']!r}")
            updates.append((param, check_value(kinds[param["type"]], item["value"], self.faults, item["key"])))
        for param, value in updates:
            param["value"] = value
        return self._ok()

    # -- firmware & Nextion ----------------------------------------------------------------------

    def channels(self, req: Request) -> Response:
        return Response.json(CHANNELS)

    def get_channel(self, req: Request) -> Response:
        return Response.json(self.channel)

    def post_channel(self, req: Request) -> Response:
        field = Field("str", min_len=1) if self.alternative else Field("str", choices=tuple(CHANNELS))
        self.channel = check_value(field, self._scalar(STR, req.data), self.faults)
        return self._ok()

    def check_update(self, req: Request) -> Response:
        if self.update_available is None:
            return self.error(404)
        return Response.json({"available": self.update_available, "current": self.app_version})

    def firmware_update(self, req: Request) -> Response:
        if self.update_available is None:
            return self.error(520)
        if self.update_available != self.app_version:
            self.count("firmwareUpdates")
            self.app_version = self.update_available
            self.restart(RESTART_DELAY)
        return self._ok()

    def firmware_upload(self, req: Request) -> Response:
        if not is_app_image(req.data):
            return self.error(523, "invalid firmware image")
        self.count("firmwareUploads")
        self.restart(RESTART_DELAY)
        return self._ok()

    def nextion_info(self, req: Request) -> Response:
        return Response.json(self.nextion)

    def nextion_upload(self, req: Request) -> Response:
        if "baud-rate" in req.query:
            raw = req.query["baud-rate"][0]
            if not (raw.isascii() and raw.isdigit() and int(raw) > 0):
                raise Refused("baud-rate must be a positive integer")
        if self.nextion is None:
            return self.error(531, "no display answers")
        self.count("nextionUploads")
        return self._ok()

    # -- system ----------------------------------------------------------------------------------

    def info(self, req: Request) -> Response:
        extra = {"mac": WIFI_STATE["mac"]} if self.alternative else {}
        if self.alternative or self.fault("dav_open_on_new_firmware"):
            extra["appDate"] = NEW_FIRMWARE_DATE
        return Response.json({**INFO, "uptime": int(self.now() - self.booted_at), "appVersion": self.app_version, **extra})

    def board_config(self, req: Request) -> Response:
        return Response.json(BOARD)

    def get_time(self, req: Request) -> Response:
        return Response.json(int(self.wall() + self.time_shift))

    def post_time(self, req: Request) -> Response:
        self.time_shift = self._scalar(NONNEG, req.data) - self.wall()
        return self._ok()

    def post_restart(self, req: Request) -> Response:
        self.restart(RESTART_DELAY)
        return self._ok()

    def post_credentials(self, req: Request) -> Response:
        if not isinstance(req.data, dict) or "user" not in req.data or "password" not in req.data:
            raise Refused("expected {\"user\": ..., \"password\": ...}")
        self.credentials = (check_value(STR, req.data["user"], self.faults, "user"),
                            check_value(STR, req.data["password"], self.faults, "password"))
        return self._ok()

    def log(self, req: Request) -> Response:
        return self._text_lines(req, self.log_lines, count=not self.fault("log_count_missing"),
                                index=not self.fault("log_index_ignored"))

    def get_panic(self, req: Request) -> Response:
        if self.panic is None:
            return Response.text("") if self.alternative else self.error(404, "no panic log stored")
        text, when = self.panic
        headers = {} if self.fault("panic_time_missing") else {"X-Time": str(int(when))}
        return Response.text(text, headers=headers)

    def delete_panic(self, req: Request) -> Response:
        self.panic = None
        return self._ok()

    # -- emulator-only controls (/__emulator__/...) ----------------------------------------------

    def device_controls(self) -> dict[tuple[str, str], Callable[[Any], Any]]:
        return {
            ("POST", "live"): self._ctl_live,
            ("POST", "panic"): self._ctl_panic,
            ("POST", "log"): lambda payload: self.log_lines.extend(_lines(payload)),
            ("POST", "script-output"): lambda payload: self.script_lines.extend(_lines(payload)),
            ("POST", "update-info"): self._ctl_update_info,
            ("POST", "nextion"): self._ctl_nextion,
        }

    def _ctl_live(self, payload: Any) -> None:
        if not isinstance(payload, dict):
            raise ControlError("expected an object of /state fields")
        changes = {}
        for key, value in payload.items():
            try:
                if key in LIVE_FIELDS:
                    changes[key] = check_value(LIVE_FIELDS[key], value, frozenset(), key)
                elif key in ("voltage", "current"):
                    if not isinstance(value, list) or len(value) != 3:
                        raise Refused(f"{key}: expected 3 numbers")
                    changes[key] = [check_value(Field("number"), v, frozenset(), key) for v in value]
                elif key == "errors":
                    if value is not None and not (isinstance(value, list) and all(v in ERRORS for v in value)):
                        raise Refused(f"errors: null or a list of {', '.join(ERRORS)}")
                    changes[key] = value
                else:
                    raise Refused(f"unknown /state field {key!r}")
            except Refused as exc:
                raise ControlError(exc.detail) from None
        if "chargingCurrent" in changes:
            changes["chargingCurrent"] = float(changes["chargingCurrent"])
        self.live.update(changes)

    def _ctl_panic(self, payload: Any) -> None:
        if not payload:
            self.panic = None
        elif isinstance(payload, dict) and isinstance(payload.get("text"), str) \
                and isinstance(payload.get("time", 0), (int, float)):
            self.panic = (payload["text"], payload.get("time", self.wall()))
        else:
            raise ControlError('expected {"text": str, "time": epoch seconds} or {}')

    def _ctl_update_info(self, payload: Any) -> None:
        if not isinstance(payload, dict) or not isinstance(payload.get("available", ""), (str, type(None))):
            raise ControlError('expected {"available": "vX.Y.Z"} or {"available": null}')
        self.update_available = payload.get("available")

    def _ctl_nextion(self, payload: Any) -> None:
        if payload is not None and not (isinstance(payload, dict) and {"model", "touch", "flashSize"} <= set(payload)):
            raise ControlError('expected {"model": str, "touch": bool, "flashSize": int} or null')
        self.nextion = None if payload is None else {k: payload[k] for k in ("model", "touch", "flashSize")}


def _lines(payload: Any) -> list[str]:
    if not isinstance(payload, dict) or not isinstance(payload.get("lines"), list) \
            or not all(isinstance(line, str) for line in payload["lines"]):
        raise ControlError('expected {"lines": ["...", ...]}')
    return payload["lines"]


def _is_dav(path: str) -> bool:
    return path == DAV or path.startswith(DAV + "/")


def _body_size(req: Request) -> int | None:
    length = req.headers.get("Content-Length")
    if length is not None:
        return int(length) if length.strip().isdigit() else None
    return len(req.body)


# ---------------------------------------------------------------------------------------------
# WebDAV: an in-memory filesystem under /dav/. No credential check (see the document's warning).


class DavTree:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files: dict[str, bytes] = dict(files)  # "lib/util.lua" -> content
        self.dirs: set[str] = {""} | {posixpath.dirname(path) for path in files}  # "" = /dav/

    def exists(self, path: str) -> bool:
        return path in self.files or path in self.dirs

    def subtree(self, path: str) -> list[str]:
        prefix = path + "/" if path else ""
        return sorted(p for p in (self.files.keys() | self.dirs) if p == path or p.startswith(prefix))

    def delete(self, path: str) -> None:
        for p in self.subtree(path):
            self.files.pop(p, None)
            self.dirs.discard(p)

    def copy(self, src: str, dst: str) -> None:
        for p in self.subtree(src):
            target = dst + p[len(src):]
            if p in self.dirs:
                self.dirs.add(target)
            else:
                self.files[target] = self.files[p]

    def href(self, path: str) -> str:
        return quote(f"{DAV}/{path}" + ("/" if path in self.dirs and path else ""))

    def handle(self, req: Request, device: DeviceEmulator) -> Response:
        path = _dav_path(req.path)
        if path is None:
            return device.error(403, "path leaves /dav/")
        method = req.method
        if method == "OPTIONS":
            return Response(200, {"DAV": "1", "Allow": "OPTIONS, PROPFIND, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE"})
        if not self.exists(path) and method in ("PROPFIND", "GET", "HEAD", "DELETE", "COPY", "MOVE"):
            return device.error(404)
        parent_ok = posixpath.dirname(path) in self.dirs
        if method == "PROPFIND":
            depth = req.headers.get("Depth", "1").strip().lower()
            if depth not in ("0", "1", "infinity"):
                return device.error(400, "Depth must be 0 or 1")
            return self._propfind(path, depth == "0")
        if method in ("GET", "HEAD"):
            if path in self.dirs:
                return device.error(405, "a collection has no content")
            kind = "text/plain" if path.endswith(".lua") else "application/octet-stream"
            return Response(200, {"Content-Type": kind}, self.files[path])
        if method == "PUT":
            if path in self.dirs:
                return device.error(405, "cannot PUT a collection")
            if not parent_ok:
                return device.error(409, "parent collection does not exist")
            existed = path in self.files
            self.files[path] = req.body
            return Response(204 if existed else 201)
        if method == "DELETE":
            if path == "":
                return device.error(403, "cannot delete the root")
            self.delete(path)
            return Response(204)
        if method == "MKCOL":
            if self.exists(path):
                return device.error(405, "already exists")
            if not parent_ok:
                return device.error(409, "parent collection does not exist")
            if req.body:
                return device.error(415, "MKCOL takes no body")
            self.dirs.add(path)
            return Response(201)
        if method in ("COPY", "MOVE"):
            return self._copy_move(req, path, device)
        return device.error(405)

    def _propfind(self, path: str, depth0: bool) -> Response:
        paths = [path] if depth0 or path in self.files else \
            [path] + [p for p in self.subtree(path) if p != path and posixpath.dirname(p) == path]
        parts = ['<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">']
        for p in paths:
            name = xml_escape(posixpath.basename(p) or "dav")
            if p in self.dirs:
                props = "<D:resourcetype><D:collection/></D:resourcetype>"
            else:
                props = f"<D:resourcetype/><D:getcontentlength>{len(self.files[p])}</D:getcontentlength>"
            parts.append(f"<D:response><D:href>{xml_escape(self.href(p))}</D:href><D:propstat><D:prop>"
                         f"<D:displayname>{name}</D:displayname>{props}</D:prop>"
                         "<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>")
        parts.append("</D:multistatus>\n")
        return Response(207, {"Content-Type": 'application/xml; charset="utf-8"'}, "\n".join(parts).encode())

    def _copy_move(self, req: Request, src: str, device: DeviceEmulator) -> Response:
        destination = req.headers.get("Destination")
        if not destination:
            return device.error(400, "Destination header required")
        dst = _dav_path(unquote(urlsplit(destination).path))
        if dst is None or not _is_dav(unquote(urlsplit(destination).path)):
            return device.error(502, "destination outside /dav/")
        if "" in (src, dst) or dst == src or dst.startswith(src + "/") or src.startswith(dst + "/"):
            return device.error(403, "source and destination overlap")
        if posixpath.dirname(dst) not in self.dirs:
            return device.error(409, "parent collection does not exist")
        existed = self.exists(dst)
        if existed and req.headers.get("Overwrite", "T").strip().upper() == "F":
            return device.error(412, "destination exists and Overwrite is F")
        self.delete(dst)
        self.copy(src, dst)
        if req.method == "MOVE":
            self.delete(src)
        return Response(204 if existed else 201)


def _dav_path(path: str) -> str | None:
    """"/dav/lib/util.lua" -> "lib/util.lua"; "/dav/" -> ""; None if it escapes /dav/."""
    rel = path[len(DAV):].strip("/")
    normal = posixpath.normpath(rel) if rel else ""
    if normal.startswith("..") or normal.startswith("/"):
        return None
    return "" if normal == "." else normal
