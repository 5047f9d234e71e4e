"""Device profiles: what the harness needs to know about a device family, as data.

A profile names the documented API prefix, the schema and suite that describe the device, how
credentials from targets.toml become a requests auth strategy, and what "the device as we found it"
means for the end-of-run check. Suites never hard-code how to authenticate.
"""

from __future__ import annotations

import datetime
import ipaddress
from secrets import token_hex
from dataclasses import dataclass, field
from typing import Callable

from requests.auth import AuthBase

from conformlab import near_miss, scoped_keys
from conformlab.firmware import FirmwareReport
from conformlab.auth import BasicAuth, BearerAuth, HeaderKeyAuth, SaltLoginSession, basic_auth, bearer_levels


@dataclass(frozen=True)
class Refusal:
    """A documented answer that turns requests away for a while, as the document prints it. A part
    the document does not give (None) is not judged."""

    status: int
    retry_after: int | None = None  # the Retry-After value, whole seconds
    body: str | None = None  # the JSON body as printed; compared parsed (spacing is free)
    content_type: str = "application/json"
    requirement: str = ""  # the requirement ID whose sentence shows this answer


@dataclass(frozen=True)
class Protection:
    """Heap-style protection: short of a resource, the device refuses new requests for a while and
    stays up. The heap scenario (load/heap.py) provokes it with concurrent requests for the largest
    documented answers while it polls the health check, then retries after the advertised delay."""

    name: str  # as the document calls it ("heap protection")
    condition: str  # when the device refuses, in the document's words
    refusal: Refusal
    large_paths: Callable[[datetime.date], tuple[str, ...]]  # GETs of the largest answers, from today (UTC)
    health_path: str  # the documented health check, polled throughout the load
    health_open: bool = False  # the health check needs no credentials
    requirement: str = ""  # the sentence that the device stays up and a retry succeeds


@dataclass(frozen=True)
class RateBudget:
    """The device's documented request budget: `requests` per `seconds`, device-wide (every client
    shares it). The client paces every check under it; the load scenarios (conformlab.load) spend it
    on purpose and judge the answers over it. A device without one gets no load checks."""

    requests: int
    seconds: float
    requirement: str = ""  # the sentence that states the budget
    shared_requirement: str = ""  # the sentence that every client shares it
    over_limit: Refusal | None = None  # the documented answer over the budget
    retry_requirement: str = ""  # the sentence that a client that waits Retry-After is served again
    path: str = ""  # the rate scenario's request: a cheap documented GET the budget covers
    level: str | None = None  # the access level (auth_levels) the scenarios send with; None: make_auth
    protection: Protection | None = None


@dataclass(frozen=True)
class Identity:
    """How a device shows what it is: a documented GET that answers a JSON object with these keys
    (the document's version or info endpoint). Only the keys: the answer's values and the rest of
    its shape are the suites' to judge, where a wrong one is a failure, not "another device"."""

    path: str
    keys: tuple[str, ...]


# -- the access matrix (suites/common/test_access.py) ------------------------------------------------

# The kinds of role: no credential, a credential the device does not know, one of the target's.
ANONYMOUS, UNKNOWN, HOLDER = "anonymous", "unknown", "holder"


@dataclass(frozen=True)
class Role:
    """Who sends a request in the access matrix, and the grants it holds: the names the schemas'
    `x-conformlab.access` gives an operation (a level, a token kind, a permission). A role holding
    every grant an operation needs is served; any other is refused. The name is the test id: never
    a secret."""

    name: str
    kind: str  # ANONYMOUS, UNKNOWN or HOLDER
    grants: dict[str, str] = field(default_factory=dict, compare=False)  # grant -> the requirement saying it is held
    # UNKNOWN: the made-up credential, from the target's [auth]. HOLDER: its credential from the
    # target's [auth] (None: the target names none), or no function: the run's own credentials (the
    # client's auth strategy, e.g. its login session).
    credential: Callable[[dict[str, str]], AuthBase | None] | None = None

    def holds(self, needs: tuple[str, ...]) -> bool:
        return set(needs) <= set(self.grants)


