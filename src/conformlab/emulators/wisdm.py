"""Emulator of the RAKwireless WisDM cloud API (wisdm-api.txt + the WisDM part of NOTES.md).

A multi-tenant cloud behind base path /v4 with every endpoint of the document: version, organization,
locations (list, create), gateways by location (list, register, status and battery pages), and per
gateway: status, performance metrics, battery (get, monitoring switch), asynchronous commands (send,
poll), reboot, password, firmware upgrade, network priority / LAN / WAN (get, set), syslog settings
(get, set) and syslog download URLs.

Keys (the targets file's form, conformlab.scoped_keys): `auth={"keys": [{name, key, access,
permissions, [locations], [expired]}, ...]}`. Keys named in `other_organization` belong to the second
organization (B), all others to the first (A); a name there that is no key is a ValueError. Started
without auth (`conformlab emulate wisdm`) the emulator makes its own key set with random key values:
reader (read), ops (write, WRITE_REBOOT_GATEWAY), admin (write, all eight permissions), partner (org B,
write, all eight), factory-a (read, restricted to Factory A) and lapsed (expired); GET
/__emulator__/keys shows them (nothing is printed).

Order of checks for a request under /v4 (the emulator core's pipeline):
route (404; known path, other method: 405 with Allow) -> key (missing, unknown or expired: 403
{"code":403,"message":"Action is not allowed"}) -> grant (403) -> JSON body (400) -> the handler:
path objects (404) -> fields (400) -> state rules (406, 409, 500).

Grants: a read key holds {"read"}; a write key {"read", "write", <its permissions>}. Every GET needs
read; POST .../async-cmd read and write ("Requires Read and Write permission"); every other POST write
and the permission the document names for it.

The data (fixed ids; GET /__emulator__/fixtures lists what a suite cannot learn through the API):

    Org A 3b0f6f1e-5c7a-4d2b-9a61-0c7e2f4a9d10 "Conformlab Test Org A"
      Factory A    4fed110b-461b-4815-8bfc-4866b3b74c27  Basics station, TLS Server Authentication
                   14 gateways: 8 ONLINE, 3 OFFLINE, 3 PROVISIONING (pageSize 5: 3 pages)
      Factory B    58bbb735-dbdc-4787-9c8e-b9cacf098d80  Basics station, TLS Server and Client Authentication
                   3 gateways: 2 ONLINE, 1 OFFLINE
      Warehouse C  a3d1c6e2-7b4f-4e8a-9c15-2f6b8d0e4a71  Basics station, TLS Server Authentication and
                   Client Token Authentication; 3 gateways: 2 ONLINE, 1 PROVISIONING
      Legacy Site  c7e5a9b3-1d2f-4c6e-8a40-9b3d5f7e1c28  Packet forwarder (not Basics Station)
                   2 gateways: 1 ONLINE, 1 OFFLINE
      unassigned   3 pre-provisioned, 1 not factory-provisioned
    Org B 9d2c4e8a-1f3b-4a6c-8e5d-7b1a0c3f2e64 "Conformlab Partner Org B"
      Partner Depot e2b8d4f6-3a1c-4e7b-b9d2-6c0a8e4f1b35 (Basics station, TLS Server Authentication)
                   3 gateways: 2 ONLINE, 1 OFFLINE
      unassigned   1 pre-provisioned

Every gateway has a full status (system, gps, network lan/wan with the Wi-Fi key and the SIM's
imsi/iccid/imei on cellular models, lora, storage), a solar battery, LAN, WAN (one with an APN user,
password and SIM pin), network priority and syslog settings; settings written are read back, and the
status follows them (LAN Wi-Fi, WAN enabled flags, interface priorities, the active interface). Values
follow the device's wall clock (`wall()`): uptimes grow, LoRa counters grow, the battery charges by
day. An OFFLINE gateway answers its cached state from before its last dying gasp. A gateway
registered through the API is PROVISIONING for 30 s of device clock (`now()`), then ONLINE;
unassigned gateways are PROVISIONING.

Readings of what the document leaves open (default reading; the alternative reading, `reading =
"alternative"`, makes the choices marked "Alternative:" the other way a conforming cloud may):
- Error body: {"code": <status>, "message": "<text>"}, application/json; 403 "Action is not allowed",
  404 "Resource Not Found" (the id is never echoed), 400 "Invalid parameters: <what>" (never a value).
  Alternative: the message alone as text/plain.
- A missing, unknown or expired key: 403. Alternative: 401 with `WWW-Authenticate`.
- Another organization's organization id, location, gateway or command answers exactly like a
  nonexistent one (404); so does, for a location-restricted key, a location outside its list and the
  gateways there (listings show only its locations).
- Pagination (status and battery listings): query `pageSize` 1..100 (default 100; else 400) and
  `nextToken` (the previous answer's token). Token: base64 of {"page": n} (the page's
  "eyJwYWdlIjoyfQ=="); a malformed or unknown token: 400. totalPages = ceil(gateways / pageSize) (0 for
  a location without gateways); the last page has no nextToken. Order: by sn.
  Alternative: order of registration; tokens opaque: unpadded base64url of {"location", "page"}
  (a token of another location: 400).
- POST locations answers 201. Alternative: 200 (the page gives no status for it; registration keeps
  its documented 201).
- Location creation: name 4..50 characters; workMode optional, only "Basics station"; basicStation
  required with serverType, serverURL (http/https/ws/wss URL), serverPort 1..65535, authenticationMode;
  clientCertificate + clientKey ("required for shared TLS client auth") or token required by the mode
  unless useIndividualKeys; channelsNumber 8 or 16 (default 8); an existing name of the organization
  (compared without case): 409.
- Registration: unknown location 404; sn of another organization or unknown 404; a gateway already
  in a location 400; eui not the gateway's 400; location not Basics Station 406; gateway not
  factory-provisioned 406; bsClientCertificate + bsClientKey (TLS Server and Client Authentication)
  or bsToken (token mode) missing while bsHasLocalAuthSuite is false (or absent): 400.
- Async commands: POST answers 200 {"commandId": <integer>} (the page's example). Alternative: the id
  as a string. Supported: "netstat" (args: -a -l -t -u -n -p), pipes of grep/head/tail/wc/sort;
  timeout 1..3600 (default 60). GET answers {"sn", "commandId": "<string>", "status", "result"}:
  PENDING for 1 s of device clock, then SUCCESS with the output, or FAILED ("gateway offline") on an
  OFFLINE gateway. Ids "1760413840" and "cmd-1760413840" are accepted, other forms 400; unknown, of
  another gateway, or 1 hour of device clock after completion: 404.
- Reboot of an OFFLINE gateway: 500. Password {"password": non-empty} (unknown sn: 404), upgrade
  {"version": "d.d.d"}, battery {"enabled": bool}: 204.
- Priority: one of the six orders of ETH, CELLULAR, WIFI joined by "_". LAN: {"wifi": {...}} merged
  onto the current settings ("sn" ignored); ssid 1..32, encryption NONE|WPA-PSK|WPA2-PSK|
  WPA-WPA2-PSK-MIXED, key 8..63 when the encryption is not NONE, channel "Auto" or "<n>MHz"; a body
  with "ethernet": 400 and nothing changes. WAN: each interface object given replaces that interface;
  protocol dhcp|static|pppoe (wifi: dhcp|static), staticAddress for static, pppoe for pppoe. Syslog:
  shareLogs none|external|wisdm|externalAndWisdm; externalLogServer {ip IPv4, port 1..65535} required
  when shareLogs includes external, checked whenever given; cycles positive integers; fields merged.
- Syslog download: one file a day (logs/<sn>/<day>/syslog.txt.gz), retained wisdmLogsRotationCycle
  days, newest first; startDate/endDate ISO-8601 UTC (default: the last 7 days); maxFiles 1..200
  (default 20); totalFiles counts all matching. URLs: https://example.invalid/... with a signature.
- Perf: metric rssi|snr|uplink|downlink; interval "<n>h" (1..720) or "<n>d" (1..30), default "24h";
  10-minute points up to 24 h, hourly beyond; 100 points a page with `nextToken` (query), `clientToken`
  always. Alternative: no interval is 400.
- gzip: with Accept-Encoding: gzip every answer with a body is gzip-compressed; `Vary:
  Accept-Encoding` always. Alternative: only answers of at least 1024 bytes are compressed.
- Battery `voltage`: decimals like the page's examples (NOTES.md: the table says integer).
  Alternative: whole volts.
- Unknown paths 404; a known path with another method 405 with Allow.

Switch on named faults (FAULTS; each one a realistic cloud bug tied to the sentence it breaks) to check
that a conformance suite catches it.

Emulator-only controls (under /__emulator__/, JSON in and out, never authenticated):
- GET  /__emulator__/             -> {"device": "wisdm", "faults": [...]}
- GET  /__emulator__/counters     -> {"reboots", "passwordResets", "upgrades", "batteryMonitoring",
                                      "locationsCreated", "gatewaysRegistered", "commands", "settingsWritten"}
- POST /__emulator__/reset        -> everything back to the state at start (also the device clock)
- POST /__emulator__/advance {"seconds": N} -> move the device clock: commands complete and expire on it
- POST /__emulator__/restart      -> the core's restart (the cloud is off the network for boot_seconds)
- GET  /__emulator__/fixtures     -> {"organizations": [{"id", "name"}], "locations": [{"id",
                                      "organizationId", "name", "workMode", "authenticationMode"}],
                                      "unassigned": [{"sn", "eui", "organizationId", "provisioned"}]}
- GET  /__emulator__/keys         -> [{"name", "access", "permissions", "organizationId", "locations",
                                      "expired"}] (+ "key" for the emulator's own default key set)
"""

from __future__ import annotations

import base64
import binascii
import calendar
import gzip
import hashlib
import hmac
import ipaddress
import itertools
import json
import math
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from conformlab import scoped_keys
from conformlab.scoped_keys import PERMISSIONS, ScopedKey

from . import credentials as compare
from .core import JSON, NONE, DeviceEmulator, Refused, Route
from .server import Request, Response, reason_phrase

PREFIX = "/v4"
VERSION = {"version": "v4.0.3", "commitId": "5e9d1c7"}
KEY_HEADER = "X-API-KEY"

