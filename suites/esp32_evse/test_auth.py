"""Changing the credentials: set temporary ones, see them gate the API, remove them, and put the
target's own back. (Every operation with and without credentials is the access matrix's:
suites/common/test_access.py.)
"""

from __future__ import annotations

import secrets as random_secrets

import pytest
import requests

from conformlab import secrets
from conformlab.auth import BasicAuth
from conformlab.checks import answer
from conformlab.profiles import ESP32_EVSE
from conformlab.verdicts import requirement
from suites.esp32_evse.evse import assert_ok

REALM_HEADER = ESP32_EVSE.access.refused.headers["WWW-Authenticate"]  # the document's 401 challenge


@pytest.mark.req("EVSE-AUTH-SET", "EVSE-AUTH-401")
@pytest.mark.destructive("changes the device's credentials (restored afterwards)")
def test_credentials_can_be_set_and_removed(device):
    """Set temporary credentials, check they gate the API, then put the original ones back."""
    client = device.client
    temporary = {"user": "conformlab", "password": "cl-" + random_secrets.token_urlsafe(12)}
    temporary_auth = BasicAuth(temporary["user"], temporary["password"])  # registers the secret for masking
    probe = device.profile.probe_path
    try:
        assert_ok(client.post("/credentials", json=temporary))
        refused = client.get(probe, auth=None)
        assert refused.status_code == 401, f"after setting credentials, a request without them must get 401: {answer(refused)}"
        with requirement("EVSE-AUTH-401"):
            assert refused.headers.get("WWW-Authenticate") == REALM_HEADER, f"401 must carry {REALM_HEADER}"
        wrong = client.get(probe, auth=BasicAuth("conformlab", "cl-wrong"))
        assert wrong.status_code == 401, f"wrong credentials must get 401: {answer(wrong)}"
        accepted = client.get(probe, auth=temporary_auth)
        assert accepted.status_code == 200, f"the new credentials must be accepted: {answer(accepted)}"
        # "Sending empty strings for both disables authentication." (the original ones come back below)
        assert_ok(client.post("/credentials", json={"user": "", "password": ""}, auth=temporary_auth))
        open_again = client.get(probe, auth=None)
        assert open_again.status_code == 200, f"empty credentials must disable authentication: {answer(open_again)}"
    finally:
        restore_credentials(device, temporary)


def restore_credentials(device, temporary: dict) -> None:
    """Put the target's own credentials back, whatever state the check left the device in.

    If that fails the operator must not be locked out: the temporary credentials are written to a
    file only they can read (never into the report) and the failure says where."""
    client, probe = device.client, device.profile.probe_path
    original = {"user": device.target.auth.get("username", ""), "password": device.target.auth.get("password", "")}
    for auth in (None, BasicAuth(temporary["user"], temporary["password"]), device.client.auth):
        try:
            client.post("/credentials", json=original, auth=auth)
            if client.get(probe).status_code == 200:
                return
        except (requests.RequestException, AssertionError):
            continue
    keep = secrets.write_private(f"{device.target.name}-temporary-credentials",
                                 f"user={temporary['user']}\npassword={temporary['password']}\n")
    pytest.fail(f"could not restore the original credentials of {device.target.name}; the device may still have the "
                f"temporary user 'conformlab', whose password is in {keep} (readable only by you)", pytrace=False)