@dataclass(frozen=True)
class AccessRefusal:
    """How the device turns a request away, in its document's words, with the requirement each part
    evidences. (Not `Refusal`: that is the answer over a rate budget.)"""

    statuses: tuple[int, ...]  # the answer's status is one of these
    requirement: str  # that the request is refused, with one of these statuses
    form: str = ""  # the requirement of the answer's form: headers, body ("": requirement)
    unchanged: str = ""  # the requirement that a refused request has no effect ("": requirement)
    headers: dict[str, str] = field(default_factory=dict, compare=False)  # exact values the document gives
    body: str | None = None  # the schema component the JSON body matches (its reading marks: notices elsewhere)
    json_documented: bool = True  # the document says the body is JSON (False: only this project's reading)
    hint: str = ""  # what else explains a request served that should have been refused

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(rid for rid in (self.requirement, self.form, self.unchanged) if rid))


@dataclass(frozen=True)
class Access:
    """The device's part of the access matrix as data: its roles and how it refuses them. (The
    request each operation gets is the suite's: suites/<suite>/access.py.)"""

    # The roles, or for a device whose credentials are a list of their own (WisDM's scoped keys) the
    # roles a target's credentials make: auth -> roles.
    roles: tuple[Role, ...] | Callable[[dict], tuple[Role, ...]]
    refused: AccessRefusal  # no credential, or one the device does not know
    lacking: AccessRefusal | None = None  # a known credential without a grant the operation needs
    login: AccessRefusal | None = None  # a login the device must refuse (near misses of a salt login)
    auth_off: str = ""  # the requirement that a target without credentials is served everything ("": never)
    open_operations: str = ""  # the requirement that an operation needing nothing is served without credentials

    def roles_for(self, auth: dict) -> tuple[Role, ...]:
        """The roles of a target with these credentials."""
        return self.roles(auth) if callable(self.roles) else self.roles


@dataclass(frozen=True)
class DeviceProfile:
    name: str  # the `device` value in targets.toml
    title: str  # the device as its vendor names it, for messages ("ESP32 EVSE")
    prefix: str  # documented API prefix, added to the target's origin
    schema: str  # file under schemas/
    suite: str  # folder under suites/
    document: str  # the vendor document under shared/docs
    emulator: str  # "module:Class" of the bundled emulator, under conformlab.emulators
    auth_keys: frozenset[str]  # keys allowed in [targets.<name>.auth]; their values are strings unless
    # structured_auth: then check_auth alone judges them (lists, tables: WisDM's scoped keys)
    make_auth: Callable[[dict[str, str]], AuthBase | None]  # the target's default credentials
    check_auth: Callable[[dict[str, str]], str | None] = lambda auth: None
    structured_auth: bool = False
    # Credentials per access level, for devices whose API has levels (e.g. READ and WRITE tokens).
    auth_levels: Callable[[dict[str, str]], dict[str, AuthBase]] = lambda auth: {}
    probe_path: str = "/"  # a cheap documented GET to see that the device answers
    snapshot_paths: tuple[str, ...] = ()  # GETs whose answers must be unchanged at the end of a run
    rate_budget: RateBudget | None = None
    identity: Identity | None = None  # probed once at the start of a target's run
    firmware: FirmwareReport | None = None  # where the device says which firmware it runs (conformlab.firmware)
    capabilities: str | None = None  # a documented GET of what the device declares it has (kept in the results)
    target_options: dict[str, Callable[[object], str | None]] = field(default_factory=dict)  # device-specific keys
    emulator_only_options: frozenset[str] = frozenset()  # of those, the ones that configure an emulator
    # Credentials that are almost the configured ones, which the device must refuse like wrong ones:
    # the family of the device's way of presenting credentials (conformlab.near_miss).
    near_misses: tuple[near_miss.NearMiss, ...] = ()
    access: Access | None = None  # the access matrix's roles and refusals (None: the device has no access checks)


