"""Device profiles: what the harness needs to know about a device family, as data.

A profile names the documented API prefix, the schema and suite that describe the device, how
credentials from targets.toml become a requests auth strategy, and what "the device as we found it"
means for the end-of-run check. Suites never hard-code how to authenticate.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Callable

from requests.auth import AuthBase

from conformlab import near_miss
from conformlab.auth import HeaderKeyAuth, SaltLoginSession, basic_auth, bearer_levels


@dataclass(frozen=True)
class RateBudget:
    """The device's documented request budget: `requests` per `seconds`, device-wide."""

    requests: int
    seconds: float


@dataclass(frozen=True)
class Identity:
    """How a device shows what it is: a documented GET that answers a JSON object with these keys
    (the document's version or info endpoint). Only the keys: the answer's values and the rest of
    its shape are the suites' to judge, where a wrong one is a failure, not "another device"."""

    path: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class DeviceProfile:
    name: str  # the `device` value in targets.toml
    title: str  # the device as its vendor names it, for messages ("ESP32 EVSE")
    prefix: str  # documented API prefix, added to the target's origin
    schema: str  # file under schemas/
    suite: str  # folder under suites/
    document: str  # the vendor document under shared/docs
    auth_keys: frozenset[str]  # keys allowed in [targets.<name>.auth]
    make_auth: Callable[[dict[str, str]], AuthBase | None]  # the target's default credentials
    check_auth: Callable[[dict[str, str]], str | None] = lambda auth: None
    # Credentials per access level, for devices whose API has levels (e.g. READ and WRITE tokens).
    auth_levels: Callable[[dict[str, str]], dict[str, AuthBase]] = lambda auth: {}
    probe_path: str = "/"  # a cheap documented GET to see that the device answers
    snapshot_paths: tuple[str, ...] = ()  # GETs whose answers must be unchanged at the end of a run
    rate_budget: RateBudget | None = None
    identity: Identity | None = None  # probed once at the start of a target's run
    target_options: dict[str, Callable[[object], str | None]] = field(default_factory=dict)  # device-specific keys
    emulator_only_options: frozenset[str] = frozenset()  # of those, the ones that configure an emulator
    # Credentials that are almost the configured ones, which the device must refuse like wrong ones:
    # the family of the device's way of presenting credentials (conformlab.near_miss).
    near_misses: tuple[near_miss.NearMiss, ...] = ()


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
    prefix="/api/v1",
    schema="esp32-evse.yaml",
    suite="esp32_evse",
    document="esp32-evse-api.txt",
    auth_keys=frozenset({"username", "password"}),
    make_auth=lambda auth: basic_auth(auth.get("username", ""), auth.get("password", "")),
    check_auth=_both_or_neither("username", "password", "the device has no credentials set"),
    probe_path="/info",
    snapshot_paths=("/config", "/firmware/channel", "/state"),
    near_misses=near_miss.basic_family("username", "password"),
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
    prefix="/api/v1",
    schema="wattwaechter.yaml",
    suite="wattwaechter",
    document="wattwaechter-api.txt",
    auth_keys=frozenset({"read_token", "write_token"}),
    make_auth=lambda auth: _ww_levels(auth).get("write"),  # "a WRITE token also reads"
    check_auth=_both_or_neither("read_token", "write_token", "api_auth_required is false on the device"),
    auth_levels=_ww_levels,
    probe_path="/system/info",  # READ: a wrong token shows at once (the health check is open)
    snapshot_paths=("/settings",),
    rate_budget=RateBudget(requests=25, seconds=10),  # "25 requests per 10 seconds ... device-wide"
    target_options={"source_addresses": _source_addresses_problem},
    near_misses=near_miss.bearer_family((("write", "write_token"), ("read", "read_token"))),
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
    document="wcc-lite-api.txt",
    auth_keys=frozenset({"api_key"}),
    # Absent: API key authorization is disabled on the device.
    make_auth=lambda auth: HeaderKeyAuth("apiKey", auth["api_key"]) if auth.get("api_key") else None,
    check_auth=_wcc_key_problem,
    probe_path="/version",
    snapshot_paths=(),  # the API writes nothing it could read back: uploads are destructive
    target_options={"disabled_endpoints": _disabled_endpoints_problem},
    near_misses=near_miss.header_key_family("apiKey", "api_key"),
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
    prefix="/api",
    schema="overvis-mc252.yaml",
    suite="overvis_mc252",
    document="overvis-mc252-api.txt",
    auth_keys=frozenset({"login", "password"}),
    make_auth=lambda auth: mc252_session(auth) if auth.get("login") else None,
    check_auth=_mc252_auth_problem,
    probe_path="/settings/saved/get/",  # level 1: a wrong login shows at once
    snapshot_paths=("/settings/saved/get/",),  # the active ones follow them at the next start
    target_options={"token_header": _token_header_problem},
    emulator_only_options=frozenset({"token_header"}),
    near_misses=near_miss.salt_login_family(MC252_TOKEN_HEADERS, "login", "password"),
)

PROFILES: dict[str, DeviceProfile] = {p.name: p for p in (ESP32_EVSE, WATTWAECHTER, WCC_LITE, OVERVIS_MC252)}
