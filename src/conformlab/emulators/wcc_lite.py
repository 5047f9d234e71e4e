"""Emulator of the Elseta WCC Lite gateway's API (wcc-lite-api.txt + the WCC Lite section of NOTES.md).

A stateful protocol gateway behind base path /api with every endpoint of the document's table:
/api/version, /api/actions, /api/syncVersion, /api/sync, /api/syslog, /api/systemInfo, /api/gsmInfo,
/api/devices, /api/device/info, /api/device/tags, /api/device/tag/value, /api/tags, /api/sysupgrade
(the three paths the copy lost are named in NOTES.md). The gateway has five configured devices:

    INV1    "INV1"            modbus rtu            PV inverter, 7 tags (the document's example device)
    MTR1    "Grid meter"      modbus tcp            meter at the grid connection, 5 tags
    RTU1    "Substation RTU"  iec 60870-5-104       remote terminal unit, 3 tags
    SCADA   "SCADA link"      iec 60870-5-104 slave 2 tags forwarded from INV1 and MTR1
                                                    (source_device_alias names the device they come from)
    MTR2    "Spare meter"     modbus rtu            disabled in the configuration: not served

Every device is polled on its own period; a tag's value is the value at the last poll, its timestamp
that poll's time in epoch milliseconds. Values follow the clock plausibly (the inverter follows the
sun of the gateway's zone, UTC+2; the grid meter sees the house load minus the inverter; energies only
grow) and are formatted like the document's example ("5.9589999999999996": %.17g of the value
rounded to the tag's resolution). Forwarded tags show their source tag's value and timestamp.
/api/devices, /api/device/info, /api/device/tags, /api/device/tag/value and /api/tags all come from
the same table (DEVICES), so they agree with each other.

Order of checks for a request under /api:
auth (401) -> route (404) -> disabled endpoint (404) -> method (405) -> multipart body -> fields (400).

- Auth: on when started with auth={"api_key": "..."} (at least 12 characters, the web UI's rule),
  off otherwise (the target has API key authorization disabled; the gateway still holds a random
  12-character key, readable through GET /__emulator__/auth). With auth on, the `apiKey` header must
  hold the key exactly; missing or wrong -> 401, application/json, body exactly
  {"error": "Unauthorized access."}. With auth off an `apiKey` header is ignored.
- Disabled endpoints: `disabled_endpoints=("/api/sysupgrade",)` at start (a target's `disabled_endpoints`) or
  POST /__emulator__/disabled. Every endpoint is enabled otherwise.

Switch on named faults (FAULTS; each one realistic firmware bug tied to the sentence it breaks) to
check that a conformance suite catches it.

Helpers for tests and suites: build_image() makes a firmware image that passes validation,
build_workbook() a configuration workbook that excel-utility reads,
disabled_endpoints_problem() checks a target's `disabled_endpoints` value. Form fields and files are
parsed by the emulator core (python-multipart).

Emulator-only controls (under /__emulator__/, JSON in and out, never authenticated; counters, reset,
advance and restart are the core's, the rest the gateway's own):
- GET  /__emulator__/             -> {"device": "wcc-lite", "faults": [...]}
- GET  /__emulator__/counters     -> {"requests", "unauthorized", "upgradesStarted", "upgradesRefused",
                                      "syncUploads", "syncRefused", "restarts"} (requests = every /api
                                      request; restarts = boots completed after an upgrade)
- POST /__emulator__/reset        -> back to the state at start (auth, disabled set, counters, syslog,
                                      devices key); the tag values keep following the clock
- GET  /__emulator__/disabled     -> {"disabled": ["/api/...", ...]}
- POST /__emulator__/disabled {"disabled": ["/api/sysupgrade"]} -> replace the set (the web UI's
                                      Services -> API switches); unknown paths -> 400
- GET  /__emulator__/auth         -> {"enabled": bool, "api_key": "..."}
- POST /__emulator__/auth {"enabled": bool, "api_key": "..."} -> switch authorization, change the
                                      key (keys optional; a key of at least 12 characters, no spaces)
- POST /__emulator__/devices_key {"key": "Devices" | "devices"} -> the key of the device list in
                                      /api/device/info and /api/devices ("devices": the older
                                      revision of the page, see below); answers {"key": ...}

Restart: a started firmware upgrade restarts the gateway through the core's restart(): one second
after the answer (the page gives no delay) every connection is dropped and the gateway is off the
network for `boot_seconds`; it boots with what survives a restart (the uci configuration: API key,
authorization switch, enabled endpoints) and loses the rest (uptime starts again, the RAM syslog of
logread is empty but for the boot lines; counters["restarts"] += 1). The emulated image changes
nothing else: the same firmware runs after the boot. /api/sync restarts only the protocol hub service:
the HTTP API stays up, so it is no device restart.

The alternative reading (`reading = "alternative"`, self.alternative) makes every silent choice below
the other way a conforming gateway may (marked "Alternative:"); the default reading is what the
suites hold the emulator to.

Readings of ambiguous passages
------------------------------
- Methods: "The API accepts data and files as POST requests": the endpoints with fields or files
  (/api/sync, /api/device/info, /api/device/tags, /api/device/tag/value, /api/sysupgrade) take
  POST; the endpoints without data take GET (HEAD too). Another method on a documented path ->
  405 with `Allow` and {"error": "Method not allowed"}.
- The 401 answer: the page gives the body; its Content-Type is application/json here.
  Alternative: the same body as text/plain (the page names no media type).
- Fields and files come only from a multipart/form-data body (RFC 7578: quoted or bare boundary,
  preamble and epilogue ignored, parts without a name ignored, the first of repeated names wins).
  Any other body (JSON, urlencoded, none) carries no fields. A multipart body that cannot be parsed
  -> 400 {"error": "Malformed multipart/form-data body"} (on /api/sysupgrade: "Failed to begin
  upgrade"). A file is the part with the documented name, with or without a filename; plain fields
  are decoded as UTF-8.
- Missing or empty device_alias / signal_alias -> 400 {"error": "Missing field <name>"}; an alias
  that is not configured (aliases are case-sensitive) -> 400 {"error": "Unknown <name>: <value>"}.
  The document says neither; aliases come from /api/devices and /api/device/tags.
  Alternative: 200 with an empty result ({"devices": []}, {"total_signals": "0", "signals": []},
  {"total_signals": "0", "signal_values": []}): nothing of a configured device, no refusal status.
- A disabled endpoint answers like a path that does not exist: 404 {"error": "Not found"}, no data.
  The document does not say what a disabled endpoint answers (NOTES.md). The auth check comes first
  ("checks if the "apiKey" header exists in the request ... If the value is correct it continues
  with the API request"), so without a key a disabled endpoint answers 401, an unknown path too.
  Alternative: 200 {"error": "API endpoint is disabled"} (no data, but a 2xx status).
- All endpoints are disabled on a new device ("All endpoints are disabled by default"); the emulated
  gateway has been set up for API use: every endpoint is enabled unless named in `disabled`.
- Errors other than the documented 401 and sysupgrade messages use {"error": "..."} with
  `Content-Type: application/json` (the 401 envelope); the connection stays open.
- /api/actions, "List of available points": the API endpoints that are enabled, with the
  document's description: {"total_actions": "13", "actions": [{"path": "/api/version",
  "description": "Version of the API"}, ...]}.
- /api/syncVersion: {"sync_version": "lite1"}, the same value as /api/version's sync_version.
- /api/devices answers in the shape of /api/device/info ({"Devices": [{"device_alias", "name",
  "protocol"}, ...]}) with every enabled device; /api/device/info is that list filtered to the alias.
  Devices disabled in the configuration are neither listed nor served.
- /api/tags: {"total_signals": "17", "signals": [...]}: the entries of every /api/device/tags answer,
  each with its device_alias added.
- /api/device/tag/value: {"total_signals": "1", "signal_values": [{"signal_name", "value",
  "timestamp", "flags"}]}; flags are "" (no quality flags set on any tag).
- `Devices` vs `devices`: the current page writes `Devices`, an older revision `devices` (NOTES.md).
  The emulator follows the current page; the control devices_key shows the older spelling. That is
  not a fault: the pages disagree, and a harness reports the disagreement.
  Alternative: the older spelling `devices`; /api/devices and /api/tags answer bare JSON lists of
  their entries (the page shows neither answer).
- /api/syslog "Prints out the syslog": text/plain, the lines of `logread` (oldest first).
- /api/sysupgrade: the image is the part named "file". No file part, an empty file or an unreadable
  body -> 400 {"message": "Failed to begin upgrade"}. A valid image is a legacy uImage: magic
  27 05 19 56, header CRC32 and data CRC32 correct, the data complete (build_image() makes one; the
  file name does not matter). Anything else -> 400 {"message": "Failed to validate image"}. A valid
  image -> 200 {"message": "Upgrade started"}; the emulated upgrade is harmless: counted, logged, the
  gateway keeps running the same firmware. The document gives the messages, not the statuses.
  Alternative: both failures answer 200 with their message, and a missing image is "Failed to
  validate image" (an empty image fails validation); the page does not say which failure that is.
- /api/sync "Returns excel-utility output": text/plain, the tool's lines. The configuration is an
  Excel workbook (.xlsx: a zip holding [Content_Types].xml and xl/workbook.xml; build_workbook()
  makes one). No file part or an empty file -> 400 {"error": "Missing file"}; a file that is not a
  workbook -> 400 {"error": "excel-utility: <name> is not an Excel workbook (.xlsx)"}. The upload is
  counted and logged; the emulator does not interpret the rows: its devices and tags stay as they are.
  Alternative: excel-utility's output as JSON {"output": "<lines>"}; a missing file or a file that is not
  a workbook answers 200 with the tool's error lines (the page says only "Returns excel-utility output").
- Timestamps: epoch milliseconds as strings (NOTES.md) wherever a key is named `timestamp`
  (tag values, /api/systemInfo); /api/systemInfo's `uptime` is in seconds.
"""