def _both_or_neither(first: str, second: str, neither_means: str) -> Callable[[dict[str, str]], str | None]:
    """A check_auth for credentials that come in pairs (a user and its password, READ and WRITE tokens)."""
    def problem(auth: dict[str, str]) -> str | None:
        if (first in auth) != (second in auth):
            return f"give both {first} and {second}, or neither ({neither_means})"
        return None
    return problem


ESP32_EVSE = DeviceProfile(
    name="esp32-evse",
    title="ESP32 EVSE",
    identity=Identity("/info", ("appVersion", "idfVersion", "chip")),
    firmware=FirmwareReport("/info", "appVersion", date="appDate"),
    capabilities="/board-config",
    prefix="/api/v1",
    schema="esp32-evse.yaml",
    suite="esp32_evse",
    emulator="esp32_evse:Esp32EvseEmulator",
    document="esp32-evse-api.txt",
    auth_keys=frozenset({"username", "password"}),
    make_auth=lambda auth: basic_auth(auth.get("username", ""), auth.get("password", "")),
    check_auth=_both_or_neither("username", "password", "the device has no credentials set"),
    probe_path="/info",
    snapshot_paths=("/config", "/firmware/channel", "/state"),
    near_misses=near_miss.basic_family("username", "password"),
    access=Access(
        roles=(
            Role("missing", ANONYMOUS),
            Role("wrong-password", UNKNOWN,
                 credential=lambda auth: BasicAuth(auth.get("username", ""), "conformlab-wrong-" + token_hex(4))),
            Role("unknown-user", UNKNOWN, credential=lambda auth: BasicAuth("conformlab-nobody", auth.get("password", ""))),
            # "As soon as a non-empty credential pair is stored, all endpoints require it."
            Role("user", HOLDER, grants={"user": "EVSE-AUTH-REQUIRED"}),
        ),
        # "A failed or missing credential returns 401 Unauthorized with a WWW-Authenticate: Basic realm="Users" header."
        refused=AccessRefusal((401,), "EVSE-AUTH-REQUIRED", form="EVSE-AUTH-401",
                              headers={"WWW-Authenticate": 'Basic realm="Users"'}),
        auth_off="EVSE-AUTH-OPEN",  # "When no username and no password are set (the default), every request is accepted."
    ),
)

def _ww_levels(auth: dict[str, str]) -> dict[str, AuthBase]:
    return bearer_levels(auth.get("read_token"), auth.get("write_token"))


def _source_addresses_problem(value) -> str | None:
    """`source_addresses`: local addresses the rate-limit scenario sends from, to show that clients
    share one budget (on loopback the emulator targets use 127.0.0.2 and 127.0.0.3)."""
    if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, str) for v in value):
        return 'must be a list of at least two local IP addresses, e.g. ["192.168.1.20", "192.168.1.21"]'
    for address in value:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            return f'"{address}" is not an IP address'
    return None


