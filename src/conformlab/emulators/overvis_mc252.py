"""Emulator of the Overvis MC252 controller's HTTP API (overvis-mc252-api.txt + NOTES.md).

A stateful device behind base path /api with every path of the document's two tables: the first
table (reads) answers GET, the second table (commands) answers POST with JSON bodies. Paths keep
their trailing slash exactly as the tables write them.

- Login: GET /api/login/salt/ -> {"salt": "<40 characters>"}; POST /api/login/ with
  {"username": "<login>", "password": "<lowercase hex SHA1 of login + password + salt>"} ->
  {"authType": "Bearer", "token": "<token>", "ttlSec": 60}; POST /api/cmd/logout/ {} -> {}.
  The credentials are the emulator's `auth` {"login": ..., "password": ...} (factory default
  admin/admin for keys not given).
- Access levels: 0 guest, 1 after login (the session token `Bearer <token>` in the document's
  "Authorized" header and/or the standard "Authorization" header; see `token_header`), 1 for every
  guest for 10 minutes after the front-panel button (an emulator control), 2 for every request
  from a VPN-cloud address (an emulator control).
- State (/state/get/) and active/saved settings (/settings/{active,saved}/get/) read by bare keys
  (`?ethernet&gsm`; none = all); POST /settings/saved/set/ {"key": value} -> {} changes the saved
  settings only; they take effect at the next start (POST /cmd/reboot/).
- Modbus RTU on the emulated RS-485 bus (slaves at unit 1 "OB-215" and unit 17 "TH-1"):
  POST /modbus/req/ -> {"tid": N}; GET /modbus/resp/?tid=N -> pending, then the answer. Device
  search (find) and template search (class-find) run for FIND_SECONDS (5 s) on the emulator clock.
- SD card: a small in-memory file system (dir, file info/read/write, remove, eject).
- Commands without an observable effect on the API (identify -- a GET that blinks the LEDs --,
  update download, activation, SMS test, cloud reconnect) are harmless: they are counted.
- Restarts: POST /cmd/reboot/, /cmd/settings/reset/, /cmd/settings/import/ and /cmd/updates/program/
  answer {} first; RESTART_DELAY (1 s: the document gives no delay) later the device drops every
  connection and is off the network for `boot_seconds` (the core's `restart`), then it starts
  again: sessions, salts, the button window, Modbus transactions and searches are gone, the SD card
  is mounted, uptime starts at 0, the saved settings become the active ones, counters["restarts"]
  counts it. (The reset and the import restart because saved settings take effect at the next
  start: NOTES.md.)

Order of checks for /api requests (the core's pipeline): route (404; a documented path with
another method: 405 with Allow) -> access level (401, `authorize`) -> JSON body (400, `read_body`)
-> SD card mounted (503, card paths) -> query and body values (400) -> apply. Every error answer
is the document's envelope {"error": "<code>", "message": "<text>"} as application/json (`error`),
and the connection stays open (keep-alive) after errors too.

Switch on named faults (FAULTS; each one realistic firmware bug tied to the sentence it breaks) to
check that a conformance suite catches it. Start: `OvervisMc252Emulator(faults=(), auth={"login":
..., "password": ...}, token_header="both")` (`token_header`: the targets.toml key of the same name).

Emulator-only controls (under /__emulator__/, JSON in and out, never authenticated): the core's
GET /__emulator__/, GET counters, POST reset, POST advance {"seconds": N} -> {"advanced": ...} and
POST restart (what they mean here first), and the device's own:
- POST reset                       -> everything back to the state at start (settings, sessions,
                                      salts, card, clock, counters, button, VPN, token_header)
- GET  counters                    -> {"identify", "reboots", "logins", "loginFailures", "logouts",
                                      "salts", "savedWrites", "timeSyncs", "timeSets", ...}
- POST advance {"seconds": 61}     -> the emulator clock moves: sessions, button, Modbus answers,
                                      searches, device time, uptime
- POST button {}                   -> the front-panel button: every guest gets level 1 for 600 s
                                      on the emulator clock -> {"level1ForSec": 600}
- GET  button                      -> {"level1ForSec": seconds left (0 when not pressed)}
- GET/POST vpn {"addresses": ["127.0.0.5"]} -> requests from these client addresses
                                      come "from the VPN cloud" (level 2); [] -> none
- GET/POST token_header {"header": "Authorized" | "Authorization" | "both"}
                                   -> which request header the device reads the token from
- GET  settings                    -> {"active": {...}, "saved": {...}}
- GET  sessions                    -> {"sessions": live sessions, "salts": unused salts} (counts
                                      only: no token or salt ever leaves through a control)
- GET/POST card {"inserted": true} -> put an ejected SD card back

The alternative reading (`reading = "alternative"` on the target, `self.alternative`) makes the
choices below that the suites depend on the other way a conforming device may make them:
- a path without its trailing slash is served as the path (/api/version answers);
- /state/get/ ignores unknown keys and values of keys; its members have other shapes (system
  "uptime" as a string, ethernet "link" "up"/"down", gsm "signalDbm" as "-71 dBm");
- saved/set and import ignore unknown keys (the known ones are applied; a bad value is still 400);
- /modbus/req/ answers the tid as a string; /modbus/resp/ names it so and gives the registers as
  "data"; search results say "searching"/"finished"/"cancelled", always list the devices, and the
  template search does not name its template; search-meta-info lists templates as {"name", ...};
- SD card: folders are of type "directory"; a read chunk has no "size" or "eof"; an ejected card
  answers /card/dir/ with an empty listing (200) instead of 503;
- a salt is not consumed by a login (it serves until MAX_SALTS newer ones push it out).
Everything the document or NOTES.md gives (paths, levels, login, envelope, keep-alive, bare keys,
saved settings) is the same in both readings.

Readings of ambiguous passages
------------------------------
- Methods: the document says "The API supports GET and POST methods" and gives two tables. The
  first table (reads, some with a query) is GET, the second (commands) is POST. A documented path
  with any other method -> 405 with `Allow` and the envelope (before the access check).
- Paths are exactly the tables' paths: /api/version without its trailing slash, or any unknown
  path, -> 404 with the envelope (no redirect). The 404 comes before the access check.
- Error codes are short snake_case strings: bad_request, invalid_json, unknown_key,
  invalid_value, unauthorized, invalid_token, login_failed, not_found, method_not_allowed,
  unknown_tid, template_not_found, file_not_found, not_a_file, not_a_dir, dir_not_empty,
  card_not_mounted, no_phone, internal_error.
- Refusal: a level-1 path without a usable session answers 401 with `WWW-Authenticate: Bearer`
  and the envelope: error "unauthorized" when no token was sent, "invalid_token" when the token
  is unknown, logged out or lapsed. 403 is never answered: no documented path needs level 2
  (level 2 >= 1 passes every check), so there is nothing to forbid to a logged-in user.
- Level-0 paths ignore any token (a wrong token on /version/ is not refused).
- Token header: the document names "Authorized", NOTES.md the standard "Authorization"; nothing
  public settles it. By default the emulator reads both (a valid token in either one is enough);
  the `token_header` control (or the start option of the same name) restricts it to one, so a
  suite can report which header a device reads. The value is `Bearer <token>` (scheme
  case-insensitive).
- Salt: 40 lowercase hex characters, a new one per request of /login/salt/. A salt serves one
  login: a successful login consumes it, so a captured hash cannot be replayed. The device keeps
  the last 8 unused salts (an older one is forgotten); salts do not lapse in time. A failed login
  consumes nothing (the device cannot tell which salt a wrong hash was made with).
- Hash: SHA1 over the UTF-8 bytes of login + password + salt, as 40 lowercase hex characters; the
  username must equal the login exactly. A `password` that is not 40 lowercase hex characters, a
  missing field or a wrong type -> 400; a well-formed but wrong hash or username -> 401
  "login_failed".
- Session: ttlSec 60 is read as sliding: the session lapses once more than 60 s (emulator clock)
  have passed since the last request that carried its token. Sessions are not limited in number.
  A restart ends every session (they live in RAM), forgets the salts and the button window, and
  re-mounts the SD card.
- Button: "a user with Guest rights" is every request without a valid session (also one with a
  wrong token), from any client, for 600 s after the press (a second press restarts the 600 s).
- VPN: every request from a registered address gets level 2, whatever token it carries.
- Bodies: every POST takes a JSON object; an empty body counts as {} (NOTES.md shows logout with
  {}). Content-Type is not checked. Malformed JSON -> 400 invalid_json; JSON that is not an
  object -> 400 bad_request. Keys a command does not use are ignored, except in the settings
  writes (below). Commands answer {} (as NOTES.md shows for logout) unless they return data.
- Bare keys: `?ethernet&gsm` (also `?ethernet=&gsm=`); a key with a non-empty value -> 400
  bad_request ("bare keys, no values"); an unknown key -> 400 unknown_key; no key = all. "all"
  is not a key. The answer holds exactly the keys asked for. Paths whose table row shows no query
  ignore a query.
- Settings: a flat key/value set (SETTINGS). saved/set validates the whole body first: an unknown
  key -> 400 unknown_key, a wrong JSON type or a value out of range -> 400 invalid_value, and then
  nothing is applied. {} is accepted and changes nothing. The active settings change only at the
  next start (reboot), when they become a copy of the saved ones.
- cmd/settings/reset: the saved settings become the factory defaults; import takes a flat object
  like saved/set (all or some keys) into the saved settings; export answers the saved settings (the
  configuration the device starts with). Like every saved change, reset and import take effect at
  the next start, which they cause: the device restarts a second after answering.
- cmd/time/set takes {"time": <Unix seconds, 2000-01-01 .. 2100-01-01>}; time/sync resets the
  clock to network time. state "system" shows the device time.
- cmd/gsm/sms-test takes an optional {"phone": "+<5..15 digits>"}; without it the alarmPhone
  setting is used; neither -> 400 no_phone. activation takes {"key": "<non-empty string>"}.
- Modbus: POST /modbus/req/ {"unit": 1..247, "func": 3|4|6|16, "addr": 0..65535,
  "count": 1..125 (3/4, default 1), "values": [0..65535, ...] (6: exactly one, 16: 1..123)} ->
  {"tid": N} (N counts from 1). GET /modbus/resp/?tid=N -> {"tid": N, "status": "pending"} until
  the answer is there (0.1 s on the emulator clock; an absent slave times out after the active
  modbusTimeoutMs), then {"tid", "status": "ok", "unit", "func", "addr", "values"},
  {"tid", "status": "timeout"} or {"tid", "status": "exception", "exception": 2} (illegal data
  address). The last 32 transactions can be read any number of times; an unknown tid -> 404
  unknown_tid; a missing or non-integer tid -> 400. Holding (3) and input (4) registers are the
  same map.
- find (device search on RS-485): start (body ignored) restarts the search over units 1..247 at
  the active rs485Baudrate (the emulated slaves talk at 9600 8N1: at another baud rate the
  search finds nothing); result -> {"status": "idle"|"running"|"done"|"stopped", "progress":
  0..100} and, with the bare key `list`, "devices": [{"unit", "baudrate"}] found so far. stop ends
  a running search (status "stopped"; a stop while idle changes nothing).
- class-find (template search): search-meta-info {} -> {"templates": [names]};
  {"template": name} -> that template's meta info; start {"template": name} searches every
  baud rate of the template; result -> {"status", "progress", "template", "devices":
  [{"unit", "baudrate", "model"}]}. An unknown template -> 404 template_not_found.
- SD card: paths are absolute ("/logs/2025-06-01.csv"), segments of 1..64 characters, no "." or
  "..", at most 255 characters; a trailing slash is ignored. dir {"path"="/"} ->
  {"path", "entries": [{"name", "type", "size", "mtime"}]}; file/info {"path"} -> {"path",
  "type", "size", "mtime"}; file/read {"path", "offset"=0, "length"=4096 (1..4096)} -> {"path",
  "offset", "size", "data" (base64), "eof"}; file/write {"path", "data" (base64, at most 4096
  bytes), "append"=false} -> {} (creates or replaces the file; the folder must exist);
  remove {"path"} removes a file or an empty folder. A missing path -> 404 file_not_found. After
  cmd/memory/card_eject every card request -> 503 card_not_mounted until a reboot or the `card`
  control puts the card back.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import itertools
import json
import math
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

from conformlab.profiles import MC252_TOKEN_HEADERS as TOKEN_HEADERS

from . import credentials as compare
from .core import JSON, ControlError, DeviceEmulator, MalformedBody, Refused, Route, json_value
from .server import Request, Response, is_control, reason_phrase

SESSION_TTL = 60  # "ttlSec": 60 (NOTES.md)
BUTTON_SECONDS = 600  # "for 10 minutes"
MAX_SALTS = 8  # unused salts the device remembers
MODBUS_SECONDS = 0.1  # time until a present slave's answer is there
FIND_SECONDS = 5.0  # duration of a device or template search (about 20 ms per unit id)
MAX_TRANSACTIONS = 32
# Seconds between the answer to a command that restarts the device (reboot, settings reset and
# import, update program) and the restart: the document gives none, so 1 s (the harness's default).
RESTART_DELAY = 1.0
FACTORY_AUTH = {"login": "admin", "password": "admin"}

# Fault name -> the sentence of the document (or NOTES.md) it breaks; the comment says how it shows.
LOGIN_HASH = "Log in via /api/login/ by sending a SHA1 password hash: login + password + salt."
SESSION_TOKEN = "All subsequent requests must include the session token Bearer xxxxxxxxxx in the Authorized header."
# fault -> the flaw it gives the session token comparison
TOKEN_FLAWS = compare.comparison_faults("token", (compare.PREFIX, compare.CASE))
FAULTS: dict[str, str] = {
    # the SD-card paths (/card/...) skip the access check: a guest lists and reads files
    "card_open_to_guests":
        "/api/card/dir/Get list of files and directories🟨 1",
    # /version/ is treated as level 1: a guest gets 401
    "version_needs_login":
        "/api/version/Device firmware version🟩 0",
    # login only checks that a salt was handed out: any 40-hex "hash" for the right username logs in
    "any_hash_accepted":
        "Log in via /api/login/ by sending a SHA1 password hash: login + password + salt.",
    # SHA1(login + password) without a salt is accepted too (a "legacy" fallback): a replayable credential
    "unsalted_hash_accepted":
        '"password": "<lowercase hex SHA1 of login + password + salt>" (NOTES.md)',
    # a salt is not consumed by a login: the same hash logs in again (replay)
    "salt_reusable":
        "1. Get a salt at /api/login/salt/. 2. Log in via /api/login/",
    # the salt has 8 characters, not 40
    "salt_short":
        '`GET /api/login/salt/` -> `{"salt": "<40 characters>"}` (NOTES.md)',
    # logout answers {} but the session token keeps working
    "logout_keeps_token":
        "Logout is performed via /api/cmd/logout/.",
    # a session never lapses (ttlSec 60 is not enforced)
    "session_never_expires":
        '{"authType": "Bearer", "token": "<token>", "ttlSec": 60} (NOTES.md)',
    # the token is read only from "Authorization"; one in "Authorized" is ignored (401)
    "authorized_header_ignored":
        "All subsequent requests must include the session token Bearer xxxxxxxxxx in the Authorized header.",
    # the front-panel button gives guests level 1 for good, not for 10 minutes
    "button_forever":
        "a user with Guest rights temporarily receives access level 🟨 1 (Power User) for 10 minutes.",
    # requests from the VPN cloud are treated like any other (a guest gets 401)
    "vpn_not_admin":
        "All requests coming from the VPN cloud automatically receive access level 🟥 2 — Administrator.",
    # error answers are text/plain reason phrases ("Not Found"), without the JSON envelope
    "error_bare_text":
        'API request errors additionally contain a JSON object: { "error": "error code", "message": "error text" }.',
    # the connection is closed after every answer (without a Connection: close header)
    "keepalive_broken":
        "HTTP keep-alive is supported.",
    # saved/set changes the active settings at once, not at the next start
    "saved_applied_at_once":
        "saved settings take effect at the next start. (NOTES.md)",
    # /state/get/ answers every state object whatever keys were asked for
    "state_keys_ignored":
        "Get current device state by key (or all)",
    # saved/set ignores unknown keys silently and answers 200 {} instead of 400
    "invalid_setting_accepted":
        "Errors are handled with appropriate HTTP statuses (400 Bad Request, 404 Not Found, "
        "503 Service Unavailable, etc.).",
    # /modbus/resp/ answers the latest transaction, whatever tid was asked for
    "modbus_resp_ignores_tid":
        "Get Modbus response by tid",
    # Near misses (conformlab.near_miss): the login or the session check lets an almost-right one through.
    # the login hash is accepted over any order of login, password and salt
    "hash_any_order_accepted": LOGIN_HASH,
    # the hash over the login and the salt with an empty password logs in too (a "no password yet" fallback)
    "empty_password_hash_accepted": LOGIN_HASH,
    # the password is stored with the padding of the web form: its hash with a space appended logs in too
    "password_trailing_space_accepted": LOGIN_HASH,
    # the username is compared without regard to case
    "login_case_insensitive":
        '`POST /api/login/` with JSON `{"username": "<login>", "password": "<lowercase hex SHA1 of login + '
        'password + salt>"}` (NOTES.md)',
    # session tokens are compared over the given length: a token cut short gives level 1
    "token_prefix_accepted": SESSION_TOKEN,
    # session tokens are compared without regard to case
    "token_case_insensitive": SESSION_TOKEN,
    # a header without the scheme is taken as the token itself
    "bearer_scheme_optional": SESSION_TOKEN,
    # the scheme is not checked: the token in the Basic scheme gives level 1
    "token_scheme_unchecked": SESSION_TOKEN,
}
# fault -> the near-miss credential (conformlab.near_miss) it lets through
NEAR_MISS_FAULTS: dict[str, str] = {
    "hash_any_order_accepted": "hash-order-salt-login-password",
    "empty_password_hash_accepted": "hash-empty-password",
    "password_trailing_space_accepted": "password-trailing-space",
    "login_case_insensitive": "login-case-swapped",
    **compare.near_misses_let_through(TOKEN_FLAWS, "token", prefix="token-truncated"),
    "bearer_scheme_optional": "token-without-scheme",
    "token_scheme_unchecked": "token-in-basic-scheme",
}

# ---------------------------------------------------------------------------------------------
# Static device data

VERSION = {"device": "MC-252", "deviceId": 52, "firmwareType": "release", "firmwareVer": 46,
           "releaseDate": "2025-01-01T00:00:00"}
MAC = "00:1E:C0:52:0C:3A"

IPV4 = r"^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$"
PHONE = r"^(\+?[0-9]{5,15})?$"
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


@dataclass(frozen=True)
class Setting:
    """The type and range of one settings key (the schema's SettingsWrite says the same)."""

    kind: type  # bool, int or str
    min: int | None = None
    max: int | None = None
    choices: tuple | None = None
    min_len: int = 0
    max_len: int | None = None
    pattern: str | None = None

    def check(self, value: Any) -> Any:
        """The value to store; ValueError when it does not fit."""
        if self.kind is bool:
            if type(value) is not bool:
                raise ValueError("expected a boolean")
            return value
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value != int(value):
                raise ValueError("expected an integer")
            value = int(value)
            if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
                raise ValueError(f"must be {self.min}..{self.max}")
        elif not isinstance(value, str):
            raise ValueError("expected a string")
        elif len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            raise ValueError(f"length must be {self.min_len}..{self.max_len}")
        elif self.pattern is not None and not re.search(self.pattern, value):
            raise ValueError(f"must match {self.pattern}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(map(str, self.choices))}")
        return value


IP_SETTING = Setting(str, pattern=IPV4)
SETTINGS: dict[str, Setting] = {
    "deviceName": Setting(str, min_len=1, max_len=32),
    "ethDhcp": Setting(bool),
    "ethIp": IP_SETTING,
    "ethMask": IP_SETTING,
    "ethGateway": IP_SETTING,
    "ethDns": IP_SETTING,
    "gsmEnabled": Setting(bool),
    "gsmApn": Setting(str, max_len=63),
    "cloudEnabled": Setting(bool),
    "cloudServer": Setting(str, min_len=1, max_len=64),
    "rs485Baudrate": Setting(int, choices=BAUDRATES),
    "rs485Parity": Setting(str, choices=("none", "even", "odd")),
    "rs485StopBits": Setting(int, choices=(1, 2)),
    "modbusTimeoutMs": Setting(int, min=50, max=5000),
    "ntpEnabled": Setting(bool),
    "ntpServer": Setting(str, min_len=1, max_len=64),
    "tzOffsetMin": Setting(int, min=-720, max=840),
    "logIntervalSec": Setting(int, min=1, max=3600),
    "alarmPhone": Setting(str, max_len=16, pattern=PHONE),
}
# The controller as found in a pump station (the emulator's state at start).
DEFAULT_SETTINGS: dict[str, Any] = {
    "deviceName": "Pump station 3", "ethDhcp": False, "ethIp": "192.168.1.60", "ethMask": "255.255.255.0",
    "ethGateway": "192.168.1.1", "ethDns": "192.168.1.1", "gsmEnabled": True, "gsmApn": "internet.m2m",
    "cloudEnabled": True, "cloudServer": "overvis.com", "rs485Baudrate": 9600, "rs485Parity": "none",
    "rs485StopBits": 1, "modbusTimeoutMs": 500, "ntpEnabled": True, "ntpServer": "pool.ntp.org",
    "tzOffsetMin": 120, "logIntervalSec": 30, "alarmPhone": "+380441234567",
}
FACTORY_SETTINGS: dict[str, Any] = {
    **DEFAULT_SETTINGS, "deviceName": "MC-252", "ethDhcp": True, "ethIp": "192.168.0.252",
    "ethGateway": "192.168.0.1", "ethDns": "192.168.0.1", "gsmApn": "internet", "logIntervalSec": 60,
    "tzOffsetMin": 0, "alarmPhone": "",
}
STATE_KEYS = ("system", "ethernet", "gsm", "cloud", "rs485", "inputs", "relays", "power",
              "temperature", "card")


@dataclass(frozen=True)
class Slave:
    model: str
    registers: int  # registers 0 .. registers-1 exist
    seed: int


# The emulated RS-485 bus: unit id -> slave; every slave talks at BUS_BAUDRATE, 8N1.
BUS_BAUDRATE = 9600
BUS: dict[int, Slave] = {1: Slave("OB-215", 64, 215), 17: Slave("TH-1", 16, 17)}
TEMPLATES: dict[str, dict[str, Any]] = {
    "OB-215": {"description": "Novatek-Electro OB-215 Modbus energy meter", "baudrates": [9600, 19200, 38400],
               "idRegister": 0, "idValue": 215},
    "TH-1": {"description": "TH-1 temperature and humidity sensor", "baudrates": [9600, 19200],
             "idRegister": 0, "idValue": 17},
}


def initial_registers(slave: Slave) -> list[int]:
    """Register 0 identifies the model (the templates' idValue); the rest are plausible readings."""
    values = [slave.seed] + [(slave.seed * 131 + n * 977) % 4096 for n in range(1, slave.registers)]
    return values


CARD_TOTAL = 7_948_206_080  # an 8 GB card
CARD_USED_BY_SYSTEM = 41_943_040


def initial_card(now: float) -> tuple[set[str], dict[str, tuple[bytes, int]]]:
    """(folders, files path -> (content, mtime)) of the card as found."""
    day = 86400
    t = int(now)
    log1 = "".join(f"2025-06-01T{h:02d}:00:00,230.{h % 10},4.{h % 7},{500 + 13 * h}\n" for h in range(24))
    log2 = "".join(f"2025-06-02T{h:02d}:00:00,229.{h % 10},3.{h % 7},{480 + 11 * h}\n" for h in range(24))
    header = "time,voltage,current,power\n"
    files = {
        "/README.TXT": (b"Overvis MC-252 SD card\r\nlogs/: hourly Modbus logs\r\n", t - 90 * day),
        "/logs/2025-06-01.csv": ((header + log1).encode(), t - 2 * day),
        "/logs/2025-06-02.csv": ((header + log2).encode(), t - day),
        "/config/backup.json": (json.dumps(DEFAULT_SETTINGS, indent=1).encode(), t - 30 * day),
    }
    return {"/", "/logs", "/config"}, files


# ---------------------------------------------------------------------------------------------
# Routes: the document's two tables (reads: GET; commands: POST with a JSON object), each row with
# its access level (`access`: 0 guest, 1 power user, as the schema's x-conformlab level)


def _read(path: str, handler: str, level: int) -> Route:
    return Route("GET", path, handler, access=level)


def _command(path: str, handler: str, level: int) -> Route:
    return Route("POST", path, handler, body=JSON, access=level)


ROUTES: tuple[Route, ...] = (
    _read("/version/", "_version", 0),
    _read("/login/salt/", "_salt", 0),
    _read("/identify/", "_identify", 1),
    _read("/state/get/", "_state_get", 1),
    _read("/settings/active/get/", "_active_get", 1),
    _read("/settings/saved/get/", "_saved_get", 1),
    _read("/modbus/resp/", "_modbus_resp", 1),
    _read("/modbus/find/result/", "_find_result", 1),
    _read("/modbus/class-find/result/", "_class_find_result", 1),
    _command("/login/", "_login", 0),
    _command("/cmd/logout/", "_logout", 1),
    _command("/cmd/memory/card_eject/", "_card_eject", 1),
    _command("/cmd/time/sync/", "_time_sync", 1),
    _command("/cmd/time/set/", "_time_set", 1),
    _command("/cmd/reboot/", "_reboot", 1),
    _command("/cmd/callback/reconnect/", "_cloud_reconnect", 1),
    _command("/cmd/updates/download/", "_update_download", 1),
    _command("/cmd/updates/program/", "_update_program", 1),
    _command("/cmd/settings/reset/", "_settings_reset", 1),
    _command("/cmd/settings/import/", "_settings_import", 1),
    _command("/cmd/settings/export/", "_settings_export", 1),
    _command("/cmd/gsm/sms-test/", "_sms_test", 1),
    _command("/activation/", "_activation", 1),
    _command("/card/file/info/", "_card_info", 1),
    _command("/card/file/read/", "_card_read", 1),
    _command("/card/file/write/", "_card_write", 1),
    _command("/card/remove/", "_card_remove", 1),
    _command("/card/dir/", "_card_dir", 1),
    _command("/settings/saved/set/", "_saved_set", 1),
    _command("/modbus/req/", "_modbus_req", 1),
    _command("/modbus/find/start/", "_find_start", 1),
    _command("/modbus/find/stop/", "_find_stop", 1),
    _command("/modbus/class-find/search-meta-info/", "_class_find_meta", 1),
    _command("/modbus/class-find/start/", "_class_find_start", 1),
    _command("/modbus/class-find/stop/", "_class_find_stop", 1),
)

ERROR_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
               500: "internal_error", 503: "unavailable"}