from __future__ import annotations

import html
import io
import math
import re
import secrets
import string
import struct
import time
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, Callable

from . import credentials as compare
from .core import FORM, NONE, ControlError, DeviceEmulator, MalformedBody, Part, Refused, Route, media_type, multipart_form
from .server import Request, Response
from ..firmware import version_numbers

PREFIX = "/api"
FIRMWARE = "1.8.3"
API_VERSION = {"api_version": "2", "api_patch": "1", "sync_version": "lite1"}
API_KEY_MIN = 12  # "it must be equal to or longer than 12 characters"
UNAUTHORIZED = b'{"error":"Unauthorized access."}'
LOCAL_OFFSET = 2 * 3600  # the gateway's zone (EET, UTC+2; daylight saving time is not emulated)
UIMAGE_MAGIC = 0x27051956
UPGRADE_RESTART_DELAY = 1.0  # seconds from the answer to the restart (the page gives none)
BOOT_TO_API = 35.0  # seconds from the kernel's start to the API answering (the syslog's boot lines)

VALIDATES_KEY = ("then validates its value against the one in the configuration. If the value is correct it continues "
                 "with the API request, if the apiKey is incorrect or doesn't exist it returns an error response 401")
FAULTS: dict[str, str] = {
    "missing_key_accepted":
        'When API authentication is enabled WCC Lite+ checks if the "apiKey" header exists in the request',
    "wrong_key_accepted":
        "and then validates its value against the one in the configuration.",
    "unauthorized_403":
        "if the apiKey is incorrect or doesn't exist it returns an error response 401 with the message.",
    "unauthorized_other_body":
        'it returns an error response 401 with the message. "error""Unauthorized access."',
    "auth_always_on":
        "The authorization can be enabled or disabled and the API key can be changed via the web "
        "configuration interface at Services → API.",
    "disabled_still_serves":
        "Individual API endpoints can be enabled or disabled via the web configuration interface at "
        "Services->API.",
    "numeric_value":
        "All values in answers are strings (NOTES.md)",
    "flags_null":
        '"flags": ""',
    "total_signals_number":
        '"total_signals": "7",',
    "timestamp_seconds":
        "`timestamp` is epoch milliseconds as a string. (NOTES.md)",
    "ghost_device":
        "/api/device/info Returns configured device information.",
    "ghost_tag":
        "`/api/device/tag/value`: value, timestamp and flags of one tag (keys `device_alias`, "
        "`signal_alias`) (NOTES.md)",
    "unknown_alias_empty_200":
        "List of tags of a particular configured device.",
    "missing_alias_all_devices":
        'Returns configured device information. (key name="device_alias")**',
    "signal_alias_ignored":
        "Returns tags value, name, timestamp, and flags of a particular device. "
        '(key name="device_alias", key name="signal_alias")**',
    "bad_image_started":
        'If firmware validation failed: "message": "Failed to validate image"',
    "no_file_wrong_message":
        'If failed to begin: "message": "Failed to begin upgrade"',
    "upload_reads_raw_body":
        "The API accepts data and files as POST requests encoded as ”multipart/formdata”.",
    # Near-miss keys (conformlab.near_miss): the comparison lets an almost-right one through.
    # an empty apiKey passes (the value is compared only when there is one)
    "empty_key_accepted": VALIDATES_KEY,
    # the key is compared over the given length: a key cut short passes
    "key_prefix_accepted": VALIDATES_KEY,
    # the key is compared over one character less than stored: without its last character it passes
    "key_last_char_ignored": VALIDATES_KEY,
    # the key is compared over the stored length only: with anything appended it passes
    "key_extra_ignored": VALIDATES_KEY,
    # the key is compared without regard to case
    "key_case_insensitive": VALIDATES_KEY,
    # without an apiKey header the key is read from Authorization
    "key_read_from_authorization":
        'If API authorization is enabled, you must add a header "apiKey" with the correct key.',
    # a scheme word in front of the key ("Bearer <key>") is dropped before the comparison
    "key_scheme_stripped": VALIDATES_KEY,
}
# fault -> the flaw it gives the key comparison
KEY_FLAWS = compare.comparison_faults("key")
# fault -> the near-miss credential (conformlab.near_miss) it lets through
NEAR_MISS_FAULTS: dict[str, str] = {
    **compare.near_misses_let_through(KEY_FLAWS, "key"),
    "key_read_from_authorization": "key-in-authorization-header",
    "key_scheme_stripped": "key-with-bearer-scheme",
}

