"""`pytest ... --baseline=OLD.json`: the run compared with an earlier run's results file at its end
(conformlab.diff), on top of the HTML report and under a "baseline" separator in the terminal; a
regression makes the exit status 1; a missing or invalid baseline stops the run before any test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformlab import diff
from conformlab.plugin.results import gated_exit_status
from conformlab.verdicts import NO_VERDICT

ROOT = Path(__file__).resolve().parents[1]
TARGET = "wcc-emulator-auth"
WCC_KEY = "wcc-key-5d0a9e7b31"  # targets.toml's wcc-emulator-auth
CHECKS = "refused_with_missing_or_wrong or accepted_with_the_right"  # quick; WCC-AUTH-401 among them


def run(tmp: Path, label: str, *args: str, targets_file: Path | str = "targets.toml") -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "suites", f"--targets-file={targets_file}", f"--target={TARGET}",
               "-p", "no:cacheprovider", "-q", "-k", CHECKS, f"--html={tmp}/{label}.html",
               f"--junitxml={tmp}/{label}.xml", f"--results-json={tmp}/{label}.json", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def faulty_targets(tmp: Path) -> Path:
    """targets.toml's wcc-emulator-auth (same name: matched with the baseline's), with a fault switched on."""
    path = tmp / "faulty.toml"
    path.write_text(f'[targets.{TARGET}]\ndevice = "wcc-lite"\nemulator = true\ndestructive = true\n'
                    'disabled_endpoints = ["/api/syslog"]\nfaults = ["wrong_key_accepted"]\n'
                    f'[targets.{TARGET}.auth]\napi_key = "{WCC_KEY}"\n')
    return path


def baseline_block(page: str) -> str:
    start = page.find('id="conformlab-baseline"')
    assert start != -1, "the comparison block is in the HTML report"
    return page[start:page.index("</div>", start)]


def baseline_section(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("=") and " baseline " in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("=", "-"))), len(lines))
    return lines[start + 1:end]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("baseline")
    done = run(tmp, "old")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert not [line for line in done.stdout.splitlines() if line.startswith("=") and " baseline " in line], \
        "no comparison without --baseline"
    return tmp / "old.json"


def test_the_same_run_again_shows_no_change_and_exits_0(baseline, tmp_path):
    done = run(tmp_path, "again", f"--baseline={baseline}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    page = (tmp_path / "again.html").read_text()
    block = baseline_block(page)
    assert "Compared with old.json" in block and "no change" in block and "<table" not in block
    assert page.index('id="conformlab-baseline"') < page.index("<h2>Requirements</h2>"), "at the very top"
    assert baseline_section(done.stdout) == ["compared with old.json", "no change"]
    assert json.loads((tmp_path / "again.json").read_text())["run"]["exit_status"] == 0


def test_a_regression_is_on_top_of_the_report_and_fails_the_run(baseline, tmp_path):
    done = run(tmp_path, "broken", f"--baseline={baseline}", targets_file=faulty_targets(tmp_path))
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    page = (tmp_path / "broken.html").read_text()
    block = baseline_block(page)
    assert page.index('id="conformlab-baseline"') < page.index("<h2>Requirements</h2>"), "before the requirements table"
    assert "<th>Group</th><th>Target</th><th>Requirement</th><th>Old</th><th>New</th><th>Why</th>" in block
    regressed = [row for row in block.split("<tr")[1:] if "<b>REGRESSED</b>" in row]
    assert len(regressed) == 1, block
    row = regressed[0]
    assert row.startswith(' style="color:#b00020"'), "regressions in red"
    assert f"<td>{TARGET}</td>" in row and "<b>WCC-AUTH-401</b>" in row and "<td>PASS</td><td>FAIL</td>" in row
    assert "1 regressed" in block and "color:#b00020" in block.split("<table")[0]

    section = baseline_section(done.stdout)
    assert section[0] == "compared with old.json"
    assert [line.split("  ")[:3] for line in section if line.startswith("REGRESSED")] == [["REGRESSED", TARGET, "WCC-AUTH-401"]]
    assert section[-1] == "1 requirement regressed against the baseline old.json: exit status 1"
    assert json.loads((tmp_path / "broken.json").read_text())["run"]["exit_status"] == 1
    for text in (done.stdout, done.stderr, page):
        assert WCC_KEY not in text


def test_a_missing_baseline_stops_the_run_before_any_test(tmp_path):
    done = run(tmp_path, "none", f"--baseline={tmp_path}/nowhere.json")
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-2000:]
    said = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(said) == 1 and said[0].startswith(f"ERROR: --baseline: {tmp_path}/nowhere.json: cannot read"), done.stderr
    assert "passed" not in done.stdout and not (tmp_path / "none.json").exists()


def test_an_invalid_baseline_is_a_usage_error_of_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "conformlab-results", "version": 2}))
    done = run(tmp_path, "none", f"--baseline={bad}")
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-2000:]
    said = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(said) == 1 and "newer" in said[0] and str(bad) in said[0], done.stderr


def comparison(*kinds: str) -> diff.Comparison:
    return diff.Comparison(tuple(diff.Change(kind, "t", f"R-{i}", "PASS", "FAIL") for i, kind in enumerate(kinds)))


def test_the_gate_turns_a_passing_or_unjudged_run_into_1_and_keeps_pytests_own_statuses():
    assert gated_exit_status(0, comparison(diff.REGRESSED)) == 1
    assert gated_exit_status(NO_VERDICT, comparison(diff.REGRESSED)) == 1, "a failure outranks an error"
    assert gated_exit_status(1, comparison(diff.REGRESSED)) == 1
    for status in (2, 3, 4, 5):
        assert gated_exit_status(status, comparison(diff.REGRESSED)) == status
    assert gated_exit_status(0, comparison(diff.FIXED, diff.CHANGED, diff.APPEARED)) == 0
    assert gated_exit_status(NO_VERDICT, comparison()) == NO_VERDICT
    assert gated_exit_status(0, None) == 0
