"""The SD card: folders listed, a file's info and content read consistently; a scratch file written,
appended, read back and removed (destructive: only where the target allows it, and never a file the
run did not create). Bodies and answers beyond the paths are this project's reading (see the schema):
binding on the bundled emulator, notices elsewhere (`device.reading`, `as_read`)."""

from __future__ import annotations

import base64
import binascii

import pytest

from conformlab.checks import answer
from conformlab.verdicts import requirement
from suites.overvis_mc252.mc252 import (
    CHECKS, SCHEMA, SCRATCH_DATA, SCRATCH_FILE, as_read, assert_envelope, card_entries, card_listing, first_card_file, read_json,
    remove_scratch, require_login, scratch_write,
)


def card(device, what: str, body: dict):
    return device.client.post(f"/card/{what}/", json=body)


def decoded(device, chunk: dict, what: str) -> bytes:
    """The bytes of a read chunk (base64 in "data": this project's reading)."""
    try:
        data = base64.b64decode(chunk.get("data"), validate=True) if isinstance(chunk.get("data"), str) else None
    except (binascii.Error, ValueError):
        data = None
    as_read(device, data is not None, f"{what}: the content is base64 in \"data\": {str(chunk)[:160]}")
    return data


@pytest.mark.req("MC252-CARD")
def test_card_file_info_and_content_agree(device):
    require_login(device)
    path = first_card_file(device)
    info = read_json(device, card(device, "file/info", {"path": path}), f"file info of {path}")
    chunk = read_json(device, card(device, "file/read", {"path": path, "offset": 0, "length": 4096}), f"reading {path}")
    as_read(device, info.get("type") == "file" and isinstance(info.get("size"), int),
            f"the file info of {path} has a type and a size: {info}")
    data = decoded(device, chunk, f"reading {path}")
    device.reading(len(data) == min(info["size"], 4096),
                   f"the first 4096 bytes of {path} ({info['size']} bytes by its info) are {len(data)} bytes")
    device.reading(chunk.get("size") == info["size"] and chunk.get("eof") is (info["size"] <= 4096),
                   f"the chunk's size and eof agree with the file info of {path}: {chunk.get('size')}, {chunk.get('eof')} vs {info['size']}")


@pytest.mark.req("MC252-CARD", "MC252-ERROR-ENVELOPE")
def test_card_dir_lists_the_folders_entries(device):
    require_login(device)
    entries = card_entries(device, card_listing(device), "/")
    device.reading(all(entry.get("type") in ("file", "dir") for entry in entries),
                   f"the entries' type is \"file\" or \"dir\": {[entry.get('type') for entry in entries]}")
    folder = next((entry["name"] for entry in entries if entry.get("type") not in ("file", None)), None)
    if folder is not None:
        card_entries(device, card_listing(device, f"/{folder}"), f"/{folder}")
    missing = card(device, "dir", {"path": "/conformlab-no-such-folder"})
    device.reading(400 <= missing.status_code < 500, f"a folder that does not exist is not listed: {answer(missing)}")
    if missing.status_code >= 400:
        with requirement("MC252-ERROR-ENVELOPE"):
            assert_envelope(missing, "listing a missing folder")


@pytest.mark.req("MC252-CARD-WRITE")
@pytest.mark.destructive("writes and removes a scratch file on the SD card")
def test_scratch_file_written_read_back_and_removed(device):
    require_login(device)
    body = scratch_write(device)  # not verified when the scratch file exists already
    try:
        written = card(device, "file/write", body)
        as_read(device, written.status_code == 200, f"the scratch file is written (a body of this project's reading): {answer(written)}")
        extra = b"appended\n"
        appended = card(device, "file/write", {"path": SCRATCH_FILE, "data": base64.b64encode(extra).decode(), "append": True})
        device.reading(appended.status_code == 200, f"appending to the scratch file: {answer(appended)}")
        content = SCRATCH_DATA + extra if appended.status_code == 200 else SCRATCH_DATA
        info = read_json(device, card(device, "file/info", {"path": SCRATCH_FILE}), "info of the scratch file")
        device.reading(info.get("size") == len(content), f"the scratch file has {info.get('size')} bytes, written {len(content)}")
        chunk = read_json(device, card(device, "file/read", {"path": SCRATCH_FILE, "length": 4096}), "reading the scratch file")
        device.reading(decoded(device, chunk, "reading the scratch file") == content, "the scratch file reads back as written")
        removed = card(device, "remove", {"path": SCRATCH_FILE})
        as_read(device, removed.status_code == 200, f"removing the scratch file: {answer(removed)}")
        gone = card(device, "file/info", {"path": SCRATCH_FILE})
        # "Remove file from SD card": the file is no longer there, so asking for it is an error.
        assert gone.status_code >= 400, f"a removed file must be gone: {answer(gone)}"
        device.reading(gone.status_code == 404, f"a removed file answers 404 Not Found: {answer(gone)}")
        assert_envelope(gone, "info of a removed file")
    finally:
        remove_scratch(device)


@pytest.mark.req("MC252-CARD", "MC252-ERROR-STATUS", "MC252-ERROR-ENVELOPE")
@pytest.mark.destructive("ejects the SD card (logging stops); the run puts it back: on hardware by a restart")
def test_ejected_card_is_unavailable_until_put_back(device):
    """After the safe ejection the card cannot be used. What the card requests answer then is this
    project's reading (503 Service Unavailable with the envelope; another device may answer an empty
    listing): binding on the bundled emulator, a notice elsewhere. An error answer carries the
    document's envelope."""
    require_login(device)
    card_listing(device)  # not verified when there is no card to eject
    op = SCHEMA.operation("POST", "/cmd/memory/card_eject/")
    with CHECKS.restoring(device, op):  # puts the card back (and refuses while a restart would apply pending settings)
        ejected = device.client.post(op.path, json={})
        assert ejected.status_code == 200, f"the card must be ejected: {answer(ejected)}"
        after = card(device, "dir", {"path": "/"})
    with requirement("MC252-ERROR-STATUS"):
        device.reading(after.status_code == 503, f"an ejected card answers 503 Service Unavailable: {answer(after)}")
    if after.status_code >= 400:
        with requirement("MC252-ERROR-ENVELOPE"):
            assert_envelope(after, "a card request after the eject")
    back = card(device, "dir", {"path": "/"})
    assert back.status_code == 200, f"the card must be back after the check: {answer(back)}"