# ---------------------------------------------------------------------------------------------
# The endpoints of the document's table


# (method, path below /api, handler, the document's Description column); a GET is served to HEAD too
ENDPOINTS = (
    ("GET", "/version", "_version", "Version of the API"),
    ("GET", "/actions", "_actions", "List of available points"),
    ("GET", "/syncVersion", "_sync_version", "A version of the sync service"),
    ("POST", "/sync", "_sync", "Protocol hub configuration upload"),
    ("GET", "/syslog", "_syslog", "Prints out the syslog"),
    ("GET", "/systemInfo", "_system_info", "General system info"),
    ("GET", "/gsmInfo", "_gsm_info", "GSM modem information"),
    ("GET", "/devices", "_devices", "List of configured devices"),
    ("POST", "/device/info", "_device_info", "Returns configured device information."),
    ("POST", "/device/tags", "_device_tags", "List of tags of a particular configured device."),
    ("POST", "/device/tag/value", "_tag_value", "Returns tags value, name, timestamp, and flags of a particular device."),
    ("GET", "/tags", "_tags", "List of configured tags"),
    ("POST", "/sysupgrade", "_sysupgrade", "Firmware upgrade."),
)
ROUTES = tuple(Route(verb, path, handler, FORM if method == "POST" else NONE, arg=description)
               for method, path, handler, description in ENDPOINTS
               for verb in ((method, "HEAD") if method == "GET" else (method,)))
DESCRIPTIONS = {PREFIX + path: description for _, path, _, description in ENDPOINTS}  # full path -> description
DISABLED = Route("*", "", "_disabled")  # what a disabled endpoint routes to
ABSENT = Route("*", "", "_absent")  # what an endpoint of a newer firmware routes to
# The endpoints accepting files (*) or field data (**): "requires WCC Lite firmware version 1.8 or newer".
NEEDS_1_8 = frozenset({"/api/sync", "/api/sysupgrade", "/api/device/info", "/api/device/tags", "/api/device/tag/value"})