def bad(message: str, code: str = "bad_request") -> Refused:
    return Refused(message, 400, code=code)


@dataclass
class Transaction:
    tid: int
    ready_at: float  # on the emulator clock
    answer: dict[str, Any]  # what GET /modbus/resp/ shows once ready


@dataclass
class Search:
    """A device search (find) or template search (class-find)."""

    started: float | None = None  # emulator clock; None = never started
    stopped_at: float | None = None
    template: str | None = None
    found: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (progress 0..1 it is found at, device)

    def progress(self, now: float) -> float:
        if self.started is None:
            return 0.0
        end = self.stopped_at if self.stopped_at is not None else now
        return min(1.0, max(0.0, (end - self.started) / FIND_SECONDS))

    def view(self, now: float, with_devices: bool = True) -> dict[str, Any]:
        progress = self.progress(now)
        if self.started is None:
            status = "idle"
        elif self.stopped_at is not None and progress < 1.0:
            status = "stopped"
        else:
            status = "done" if progress >= 1.0 else "running"
        answer: dict[str, Any] = {"status": status, "progress": int(progress * 100)}
        if with_devices:
            answer["devices"] = [dict(device) for at, device in self.found if at <= progress]
        return answer


# ---------------------------------------------------------------------------------------------


class OvervisMc252Emulator(DeviceEmulator):
    NAME = "overvis-mc252"
    PREFIX = "/api"
    ROUTES = ROUTES
    FAULTS = FAULTS

    def __init__(self, faults=(), auth=None, token_header: str = "both") -> None:
        super().__init__(faults, auth)
        self.credentials = {**FACTORY_AUTH, **self.auth}
        problem = self.profile.target_options["token_header"](token_header)
        if problem:
            raise ValueError(f"token_header {problem}")
        self.start_token_header = token_header
        self.reset()

    def reset(self) -> None:
        """Back to the state at start (also POST /__emulator__/reset)."""
        super().reset()  # timers (a pending restart), the clock, the counters
        self.time_shift = 0.0  # device time minus network time (cmd/time/set)
        self.time_synced = True
        self.saved = copy.deepcopy(DEFAULT_SETTINGS)
        self.active = copy.deepcopy(DEFAULT_SETTINGS)
        self.token_header = self.start_token_header
        self.vpn: list[str] = []
        self.registers = {unit: initial_registers(slave) for unit, slave in BUS.items()}
        self.dirs, self.files = initial_card(self.device_time())
        self.card_created = int(self.device_time()) - 90 * 86400  # the folders' mtime
        self.counters = {key: 0 for key in (
            "identify", "reboots", "logins", "loginFailures", "logouts", "salts", "savedWrites", "timeSyncs",
            "timeSets", "cloudReconnects", "updateDownloads", "updatePrograms", "settingsResets",
            "settingsImports", "settingsExports", "smsTests", "activations", "cardEjects", "cardWrites",
            "cardRemoves", "modbusRequests", "findStarts", "classFindStarts", "restarts")}
        self._start()

    def boot(self) -> None:
        """The device comes back from a restart (the core's `restart`)."""
        self.count("restarts")
        self._start()

    def _start(self) -> None:
        """What every start resets: RAM state. The saved settings become the active ones."""
        self.boot_at = self.now()
        self.active = copy.deepcopy(self.saved)
        self.sessions: dict[str, float] = {}  # token -> last use (emulator clock)
        self.salts: list[str] = []  # unused salts, oldest first
        self.button_until: float | None = None
        self.card_mounted = True
        self.transactions: dict[int, Transaction] = {}
        self.next_tid = 1
        self.find = Search()
        self.class_find = Search()

    def device_time(self) -> float:
        return self.wall() + self.time_shift

    # -- the pipeline's hooks: path (404/405) -> level (401) -> JSON body (400) -------------------

    def handle(self, request: Request) -> Response:
        response = super().handle(request)
        if self.fault("keepalive_broken") and not is_control(request.path):
            response.close = True  # closed after every answer, without saying so
        return response

    def resolve(self, req: Request) -> Route | None:
        if self.alternative and not req.path.endswith("/") and self.allowed_methods(req.path + "/"):
            req.path += "/"  # alternative reading: the path without its trailing slash is the same path
        return super().resolve(req)

    def not_found(self, req: Request) -> Response:
        return self.error(404, f"no such path: {req.path}")

    outside_prefix = not_found

    def method_not_allowed(self, req: Request, allowed: list[str]) -> Response:
        allow = ", ".join(allowed)
        return self.error(405, f"{req.method} is not supported here; use {allow}", {"Allow": allow})

    def read_body(self, req: Request, route: Route) -> Any:
        """A command's body: a JSON object; an empty body counts as {} (NOTES.md shows logout with {})."""
        if route.body != JSON:
            return None
        if not req.body.strip():
            return {}
        try:
            value = json_value(req.body)
        except MalformedBody as exc:
            raise bad(str(exc), "invalid_json") from None
        if not isinstance(value, dict):
            raise bad("the body must be a JSON object")
        return value

    def error(self, status: int, detail: str | None = None, headers=None, *, code: str | None = None) -> Response:
        """Every error answer: the document's envelope as application/json; the connection stays open.
        A 401 names the scheme to use (WWW-Authenticate: Bearer)."""
        if status == 401:
            headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
        if self.fault("error_bare_text"):
            return Response.text(reason_phrase(status), status, headers=headers)
        envelope = {"error": code or ERROR_CODES.get(status, "error"), "message": detail or reason_phrase(status)}
        return Response.json(envelope, status, headers)

    # -- the one place for access levels ---------------------------------------------------------

    def _session_valid(self, token: str) -> bool:
        last = self.sessions.get(token)
        if last is None:
            return False
        if self.now() - last > SESSION_TTL and not self.fault("session_never_expires"):
            del self.sessions[token]
            return False
        return True

    def _prune_sessions(self) -> None:
        for token in list(self.sessions):
            self._session_valid(token)

    def _headers_read(self) -> tuple[str, ...]:
        names = TOKEN_HEADERS if self.token_header == "both" else (self.token_header,)
        if self.fault("authorized_header_ignored"):
            names = tuple(name for name in names if name != "Authorized")
        return names

    def level(self, req: Request) -> tuple[int, bool]:
        """(access level of the request, whether it carried a token that is not a valid session)."""
        if req.client_address[0] in self.vpn and not self.fault("vpn_not_admin"):
            return 2, False
        presented = False
        for name in self._headers_read():
            value = req.headers.get(name)
            if value is None:
                continue
            presented = True
            token = compare.bearer_token(value, self)
            if token is None:
                continue
            session = self._session_of(token) if token else None
            if session is not None:
                self.sessions[session] = self.now()  # sliding: every use restarts the 60 s
                return 1, False
        if self.button_until is not None and (self.now() <= self.button_until or self.fault("button_forever")):
            return 1, False
        return 0, presented

    def _session_of(self, token: str) -> str | None:
        """The live session the presented token names, if any."""
        flaws = compare.flaws_of(self, TOKEN_FLAWS)
        for known in list(self.sessions):
            if compare.matches(token, known, flaws) and self._session_valid(known):
                return known
        return None

    def authorize(self, req: Request, route: Route) -> Response | None:
        need = route.access
        if route.path == "/version/" and self.fault("version_needs_login"):
            need = 1
        if route.path.startswith("/card/") and self.fault("card_open_to_guests"):
            need = 0
        if need == 0:
            return None
        level, bad_token = self.level(req)
        if level >= need:
            return None
        if bad_token:
            return self.error(401, "the session token is unknown, ended or lapsed; log in again", code="invalid_token")
        return self.error(401, "log in first: GET /api/login/salt/, then POST /api/login/", code="unauthorized")

    # -- login -------------------------------------------------------------------------------------

    def _version(self, req) -> Response:
        return Response.json(dict(VERSION))

    def _salt(self, req) -> Response:
        salt = secrets.token_hex(4 if self.fault("salt_short") else 20)
        self.salts = (self.salts + [salt])[-MAX_SALTS:]
        self.count("salts")
        return Response.json({"salt": salt})

    def _login(self, req) -> Response:
        username, password = req.data.get("username"), req.data.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise bad('expected {"username": "<login>", "password": "<lowercase hex SHA1>"}')
        if not re.fullmatch(r"[0-9a-f]{40}", password):
            raise bad("password: the lowercase hex SHA1 of login + password + salt (40 characters)")
        login, secret = self.credentials["login"], self.credentials["password"]
        used, unsalted = None, False
        if username == login or (self.fault("login_case_insensitive") and username.lower() == login.lower()):
            for salt in reversed(self.salts):
                if any(hmac.compare_digest(expected, password) for expected in self._hashes(login, secret, salt)):
                    used = salt
                    break
            if used is None and self.fault("any_hash_accepted") and self.salts:
                used = self.salts[0]  # the firmware only checks that a salt was handed out
            if used is None and self.fault("unsalted_hash_accepted"):
                unsalted = hmac.compare_digest(hashlib.sha1((login + secret).encode("utf-8")).hexdigest(), password)
        if used is None and not unsalted:
            self.count("loginFailures")
            raise Refused("wrong username or password hash, or the salt is unknown or used", 401, code="login_failed")
        # The alternative reading keeps a salt until it is pushed out (the document does not say a salt serves one login).
        if used is not None and not self.fault("salt_reusable") and not self.alternative:
            self.salts.remove(used)
        self._prune_sessions()
        token = secrets.token_hex(16)
        self.sessions[token] = self.now()
        self.count("logins")
        return Response.json({"authType": "Bearer", "token": token, "ttlSec": SESSION_TTL})

    def _hashes(self, login: str, secret: str, salt: str) -> list[str]:
        """The hashes that log in with this salt: SHA1(login + password + salt), and what faults add."""
        texts = [login + secret + salt]
        if self.fault("hash_any_order_accepted"):
            texts += ["".join(order) for order in itertools.permutations((login, secret, salt))]
        if self.fault("empty_password_hash_accepted"):
            texts.append(login + salt)
        if self.fault("password_trailing_space_accepted"):
            texts.append(login + secret + " " + salt)
        return [hashlib.sha1(text.encode("utf-8")).hexdigest() for text in texts]

    def _logout(self, req) -> Response:
        if not self.fault("logout_keeps_token"):
            for name in self._headers_read():
                _, _, token = (req.headers.get(name) or "").strip().partition(" ")
                for known in list(self.sessions):
                    if token.strip() and hmac.compare_digest(known.encode(), token.strip().encode()):
                        del self.sessions[known]
        self.count("logouts")
        return Response.json({})

    # -- state and settings ------------------------------------------------------------------------

    def _identify(self, req) -> Response:
        self.count("identify")  # the LEDs blink
        return Response.json({})

    def _state(self) -> dict[str, Any]:
        active, now = self.active, self.now()
        used = CARD_USED_BY_SYSTEM + sum(len(content) for content, _ in self.files.values())
        wobble = math.sin(now / 7)
        return {
            "system": {"uptimeSec": int(now - self.boot_at), "time": int(self.device_time()),
                       "timeSynced": self.time_synced, "tzOffsetMin": active["tzOffsetMin"]},
            "ethernet": {"link": True, "dhcp": active["ethDhcp"], "ip": active["ethIp"], "mask": active["ethMask"],
                         "gateway": active["ethGateway"], "dns": active["ethDns"], "mac": MAC},
            "gsm": {"enabled": active["gsmEnabled"], "simPresent": True, "registered": active["gsmEnabled"],
                    "operator": "Kyivstar" if active["gsmEnabled"] else "", "signalDbm": -71,
                    "apn": active["gsmApn"]},
            "cloud": {"enabled": active["cloudEnabled"], "connected": active["cloudEnabled"],
                      "server": active["cloudServer"], "reconnects": self.counters["cloudReconnects"]},
            "rs485": {"baudrate": active["rs485Baudrate"], "parity": active["rs485Parity"],
                      "stopBits": active["rs485StopBits"], "requests": self.counters["modbusRequests"],
                      "errors": 0},
            "inputs": {"di1": False, "di2": True},
            "relays": {"ro1": False, "ro2": False},
            "power": {"supplyVoltage": round(12.1 + 0.05 * wobble, 2), "backupBattery": True},
            "temperature": {"board": round(34.5 + 0.3 * wobble, 1)},
            "card": {"present": True, "mounted": self.card_mounted, "totalBytes": CARD_TOTAL,
                     "freeBytes": CARD_TOTAL - used},
        }

    def _state_get(self, req) -> Response:
        state = self._state()
        if self.alternative:  # other member shapes; unknown keys and values are ignored
            state["system"]["uptime"] = str(state["system"].pop("uptimeSec"))
            state["ethernet"]["link"] = "up" if state["ethernet"]["link"] else "down"
            state["gsm"]["signalDbm"] = f'{state["gsm"]["signalDbm"]} dBm'
            keys = [key for key in req.query if key in STATE_KEYS]
            return Response.json({key: state[key] for key in keys} if keys else state)
        keys = bare_keys(req.query, STATE_KEYS)
        if not keys or self.fault("state_keys_ignored"):
            return Response.json(state)
        return Response.json({key: state[key] for key in keys})

    def _settings_answer(self, req, settings) -> Response:
        keys = bare_keys(req.query, tuple(SETTINGS))
        return Response.json({key: settings[key] for key in keys or SETTINGS})

    def _active_get(self, req) -> Response:
        return self._settings_answer(req, self.active)

    def _saved_get(self, req) -> Response:
        return self._settings_answer(req, self.saved)

    def _valid_settings(self, body: dict[str, Any]) -> dict[str, Any]:
        """The whole body validated (all or nothing): unknown key or bad value -> 400."""
        changes = {}
        for key, value in body.items():
            setting = SETTINGS.get(key)
            if setting is None:
                if self.fault("invalid_setting_accepted") or self.alternative:
                    continue  # silently ignored
                raise bad(f"unknown settings key {key!r}", "unknown_key")
            try:
                changes[key] = setting.check(value)
            except ValueError as exc:
                raise bad(f"{key}: {exc}", "invalid_value") from None
        return changes

    def _saved_set(self, req) -> Response:
        changes = self._valid_settings(req.data)
        self.saved.update(changes)
        if self.fault("saved_applied_at_once"):
            self.active.update(changes)
        self.count("savedWrites")
        return Response.json({})

    def _settings_reset(self, req) -> Response:
        self.saved = copy.deepcopy(FACTORY_SETTINGS)
        self.count("settingsResets")
        self.restart(RESTART_DELAY)  # the factory settings take effect at this start
        return Response.json({})

    def _settings_import(self, req) -> Response:
        self.saved.update(self._valid_settings(req.data))
        self.count("settingsImports")
        self.restart(RESTART_DELAY)  # the imported settings take effect at this start
        return Response.json({})

    def _settings_export(self, req) -> Response:
        self.count("settingsExports")
        return Response.json(dict(self.saved))

    # -- commands ------------------------------------------------------------------------------------

    def _reboot(self, req) -> Response:
        self.count("reboots")
        self.restart(RESTART_DELAY)  # answered first; down a second later
        return Response.json({})

    def _time_sync(self, req) -> Response:
        self.time_shift, self.time_synced = 0.0, True
        self.count("timeSyncs")
        return Response.json({})

    def _time_set(self, req) -> Response:
        value = _int_in(req.data.get("time"), 946684800, 4102444800)
        if value is None:
            raise bad('expected {"time": <Unix seconds, 2000-01-01 .. 2100-01-01>}', "invalid_value")
        self.time_shift = value - self.wall()
        self.time_synced = False
        self.count("timeSets")
        return Response.json({})

    def _cloud_reconnect(self, req) -> Response:
        self.count("cloudReconnects")
        return Response.json({})

    def _update_download(self, req) -> Response:
        self.count("updateDownloads")
        return Response.json({})

    def _update_program(self, req) -> Response:
        self.count("updatePrograms")
        self.restart(RESTART_DELAY)  # flashing ends with a start of the (new) firmware
        return Response.json({})

    def _sms_test(self, req) -> Response:
        phone = req.data.get("phone", self.active["alarmPhone"])
        if not isinstance(phone, str) or not re.search(PHONE, phone):
            raise bad('phone: "+<5..15 digits>"', "invalid_value")
        if not phone:
            raise bad("no phone given and no alarmPhone set", "no_phone")
        self.count("smsTests")
        return Response.json({})

    def _activation(self, req) -> Response:
        key = req.data.get("key")
        if not isinstance(key, str) or not key.strip():
            raise bad('expected {"key": "<activation key>"}')
        self.count("activations")
        return Response.json({})

    # -- Modbus ------------------------------------------------------------------------------------

    def _modbus_req(self, req) -> Response:
        body = req.data
        unit = _int_in(body.get("unit"), 1, 247)
        func = _int_in(body.get("func"), 3, 16)
        addr = _int_in(body.get("addr"), 0, 65535)
        if unit is None or func not in (3, 4, 6, 16) or addr is None:
            raise bad('expected {"unit": 1..247, "func": 3|4|6|16, "addr": 0..65535, ...}', "invalid_value")
        values = None
        if func in (3, 4):
            count = _int_in(body.get("count", 1), 1, 125)
            if count is None:
                raise bad("count: 1..125", "invalid_value")
        else:
            most = 1 if func == 6 else 123
            raw = body.get("values")
            values = [_int_in(v, 0, 65535) for v in raw] if isinstance(raw, list) else []
            if not 1 <= len(values) <= most or None in values:
                raise bad(f"values: 1..{most} integers 0..65535", "invalid_value")
            count = len(values)
        tid = self.next_tid
        self.next_tid += 1
        self.count("modbusRequests")
        slave = BUS.get(unit)
        now = self.now()
        if slave is None:
            answer = {"tid": tid, "status": "timeout"}
            ready = now + self.active["modbusTimeoutMs"] / 1000
        elif addr + count > slave.registers:
            answer = {"tid": tid, "status": "exception", "exception": 2}  # illegal data address
            ready = now + MODBUS_SECONDS
        else:
            registers = self.registers[unit]
            if func in (6, 16):
                registers[addr:addr + count] = values
            answer = {"tid": tid, "status": "ok", "unit": unit, "func": func, "addr": addr,
                      "values": list(registers[addr:addr + count])}
            ready = now + MODBUS_SECONDS
        self.transactions[tid] = Transaction(tid, ready, answer)
        for old in sorted(self.transactions)[:-MAX_TRANSACTIONS]:
            del self.transactions[old]
        return Response.json({"tid": str(tid) if self.alternative else tid})

    def _modbus_resp(self, req) -> Response:
        raw = req.query.get("tid", [""])
        if len(raw) != 1 or not re.fullmatch(r"[0-9]{1,9}", raw[0]):
            raise bad("tid: the integer from POST /api/modbus/req/")
        transaction = self.transactions.get(int(raw[0]))
        if self.fault("modbus_resp_ignores_tid") and self.transactions:
            transaction = self.transactions[max(self.transactions)]  # the latest, whatever was asked
        if transaction is None:
            raise Refused(f"no Modbus transaction {raw[0]}", 404, code="unknown_tid")
        if self.now() < transaction.ready_at:
            return Response.json({"tid": str(transaction.tid) if self.alternative else transaction.tid, "status": "pending"})
        answer = dict(transaction.answer)
        if self.alternative:  # the tid as sent, the registers under "data"
            answer["tid"] = str(answer["tid"])
            if "values" in answer:
                answer["data"] = answer.pop("values")
        return Response.json(answer)

    def _start_search(self, template: str | None) -> Search:
        """A search over units 1..247; a slave is found when the scan passes its unit id, if the
        search tries the bus's baud rate (the device search: the active rs485Baudrate only)."""
        search = Search(started=self.now(), template=template)
        baudrates = TEMPLATES[template]["baudrates"] if template else [self.active["rs485Baudrate"]]
        if BUS_BAUDRATE in baudrates:
            for unit, slave in sorted(BUS.items()):
                if template is None or slave.model == template:
                    device = {"unit": unit, "baudrate": BUS_BAUDRATE}
                    if template:
                        device["model"] = slave.model
                    search.found.append((unit / 247, device))
        return search

    def _find_start(self, req) -> Response:
        self.find = self._start_search(None)
        self.count("findStarts")
        return Response.json({})

    def _find_stop(self, req) -> Response:
        _stop(self.find, self.now())
        return Response.json({})

    def _find_result(self, req) -> Response:
        if self.alternative:  # the devices always listed, other status words
            return Response.json(_alternative_search(self.find.view(self.now())))
        listing = bare_keys(req.query, ("list",))
        return Response.json(self.find.view(self.now(), with_devices=bool(listing)))

    def _template(self, body: dict[str, Any], required: bool) -> str | None:
        name = body.get("template")
        if name is None and not required:
            return None
        if not isinstance(name, str) or not name:
            raise bad('expected {"template": "<template name>"}')
        if name not in TEMPLATES:
            raise Refused(f"no search template {name!r}", 404, code="template_not_found")
        return name

    def _class_find_meta(self, req) -> Response:
        name = self._template(req.data, required=False)
        if name is None:
            if self.alternative:  # the templates as objects
                return Response.json({"templates": [{"name": name, "description": TEMPLATES[name]["description"]}
                                                    for name in sorted(TEMPLATES)]})
            return Response.json({"templates": sorted(TEMPLATES)})
        return Response.json({"template": name, **copy.deepcopy(TEMPLATES[name]), "units": {"from": 1, "to": 247}})

    def _class_find_start(self, req) -> Response:
        self.class_find = self._start_search(self._template(req.data, required=True))
        self.count("classFindStarts")
        return Response.json({})

    def _class_find_stop(self, req) -> Response:
        _stop(self.class_find, self.now())
        return Response.json({})

    def _class_find_result(self, req) -> Response:
        if self.alternative:  # no "template" in the answer, other status words
            return Response.json(_alternative_search(self.class_find.view(self.now())))
        return Response.json({**self.class_find.view(self.now()), "template": self.class_find.template})

    # -- SD card -----------------------------------------------------------------------------------

    def _card_path(self, body: dict[str, Any], default: str | None = None) -> str:
        if not self.card_mounted:
            raise Refused("the SD card was ejected", 503, code="card_not_mounted")
        return card_path(body.get("path", default))

    def _card_dir(self, req) -> Response:
        body = req.data
        if self.alternative and not self.card_mounted:  # an ejected card: an empty listing
            return Response.json({"path": card_path(body.get("path", "/")), "entries": []})
        path = self._card_path(body, "/")
        if path in self.files:
            raise bad(f"{path} is a file", "not_a_dir")
        if path not in self.dirs:
            raise Refused(f"no such folder: {path}", 404, code="file_not_found")
        entries = []
        for child in sorted(self.dirs | set(self.files)):
            if child != "/" and _parent(child) == path:
                entries.append(self._entry(child, name_only=True))
        return Response.json({"path": path, "entries": entries})

    def _entry(self, path: str, name_only: bool = False) -> dict[str, Any]:
        key = {"name": path.rsplit("/", 1)[-1]} if name_only else {"path": path}
        if path in self.files:
            content, mtime = self.files[path]
            return {**key, "type": "file", "size": len(content), "mtime": mtime}
        return {**key, "type": "directory" if self.alternative else "dir", "size": 0, "mtime": self.card_created}

    def _card_info(self, req) -> Response:
        path = self._card_path(req.data)
        if path not in self.files and path not in self.dirs:
            raise Refused(f"no such file or folder: {path}", 404, code="file_not_found")
        return Response.json(self._entry(path))

    def _card_read(self, req) -> Response:
        body = req.data
        path = self._card_path(body)
        offset, length = _int_in(body.get("offset", 0), 0, 2**31), _int_in(body.get("length", 4096), 1, 4096)
        if offset is None or length is None:
            raise bad("offset >= 0, length 1..4096", "invalid_value")
        if path in self.dirs:
            raise bad(f"{path} is a folder", "not_a_file")
        if path not in self.files:
            raise Refused(f"no such file: {path}", 404, code="file_not_found")
        content = self.files[path][0]
        if offset > len(content):
            raise bad(f"offset beyond the end of the file ({len(content)} bytes)", "invalid_value")
        chunk = content[offset:offset + length]
        if self.alternative:  # the chunk alone: no size, no eof
            return Response.json({"path": path, "offset": offset, "data": base64.b64encode(chunk).decode()})
        return Response.json({"path": path, "offset": offset, "size": len(content),
                              "data": base64.b64encode(chunk).decode(), "eof": offset + len(chunk) >= len(content)})

    def _card_write(self, req) -> Response:
        body = req.data
        path = self._card_path(body)
        data, append = body.get("data"), body.get("append", False)
        if not isinstance(data, str) or type(append) is not bool:
            raise bad('expected {"path": "/...", "data": "<base64>", "append": false}')
        try:
            chunk = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise bad("data: not base64", "invalid_value") from None
        if len(chunk) > 4096:
            raise bad("data: at most 4096 bytes per write", "invalid_value")
        if path in self.dirs:
            raise bad(f"{path} is a folder", "not_a_file")
        if _parent(path) not in self.dirs:
            raise Refused(f"no such folder: {_parent(path)}", 404, code="file_not_found")
        old = self.files[path][0] if append and path in self.files else b""
        self.files[path] = (old + chunk, int(self.device_time()))
        self.count("cardWrites")
        return Response.json({})

    def _card_remove(self, req) -> Response:
        path = self._card_path(req.data)
        if path == "/":
            raise bad("the root folder cannot be removed")
        if path in self.files:
            del self.files[path]
        elif path in self.dirs:
            if any(_parent(other) == path for other in self.dirs | set(self.files) if other != "/"):
                raise bad(f"{path} is not empty", "dir_not_empty")
            self.dirs.discard(path)
        else:
            raise Refused(f"no such file or folder: {path}", 404, code="file_not_found")
        self.count("cardRemoves")
        return Response.json({})

    def _card_eject(self, req) -> Response:
        self.card_mounted = False
        self.count("cardEjects")
        return Response.json({})

    # -- emulator-only controls (/__emulator__/...) ----------------------------------------------

    def device_controls(self) -> dict[tuple[str, str], Callable[[Any], Any]]:
        return {
            ("GET", "button"): lambda payload: self._button_view(),
            ("POST", "button"): self._ctl_button,
            ("GET", "vpn"): lambda payload: {"addresses": list(self.vpn)},
            ("POST", "vpn"): self._ctl_vpn,
            ("GET", "token_header"): lambda payload: {"header": self.token_header},
            ("POST", "token_header"): self._ctl_token_header,
            ("GET", "settings"): lambda payload: {"active": dict(self.active), "saved": dict(self.saved)},
            ("GET", "sessions"): lambda payload: self._sessions_view(),
            ("GET", "card"): lambda payload: {"inserted": self.card_mounted},
            ("POST", "card"): self._ctl_card,
        }

    def _button_view(self) -> dict[str, Any]:
        if self.button_until is None:
            return {"level1ForSec": 0}
        return {"level1ForSec": max(0, round(self.button_until - self.now(), 3))}

    def _ctl_button(self, payload: Any) -> dict[str, Any]:
        if payload not in (None, {}):
            raise ControlError("expected {} (one press of the front-panel button)")
        self.button_until = self.now() + BUTTON_SECONDS
        return self._button_view()

    def _ctl_vpn(self, payload: Any) -> dict[str, Any]:
        addresses = payload.get("addresses") if isinstance(payload, dict) else None
        if not isinstance(addresses, list) or not all(isinstance(a, str) and a for a in addresses):
            raise ControlError('expected {"addresses": ["127.0.0.5", ...]}')
        self.vpn = list(addresses)
        return {"addresses": list(self.vpn)}

    def _ctl_token_header(self, payload: Any) -> dict[str, Any]:
        header = payload.get("header") if isinstance(payload, dict) else None
        if header not in ("both", *TOKEN_HEADERS):
            raise ControlError('expected {"header": "Authorized" | "Authorization" | "both"}')
        self.token_header = header
        return {"header": header}

    def _sessions_view(self) -> dict[str, Any]:
        self._prune_sessions()
        return {"sessions": len(self.sessions), "salts": len(self.salts)}

    def _ctl_card(self, payload: Any) -> dict[str, Any]:
        if payload != {"inserted": True}:
            raise ControlError('expected {"inserted": true}')
        self.card_mounted = True
        return {"inserted": True}


