"""Near-miss credentials (conformlab.near_miss): the family of each way of presenting credentials,
names without secrets, every derived value masked, and the emulators' near-miss faults: a clean
emulator refuses every near miss, each fault lets its own through (the suites' check of each is
run by test_faults_caught.py)."""

from __future__ import annotations

import importlib
import json
import re

import pytest
import requests

from conformlab import near_miss, secrets
from conformlab.emulators import EMULATORS, start_emulator
from conformlab.targets import Target
from conformlab.profiles import PROFILES, mc252_session

AUTH = {
    "esp32-evse": {"username": "admin", "password": "near-miss-Secret-1"},
    "wattwaechter": {"read_token": "near-miss-Read-token", "write_token": "near-miss-Write-token"},
    "wcc-lite": {"api_key": "near-miss-Api-key-1"},
    "overvis-mc252": {"login": "admin", "password": "near-miss-Secret-2"},
    "wisdm": {"keys": [{"name": "admin", "key": "near-miss-Api-key-2", "access": "write", "permissions": []}]},
}
SESSION_TOKEN = "0123456789abcdef0123456789abcdef"
SALT = "a" * 40
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "authorized", "apikey", "x-api-key")

FAMILIES = {
    "esp32-evse": ["password-empty", "password-prefix", "password-truncated", "password-extended",
                   "password-case-swapped", "password-trailing-space", "credentials-in-bearer-scheme",
                   "credentials-in-proxy-authorization", "credentials-duplicate-header"],
    "wattwaechter": ["write-token-prefix", "write-token-truncated", "write-token-extended", "write-token-case-swapped",
                     "read-token-prefix", "read-token-truncated", "read-token-extended", "read-token-case-swapped",
                     "token-empty", "token-without-scheme", "token-in-basic-scheme", "token-in-proxy-authorization",
                     "token-duplicate-header"],
    "wcc-lite": ["key-empty", "key-prefix", "key-truncated", "key-extended", "key-case-swapped",
                 "key-in-authorization-header", "key-with-bearer-scheme", "key-duplicate-header"],
    "wisdm": ["key-empty", "key-prefix", "key-truncated", "key-extended", "key-case-swapped",
              "key-in-authorization-header", "key-with-bearer-scheme", "key-duplicate-header"],
    "overvis-mc252": ["hash-order-password-login-salt", "hash-order-salt-login-password", "hash-empty-password",
                      "login-case-swapped", "password-trailing-space", "token-truncated", "token-case-swapped",
                      "token-without-scheme", "token-in-basic-scheme"],
}
UNSETTLED = {"credentials-duplicate-header", "token-duplicate-header", "key-duplicate-header"}


def near_misses(device: str):
    return PROFILES[device].near_misses


def presented(device: str, near, credentials=None):
    return near.present(credentials or AUTH[device], {"token": lambda: SESSION_TOKEN})


def sent_values(device: str, near, credentials=None) -> list[str]:
    """What a near miss puts on the wire where a credential goes: credential header values, or the
    login body."""
    what = presented(device, near, credentials)
    if near.login:
        return [json.dumps(what(SALT))]
    request = requests.Request("GET", "http://127.0.0.1:9/api/x", auth=what).prepare()
    return [value for name, value in request.headers.items() if name.lower() in CREDENTIAL_HEADERS]


@pytest.mark.parametrize("device", sorted(FAMILIES))
def test_each_profile_declares_the_family_of_its_way_of_presenting_credentials(device):
    assert near_miss.names(PROFILES[device]) == FAMILIES[device]
    assert {near.name for near in near_misses(device) if not near.settled} <= UNSETTLED
    for near in near_misses(device):
        assert near.description and "\n" not in near.description


@pytest.mark.parametrize("device", sorted(FAMILIES))
def test_names_are_stable_ids_without_any_secret(device):
    for near in near_misses(device):
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", near.name), near.name
        for value in Target("t", device, None, True, auth=AUTH[device]).secrets():
            if value != "admin":  # the user name is no secret
                assert value not in near.name and value.lower() not in near.name.lower()
        for value in sent_values(device, near):
            assert not value or value not in near.name