def disabled_endpoints_problem(value: object) -> str | None:
    """What is wrong with a target's `disabled_endpoints` value (None: fine): a list of the
    documented paths with their /api prefix, e.g. ["/api/sysupgrade"]."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        return 'must be a list of endpoint paths, e.g. ["/api/sysupgrade"]'
    unknown = [v for v in value if v not in DESCRIPTIONS]
    if unknown:
        return f"not documented endpoints: {', '.join(unknown)} (known: {', '.join(DESCRIPTIONS)})"
    return None


# ---------------------------------------------------------------------------------------------
# The configured devices and their tags; values are functions of the poll time (epoch seconds)

REF_DAY = 19723  # 2024-01-01 as days since the epoch: the energy counters' reference day
SOLAR_PEAK_KW = 8.2
SUN_UP, SUN_HOURS = 6.0, 14.0  # local hours


def _local_hour(t: float) -> float:
    return ((t + LOCAL_OFFSET) % 86400) / 3600


def _sun(t: float) -> float:
    """0..1: the sun's share of the inverter's peak (a sine from 06:00 to 20:00 local time)."""
    hour = _local_hour(t)
    return math.sin(math.pi * (hour - SUN_UP) / SUN_HOURS) if SUN_UP < hour < SUN_UP + SUN_HOURS else 0.0


def inverter_kw(t: float) -> float:
    return SOLAR_PEAK_KW * _sun(t) * (0.95 + 0.05 * math.sin(t / 37))


def inverter_kwh(t: float) -> float:
    """Total yield: the sine integrated over the days since REF_DAY, plus today's part so far."""
    daily = SOLAR_PEAK_KW * SUN_HOURS / math.pi * 2
    days = math.floor((t + LOCAL_OFFSET) / 86400)
    hour = min(max(_local_hour(t) - SUN_UP, 0.0), SUN_HOURS)
    today = SOLAR_PEAK_KW * SUN_HOURS / math.pi * (1 - math.cos(math.pi * hour / SUN_HOURS))
    return round(18342.5 + (days - REF_DAY) * daily * 0.95 + today * 0.95, 6)  # no float noise at midnight


def house_kw(t: float) -> float:
    hour = _local_hour(t)
    return (0.45 + 1.1 * math.exp(-((hour - 7.5) / 1.2) ** 2) + 1.8 * math.exp(-((hour - 19.0) / 2.0) ** 2)
            + 0.25 * math.sin(t / 180) ** 2 + 0.08 * math.sin(t / 23))


def volts(t: float) -> float:
    return 230.0 + 2.4 * math.sin(t / 41) + 0.6 * math.sin(t / 7.3)


def hertz(t: float) -> float:
    return 50.0 + 0.03 * math.sin(t / 29) + 0.01 * math.sin(t / 5.1)


def _days(t: float) -> float:
    return t / 86400 - REF_DAY


@dataclass(frozen=True)
class Tag:
    alias: str
    name: str
    value: Callable[[float], float | int] | None = None  # of the poll time; None for a forwarded tag
    digits: int = 3  # resolution the value is rounded to
    source: tuple[str, str] | None = None  # (device alias, signal alias) a forwarded tag shows


@dataclass(frozen=True)
class Device:
    alias: str
    name: str
    protocol: str
    period: float  # seconds between polls
    phase: float  # seconds: where in the period the poll falls
    tags: tuple[Tag, ...]
    enabled: bool = True


DEVICES: tuple[Device, ...] = (
    Device("INV1", "INV1", "modbus rtu", 2.0, 0.137, (
        Tag("P", "Active power", inverter_kw),
        Tag("Q", "Reactive power", lambda t: 0.08 * inverter_kw(t) + 0.05 * math.sin(t / 53)),
        Tag("E", "Total yield", inverter_kwh, 1),
        Tag("UL1", "Voltage L1", volts, 1),
        Tag("IL1", "Current L1", lambda t: inverter_kw(t) * 1000 / 3 / volts(t), 2),
        Tag("F", "Frequency", hertz, 2),
        Tag("ST", "Operating state", lambda t: 2 if inverter_kw(t) > 0 else 1, 0),  # 1 standby, 2 feeding
    )),
    Device("MTR1", "Grid meter", "modbus tcp", 1.0, 0.412, (
        Tag("P", "Active power", lambda t: house_kw(t) - inverter_kw(t)),  # < 0: export
        Tag("EI", "Energy import", lambda t: 41277.8 + 11.3 * _days(t), 1),
        Tag("EE", "Energy export", lambda t: 12904.2 + 49.6 * _days(t), 1),
        Tag("U", "Voltage L1", lambda t: volts(t) + 0.7, 1),
        Tag("F", "Frequency", hertz, 2),
    )),
    Device("RTU1", "Substation RTU", "iec 60870-5-104", 10.0, 3.25, (
        Tag("CB", "Breaker Q1 position", lambda t: 2, 0),  # double point: 1 open, 2 closed
        Tag("TT", "Transformer temperature", lambda t: 41.5 + 3.0 * math.sin(t / 900), 1),
        Tag("DOOR", "Cabinet door open", lambda t: 0, 0),
    )),
    Device("SCADA", "SCADA link", "iec 60870-5-104 slave", 2.0, 0.137, (
        Tag("INV1_P", "Inverter active power", source=("INV1", "P")),
        Tag("GRID_P", "Grid active power", source=("MTR1", "P")),
    )),
    Device("MTR2", "Spare meter", "modbus rtu", 5.0, 1.0, (
        Tag("P", "Active power", lambda t: 0.0),
        Tag("EI", "Energy import", lambda t: 0.0, 1),
    ), enabled=False),
)
BY_ALIAS = {device.alias: device for device in DEVICES}


def format_value(value: float | int, digits: int) -> str:
    """The firmware's number format: %.17g of the value rounded to the tag's resolution
    (5.959 -> "5.9589999999999996", as in the document's example)."""
    if digits == 0:
        return str(int(round(value)))
    return "%.17g" % (round(value, digits) + 0.0)  # + 0.0: no "-0"


def poll_time(device: Device, now: float) -> float:
    """The time of the device's last poll (never in the future)."""
    return math.floor((now - device.phase) / device.period) * device.period + device.phase