# ---------------------------------------------------------------------------------------------
# Helpers


def bare_keys(query: dict[str, list[str]], known: tuple[str, ...]) -> list[str]:
    """The bare keys of a query (`?ethernet&gsm`), in order; 400 for a value or an unknown key."""
    for key, values in query.items():
        if any(values):
            raise bad(f"{key}: bare keys take no value")
        if key not in known:
            raise bad(f"unknown key {key!r}; known: {', '.join(known) or '(none)'}", "unknown_key")
    return list(query)


def _int_in(value: Any, low: int, high: int) -> int | None:
    """`value` as an int when it is a JSON integer (2 or 2.0, as JSON Schema counts) in low..high."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value) or not low <= value <= high:
        return None
    return int(value)


ALTERNATIVE_STATUS = {"idle": "idle", "running": "searching", "done": "finished", "stopped": "cancelled"}


def _alternative_search(view: dict[str, Any]) -> dict[str, Any]:
    """A search result in the alternative reading: other status words, devices always listed."""
    return {**view, "status": ALTERNATIVE_STATUS[view["status"]], "devices": view.get("devices", [])}


def _stop(search: Search, now: float) -> None:
    if search.started is not None and search.stopped_at is None and search.progress(now) < 1.0:
        search.stopped_at = now


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def card_path(value: Any) -> str:
    """A normalised absolute card path; 400 when malformed."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 255:
        raise bad('path: an absolute path such as "/logs/2025-06-01.csv" (at most 255 characters)', "invalid_value")
    if value == "/":
        return value
    parts = value.rstrip("/").split("/")[1:]
    for part in parts:
        if part in ("", ".", "..") or len(part) > 64 or any(ord(c) < 32 or c in '\\:*?"<>|' for c in part):
            raise bad(f"path: invalid segment {part!r}", "invalid_value")
    return "/" + "/".join(parts)