ORG_A = "3b0f6f1e-5c7a-4d2b-9a61-0c7e2f4a9d10"
ORG_B = "9d2c4e8a-1f3b-4a6c-8e5d-7b1a0c3f2e64"
ORGANIZATIONS = {ORG_A: "Conformlab Test Org A", ORG_B: "Conformlab Partner Org B"}
FACTORY_A = "4fed110b-461b-4815-8bfc-4866b3b74c27"
FACTORY_B = "58bbb735-dbdc-4787-9c8e-b9cacf098d80"
WAREHOUSE_C = "a3d1c6e2-7b4f-4e8a-9c15-2f6b8d0e4a71"
LEGACY_SITE = "c7e5a9b3-1d2f-4c6e-8a40-9b3d5f7e1c28"
PARTNER_DEPOT = "e2b8d4f6-3a1c-4e7b-b9d2-6c0a8e4f1b35"

BASICS_STATION = "Basics station"
PACKET_FORWARDER = "Packet forwarder"
TLS_SERVER = "TLS Server Authentication"
TLS_CLIENT = "TLS Server and Client Authentication"
TLS_TOKEN = "TLS Server Authentication and Client Token Authentication"
AUTH_MODES = ("None", TLS_SERVER, TLS_CLIENT, TLS_TOKEN)
SERVER_TYPES = ("CUPS-BOOT", "CUPS", "LNS")
REGIONS = ("EU868", "US915", "AU915", "AS923", "AS923-1", "AS923-2", "AS923-3", "AS923-4", "KR920", "IN865",
           "RU864", "CN470", "EU433", "CN779")
STATUSES = ("ONLINE", "OFFLINE", "PROVISIONING")
INTERFACES = ("ETH", "CELLULAR", "WIFI")
PRIORITIES = tuple("_".join(order) for order in itertools.permutations(INTERFACES))
ENCRYPTIONS = ("NONE", "WPA-PSK", "WPA2-PSK", "WPA-WPA2-PSK-MIXED")
SHARE_LOGS = ("none", "external", "wisdm", "externalAndWisdm")
METRICS = ("rssi", "snr", "uplink", "downlink")
SUPPORTED_COMMANDS = ("netstat",)
PIPE_COMMANDS = ("grep", "head", "tail", "wc", "sort")

PAGE_SIZE_MAX = 100
PERF_PAGE = 100  # points a perf page holds
COMMAND_RUN_SECONDS = 1.0  # PENDING this long on the device clock
COMMAND_KEPT_SECONDS = 3600.0  # a result expires this long after completion
PROVISION_SECONDS = 30.0  # a registered gateway is PROVISIONING this long
URL_SECONDS = 3600  # a pre-signed download URL's lifetime
LOCAL_OFFSET = 2 * 3600  # the sites' zone (Sofia, UTC+2; daylight saving time is not emulated)
GZIP_MIN_ALTERNATIVE = 1024

MESSAGES = {400: "Invalid parameters", 401: "Unauthorized", 403: "Action is not allowed", 404: "Resource Not Found",
            405: "Method Not Allowed", 406: "Not Acceptable", 409: "Location already exists",
            500: "Internal Server Error"}
COUNTERS = ("reboots", "passwordResets", "upgrades", "batteryMonitoring", "locationsCreated", "gatewaysRegistered",
            "commands", "settingsWritten")

VALID_KEY = "Every request requires a valid API key for authentication."
OWN_ORGANIZATION = "Each key belongs to one Organization and cannot access others."
ALL_GATEWAYS = ("Retrieves the operational status of all gateways under a specific Location, with pagination "
                "support for large deployments.")
FAULTS: dict[str, str] = {
    # scopes
    "read_key_can_write": "Read only: Grants access to GET methods (for data retrieval only).",
    "permission_unchecked": "You must explicitly select the write permissions required for your integration.",
    "expired_key_accepted": "Choose a validity period. The key will automatically expire after this period.",
    # near-miss keys (conformlab.near_miss): the comparison lets an almost-right one through
    "empty_key_accepted": VALID_KEY,  # an empty X-API-KEY passes (compared only when there is a value)
    "key_prefix_accepted": VALID_KEY,  # compared over the given length: a key cut short passes
    "key_last_char_ignored": VALID_KEY,  # compared over one character less than stored
    "key_extra_ignored": VALID_KEY,  # compared over the stored length only: anything appended passes
    "key_case_insensitive": VALID_KEY,  # compared without regard to case
    # without an X-API-KEY header the key is read from Authorization
    "key_read_from_authorization": "X-API-KEY: Identifies your organization and permission scope.",
    # a scheme word in front of the key ("Bearer <key>") is dropped before the comparison
    "key_scheme_stripped": "X-API-KEY: <Your_API_Key>",
    # isolation
    "other_organization_locations_listed": OWN_ORGANIZATION,  # the listing checks only that the org exists
    "other_organization_location_served": OWN_ORGANIZATION,  # location endpoints skip the ownership check
    "other_organization_gateway_served": OWN_ORGANIZATION,  # gateways are looked up by sn alone
    "existence_leaked_403": OWN_ORGANIZATION,  # another org's object: 403, a nonexistent one: 404
    "location_restriction_ignored": "Optionally limit API use to one or more locations.",
    "total_mismatch": "| total | integer | Total number of locations |",  # counts every organization's
    # pagination
    "page_larger_than_page_size": "| pageSize | integer | Number of results per page |",
    "pages_overlap": ALL_GATEWAYS,  # a page starts with the last gateway of the page before
    "pages_skip_one": ALL_GATEWAYS,  # a page starts one gateway after the page before ended
    "total_pages_off_by_one": "| totalPages | integer | Total number of available pages |",  # the last index
    "next_token_on_last_page": "This field is omitted if there are no additional pages to fetch.",
    "malformed_token_first_page": "Pagination token for the next page",
    # validation
    "location_name_length_unchecked":
        "Human-friendly location name displayed in WisDM UI (min 4, max 50 characters)",
    "channels_number_unchecked": "Number of channels supported (8 or 16). Default: 8",
    "server_port_unchecked": "TCP port (1–65535)",
    "duplicate_location_201": "| 409 | Location already exists or conflicting configuration |",
    "non_basics_station_registration_accepted": "The target Location operates in Basics Station mode.",
    "unprovisioned_gateway_registered": "If factory provisioning is incomplete, registration will fail.",
    "tls_fields_not_required": "Required when bsHasLocalAuthSuite is false and location uses TLS Server and "
                               "Client Authentication mode.",
    "max_files_unchecked": "Maximum number of files to return (1–200, default 20)",
    "more_files_than_max_files": "Maximum number of files to return (1–200, default 20)",
    "wifi_key_length_unchecked": "Wi-Fi password (8-63 characters, alphanumeric and special symbols)",
    "ethernet_lan_change_applied": "Ethernet LAN configuration changes are restricted to prevent accidental "
                                   "disconnection from WisDM.",
    # async lifecycle
    "command_stays_pending": "This endpoint allows you to confirm whether the command has completed successfully "
                             "and to view its console output.",
    "unknown_command_200": "| 404 | CommandId does not exist or has expired |",
    # status codes
    "created_as_200": "Upon success, WisDM establishes a binding between the gateway and the location, returning "
                      "a 201 Created response.",
    "no_content_as_200": "204 No Content",
    "unknown_gateway_200": "| 404 | Gateway Not Found |",  # the lookup's null answered as an empty object
    "unknown_gateway_500": "| 404 | Gateway Not Found |",  # the cloud asks a gateway that is not there
    # transport
    "gzip_ignored": "Accept-Encoding: gzip: Enables compressed responses for better efficiency.",
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
# Routes (paths below /v4); access: the grants the route needs (x-conformlab.access of the schema)

READ = ("read",)


def _write(permission: str) -> tuple[str, str]:
    return ("write", permission)


ROUTES = (
    Route("GET", "/version", "get_version", access=READ),
    Route("GET", "/organization", "get_organization", access=READ),
    Route("GET", "/organization/{organizationId}/locations", "list_locations", access=READ),
    Route("POST", "/organization/{organizationId}/locations", "create_location", JSON,
          access=_write("WRITE_ADD_LOCATION_TO_ORGANIZATION")),
    Route("GET", "/location/{locationId}/gateways", "list_gateways", access=READ),
    Route("POST", "/location/{locationId}/gateways", "register_gateway", JSON,
          access=_write("WRITE_ADD_GATEWAY_TO_LOCATION")),
    Route("GET", "/location/{locationId}/gateways/status", "location_status", access=READ),
    Route("GET", "/location/{locationId}/gateways/battery", "location_battery", access=READ),
    Route("GET", "/gateway/{sn}/status", "gateway_status", access=READ),
    Route("GET", "/gateway/{sn}/perf/{metric}", "gateway_perf", access=READ),
    Route("GET", "/gateway/{sn}/battery", "gateway_battery", access=READ),
    Route("POST", "/gateway/{sn}/battery", "set_battery_monitoring", JSON,
          access=_write("WRITE_ENABLE_BATTERY_MONITORING")),
    Route("POST", "/gateway/{sn}/async-cmd", "send_command", JSON, access=("read", "write")),
    Route("GET", "/gateway/{sn}/async-cmd/{commandId}", "command_result", access=READ),
    Route("POST", "/gateway/{sn}/reboot", "reboot", NONE, access=_write("WRITE_REBOOT_GATEWAY")),
    Route("POST", "/gateway/{sn}/password", "reset_password", JSON, access=_write("WRITE_RESET_PASSWORD")),
    Route("POST", "/gateway/{sn}/upgrade", "upgrade", JSON, access=_write("WRITE_UPGRADE_FIRMWARE")),
    Route("GET", "/gateway/{sn}/network/priority", "get_priority", access=READ),
    Route("POST", "/gateway/{sn}/network/priority", "set_priority", JSON,
          access=_write("WRITE_EDIT_NETWORK_INTERFACE")),
    Route("GET", "/gateway/{sn}/network/lan", "get_lan", access=READ),
    Route("POST", "/gateway/{sn}/network/lan", "set_lan", JSON, access=_write("WRITE_EDIT_NETWORK_INTERFACE")),
    Route("GET", "/gateway/{sn}/network/wan", "get_wan", access=READ),
    Route("POST", "/gateway/{sn}/network/wan", "set_wan", JSON, access=_write("WRITE_EDIT_NETWORK_INTERFACE")),
    Route("GET", "/gateway/{sn}/syslog", "get_syslog", access=READ),
    Route("POST", "/gateway/{sn}/syslog", "set_syslog", JSON, access=_write("WRITE_EDIT_SYSTEM_SETTINGS")),
    Route("GET", "/gateway/{sn}/syslog/download", "syslog_download", access=READ),
)

# ---------------------------------------------------------------------------------------------
# The fleet


@dataclass(frozen=True)
class Model:
    code: str  # two characters of the serial number
    cellular: bool
    gps: bool
    outdoor: bool  # an outdoor gateway on a mast: backhaul by cellular, Ethernet not linked


MODELS = {
    "RAK7268V2": Model("M4", cellular=False, gps=False, outdoor=False),
    "RAK7268CV2": Model("RN", cellular=True, gps=False, outdoor=False),
    "RAK7289V2": Model("RB", cellular=False, gps=True, outdoor=True),
    "RAK7289CV2": Model("RC", cellular=True, gps=True, outdoor=True),
    "RAK7267": Model("QL", cellular=True, gps=True, outdoor=False),
    "RAK7240V2": Model("S6", cellular=False, gps=True, outdoor=True),
}


@dataclass(frozen=True)
class LocationSpec:
    id: str
    organization: str
    name: str
    work_mode: str
    auth_mode: str
    city: str
    country: str
    latitude: float
    longitude: float
    subnet: int  # the site's 10.0.<subnet>.0/24


LOCATIONS = (
    LocationSpec(FACTORY_A, ORG_A, "Factory A", BASICS_STATION, TLS_SERVER, "Sofia", "Bulgaria", 42.6977, 23.3219, 10),
    LocationSpec(FACTORY_B, ORG_A, "Factory B", BASICS_STATION, TLS_CLIENT, "Plovdiv", "Bulgaria", 42.1354, 24.7453,
                 20),
    LocationSpec(WAREHOUSE_C, ORG_A, "Warehouse C", BASICS_STATION, TLS_TOKEN, "Varna", "Bulgaria", 43.2141, 27.9147,
                 30),
    LocationSpec(LEGACY_SITE, ORG_A, "Legacy Site", PACKET_FORWARDER, "None", "Ruse", "Bulgaria", 43.8356, 25.9657, 40),
    LocationSpec(PARTNER_DEPOT, ORG_B, "Partner Depot", BASICS_STATION, TLS_SERVER, "Bucharest", "Romania", 44.4268,
                 26.1025, 50),
)

# (model, serial, location id or the organization of an unassigned gateway, status, provisioned);
# listed in registration order (the alternative reading's listing order), which is not the sn order.
FLEET = (
    ("RAK7268V2", 20602001, FACTORY_A, "ONLINE"),
    ("RAK7268V2", 20602002, FACTORY_A, "ONLINE"),
    ("RAK7268V2", 20602003, FACTORY_A, "OFFLINE"),
    ("RAK7268CV2", 40814001, FACTORY_A, "ONLINE"),
    ("RAK7268CV2", 40814002, FACTORY_A, "PROVISIONING"),
    ("RAK7289CV2", 50800000, FACTORY_A, "ONLINE"),
    ("RAK7289CV2", 50800001, FACTORY_A, "ONLINE"),
    ("RAK7289CV2", 50800002, FACTORY_A, "OFFLINE"),
    ("RAK7289V2", 50900011, FACTORY_A, "ONLINE"),
    ("RAK7289V2", 50900012, FACTORY_A, "PROVISIONING"),
    ("RAK7267", 41021001, FACTORY_A, "ONLINE"),
    ("RAK7240V2", 41224001, FACTORY_A, "OFFLINE"),
    ("RAK7240V2", 41224002, FACTORY_A, "ONLINE"),
    ("RAK7268V2", 20602004, FACTORY_A, "PROVISIONING"),
    ("RAK7289CV2", 51100021, FACTORY_B, "ONLINE"),
    ("RAK7268V2", 21100031, FACTORY_B, "ONLINE"),
    ("RAK7268CV2", 41100041, FACTORY_B, "OFFLINE"),
    ("RAK7268CV2", 41200051, WAREHOUSE_C, "ONLINE"),
    ("RAK7289V2", 51200061, WAREHOUSE_C, "ONLINE"),
    ("RAK7268V2", 21200071, WAREHOUSE_C, "PROVISIONING"),
    ("RAK7268V2", 19900081, LEGACY_SITE, "ONLINE"),
    ("RAK7240V2", 39900091, LEGACY_SITE, "OFFLINE"),
    ("RAK7268V2", 22300101, PARTNER_DEPOT, "ONLINE"),
    ("RAK7289CV2", 52300111, PARTNER_DEPOT, "ONLINE"),
    ("RAK7268CV2", 42300121, PARTNER_DEPOT, "OFFLINE"),
)
# (model, serial, organization, factory-provisioned): gateways in no location yet
UNASSIGNED = (
    ("RAK7268V2", 22500131, ORG_A, True),
    ("RAK7268CV2", 42500141, ORG_A, True),
    ("RAK7289CV2", 52500151, ORG_A, True),
    ("RAK7268V2", 22500161, ORG_A, False),
    ("RAK7268V2", 22600171, ORG_B, True),
)
# The one gateway whose cellular WAN has an APN user, password and SIM pin.
APN_WITH_PASSWORD = "918100RN6040814001"


def serial_number(model: str, serial: int) -> str:
    """18 characters like the page's "918100M46020602001"."""
    return f"918100{MODELS[model].code}60{serial:08d}"


def _hash(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def _unit(*parts: Any) -> float:
    """A deterministic number in [0, 1) for these parts."""
    return _hash(*parts) / 2 ** 64


def _digits(count: int, *parts: Any) -> str:
    return str(_hash(*parts) % 10 ** count).zfill(count)


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


ISO_UTC = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?(?:Z|\+00:?00)")


def parse_iso(text: str) -> float | None:
    """Epoch seconds of an ISO-8601 UTC timestamp ("2025-12-01T00:00:00Z"), None if it is not one."""
    match = ISO_UTC.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1] and hour < 24 and minute < 60
            and second < 60):
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second)))