def tag_reading(device: Device, tag: Tag, now: float) -> tuple[str, int]:
    """(value, timestamp in epoch ms) of a tag at `now`; a forwarded tag shows its source's."""
    if tag.source is not None:
        source = BY_ALIAS[tag.source[0]]
        (source_tag,) = [t for t in source.tags if t.alias == tag.source[1]]
        return tag_reading(source, source_tag, now)
    when = poll_time(device, now)
    return format_value(tag.value(when), tag.digits), int(round(when * 1000))


def tag_topics(device: Device, tag: Tag) -> dict[str, str]:
    if tag.source is not None:
        return {"source_device_alias": tag.source[0], "input_topic": f"tag/{tag.source[0]}/{tag.source[1]}/out",
                "output_topic": f"tag/{device.alias}/{tag.alias}/out"}
    return {"source_device_alias": "", "input_topic": f"tag/{device.alias}/{tag.alias}/rin",
            "output_topic": f"tag/{device.alias}/{tag.alias}/out"}


# ---------------------------------------------------------------------------------------------
# Firmware images and configuration workbooks


def build_image(payload: bytes = b"\x00" * 256, name: str = f"WCC Lite {FIRMWARE}") -> bytes:
    """A legacy uImage (64-byte header + data) that passes the emulated validation."""
    header = struct.pack(">IIIIIIIBBBB32s", UIMAGE_MAGIC, 0, int(time.time()), len(payload), 0x80000000,
                         0x80000000, zlib.crc32(payload), 5, 5, 2, 0, name.encode()[:32])  # linux, mips, kernel
    crc = zlib.crc32(header)
    return header[:4] + struct.pack(">I", crc) + header[8:] + payload


def image_is_valid(image: bytes) -> bool:
    if len(image) < 64:
        return False
    magic, header_crc, _, size = struct.unpack(">IIII", image[:16])
    data_crc = struct.unpack(">I", image[24:28])[0]
    if magic != UIMAGE_MAGIC or zlib.crc32(image[:4] + b"\0\0\0\0" + image[8:64]) != header_crc:
        return False
    data = image[64:64 + size]
    return len(data) == size and zlib.crc32(data) == data_crc


def build_workbook(sheets: tuple[str, ...] = ("Devices", "Signals")) -> bytes:
    """A minimal .xlsx (Office Open XML spreadsheet) with empty sheets of these names."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml",
                      '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
                      'package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/>'
                      '</Types>')
        entries = "".join(f'<sheet name="{html.escape(name)}" sheetId="{i}" r:id="rId{i}"/>'
                          for i, name in enumerate(sheets, 1))
        book.writestr("xl/workbook.xml",
                      '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
                      'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
                      f'relationships"><sheets>{entries}</sheets></workbook>')
        for i, _ in enumerate(sheets, 1):
            book.writestr(f"xl/worksheets/sheet{i}.xml", "<worksheet><sheetData/></worksheet>")
    return buffer.getvalue()


def workbook_sheets(data: bytes) -> list[str] | None:
    """The sheet names of an .xlsx, None if `data` is not one."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            names = set(book.namelist())
            if not {"[Content_Types].xml", "xl/workbook.xml"} <= names:
                return None
            workbook = book.read("xl/workbook.xml").decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError):
        return None
    return [html.unescape(name) for name in re.findall(r'<sheet\b[^>]*?\bname="([^"]*)"', workbook)]


