"""Where the vendor's pages disagree (CONFLICT entries) and behaviour that depends on the firmware: one
real run against emulators that follow each side, and firmware that changes which rule binds.

- EVSE timezone: the REST page's POSIX string or the scheduler page's IANA name (NOTES.md);
- EVSE WebDAV: no credential check (the REST page) or checked from mid-2026 firmware on (NOTES.md),
  judged by the build date GET /info reports (appDate);
- WCC Lite `Devices` (the page) or `devices` (an older revision, NOTES.md); its endpoints with files or
  field data need firmware 1.8 (the target's `firmware`: the gateway reports none).
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformlab import diff
from conformlab.plugin.results import load_results

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "conflict-run-pw-91c3"
TARGETS = """
[targets.evse-posix]
device = "esp32-evse"
emulator = true
destructive = true
[targets.evse-posix.auth]
username = "admin"
password = "{password}"

[targets.evse-iana]
device = "esp32-evse"
emulator = true
destructive = true
reading = "alternative"
[targets.evse-iana.auth]
username = "admin"
password = "{password}"

[targets.evse-new-open]
device = "esp32-evse"
emulator = true
destructive = true
faults = ["dav_open_on_new_firmware"]
[targets.evse-new-open.auth]
username = "admin"
password = "{password}"

[targets.wcc-older-revision]
device = "wcc-lite"
emulator = true
destructive = true
reading = "alternative"
firmware = "1.8.3"