@dataclass
class Location:
    id: str
    organization: str
    name: str
    work_mode: str
    auth_mode: str
    order: int
    settings: dict[str, Any] = field(default_factory=dict)  # address, basicStation, frequencies, ...
    subnet: int = 60


@dataclass
class Gateway:
    sn: str
    model: str
    organization: str
    location: str | None
    provisioned: bool
    base_status: str  # ONLINE or OFFLINE once deployed
    order: int
    name: str
    eui: str
    mac: str
    first_seen: float  # wall clock: deployed (logs and metrics start here)
    booted: float  # wall clock of the last boot
    last_seen: float | None  # wall clock of the last report (OFFLINE gateways)
    dying_gasp: float | None
    registered_at: float | None = None  # device clock (now()) of an API registration
    lan: dict[str, Any] = field(default_factory=dict)
    wan: dict[str, Any] = field(default_factory=dict)
    priority: str = "ETH_CELLULAR_WIFI"
    syslog: dict[str, Any] = field(default_factory=dict)
    battery_monitoring: bool = True
    firmware: str = "2.2.14"
    sim: dict[str, Any] = field(default_factory=dict)
    site: int = 60
    host: int = 10
    coordinates: tuple[float, float] = (0.0, 0.0)

    @property
    def spec(self) -> Model:
        return MODELS[self.model]


@dataclass
class Command:
    id: int
    sn: str
    organization: str
    created: float  # device clock
    command: str
    args: str
    pipes: list[dict[str, str]]
    offline: bool


def _tracking(target: str) -> dict[str, Any]:
    return {"trackMethod": "ping", "trackTargets": [target], "reliability": 1, "pingCount": 1, "pingInterval": 5,
            "pingTimeout": 2, "interfaceDown": 3, "interfaceUp": 3}


def _wifi_key(sn: str) -> str:
    return "lan-" + hashlib.sha256(f"wifi|{sn}".encode()).hexdigest()[:12]


def _build_gateway(model: str, serial: int, organization: str, location: LocationSpec | None, status: str,
                   provisioned: bool, order: int, epoch: float) -> Gateway:
    sn = serial_number(model, serial)
    spec = MODELS[model]
    tail = _hash("mac", sn) % (1 << 24)
    mac = "AC:1F:09:" + ":".join(f"{(tail >> shift) & 0xFF:02X}" for shift in (16, 8, 0))
    eui = "ac1f09fffe" + f"{tail:06x}"
    site = location.subnet if location else 60
    host = 20 + serial % 200
    first_seen = epoch - (120 + _hash("age", sn) % 200) * 86400
    booted = epoch - (3600 * 5 + _hash("boot", sn) % (86400 * 9))
    last_seen = dying = None
    if status == "OFFLINE":
        last_seen = epoch - (3 + _hash("down", sn) % 60) * 3600 - _hash("down-min", sn) % 3600
        dying = last_seen + 4
    elif status == "ONLINE" and _hash("gasp", sn) % 3 == 0:
        dying = booted - 90  # a power cut before the last boot
    encryption = ("WPA2-PSK", "WPA-WPA2-PSK-MIXED", "WPA2-PSK", "NONE")[serial % 4]
    lan = {"ethernet": {"enabled": False},
           "wifi": {"enabled": serial % 3 != 0, "ssid": f"RAK-{sn[-4:]}", "encryption": encryption,
                    "key": _wifi_key(sn), "channel": "Auto" if serial % 2 else "2437MHz", "hidden": serial % 5 == 0}}
    ethernet: dict[str, Any] = {"enabled": True, "protocol": "dhcp", "dhcpClient": {"useDNS": True},
                                "tracking": _tracking("8.8.8.8")}
    if serial % 7 == 1:
        ethernet = {"enabled": True, "protocol": "static",
                    "staticAddress": {"ipAddress": f"10.0.{site}.{host}", "netmask": "255.255.255.0",
                                      "gateway": f"10.0.{site}.1", "dns": [f"10.0.{site}.1", "1.1.1.1"]},
                    "tracking": _tracking("8.8.8.8")}
    cellular: dict[str, Any] = {"enabled": False}
    sim: dict[str, Any] = {}
    if spec.cellular:
        cellular = {"enabled": True, "apn": ("internet", "iot.1nce.net", "m2m.vivacom.bg")[serial % 3],
                    "tracking": _tracking("1.1.1.1")}
        if sn == APN_WITH_PASSWORD:
            cellular.update(apn="m2m.secure.example", username="gw-fleet",
                            password="apn-" + hashlib.sha256(f"apn|{sn}".encode()).hexdigest()[:10],
                            pinCode=_digits(4, "pin", sn))
        sim = {"imsi": "28401" + _digits(10, "imsi", sn), "iccid": "8935901" + _digits(13, "iccid", sn),
               "imei": "8628690" + _digits(8, "imei", sn), "plmn": "28401",
               "cellular_host": f"100.94.{_hash('cell', sn) % 250}.{4 * (_hash('cell4', sn) % 60) + 2}"}
    wan = {"ethernet": ethernet, "wifi": {"enabled": False}, "cellular": cellular}
    syslog = {"shareLogs": ("wisdm", "externalAndWisdm", "wisdm", "none")[serial % 4], "logsRotationCycle": 7,
              "wisdmLogsRetrievalCycle": 10, "wisdmLogsRotationCycle": 30,
              "externalLogServer": {"ip": f"10.0.{site}.5", "port": 514}}
    lat, lon = (location.latitude, location.longitude) if location else (0.0, 0.0)
    coordinates = (round(lat + (_unit("lat", sn) - 0.5) / 50, 7), round(lon + (_unit("lon", sn) - 0.5) / 50, 7))
    return Gateway(
        sn=sn, model=model, organization=organization, location=location.id if location else None,
        provisioned=provisioned, base_status="OFFLINE" if status == "OFFLINE" else "ONLINE", order=order,
        name=f"{model}-{sn}", eui=eui, mac=mac, first_seen=first_seen, booted=booted, last_seen=last_seen,
        dying_gasp=dying, lan=lan, wan=wan,
        priority="ETH_CELLULAR_WIFI" if spec.cellular else "ETH_WIFI_CELLULAR", syslog=syslog,
        firmware=("2.2.14", "2.2.15", "2.2.13")[serial % 3], sim=sim, site=site, host=host, coordinates=coordinates)