WATTWAECHTER = DeviceProfile(
    name="wattwaechter",
    title="WattWächter",
    identity=Identity("/system/info", ("esp", "heap")),
    firmware=FirmwareReport("/system/alive", "version"),  # NOTES.md: {"alive": true, "version": "..."}
    prefix="/api/v1",
    schema="wattwaechter.yaml",
    suite="wattwaechter",
    emulator="wattwaechter:WattwaechterEmulator",
    document="wattwaechter-api.txt",
    auth_keys=frozenset({"read_token", "write_token"}),
    make_auth=lambda auth: _ww_levels(auth).get("write"),  # "a WRITE token also reads"
    check_auth=_both_or_neither("read_token", "write_token", "api_auth_required is false on the device"),
    auth_levels=_ww_levels,
    probe_path="/system/info",  # READ: a wrong token shows at once (the health check is open)
    snapshot_paths=("/settings",),
    # wattwaechter-api.txt, "Rate Limits & Error Codes"; NOTES.md: "`Retry-After` is whole seconds;
    # JSON answers carry `Content-Type: application/json`".
    rate_budget=RateBudget(
        requests=25, seconds=10, requirement="WW-RATE-LIMIT",  # "A maximum of 25 requests per 10 seconds is allowed"
        shared_requirement="WW-RATE-SHARED",  # "(device-wide, not per IP — multiple clients share the budget)"
        # "When the limit is exceeded, the device responds with: HTTP/1.1 429 Too Many Requests
        # Retry-After: 10 Content-Type: application/json {"error":"Too many requests"}"
        over_limit=Refusal(429, retry_after=10, body='{"error":"Too many requests"}', requirement="WW-RATE-429"),
        retry_requirement="WW-RATE-RETRY",  # "Clients should honor the Retry-After header and back off accordingly."
        # READ, small answer: throttled under any reading (a device may exempt its health check).
        path="/system/info", level="read",
        protection=Protection(
            # "If the free heap drops below a critical threshold (25 KB), new API requests are temporarily
            # rejected to keep the device stable: HTTP/1.1 503 Service Unavailable Retry-After: 5
            # Content-Type: application/json {"error":"Service temporary unavailable"}"
            name="heap protection", condition="the free heap drops below 25 KB",
            refusal=Refusal(503, retry_after=5, body='{"error":"Service temporary unavailable"}',
                            requirement="WW-HEAP-503"),
            # "This typically happens during very large responses (e.g. long history ranges) under
            # concurrent load. Retrying after a few seconds usually succeeds." A day of 15-min values and
            # a month of daily values: the largest documented answers (about 43 KB each on the emulator).
            large_paths=lambda today: (f"/history/highRes?date={today - datetime.timedelta(days=1)}",
                                       f"/history/lowRes?start={today - datetime.timedelta(days=31)}&days=31"),
            requirement="WW-HEAP-STABLE",
            health_path="/system/alive", health_open=True,  # "GET /api/v1/system/alive — Health check" (no auth)
        )),
    target_options={"source_addresses": _source_addresses_problem},
    near_misses=near_miss.bearer_family((("write", "write_token"), ("read", "read_token"))),
    access=Access(
        roles=(
            Role("no-token", ANONYMOUS),
            Role("wrong-token", UNKNOWN, credential=lambda auth: BearerAuth("conformlab-wrong-" + token_hex(8))),
            # "There are two token levels: READ Token — Read data ...; WRITE Token — Change settings, start
            # OTA, trigger reboot"; NOTES.md: "A WRITE token also reads."
            Role("read-token", HOLDER, grants={"read": "WW-AUTH-BEARER"}, credential=lambda auth: _ww_levels(auth).get("read")),
            Role("write-token", HOLDER, grants={"write": "WW-AUTH-BEARER", "read": "WW-AUTH-WRITE-READS"}),
        ),
        # NOTES.md: "a missing or wrong token gets 401"; that a refused request did nothing: the token levels.
        refused=AccessRefusal((401,), "WW-AUTH-401", unchanged="WW-AUTH-BEARER"),
        lacking=AccessRefusal((403,), "WW-AUTH-403"),  # NOTES.md: "A READ token on a WRITE endpoint gets 403"
        auth_off="WW-AUTH-OPEN",  # "API authentication is disabled by default. All endpoints are accessible without a token."
        open_operations="WW-AUTH-OPEN-ENDPOINTS",  # the endpoints whose Auth column is "—"
    ),
)

def _wcc_key_problem(auth: dict[str, str]) -> str | None:
    key = auth.get("api_key")
    if key is not None and len(key) < 12:  # "it must be equal to or longer than 12 characters"
        return "api_key: the device takes keys of at least 12 characters"
    return None


def _disabled_endpoints_problem(value) -> str | None:
    from conformlab.emulators.wcc_lite import disabled_endpoints_problem  # the documented endpoint list

    return disabled_endpoints_problem(value)


