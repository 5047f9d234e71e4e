"""WebDAV under /dav/ (outside the REST prefix): the documented methods, and the documented hole.

The REST page says the WebDAV handlers perform no credential check; NOTES.md: firmware from mid-2026
on checks the HTTP Basic credentials there too, and which behaviour a device shows depends on its
firmware. So the check judges by the firmware the device reports (GET /info: appDate, its build date),
records which rule applied, and the CONFLICT entry says which page the device follows. An open WebDAV
is a security finding that stands out in the report wherever it is seen.

"Mid-2026" is not a day. This project's reading of it: firmware built before June 2026 is judged by the
REST page (open; a check of the credentials there is safer than the page says: a notice, not a
failure), firmware built from August 2026 on by NOTES.md (credentials checked: an open WebDAV fails),
and firmware built in June or July 2026, or with no build date, may show either.
"""

from __future__ import annotations

import datetime
import secrets as random_secrets
from xml.etree import ElementTree

import pytest

from conformlab.checks import answer
from conformlab.verdicts import not_applicable

CHECKS_CREDENTIALS_FROM = datetime.date(2026, 8, 1)  # built on or after: NOTES.md's rule binds
OPEN_BEFORE = datetime.date(2026, 6, 1)  # built before: the REST page's rule binds

DAV = "/dav/"
# The document says only that the methods are supported: a method that works answers 2xx and has its
# effect (hard). The exact status codes are this project's reading, those of WebDAV itself (RFC 4918:
# 201 Created, 204 No Content, 207 Multi-Status, 404): a notice on other devices.
# Scratch files are .txt, not .lua: with script autoReload on, a .lua file would be run.


def dav(device, method, path, **kw):
    return device.client.request(method, device.client.origin + path, **kw)


def succeeded(device, response, what: str, expected: tuple[int, ...]) -> None:
    """The method worked (2xx, the document's "supports"); the exact status is the RFC's (a reading)."""
    assert 200 <= response.status_code < 300, f"{what}: {answer(response)}"
    device.reading(response.status_code in expected,
                   f"{what} answered {response.status_code}; the reading (RFC 4918) expects {' or '.join(map(str, expected))}")


@pytest.fixture
def scratch(device):
    """A scratch folder name under /dav/; whatever the check leaves there is removed afterwards."""
    folder = f"{DAV}conformlab-{random_secrets.token_hex(4)}/"
    yield folder
    for path in (folder + "moved.txt", folder + "copy.txt", folder + "scratch.txt", folder):
        dav(device, "DELETE", path)


@pytest.mark.req("EVSE-DAV-METHODS")
def test_webdav_methods_round_trip(device, scratch):
    succeeded(device, dav(device, "MKCOL", scratch), "MKCOL creates the folder", (201,))
    content = b"conformlab scratch file\n"
    succeeded(device, dav(device, "PUT", scratch + "scratch.txt", body=content), "PUT of a new file", (201,))
    got = dav(device, "GET", scratch + "scratch.txt")
    assert got.status_code == 200 and got.content == content, f"GET returns what was PUT: {answer(got)}"

    listing = dav(device, "PROPFIND", scratch, headers={"Depth": "1"})
    succeeded(device, listing, "PROPFIND of the folder", (207,))
    hrefs = [el.text or "" for el in ElementTree.fromstring(listing.content).iter("{DAV:}href")]
    assert any(h.endswith("scratch.txt") for h in hrefs), f"PROPFIND lists the file: {hrefs}"

    copy = dav(device, "COPY", scratch + "scratch.txt", headers={"Destination": device.client.origin + scratch + "copy.txt"})
    succeeded(device, copy, "COPY to a new name", (201,))
    move = dav(device, "MOVE", scratch + "copy.txt", headers={"Destination": device.client.origin + scratch + "moved.txt"})
    succeeded(device, move, "MOVE to a new name", (201,))
    assert dav(device, "GET", scratch + "copy.txt").status_code >= 400, "MOVE removes the source"
    assert dav(device, "GET", scratch + "moved.txt").content == content, "MOVE keeps the content"

    overwrite = dav(device, "PUT", scratch + "moved.txt", body=b"-- changed\n")
    succeeded(device, overwrite, "PUT over an existing file", (200, 204))
    for path in (scratch + "moved.txt", scratch + "scratch.txt", scratch):
        succeeded(device, dav(device, "DELETE", path), f"DELETE {path}", (200, 204))
    gone = dav(device, "GET", scratch + "scratch.txt")
    assert gone.status_code >= 400, f"DELETE removes the file: {answer(gone)}"
    device.reading(gone.status_code == 404, f"GET of a deleted file answered {gone.status_code}; the reading expects 404")


@pytest.mark.req("EVSE-DAV-NOAUTH")
def test_webdav_credentials_as_the_firmware_dictates(device, scratch, security_finding):
    if not device.has_credentials:
        not_applicable("the target has no credentials set: REST and WebDAV are both open, there is no hole to show")
    rid, built = "EVSE-DAV-NOAUTH", device.firmware.built
    checks_credentials = device.firmware.built_on_or_after(CHECKS_CREDENTIALS_FROM)
    if checks_credentials:
        device.firmware_rule("NOTES.md binds (built from August 2026 on): WebDAV checks the credentials")
    elif built is not None and built < OPEN_BEFORE:
        device.firmware_rule("the REST page binds (built before June 2026): WebDAV performs no credential check")
    else:
        when = "no build date reported" if built is None else "built in mid-2026 (June or July)"
        device.firmware_rule(f"either page ({when}): WebDAV open or checking the credentials")
    listing = dav(device, "PROPFIND", DAV, headers={"Depth": "1"}, auth=None)
    written = dav(device, "MKCOL", scratch, auth=None)
    if listing.status_code == 207:
        device.follows(rid, "no-check")
        security_finding(
            f"WebDAV under /dav/ answers without credentials (PROPFIND {listing.status_code}, MKCOL {written.status_code}) "
            "while the REST API requires them: anyone on the network can read, upload, overwrite or delete files, "
            "including Lua scripts. This is the document's own warning (EVSE-DAV-NOAUTH).")
        assert not checks_credentials, (
            f"PROPFIND /dav/ without credentials answered 207 on firmware built {built}: NOTES.md, \"Firmware from "
            f"mid-2026 on checks the HTTP Basic credentials on WebDAV too.\"")
        return
    assert listing.status_code == 401, (
        f"PROPFIND /dav/ without credentials answered {listing.status_code}: neither the REST page's behaviour "
        f"(no credential check: 207) nor the newer firmware's (NOTES.md: the Basic credentials are checked: 401)")
    device.follows(rid, "checked")
    if built is not None and built < OPEN_BEFORE:
        device.notice(f"WebDAV under /dav/ checks the HTTP Basic credentials on firmware built {built}, before "
                      "mid-2026: safer than the REST page says (no credential check), not a failure")
