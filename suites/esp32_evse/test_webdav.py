"""WebDAV under /dav/ (outside the REST prefix): the documented methods, and the documented hole.

The REST page says the WebDAV handlers perform no credential check. That is checked as documented
(so a device that behaves that way passes) and reported as a security finding that stands out in
the report. NOTES.md: firmware from mid-2026 on does check credentials there; on such a device the
check fails and its message names the disagreement, so the QA engineer can waive it.
"""

from __future__ import annotations

import secrets as random_secrets
from xml.etree import ElementTree

import pytest

from conformlab.checks import answer

DAV = "/dav/"
# Reading: the document says only that the methods are supported; the status codes asserted are
# those of WebDAV itself (RFC 4918: 201 Created, 204 No Content, 207 Multi-Status, 404).
# Scratch files are .txt, not .lua: with script autoReload on, a .lua file would be run.


def dav(device, method, path, **kw):
    return device.client.request(method, device.client.origin + path, **kw)


@pytest.fixture
def scratch(device):
    """A scratch folder name under /dav/; whatever the check leaves there is removed afterwards."""
    folder = f"{DAV}conformlab-{random_secrets.token_hex(4)}/"
    yield folder
    for path in (folder + "moved.txt", folder + "copy.txt", folder + "scratch.txt", folder):
        dav(device, "DELETE", path)


@pytest.mark.req("EVSE-DAV-METHODS")
def test_webdav_methods_round_trip(device, scratch):
    assert dav(device, "MKCOL", scratch).status_code == 201, "MKCOL creates the folder"
    content = b"conformlab scratch file\n"
    put = dav(device, "PUT", scratch + "scratch.txt", body=content)
    assert put.status_code == 201, f"PUT of a new file: {answer(put)}"
    got = dav(device, "GET", scratch + "scratch.txt")
    assert got.status_code == 200 and got.content == content, f"GET returns what was PUT: {answer(got)}"

    listing = dav(device, "PROPFIND", scratch, headers={"Depth": "1"})
    assert listing.status_code == 207, f"PROPFIND answers 207 Multi-Status: {answer(listing)}"
    hrefs = [el.text or "" for el in ElementTree.fromstring(listing.content).iter("{DAV:}href")]
    assert any(h.endswith("scratch.txt") for h in hrefs), f"PROPFIND lists the file: {hrefs}"

    copy = dav(device, "COPY", scratch + "scratch.txt", headers={"Destination": device.client.origin + scratch + "copy.txt"})
    assert copy.status_code == 201, f"COPY to a new name: {answer(copy)}"
    move = dav(device, "MOVE", scratch + "copy.txt", headers={"Destination": device.client.origin + scratch + "moved.txt"})
    assert move.status_code == 201, f"MOVE to a new name: {answer(move)}"
    assert dav(device, "GET", scratch + "copy.txt").status_code == 404, "MOVE removes the source"
    assert dav(device, "GET", scratch + "moved.txt").content == content, "MOVE keeps the content"

    overwrite = dav(device, "PUT", scratch + "moved.txt", body=b"-- changed\n")
    assert overwrite.status_code in (200, 204), f"PUT over an existing file: {answer(overwrite)}"
    for path in (scratch + "moved.txt", scratch + "scratch.txt", scratch):
        deleted = dav(device, "DELETE", path)
        assert deleted.status_code in (200, 204), f"DELETE {path}: {answer(deleted)}"
    assert dav(device, "GET", scratch + "scratch.txt").status_code == 404, "DELETE removes the file"


@pytest.mark.req("EVSE-DAV-NOAUTH")
def test_webdav_performs_no_credential_check(device, scratch, security_finding):
    if not device.has_credentials:
        pytest.skip("the target has no credentials set: REST and WebDAV are both open, there is no hole to show")
    listing = dav(device, "PROPFIND", DAV, headers={"Depth": "1"}, auth=None)
    written = dav(device, "MKCOL", scratch, auth=None)
    if listing.status_code == 207:
        security_finding(
            f"WebDAV under /dav/ answers without credentials (PROPFIND {listing.status_code}, MKCOL {written.status_code}) "
            "while the REST API requires them: anyone on the network can read, upload, overwrite or delete files, "
            "including Lua scripts. This is the document's own warning (EVSE-DAV-NOAUTH).")
        return
    version = device.read("/info").get("appVersion")
    pytest.fail(
        f"the REST page says the WebDAV handlers perform no credential check, but PROPFIND /dav/ without credentials "
        f"answered {listing.status_code} (firmware {version}). The vendor's pages disagree: NOTES.md says firmware from "
        f"mid-2026 on checks the HTTP Basic credentials on WebDAV too. If this firmware is that newer behaviour "
        f"(the safer one), waive EVSE-DAV-NOAUTH for this target.", pytrace=False)
