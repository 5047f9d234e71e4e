"""Tests of `conformlab diff` (conformlab.diff and the console command): small results documents
(format v1) built by hand, and the command run as a subprocess for its output and exit status."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformlab.diff import (
    APPEARED, CHANGED, DISAPPEARED, FIXED, IDENTITY, REGRESSED, compare, regressed, render_markdown, render_text,
)

ROOT = Path(__file__).resolve().parents[1]


def requirement(rid: str, verdict: str, reason: str = "", text: str = "") -> dict:
    outcome = {"PASS": "passed", "FAIL": "failed", "ERROR": "error", "WAIVED": "waived",
               "NOT APPLICABLE": "not applicable"}.get(verdict, "not verified")
    return {"id": rid, "verdict": verdict, "waived": verdict in ("WAIVED", "UNEXPECTED PASS"),
            "section": "Authentication", "text": text or f"The sentence of {rid}.", "source": "esp32-evse-api.txt",
            "checks": [{"id": f"suites/x/test_x.py::test_{rid.lower()}[evse-lab]", "outcome": outcome,
                        "reason": reason, "seconds": 0.01}]}


def target(name: str = "evse-lab", requirements: list[dict] | None = None, firmware: str = "v1.1.0") -> dict:
    reqs = requirements if requirements is not None else [
        requirement("EVSE-AUTH-401", "PASS"), requirement("EVSE-STATE-GET", "PASS")]
    counts: dict[str, int] = {}
    for req in reqs:
        counts[req["verdict"]] = counts.get(req["verdict"], 0) + 1
    return {
        "name": name, "device": "esp32-evse", "title": "ESP32 EVSE", "document": "esp32-evse-api.txt",
        "entry": {"device": "esp32-evse", "base_url": None, "emulator": True, "faults": [], "destructive": False,
                  "timeout": 10.0, "waive": [], "reading": "default", "tls": False,
                  "auth": {"username": "admin", "password": "(set)"}, "options": {}},
        "identity": {"path": "/info", "answer": {"appVersion": firmware, "idfVersion": "v5.4.1", "chip": "esp32",
                                                  "uptime": 12, "heap": {"free": 90000}}},
        "requests": 10, "pacing": None, "counts": counts,
        "requirements": sorted(reqs, key=lambda r: r["id"]), "notices": [], "security_findings": [],
    }


def results(*targets: dict) -> dict:
    return {"format": "conformlab-results", "version": 1,
            "run": {"started": "2026-12-06T10:00:00Z", "finished": "2026-12-06T10:01:00Z", "seconds": 60.0,
                    "conformlab": "0.1.0", "exit_status": 0},
            "targets": sorted(targets, key=lambda t: t["name"]), "unattributed_checks": []}


def run_diff(tmp_path: Path, old, new, *options: str) -> subprocess.CompletedProcess:
    paths = []
    for label, document in (("old", old), ("new", new)):
        path = tmp_path / f"{label}.json"
        if isinstance(document, Path):
            path = document
        elif isinstance(document, str):
            path.write_text(document)
        else:
            path.write_text(json.dumps(document))
        paths.append(str(path))
    return subprocess.run([sys.executable, "-m", "conformlab", "diff", *paths, *options], capture_output=True,
                          text=True, timeout=30, cwd=tmp_path)


def kinds(old: dict, new: dict) -> list[tuple[str, str, str]]:
    return [(c.kind, c.target, c.item) for c in compare(old, new).changes]


# -- the comparison ----------------------------------------------------------------------------------

def test_identical_runs_show_no_change_and_exit_0(tmp_path):
    doc = results(target(), target("evse-2"))
    cmp = compare(doc, copy.deepcopy(doc))
    assert cmp.changes == () and not regressed(cmp)
    assert render_text(cmp) == "no change\n"
    assert "no change" in render_markdown(cmp)
    done = run_diff(tmp_path, doc, doc)
    assert (done.returncode, done.stdout, done.stderr) == (0, "no change\n", "")


def test_pass_to_fail_is_a_regression_with_the_failing_checks_reason(tmp_path):
    old = results(target())
    new = results(target(requirements=[
        requirement("EVSE-AUTH-401", "FAIL", "GET /api/v1/state without credentials answered 200, expected 401"),
        requirement("EVSE-STATE-GET", "PASS")]))
    cmp = compare(old, new)
    assert kinds(old, new) == [(REGRESSED, "evse-lab", "EVSE-AUTH-401")] and regressed(cmp)
    text = render_text(cmp)
    assert text.splitlines()[0] == ("REGRESSED  evse-lab  EVSE-AUTH-401  PASS -> FAIL: GET /api/v1/state without "
                                    "credentials answered 200, expected 401")
    assert text.splitlines()[-1] == "1 regressed"
    done = run_diff(tmp_path, old, new)
    assert (done.returncode, done.stdout, done.stderr) == (1, text, "")


def test_fail_to_pass_is_fixed_and_exit_0(tmp_path):
    old = results(target(requirements=[requirement("EVSE-AUTH-401", "FAIL", "answered 200"),
                                       requirement("EVSE-STATE-GET", "PASS")]))
    new = results(target())
    assert kinds(old, new) == [(FIXED, "evse-lab", "EVSE-AUTH-401")]
    done = run_diff(tmp_path, old, new)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "FIXED  evse-lab  EVSE-AUTH-401  FAIL -> PASS: was: answered 200"
    assert done.stdout.splitlines()[-1] == "1 fixed"


@pytest.mark.parametrize("old_word, new_word, kind", [
    ("PASS", "ERROR", CHANGED), ("PARTIAL", "NOT VERIFIED", CHANGED), ("ERROR", "FAIL", REGRESSED),
    ("WAIVED", "UNEXPECTED PASS", REGRESSED), ("FAIL", "WAIVED", FIXED), ("FAIL", "NOT APPLICABLE", FIXED),
    ("FAIL", "PARTIAL", FIXED), ("FAIL", "ERROR", CHANGED), ("UNEXPECTED PASS", "PASS", CHANGED),
])
def test_verdict_word_changes_are_classified(old_word, new_word, kind):
    old = results(target(requirements=[requirement("EVSE-X", old_word)]))
    new = results(target(requirements=[requirement("EVSE-X", new_word)]))
    assert kinds(old, new) == [(kind, "evse-lab", "EVSE-X")]
    assert regressed(compare(old, new)) == (kind == REGRESSED)


def test_a_target_appearing_and_disappearing_is_one_line_each(tmp_path):
    old = results(target(), target("evse-old"))
    new = results(target(), target("evse-new"))
    assert kinds(old, new) == [(APPEARED, "evse-new", ""), (DISAPPEARED, "evse-old", "")]
    done = run_diff(tmp_path, old, new)
    assert done.returncode == 0
    assert done.stdout == ("APPEARED  evse-new  whole target: esp32-evse, 2 requirements\n\n"
                           "DISAPPEARED  evse-old  whole target: esp32-evse, 2 requirements\n\n"
                           "1 appeared, 1 disappeared\n")


def test_a_requirement_appearing_and_disappearing(tmp_path):
    old = results(target(requirements=[requirement("EVSE-A", "PASS"), requirement("EVSE-GONE", "PASS")]))
    new = results(target(requirements=[requirement("EVSE-A", "PASS"),
                                       requirement("EVSE-NEW", "NOT VERIFIED", "destructive = false")]))
    assert kinds(old, new) == [(APPEARED, "evse-lab", "EVSE-NEW"), (DISAPPEARED, "evse-lab", "EVSE-GONE")]
    lines = render_text(compare(old, new)).splitlines()
    assert "APPEARED  evse-lab  EVSE-NEW  NOT VERIFIED: destructive = false" in lines
    assert "DISAPPEARED  evse-lab  EVSE-GONE  was PASS" in lines
    assert run_diff(tmp_path, old, new).returncode == 0  # a new requirement failing is no regression either


def test_a_firmware_change_is_shown_but_uptime_and_heap_are_not():
    old = results(target(firmware="v1.1.0"))
    new_target = target(firmware="v1.2.0")
    new_target["identity"]["answer"].update(uptime=999, heap={"free": 1})
    new = results(new_target)
    assert kinds(old, new) == [(IDENTITY, "evse-lab", "appVersion")]
    text = render_text(compare(old, new))
    assert "IDENTITY  evse-lab  appVersion  v1.1.0 -> v1.2.0" in text.splitlines()
    assert text.splitlines()[-1] == "1 identity change"
    assert "| evse-lab | appVersion | v1.1.0 | v1.2.0 |" in render_markdown(compare(old, new))


def test_identity_of_name_value_lists_and_numbers():
    def ww(firmware: str, heap: int, mc_firmware: int) -> dict:
        t = target("ww")
        t["identity"] = {"path": "/system/info", "answer": {
            "esp": [{"name": "os_version", "value": firmware, "unit": ""}, {"name": "model_id", "value": "ww_plus"}],
            "heap": [{"name": "free_heap", "value": str(heap), "unit": "bytes"}],
            "firmwareVer": mc_firmware}}
        return t
    assert kinds(results(ww("1.0", 5, 46)), results(ww("1.1", 6, 47))) == [
        (IDENTITY, "ww", "esp.os_version"), (IDENTITY, "ww", "firmwareVer")]
    assert kinds(results(ww("1.0", 5, 46)), results(ww("1.0", 7, 46))) == []


def test_markdown_is_a_heading_a_count_line_and_well_formed_tables():
    long = "The device answers 401 | Unauthorized " + "and says nothing more " * 10
    old = results(target(requirements=[requirement("EVSE-AUTH-401", "PASS", text=long),
                                       requirement("EVSE-B", "FAIL", "was | broken")]), target("gone"))
    new = results(target(firmware="v2|beta", requirements=[
        requirement("EVSE-AUTH-401", "FAIL", "answered 200 | expected 401 <script>", text=long),
        requirement("EVSE-B", "PASS")]))
    md = render_markdown(compare(old, new))
    lines = md.splitlines()
    assert lines[0] == "## conformlab diff"
    assert "1 regressed, 1 fixed, 1 disappeared, 1 identity change" in md
    assert "### Regressed (1)" in lines and "### Fixed (1)" in lines and "### Device identity (1)" in lines
    rows = [line for line in lines if line.startswith("|")]
    width = None
    for previous, row in zip([""] + lines, lines):
        if not row.startswith("|"):
            continue
        assert row.endswith(" |") or row.endswith("|"), row
        cells = re.split(r"(?<!\\)\|", row)[1:-1]  # unescaped pipes delimit the cells
        if not previous.startswith("|"):  # a table's header row
            width = len(cells)
            assert width in (4, 5)
        assert len(cells) == width, row
    regressed_row = next(r for r in rows if "EVSE-AUTH-401" in r)
    assert "answered 200 \\| expected 401 &lt;script>" in regressed_row
    assert "401 \\| Unauthorized" in regressed_row
    sentence = regressed_row.split("**EVSE-AUTH-401**", 1)[1].split(" | PASS |")[0]
    assert sentence.endswith("…") and len(sentence.replace("\\|", "|")) <= 102
    assert "| v1.1.0 | v2\\|beta |" in md
    assert "| gone | (whole target) | – | – | esp32-evse, 2 requirements |" in md


def test_nothing_is_printed_that_looks_like_a_secret_in_the_identity(tmp_path):
    old = results(target())
    new_target = target(firmware="v9")
    new_target["identity"]["answer"]["wifiPassword"] = "hunter2-Secret-99"  # a writer that failed to mask it
    new_target["identity"]["answer"]["modelToken"] = "hunter2-Secret-99"
    done = run_diff(tmp_path, old, results(new_target))
    assert "hunter2" not in done.stdout and "IDENTITY  evse-lab  modelToken  (none) -> ***" in done.stdout


# -- files the command refuses -----------------------------------------------------------------------

def assert_one_line_error(done: subprocess.CompletedProcess, path: str, *words: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("conformlab: error: ") and path in lines[0]
    for word in words:
        assert word in lines[0]


def broken(change) -> str:
    document = results(target())
    change(document)
    return json.dumps(document)


def _no_requirements(document: dict) -> None:
    del document["targets"][0]["requirements"]


@pytest.mark.parametrize("content, words", [
    ("{not json", ("not JSON",)),
    ("[1, 2]", ("not a results file",)),
    (broken(lambda d: d.update(format="junit")), ("format", "junit")),
    (broken(lambda d: d["targets"][0]["requirements"][0].update(verdict="GREAT")), ("GREAT",)),
    (broken(_no_requirements), ("requirements",)),
    (broken(lambda d: d["targets"].append(copy.deepcopy(d["targets"][0]))), ("evse-lab", "twice")),
    (broken(lambda d: d.update(version=2)), ("version 2", "newer")),
])
def test_a_malformed_file_is_one_line_naming_it_and_exit_2(tmp_path, content, words):
    done = run_diff(tmp_path, results(target()), content)
    assert_one_line_error(done, "new.json", *words)


def test_a_missing_file_is_one_line_naming_it_and_exit_2(tmp_path):
    done = run_diff(tmp_path, tmp_path / "nowhere.json", results(target()))
    assert_one_line_error(done, "nowhere.json", "No such file")


# -- end to end: two real runs of the suites, the second with a fault switched on -----------------

WCC_KEY = "wcc-key-5d0a9e7b31"  # as in targets.toml's wcc-emulator-auth


def suite_run(tmp_path: Path, label: str, faults: str = "") -> Path:
    targets = tmp_path / f"{label}.toml"
    targets.write_text(f'[targets.wcc]\ndevice = "wcc-lite"\nemulator = true\ndestructive = true\n{faults}\n'
                       f'[targets.wcc.auth]\napi_key = "{WCC_KEY}"\n')
    out = tmp_path / f"{label}.json"
    done = subprocess.run([sys.executable, "-m", "pytest", "suites", f"--targets-file={targets}", "--target", "wcc",
                           "-p", "no:cacheprovider", "-q", "-k", "refused_with_missing_or_wrong or accepted_with_the_right",
                           f"--html={tmp_path}/{label}.html", f"--junitxml={tmp_path}/{label}.xml",
                           f"--results-json={out}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == (1 if faults else 0), done.stdout[-3000:] + done.stderr[-2000:]
    assert out.is_file(), done.stdout[-2000:]
    return out


def test_a_fault_switched_on_shows_exactly_what_it_breaks_as_regressed(tmp_path):
    clean, again = suite_run(tmp_path, "clean"), suite_run(tmp_path, "again")
    broken_run = suite_run(tmp_path, "fault", 'faults = ["wrong_key_accepted"]')

    same = subprocess.run([sys.executable, "-m", "conformlab", "diff", str(clean), str(again)],
                          capture_output=True, text=True, timeout=60)
    assert (same.returncode, same.stdout, same.stderr) == (0, "no change\n", ""), "the same run twice: no change"

    done = subprocess.run([sys.executable, "-m", "conformlab", "diff", str(clean), str(broken_run)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    regressions = [line for line in done.stdout.splitlines() if line.startswith("REGRESSED")]
    # the fault accepts a wrong apiKey: what the device must answer a wrong key (401) breaks, nothing else
    assert [line.split("  ")[1:3] for line in regressions] == [["wcc", "WCC-AUTH-401"]], done.stdout
    assert regressions[0].startswith("REGRESSED  wcc  WCC-AUTH-401  PASS -> FAIL: ") and "200" in regressions[0]
    assert done.stdout.splitlines()[-1].startswith("1 regressed")
    assert WCC_KEY not in done.stdout
    md = subprocess.run([sys.executable, "-m", "conformlab", "diff", str(clean), str(broken_run), "--markdown"],
                        capture_output=True, text=True, timeout=60)
    assert md.returncode == 1 and "| wcc | **WCC-AUTH-401**" in md.stdout and WCC_KEY not in md.stdout
