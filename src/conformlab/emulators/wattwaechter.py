"""Emulator of the WattWächter smart-meter reader's REST API (wattwaechter-api.txt + NOTES.md).

A stateful device behind base path /api/v1 with every endpoint of the document's overview tables:
system (alive, info, led, wifi_scan, timezones, reboot), history (latest, highRes, lowRes), settings
(partial writes, write-only passwords), two-phase token renewal, MQTT CA certificate, cloud pairing,
OTA, logs (binary SML ring buffer, CSV logs) and the Modbus TCP status. Answer shapes and field
names follow the vendor's Python client `aio-wattwaechter` (its models parse every answer). Beyond
the document, it also serves the three endpoints that client calls and the document does not list
(BEYOND_THE_DOCUMENT, below), so that integrations built on the client can be developed against it.

Three device-wide mechanisms sit in front of the endpoints, in this order (the emulator core's
pipeline, conformlab.emulators.core: `screen` -> route -> `authorize` -> body -> handler):
heap protection (503) -> rate limit (429) -> route (404) -> auth (401/403) -> body/query (400).

- Heap model: 120 KB (122,880 bytes) free at idle. Every answer reserves its size while it is being
  sent; the emulated device sends at SEND_RATE (128 KB/s), so a 45 KB highRes day holds its
  reservation for ~0.35 s and concurrent large history requests overlap. A new /api/v1 request that
  arrives while the free heap is below 25 KB (25,600 bytes) gets 503 `Retry-After: 5`
  {"error":"Service temporary unavailable"}; the device stays up and answers again as soon as the
  in-flight answers are sent.
- Rate limit: 25 requests per 10 s, device-wide (all client addresses share the budget), on the real
  clock, as a sliding window: no closed 10-second interval ever holds more than 25 accepted requests.
  Over the limit: 429 `Retry-After: 10`, application/json, body exactly {"error":"Too many requests"}.
- Auth: off by default (`api_auth_required` false: everything open). `auth={"read_token": ...,
  "write_token": ...}` at start switches it on with those tokens; POST /settings
  {"api_auth_required": true|false} switches it at runtime. With auth on: `Authorization: Bearer
  <token>`; the READ token reads, the WRITE token reads and writes; /system/alive and
  /system/wifi_scan stay open; missing/wrong token -> 401, READ token on a WRITE endpoint -> 403.

Switch on named faults (FAULTS; each one realistic firmware bug tied to the sentence it breaks) to
check that a conformance suite catches it.

Emulator-only controls (under /__emulator__/, JSON in and out, never authenticated, never counted
against the rate budget, never refused by heap protection). The core's, every emulator has them:
- GET  /__emulator__/             -> {"device": "wattwaechter", "faults": [...]}
- GET  /__emulator__/counters     -> {"reboots", "otaStarts", "settingsWrites", "tokenRenewals",
                                      "caUploads", "cloudPairings", "selfTests", "rateLimited",
                                      "heapRejected", "requests"} (requests = accepted by the rate limiter)
- POST /__emulator__/reset        -> everything back to the state at start (tokens, settings, data,
                                      counters, budget, forced heap, device clock)
- POST /__emulator__/advance {"seconds": 61} -> move the device clock (`now()`) forward: pending
                                      tokens lapse 60 s after generate on it (the rate limit and the
                                      uptime keep the real clock)
- POST /__emulator__/restart {"boot_seconds": N} -> restart as a power cycle does (see restarts)
The WattWächter's own:
- GET  /__emulator__/budget       -> {"limit", "window", "used", "remaining"} (device-wide budget)
- POST /__emulator__/budget {"reset": true} -> refill the rate budget (all clients) at once
- GET  /__emulator__/heap         -> {"free", "forced", "reserved", "threshold", "sendRate"}
- POST /__emulator__/heap {"free": 20000} -> force the free heap (bytes); {"free": null} -> back to
                                      the model; optional "sendRate" (bytes/s, > 0) of the model
- GET  /__emulator__/tokens       -> {"read_token", "write_token", "api_auth_required",
                                      "pending": {"token_read", "token_write", "expires_in"} | null}
- POST /__emulator__/tokens {"read_token": "...", "write_token": "...", "api_auth_required": bool}
                                   -> set the active tokens and/or switch auth (keys optional)
- POST /__emulator__/latest {"clear": true} -> no meter reading yet (/history/latest and
                                      /logs/rawdump answer 204); {"clear": false} -> readings again
- POST /__emulator__/history {"first_day": "YYYY-MM-DD"} -> history recorded from that day (not
                                      before 2024-01-01) until today; {"first_day": null} -> none
- POST /__emulator__/ota {"available": "1.5.0"} -> an update is offered; {"available": null} -> none
- POST /__emulator__/setup {"complete": false} -> the device before its first WiFi connection
                                      (GET /setup/token hands out the tokens); {"complete": true} ->
                                      set up (the state at start: /setup/token answers 403)

Readings of ambiguous passages
------------------------------
- Error answers: the document shows JSON errors for 429/503 only; every error uses the same envelope
  {"error": "..."} with `Content-Type: application/json` ("Unauthorized", "Forbidden", "Not found",
  or what is wrong for 400). The connection stays open. A 401 also carries `WWW-Authenticate: Bearer`
  (RFC 6750 / RFC 9110 require a challenge on 401).
- 503 is decided before the rate-limit accounting: a request refused by heap protection costs no
  budget. A request refused with 429 costs no budget either (only accepted requests fill the
  window). Requests that pass the limiter count whatever they are answered (404, 401, 400 included).
  Every /api/v1 request counts, the health check too; paths outside /api/v1 are answered 404 and
  neither count nor are refused by heap protection ("API requests").
- "25 KB" is 25,600 bytes (NOTES.md reads the EVSE's "50 KB" as 51,200). Heap protection refuses
  requests that arrive while the free heap is below it; answers already admitted are sent (the
  free heap shown in /system/info floors at 0). While the free heap is forced through the control,
  every new /api/v1 request gets 503, the health check included.
- Auth off (the default): every endpoint is open and an Authorization header is ignored; the device
  still holds a token pair (random at start, readable through GET /__emulator__/tokens), so a client
  may renew tokens (generate/confirm are open too) and then switch auth on. Open endpoints ignore
  the Authorization header also with auth on (a wrong token on /system/alive is not refused).
- Token renewal: generate replaces an earlier pending pair and restarts its 60 s. Pending tokens do
  not authenticate. They lapse once more than 60 s have passed on the token clock. Confirm with no
  pending pair, after the lapse, or with a `new_write_token` that is not the pending WRITE token ->
  400 and nothing changes (a mismatch leaves the pending pair pending). After a successful confirm
  {"success": true, "message": "Tokens activated successfully."} the old tokens are refused (401).
- Settings writes merge recursively: only the keys sent change. Unknown keys and read-only keys
  (rebootCounter, rebootsTotal, rebootsAll, language.installed) are ignored (the client library:
  "Values the device ignored ... are echoed unchanged"). A known key with a wrong JSON type or out
  of range (mqtt.port 1..65535, mqtt.sendInterval 1..86400, ssid <= 32 and passwords <= 64
  characters, device_name 1..32 characters, timezone from /system/timezones, language.active from
  language.installed), or a body that is not a JSON object -> 400 and nothing is applied.
  `applied` echoes the request body as sent. The passwords (wifi.primary.password,
  wifi.secondary.password, accessPoint.password, mqtt.password) are write-only.
- History: the emulated device keeps UTC days (96 quarter-hours every day; local time and DST are
  not emulated; the `timezone` setting is stored only). highRes of today lists the quarters begun
  so far; lowRes lists completed days only (today has no daily value yet). Item readings
  (`import_total_kWh`, `export_total_kWh`) are the meter readings at the start of the quarter/day;
  the top-level `import_total_kWh`/`export_total_kWh` are the energy over the whole answer (as in
  the client library's examples). A date outside the recorded range -> 204. `date` and `start` must
  be YYYY-MM-DD and a real calendar date, `days` decimal digits 1..31; missing or malformed -> 400.
- JSON request bodies: Content-Type is not checked; malformed JSON -> 400.
- A documented path called with another method answers 404, like an unknown path (the document
  lists no 405).
- wifi_scan: `?refresh=true` starts a scan (about 1.5 s) and answers {"networks": [], "count": 0,
  "scanning": true} until it is done; without it the last results are returned.
- POST /mqtt/ca takes {"certificate": "<PEM>"} (the client library's body); anything that is not
  one or more PEM CERTIFICATE blocks with base64 content -> 400. DELETE without a custom
  certificate -> 404 (the client library's docstring).
- POST /cloud/pair takes {"pairing_token": "WW-XXXXXXXX"} (8 of A-Z/0-9, the client library's
  docstring); anything else -> 400. DELETE always succeeds.
- POST /system/reboot and a successful POST /ota/start (an update is offered) restart the device as
  firmware does: the answer goes out first, about RESTART_DELAY (1 s; the document gives no delay)
  later every connection is dropped and the device is off the network for `boot_seconds` (target
  key, default 2 s); then it boots. What a start does: the uptime starts at 0, rebootsTotal and
  rebootsAll count the start, pending tokens (RAM) are gone, the rate-limit window and the heap
  minimum start afresh, a wifi scan in progress is forgotten; the settings, the active tokens, the
  CA certificate and the cloud pairing (flash) survive. /ota/start without an update answers
  {"ok": true, "update_available": false} and does not restart. The emulated update server keeps
  offering its version after an install (the emulator does not change its own firmware version),
  so every OTA start with an offer restarts.

The other reading (target `reading = "alternative"`, `conformlab emulate --reading alternative`)
makes every choice above that the documents leave open the other way a conforming device may:
- POST /cloud/pair stores any non-empty string as the pairing token (the document gives no format).
- POST /mqtt/ca stores any non-empty string as the certificate (the document names no validation).
- A confirm that activates nothing (no pending pair, lapsed, or not the pending WRITE token) answers
  200 {"success": false, "message": ...} instead of 400; a successful confirm answers
  {"message": "Tokens activated"} without `success` (NOTES shows no confirm answer).
- GET /settings shows a password that is set as "********" (an empty one as ""): never the
  password itself, but the key is there.
- History days that are YYYY-MM-DD but no calendar date roll over as mktime() does (2025-02-30 is
  2025-03-02); `days` outside 1..31 is clamped into 1..31 (0 and negative -> 1, 32 -> 31).
- GET /system/led answers {"status": "ok", "enabled": ..., "brightness": ...} (another shape);
  GET /system/timezones answers a bare list of zone names.
- Logs: /logs/rawdump is application/octet-stream (204 while there is no reading yet);
  /logs/persistent and /logs/ram are CSV with `Content-Type: text/csv`.

Beyond the document
-------------------
The vendor's client (aio-wattwaechter 1.3.0, client.py and models.py) also calls three endpoints
that none of the document's tables lists. The emulator serves them (BEYOND_THE_DOCUMENT) in the
form the client's models parse, so that integrations built on the client (Home Assistant's) can be
developed against it. The schema does not list them and no check judges them; what they answer is
this emulator's guess, consistent with its state:
- POST /system/selftest, READ (the client marks every call that needs the WRITE token "(requires
  WRITE token)", this one not) -> SelfTestResult {"success": true, "result": "OK", "message": ...}.
  The client says the test takes about 2 s; the emulator answers at once.
- GET /setup/token, open (the client sends no token: "only before first WiFi connection") ->
  {"readToken", "writeToken"}, the active tokens, while the device has never been set up (control
  `setup`); once set up (the state at start) 403, which the client raises as an auth error.
- GET /mqtt/status, READ -> MqttStatus: enabled, host, port, client_id and use_tls from the MQTT
  settings; state OFF (disabled), CONNECTED (enabled with a broker host) or FAILED (enabled without
  one: last_error -2, as the MQTT client's "connect failed").
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import hmac
import math
import random
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from . import credentials as compare
from .core import JSON, ControlError, DeviceEmulator, Refused, Route
from .server import Request, Response, is_control

PREFIX = "/api/v1"
FIRMWARE = "1.4.2"
DEVICE_ID = "9BFEFF453AB4"

RATE_LIMIT = 25  # requests ...
RATE_WINDOW = 10.0  # ... per this many seconds, device-wide
RETRY_AFTER_429 = 10
HEAP_IDLE_FREE = 120 * 1024  # free heap of the idle device
HEAP_CRITICAL = 25 * 1024  # "25 KB"
RETRY_AFTER_503 = 5
HEAP_SIZE = 320 * 1024
SEND_RATE = 128 * 1024  # bytes per second the emulated device sends an answer at
TOKEN_TTL = 60  # seconds a pending token pair may be confirmed in
RESTART_DELAY = 1.0  # seconds from the answer to going down (the document gives no delay)
MASKED = "********"  # how the alternative reading shows a password that is set

WRONG_TOKEN = "a missing or wrong token gets 401. (NOTES.md)"
FAULTS: dict[str, str] = {
    "budget_26":
        "A maximum of 25 requests per 10 seconds is allowed",
    "budget_per_client":
        "device-wide, not per IP — multiple clients share the budget",
    "rate_limit_no_retry_after":
        "When the limit is exceeded, the device responds with: HTTP/1.1 429 Too Many Requests "
        "Retry-After: 10",
    "rate_limit_wrong_body":
        'Retry-After: 10 Content-Type: application/json {"error":"Too many requests"}',
    "heap_overload_500":
        "new API requests are temporarily rejected to keep the device stable: HTTP/1.1 503 "
        "Service Unavailable",
    "heap_no_retry_after":
        "HTTP/1.1 503 Service Unavailable Retry-After: 5",
    "read_token_can_write":
        "A READ token on a WRITE endpoint gets 403 (NOTES.md)",
    "confirm_after_expiry":
        "Activates the new tokens (within 60 seconds)",
    "generate_activates_immediately":
        "Generates new tokens (not yet active)",
    "partial_settings_reset":
        "Update settings (partial)",
    "settings_return_passwords":
        "`GET /settings` never returns passwords. (NOTES.md)",
    "alive_requires_token":
        "| GET | /api/v1/system/alive | — | Health check |",
    "missing_token_403":
        "a missing or wrong token gets 401. (NOTES.md)",
    "history_days_unchecked":
        "`days` is 1-31 (NOTES.md)",
    "history_range_off_by_one":
        "| GET | /api/v1/history/lowRes?start=YYYY-MM-DD&days=7 | READ | Daily values |",
    "latest_empty_200":
        "204 when there is no reading yet. (NOTES.md)",
    "retry_after_fractional":
        "`Retry-After` is whole seconds (NOTES.md)",
    # Near-miss tokens (conformlab.near_miss): the comparison lets an almost-right one through.
    # a bare "Bearer" passes (the token is compared only when one is given)
    "empty_token_accepted": WRONG_TOKEN,
    # tokens are compared over the given length: a token cut short passes
    "token_prefix_accepted": WRONG_TOKEN,
    # tokens are compared over one character less than stored: without its last character it passes
    "token_last_char_ignored": WRONG_TOKEN,
    # tokens are compared over the stored length only: with anything appended it passes
    "token_extra_ignored": WRONG_TOKEN,
    # tokens are compared without regard to case
    "token_case_insensitive": WRONG_TOKEN,
    # a header without the scheme is taken as the token itself
    "bearer_scheme_optional": "When enabled, the API uses Bearer tokens in the Authorization header: "
                              "Authorization: Bearer YOUR_TOKEN",
    # the scheme is not checked: the token in the Basic scheme passes
    "token_scheme_unchecked": "When enabled, the API uses Bearer tokens in the Authorization header: "
                              "Authorization: Bearer YOUR_TOKEN",
    # the header is found by a substring search: a token in Proxy-Authorization passes
    "proxy_authorization_read": "When enabled, the API uses Bearer tokens in the Authorization header",
}
# fault -> the flaw it gives the token comparison
TOKEN_FLAWS = compare.comparison_faults("token")
# fault -> the near-miss credential (conformlab.near_miss) it lets through
NEAR_MISS_FAULTS: dict[str, str] = {
    **compare.near_misses_let_through(TOKEN_FLAWS, "write-token", empty="token-empty"),
    "bearer_scheme_optional": "token-without-scheme",
    "token_scheme_unchecked": "token-in-basic-scheme",
    "proxy_authorization_read": "token-in-proxy-authorization",
}

# ---------------------------------------------------------------------------------------------
# Static device data

TIMEZONES: list[dict[str, Any]] = [
    {"name": "Europe/Berlin", "utcOffsetMin": 60}, {"name": "Europe/Vienna", "utcOffsetMin": 60},
    {"name": "Europe/Zurich", "utcOffsetMin": 60}, {"name": "Europe/Amsterdam", "utcOffsetMin": 60},
    {"name": "Europe/Brussels", "utcOffsetMin": 60}, {"name": "Europe/Paris", "utcOffsetMin": 60},
    {"name": "Europe/Rome", "utcOffsetMin": 60}, {"name": "Europe/Madrid", "utcOffsetMin": 60},
    {"name": "Europe/Warsaw", "utcOffsetMin": 60}, {"name": "Europe/Prague", "utcOffsetMin": 60},
    {"name": "Europe/London", "utcOffsetMin": 0}, {"name": "Europe/Lisbon", "utcOffsetMin": 0},
    {"name": "Europe/Helsinki", "utcOffsetMin": 120}, {"name": "Europe/Athens", "utcOffsetMin": 120},
    {"name": "Europe/Istanbul", "utcOffsetMin": 180}, {"name": "UTC", "utcOffsetMin": 0},
    {"name": "America/New_York", "utcOffsetMin": -300}, {"name": "America/Los_Angeles", "utcOffsetMin": -480},
    {"name": "Asia/Tokyo", "utcOffsetMin": 540}, {"name": "Australia/Sydney", "utcOffsetMin": 600},
]
LANGUAGES = [{"code": "de", "name": "Deutsch"}, {"code": "en", "name": "English"}]
WIFI_NETWORKS = [{"ssid": "MyNetwork", "rssi": -58}, {"ssid": "FRITZ!Box 7590 XY", "rssi": -71},
                 {"ssid": "Nachbar-Gast", "rssi": -83}]
LED_STATUSES = ("NONE", "OK", "STARTUP", "INFO", "METER_ATTENTION", "BLE_ACTIVE", "BLE_CONNECTED",
                "OTA_ACTIVE", "ERROR", "RESET_PENDING")
CA_BUNDLE_SIZE = 5750
PAIRING_TOKEN = re.compile(r"WW-[A-Z0-9]{8}")
PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _wifi(enable: bool, ssid: str, password: str) -> dict[str, Any]:
    return {"enable": enable, "ssid": ssid, "password": password, "static_ip": False, "ip": "",
            "subnet": "", "gateway": "", "dns": ""}


# The device as found in a household (the emulator's state at start).
DEFAULT_SETTINGS: dict[str, Any] = {
    "wifi": {"primary": _wifi(True, "MyNetwork", "wlan-geheim-42"), "secondary": _wifi(False, "", "")},
    "accessPoint": {"enable": False, "password_enable": True, "ssid": f"WattWaechter-{DEVICE_ID[-4:]}",
                    "password": "ap-passwort-7"},
    "mqtt": {"enable": True, "host": "192.168.178.111", "port": 1883, "use_tls": False, "user": "ww",
             "password": "mqtt-passwort", "sendInterval": 30, "client_id": "WattWaechter",
             "topic_prefix": "wattwaechter"},
    "language": {"active": "de", "installed": LANGUAGES},
    "timezone": "Europe/Berlin",
    "ntp_server": "pool.ntp.org",
    "rebootCounter": 0, "rebootsTotal": 5, "rebootsAll": 12,
    "ledEnable": True,
    "api_auth_required": False,
    "device_name": "Haushalt",
    "awsIotEnabled": False,
}
# Factory values: what the partial_settings_reset fault writes into the keys a POST leaves out.
FACTORY_SETTINGS: dict[str, Any] = {
    **copy.deepcopy(DEFAULT_SETTINGS),
    "wifi": {"primary": _wifi(False, "", ""), "secondary": _wifi(False, "", "")},
    "accessPoint": {"enable": True, "password_enable": False, "ssid": f"WattWaechter-{DEVICE_ID[-4:]}",
                    "password": ""},
    "mqtt": {"enable": False, "host": "", "port": 8883, "use_tls": True, "user": "", "password": "",
             "sendInterval": 60, "client_id": "", "topic_prefix": "wattwaechter"},
    "device_name": "WattWaechter",
}
READ_ONLY = ("rebootCounter", "rebootsTotal", "rebootsAll")  # kept on a factory reset too

# ---------------------------------------------------------------------------------------------
# Table-driven validation of settings writes


@dataclass(frozen=True)
class Field:
    kind: str  # "bool" | "int" | "str" | "object"
    min: int | None = None
    max: int | None = None
    min_len: int = 0
    max_len: int | None = None
    choices: Callable[[dict[str, Any]], tuple[str, ...]] | None = None  # from the current settings
    fields: dict[str, Field] | None = None  # kind "object"
    write_only: bool = False


BOOL = Field("bool")
STR = Field("str", max_len=128)
PASSWORD = Field("str", max_len=64, write_only=True)
WIFI_FIELDS = {"enable": BOOL, "ssid": Field("str", max_len=32), "password": PASSWORD, "static_ip": BOOL,
               "ip": STR, "subnet": STR, "gateway": STR, "dns": STR}
SETTINGS_FIELDS: dict[str, Field] = {
    "wifi": Field("object", fields={"primary": Field("object", fields=WIFI_FIELDS),
                                    "secondary": Field("object", fields=WIFI_FIELDS)}),
    "accessPoint": Field("object", fields={"enable": BOOL, "password_enable": BOOL,
                                           "ssid": Field("str", min_len=1, max_len=32), "password": PASSWORD}),
    "mqtt": Field("object", fields={
        "enable": BOOL, "host": STR, "port": Field("int", min=1, max=65535), "use_tls": BOOL, "user": STR,
        "password": PASSWORD, "sendInterval": Field("int", min=1, max=86400), "client_id": STR,
        "topic_prefix": STR}),
    "language": Field("object", fields={
        "active": Field("str", choices=lambda s: tuple(lang["code"] for lang in s["language"]["installed"]))}),
    "timezone": Field("str", choices=lambda s: tuple(tz["name"] for tz in TIMEZONES)),
    "ntp_server": STR,
    "ledEnable": BOOL,
    "api_auth_required": BOOL,
    "device_name": Field("str", min_len=1, max_len=32),
    "awsIotEnabled": BOOL,
}


def validate_settings(table: dict[str, Field], body: Any, current: dict[str, Any], name: str = "") -> dict[str, Any]:
    """The recognised keys of `body`, validated (nested objects: only the keys sent); Refused
    (400) for a wrong type or value. Unknown and read-only keys are left out (ignored)."""
    if not isinstance(body, dict):
        raise Refused(f"{name or 'body'}: expected a JSON object")
    changes: dict[str, Any] = {}
    for key, value in body.items():
        field = table.get(key)
        if field is None:
            continue
        where = f"{name}.{key}" if name else key
        if field.kind == "object":
            changes[key] = validate_settings(field.fields or {}, value, current, where)
        elif field.kind == "bool":
            if type(value) is not bool:
                raise Refused(f"{where}: expected a boolean")
            changes[key] = value
        elif field.kind == "int":
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value != int(value):
                raise Refused(f"{where}: expected an integer")
            value = int(value)
            if (field.min is not None and value < field.min) or (field.max is not None and value > field.max):
                raise Refused(f"{where}: must be {field.min}..{field.max}")
            changes[key] = value
        else:
            if not isinstance(value, str):
                raise Refused(f"{where}: expected a string")
            if len(value) < field.min_len or (field.max_len is not None and len(value) > field.max_len):
                raise Refused(f"{where}: length must be {field.min_len}..{field.max_len}")
            if field.choices is not None and value not in field.choices(current):
                raise Refused(f"{where}: unknown value {value!r}")
            changes[key] = value
    return changes


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def masked_write_only(table: dict[str, Field], value: dict[str, Any]) -> dict[str, Any]:
    """The settings with every write-only value shown as MASKED (or "" when it is empty)."""
    out = {}
    for key, item in value.items():
        field = table.get(key)
        if field is not None and field.write_only:
            item = MASKED if item else ""
        elif field is not None and field.kind == "object" and isinstance(item, dict):
            item = masked_write_only(field.fields or {}, item)
        out[key] = copy.deepcopy(item)
    return out


def without_write_only(table: dict[str, Field], value: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, item in value.items():
        field = table.get(key)
        if field is not None and field.write_only:
            continue
        if field is not None and field.kind == "object" and isinstance(item, dict):
            item = without_write_only(field.fields or {}, item)
        out[key] = copy.deepcopy(item)
    return out


# ---------------------------------------------------------------------------------------------
# Meter data: deterministic, internally consistent (quarters sum to days, readings accumulate).
# Energies are kept in integer units of 0.1 Wh (1e-4 kWh) so that every sum is exact.

EPOCH_DAY = dt.date(2024, 1, 1)  # the meter's first day; history cannot start earlier
BASE_IMPORT = 102_345_678  # 10,234.5678 kWh on EPOCH_DAY 00:00 UTC
BASE_EXPORT = 23_456_789  # 2,345.6789 kWh
UNIT = 1e-4
QUARTERS = 96


def _season(day: dt.date) -> float:
    """0 in midwinter .. 1 in midsummer."""
    return 0.5 - 0.5 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 355) / 365.25)


def day_start_epoch(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())


@lru_cache(maxsize=None)
def day_totals(day: dt.date) -> tuple[int, int]:
    """(import, export) of one day in 0.1 Wh."""
    rng = random.Random(f"wattwaechter-total-{day.isoformat()}")
    season = _season(day)
    imp = rng.uniform(6.5, 10.5) + 3.5 * (1 - season)
    exp = (1.5 + 16.0 * season) * rng.uniform(0.25, 1.0)
    return round(imp / UNIT), round(exp / UNIT)


def _distribute(total: int, weights: list[float]) -> list[int]:
    """Split `total` units over the weights (largest remainder): the parts sum to `total`."""
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    exact = [total * w / whole for w in weights]
    parts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: exact[i] - parts[i], reverse=True)
    for i in order[:total - sum(parts)]:
        parts[i] += 1
    return parts


@lru_cache(maxsize=64)
def day_quarters(day: dt.date) -> tuple[tuple[int, int], ...]:
    """(import, export) of the 96 quarter-hours of a day in 0.1 Wh; they sum to day_totals()."""
    rng = random.Random(f"wattwaechter-profile-{day.isoformat()}")
    season = _season(day)
    sunrise, sunset = 7.8 - 3.0 * season, 16.2 + 4.8 * season
    load, solar = [], []
    for q in range(QUARTERS):
        h = (q + 0.5) / 4
        base = (0.16 + 0.35 * math.exp(-((h - 7.25) / 1.0) ** 2) + 0.55 * math.exp(-((h - 19.0) / 1.8) ** 2)
                + 0.2 * math.exp(-((h - 12.5) / 0.8) ** 2) + rng.uniform(0.0, 0.18))
        if rng.random() < 0.04:
            base += rng.uniform(0.8, 2.2)  # kettle, oven, washing machine
        load.append(base)
        sun = math.sin(math.pi * (h - sunrise) / (sunset - sunrise)) if sunrise < h < sunset else 0.0
        solar.append(sun * rng.uniform(0.6, 1.0))
    imp, exp = day_totals(day)
    return tuple(zip(_distribute(imp, load), _distribute(exp, solar)))


_READINGS: list[tuple[int, int]] = [(BASE_IMPORT, BASE_EXPORT)]  # at 00:00 UTC of EPOCH_DAY + i
_READINGS_LOCK = threading.Lock()


def day_start_reading(day: dt.date) -> tuple[int, int]:
    """The meter readings (import, export) at 00:00 UTC of `day`, in 0.1 Wh."""
    index = (day - EPOCH_DAY).days
    if index < 0:
        raise ValueError("before the meter's first day")
    with _READINGS_LOCK:
        while len(_READINGS) <= index:
            imp, exp = day_totals(EPOCH_DAY + dt.timedelta(days=len(_READINGS) - 1))
            last = _READINGS[-1]
            _READINGS.append((last[0] + imp, last[1] + exp))
        return _READINGS[index]


def kwh(units: float) -> float:
    return round(units * UNIT, 4)


@lru_cache(maxsize=64)
def highres_items(day: dt.date) -> tuple[dict[str, Any], ...]:
    """All 96 quarter-hour items of a day (each with per-phase detail)."""
    rng = random.Random(f"wattwaechter-detail-{day.isoformat()}")
    imp_total, exp_total = day_start_reading(day)
    start = day_start_epoch(day)
    items = []
    for q, (imp, exp) in enumerate(day_quarters(day)):
        import_kw, export_kw = imp * UNIT * 4, exp * UNIT * 4
        power = (import_kw - export_kw) * 1000
        shares = (0.45 + rng.uniform(-0.05, 0.05), 0.32 + rng.uniform(-0.04, 0.04))
        phases = (power * shares[0], power * shares[1], power * (1 - shares[0] - shares[1]))
        volts = [round(230 + rng.gauss(0, 1.5), 1) for _ in range(3)]
        items.append({
            "date": f"{day.isoformat()}T{q // 4:02d}:{q % 4 * 15:02d}",
            "timestamp": start + q * 900,
            "import_total_kWh": kwh(imp_total), "export_total_kWh": kwh(exp_total),
            "import_kW": round(import_kw, 3), "export_kW": round(export_kw, 3), "power_W": round(power, 1),
            "power_L1_W": round(phases[0], 1), "power_L2_W": round(phases[1], 1), "power_L3_W": round(phases[2], 1),
            "voltage_L1_V": volts[0], "voltage_L2_V": volts[1], "voltage_L3_V": volts[2],
            "current_L1_A": round(abs(phases[0]) / volts[0], 2), "current_L2_A": round(abs(phases[1]) / volts[1], 2),
            "current_L3_A": round(abs(phases[2]) / volts[2], 2),
            "frequency_Hz": round(50 + rng.gauss(0, 0.02), 2), "power_factor": round(rng.uniform(0.9, 0.99), 3),
            "min_power_W": round(power - rng.uniform(40, 300), 1),
            "max_power_W": round(power + rng.uniform(40, 900), 1),
            "samples": rng.randint(446, 450), "valid": True,
        })
        imp_total += imp
        exp_total += exp
    return tuple(items)


@lru_cache(maxsize=512)
def lowres_item(day: dt.date) -> dict[str, Any]:
    """The daily value of a completed day (with its quarter-hour energies as detail)."""
    imp_total, exp_total = day_start_reading(day)
    imp, exp = day_totals(day)
    quarters = day_quarters(day)
    net = [(i - e) * UNIT * 4000 for i, e in quarters]  # average W per quarter
    peak = max(range(QUARTERS), key=lambda q: net[q])
    return {
        "date": day.isoformat(), "timestamp": day_start_epoch(day),
        "import_total_kWh": kwh(imp_total), "export_total_kWh": kwh(exp_total),
        "import_kWh": kwh(imp), "export_kWh": kwh(exp),
        "peak_power_W": round(net[peak], 1), "peak_time": f"{peak // 4:02d}:{peak % 4 * 15:02d}",
        "min_power_W": round(min(net), 1), "avg_power_W": round(sum(net) / QUARTERS, 1),
        "import_quarters_kWh": [kwh(i) for i, _ in quarters],
        "export_quarters_kWh": [kwh(e) for _, e in quarters],
    }


def meter_now(now: float) -> dict[str, Any]:
    """Readings and instantaneous values at epoch second `now` (UTC)."""
    moment = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    day = moment.date()
    seconds = now - day_start_epoch(day)
    q = min(int(seconds // 900), QUARTERS - 1)
    fraction = (seconds - q * 900) / 900
    quarters = day_quarters(day)
    imp0, exp0 = day_start_reading(day)
    imp = imp0 + sum(i for i, _ in quarters[:q]) + quarters[q][0] * fraction
    exp = exp0 + sum(e for _, e in quarters[:q]) + quarters[q][1] * fraction
    power = (quarters[q][0] - quarters[q][1]) * UNIT * 4000 + 35 * math.sin(now / 7) + 12 * math.sin(now / 3.1)
    shares = (0.45 + 0.03 * math.sin(now / 11), 0.32 + 0.02 * math.sin(now / 13))
    phases = (power * shares[0], power * shares[1], power * (1 - shares[0] - shares[1]))
    volts = tuple(round(230 + 1.5 * math.sin(now / p), 1) for p in (17, 19, 23))
    return {"timestamp": int(now), "datetime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "import": imp,
            "export": exp, "power": power, "phases": phases, "volts": volts,
            "frequency": round(50 + 0.03 * math.sin(now / 29), 2)}


OBIS_NAMES = {
    "1.8.0": ("kWh", "Bezug"), "2.8.0": ("kWh", "Einspeisung"), "16.7.0": ("W", "Leistung"),
    "36.7.0": ("W", "Leistung L1"), "56.7.0": ("W", "Leistung L2"), "76.7.0": ("W", "Leistung L3"),
    "32.7.0": ("V", "Spannung L1"), "52.7.0": ("V", "Spannung L2"), "72.7.0": ("V", "Spannung L3"),
    "31.7.0": ("A", "Strom L1"), "51.7.0": ("A", "Strom L2"), "71.7.0": ("A", "Strom L3"),
    "14.7.0": ("Hz", "Frequenz"), "0.0.0": ("", "Zählernummer"),
}
METER_ID = "1EMH0012345678"


def obis_values(m: dict[str, Any]) -> dict[str, float | str]:
    phases, volts = m["phases"], m["volts"]
    return {
        "1.8.0": kwh(m["import"]), "2.8.0": kwh(m["export"]), "16.7.0": round(m["power"], 1),
        "36.7.0": round(phases[0], 1), "56.7.0": round(phases[1], 1), "76.7.0": round(phases[2], 1),
        "32.7.0": volts[0], "52.7.0": volts[1], "72.7.0": volts[2],
        "31.7.0": round(abs(phases[0]) / volts[0], 2), "51.7.0": round(abs(phases[1]) / volts[1], 2),
        "71.7.0": round(abs(phases[2]) / volts[2], 2), "14.7.0": m["frequency"], "0.0.0": METER_ID,
    }


# SunSpec registers of the Modbus TCP server: (register, name, OBIS, unit, scale factor, scale register)
MODBUS_REGISTERS = [
    (40073, "AphA", "31.7.0", "A", -2, 40076), (40074, "AphB", "51.7.0", "A", -2, 40076),
    (40075, "AphC", "71.7.0", "A", -2, 40076), (40080, "PhVphA", "32.7.0", "V", -1, 40084),
    (40081, "PhVphB", "52.7.0", "V", -1, 40084), (40082, "PhVphC", "72.7.0", "V", -1, 40084),
    (40086, "Hz", "14.7.0", "Hz", -2, 40087), (40088, "W", "16.7.0", "W", 0, 40092),
    (40089, "WphA", "36.7.0", "W", 0, 40092), (40090, "WphB", "56.7.0", "W", 0, 40092),
    (40091, "WphC", "76.7.0", "W", 0, 40092), (40108, "TotWhExp", "2.8.0", "Wh", 1, 40124),
    (40116, "TotWhImp", "1.8.0", "Wh", 1, 40124),
]


def sml_ring_buffer(seed: str, size: int = 2048) -> bytes:
    """A ring buffer of SML telegrams (escape 1b1b1b1b 01010101 ... 1b1b1b1b 1a xx crc),
    starting somewhere inside a telegram as a real ring buffer does."""
    rng = random.Random(seed)
    data = bytearray()
    while len(data) < size + 400:
        body = bytes([0x76, 0x05]) + rng.randbytes(4) + bytes([0x62, 0x00, 0x62, 0x00, 0x72, 0x63, 0x07, 0x01])
        body += bytes([0x77, 0x07, 0x01, 0x00, 0x01, 0x08, 0x00, 0xFF]) + rng.randbytes(rng.randint(180, 300))
        body = body.replace(b"\x1b\x1b\x1b\x1b", b"\x1b\x1b\x1b\x1a")
        pad = (-len(body)) % 4
        data += b"\x1b\x1b\x1b\x1b\x01\x01\x01\x01" + body + b"\x00" * pad
        data += b"\x1b\x1b\x1b\x1b\x1a" + bytes([pad]) + rng.randbytes(2)
    start = rng.randint(50, 350)
    return bytes(data[start:start + size])


# ---------------------------------------------------------------------------------------------
# Rate limit


class RateLimiter:
    """Sliding window: an accepted request is remembered for `window` seconds; a new one is
    accepted while fewer than `limit` are remembered. Refused requests are not remembered."""

    def __init__(self, limit: int = RATE_LIMIT, window: float = RATE_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.accepted: dict[str, deque[float]] = {}

    def _expire(self, key: str, now: float) -> deque[float]:
        sent = self.accepted.setdefault(key, deque())
        while sent and now - sent[0] > self.window:  # "> window": a closed 10 s interval holds <= limit
            sent.popleft()
        return sent

    def admit(self, key: str = "device") -> bool:
        now = self.clock()
        sent = self._expire(key, now)
        if len(sent) >= self.limit:
            return False
        sent.append(now)
        return True

    def used(self, key: str = "device") -> int:
        return len(self._expire(key, self.clock()))

    def reset(self) -> None:
        self.accepted.clear()


# ---------------------------------------------------------------------------------------------
# Routes (paths below /api/v1). `access` is the token level of the document's Auth column, in the
# schema's x-conformlab.access words: none ("—"), read, write.

OPEN, READ, WRITE = "none", "read", "write"

DOCUMENTED = (
    Route("GET", "/system/alive", "alive", access=OPEN),
    Route("GET", "/system/info", "info", access=READ),
    Route("GET", "/system/led", "led", access=READ),
    Route("GET", "/system/wifi_scan", "wifi_scan", access=OPEN),
    Route("GET", "/system/timezones", "timezones", access=READ),
    Route("POST", "/system/reboot", "reboot", access=WRITE),
    Route("GET", "/history/latest", "latest", access=READ),
    Route("GET", "/history/highRes", "high_res", access=READ),
    Route("GET", "/history/lowRes", "low_res", access=READ),
    Route("GET", "/settings", "get_settings", access=READ),
    Route("POST", "/settings", "post_settings", JSON, access=WRITE),
    Route("POST", "/auth/tokens/generate", "generate_tokens", access=WRITE),
    Route("POST", "/auth/tokens/confirm", "confirm_tokens", JSON, access=WRITE),
    Route("GET", "/mqtt/ca", "ca_status", access=READ),
    Route("POST", "/mqtt/ca", "ca_upload", JSON, access=WRITE),
    Route("DELETE", "/mqtt/ca", "ca_delete", access=WRITE),
    Route("POST", "/cloud/pair", "cloud_pair", JSON, access=WRITE),
    Route("DELETE", "/cloud/pair", "cloud_unpair", access=WRITE),
    Route("GET", "/ota/check", "ota_check", access=READ),
    Route("POST", "/ota/start", "ota_start", access=WRITE),
    Route("GET", "/logs/rawdump", "rawdump", access=READ),
    Route("GET", "/logs/persistent", "log_persistent", access=READ),
    Route("GET", "/logs/ram", "log_ram", access=READ),
    Route("GET", "/modbus/status", "modbus_status", access=READ),
)
# Beyond the document: endpoints no table of wattwaechter-api.txt lists, which the vendor's client
# aio-wattwaechter 1.3.0 calls (Wattwaechter.selftest -> SelfTestResult, .setup_token -> dict,
# .mqtt_status -> MqttStatus). Served for integrations built on that client; the schema does not list
# them, so no check judges them. Access as the client sends: no token on /setup/token
# (require_auth=False), its one token elsewhere; selftest is not one of the calls its docstrings
# mark "(requires WRITE token)".
BEYOND_THE_DOCUMENT = (
    Route("POST", "/system/selftest", "selftest", access=READ),
    Route("GET", "/setup/token", "setup_token", access=OPEN),
    Route("GET", "/mqtt/status", "mqtt_status", access=READ),
)
ROUTES = DOCUMENTED + BEYOND_THE_DOCUMENT

ERROR_TEXT = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
              500: "Internal server error"}
MISSING, WRONG = "missing", "wrong"  # outcomes of reading the Authorization header besides READ/WRITE
COUNTERS = ("reboots", "otaStarts", "settingsWrites", "tokenRenewals", "caUploads", "cloudPairings", "selfTests",
            "rateLimited", "heapRejected", "requests")


def parse_date(raw: str | None, name: str, rollover: bool = False) -> dt.date:
    """A YYYY-MM-DD day; `rollover` (the alternative reading): a day that is no calendar date
    rolls over as mktime() does (month 13 is January of the next year, February 30 is March 2)."""
    if raw is None or not DATE.fullmatch(raw):
        raise Refused(f"{name} must be YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        if not rollover:
            raise Refused(f"{name} is not a calendar date") from None
    year, month, day = (int(part) for part in raw.split("-"))
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    try:
        return dt.date(year, month, 1) + dt.timedelta(days=day - 1)
    except (ValueError, OverflowError):
        raise Refused(f"{name} is not a calendar date") from None


def new_token() -> str:
    return secrets.token_hex(16).upper()


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


@dataclass
class Pending:
    read: str
    write: str
    expires: float  # on the device clock (now())


# ---------------------------------------------------------------------------------------------


class WattwaechterEmulator(DeviceEmulator):
    NAME = "wattwaechter"
    PREFIX = PREFIX
    ROUTES = ROUTES
    FAULTS = FAULTS

    def __init__(self, faults=(), auth=None) -> None:
        super().__init__(faults, auth)
        for key, value in self.auth.items():  # a token is sent as "Bearer <token>"
            if not value.strip() or value != value.strip():
                raise ValueError(f"auth {key!r} must be a non-empty string without spaces")
        self.heap_reserved = 0  # bytes held by answers being sent (survives reset: they are in flight)
        self.reset()

    def reset(self) -> None:
        """Back to the state at start (also POST /__emulator__/reset)."""
        super().reset()
        self.settings = copy.deepcopy(DEFAULT_SETTINGS)
        if self.auth:
            self.tokens = (self.auth["read_token"], self.auth["write_token"])
            self.settings["api_auth_required"] = True
        else:
            self.tokens = (new_token(), new_token())
        self.pending: Pending | None = None
        self.limiter = RateLimiter(RATE_LIMIT + 1 if self.fault("budget_26") else RATE_LIMIT)
        self.heap_forced: int | None = None
        self.heap_min_free = HEAP_IDLE_FREE
        self.send_rate = float(SEND_RATE)
        self.has_reading = True
        self.first_day: dt.date | None = max(EPOCH_DAY, _utc_today() - dt.timedelta(days=90))
        self.update: str | None = "1.5.0"
        self.custom_ca: str | None = None
        self.pairing_token: str | None = None
        self.setup_complete = True  # connected to a WiFi before: /setup/token is closed
        self.started = time.monotonic() - (7 * 86400 + 5 * 3600 + 31 * 60)  # up for a week
        self.started_epoch = time.time() - (time.monotonic() - self.started)
        self.scan_until = 0.0
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.persistent_log = [
            (int(self.started_epoch) - 86400 * 30, "BOOT", f"firmware {FIRMWARE} started (power on)"),
            (int(self.started_epoch) - 86400 * 30 + 12, "WIFI", "connected to MyNetwork"),
            (int(self.started_epoch) - 86400 * 9, "OTA", f"updated to {FIRMWARE}"),
            (int(self.started_epoch), "BOOT", f"firmware {FIRMWARE} started (software reset)"),
            (int(self.started_epoch) + 9, "WIFI", "connected to MyNetwork"),
            (int(self.started_epoch) + 15, "MQTT", "connected to 192.168.178.111:1883"),
        ]

    # -- in front of the endpoints: heap protection (503), rate limit (429), auth, the envelope ----

    def handle(self, request: Request) -> Response:
        """Builds the answer under the state lock and, in the same hold, reserves its size on the
        heap model; the reservation lasts while the emulated device sends it (outside the lock, so
        that concurrent requests see it)."""
        with self.lock:  # re-entrant: the core's handle() takes it too
            response = super().handle(request)
            if is_control(request.path):
                return response
            size = 0 if request.method == "HEAD" else len(response.body)
            self.heap_reserved += size
            self.heap_min_free = min(self.heap_min_free, self.free_heap())
            rate = self.send_rate
        try:
            if size:
                time.sleep(size / rate)
        finally:
            with self.lock:
                self.heap_reserved -= size
        return response

    def screen(self, req: Request) -> Response | None:
        """Every /api/v1 request, known path or not: heap protection first (a refused request costs
        no budget), then the rate limit (a 429 costs none either)."""
        if self.free_heap() < HEAP_CRITICAL:
            self.count("heapRejected")
            return self._heap_protection()
        if not self.limiter.admit(req.client_address[0] if self.fault("budget_per_client") else "device"):
            self.count("rateLimited")
            return self._too_many_requests()
        self.count("requests")
        return None

    def error(self, status: int, detail: str | None = None, headers=None, *, code=None) -> Response:
        """Every error answer: {"error": "..."} as application/json; the connection stays open."""
        return Response.json({"error": detail or ERROR_TEXT.get(status, "Error")}, status, headers)

    def _retry_after(self, seconds: int) -> dict[str, str]:
        return {"Retry-After": f"{seconds}.0" if self.fault("retry_after_fractional") else str(seconds)}

    def _heap_protection(self) -> Response:
        if self.fault("heap_overload_500"):
            return Response.json({"error": "Out of memory"}, 500)
        headers = {} if self.fault("heap_no_retry_after") else self._retry_after(RETRY_AFTER_503)
        return Response(503, {**headers, "Content-Type": "application/json"},
                        b'{"error":"Service temporary unavailable"}')

    def _too_many_requests(self) -> Response:
        headers = {} if self.fault("rate_limit_no_retry_after") else self._retry_after(RETRY_AFTER_429)
        if self.fault("rate_limit_wrong_body"):
            return Response(429, {**headers, "Content-Type": "text/plain"}, b"Too Many Requests")
        return Response(429, {**headers, "Content-Type": "application/json"}, b'{"error":"Too many requests"}')

    def free_heap(self) -> int:
        if self.heap_forced is not None:
            return self.heap_forced
        return max(0, HEAP_IDLE_FREE - self.heap_reserved)

    def _pending(self) -> Pending | None:
        """The pending token pair, None once it has lapsed (unless fault confirm_after_expiry)."""
        if self.pending is not None and self.now() > self.pending.expires \
                and not self.fault("confirm_after_expiry"):
            self.pending = None
        return self.pending

    def _level(self, req: Request) -> str:
        header = req.headers.get("Authorization")
        if header is None and self.fault("proxy_authorization_read"):
            header = req.headers.get("Proxy-Authorization")
        if header is None:
            return MISSING
        token = compare.bearer_token(header, self)
        if token is None:
            return WRONG
        flaws = compare.flaws_of(self, TOKEN_FLAWS)
        if not token and compare.EMPTY not in flaws:
            return WRONG
        read, write = self.tokens
        if compare.matches(token, write, flaws):
            return WRITE
        if compare.matches(token, read, flaws):
            return READ
        return WRONG

    def authorize(self, req: Request, route: Route) -> Response | None:
        if not self.settings["api_auth_required"]:
            return None
        need = route.access
        if need == OPEN:
            if not (route.handler == "alive" and self.fault("alive_requires_token")):
                return None
            need = READ
        level = self._level(req)
        if level == MISSING:
            return self.error(403) if self.fault("missing_token_403") else self._unauthorized()
        if level == WRONG:
            return self._unauthorized()
        if need == WRITE and level == READ and not self.fault("read_token_can_write"):
            return self.error(403)
        return None

    def _unauthorized(self) -> Response:
        return self.error(401, headers={"WWW-Authenticate": "Bearer"})

    # -- system ----------------------------------------------------------------------------------

    def alive(self, req) -> Response:
        return Response.json({"alive": True, "version": FIRMWARE})

    def info(self, req) -> Response:
        up = int(time.monotonic() - self.started)
        free = self.free_heap()
        entry = lambda name, value, unit="": {"name": name, "value": str(value), "unit": unit}  # noqa: E731
        wifi = self.settings["wifi"]["primary"]
        ap = self.settings["accessPoint"]
        return Response.json({
            "uptime": [entry("uptime", f"{up // 86400}d {up % 86400 // 3600}h {up % 3600 // 60}m"),
                       entry("uptime_seconds", up, "s")],
            "wifi": [entry("ssid", wifi["ssid"]), entry("signal_strength", -58, "dBm"),
                     entry("ip_address", "192.168.178.57"), entry("mac_address", "9B:FE:FF:45:3A:B4"),
                     entry("mdns_name", f"wattwaechter-{DEVICE_ID.lower()}.local"), entry("channel", 6)],
            "ap": [entry("active", str(ap["enable"]).lower()), entry("ssid", ap["ssid"]),
                   entry("ip_address", "192.168.4.1"), entry("clients", 0)],
            "esp": [entry("esp_id", DEVICE_ID), entry("os_version", FIRMWARE), entry("model_id", "ww_plus"),
                    entry("product_name", "WattWächter Plus"), entry("chip", "ESP32-S3"),
                    entry("cpu_freq", 240, "MHz"), entry("flash_size", 8 * 1024 * 1024, "bytes")],
            "heap": [entry("free_heap", free, "bytes"), entry("min_free_heap", min(self.heap_min_free, free), "bytes"),
                     entry("max_alloc_heap", int(free * 0.7), "bytes"), entry("heap_size", HEAP_SIZE, "bytes")],
        })

    def led(self, req) -> Response:
        status = "OK" if self.has_reading else "METER_ATTENTION"
        if self.alternative:  # the document shows no shape: another one
            return Response.json({"status": status.lower(), "enabled": self.settings["ledEnable"],
                                  "brightness": 40 if self.settings["ledEnable"] else 0})
        color, mode, rgb = ("green", "dimmed", (0, 60, 0)) if status == "OK" else ("yellow", "pulse", (255, 160, 0))
        enabled = self.settings["ledEnable"]
        if not enabled:
            color, mode, rgb = "off", "off", (0, 0, 0)
        return Response.json({
            "status": status, "priority": 1 if status == "OK" else 4, "color": color, "mode": mode,
            "rgb": {"r": rgb[0], "g": rgb[1], "b": rgb[2]}, "enabled": enabled,
            "active_statuses": {name: name == status for name in LED_STATUSES if name != "NONE"},
        })

    def wifi_scan(self, req) -> Response:
        now = time.monotonic()
        if req.query.get("refresh", [""])[0].lower() == "true" and now >= self.scan_until:
            self.scan_until = now + 1.5
        if now < self.scan_until:
            return Response.json({"networks": [], "count": 0, "scanning": True})
        return Response.json({"networks": WIFI_NETWORKS, "count": len(WIFI_NETWORKS), "scanning": False})

    def timezones(self, req) -> Response:
        if self.alternative:  # the document shows no shape: the bare names
            return Response.json([zone["name"] for zone in TIMEZONES])
        return Response.json(TIMEZONES)

    def reboot(self, req) -> Response:
        self.count("reboots")
        self.restart(RESTART_DELAY, lambda: self.boot("reboot requested via API"))
        return Response.json({"rebooting": True})

    def boot(self, why: str = "power on") -> None:
        """What a start does to the state: RAM is gone (pending tokens, the rate-limit window, the
        heap minimum, a scan in progress), the uptime starts at 0, the start is counted; the
        settings, active tokens, CA certificate and cloud pairing are in flash and stay."""
        self.settings["rebootsTotal"] += 1
        self.settings["rebootsAll"] += 1
        self.started = time.monotonic()
        self.started_epoch = time.time()
        self.pending = None
        self.limiter = RateLimiter(self.limiter.limit)
        self.heap_min_free = HEAP_IDLE_FREE
        self.scan_until = 0.0
        self._log_event("BOOT", f"firmware {FIRMWARE} started ({why})")

    # -- history ---------------------------------------------------------------------------------

    def _no_data(self) -> Response:
        return Response(204)

    def latest(self, req) -> Response:
        if not self.has_reading:
            return Response.json({}) if self.fault("latest_empty_200") else Response(204)
        m = meter_now(time.time())
        answer: dict[str, Any] = {"timestamp": m["timestamp"], "datetime": m["datetime"]}
        for code, value in obis_values(m).items():
            unit, name = OBIS_NAMES[code]
            answer[code] = {"value": value, "unit": unit, "name": name}
        return Response.json(answer)

    def _recorded(self, day: dt.date) -> bool:
        return self.first_day is not None and self.first_day <= day <= _utc_today()

    def high_res(self, req) -> Response:
        day = parse_date(req.query.get("date", [None])[0], "date", rollover=self.alternative)
        if not self._recorded(day):
            return self._no_data()
        items = highres_items(day)
        if day == _utc_today():
            begun = int((time.time() - day_start_epoch(day)) // 900) + 1
            items = items[:begun]
        quarters = day_quarters(day)[:len(items)]
        return Response.json({
            "start": day.isoformat(), "days": 1, "items": list(items),
            "import_total_kWh": kwh(sum(i for i, _ in quarters)),
            "export_total_kWh": kwh(sum(e for _, e in quarters)),
        })

    def low_res(self, req) -> Response:
        start = parse_date(req.query.get("start", [None])[0], "start", rollover=self.alternative)
        raw = req.query.get("days", [None])[0]
        unchecked = self.fault("history_days_unchecked")
        signed = unchecked or self.alternative
        if raw is None or not re.fullmatch(r"-?[0-9]+" if signed else r"[0-9]+", raw):
            raise Refused("days must be an integer 1..31")
        days = int(raw)
        if self.alternative and not unchecked:
            days = min(max(days, 1), 31)  # clamped into the documented range
        if not 1 <= days <= 31 and not unchecked:
            raise Refused("days must be 1..31")
        if self.first_day is None:
            return self._no_data()
        asked = days + 1 if self.fault("history_range_off_by_one") else days  # the day after the range too
        completed = min(asked, (_utc_today() - start).days)  # days from `start` before today
        first = max(start, self.first_day)
        count = (start - first).days + completed  # from `first` to the last completed day asked for
        items = [lowres_item(first + dt.timedelta(days=n)) for n in range(max(0, count))]
        if not items:
            return self._no_data()
        return Response.json({
            "start": start.isoformat(), "days": days, "items": items,
            "import_total_kWh": round(sum(item["import_kWh"] for item in items), 4),
            "export_total_kWh": round(sum(item["export_kWh"] for item in items), 4),
        })

    # -- settings & tokens -----------------------------------------------------------------------

    def get_settings(self, req) -> Response:
        if self.fault("settings_return_passwords"):
            return Response.json(self.settings)
        if self.alternative:  # the key is there, never the password itself
            return Response.json(masked_write_only(SETTINGS_FIELDS, self.settings))
        return Response.json(without_write_only(SETTINGS_FIELDS, self.settings))

    def post_settings(self, req) -> Response:
        changes = validate_settings(SETTINGS_FIELDS, req.data, self.settings)
        base = self.settings
        if self.fault("partial_settings_reset"):
            keep = {key: self.settings[key] for key in (*READ_ONLY, "api_auth_required")}
            base = {**copy.deepcopy(FACTORY_SETTINGS), **keep}
        self.settings = merge(base, changes)
        self.count("settingsWrites")
        self._log_event("SETTINGS", "changed: " + ", ".join(sorted(changes)) if changes else "no change")
        return Response.json({"success": True, "applied": req.data})

    def generate_tokens(self, req) -> Response:
        read, write = new_token(), new_token()
        self.pending = Pending(read, write, self.now() + TOKEN_TTL)
        if self.fault("generate_activates_immediately"):
            self.tokens = (read, write)
        return Response.json({"success": True, "pending": {"token_read": read, "token_write": write},
                              "expires_in": TOKEN_TTL})

    def confirm_tokens(self, req) -> Response:
        body = req.data
        if not isinstance(body, dict) or not isinstance(body.get("new_write_token"), str):
            raise Refused('expected {"new_write_token": "<pending WRITE token>"}')
        pending = self._pending()
        problem = None
        if pending is None:
            problem = "No pending tokens (none generated, or more than 60 s ago)"
        elif not hmac.compare_digest(body["new_write_token"].encode(), pending.write.encode()):
            problem = "new_write_token does not match the pending WRITE token"
        if problem is not None:
            if self.alternative:  # refused in the answer's body, not by its status
                return Response.json({"success": False, "message": problem})
            raise Refused(problem)
        self.tokens = (pending.read, pending.write)
        self.pending = None
        self.count("tokenRenewals")
        self._log_event("AUTH", "API tokens renewed")
        if self.alternative:
            return Response.json({"message": "Tokens activated"})
        return Response.json({"success": True, "message": "Tokens activated successfully."})

    # -- MQTT CA, cloud, OTA -----------------------------------------------------------------------

    def ca_status(self, req) -> Response:
        size = len(self.custom_ca) if self.custom_ca else 0
        return Response.json({"has_custom_cert": self.custom_ca is not None,
                              "bundle_size": CA_BUNDLE_SIZE + size, "custom_size": size})

    def ca_upload(self, req) -> Response:
        pem = req.data.get("certificate") if isinstance(req.data, dict) else None
        if not isinstance(pem, str) or not (pem.strip() if self.alternative else _valid_pem(pem)):
            raise Refused('expected {"certificate": "-----BEGIN CERTIFICATE-----..."}')
        self.custom_ca = pem.strip() + "\n"
        self.count("caUploads")
        return Response.json({"success": True, "message": "Certificate added",
                              "bundle_size": CA_BUNDLE_SIZE + len(self.custom_ca)})

    def ca_delete(self, req) -> Response:
        if self.custom_ca is None:
            raise Refused("No custom certificate", 404)
        self.custom_ca = None
        return Response.json({"success": True, "message": "Custom certificate deleted",
                              "bundle_size": CA_BUNDLE_SIZE})

    def cloud_pair(self, req) -> Response:
        token = req.data.get("pairing_token") if isinstance(req.data, dict) else None
        if not isinstance(token, str) or not (token.strip() if self.alternative else PAIRING_TOKEN.fullmatch(token)):
            raise Refused('expected {"pairing_token": "WW-XXXXXXXX"}')
        self.pairing_token = token
        self.count("cloudPairings")
        return Response.json({"success": True, "message": "Pairing wird durchgeführt..."})

    def cloud_unpair(self, req) -> Response:
        self.pairing_token = None
        return Response.json({"success": True, "message": "Pairing token removed."})

    def ota_check(self, req) -> Response:
        data = {"update_available": self.update is not None, "version": self.update or FIRMWARE,
                "tag": "stable" if self.update else "", "release_date": "2025-11-20" if self.update else "",
                "release_note_de": "Fehlerbehebungen und Verbesserungen" if self.update else "",
                "release_note_en": "Bug fixes and improvements" if self.update else "",
                "last_checked": int(self.started_epoch) + 60}
        return Response.json({"ok": True, "data": data})

    def ota_start(self, req) -> Response:
        self.count("otaStarts")
        if self.update is None:
            return Response.json({"ok": True, "update_available": False})
        version = self.update
        self._log_event("OTA", f"update to {version} started")
        self.restart(RESTART_DELAY, lambda: self.boot(f"OTA update to {version} installed"))
        return Response.json({"ok": True, "update_available": True, "version": version, "rebooting": True})

    # -- logs, Modbus ------------------------------------------------------------------------------

    def _log_event(self, kind: str, text: str) -> None:
        self.persistent_log.append((int(time.time()), kind, text))
        del self.persistent_log[:-200]

    def rawdump(self, req) -> Response:
        if not self.has_reading:
            return Response(204)
        seed = f"wattwaechter-sml-{int(time.time()) // 2}"
        return Response(200, {"Content-Type": "application/octet-stream"}, sml_ring_buffer(seed))

    def log_persistent(self, req) -> Response:
        lines = ["timestamp,datetime,type,message"]
        for when, kind, text in self.persistent_log:
            stamp = dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            lines.append(f'{when},{stamp},{kind},"{text}"')
        return Response.text("\n".join(lines) + "\n", content_type="text/csv")

    def log_ram(self, req) -> Response:
        up_ms = int((time.monotonic() - self.started) * 1000)
        lines = ["millis,level,tag,message", "312,I,MAIN,WattWaechter starting", "845,I,SML,IR interface ready",
                 "4211,I,WIFI,connected to MyNetwork (-58 dBm)", "4630,I,NTP,time synchronised",
                 "6020,I,MQTT,connected to 192.168.178.111:1883",
                 f"{max(up_ms - 2000, 7000)},I,SML,telegram ok ({METER_ID})",
                 f"{max(up_ms, 7001)},I,HTTP,{req.method} {req.path}"]
        if not self.has_reading:
            lines.insert(-1, f"{max(up_ms - 1000, 7000)},W,SML,no telegram for 60 s")
        return Response.text("\n".join(lines) + "\n", content_type="text/csv")

    def modbus_status(self, req) -> Response:
        values = obis_values(meter_now(time.time())) if self.has_reading else {}
        registers = []
        for register, name, obis, unit, scale, scale_register in MODBUS_REGISTERS:
            value = values.get(obis)
            if isinstance(value, float) and unit == "Wh":
                value = round(value * 1000, 1)  # the kWh readings as Wh
            raw = int(round(value / 10 ** scale)) if isinstance(value, float) else None
            registers.append({"register": register, "name": name, "obis": obis,
                              "value": float(raw * 10 ** scale) if raw is not None else None, "unit": unit,
                              "valid": raw is not None, "raw": raw, "scale_factor": scale,
                              "scale_register": scale_register, "derived": False})
        return Response.json({"enabled": True, "running": True, "port": 502, "active_connections": 0,
                              "registers": registers})

    # -- beyond the document (BEYOND_THE_DOCUMENT): the vendor client's models decide the shapes ---

    def selftest(self, req) -> Response:  # aio_wattwaechter.SelfTestResult
        self.count("selfTests")
        return Response.json({"success": True, "result": "OK", "message": "IR transceiver OK"})

    def setup_token(self, req) -> Response:  # a dict of readToken, writeToken
        if self.setup_complete:  # the client: "403 if initial setup is complete"
            raise Refused("Initial setup already completed", 403)
        return Response.json({"readToken": self.tokens[0], "writeToken": self.tokens[1]})

    def mqtt_status(self, req) -> Response:  # aio_wattwaechter.MqttStatus
        mqtt = self.settings["mqtt"]
        state, error, message = ("OFF", 0, "") if not mqtt["enable"] else \
            ("CONNECTED", 0, "") if mqtt["host"] else ("FAILED", -2, "no broker host set")
        return Response.json({"enabled": mqtt["enable"], "state": state, "host": mqtt["host"],
                              "port": mqtt["port"], "client_id": mqtt["client_id"], "use_tls": mqtt["use_tls"],
                              "last_error": error, "last_error_message": message, "reconnect_attempts": 0})

    # -- the WattWächter's own emulator controls (/__emulator__/...) -------------------------------

    def device_controls(self) -> dict[tuple[str, str], Callable[[Any], Any]]:
        return {
            ("GET", "budget"): lambda payload: self._budget_view(),
            ("POST", "budget"): self._ctl_budget,
            ("GET", "heap"): lambda payload: self._heap_view(),
            ("POST", "heap"): self._ctl_heap,
            ("GET", "tokens"): lambda payload: self._tokens_view(),
            ("POST", "tokens"): self._ctl_tokens,
            ("POST", "latest"): self._ctl_latest,
            ("POST", "history"): self._ctl_history,
            ("POST", "ota"): self._ctl_ota,
            ("POST", "setup"): self._ctl_setup,
        }

    def _budget_view(self) -> dict[str, Any]:
        used = self.limiter.used("device")
        return {"limit": self.limiter.limit, "window": RATE_WINDOW, "used": used,
                "remaining": max(0, self.limiter.limit - used)}

    def _ctl_budget(self, payload: Any) -> dict[str, Any]:
        if payload != {"reset": True}:
            raise ControlError('expected {"reset": true}')
        self.limiter.reset()
        return self._budget_view()

    def _heap_view(self) -> dict[str, Any]:
        return {"free": self.free_heap(), "forced": self.heap_forced, "reserved": self.heap_reserved,
                "threshold": HEAP_CRITICAL, "sendRate": self.send_rate}

    def _ctl_heap(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or not set(payload) <= {"free", "sendRate"} or not payload:
            raise ControlError('expected {"free": bytes | null} and/or {"sendRate": bytes per second}')
        free = payload.get("free", self.heap_forced)
        if free is not None and (isinstance(free, bool) or not isinstance(free, int) or free < 0):
            raise ControlError("free: a number of bytes >= 0, or null")
        rate = payload.get("sendRate", self.send_rate)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0 or not math.isfinite(rate):
            raise ControlError("sendRate: bytes per second > 0")
        self.heap_forced, self.send_rate = free, float(rate)
        return self._heap_view()

    def _tokens_view(self) -> dict[str, Any]:
        pending = self._pending()
        return {"read_token": self.tokens[0], "write_token": self.tokens[1],
                "api_auth_required": self.settings["api_auth_required"],
                "pending": None if pending is None else {
                    "token_read": pending.read, "token_write": pending.write,
                    "expires_in": round(pending.expires - self.now(), 3)}}

    def _ctl_tokens(self, payload: Any) -> dict[str, Any]:
        keys = {"read_token", "write_token", "api_auth_required"}
        if not isinstance(payload, dict) or not payload or not set(payload) <= keys:
            raise ControlError('expected {"read_token": str, "write_token": str, "api_auth_required": bool}')
        for key in ("read_token", "write_token"):
            value = payload.get(key, "x")
            if not isinstance(value, str) or not value.strip() or value != value.strip():
                raise ControlError(f"{key}: a non-empty string without spaces")
        if type(payload.get("api_auth_required", False)) is not bool:
            raise ControlError("api_auth_required: a boolean")
        self.tokens = (payload.get("read_token", self.tokens[0]), payload.get("write_token", self.tokens[1]))
        if "api_auth_required" in payload:
            self.settings["api_auth_required"] = payload["api_auth_required"]
        return self._tokens_view()

    def _ctl_latest(self, payload: Any) -> None:
        if not isinstance(payload, dict) or set(payload) != {"clear"} or type(payload["clear"]) is not bool:
            raise ControlError('expected {"clear": true} or {"clear": false}')
        self.has_reading = not payload["clear"]

    def _ctl_history(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or set(payload) != {"first_day"}:
            raise ControlError('expected {"first_day": "YYYY-MM-DD"} or {"first_day": null}')
        first = payload["first_day"]
        if first is not None:
            try:
                first = parse_date(first if isinstance(first, str) else None, "first_day")
            except Refused as exc:
                raise ControlError(exc.detail) from None
            if first < EPOCH_DAY:
                raise ControlError(f"first_day: not before {EPOCH_DAY.isoformat()}")
        self.first_day = first
        return {"first_day": first.isoformat() if first else None, "today": _utc_today().isoformat()}

    def _ctl_ota(self, payload: Any) -> None:
        available = payload.get("available", "") if isinstance(payload, dict) else ""
        if not isinstance(payload, dict) or set(payload) != {"available"} \
                or not (available is None or (isinstance(available, str) and available)):
            raise ControlError('expected {"available": "x.y.z"} or {"available": null}')
        self.update = available

    def _ctl_setup(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or set(payload) != {"complete"} or type(payload["complete"]) is not bool:
            raise ControlError('expected {"complete": true} or {"complete": false}')
        self.setup_complete = payload["complete"]
        return {"complete": self.setup_complete}


def _valid_pem(text: str) -> bool:
    blocks = PEM_BLOCK.findall(text)
    if not blocks or PEM_BLOCK.sub("", text).strip():
        return False
    for block in blocks:
        try:
            if not base64.b64decode("".join(block.split()), validate=True):
                return False
        except (binascii.Error, ValueError):
            return False
    return True