@pytest.mark.parametrize("device", sorted(FAMILIES))
def test_every_derived_value_is_masked_like_the_real_one(device):
    for near in near_misses(device):
        for value in sent_values(device, near):
            masked = secrets.mask(value)
            if near.login:
                assert json.loads(value)["password"] not in masked, near.name  # the hash
                continue
            secret = value.split(" ", 1)[-1]  # without a scheme word
            if secret in ("", "Bearer", near_miss.WRONG_VALUE):  # nothing secret in it
                continue
            assert secret not in masked and secrets.MASK in masked, f"{near.name}: {masked!r}"


def test_the_variants_are_derived_from_the_real_value_and_registered():
    password = "Derived-Secret-9"
    expected = {"prefix": password[:12], "truncated": password[:-1], "extended": password + "0",
                "case-swapped": password.swapcase(), "trailing-space": password + " "}
    for kind, value in expected.items():
        assert near_miss.variant(kind, password, "password") == value
        assert secrets.mask(f"<{value}>") == f"<{secrets.MASK}>", kind
    assert near_miss.variant("empty", password, "password") == ""


@pytest.mark.parametrize("device, name, credentials, reason", [
    ("esp32-evse", "password-case-swapped", {"username": "admin", "password": "12345678"}, "right value itself"),
    ("esp32-evse", "password-prefix", {"username": "admin", "password": "1234"}, "too short to be masked"),
    ("esp32-evse", "password-empty", {"username": "admin", "password": ""}, "right value itself"),
    ("overvis-mc252", "hash-order-password-login-salt", {"login": "admin", "password": "admin"}, "right text itself"),
    ("overvis-mc252", "login-case-swapped", {"login": "1234", "password": "x"}, "no letters"),
    ("overvis-mc252", "hash-empty-password", {"login": "admin", "password": ""}, "password is empty"),
])
def test_a_near_miss_that_cannot_be_derived_is_not_applicable(device, name, credentials, reason):
    with pytest.raises(near_miss.NotApplicable, match=reason):
        near_miss.derive(PROFILES[device], name, credentials, token=SESSION_TOKEN)


# -- the emulators' near-miss faults ----------------------------------------------------------------


def near_miss_faults(device: str) -> dict[str, str]:
    return importlib.import_module(EMULATORS[device].__module__).NEAR_MISS_FAULTS


def accepted(device: str, faults: tuple[str, ...]) -> set[str]:
    """The near misses an emulator with `faults` lets through (on the profile's probe path, or the login)."""
    profile = PROFILES[device]
    through = set()
    with start_emulator(device, faults=faults, auth=AUTH[device]) as emu:
        base = emu.url + profile.prefix
        token = mc252_session(AUTH[device]).log_in(base) if device == "overvis-mc252" else None
        for near in profile.near_misses:
            try:
                what = near.present(AUTH[device], {"token": token})
            except near_miss.NotApplicable:
                continue
            if near.login:
                salt = requests.get(base + "/login/salt/", timeout=5).json()["salt"]
                response = requests.post(base + "/login/", json=what(salt), timeout=5)
            else:
                response = requests.get(base + profile.probe_path, auth=what, timeout=5)
            if response.status_code == 200:
                through.add(near.name)
    return through


@pytest.mark.parametrize("device", sorted(FAMILIES))
def test_clean_emulators_refuse_every_near_miss_and_each_fault_lets_its_own_through(device):
    faults = near_miss_faults(device)
    assert set(faults) <= set(EMULATORS[device].FAULTS)
    assert accepted(device, ()) == set(), "a clean emulator refuses every near miss"
    let_through = set()
    for fault, name in faults.items():
        through = accepted(device, (fault,))
        assert name in through, f"{fault} must let {name} through; it lets {sorted(through)}"
        let_through |= through
    settled = {near.name for near in near_misses(device) if near.settled}
    assert settled <= let_through, f"near misses no fault lets through: {sorted(settled - let_through)}"
