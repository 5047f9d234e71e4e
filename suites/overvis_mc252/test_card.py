"""The SD card: folders listed, a file's info and content read consistently; a scratch file written,
appended, read back and removed (destructive: only where the target allows it, and never a file the
run did not create). Bodies and answers beyond the paths are the emulator's reading (see the schema)."""

from __future__ import annotations

import base64

import pytest

from conformlab.checks import answer
from conformlab.client import expect_json
from suites.overvis_mc252.mc252 import (
    SCRATCH_DATA, SCRATCH_FILE, assert_envelope, first_card_file, remove_scratch, require_login, scratch_write,
)


def card(device, what: str, body: dict):
    return device.client.post(f"/card/{what}/", json=body)


@pytest.mark.req("MC252-CARD")
def test_card_file_info_and_content_agree(device):
    require_login(device)
    path = first_card_file(device)
    info = expect_json(card(device, "file/info", {"path": path}))
    assert info.get("type") == "file" and isinstance(info.get("size"), int), f"file info of {path}: {info}"
    chunk = expect_json(card(device, "file/read", {"path": path, "offset": 0}))
    data = base64.b64decode(chunk.get("data", ""), validate=True)
    assert chunk.get("size") == info["size"], f"read and info disagree on the size of {path}: {chunk.get('size')} vs {info['size']}"
    assert len(data) == min(info["size"], 4096), f"the first chunk of {path} has {len(data)} bytes of {info['size']}"
    assert chunk.get("eof") is (info["size"] <= 4096), f"eof of the first chunk of {path} ({info['size']} bytes): {chunk.get('eof')}"


@pytest.mark.req("MC252-CARD", "MC252-ERROR-ENVELOPE")
def test_card_dir_lists_the_folders_entries(device):
    require_login(device)
    listing = expect_json(card(device, "dir", {"path": "/"}))
    names = [entry.get("name") for entry in listing.get("entries", [])]
    assert names and all(isinstance(name, str) and name for name in names), f"the root folder's entries: {listing}"
    folder = next((entry["name"] for entry in listing["entries"] if entry.get("type") == "dir"), None)
    if folder is not None:
        inner = expect_json(card(device, "dir", {"path": f"/{folder}"}))
        assert isinstance(inner.get("entries"), list), f"the entries of /{folder}: {inner}"
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
        info = expect_json(card(device, "file/info", {"path": SCRATCH_FILE}))
        assert info.get("size") == len(SCRATCH_DATA + extra), f"the scratch file has {info.get('size')} bytes, written {len(SCRATCH_DATA + extra)}"
        chunk = expect_json(card(device, "file/read", {"path": SCRATCH_FILE}))
        assert base64.b64decode(chunk["data"]) == SCRATCH_DATA + extra, "the scratch file must read back as written"
        removed = card(device, "remove", {"path": SCRATCH_FILE})
        assert removed.status_code == 200, f"removing the scratch file: {answer(removed)}"
        gone = card(device, "file/info", {"path": SCRATCH_FILE})
        assert gone.status_code == 404, f"a removed file must be gone: {answer(gone)}"
        assert_envelope(gone, "info of a removed file")
    finally:
        remove_scratch(device)
