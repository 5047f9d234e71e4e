"""The run's outputs: the default HTML/JUnit reports, security findings, waivers and stale waivers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "report-test-secret"


def run(tmp_path, targets: str, *args):
    path = tmp_path / "targets.toml"
    path.write_text(targets)
    return subprocess.run([sys.executable, "-m", "pytest", "suites", f"--targets-file={path}", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def emulator(name: str, extra: str = "", password: str | None = None) -> str:
    text = f'[targets.{name}]\ndevice = "esp32-evse"\nemulator = true\ndestructive = true\n{extra}\n'
    if password:
        text += f'[targets.{name}.auth]\nusername = "admin"\npassword = "{password}"\n'
    return text


def test_every_run_writes_a_self_contained_html_and_junit_report(tmp_path):
    result = run(tmp_path, emulator("report-check", password=PASSWORD), "--target", "report-check",
                 "-k", "webdav or unknown_endpoint or refused_with_missing")
    assert result.returncode == 0, result.stdout[-3000:]
    match = re.search(r"Generated html report: file://(\S+\.html)", result.stdout)
    assert match, result.stdout[-2000:]
    html_path = Path(match.group(1))
    xml_path = html_path.with_suffix(".xml")
    try:
        assert html_path.parent == ROOT / "reports" and html_path.name.startswith("report-check-")
        html = html_path.read_text()
        assert "Security findings" in html and "EVSE-DAV-NOAUTH" in html, "the WebDAV hole must stand out"
        assert "Requirements" in html and "EVSE-AUTH-401" in html
        assert '<link rel="stylesheet"' not in html, "the report must be self-contained"
        xml = xml_path.read_text()
        assert 'name="requirement"' in xml and 'value="report-check"' in xml
        for text in (html, xml, result.stdout):
            assert PASSWORD not in text
        assert "SECURITY FINDINGS" in result.stdout
    finally:
        html_path.unlink(missing_ok=True)
        xml_path.unlink(missing_ok=True)


def test_waived_requirement_is_reported_as_expected_failure(tmp_path):
    target = emulator("waived", 'faults = ["unknown_path_served"]\nwaive = ["EVSE-CONV-404"]')
    result = run(tmp_path, target, "--target=waived", "-k", "unknown_endpoint", f"--html={tmp_path}/r.html",
                 f"--junitxml={tmp_path}/r.xml", "-rx")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "6 xfailed" in result.stdout and "waived on target waived: EVSE-CONV-404" in result.stdout


def test_stale_waiver_fails_the_run(tmp_path):
    target = emulator("stale", 'waive = ["EVSE-CONV-404"]')
    result = run(tmp_path, target, "--target=stale", "-k", "unknown_endpoint", f"--html={tmp_path}/r.html",
                 f"--junitxml={tmp_path}/r.xml")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "STALE WAIVER stale: EVSE-CONV-404 is waived but every check of it passed" in result.stdout


def test_waiver_of_an_unknown_requirement_is_a_usage_error(tmp_path):
    result = run(tmp_path, emulator("typo", 'waive = ["EVSE-CONV-4O4"]'), "--target=typo")
    assert result.returncode == 4
    assert 'target "typo": key "waive": no requirement "EVSE-CONV-4O4" for esp32-evse' in result.stderr


def test_only_the_selected_devices_suites_are_collected(tmp_path):
    result = run(tmp_path, emulator("one"), "--target=one", "--collect-only", "-q", f"--html={tmp_path}/r.html",
                 f"--junitxml={tmp_path}/r.xml")
    assert result.returncode == 0, result.stdout[-2000:]
    ids = [line for line in result.stdout.splitlines() if "::" in line]
    assert ids and all("[one-" in line or line.endswith("[one]") for line in ids), ids[:5]
