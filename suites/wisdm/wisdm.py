"""What the WisDM checks share: the target's keys and what each one sees (its organization, locations,
gateways), requests built from the schema for a key's own objects, commands, settings put back, ids that
exist nowhere, and the line between the document (a FAIL) and this project's reading (a NOTICE on a real
cloud, see DeviceUnderTest.reading).

The organization of a key is never declared: it is found with GET /v4/organization sent with that key,
and its locations and gateways through the listings sent with it (a location-restricted key sees only
its locations). What one check found is kept for the target's other checks (a `Scope` per key).

What the page leaves open, and the suites therefore only read (never fail a cloud for): the error body
(NOTES.md: "No error body format is published"), the answer to another organization's object and to an
unknown one (404 "Resource Not Found" by the reading; that both are the same is checked), the status of a
refusal where a section has no error table (the listings, statuses, perf, WAN read, syslog), how
`nextToken` is passed back (the query parameter `nextToken`), the field that holds a command's state
(`status`), the forms of a perf `interval`, the 404 of password for an unknown serial number.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import itertools
import re
import secrets as pysecrets
import time
import uuid
from dataclasses import dataclass, field

from conformlab import scoped_keys, secrets
from conformlab.auth import HeaderKeyAuth
from conformlab.checks import answer
from conformlab.dut import DeviceUnderTest, RestoreError
from conformlab.profiles import WISDM_KEY_HEADER
from conformlab.schema import Operation, device_schema
from conformlab.verdicts import not_applicable, requirement

SCHEMA = device_schema("wisdm")
OPS = SCHEMA.operations
PREFIX = "/v4"
# Objects created through the API cannot be deleted through it: their names say who made them and when.
RUN_TIME = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
_serial = itertools.count(1)

GATEWAY_STATES = ("ONLINE", "OFFLINE", "PROVISIONING")  # "status | string | ONLINE / OFFLINE / PROVISIONING"
COMMAND_STATES = ("PENDING", "SUCCESS", "FAILED")
DONE_STATES = ("SUCCESS", "FAILED")
# The six orders of ETH, CELLULAR and WIFI (the page: "combinations such as ETH_CELLULAR_WIFI, ...").
PRIORITIES = ("ETH_CELLULAR_WIFI", "ETH_WIFI_CELLULAR", "CELLULAR_ETH_WIFI", "CELLULAR_WIFI_ETH",
              "WIFI_ETH_CELLULAR", "WIFI_CELLULAR_ETH")
# A diagnostic command the page names ("such as netstat"), bounded by its own timeout (seconds).
COMMAND_TIMEOUT = 10
NETSTAT = {"command": "netstat", "args": "-an", "timeout": COMMAND_TIMEOUT}
# How the command checks poll: every POLL_INTERVAL seconds for at most the command's timeout plus
# POLL_GRACE ("FAILED: Execution failed or timed out": after its timeout a command is no longer PENDING).
POLL_INTERVAL = 0.25
POLL_GRACE = 20.0
POLL_LIMIT = COMMAND_TIMEOUT + POLL_GRACE
# Emulator counters of what a request did once past authorization (context of issue 12).
EFFECT_COUNTERS = ("reboots", "passwordResets", "upgrades", "batteryMonitoring", "locationsCreated",
                   "gatewaysRegistered", "commands", "settingsWritten")

# The settings a gateway reads and writes on the same path (x-conformlab reads: the GET of the same path).
PRIORITY = "/gateway/{sn}/network/priority"
LAN = "/gateway/{sn}/network/lan"
WAN = "/gateway/{sn}/network/wan"
SYSLOG = "/gateway/{sn}/syslog"
SETTINGS = (PRIORITY, LAN, WAN, SYSLOG)
SETTING_NAMES = {PRIORITY: "priority", LAN: "lan", WAN: "wan", SYSLOG: "syslog"}
# Operations that act on a gateway in the field (an ONLINE one, kept apart from the one whose settings
# the checks read and write back).
ACTIONS = ("/gateway/{sn}/reboot", "/gateway/{sn}/password", "/gateway/{sn}/upgrade")

# The requirement of each operation's documented success answer.
OP_REQUIREMENT = {
    "GET /version": "WISDM-VERSION",
    "GET /organization": "WISDM-ORG-INFO",
    "GET /organization/{organizationId}/locations": "WISDM-LOC-LIST",
    "POST /organization/{organizationId}/locations": "WISDM-LOC-CREATE",
    "GET /location/{locationId}/gateways": "WISDM-GW-LIST",
    "POST /location/{locationId}/gateways": "WISDM-GW-REGISTER",
    "GET /location/{locationId}/gateways/status": "WISDM-LOC-STATUS",
    "GET /location/{locationId}/gateways/battery": "WISDM-LOC-BATTERY",
    "GET /gateway/{sn}/status": "WISDM-GW-STATUS",
    "GET /gateway/{sn}/perf/{metric}": "WISDM-GW-PERF",
    "GET /gateway/{sn}/battery": "WISDM-GW-BATTERY",
    "POST /gateway/{sn}/battery": "WISDM-BATTERY-MON",
    "POST /gateway/{sn}/async-cmd": "WISDM-CMD-ID",
    "GET /gateway/{sn}/async-cmd/{commandId}": "WISDM-CMD-STATES",
    "POST /gateway/{sn}/reboot": "WISDM-REBOOT",
    "POST /gateway/{sn}/password": "WISDM-PASSWORD",
    "POST /gateway/{sn}/upgrade": "WISDM-UPGRADE",
    "GET /gateway/{sn}/network/priority": "WISDM-PRIORITY",
    "POST /gateway/{sn}/network/priority": "WISDM-PRIORITY",
    "GET /gateway/{sn}/network/lan": "WISDM-LAN",
    "POST /gateway/{sn}/network/lan": "WISDM-LAN",
    "GET /gateway/{sn}/network/wan": "WISDM-WAN",
    "POST /gateway/{sn}/network/wan": "WISDM-WAN",
    "GET /gateway/{sn}/syslog": "WISDM-SYSLOG",
    "POST /gateway/{sn}/syslog": "WISDM-SYSLOG",
    "GET /gateway/{sn}/syslog/download": "WISDM-SYSLOG-DOWNLOAD",
}


def operation(method: str, path: str) -> Operation:
    return SCHEMA.operation(method, path)


def requirement_of(op: Operation) -> str:
    return OP_REQUIREMENT.get(op.key, "WISDM-ANSWERS")


def success_status(op: Operation) -> int:
    """The documented success answer: 201 for the two creations ("returning a 201 Created response";
    location creation also declares 200, the page giving it no status), 204 where the page's example is
    "204 No Content", else 200 with a body."""
    for status in ("201", "204", "200"):
        if status in op.statuses:
            return int(status)
    return 200


# -- keys ---------------------------------------------------------------------------------------------


def keys(device: DeviceUnderTest) -> tuple[scoped_keys.ScopedKey, ...]:
    return scoped_keys.keys_of(device.credentials)


def usable_keys(device: DeviceUnderTest) -> list[scoped_keys.ScopedKey]:
    return [key for key in keys(device) if not key.expired]


def run_key(device: DeviceUnderTest) -> scoped_keys.ScopedKey:
    key = scoped_keys.run_key(device.credentials)
    if key is None:
        not_applicable("the target has no key that works")
    return key


def auth_of(key: scoped_keys.ScopedKey) -> HeaderKeyAuth:
    return HeaderKeyAuth(WISDM_KEY_HEADER, key.key)


RUN = object()  # "the run's own key": what a request without auth= is sent with


def key_presented(device: DeviceUnderTest, auth) -> scoped_keys.ScopedKey | None:
    """The target's working key an `auth=` presents (no auth given: the run's key), or None (no key,
    one the cloud does not know, an expired one, a near miss)."""
    if auth is RUN:
        return run_key(device)
    if isinstance(auth, HeaderKeyAuth):
        return next((key for key in usable_keys(device) if key.key == auth.key), None)
    return None



# -- requests -----------------------------------------------------------------------------------------


def call(device: DeviceUnderTest, method: str, path: str, *, key: scoped_keys.ScopedKey | None = None, **kw):
    """Send a request of the documented API, with `key` (default: the run's key; kw may carry auth=)."""
    if key is not None and "auth" not in kw:
        kw["auth"] = auth_of(key)
    if method == "GET":
        kw.pop("json", None)
        return device.client.get(path, **kw)
    return device.client.request(method, path, **kw)


def json_of(response):
    try:
        return response.json() if response.content.strip() else None
    except ValueError:
        return None


def body_of(device: DeviceUnderTest, response, what: str, status: int = 200):
    """The JSON object of an answer that must be `status` (a failure that shows the answer otherwise)."""
    assert response.status_code == status, f"{what}: expected {status}, got {answer(response)}"
    body = json_of(response)
    assert isinstance(body, dict), f"{what}: the answer is not a JSON object: {answer(response)}"
    return body


def conforms(device: DeviceUnderTest, op: Operation, response) -> None:
    """The answer matches the schema (the document's constraints everywhere, the reading's on the
    bundled emulator): WISDM-ANSWERS."""
    with requirement("WISDM-ANSWERS"):
        problems = device.check_answer(op, response)
        assert not problems, "; ".join(problems[:5])


def judged_as(response, status: int):
    """A copy of `response` with another status: to judge a body by the schema of the answer the reading
    expects, where the document leaves the status open (a location created with 200)."""
    other = copy.copy(response)
    other.status_code = status
    return other


def location_creation_served(device: DeviceUnderTest, response, why: str):
    """A location creation served: any 2xx (its section shows the created location, not a status); 201
    Created is this project's reading ("201 Created" is said of registration). Returns the answer to
    judge by the schema: as if it were 201."""
    assert 200 <= response.status_code < 300, f"{why}: {answer(response)}"
    device.reading(response.status_code == 201, f"{why}: answered {response.status_code}; the reading expects "
                                                 "201 Created (the section gives no status)")
    return judged_as(response, 201)


# -- what each key sees -------------------------------------------------------------------------------


@dataclass
class Scope:
    """What one key sees: its organization (GET /organization), its locations and their gateways."""

    key: scoped_keys.ScopedKey
    organization: dict
    locations: list[dict]
    gateways: dict[str, list[dict]] = field(default_factory=dict)  # location id -> its gateways (as listed)
    chosen: dict[str, tuple[str, str]] = field(default_factory=dict)  # role -> (location id, sn)

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def org_id(self) -> str:
        return self.organization["id"]

    def can(self, *grants: str) -> bool:
        return set(grants) <= set(self.key.grants)


def _state(device: DeviceUnderTest) -> dict:
    state = getattr(device, "_wisdm_state", None)
    if state is None:
        state = {"scopes": {}, "registered": set(), "created": [], "fixtures": None}
        device._wisdm_state = state
    return state


def scope(device: DeviceUnderTest, key: scoped_keys.ScopedKey | None = None) -> Scope:
    """What `key` (default: the run's key) sees, found once per target."""
    key = key or run_key(device)
    found = _state(device)["scopes"].get(key.name)
    if found is not None:
        return found
    what = f"GET {PREFIX}/organization with the key {key.name}"
    with requirement("WISDM-ORG-INFO"):
        org = body_of(device, call(device, "GET", "/organization", key=key), what)
        assert isinstance(org.get("id"), str) and org["id"], f"{what}: no organization id: {org}"
    listing = call(device, "GET", f"/organization/{org['id']}/locations", key=key)
    with requirement("WISDM-LOC-LIST"):
        body = body_of(device, listing, f"GET {PREFIX}/organization/{{its id}}/locations with the key {key.name}")
    locations = [loc for loc in body.get("locations") or [] if isinstance(loc, dict) and isinstance(loc.get("id"), str)]
    found = Scope(key, org, locations)
    _state(device)["scopes"][key.name] = found
    return found


def run_scope(device: DeviceUnderTest) -> Scope:
    return scope(device)


def scopes(device: DeviceUnderTest) -> list[Scope]:
    return [scope(device, key) for key in usable_keys(device)]


def organizations(device: DeviceUnderTest) -> dict[str, list[Scope]]:
    """organization id -> the scopes of the target's working keys in it."""
    found: dict[str, list[Scope]] = {}
    for each in scopes(device):
        found.setdefault(each.org_id, []).append(each)
    return found


def gateways(device: DeviceUnderTest, of: Scope, location_id: str, fresh: bool = False) -> list[dict]:
    """The gateways of a location as `of`'s key lists them (none where it may not list them)."""
    if fresh or location_id not in of.gateways:
        response = call(device, "GET", f"/location/{location_id}/gateways", key=of.key)
        body = json_of(response) if response.status_code == 200 else None
        listed = body.get("gateways") if isinstance(body, dict) else None
        of.gateways[location_id] = [gw for gw in listed or [] if isinstance(gw, dict) and isinstance(gw.get("sn"), str)]
    return of.gateways[location_id]


def all_gateways(device: DeviceUnderTest, of: Scope, fresh: bool = False) -> list[tuple[str, dict]]:
    return [(loc["id"], gw) for loc in of.locations for gw in gateways(device, of, loc["id"], fresh)]


def status_now(device: DeviceUnderTest, of: Scope, sn: str) -> str | None:
    response = call(device, "GET", f"/gateway/{sn}/status", key=of.key)
    body = json_of(response) if response.status_code == 200 else None
    return body.get("status") if isinstance(body, dict) else None


def gateway(device: DeviceUnderTest, of: Scope, role: str = "settings", status: str = "ONLINE") -> tuple[str, str]:
    """(location id, sn) of a gateway `of` sees in `status` (checked now): the one whose settings the
    checks read and write back ("settings"), another for actions in the field ("action": reboot,
    password, firmware), or any in that status ("offline" ...). Kept for the target's other checks."""
    chosen = of.chosen.get(role)
    if chosen is not None and status_now(device, of, chosen[1]) == status:
        return chosen
    candidates = [(loc, gw["sn"]) for loc, gw in all_gateways(device, of) if gw.get("status") == status]
    if role == "action":  # apart from the settings gateway where there are two
        settings = of.chosen.get("settings")
        candidates = [c for c in reversed(candidates) if c != settings] + ([settings] if settings in candidates else [])
    for loc, sn in candidates:
        if status_now(device, of, sn) == status:
            of.chosen[role] = (loc, sn)
            return loc, sn
    not_applicable(f"no {status} gateway is visible to the key {of.name}")


def busiest_location(device: DeviceUnderTest, of: Scope) -> tuple[str, list[dict]]:
    """The location of `of` with the most gateways (several pages need several gateways)."""
    best = max(of.locations, key=lambda loc: len(gateways(device, of, loc["id"])), default=None)
    if best is None or not gateways(device, of, best["id"]):
        not_applicable(f"the key {of.name} sees no location with gateways")
    return best["id"], gateways(device, of, best["id"], fresh=True)


def writer(device: DeviceUnderTest, *grants: str, org: str | None = None) -> scoped_keys.ScopedKey:
    """A working key holding `grants` (the run's key first, then unrestricted keys, then any), of
    organization `org` (default: the run key's)."""
    org = org or run_scope(device).org_id
    ordered = [run_key(device)] + sorted(usable_keys(device), key=lambda k: bool(k.locations))
    for key in ordered:
        if set(grants) <= set(key.grants) and scope(device, key).org_id == org:
            return key
    not_applicable(f"no key of the organization holds {' and '.join(grants)}")


# -- the emulator's fixtures (what the API does not tell) ----------------------------------------------


def fixtures(device: DeviceUnderTest) -> dict:
    device.require_emulator("which location is not in Basics Station mode and which gateways can be registered "
                            "are not told by the API")
    state = _state(device)
    if state["fixtures"] is None:
        state["fixtures"] = device.control("fixtures")
    return state["fixtures"]


def fixture_location(device: DeviceUnderTest, org: str, *, basics: bool = True, mode: str | None = None) -> dict:
    for loc in fixtures(device).get("locations", []):
        if loc.get("organizationId") != org:
            continue
        if (loc.get("workMode") == "Basics station") != basics:
            continue
        if mode is not None and loc.get("authenticationMode") != mode:
            continue
        return loc
    not_applicable(f"the emulator has no {'Basics Station' if basics else 'non-Basics-Station'} location"
                   f"{' with ' + mode if mode else ''} in the organization")


def registration_location(device: DeviceUnderTest, org: str) -> dict:
    """A Basics Station location of `org` to register gateways to (TLS Server Authentication if there is
    one: it needs no gateway credentials)."""
    basics = [loc for loc in fixtures(device).get("locations", [])
              if loc.get("organizationId") == org and loc.get("workMode") == "Basics station"]
    basics.sort(key=lambda loc: loc.get("authenticationMode") != "TLS Server Authentication")
    if not basics:
        not_applicable("the emulator has no Basics Station location in the organization")
    return basics[0]


def registrable(device: DeviceUnderTest, org: str, *, provisioned: bool = True, of: Scope | None = None) -> dict:
    """An unassigned gateway of organization `org` (factory-provisioned or not) that this run has not
    registered and that no location of `of` lists now."""
    listed = set()
    if of is not None:
        listed = {gw["sn"] for loc in of.locations for gw in gateways(device, of, loc["id"], fresh=True)}
    used = _state(device)["registered"]
    for gw in fixtures(device).get("unassigned", []):
        if gw.get("organizationId") == org and bool(gw.get("provisioned")) == provisioned \
                and gw["sn"] not in used and gw["sn"] not in listed:
            return gw
    not_applicable(f"the emulator has no {'factory-provisioned' if provisioned else 'unprovisioned'} unassigned "
                   "gateway of the organization left to register")


def register_body(gw: dict, mode: str | None = None, *, credentials: bool = True) -> dict:
    """A registration of `gw` into a location of authentication `mode`: the TLS client certificate and
    key, or the token, that the mode requires when bsHasLocalAuthSuite is false (left out with
    credentials=False)."""
    body = {"sn": gw["sn"], "eui": gw["eui"], "name": f"conformlab-{RUN_TIME}-{gw['sn'][-6:]}", "bsHasLocalAuthSuite": False}
    if credentials and mode == "TLS Server and Client Authentication":
        body["bsClientCertificate"] = "-----BEGIN CERTIFICATE-----\nY29uZm9ybWxhYiB0ZXN0\n-----END CERTIFICATE-----"
        body["bsClientKey"] = made_secret("-----BEGIN PRIVATE KEY-----\nconformlab-")
    if credentials and mode == "TLS Server Authentication and Client Token Authentication":
        body["bsToken"] = made_secret("conformlab-bs-token-")
    return body


def registered(device: DeviceUnderTest, sn: str, location_id: str) -> None:
    """A gateway this run registered: it stays registered (the API cannot undo it)."""
    _state(device)["registered"].add(sn)
    device.notice(f"left behind: gateway {sn} registered to location {location_id} (the API cannot undo a registration)")


def password_reset(device: DeviceUnderTest, sn: str, password: str) -> None:
    """A gateway's local root password the run set: on a real cloud the user gets it (a private file,
    never a report)."""
    if device.emulator:
        device.notice(f"left behind: the local root password of gateway {sn} was reset (emulator)")
        return
    kept = _state(device).setdefault("passwords", {})
    kept[sn] = password
    path = secrets.write_private(f"{device.target.name}-gateway-passwords",
                                 "".join(f"{gw} {value}\n" for gw, value in kept.items()))
    device.notice(f"left behind: the local root password of gateway {sn} was reset; the new one is in {path}")


def left_behind(device: DeviceUnderTest, op: Operation, response, of: Scope, built: "Built") -> None:
    """Report what a request the cloud took leaves behind (the API cannot undo it), whatever its status."""
    if op.key == "POST /organization/{organizationId}/locations":
        created_location(device, response, of.org_id)
    elif op.key == "POST /location/{locationId}/gateways":
        registered(device, built.body["sn"], built.note.get("locationId", "?"))
    elif op.key == "POST /gateway/{sn}/password":
        password_reset(device, built.note.get("sn", "?"), built.body["password"])


def made_secret(prefix: str) -> str:
    value = prefix + pysecrets.token_hex(8)
    secrets.register(value)
    return value


# -- locations ----------------------------------------------------------------------------------------


def location_name(what: str) -> str:
    """A name that says who made the location and when (4 to 50 characters)."""
    return f"conformlab-{RUN_TIME}-{next(_serial)}-{what}"[:50]


def location_body(name: str, **changes) -> dict:
    body = {
        "name": name,
        "workMode": "Basics station",
        "enableCriticalFwAutoUpdate": False,
        "basicStation": {"serverType": "LNS", "serverURL": "https://lns.conformlab.invalid", "serverPort": 443,
                         "authenticationMode": "TLS Server Authentication", "useIndividualKeys": True},
        "advancedFrequencySettings": {"region": "EU868", "regionVariation": "default", "isLoRaWANPublic": True,
                                      "frequencySubBand": "G1"},
        "channelsNumber": 8,
    }
    for dotted, value in changes.items():
        holder = body
        parts = dotted.split(".")
        for part in parts[:-1]:
            holder = holder[part]
        holder[parts[-1]] = value
    return body


def created_location(device: DeviceUnderTest, response, org: str) -> None:
    """Report a location the run created: it stays (the API cannot delete it)."""
    body = json_of(response) or {}
    name = body.get("name") if isinstance(body, dict) else None
    where = body.get("locationId") if isinstance(body, dict) else None
    _state(device)["created"].append(where)
    device.notice(f"left behind: location {name!r} ({where}) in organization {org} (the API cannot delete a location)")


# -- requests of an operation for a key's own objects -------------------------------------------------


def now_iso(delta: dt.timedelta = dt.timedelta()) -> str:
    return (dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def download_params(max_files: int | None = 5) -> dict:
    params = {"startDate": now_iso(-dt.timedelta(days=30)), "endDate": now_iso()}
    if max_files is not None:
        params["maxFiles"] = max_files
    return params


def query_of(op: Operation) -> dict:
    if op.path == "/gateway/{sn}/perf/{metric}":
        return {"interval": "12h"}
    if op.path == "/gateway/{sn}/syslog/download":
        return download_params()
    return {}


@dataclass
class Built:
    path: str
    params: dict
    body: object = None
    has_body: bool = False
    note: dict = field(default_factory=dict)  # what the request acts on (for the report and effects)


def gateway_for(device: DeviceUnderTest, op: Operation, of: Scope) -> tuple[str, str]:
    return gateway(device, of, "action" if op.path in ACTIONS else "settings")


def build(device: DeviceUnderTest, op: Operation, of: Scope, *, changing: bool = False) -> Built:
    """A request of `op` on `of`'s own objects: harmless where it can be (a setting written as read, a
    netstat), or with changing=True one whose effect would show (a setting changed). Destructive
    operations get the real thing (a location, a registration, a reboot ...): they run only where the
    target allows them."""
    values: dict[str, str] = {}
    note: dict = {}
    if "{organizationId}" in op.path:
        values["organizationId"] = of.org_id
    if "{locationId}" in op.path:
        if op.key == "POST /location/{locationId}/gateways":
            loc = registration_location(device, of.org_id)
            values["locationId"] = loc["id"]
        else:
            values["locationId"] = busiest_location(device, of)[0]
    if "{sn}" in op.path:
        values["sn"] = gateway_for(device, op, of)[1]
    if "{metric}" in op.path:
        values["metric"] = "rssi"
    if "{commandId}" in op.path:
        values["commandId"] = str(command_for(device, of, values["sn"]))
    path = op.path.format(**values)
    note.update(values)
    body, has_body = None, op.body_kind is not None
    if op.key == "POST /organization/{organizationId}/locations":
        body = location_body(location_name("access"))
    elif op.key == "POST /location/{locationId}/gateways":
        body = register_body(registrable(device, of.org_id, of=of), loc.get("authenticationMode"))
    elif op.key == "POST /gateway/{sn}/battery":
        body = {"enabled": True}
    elif op.key == "POST /gateway/{sn}/async-cmd":
        body = dict(NETSTAT)
    elif op.key == "POST /gateway/{sn}/password":
        body = {"password": made_secret("Conformlab!")}
    elif op.key == "POST /gateway/{sn}/upgrade":
        body = {"version": "2.2.15"}
    elif op.method == "POST" and op.path in SETTINGS:
        current = read_setting(device, op.path, values["sn"], of.key)
        body = (changed_setting(op.path, current) if changing else None) or setting_body(op.path, current)
    return Built(path, query_of(op) if op.method == "GET" else {}, body, has_body, note)


def send_built(device: DeviceUnderTest, op: Operation, built: Built, **kw):
    if built.has_body:
        kw["json"] = built.body
    if built.params:
        kw["params"] = built.params
    return call(device, op.method, built.path, **kw)


# -- commands -----------------------------------------------------------------------------------------


def start_command(device: DeviceUnderTest, sn: str, key: scoped_keys.ScopedKey | None = None, body: dict | None = None):
    return call(device, "POST", f"/gateway/{sn}/async-cmd", key=key or run_key(device), json=body or dict(NETSTAT))


def command_id(response):
    body = json_of(response)
    value = body.get("commandId") if isinstance(body, dict) else None
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value) else None


def command_for(device: DeviceUnderTest, of: Scope, sn: str):
    """A fresh command on gateway `sn` that `of`'s key may read: sent by that key if it may write, else
    by another working key of its organization."""
    candidates = [of.key] + [k for k in usable_keys(device) if k.name != of.key.name]
    for key in candidates:
        if "write" not in key.grants or scope(device, key).org_id != of.org_id:
            continue
        response = start_command(device, sn, key)
        cid = command_id(response)
        if response.status_code == 200 and cid is not None:
            return cid
    not_applicable(f"no key of the organization of {of.name} could start a command on its gateway")


def command_state(body) -> str | None:
    """The command's state: the field `status` (the reading), else any top-level value naming one of
    the page's states (the page names the states but no field for them)."""
    if not isinstance(body, dict):
        return None
    if body.get("status") in COMMAND_STATES:
        return body["status"]
    for key, value in body.items():
        if key not in ("result", "sn", "commandId") and value in COMMAND_STATES:
            return value
    return None


def poll_command(device: DeviceUnderTest, sn: str, cid, key=None, *, interval: float = POLL_INTERVAL,
                 limit: float = POLL_LIMIT):
    """Poll GET .../async-cmd/{commandId} until SUCCESS or FAILED or `limit` seconds: (the last answer,
    the states seen in order, seconds taken)."""
    start = time.monotonic()
    seen: list[str] = []
    while True:
        response = call(device, "GET", f"/gateway/{sn}/async-cmd/{cid}", key=key or run_key(device))
        state = command_state(json_of(response)) if response.status_code == 200 else f"HTTP {response.status_code}"
        if not seen or seen[-1] != state:
            seen.append(str(state))
        if state in DONE_STATES or response.status_code != 200 or time.monotonic() - start >= limit:
            return response, seen, time.monotonic() - start
        time.sleep(interval)


# -- settings: read, written back, put back ----------------------------------------------------------


def read_setting(device: DeviceUnderTest, template: str, sn: str, key=None) -> dict:
    path = template.format(sn=sn)
    with requirement(requirement_of(operation("GET", template))):
        return body_of(device, call(device, "GET", path, key=key or run_key(device)), f"GET {PREFIX}{path}")


def setting_body(template: str, value: dict) -> dict:
    """The write that sets what `value` (a GET answer) holds."""
    if template == PRIORITY:
        return {"priority": value.get("priority")}
    if template == LAN:
        return {"wifi": value.get("wifi")}
    if template == WAN:
        return {name: value[name] for name in ("ethernet", "wifi", "cellular") if name in value}
    return {name: item for name, item in value.items() if name != "sn"}


def comparable(template: str, value: dict) -> dict:
    """What of a settings answer a write can change (for LAN also the Ethernet state it must not)."""
    part = setting_body(template, value)
    if template == LAN:
        part["ethernet"] = value.get("ethernet")
    return part


def changed_setting(template: str, value: dict) -> dict | None:
    """A valid write that changes one harmless value, or None."""
    body = setting_body(template, value)
    if template == PRIORITY:  # the last two swapped: the primary backhaul stays the one in use
        first, *rest = str(value.get("priority")).split("_")
        swapped = "_".join([first, *reversed(rest)])
        return {"priority": swapped} if swapped in PRIORITIES and swapped != value.get("priority") else None
    if template == LAN and isinstance(body.get("wifi"), dict):
        wifi = dict(body["wifi"])
        wifi["hidden"] = not wifi.get("hidden", False)
        return {"wifi": wifi}
    if template == WAN:
        eth = body.get("ethernet")
        tracking = eth.get("tracking") if isinstance(eth, dict) else None
        if isinstance(tracking, dict) and isinstance(tracking.get("pingCount"), int):
            changed = {**body, "ethernet": {**eth, "tracking": {**tracking, "pingCount": tracking["pingCount"] % 5 + 1}}}
            return changed
        return None
    if template == SYSLOG and isinstance(body.get("logsRotationCycle"), int):
        return {**body, "logsRotationCycle": body["logsRotationCycle"] % 30 + 1}
    return None


def put_back_setting(device: DeviceUnderTest, template: str, sn: str, before: dict, key=None) -> bool:
    """Write `before` back where the gateway no longer holds it; True if something was put back.
    RestoreError when it cannot be."""
    key = key or run_key(device)
    now = read_setting(device, template, sn, key)
    if comparable(template, now) == comparable(template, before):
        return False
    path = template.format(sn=sn)
    writes = [setting_body(template, before)]
    if template == LAN and now.get("ethernet") != before.get("ethernet"):
        writes.append({"ethernet": before.get("ethernet")})  # only a cloud that took an Ethernet change gets here
    for body in writes:
        response = call(device, "POST", path, key=key, json=body)
        if not 200 <= response.status_code < 300:
            raise RestoreError(f"could not put back {PREFIX}{path}: POST answered {answer(response)}")
    again = read_setting(device, template, sn, key)
    if comparable(template, again) != comparable(template, before):
        raise RestoreError(f"{PREFIX}{path} is not as it was after putting it back: was {comparable(template, before)}, "
                           f"now {comparable(template, again)}")
    return True


@contextlib.contextmanager
def setting_kept(device: DeviceUnderTest, template: str, sn: str, key=None):
    """Around a check that writes a setting: what it was is put back afterwards (with the run's key)."""
    before = read_setting(device, template, sn, key)
    try:
        yield before
    finally:
        put_back_setting(device, template, sn, before)


# -- ids that exist nowhere ---------------------------------------------------------------------------


def absent_uuid() -> str:
    return str(uuid.uuid4())


def absent_sn(device: DeviceUnderTest, like: str) -> str:
    """A serial number of the form of `like` (same length, digits where it has digits) that no key of
    the target sees."""
    known = {gw["sn"] for each in scopes(device) for _, gw in all_gateways(device, each)}
    for _ in range(20):
        tail = "".join(pysecrets.choice("0123456789") for _ in range(min(6, len(like))))
        candidate = like[:len(like) - len(tail)] + tail
        if candidate not in known and candidate != like:
            return candidate
    return "9" * len(like)


def absent_command_id(like) -> str:
    text = str(like)
    digits = re.sub(r"\D", "", text) or "1760413840"
    value = str((int(digits) + 987654321) % (10 ** len(digits))).zfill(len(digits))
    return text.replace(digits, value) if digits in text else value


def without(text: str, *ids: str) -> str:
    for value in ids:
        if value:
            text = text.replace(str(value), "<id>")
    return text


# -- effects ------------------------------------------------------------------------------------------


def counters(device: DeviceUnderTest) -> dict | None:
    if not device.emulator:
        return None
    found = device.control("counters")
    return {name: found.get(name, 0) for name in EFFECT_COUNTERS}


# Names of answer fields that hold a secret (a Wi-Fi `key` is one only next to an ssid or an encryption: a
# log file's `key` is its object key). Pagination tokens (nextToken, clientToken) are no secrets.
SECRET_FIELDS = ("password", "pincode", "downloadurl", "clientkey", "bsclientkey", "token", "bstoken")


def secret_fields(value, where: str = "") -> list[tuple[str, str]]:
    """(where, value) of every secret an answer carries: Wi-Fi keys (`key` next to an ssid or an
    encryption), passwords, SIM PINs, tokens, TLS client keys, pre-signed download URLs."""
    found = []
    if isinstance(value, dict):
        wifi = "ssid" in value or "encryption" in value
        for name, item in value.items():
            here = f"{where}/{name}"
            if isinstance(item, str) and item:
                lowered = name.lower()
                if (name == "key" and wifi) or lowered in SECRET_FIELDS:
                    found.append((here, item))
            else:
                found += secret_fields(item, here)
    elif isinstance(value, list):
        for number, item in enumerate(value):
            found += secret_fields(item, f"{where}/{number}")
    return found