def new_api_key() -> str:
    """What the firmware generates on first boot: a random 12-character key."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(API_KEY_MIN))


def _key_problem(key: object) -> str | None:
    if not isinstance(key, str) or len(key) < API_KEY_MIN or any(c.isspace() for c in key) or not key.isprintable():
        return f"the API key must be at least {API_KEY_MIN} printable characters without spaces"
    return None


# ---------------------------------------------------------------------------------------------


class WccLiteEmulator(DeviceEmulator):
    NAME = "wcc-lite"
    PREFIX = PREFIX
    ROUTES = ROUTES
    FAULTS = FAULTS
    AUTHORIZE_BEFORE_ROUTING = True  # the gateway checks the key before it looks at the path

    def __init__(self, faults=(), auth=None, disabled_endpoints=(), firmware=None) -> None:
        super().__init__(faults, auth)
        # The firmware it emulates (a target's `firmware`): before 1.8 the endpoints that take files or
        # field data are not there ("requires WCC Lite firmware version 1.8 or newer").
        self.firmware = firmware or FIRMWARE
        if not version_numbers(self.firmware):
            raise ValueError(f"firmware {self.firmware!r}: a version such as '1.8.3'")
        self.absent = frozenset() if version_numbers(self.firmware) >= (1, 8) else NEEDS_1_8
        if "api_key" in self.auth and _key_problem(self.auth["api_key"]):
            raise ValueError(f"auth 'api_key': {_key_problem(self.auth['api_key'])}")
        disabled = [disabled_endpoints] if isinstance(disabled_endpoints, str) else list(disabled_endpoints)
        problem = disabled_endpoints_problem(disabled)
        if problem:
            raise ValueError(f"disabled_endpoints: {problem}")
        self.initial_disabled = frozenset(disabled)
        self.generated_key = new_api_key()  # the first-boot key, used when started without one
        self.boot_epoch = time.time() - (3 * 86400 + 7 * 3600 + 12 * 60 + 9)
        self.upgrade_restart_delay = UPGRADE_RESTART_DELAY
        self.reset()

    def reset(self) -> None:
        """Back to the state at start (also POST /__emulator__/reset)."""
        super().reset()
        self.auth_enabled = "api_key" in self.auth
        self.api_key: str = self.auth.get("api_key", self.generated_key)
        self.disabled: set[str] = set(self.initial_disabled)
        self.devices_key_set: str | None = None  # set by the control; else the reading's spelling
        self.counters = {"requests": 0, "unauthorized": 0, "upgradesStarted": 0, "upgradesRefused": 0,
                         "syncUploads": 0, "syncRefused": 0, "restarts": 0}
        self.events: list[tuple[float, str]] = []

    @property
    def devices_key(self) -> str:
        """The key of the device list: the current page's `Devices`, the older page's `devices`
        (alternative reading, or the devices_key control)."""
        return self.devices_key_set or ("devices" if self.alternative else "Devices")

    def boot(self) -> None:
        """What a start does after the upgrade's restart: the uci configuration (API key, the
        authorization switch, the enabled endpoints) stays; uptime and the RAM syslog start again."""
        self.boot_epoch = time.time() - BOOT_TO_API  # the kernel started before the API answers again
        self.events = []
        self.count("restarts")

    # -- request pipeline (core): count -> key (401) -> route (404) -> disabled (404) -> 405 -> form fields

    def screen(self, req: Request) -> Response | None:
        self.count("requests")
        return None

    def resolve(self, req: Request) -> Route | None:
        route = super().resolve(req)
        if req.path in self.disabled and not self.fault("disabled_still_serves"):
            req.route = route = DISABLED  # whatever the method: the endpoint is not there
        elif req.path in self.absent:
            req.route = route = ABSENT  # older firmware: an unknown path, whatever the method
        return route

    def _absent(self, req: Request) -> Response:
        return self.not_found(req)

    def _disabled(self, req: Request) -> Response:
        if self.alternative:
            return Response.json({"error": "API endpoint is disabled"})
        return self.error(404)

    def method_not_allowed(self, req: Request, allowed: list[str]) -> Response:
        return self.error(405, headers={"Allow": ", ".join(allowed)})

    def read_body(self, req: Request, route: Route) -> dict[str, Part] | None:
        """The parts of a multipart POST body; {} for any other body, None for an unreadable one."""
        if route.body != FORM or not req.body or media_type(req) != "multipart/form-data":
            return {}
        try:
            return multipart_form(req.body, req.headers.get("Content-Type"))
        except MalformedBody:
            return None

    def error(self, status: int, detail: str | None = None, headers=None, *, code: str | None = None) -> Response:
        """Every error but the 401: {"error": "..."} as application/json; the connection stays open."""
        text = {404: "Not found", 405: "Method not allowed", 400: "Bad request"}.get(status, "Error")
        return Response.json({"error": detail or text}, status, headers)

    # -- auth ----------------------------------------------------------------------------------

    def authorize(self, req: Request, route: Route | None) -> Response | None:
        if self._authorized(req):
            return None
        self.count("unauthorized")
        return self._unauthorized()

    def _authorized(self, req: Request) -> bool:
        if not self.auth_enabled and not self.fault("auth_always_on"):
            return True
        given = req.headers.get("apiKey")
        if given is None and self.fault("key_read_from_authorization"):
            given = req.headers.get("Authorization")
        if given is None:
            return self.fault("missing_key_accepted")
        if self.fault("wrong_key_accepted") and given.strip():
            return True  # the header's existence is checked, its value is not
        given = given.strip()
        if self.fault("key_scheme_stripped") and " " in given:
            given = given.split(" ", 1)[1].strip()
        return compare.matches(given, self.api_key, compare.flaws_of(self, KEY_FLAWS))

    def _unauthorized(self) -> Response:
        if self.fault("unauthorized_403"):
            return Response.json({"error": "Forbidden"}, 403)
        if self.fault("unauthorized_other_body"):
            return Response.json({"error": "Unauthorized"}, 401)
        return Response(401, {"Content-Type": "text/plain" if self.alternative else "application/json"}, UNAUTHORIZED)

    # -- form fields and files -----------------------------------------------------------------

    def _fields(self, req: Request, *names: str) -> dict[str, str]:
        """The named fields; Refused if one is missing or empty."""
        parts = req.data
        if parts is None:
            raise Refused("Malformed multipart/form-data body")
        fields = {}
        for name in names:
            part = parts.get(name)
            if part is None or not part.text:
                raise Refused(f"Missing field {name}")
            fields[name] = part.text
        return fields

    def _upload(self, req: Request) -> tuple[str, bytes] | None:
        """(file name, content) of the part named "file"; None without one (or an unreadable body)."""
        if self.fault("upload_reads_raw_body"):  # the whole body is taken for the file
            return ("upload", req.body) if req.body else None
        part = (req.data or {}).get("file")
        if part is None or not part.content:
            return None
        return part.filename or "file", part.content

    # -- devices and tags ----------------------------------------------------------------------

    def _listed_devices(self) -> list[Device]:
        """What /api/devices lists: the enabled devices (all of them under fault ghost_device)."""
        return [d for d in DEVICES if d.enabled or self.fault("ghost_device")]

    def _device(self, alias: str) -> Device | None:
        device = BY_ALIAS.get(alias)
        return device if device is not None and device.enabled else None

    def _device_entry(self, device: Device) -> dict[str, str]:
        return {"device_alias": device.alias, "name": device.name, "protocol": device.protocol}

    def _tag_entry(self, device: Device, tag: Tag) -> dict[str, str]:
        return {"signal_name": tag.name, **tag_topics(device, tag), "signal_alias": tag.alias}

    def _total(self, count: int) -> str | int:
        return count if self.fault("total_signals_number") else str(count)

    def _value_entry(self, device: Device, tag: Tag, now: float) -> dict[str, Any]:
        value, stamp = tag_reading(device, tag, now)
        return {
            "signal_name": tag.name,
            "value": float(value) if self.fault("numeric_value") else value,
            "timestamp": str(stamp // 1000 if self.fault("timestamp_seconds") else stamp),
            "flags": None if self.fault("flags_null") else "",
        }

    def _known_device(self, req: Request) -> Device | None:
        """The device named by the device_alias field; None for an unknown alias under fault
        unknown_alias_empty_200 or (also for a missing one) in the alternative reading. Refused otherwise."""
        try:
            alias = self._fields(req, "device_alias")["device_alias"]
        except Refused:
            if self.alternative:
                return None
            raise
        device = self._device(alias)
        if device is None and not (self.fault("unknown_alias_empty_200") or self.alternative):
            raise Refused(f"Unknown device_alias: {alias}")
        return device

    # -- endpoints without data ----------------------------------------------------------------

    def _version(self, req) -> Response:
        return Response.json(dict(API_VERSION))

    def _sync_version(self, req) -> Response:
        return Response.json({"sync_version": API_VERSION["sync_version"]})

    def _actions(self, req) -> Response:
        actions = [{"path": path, "description": description}
                   for path, description in DESCRIPTIONS.items() if path not in self.disabled]
        return Response.json({"total_actions": str(len(actions)), "actions": actions})

    def _devices(self, req) -> Response:
        entries = [self._device_entry(d) for d in self._listed_devices()]
        return Response.json(entries if self.alternative else {self.devices_key: entries})

    def _tags(self, req) -> Response:
        signals = [{"device_alias": d.alias, **self._tag_entry(d, t)} for d in DEVICES if d.enabled for t in d.tags]
        if self.alternative:
            return Response.json(signals)
        return Response.json({"total_signals": self._total(len(signals)), "signals": signals})

    def _syslog(self, req) -> Response:
        boot = self.boot_epoch
        lines = [(boot + 0.8, "kern.notice kernel: [    0.000000] Linux version 4.14.221 (builder@elseta) #0"),
                 (boot + 9.2, "daemon.info procd: - init complete -"),
                 (boot + 14.6, "daemon.notice netifd: Interface 'lan' is now up"),
                 (boot + 21.3, "daemon.notice netifd: Interface 'wwan' is now up"),
                 (boot + 25.0, "user.info protocol-hub: configuration loaded: 4 devices, 17 signals"),
                 (boot + 26.4, "daemon.info modbus-master: INV1: connected on /dev/ttyS1 9600 8N1"),
                 (boot + 26.9, "daemon.info modbus-master: MTR1: connected to 192.168.1.81:502"),
                 (boot + 27.5, "daemon.info iec104-master: RTU1: STARTDT con from 10.20.0.14:2404"),
                 (boot + 31.0, "daemon.info iec104-slave: SCADA: listening on port 2404"),
                 (boot + 3600 * 5.5, "daemon.warn iec104-master: RTU1: T1 timeout, reconnecting"),
                 (boot + 3600 * 5.5 + 8, "daemon.info iec104-master: RTU1: STARTDT con from 10.20.0.14:2404"),
                 *self.events]
        now = time.time()  # after a restart the later lines have not happened yet
        text = "".join(f"{time.strftime('%a %b %d %H:%M:%S %Y', time.gmtime(when))} {line}\n"
                       for when, line in sorted(lines, key=lambda item: item[0]) if when <= now)
        return Response.text(text)

    def _system_info(self, req) -> Response:
        now = time.time()
        uptime = int(now - self.boot_epoch)
        return Response.json({
            "hostname": "WCC-Lite", "model": "WCC Lite", "serial_number": "WCL2207011873",
            "firmware_version": self.firmware, "kernel_version": "4.14.221", "timestamp": str(int(now * 1000)),
            "uptime": str(uptime), "load_average": f"{0.21 + 0.05 * math.sin(now / 60):.2f} 0.19 0.17",
            "memory_total": "124908", "memory_free": str(61000 + int(900 * math.sin(now / 45))),
            "storage_total": "14336", "storage_free": "9871", "lan_ip": "192.168.1.70",
            "lan_mac": "00:1E:42:3A:5C:81", "timezone": "EET-2EEST,M3.5.0/3,M10.5.0/4",
        })

    def _gsm_info(self, req) -> Response:
        now = time.time()
        rssi = -71 + int(round(3 * math.sin(now / 97)))
        return Response.json({
            "modem": "Quectel EC25-EUX", "modem_firmware": "EC25EUXGAR08A12M1G", "imei": "866758045512345",
            "imsi": "246011234567890", "iccid": "8937001123456789012", "sim_state": "ready",
            "operator": "Telia LT", "network_type": "LTE", "band": "LTE BAND 3", "signal_strength": str(rssi),
            "rsrp": str(rssi - 27), "rsrq": "-11", "sinr": "12", "connection_state": "connected",
            "ip_address": "10.144.23.17", "rx_bytes": str(48_113_204 + int(now - self.boot_epoch) * 61),
            "tx_bytes": str(17_552_911 + int(now - self.boot_epoch) * 23),
        })

    # -- endpoints with fields -----------------------------------------------------------------

    def _device_info(self, req) -> Response:
        if self.fault("missing_alias_all_devices") and not self._field_given(req, "device_alias"):
            return self._devices(req)
        device = self._known_device(req)
        return Response.json({self.devices_key: [self._device_entry(device)] if device else []})

    def _device_tags(self, req) -> Response:
        device = self._known_device(req)
        signals = [self._tag_entry(device, t) for t in device.tags] if device else []
        return Response.json({"total_signals": self._total(len(signals)), "signals": signals})

    def _tag_value(self, req) -> Response:
        try:
            fields = self._fields(req, "device_alias", "signal_alias") if not self.fault("signal_alias_ignored") \
                else self._fields(req, "device_alias")
        except Refused:
            if not self.alternative:
                raise
            return Response.json({"total_signals": self._total(0), "signal_values": []})
        device = self._known_device(req)
        tags: list[Tag] = list(device.tags) if device else []
        if not self.fault("signal_alias_ignored"):  # the one tag asked for
            tags = [t for t in tags if t.alias == fields["signal_alias"]
                    and not (t.source is not None and self.fault("ghost_tag"))]
            if not tags and device is not None and not (self.fault("unknown_alias_empty_200") or self.alternative):
                raise Refused(f"Unknown signal_alias: {fields['signal_alias']}")
        now = time.time()
        values = [self._value_entry(device, t, now) for t in tags]
        return Response.json({"total_signals": self._total(len(values)), "signal_values": values})

    def _field_given(self, req: Request, name: str) -> bool:
        try:
            self._fields(req, name)
        except Refused:
            return False
        return True

    # -- endpoints with files ------------------------------------------------------------------

    def _log(self, line: str) -> None:
        self.events.append((time.time(), line))
        del self.events[:-100]

    def _sysupgrade(self, req) -> Response:
        upload = self._upload(req)
        refused = 200 if self.alternative else 400  # the page gives the messages, not the statuses
        if upload is None:
            self.count("upgradesRefused")
            self._log("user.err sysupgrade: no image received")
            wrong = self.fault("no_file_wrong_message") or self.alternative
            message = "Failed to validate image" if wrong else "Failed to begin upgrade"
            return Response.json({"message": message}, refused)
        name, image = upload
        if not image_is_valid(image) and not self.fault("bad_image_started"):
            self.count("upgradesRefused")
            self._log(f"user.err sysupgrade: {_printable(name)}: image check failed")
            return Response.json({"message": "Failed to validate image"}, refused)
        self.count("upgradesStarted")
        self._log(f"user.notice sysupgrade: {_printable(name)}: upgrade started ({len(image)} bytes)")
        self.restart(self.upgrade_restart_delay)  # flashed: the gateway reboots after the answer
        return Response.json({"message": "Upgrade started"})

    def _sync(self, req) -> Response:
        upload = self._upload(req)
        if upload is None:
            self.count("syncRefused")
            if self.alternative:
                return self._excel_output("excel-utility: error: no configuration file given\n")
            raise Refused("Missing file")
        name, data = upload
        sheets = workbook_sheets(data)
        if sheets is None:
            self.count("syncRefused")
            self._log(f"user.err excel-utility: {_printable(name)}: not an Excel workbook")
            if self.alternative:
                return self._excel_output(f"excel-utility: error: {_printable(name)} is not an Excel workbook (.xlsx)\n")
            raise Refused(f"excel-utility: {_printable(name)} is not an Excel workbook (.xlsx)")
        self.count("syncUploads")
        self._log(f"user.notice excel-utility: {_printable(name)}: configuration generated")
        return self._excel_output(
            f"excel-utility: reading {_printable(name)} ({len(data)} bytes)\n"
            f"excel-utility: sheets: {', '.join(_printable(s) for s in sheets) or '(none)'}\n"
            "excel-utility: configuration generated: /etc/protocol_hub/configuration.json\n"
            "excel-utility: protocol hub restarted\n")  # the service, not the gateway: the API stays up

    def _excel_output(self, text: str) -> Response:
        """excel-utility's lines: text/plain; JSON {"output": ...} in the alternative reading."""
        return Response.json({"output": text}) if self.alternative else Response.text(text)

    # -- emulator-only controls (/__emulator__/...) ----------------------------------------------

    def device_controls(self) -> dict[tuple[str, str], Callable[[Any], Any]]:
        return {
            ("GET", "disabled"): lambda payload: self._disabled_view(),
            ("POST", "disabled"): self._ctl_disabled,
            ("GET", "auth"): lambda payload: self._auth_view(),
            ("POST", "auth"): self._ctl_auth,
            ("POST", "devices_key"): self._ctl_devices_key,
        }

    def _disabled_view(self) -> dict[str, Any]:
        return {"disabled": [path for path in DESCRIPTIONS if path in self.disabled]}

    def _ctl_disabled(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or set(payload) != {"disabled"}:
            raise ControlError('expected {"disabled": ["/api/...", ...]}')
        problem = disabled_endpoints_problem(payload["disabled"])
        if problem:
            raise ControlError(f"disabled: {problem}")
        self.disabled = set(payload["disabled"])
        return self._disabled_view()

    def _auth_view(self) -> dict[str, Any]:
        return {"enabled": self.auth_enabled, "api_key": self.api_key}

    def _ctl_auth(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or not payload or not set(payload) <= {"enabled", "api_key"}:
            raise ControlError('expected {"enabled": bool, "api_key": "..."} (keys optional)')
        if "enabled" in payload and type(payload["enabled"]) is not bool:
            raise ControlError("enabled: a boolean")
        if "api_key" in payload and _key_problem(payload["api_key"]):
            raise ControlError(f"api_key: {_key_problem(payload['api_key'])}")
        self.auth_enabled = payload.get("enabled", self.auth_enabled)
        self.api_key = payload.get("api_key", self.api_key)
        return self._auth_view()

    def _ctl_devices_key(self, payload: Any) -> dict[str, Any]:
        if payload not in ({"key": "Devices"}, {"key": "devices"}):
            raise ControlError('expected {"key": "Devices"} or {"key": "devices"}')
        self.devices_key_set = payload["key"]
        return {"key": self.devices_key}


def _printable(text: str) -> str:
    """A client-given name as it may appear in a log line or an answer."""
    return "".join(c if c.isprintable() else "?" for c in text)[:100]
