"""The SD card: folders listed, a file's info and content read consistently; a scratch file written,
appended, read back and removed (destructive: only where the target allows it, and never a file the
run did not create). Bodies and answers beyond the paths are the emulator's reading (see the schema)."""

from __future__ import annotations

import base64

import pytest

from conformlab.checks import answer
from suites.overvis_mc252.mc252 import (
    CHECKS, SCHEMA, SCRATCH_DATA, SCRATCH_FILE, as_read, assert_envelope, card_listing, first_card_file, read_json, remove_scratch,
    require_login, scratch_write,
)


def card(device, what: str, body: dict):
    return device.client.post(f"/card/{what}/", json=body)


@pytest.mark.req("MC252-CARD")
def test_card_file_info_and_content_agree(device):
    require_login(device)
    path = first_card_file(device)
    info = read_json(device, card(device, "file/info", {"path": path}), f"file info of {path}")
    chunk = read_json(device, card(device, "file/read", {"path": path, "offset": 0, "length": 4096}), f"reading {path}")
    as_read(device, info.get("type") == "file" and isinstance(info.get("size"), int) and isinstance(chunk.get("data"), str),
            f"file info and content of {path}: {info}, {chunk}")
    data = base64.b64decode(chunk["data"], validate=True)
    assert len(data) == min(info["size"], 4096), f"the first 4096 bytes of {path} ({info['size']} bytes by its info) are {len(data)} bytes"
    as_read(device, chunk.get("size") == info["size"] and chunk.get("eof") is (info["size"] <= 4096),
            f"the chunk's size and eof agree with the file info of {path}: {chunk.get('size')}, {chunk.get('eof')} vs {info['size']}")


@pytest.mark.req("MC252-CARD", "MC252-ERROR-ENVELOPE")
def test_card_dir_lists_the_folders_entries(device):
    require_login(device)
    listing = card_listing(device)
    entries = listing.get("entries")
    as_read(device, isinstance(entries, list) and all(isinstance(e, dict) and e.get("name") for e in entries),
            f"the root folder's entries: {listing}")
    folder = next((entry["name"] for entry in entries if entry.get("type") == "dir"), None)
    if folder is not None:
        inner = card_listing(device, f"/{folder}")
        as_read(device, isinstance(inner.get("entries"), list), f"the entries of /{folder}: {inner}")
    missing = card(device, "dir", {"path": "/conformlab-no-such-folder"})
    assert 400 <= missing.status_code < 500, f"a folder that does not exist cannot be listed: {answer(missing)}"
    assert_envelope(missing, "listing a missing folder")


@pytest.mark.req("MC252-CARD-WRITE")
@pytest.mark.destructive("writes and removes a scratch file on the SD card")
def test_scratch_file_written_read_back_and_removed(device):
    require_login(device)
    body = scratch_write(device)  # skips when the scratch file exists already
    try:
        assert card(device, "file/write", body).status_code == 200, "the scratch file must be written"
        extra = b"appended\n"
        appended = card(device, "file/write", {"path": SCRATCH_FILE, "data": base64.b64encode(extra).decode(), "append": True})
        assert appended.status_code == 200, f"appending to the scratch file: {answer(appended)}"
        info = read_json(device, card(device, "file/info", {"path": SCRATCH_FILE}), "info of the scratch file")
        as_read(device, info.get("size") == len(SCRATCH_DATA + extra), f"the scratch file has {info.get('size')} bytes, written {len(SCRATCH_DATA + extra)}")
        chunk = read_json(device, card(device, "file/read", {"path": SCRATCH_FILE, "length": 4096}), "reading the scratch file")
        assert base64.b64decode(chunk["data"]) == SCRATCH_DATA + extra, "the scratch file must read back as written"
        removed = card(device, "remove", {"path": SCRATCH_FILE})
        assert removed.status_code == 200, f"removing the scratch file: {answer(removed)}"
        gone = card(device, "file/info", {"path": SCRATCH_FILE})
        assert gone.status_code == 404, f"a removed file must be gone: {answer(gone)}"
        assert_envelope(gone, "info of a removed file")
    finally:
        remove_scratch(device)


@pytest.mark.req("MC252-CARD", "MC252-ERROR-STATUS", "MC252-ERROR-ENVELOPE")
@pytest.mark.destructive("ejects the SD card (logging stops); the run puts it back: on hardware by a restart")
def test_ejected_card_is_unavailable_until_put_back(device):
    """After the safe ejection the card cannot be used: an error status with the envelope (503
    Service Unavailable is the emulator's reading; any error passes on hardware)."""
    require_login(device)
    card_listing(device)  # skips when there is no card to eject
    op = SCHEMA.operation("POST", "/cmd/memory/card_eject/")
    with CHECKS.restoring(device, op):  # puts the card back (and refuses while a restart would apply pending settings)
        ejected = device.client.post(op.path, json={})
        assert ejected.status_code == 200, f"the card must be ejected: {answer(ejected)}"
        after = card(device, "dir", {"path": "/"})
    assert after.status_code >= 400, f"an ejected card must not be listed: {answer(after)}"
    as_read(device, after.status_code == 503, f"an ejected card answers 503: {answer(after)}")
    assert_envelope(after, "a card request after the eject")
    assert card(device, "dir", {"path": "/"}).status_code == 200, "the card must be back after the check"