WCC_LITE = DeviceProfile(
    name="wcc-lite",
    title="WCC Lite",
    identity=Identity("/version", ("api_version", "api_patch", "sync_version")),
    prefix="/api",
    schema="wcc-lite.yaml",
    suite="wcc_lite",
    emulator="wcc_lite:WccLiteEmulator",
    document="wcc-lite-api.txt",
    auth_keys=frozenset({"api_key"}),
    # Absent: API key authorization is disabled on the device.
    make_auth=lambda auth: HeaderKeyAuth("apiKey", auth["api_key"]) if auth.get("api_key") else None,
    check_auth=_wcc_key_problem,
    probe_path="/version",
    snapshot_paths=(),  # the API writes nothing it could read back: uploads are destructive
    target_options={"disabled_endpoints": _disabled_endpoints_problem},
    near_misses=near_miss.header_key_family("apiKey", "api_key"),
    access=Access(
        roles=(
            Role("missing", ANONYMOUS),
            Role("wrong", UNKNOWN, credential=lambda auth: HeaderKeyAuth("apiKey", "conformlab-wrong-key")),
            # "If the value is correct it continues with the API request"
            Role("key", HOLDER, grants={"api_key": "WCC-AUTH-KEY"}),
        ),
        # "if the apiKey is incorrect or doesn't exist it returns an error response 401 with the message.
        # "error": "Unauthorized access."" The page names no media type: that it is JSON is the reading.
        refused=AccessRefusal((401,), "WCC-AUTH-401", unchanged="WCC-AUTH-KEY", body="UnauthorizedBody",
                              json_documented=False),
        auth_off="WCC-AUTH-OFF",  # "The authorization can be enabled or disabled"
    ),
)

# The document names the token header "Authorized", the standard one is "Authorization" (NOTES.md):
# the harness's session sends both; the access suite finds out which one the device reads.
MC252_TOKEN_HEADERS = ("Authorized", "Authorization")


def mc252_session(auth: dict[str, str]) -> SaltLoginSession:
    return SaltLoginSession(auth["login"], auth["password"], prefix="/api", salt_path="/login/salt/",
                            login_path="/login/", logout_path="/cmd/logout/", headers=MC252_TOKEN_HEADERS)


def _mc252_auth_problem(auth: dict[str, str]) -> str | None:
    if not auth.get("login") or "password" not in auth:
        return ("give login and password: all of the MC252 API but the version and the salt needs a "
                "session (the emulator's factory login is admin/admin)")
    return None


def _token_header_problem(value) -> str | None:
    if value not in ("both", *MC252_TOKEN_HEADERS):
        return 'must be "Authorized", "Authorization" or "both" (the header the emulated firmware reads)'
    return None


OVERVIS_MC252 = DeviceProfile(
    name="overvis-mc252",
    title="Overvis MC252",
    identity=Identity("/version/", ("device", "firmwareVer")),
    firmware=FirmwareReport("/version/", "firmwareVer", date="releaseDate"),
    prefix="/api",
    schema="overvis-mc252.yaml",
    suite="overvis_mc252",
    emulator="overvis_mc252:OvervisMc252Emulator",
    document="overvis-mc252-api.txt",
    auth_keys=frozenset({"login", "password"}),
    make_auth=lambda auth: mc252_session(auth) if auth.get("login") else None,
    check_auth=_mc252_auth_problem,
    probe_path="/settings/saved/get/",  # level 1: a wrong login shows at once
    snapshot_paths=("/settings/saved/get/",),  # the active ones follow them at the next start
    target_options={"token_header": _token_header_problem},
    emulator_only_options=frozenset({"token_header"}),
    near_misses=near_miss.salt_login_family(MC252_TOKEN_HEADERS, "login", "password"),
    access=Access(
        roles=(
            Role("guest", ANONYMOUS),
            Role("unknown-token", UNKNOWN,
                 credential=lambda auth: BearerAuth("conformlab-not-a-session-token", MC252_TOKEN_HEADERS, secret=False)),
            # "After successful authorization, the user receives access level 1 (Power User)."
            Role("session", HOLDER, grants={"level-1": "MC252-LOGIN-LEVEL1"}),
        ),
        # "To perform protected requests, you must complete the authorization procedure"; errors get
        # "appropriate HTTP statuses" (for "not allowed": 401 or 403) and "additionally contain a JSON
        # object: { "error": "error code", "message": "error text" }".
        refused=AccessRefusal((401, 403), "MC252-LEVEL1-REFUSED", form="MC252-ERROR-ENVELOPE", body="Error",
                              hint="if the front-panel button was pressed in the last 10 minutes, every guest has level 1"),
        # "Log in via /api/login/ by sending a SHA1 password hash: login + password + salt": any other is refused.
        login=AccessRefusal(tuple(range(400, 500)), "MC252-LOGIN-HASH", form="MC252-ERROR-ENVELOPE", body="Error"),
        open_operations="MC252-LEVEL0-OPEN",  # the paths of access level 0 (guest)
    ),
)