# ---------------------------------------------------------------------------------------------
# netstat as the gateway runs it (the one supported diagnostic command)


def netstat_lines(gateway: Gateway, args: str) -> list[str]:
    flags = set("".join(word[1:] for word in args.split() if word.startswith("-") and not word.startswith("--")))
    ip = f"10.0.{gateway.site}.{gateway.host}"
    sockets = [  # (proto, local, foreign, state, program)
        ("tcp", "0.0.0.0:80", "0.0.0.0:*", "LISTEN", "2101/lighttpd"),
        ("tcp", "0.0.0.0:443", "0.0.0.0:*", "LISTEN", "2101/lighttpd"),
        ("tcp", "0.0.0.0:22", "0.0.0.0:*", "LISTEN", "1650/dropbear"),
        ("tcp", "127.0.0.1:1883", "0.0.0.0:*", "LISTEN", "1893/mosquitto"),
        ("tcp", f"{ip}:{40000 + gateway.host}", "3.120.181.9:8883", "ESTABLISHED", "2311/wisdm-agent"),
        ("tcp", f"{ip}:{51000 + gateway.host}", "52.29.118.27:443", "ESTABLISHED", "2440/station"),
        ("udp", "0.0.0.0:1700", "0.0.0.0:*", "", "2231/lora_pkt_fwd"),
        ("udp", "127.0.0.1:1701", "0.0.0.0:*", "", "2231/lora_pkt_fwd"),
    ]
    if "t" in flags or "u" in flags:
        sockets = [s for s in sockets if ("t" in flags and s[0] == "tcp") or ("u" in flags and s[0] == "udp")]
    if "l" in flags:
        sockets = [s for s in sockets if s[3] in ("LISTEN", "")]
        title = "Active Internet connections (only servers)"
    elif "a" in flags:
        title = "Active Internet connections (servers and established)"
    else:
        sockets = [s for s in sockets if s[3] == "ESTABLISHED"]
        title = "Active Internet connections (w/o servers)"
    program = "p" in flags
    header = "Proto Recv-Q Send-Q Local Address           Foreign Address         State      "
    lines = [title, header + (" PID/Program name" if program else "")]
    for proto, local, foreign, state, name in sockets:
        line = f"{proto:<5}{0:>7}{0:>7} {local:<23} {foreign:<23} {state:<11}"
        lines.append((line + " " + name) if program else line.rstrip())
    return lines


def run_pipe(lines: list[str], command: str, args: str) -> list[str]:
    """One stage of a pipeline (grep, head, tail, wc, sort) over text lines; ValueError for bad args."""
    words = args.split()
    if command == "grep":
        invert, ignore = "-v" in words, "-i" in words
        patterns = [w for w in words if not w.startswith("-")]
        if len(patterns) != 1:
            raise ValueError("grep: one pattern expected")
        try:
            pattern = re.compile(patterns[0], re.IGNORECASE if ignore else 0)
        except re.error:
            raise ValueError("grep: invalid regular expression") from None
        return [line for line in lines if bool(pattern.search(line)) != invert]
    if command in ("head", "tail"):
        count = 10
        if words:
            text = words[1] if words[0] == "-n" and len(words) > 1 else words[0].lstrip("-")
            if not text.isdigit():
                raise ValueError(f"{command}: invalid number of lines")
            count = int(text)
        return lines[:count] if command == "head" else (lines[-count:] if count else [])
    if command == "wc":
        return [str(len(lines))] if "-l" in words else [f"{len(lines)} {sum(len(l.split()) for l in lines)} "
                                                        f"{sum(len(l) + 1 for l in lines)}"]
    if command == "sort":
        return sorted(lines, reverse="-r" in words)
    raise ValueError(f"{command}: not supported")


# ---------------------------------------------------------------------------------------------