[targets.wcc-old-firmware]
device = "wcc-lite"
emulator = true
destructive = true
firmware = "1.7.4"
"""
CHECKS = "timezone_follows or webdav_credentials or lists_under_the_key or every_listed_tag"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("conflicts")
    targets = work / "targets.toml"
    targets.write_text(TARGETS.format(password=PASSWORD))
    html, junit, results = work / "run.html", work / "run.xml", work / "run.json"
    names = re.findall(r"^\[targets\.([\w-]+)\]$", TARGETS, re.MULTILINE)
    command = [sys.executable, "-m", "pytest", "suites", f"--targets-file={targets}", "-p", "no:cacheprovider",
               "-k", CHECKS, f"--html={html}", f"--junitxml={junit}", *(f"--target={name}" for name in names)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert results.is_file(), result.stdout[-3000:] + result.stderr[-2000:]
    document = load_results(results)
    return {"stdout": result.stdout, "code": result.returncode, "html": html.read_text(),
            "document": document, "targets": {t["name"]: t for t in document["targets"]}}


def requirement(run, target: str, rid: str) -> dict:
    return next(r for r in run["targets"][target]["requirements"] if r["id"] == rid)


@pytest.mark.parametrize("target, rid, follows", [
    ("evse-posix", "EVSE-CFG-SCHED-TZ-POSIX", ["POSIX"]), ("evse-iana", "EVSE-CFG-SCHED-TZ-POSIX", ["IANA"]),
    ("evse-posix", "EVSE-DAV-NOAUTH", ["no-check"]), ("evse-iana", "EVSE-DAV-NOAUTH", ["checked"]),
    ("wcc-older-revision", "WCC-DEVICES-KEY", ["devices"]),
])
def test_a_conflict_passes_either_side_and_says_which_one_the_device_follows(run, target, rid, follows):
    entry = requirement(run, target, rid)
    assert entry["verdict"] == "PASS"
    assert entry["conflict"]["follows"] == follows
    sources = {r["name"]: r["source"] for r in entry["conflict"]["readings"]}
    assert len(sources) == 2 and "NOTES.md" in sources.values(), sources  # both sentences, each with its source
    assert f"CONFLICT {target}  {rid}: the device follows {follows[0]} ({sources[follows[0]]})" in run["stdout"]


def test_the_report_shows_both_sentences_and_the_side_followed(run):
    page = run["html"]
    section = page[page.index('id="conformlab-conflicts"'):]
    assert "Where the vendor&#x27;s pages disagree" in section or "Where the vendor's pages disagree" in section
    for words in ("CONFLICT EVSE-CFG-SCHED-TZ-POSIX", "POSIX TZ string", "IANA zone name", "CONFLICT WCC-DEVICES-KEY",
                  "An older revision of the page writes"):
        assert words in section, words
    assert re.search(r'href="#req-evse-iana-EVSE-CFG-SCHED-TZ-POSIX">evse-iana</a>: .*?follows <b>IANA</b>', section)
    assert 'id="req-evse-iana-EVSE-CFG-SCHED-TZ-POSIX"' in page  # the link lands on the requirement's row
    assert PASSWORD not in page


def test_webdav_is_judged_by_the_firmware_build_date(run):
    old, new, open_new = (requirement(run, t, "EVSE-DAV-NOAUTH") for t in ("evse-posix", "evse-iana", "evse-new-open"))
    assert old["verdict"] == new["verdict"] == "PASS"
    assert "the REST page binds (built before June 2026)" in old["firmware_rules"][0]
    assert "built 2025-02-21" in old["firmware_rules"][0] and "GET /api/v1/info" in old["firmware_rules"][0]
    assert "NOTES.md binds (built from August 2026 on)" in new["firmware_rules"][0]
    # Firmware built after mid-2026 with WebDAV still open: a FAIL quoting NOTES.md's sentence.
    assert open_new["verdict"] == "FAIL" and open_new["conflict"]["follows"] == ["no-check"]
    reason = open_new["checks"][0]["reason"]
    assert "Firmware from mid-2026 on checks the HTTP Basic credentials on WebDAV too." in reason
    assert run["targets"]["evse-new-open"]["firmware"]["built"] == "2026-09-12"
    assert run["code"] == 1


def test_endpoints_newer_than_the_firmware_are_not_applicable(run):
    old = run["targets"]["wcc-old-firmware"]
    assert old["firmware"] == {"version": "1.7.4", "built": None, "source": 'the targets file: firmware = "1.7.4"'}
    for rid in ("WCC-DEVICES-KEY", "WCC-ALIASES"):
        entry = requirement(run, "wcc-old-firmware", rid)
        assert entry["verdict"] == "NOT APPLICABLE", entry
        assert entry["firmware_rules"] == ["the endpoints that take files or field data require firmware 1.8 or newer: "
                                           'not on this firmware; firmware 1.7.4 (the targets file: firmware = "1.7.4")']
        assert "requires WCC Lite firmware version 1.8 or newer" in entry["checks"][0]["reason"]
    newer = requirement(run, "wcc-older-revision", "WCC-ALIASES")
    assert newer["verdict"] == "PASS" and len(newer["firmware_rules"]) == 1 and "this firmware has them" in newer["firmware_rules"][0]
    assert "rule applied: the endpoints that take files or field data require firmware 1.8 or newer: not on" in run["html"]


def test_the_devices_declared_capabilities_are_in_the_results(run):
    evse = run["targets"]["evse-posix"]
    assert evse["capabilities"]["path"] == "/board-config"
    assert {"deviceName", "socketLock", "serials"} <= set(evse["capabilities"]["answer"])
    assert "capabilities" not in run["targets"]["wcc-old-firmware"]  # its document declares none


def test_diff_shows_a_device_that_now_follows_the_other_side(run):
    before = run["document"]
    after = copy.deepcopy(before)
    moved = next(r for r in next(t for t in after["targets"] if t["name"] == "evse-posix")["requirements"]
                 if r["id"] == "EVSE-CFG-SCHED-TZ-POSIX")
    moved["conflict"]["follows"] = ["IANA"]
    comparison = diff.compare(before, after)
    [change] = comparison.changes
    assert (change.kind, change.target, change.item) == (diff.CHANGED, "evse-posix", "EVSE-CFG-SCHED-TZ-POSIX")
    assert (change.old, change.new) == ("PASS, follows POSIX", "PASS, follows IANA")
    assert not diff.regressed(comparison) and diff.compare(before, before).changes == ()