WISDM_KEY_HEADER = "X-API-KEY"  # "Every request requires a valid API key for authentication. X-API-KEY: <Your_API_Key>"


def _wisdm_key(key: str) -> HeaderKeyAuth:
    return HeaderKeyAuth(WISDM_KEY_HEADER, key)


def _wisdm_run_key(auth: dict) -> HeaderKeyAuth | None:
    key = scoped_keys.run_key(auth)
    return _wisdm_key(key.key) if key else None


# What holding each grant rests on: "Read only: Grants access to GET methods"; "Read and Write: Grants
# access to POST and DELETE methods. You must explicitly select the write permissions required".
_WISDM_GRANT_REQUIREMENTS = {"read": "WISDM-KEY-READ", "write": "WISDM-KEY-WRITE"}


def _wisdm_roles(auth: dict) -> tuple[Role, ...]:
    """No key, a key the cloud never issued, and every key of the target: one that works holds its
    grants; an expired one is refused like an unknown one ("The key will automatically expire")."""
    roles = [Role("missing", ANONYMOUS),
             Role("unknown-key", UNKNOWN, credential=lambda auth: _wisdm_key("conformlab-unknown-" + token_hex(12)))]
    for key in scoped_keys.keys_of(auth):
        credential = (lambda secret: lambda auth: _wisdm_key(secret))(key.key)
        if key.expired:
            roles.append(Role(key.name, UNKNOWN, credential=credential))
        else:
            grants = {grant: _WISDM_GRANT_REQUIREMENTS.get(grant, "WISDM-KEY-PERMISSION") for grant in key.grants}
            roles.append(Role(key.name, HOLDER, grants=grants, credential=credential))
    return tuple(roles)


def _other_organization_problem(value) -> str | None:
    if not isinstance(value, list) or not all(isinstance(name, str) and name for name in value):
        return "must be a list of key names (the keys of the emulator's second organization)"
    return None


WISDM = DeviceProfile(
    name="wisdm",
    title="WisDM",
    identity=Identity("/version", ("version", "commitId")),  # the cloud's API version: no firmware of its own
    prefix="/v4",  # "All endpoints are versioned under /v4/"
    schema="wisdm.yaml",
    suite="wisdm",
    emulator="wisdm:WisdmEmulator",
    document="wisdm-api.txt",
    auth_keys=frozenset({"keys"}),
    structured_auth=True,
    make_auth=_wisdm_run_key,
    check_auth=scoped_keys.keys_problem,
    probe_path="/organization",  # "Test Your Connection": a wrong key shows at once
    target_options={"other_organization": _other_organization_problem},
    emulator_only_options=frozenset({"other_organization"}),
    near_misses=near_miss.header_key_family(WISDM_KEY_HEADER, lambda auth: scoped_keys.run_key(auth).key),
    access=Access(
        roles=_wisdm_roles,
        # "Every request requires a valid API key for authentication." The page lists only 403 for a
        # refusal; 401 is the standard answer to a missing or unknown credential: either is accepted.
        refused=AccessRefusal((403, 401), "WISDM-KEY-REQUIRED"),
        # "If the API returns 403 Action is not allowed, verify that your key has the required permission
        # level"; every endpoint's table: "403 Insufficient permission".
        lacking=AccessRefusal((403,), "WISDM-KEY-SCOPE"),
    ),
)

PROFILES: dict[str, DeviceProfile] = {p.name: p for p in (ESP32_EVSE, WATTWAECHTER, WCC_LITE, OVERVIS_MC252, WISDM)}