class _Answer(Exception):
    """A handler's finished answer that skips the rest of the handler (a fault's odd answer)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _default_auth() -> dict[str, Any]:
    def key(word: str) -> str:
        return f"wisdm-{word}-{secrets.token_hex(10)}"
    return {"keys": [
        {"name": "reader", "key": key("read"), "access": "read", "permissions": []},
        {"name": "ops", "key": key("ops"), "access": "write", "permissions": ["WRITE_REBOOT_GATEWAY"]},
        {"name": "admin", "key": key("admin"), "access": "write", "permissions": list(PERMISSIONS)},
        {"name": "partner", "key": key("partner"), "access": "write", "permissions": list(PERMISSIONS)},
        {"name": "factory-a", "key": key("site"), "access": "read", "permissions": [], "locations": [FACTORY_A]},
        {"name": "lapsed", "key": key("lapsed"), "access": "write", "permissions": ["WRITE_REBOOT_GATEWAY"],
         "expired": True},
    ]}


class WisdmEmulator(DeviceEmulator):
    NAME = "wisdm"
    PREFIX = PREFIX
    ROUTES = ROUTES
    FAULTS = FAULTS

    def __init__(self, faults=(), auth=None, other_organization=()) -> None:
        self.generated_keys = not auth
        if self.generated_keys:
            auth = _default_auth()
            if not other_organization:
                other_organization = ("partner",)
        super().__init__(faults, auth)
        other = (other_organization,) if isinstance(other_organization, str) else tuple(other_organization)
        names = [key.name for key in scoped_keys.keys_of(self.auth)]
        unknown = [name for name in other if name not in names]
        if unknown:
            raise ValueError(f"other_organization: {', '.join(map(repr, unknown))} is no key name "
                             f"(keys: {', '.join(names)})")
        self.keys: tuple[tuple[ScopedKey, str], ...] = tuple(
            (key, ORG_B if key.name in other else ORG_A) for key in scoped_keys.keys_of(self.auth))
        self.url_secret = secrets.token_bytes(16)  # signs the pre-signed download URLs
        self.reset()

    def reset(self) -> None:
        """Back to the state at start (also POST /__emulator__/reset)."""
        super().reset()
        self.counters = dict.fromkeys(COUNTERS, 0)
        epoch = self.wall()
        self.locations: dict[str, Location] = {}
        for order, spec in enumerate(LOCATIONS):
            settings = {"address": {"country": spec.country, "city": spec.city, "latitude": spec.latitude,
                                    "longitude": spec.longitude}, "channelsNumber": 8}
            if spec.work_mode == BASICS_STATION:
                settings["basicStation"] = {"serverType": "LNS", "serverURL": "wss://lns.example.invalid",
                                            "serverPort": 8887, "authenticationMode": spec.auth_mode}
            self.locations[spec.id] = Location(spec.id, spec.organization, spec.name, spec.work_mode, spec.auth_mode,
                                               order, settings, spec.subnet)
        by_id = {spec.id: spec for spec in LOCATIONS}
        self.gateways: dict[str, Gateway] = {}
        order = 0
        for model, serial, location, status in FLEET:
            spec = by_id[location]
            gateway = _build_gateway(model, serial, spec.organization, spec, status, True, order, epoch)
            if status == "PROVISIONING":
                gateway.registered_at = self.now() - 1  # registered, not yet provisioned: it stays so
            self.gateways[gateway.sn] = gateway
            order += 1
        for model, serial, organization, provisioned in UNASSIGNED:
            gateway = _build_gateway(model, serial, organization, None, "ONLINE", provisioned, order, epoch)
            self.gateways[gateway.sn] = gateway
            order += 1
        self.next_order = order
        self.stuck_provisioning = {sn for sn, gw in self.gateways.items() if gw.registered_at is not None}
        self.commands: dict[int, Command] = {}
        self.last_command_id = 0

    # -- transport: gzip and the answers of faults ---------------------------------------------

    def device_handle(self, req: Request) -> Response:
        try:
            response = super().device_handle(req)
        except _Answer as answer:
            response = answer.response
        return self._encode(req, response)

    def _encode(self, req: Request, response: Response) -> Response:
        response.headers.setdefault("Vary", "Accept-Encoding")
        if (response.body and response.status not in (204, 304) and wants_gzip(req.headers.get("Accept-Encoding"))
                and not self.fault("gzip_ignored")
                and not (self.alternative and len(response.body) < GZIP_MIN_ALTERNATIVE)):
            response.body = gzip.compress(response.body, mtime=0)
            response.headers["Content-Encoding"] = "gzip"
        return response

    # -- errors ------------------------------------------------------------------------------------

    def error(self, status: int, detail: str | None = None, headers=None, *, code: str | None = None) -> Response:
        message = detail or MESSAGES.get(status) or reason_phrase(status)
        if self.alternative:
            return Response.text(message, status, headers=headers)
        return Response.json({"code": status, "message": message}, status, headers)

    def method_not_allowed(self, req: Request, allowed: list[str]) -> Response:
        return self.error(405, headers={"Allow": ", ".join(allowed)})

    @staticmethod
    def _invalid(what: str) -> Refused:
        return Refused(f"Invalid parameters: {what}", 400)

    def _not_found(self) -> Refused:
        return Refused(MESSAGES[404], 404)

    def _foreign(self) -> Refused:
        """Another organization's object, or one outside the key's locations: like a nonexistent one."""
        if self.fault("existence_leaked_403"):
            return Refused(MESSAGES[403], 403)
        return self._not_found()

    # -- keys and grants ---------------------------------------------------------------------------

    def _key_for(self, req: Request) -> tuple[ScopedKey, str] | None:
        """The key (and its organization) the request presents, None if it presents none the cloud issued."""
        given = req.headers.get(KEY_HEADER)
        if given is None and self.fault("key_read_from_authorization"):
            given = req.headers.get("Authorization")
        if given is None:
            return None
        given = given.strip()
        if self.fault("key_scheme_stripped") and " " in given:
            given = given.split(" ", 1)[1].strip()
        for entry in self.keys:
            if compare.matches(given, entry[0].key):
                return entry
        flaws = compare.flaws_of(self, KEY_FLAWS)
        if flaws:  # the flawed comparison, keys that still work first
            for entry in sorted(self.keys, key=lambda entry: entry[0].expired):
                if compare.matches(given, entry[0].key, flaws):
                    return entry
        return None

    def authorize(self, req: Request, route: Route | None) -> Response | None:
        entry = self._key_for(req)
        if entry is None or (entry[0].expired and not self.fault("expired_key_accepted")):
            if self.alternative:
                return self.error(401, "Invalid or missing API key",
                                  {"WWW-Authenticate": f'ApiKey header="{KEY_HEADER}"'})
            return self.error(403)
        key, organization = entry
        grants = set(key.grants)
        if key.access == "read" and self.fault("read_key_can_write"):
            grants |= {"write", *PERMISSIONS}
        if key.access == "write" and self.fault("permission_unchecked"):
            grants |= set(PERMISSIONS)
        if not set(route.access if route is not None else READ) <= grants:
            return self.error(403)
        req.key, req.organization = key, organization  # for the handlers
        return None

    # -- lookups -----------------------------------------------------------------------------------

    def _restricted(self, req: Request, location: str | None) -> bool:
        """Is `location` outside the key's location restriction?"""
        allowed = req.key.locations
        return bool(allowed) and location not in allowed and not self.fault("location_restriction_ignored")

    def _organization(self, req: Request, listing: bool = False) -> str:
        organization = req.params["organizationId"]
        if organization == req.organization:
            return organization
        if organization in ORGANIZATIONS:
            if listing and self.fault("other_organization_locations_listed"):
                return organization
            raise self._foreign()
        raise self._not_found()

    def _location(self, req: Request) -> Location:
        location = self.locations.get(req.params["locationId"])
        if location is None:
            raise self._not_found()
        if location.organization != req.organization and not self.fault("other_organization_location_served"):
            raise self._foreign()
        if self._restricted(req, location.id):
            raise self._foreign()
        return location

    def _gateway(self, req: Request, sn: str | None = None) -> Gateway:
        gateway = self.gateways.get(sn if sn is not None else req.params["sn"])
        if gateway is None:
            if self.fault("unknown_gateway_200"):
                raise _Answer(Response.json({}))
            if self.fault("unknown_gateway_500"):
                raise Refused("Gateway not reachable", 500)
            raise self._not_found()
        if gateway.organization != req.organization and not self.fault("other_organization_gateway_served"):
            raise self._foreign()
        if self._restricted(req, gateway.location):
            raise self._foreign()
        return gateway

    def _object(self, req: Request) -> dict[str, Any]:
        if not isinstance(req.data, dict):
            raise self._invalid("the body must be a JSON object")
        return req.data

    def _query(self, req: Request, name: str) -> str | None:
        values = req.query.get(name)
        return values[0] if values else None

    def _no_content(self) -> Response:
        if self.fault("no_content_as_200"):
            return Response.json({"success": True})
        return Response(204)

    def _created(self, value: dict[str, Any], documented: bool) -> Response:
        """201 with the answer (200 for a location in the alternative reading: `documented` False)."""
        status = 200 if self.fault("created_as_200") or (self.alternative and not documented) else 201
        return Response.json(value, status)

    # -- state of a gateway ------------------------------------------------------------------------

    def status_of(self, gateway: Gateway) -> str:
        if gateway.location is None:
            return "PROVISIONING"
        if gateway.registered_at is not None and (gateway.sn in self.stuck_provisioning
                                                  or self.now() - gateway.registered_at < PROVISION_SECONDS):
            return "PROVISIONING"
        return gateway.base_status

    def _reported_at(self, gateway: Gateway) -> float:
        """The wall-clock time of the state shown: now, or the last report of an OFFLINE gateway."""
        return gateway.last_seen if gateway.last_seen is not None else self.wall()

    def _listing_order(self, gateways: list[Gateway]) -> list[Gateway]:
        return sorted(gateways, key=(lambda g: g.order) if self.alternative else (lambda g: g.sn))

    def _in_location(self, location: Location) -> list[Gateway]:
        return self._listing_order([g for g in self.gateways.values() if g.location == location.id])

    def _summary(self, gateway: Gateway) -> dict[str, Any]:
        return {"sn": gateway.sn, "eui": gateway.eui, "name": gateway.name, "model": gateway.model,
                "mac": gateway.mac, "status": self.status_of(gateway),
                "lastDyingGasp": iso(gateway.dying_gasp) if gateway.dying_gasp is not None else "None"}

    def _status(self, gateway: Gateway) -> dict[str, Any]:
        status = self.status_of(gateway)
        at = self._reported_at(gateway)
        up = status != "PROVISIONING"
        uptime = max(0, int(at - gateway.booted)) if up else 0
        sn = gateway.sn
        spec = gateway.spec
        wave = math.sin(at / 317 + _unit("cpu", sn) * 6)
        system = {"uptime": uptime, "cpu": int(24 + 9 * wave + 6 * _unit("cpu", sn)) if up else 0,
                  "memory": int(47 + 5 * _unit("mem", sn) + 2 * math.sin(at / 911)) if up else 0}
        if spec.gps and up:
            gps = {"state": "GPS_FIXED", "satellites_number": 7 + _hash("sat", sn) % 6,
                   "longitude": gateway.coordinates[1], "latitude": gateway.coordinates[0]}
        else:
            gps = {"state": "GPS_NO_OUTPUT", "satellites_number": 0, "longitude": 0.0, "latitude": 0.0}
        order = gateway.priority.split("_")
        wan_cfg = gateway.wan
        eth_online = up and wan_cfg["ethernet"].get("enabled", False) and not spec.outdoor
        cell_online = up and spec.cellular and wan_cfg["cellular"].get("enabled", False)
        wifi_online = up and wan_cfg["wifi"].get("enabled", False)
        online = {"ETH": eth_online, "CELLULAR": cell_online, "WIFI": wifi_online}
        active = next((name for name in order if online[name]), order[0])
        link_uptime = max(0, uptime - 68)
        ethernet: dict[str, Any] = {"enabled": wan_cfg["ethernet"].get("enabled", False),
                                    "priority": order.index("ETH") + 1, "online": eth_online}
        if eth_online:
            ethernet["ipv4AddrMask"] = f"10.0.{gateway.site}.{gateway.host}/24"
        ethernet["uptime"] = link_uptime if eth_online else 0
        wifi: dict[str, Any] = {"enabled": wan_cfg["wifi"].get("enabled", False), "priority": order.index("WIFI") + 1}
        if wifi["enabled"]:
            wifi.update(online=wifi_online, uptime=link_uptime if wifi_online else 0)
        cellular: dict[str, Any] = {"enabled": wan_cfg["cellular"].get("enabled", False),
                                    "priority": order.index("CELLULAR") + 1, "online": cell_online}
        if cell_online:
            cellular["ipv4AddrMask"] = gateway.sim["cellular_host"] + "/30"
        cellular["uptime"] = link_uptime if cell_online else 0
        if spec.cellular:
            rsrp = -95 - _hash("rsrp", sn) % 15
            cellular.update({"sim_present": True, "imsi": gateway.sim["imsi"], "iccid": gateway.sim["iccid"],
                             "imei": gateway.sim["imei"], "signalLevel": 1 + _hash("lvl", sn) % 4, "rsrp": rsrp,
                             "rsrq": -4 - _hash("rsrq", sn) % 8, "sinr": 6 + _hash("sinr", sn) % 15,
                             "rssi": rsrp + 26, "rat": "LTE", "networkType": "FDD LTE", "autoSelect": True,
                             "plmn": gateway.sim["plmn"]})
        rate = 0.05 + 0.1 * _unit("lora", sn)
        lan_wifi = dict(gateway.lan["wifi"])
        used = 0 if not up else int(1 + 3 * _unit("disk", sn))
        total = 15176 + _hash("disk-total", sn) % 16
        return {
            "sn": sn, "eui": gateway.eui, "name": gateway.name, "model": gateway.model, "mac": gateway.mac,
            "status": status,
            "lastDyingGasp": iso(gateway.dying_gasp) if gateway.dying_gasp is not None else "None",
            "system": system,
            "gps": gps,
            "network": {
                "lan": {"subnet": "192.168.230.1/24", "ethernet": dict(gateway.lan["ethernet"]), "wifi": lan_wifi},
                "wan": {"active": active, "ethernet": ethernet, "wifi": wifi, "cellular": cellular},
            },
            "lora": {"activeNodes": (3 + _hash("nodes", sn) % 40) if up else 0,
                     "txPackets": int(uptime * rate / 9), "rxPackets": int(uptime * rate)},
            "storage": {"healthy": True, "total": total, "free": total - 35 - used * 150,
                        "used_percent": used},
        }

    def _battery(self, gateway: Gateway) -> dict[str, Any]:
        at = self._reported_at(gateway)
        sn = gateway.sn
        hour = ((at + LOCAL_OFFSET) % 86400) / 3600
        sun = max(0.0, math.sin(math.pi * (hour - 6) / 14)) if 6 < hour < 20 else 0.0
        soc = int(max(5, min(100, 45 + 40 * math.sin(math.pi * (hour - 10) / 24) + 10 * _unit("soc", sn))))
        full = 50000
        if soc >= 100:
            current, mode = 0, "FULLY_CHARGED"
        elif sun > 0.05:
            current, mode = int(60 + 900 * sun), "CHARGING"
        else:
            current, mode = -int(120 + 80 * _unit("load", sn)), "DISCHARGING"
        volts = 12.0 + soc * 0.018 + (0.4 if mode == "CHARGING" else 0.0)
        voltage: float | int = round(volts) if self.alternative else round(volts, 2)
        return {"temperature": int(18 + 12 * sun + 6 * _unit("temp", sn)), "voltage": voltage, "soc": soc,
                "current": current, "soh": 100 - _hash("soh", sn) % 6, "cycles": 3 + _hash("cycles", sn) % 90,
                "remainCapacity": full * soc // 100, "fullChargeCapacity": full, "mode": mode}

    # -- pagination --------------------------------------------------------------------------------

    def _page_token(self, location: Location, page: int) -> str:
        if self.alternative:
            raw = json.dumps({"location": location.id, "page": page}, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return base64.b64encode(json.dumps({"page": page}, separators=(",", ":")).encode()).decode()

    def _token_page(self, location: Location, token: str) -> int | None:
        """The page a token names, None if it is malformed or not one of this location's."""
        token = token.strip().replace(" ", "+")
        try:
            if self.alternative:
                raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            else:
                raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
            value = json.loads(raw.decode())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        expected = {"location", "page"} if self.alternative else {"page"}
        if not isinstance(value, dict) or set(value) != expected:
            return None
        if self.alternative and value["location"] != location.id:
            return None
        page = value["page"]
        return page if isinstance(page, int) and not isinstance(page, bool) and page >= 2 else None

    def _paged(self, req: Request, location: Location, entry: Callable[[Gateway], dict[str, Any]]) -> Response:
        raw_size = self._query(req, "pageSize")
        if raw_size is None:
            size = PAGE_SIZE_MAX
        elif raw_size.strip().isdigit() and 1 <= int(raw_size) <= PAGE_SIZE_MAX:
            size = int(raw_size)
        else:
            raise self._invalid(f"pageSize must be an integer from 1 to {PAGE_SIZE_MAX}")
        gateways = self._in_location(location)
        pages = math.ceil(len(gateways) / size)
        last_served = pages + 1 if self.fault("next_token_on_last_page") else pages
        page = 1
        token = self._query(req, "nextToken")
        if token is not None:
            named = self._token_page(location, token)
            if named is None or named > last_served:
                if not self.fault("malformed_token_first_page"):
                    raise self._invalid("nextToken is malformed or unknown")
            else:
                page = named
        start = (page - 1) * size
        if page > 1 and self.fault("pages_overlap"):
            start -= 1
        if page > 1 and self.fault("pages_skip_one"):
            start += 1
        end = start + size + (1 if self.fault("page_larger_than_page_size") else 0)
        shown_pages = max(0, pages - 1) if self.fault("total_pages_off_by_one") else pages
        answer: dict[str, Any] = {"pageSize": size, "totalPages": shown_pages}
        if page < last_served:
            answer["nextToken"] = self._page_token(location, page + 1)
        answer["gateways"] = [entry(g) for g in gateways[start:end]]
        return Response.json(answer)

    # -- system and organization -------------------------------------------------------------------

    def get_version(self, req: Request) -> Response:
        return Response.json(dict(VERSION))

    def get_organization(self, req: Request) -> Response:
        return Response.json({"id": req.organization, "name": ORGANIZATIONS[req.organization]})

    def list_locations(self, req: Request) -> Response:
        organization = self._organization(req, listing=True)
        listed = [loc for loc in sorted(self.locations.values(), key=lambda loc: loc.order)
                  if loc.organization == organization and not self._restricted(req, loc.id)]
        total = len(self.locations) if self.fault("total_mismatch") else len(listed)
        return Response.json({"total": total, "locations": [{"id": loc.id, "name": loc.name} for loc in listed]})

    def create_location(self, req: Request) -> Response:
        organization = self._organization(req)
        body = self._object(req)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise self._invalid("name is required")
        if not (4 <= len(name.strip()) and len(name) <= 50) and not self.fault("location_name_length_unchecked"):
            raise self._invalid("name must have 4 to 50 characters")
        address = body.get("address")
        if address is not None:
            self._check_address(address)
        work_mode = body.get("workMode", BASICS_STATION)
        if work_mode != BASICS_STATION:
            raise self._invalid('workMode: only "Basics station" is supported')
        if "enableCriticalFwAutoUpdate" in body and not isinstance(body["enableCriticalFwAutoUpdate"], bool):
            raise self._invalid("enableCriticalFwAutoUpdate must be a boolean")
        station = body.get("basicStation")
        if not isinstance(station, dict):
            raise self._invalid("basicStation is required")
        self._check_station(station)
        frequencies = body.get("advancedFrequencySettings")
        if frequencies is not None:
            self._check_frequencies(frequencies)
        channels = body.get("channelsNumber", 8)
        if not self.fault("channels_number_unchecked") and (isinstance(channels, bool) or channels not in (8, 16)):
            raise self._invalid("channelsNumber must be 8 or 16")
        taken = any(loc.organization == organization and loc.name.strip().casefold() == name.strip().casefold()
                    for loc in self.locations.values())
        if taken and not self.fault("duplicate_location_201"):
            raise Refused("Location already exists", 409)
        location = Location(str(uuid.uuid4()), organization, name, BASICS_STATION, station["authenticationMode"],
                            len(self.locations), {key: body[key] for key in body if key != "name"})
        self.locations[location.id] = location
        self.count("locationsCreated")
        return self._created({"locationId": location.id, "organizationId": organization, "name": name,
                              "workMode": BASICS_STATION}, documented=False)

    def _check_address(self, address: Any) -> None:
        if not isinstance(address, dict):
            raise self._invalid("address must be an object")
        for key in ("country", "addressLine1", "city", "state", "zip"):
            if key in address and not isinstance(address[key], str):
                raise self._invalid(f"address.{key} must be a string")
        for key, bound in (("latitude", 90), ("longitude", 180)):
            value = address.get(key)
            if key in address and (isinstance(value, bool) or not isinstance(value, (int, float))
                                   or not -bound <= value <= bound):
                raise self._invalid(f"address.{key} must be a number from -{bound} to {bound}")

    def _check_station(self, station: dict[str, Any]) -> None:
        if station.get("serverType") not in SERVER_TYPES:
            raise self._invalid(f"basicStation.serverType must be one of {' / '.join(SERVER_TYPES)}")
        url = station.get("serverURL")
        if not isinstance(url, str) or not re.fullmatch(r"(https?|wss?)://[A-Za-z0-9.-]+(:\d+)?(/\S*)?", url):
            raise self._invalid("basicStation.serverURL must be a fully qualified URL")
        port = station.get("serverPort")
        if isinstance(port, bool) or not isinstance(port, int):
            raise self._invalid("basicStation.serverPort must be an integer from 1 to 65535")
        if not 1 <= port <= 65535 and not self.fault("server_port_unchecked"):
            raise self._invalid("basicStation.serverPort must be an integer from 1 to 65535")
        mode = station.get("authenticationMode")
        if mode not in AUTH_MODES:
            raise self._invalid(f"basicStation.authenticationMode must be one of {' / '.join(AUTH_MODES)}")
        for key in ("trustCACertificate", "clientCertificate", "clientKey", "token"):
            if key in station and not isinstance(station[key], str):
                raise self._invalid(f"basicStation.{key} must be a string")
        individual = station.get("useIndividualKeys", False)
        if not isinstance(individual, bool):
            raise self._invalid("basicStation.useIndividualKeys must be a boolean")
        shared_pair = station.get("clientCertificate") and station.get("clientKey")
        if not individual and mode == TLS_CLIENT and not shared_pair:
            raise self._invalid("basicStation.clientCertificate and clientKey are required for shared TLS client "
                                "authentication")
        if not individual and mode == TLS_TOKEN and not station.get("token"):
            raise self._invalid("basicStation.token is required for shared token authentication")

    def _check_frequencies(self, frequencies: Any) -> None:
        if not isinstance(frequencies, dict):
            raise self._invalid("advancedFrequencySettings must be an object")
        if "region" in frequencies and frequencies["region"] not in REGIONS:
            raise self._invalid("advancedFrequencySettings.region is not a supported region")
        for key in ("regionVariation", "frequencySubBand"):
            if key in frequencies and not isinstance(frequencies[key], str):
                raise self._invalid(f"advancedFrequencySettings.{key} must be a string")
        if "isLoRaWANPublic" in frequencies and not isinstance(frequencies["isLoRaWANPublic"], bool):
            raise self._invalid("advancedFrequencySettings.isLoRaWANPublic must be a boolean")

    # -- location endpoints ------------------------------------------------------------------------

    def list_gateways(self, req: Request) -> Response:
        location = self._location(req)
        gateways = [self._summary(g) for g in self._in_location(location)]
        return Response.json({"total": len(gateways), "gateways": gateways})

    def location_status(self, req: Request) -> Response:
        return self._paged(req, self._location(req), self._status)

    def location_battery(self, req: Request) -> Response:
        return self._paged(req, self._location(req), lambda g: {"sn": g.sn, "battery": self._battery(g)})

    def register_gateway(self, req: Request) -> Response:
        location = self._location(req)
        body = self._object(req)
        sn, eui = body.get("sn"), body.get("eui")
        if not isinstance(sn, str) or not sn:
            raise self._invalid("sn is required")
        if not isinstance(eui, str) or not re.fullmatch(r"[0-9A-Fa-f]{16}", eui):
            raise self._invalid("eui must be 16 hexadecimal digits")
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= 64):
            raise self._invalid("name must be a string of 1 to 64 characters")
        local_suite = body.get("bsHasLocalAuthSuite", False)
        if not isinstance(local_suite, bool):
            raise self._invalid("bsHasLocalAuthSuite must be a boolean")
        for key in ("bsClientCertificate", "bsClientKey", "bsToken"):
            if key in body and not isinstance(body[key], str):
                raise self._invalid(f"{key} must be a string")
        gateway = self.gateways.get(sn)
        if gateway is None or (gateway.organization != req.organization
                               and not self.fault("other_organization_gateway_served")):
            raise self._not_found()  # "Confirms that the gateway belongs to the same organization."
        if gateway.location is not None:
            raise self._invalid("the gateway is already assigned to a location")
        if eui.lower() != gateway.eui:
            raise self._invalid("eui does not match the gateway")
        if location.work_mode != BASICS_STATION and not self.fault("non_basics_station_registration_accepted"):
            raise Refused("Invalid Mode: Location is not in Basics Station mode", 406)
        if not gateway.provisioned and not self.fault("unprovisioned_gateway_registered"):
            raise Refused("Invalid Mode: the gateway is not factory-registered", 406)
        if not local_suite and not self.fault("tls_fields_not_required"):
            if location.auth_mode == TLS_CLIENT and not (body.get("bsClientCertificate") and body.get("bsClientKey")):
                raise self._invalid("bsClientCertificate and bsClientKey are required for this location")
            if location.auth_mode == TLS_TOKEN and not body.get("bsToken"):
                raise self._invalid("bsToken is required for this location")
        gateway.location = location.id
        gateway.organization = location.organization
        gateway.name = name or gateway.name
        gateway.registered_at = self.now()
        gateway.order = self.next_order
        self.next_order += 1
        gateway.site = location.subnet
        gateway.first_seen = gateway.booted = self.wall() + PROVISION_SECONDS
        gateway.base_status = "ONLINE"
        self.count("gatewaysRegistered")
        return self._created({"locationId": location.id, "sn": gateway.sn, "eui": eui}, documented=True)

    # -- gateway reads -----------------------------------------------------------------------------

    def gateway_status(self, req: Request) -> Response:
        return Response.json(self._status(self._gateway(req)))

    def gateway_battery(self, req: Request) -> Response:
        gateway = self._gateway(req)
        return Response.json({"sn": gateway.sn, "battery": self._battery(gateway)})

    def gateway_perf(self, req: Request) -> Response:
        gateway = self._gateway(req)
        metric = req.params["metric"]
        if metric not in METRICS:
            raise self._invalid(f"metric must be one of {' / '.join(METRICS)}")
        interval = self._query(req, "interval")
        if interval is None:
            if self.alternative:
                raise self._invalid("interval is required")
            interval = "24h"
        match = re.fullmatch(r"([1-9][0-9]{0,3})([hd])", interval)
        if not match or int(match[1]) > (720 if match[2] == "h" else 30):
            raise self._invalid('interval must be like "1h", "12h", "24h" or "7d" (at most 30 days)')
        seconds = int(match[1]) * (3600 if match[2] == "h" else 86400)
        step = 600 if seconds <= 86400 else 3600
        token = self._query(req, "nextToken")
        offset, end = 0, math.floor(self.wall() / step) * step
        if token is not None:
            try:
                value = json.loads(base64.b64decode(token.replace(" ", "+") + "=" * (-len(token) % 4), validate=True))
                offset, end = value["offset"], value["end"]
                if not (isinstance(offset, int) and isinstance(end, int) and offset > 0 and end % step == 0):
                    raise ValueError
            except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
                raise self._invalid("nextToken is malformed") from None
        points = self._perf_points(gateway, metric, end - seconds, end, step)
        if token is not None and offset >= len(points):
            raise self._invalid("nextToken is malformed")
        page = points[offset:offset + PERF_PAGE]
        answer: dict[str, Any] = {"result": page}
        if offset + PERF_PAGE < len(points):
            raw = json.dumps({"offset": offset + PERF_PAGE, "end": end}, separators=(",", ":")).encode()
            answer["nextToken"] = base64.b64encode(raw).decode()
        answer["clientToken"] = hashlib.sha256(f"{gateway.sn}|{metric}|{interval}|{end}".encode()).hexdigest()[:16]
        return Response.json(answer)

    def _perf_points(self, gateway: Gateway, metric: str, start: float, end: float, step: int) -> list[dict[str, Any]]:
        if self.status_of(gateway) == "PROVISIONING":
            return []
        last = min(end, self._reported_at(gateway))
        first = max(start + step, gateway.first_seen)
        points = []
        t = math.ceil(first / step) * step
        sn = gateway.sn
        scale = step / 600
        while t <= last:
            day = math.sin(2 * math.pi * ((t + LOCAL_OFFSET) % 86400) / 86400 - math.pi / 2)  # -1 at night
            noise = _unit(metric, sn, t) * 2 - 1
            if metric == "rssi":
                value: float | int = round(-82 + 5 * _unit("rssi", sn) + 3 * day + 4 * noise)
            elif metric == "snr":
                value = round(6.5 + 2 * _unit("snr", sn) + 1.5 * day + 1.5 * noise, 1)
            elif metric == "uplink":
                value = max(0, round((45 + 25 * day + 8 * noise) * scale))
            else:
                value = max(0, round((5 + 3 * day + 2 * noise) * scale))
            points.append({"value": value, "timestamp": iso(t)})
            t += step
        return points

    # -- battery monitoring, commands, maintenance -------------------------------------------------

    def set_battery_monitoring(self, req: Request) -> Response:
        gateway = self._gateway(req)
        body = self._object(req)
        if not isinstance(body.get("enabled"), bool):
            raise self._invalid("enabled must be a boolean")
        gateway.battery_monitoring = body["enabled"]
        self.count("batteryMonitoring")
        return self._no_content()

    def send_command(self, req: Request) -> Response:
        gateway = self._gateway(req)
        body = self._object(req)
        command = body.get("command")
        if not isinstance(command, str) or not command:
            raise self._invalid("command is required")
        if command not in SUPPORTED_COMMANDS:
            raise self._invalid(f"command is not supported (supported: {', '.join(SUPPORTED_COMMANDS)})")
        args = body.get("args", "")
        if not isinstance(args, str):
            raise self._invalid("args must be a string")
        pipes = body.get("pipes", [])
        if not isinstance(pipes, list):
            raise self._invalid("pipes must be a list of {command, args}")
        for pipe in pipes:
            if (not isinstance(pipe, dict) or pipe.get("command") not in PIPE_COMMANDS
                    or not isinstance(pipe.get("args", ""), str) or set(pipe) - {"command", "args"}):
                raise self._invalid(f"pipes: each a {{command, args}} with a command of {', '.join(PIPE_COMMANDS)}")
        timeout = body.get("timeout", 60)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 3600:
            raise self._invalid("timeout must be an integer from 1 to 3600 (seconds)")
        command_id = max(self.last_command_id + 1, int(self.wall()))
        self.last_command_id = command_id
        self.commands[command_id] = Command(command_id, gateway.sn, gateway.organization, self.now(), command, args,
                                            [dict(p) for p in pipes], self.status_of(gateway) == "OFFLINE")
        self.count("commands")
        return Response.json({"commandId": str(command_id) if self.alternative else command_id})

    def command_result(self, req: Request) -> Response:
        gateway = self._gateway(req)
        raw = req.params["commandId"]
        match = re.fullmatch(r"(?:cmd-)?([0-9]{1,19})", raw)
        if not match:
            raise Refused("Incorrect or missing commandId", 400)
        command = self.commands.get(int(match[1]))
        now = self.now()
        pending = command is not None and (self.fault("command_stays_pending")
                                           or now - command.created < COMMAND_RUN_SECONDS)
        if (command is None or command.sn != gateway.sn
                or (not pending and now > command.created + COMMAND_RUN_SECONDS + COMMAND_KEPT_SECONDS)):
            if self.fault("unknown_command_200"):
                return Response.json({"sn": gateway.sn, "commandId": match[1], "status": "PENDING", "result": ""})
            raise Refused("CommandId does not exist or has expired", 404)
        answer = {"sn": gateway.sn, "commandId": str(command.id)}
        if pending:
            return Response.json({**answer, "status": "PENDING", "result": ""})
        if command.offline:
            return Response.json({**answer, "status": "FAILED", "result": "gateway offline"})
        lines = netstat_lines(gateway, command.args)
        try:
            for pipe in command.pipes:
                lines = run_pipe(lines, pipe["command"], pipe.get("args", ""))
        except ValueError as exc:
            return Response.json({**answer, "status": "FAILED", "result": str(exc)})
        return Response.json({**answer, "status": "SUCCESS", "result": "\n".join(lines) + ("\n" if lines else "")})

    def reboot(self, req: Request) -> Response:
        gateway = self._gateway(req)
        if self.status_of(gateway) == "OFFLINE":
            raise Refused("Gateway offline or unable to receive command", 500)
        gateway.booted = self.wall() + 45  # back up in 45 s; its uptime counts from then
        self.count("reboots")
        return self._no_content()

    def reset_password(self, req: Request) -> Response:
        self._gateway(req)
        password = self._object(req).get("password")
        if not isinstance(password, str) or not password:
            raise self._invalid("password is required")
        # the password is pushed to the gateway; the cloud keeps no copy
        self.count("passwordResets")
        return self._no_content()

    def upgrade(self, req: Request) -> Response:
        gateway = self._gateway(req)
        version = self._object(req).get("version")
        if not isinstance(version, str) or not re.fullmatch(r"\d{1,3}\.\d{1,3}\.\d{1,3}", version):
            raise self._invalid('version must be a firmware version like "2.2.13"')
        gateway.firmware = version
        self.count("upgrades")
        return self._no_content()

    # -- network and syslog settings ---------------------------------------------------------------

    def get_priority(self, req: Request) -> Response:
        gateway = self._gateway(req)
        return Response.json({"sn": gateway.sn, "priority": gateway.priority})

    def set_priority(self, req: Request) -> Response:
        gateway = self._gateway(req)
        priority = self._object(req).get("priority")
        if priority not in PRIORITIES:
            raise self._invalid("priority must order ETH, CELLULAR and WIFI, e.g. ETH_CELLULAR_WIFI")
        gateway.priority = priority
        self.count("settingsWritten")
        return self._no_content()

    def get_lan(self, req: Request) -> Response:
        gateway = self._gateway(req)
        return Response.json({"sn": gateway.sn, "ethernet": dict(gateway.lan["ethernet"]),
                              "wifi": dict(gateway.lan["wifi"])})

    def set_lan(self, req: Request) -> Response:
        gateway = self._gateway(req)
        body = self._object(req)
        ethernet = None
        if "ethernet" in body:
            if not self.fault("ethernet_lan_change_applied"):
                raise self._invalid("Ethernet LAN configuration changes are restricted")
            ethernet = body["ethernet"]
            if not isinstance(ethernet, dict) or not isinstance(ethernet.get("enabled"), bool):
                raise self._invalid("ethernet.enabled must be a boolean")
        unknown = set(body) - {"wifi", "ethernet", "sn"}
        if unknown:
            raise self._invalid(f"unknown field {sorted(unknown)[0]}")
        wifi = body.get("wifi")
        if wifi is None and ethernet is None:
            raise self._invalid("wifi is required")
        merged = dict(gateway.lan["wifi"])
        if wifi is not None:
            merged.update(self._check_lan_wifi(wifi, merged))
        gateway.lan["wifi"] = merged
        if ethernet is not None:
            gateway.lan["ethernet"] = {"enabled": ethernet["enabled"]}
        self.count("settingsWritten")
        return self._no_content()

    def _check_lan_wifi(self, wifi: Any, current: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(wifi, dict):
            raise self._invalid("wifi must be an object")
        unknown = set(wifi) - {"enabled", "ssid", "encryption", "key", "channel", "hidden"}
        if unknown:
            raise self._invalid(f"unknown field wifi.{sorted(unknown)[0]}")
        for key in ("enabled", "hidden"):
            if key in wifi and not isinstance(wifi[key], bool):
                raise self._invalid(f"wifi.{key} must be a boolean")
        if "ssid" in wifi and (not isinstance(wifi["ssid"], str) or not 1 <= len(wifi["ssid"]) <= 32):
            raise self._invalid("wifi.ssid must have 1 to 32 characters")
        if "encryption" in wifi and wifi["encryption"] not in ENCRYPTIONS:
            raise self._invalid(f"wifi.encryption must be one of {' / '.join(ENCRYPTIONS)}")
        if "channel" in wifi and (not isinstance(wifi["channel"], str)
                                  or not re.fullmatch(r"Auto|\d{4}MHz|\d{1,3}", wifi["channel"])):
            raise self._invalid('wifi.channel must be "Auto" or a frequency like "2412MHz"')
        if "key" in wifi and not isinstance(wifi["key"], str):
            raise self._invalid("wifi.key must be a string")
        encryption = wifi.get("encryption", current.get("encryption"))
        key = wifi.get("key", current.get("key", ""))
        if (encryption != "NONE" and not 8 <= len(key) <= 63 and not self.fault("wifi_key_length_unchecked")):
            raise self._invalid("wifi.key must have 8 to 63 characters")
        if key and not key.isprintable():
            raise self._invalid("wifi.key must be letters, digits and symbols")
        return dict(wifi)

    def get_wan(self, req: Request) -> Response:
        gateway = self._gateway(req)
        return Response.json(json.loads(json.dumps(gateway.wan)))

    def set_wan(self, req: Request) -> Response:
        gateway = self._gateway(req)
        body = {key: value for key, value in self._object(req).items() if key != "sn"}
        unknown = set(body) - {"ethernet", "wifi", "cellular"}
        if unknown:
            raise self._invalid(f"unknown interface {sorted(unknown)[0]}")
        if not body:
            raise self._invalid("give at least one of ethernet, wifi, cellular")
        for name, config in body.items():
            self._check_wan(name, config)
        for name, config in body.items():
            gateway.wan[name] = json.loads(json.dumps(config))
        self.count("settingsWritten")
        return self._no_content()

    def _check_wan(self, name: str, config: Any) -> None:
        if not isinstance(config, dict):
            raise self._invalid(f"{name} must be an object")
        if not isinstance(config.get("enabled"), bool):
            raise self._invalid(f"{name}.enabled must be a boolean")
        if "tracking" in config:
            self._check_tracking(name, config["tracking"])
        if name == "cellular":
            for key in ("apn", "username", "password", "pinCode"):
                if key in config and not isinstance(config[key], str):
                    raise self._invalid(f"cellular.{key} must be a string")
            if config.get("pinCode") and not re.fullmatch(r"\d{4,8}", config["pinCode"]):
                raise self._invalid("cellular.pinCode must be 4 to 8 digits")
            return
        protocols = ("dhcp", "static", "pppoe") if name == "ethernet" else ("dhcp", "static")
        protocol = config.get("protocol")
        if protocol is None and not config["enabled"]:
            return
        if protocol not in protocols:
            raise self._invalid(f"{name}.protocol must be one of {' / '.join(protocols)}")
        for key in ("staticAddress", "dhcpClient", "pppoe"):
            if key in config and not isinstance(config[key], dict):
                raise self._invalid(f"{name}.{key} must be an object")
        if protocol == "dhcp" and not isinstance(config.get("dhcpClient"), dict):  # "Required when protocol is dhcp"
            raise self._invalid(f"{name}.dhcpClient is required when protocol is dhcp")
        if protocol == "static" and not config.get("staticAddress"):
            raise self._invalid(f"{name}.staticAddress is required when protocol is static")
        if protocol == "pppoe" and not config.get("pppoe"):
            raise self._invalid(f"{name}.pppoe is required when protocol is pppoe")
        if name == "wifi":
            for key in ("ssid", "encryption", "key"):
                if key in config and not isinstance(config[key], str):
                    raise self._invalid(f"wifi.{key} must be a string")

    def _check_tracking(self, name: str, tracking: Any) -> None:
        if not isinstance(tracking, dict):
            raise self._invalid(f"{name}.tracking must be an object")
        targets = tracking.get("trackTargets", [])
        if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
            raise self._invalid(f"{name}.tracking.trackTargets must be a list of hosts")
        for key in ("reliability", "pingCount", "pingInterval", "pingTimeout", "interfaceDown", "interfaceUp"):
            value = tracking.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise self._invalid(f"{name}.tracking.{key} must be a non-negative integer")

    def get_syslog(self, req: Request) -> Response:
        gateway = self._gateway(req)
        return Response.json({"sn": gateway.sn, **json.loads(json.dumps(gateway.syslog))})

    def set_syslog(self, req: Request) -> Response:
        gateway = self._gateway(req)
        body = {key: value for key, value in self._object(req).items() if key != "sn"}
        known = {"shareLogs", "logsRotationCycle", "wisdmLogsRetrievalCycle", "wisdmLogsRotationCycle",
                 "externalLogServer"}
        unknown = set(body) - known
        if unknown:
            raise self._invalid(f"unknown field {sorted(unknown)[0]}")
        if not body:
            raise self._invalid("nothing to set")
        share = body.get("shareLogs", gateway.syslog["shareLogs"])
        if share not in SHARE_LOGS:
            raise self._invalid(f"shareLogs must be one of {' / '.join(SHARE_LOGS)}")
        for key in ("logsRotationCycle", "wisdmLogsRetrievalCycle", "wisdmLogsRotationCycle"):
            value = body.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
                raise self._invalid(f"{key} must be a positive integer")
        server = body.get("externalLogServer")
        if server is not None:
            if not isinstance(server, dict):
                raise self._invalid("externalLogServer must be an object {ip, port}")
            try:
                ipaddress.IPv4Address(server.get("ip"))
            except (ValueError, TypeError):
                raise self._invalid("externalLogServer.ip must be an IPv4 address") from None
            port = server.get("port")
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise self._invalid("externalLogServer.port must be an integer from 1 to 65535")
        elif share in ("external", "externalAndWisdm"):
            raise self._invalid("externalLogServer is required when shareLogs includes external")
        gateway.syslog.update(json.loads(json.dumps(body)))
        self.count("settingsWritten")
        return self._no_content()

    def syslog_download(self, req: Request) -> Response:
        gateway = self._gateway(req)
        now = self.wall()
        raw_end, raw_start = self._query(req, "endDate"), self._query(req, "startDate")
        end = parse_iso(raw_end) if raw_end is not None else float(int(now))
        start = parse_iso(raw_start) if raw_start is not None else (end - 7 * 86400 if end is not None else None)
        if end is None or start is None:
            raise self._invalid("startDate and endDate must be ISO-8601 UTC timestamps like 2025-12-01T00:00:00Z")
        if start > end:
            raise self._invalid("startDate must not be after endDate")
        raw_max = self._query(req, "maxFiles")
        if raw_max is None:
            max_files = 20
        else:
            try:
                max_files = int(raw_max)
            except ValueError:
                raise self._invalid("maxFiles must be an integer from 1 to 200") from None
            if not 1 <= max_files <= 200 and not self.fault("max_files_unchecked"):
                raise self._invalid("maxFiles must be an integer from 1 to 200")
        files = [f for f in self._log_files(gateway, now) if start <= f[1] <= end]
        files.sort(key=lambda f: f[1], reverse=True)
        shown = files if self.fault("more_files_than_max_files") else files[:max(max_files, 0)]
        expires = int(now) + URL_SECONDS
        entries = [{"key": key, "sizeBytes": size, "lastModified": iso(modified),
                    "downloadUrl": self._presigned(key, expires), "expiresAt": iso(expires)}
                   for key, modified, size in shown]
        return Response.json({"sn": gateway.sn, "startDate": raw_start if raw_start is not None else iso(start),
                              "endDate": raw_end if raw_end is not None else iso(end), "totalFiles": len(files),
                              "files": entries})

    def _log_files(self, gateway: Gateway, now: float) -> list[tuple[str, float, int]]:
        """(key, lastModified, size) of the retained daily files."""
        if self.status_of(gateway) == "PROVISIONING":
            return []
        last = min(now, self._reported_at(gateway))
        retention = gateway.syslog.get("wisdmLogsRotationCycle", 30)
        today = int(last // 86400)
        first = max(today - retention + 1, int(gateway.first_seen // 86400) + 1)
        files = []
        for day in range(first, today + 1):
            modified = min(day * 86400 + 23 * 3600 + 600, math.floor(last / 600) * 600)
            stamp = time.strftime("%Y-%m-%d", time.gmtime(day * 86400))
            key = f"logs/{gateway.sn}/{stamp}/syslog.txt.gz"
            files.append((key, float(modified), 40000 + _hash("size", key) % 180000))
        return files

    def _presigned(self, key: str, expires: int) -> str:
        signature = hmac.new(self.url_secret, f"{key}|{expires}".encode(), hashlib.sha256).hexdigest()
        signed = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(expires - URL_SECONDS))
        return (f"https://example.invalid/wisdm-syslog/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                f"&X-Amz-Expires={URL_SECONDS}&X-Amz-Date={signed}&X-Amz-Signature={signature}")

    # -- emulator-only controls --------------------------------------------------------------------

    def device_controls(self) -> dict[tuple[str, str], Callable[[Any], Any]]:
        return {("GET", "fixtures"): lambda payload: self.fixtures(),
                ("GET", "keys"): lambda payload: self._keys_view()}

    def fixtures(self) -> dict[str, Any]:
        return {
            "organizations": [{"id": org, "name": name} for org, name in ORGANIZATIONS.items()],
            "locations": [{"id": loc.id, "organizationId": loc.organization, "name": loc.name,
                           "workMode": loc.work_mode, "authenticationMode": loc.auth_mode}
                          for loc in sorted(self.locations.values(), key=lambda loc: loc.order)],
            "unassigned": [{"sn": g.sn, "eui": g.eui, "organizationId": g.organization, "provisioned": g.provisioned}
                           for g in sorted(self.gateways.values(), key=lambda g: g.order) if g.location is None],
        }

    def _keys_view(self) -> list[dict[str, Any]]:
        view = []
        for key, organization in self.keys:
            entry = {"name": key.name, "access": key.access, "permissions": list(key.permissions),
                     "organizationId": organization, "locations": list(key.locations), "expired": key.expired}
            if self.generated_keys:
                entry["key"] = key.key
            view.append(entry)
        return view


def wants_gzip(accept: str | None) -> bool:
    """Does an Accept-Encoding value accept gzip (RFC 9110 12.5.3: gzip, x-gzip or *, q > 0)?"""
    if not accept:
        return False
    weights: dict[str, float] = {}
    for item in accept.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding:
            weights[coding.lower()] = q
    for coding in ("gzip", "x-gzip"):
        if coding in weights:
            return weights[coding] > 0
    return weights.get("*", 0.0) > 0


# the fleet's serial numbers, MACs and EUIs are unique (checked once at import)
_ALL = [serial_number(m, s) for m, s, *_ in FLEET + UNASSIGNED]
assert len(set(_ALL)) == len(_ALL) and len({_hash("mac", sn) % (1 << 24) for sn in _ALL}) == len(_ALL)
