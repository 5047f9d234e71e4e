"""The run's outputs: the default HTML/JUnit reports, security findings, per-requirement verdicts,
waivers, unexpected passes and the exit status."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

import pytest

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
        assert "file://" not in html and str(ROOT) not in html, "one file to mail: no local path, no local link"
        # It opens with the verdict per target: the device, what it says it is (the identity answer), the counts.
        top = html.index("Verdict per target")
        # What the device says it is: the firmware its GET /info reported (appVersion, appDate), the chip.
        said = html[top:html.index("<h2>Requirements</h2>")]
        assert "firmware v1.1.0; built 2025-02-21; idfVersion: v5.4.1; chip: esp32" in said, said[:2000]
        # "How do you know it works?": a passing check of each requirement keeps its exchanges.
        assert "exchanges: see " in html and re.search(r"evidence of [A-Z0-9, -]*EVSE-AUTH-401", html)
        xml = xml_path.read_text()
        assert 'name="requirement"' in xml and 'value="report-check"' in xml
        for text in (html, xml, result.stdout):
            assert PASSWORD not in text
        assert "SECURITY FINDINGS" in result.stdout
    finally:
        html_path.unlink(missing_ok=True)
        xml_path.unlink(missing_ok=True)
        xml_path.with_suffix(".json").unlink(missing_ok=True)  # the results file beside them


def test_waived_requirement_is_reported_as_expected_failure(tmp_path):
    target = emulator("waived", 'faults = ["unknown_path_served"]\nwaive = ["EVSE-CONV-404"]')
    result = run(tmp_path, target, "--target=waived", "-k", "unknown_endpoint", f"--html={tmp_path}/r.html",
                 f"--junitxml={tmp_path}/r.xml", "-rx")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "6 xfailed" in result.stdout and "waived on target waived: EVSE-CONV-404" in result.stdout
    assert re.search(r"^WAIVED +waived +EVSE-CONV-404: ", result.stdout, re.M), result.stdout[-3000:]
    assert global_properties(tmp_path / "r.xml")["verdict waived EVSE-CONV-404"] == "WAIVED"


def test_stale_waiver_is_an_unexpected_pass_that_fails_the_run(tmp_path):
    target = emulator("stale", 'waive = ["EVSE-CONV-404"]')
    result = run(tmp_path, target, "--target=stale", "-k", "unknown_endpoint", f"--html={tmp_path}/r.html",
                 f"--junitxml={tmp_path}/r.xml")
    assert result.returncode == 1, result.stdout[-3000:]
    assert ("UNEXPECTED PASS stale: EVSE-CONV-404 is waived but every check of it passed; remove the waiver"
            in result.stdout), result.stdout[-3000:]
    assert global_properties(tmp_path / "r.xml")["verdict stale EVSE-CONV-404"] == "UNEXPECTED PASS"
    assert "Unexpected passes: remove the waivers" in (tmp_path / "r.html").read_text()


def test_a_waivers_reason_is_shown_wherever_the_waived_verdict_is(tmp_path):
    waiver = '{ id = "EVSE-CONV-404", reason = "fixed in 2.1, see ticket FW-812", until = "2999-12-31" }'
    target = emulator("reasoned", f'faults = ["unknown_path_served"]\nwaive = [{waiver}]')
    result = run(tmp_path, target, "--target=reasoned", "-k", "unknown_endpoint", f"--html={tmp_path}/r.html",
                 f"--junitxml={tmp_path}/r.xml", f"--results-json={tmp_path}/r.json", "-rx")
    assert result.returncode == 0, result.stdout[-3000:]
    said = "waived: fixed in 2.1, see ticket FW-812; until 2999-12-31"
    assert re.search(rf"^WAIVED +reasoned +EVSE-CONV-404 \({re.escape(said)}\): ", result.stdout, re.M), result.stdout[-3000:]
    assert f"waived on target reasoned ({said}): EVSE-CONV-404" in result.stdout  # each expected failure
    assert said in (tmp_path / "r.html").read_text()
    [entry] = [r for r in json.loads((tmp_path / "r.json").read_text())["targets"][0]["requirements"] if r["id"] == "EVSE-CONV-404"]
    assert entry["verdict"] == "WAIVED" and entry["waiver"] == {"reason": "fixed in 2.1, see ticket FW-812", "until": "2999-12-31"}


def test_an_expired_waiver_waives_nothing_and_fails_the_run(tmp_path):
    waiver = '{ id = "EVSE-CONV-404", reason = "fixed in 2.1", until = "2020-01-31" }'
    target = emulator("expired", f'waive = ["EVSE-CONV-415", {waiver}]')  # the bare one is in force and stale-free
    result = run(tmp_path, target, "--target=expired", "-k", "unknown_endpoint", f"--html={tmp_path}/r.html",
                 f"--junitxml={tmp_path}/r.xml")
    assert result.returncode == 1, result.stdout[-3000:]  # every check passes: the waiver alone fails the gate
    line = ("EXPIRED WAIVER expired: the waiver of EVSE-CONV-404 (fixed in 2.1) expired on 2020-01-31: it waives "
            "nothing; remove it or renew it")
    assert line in result.stdout, result.stdout[-3000:]
    assert global_properties(tmp_path / "r.xml")["verdict expired EVSE-CONV-404"] == "PASS"  # judged as if unwaived
    assert "Expired waivers: remove or renew them" in (tmp_path / "r.html").read_text()


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


# -- verdicts ---------------------------------------------------------------------------------------


def global_properties(xml: Path) -> dict[str, str]:
    suite = ElementTree.parse(xml).getroot().find("testsuite")
    return {p.get("name"): p.get("value") for p in suite.find("properties") or []}


def junit_cases(xml: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """{testcase name: (its result element: failure/error/skipped/passed, its properties)}."""
    cases = {}
    for case in ElementTree.parse(xml).iter("testcase"):
        result = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
        name = case.get("name").split("@")[0]  # xdist's loadgroup adds "@<group>"
        cases[name] = (result, {p.get("name"): p.get("value") for p in case.iter("property")})
    return cases


# A suite of our own, run by the plugin like the real ones: every way a check can end, on two targets
# that are never contacted (the checks take `target`, not `device`). "lab" waives three requirements.
CASES = textwrap.dedent('''
    import pytest
    from conformlab.verdicts import check, not_applicable, not_verified, requirement, unreachable

    @pytest.mark.req("EVSE-CONV-OK", "EVSE-AUTH-401")
    def test_case_fails_the_waived_id(target):
        with requirement("EVSE-AUTH-401"):
            assert target.name == "nobody", "the realm is wrong"

    @pytest.mark.req("EVSE-CONV-OK")
    def test_case_conv_ok_passes(target):
        pass

    @pytest.mark.req("EVSE-CONV-400-MALFORMED", "EVSE-AUTH-401")
    def test_case_fails_the_primary_id(target):
        assert target.name == "nobody", "the primary requirement is violated"

    @pytest.mark.req("EVSE-CONV-404", "EVSE-CONV-415", "EVSE-CONV-413")
    def test_case_nested_attribution(target):
        with requirement("EVSE-CONV-415"):
            with requirement("EVSE-CONV-413"):
                pytest.fail("the body limit is not enforced")

    @pytest.mark.req("EVSE-CFG-COMBINED", "EVSE-CFG-CAPABILITY")
    def test_case_check_function(target):
        check("EVSE-CFG-CAPABILITY", False, "the board declares a capability it lacks")

    @pytest.mark.req("EVSE-AUTH-OPEN")
    def test_case_not_applicable(target):
        not_applicable(f"credentials are set ({target.auth['password']})")

    @pytest.mark.req("EVSE-LOG")
    def test_case_plain_skip(target):
        pytest.skip("the log holds fewer than 2 lines")

    @pytest.mark.req("EVSE-LOG")
    def test_case_tagged_not_verified(target):
        not_verified("a vehicle is connected")

    @pytest.mark.req("EVSE-NEXTION")
    def test_case_partial_passes(target):
        pass

    @pytest.mark.req("EVSE-NEXTION")
    def test_case_partial_not_verified(target):
        not_verified("no display connected")

    @pytest.mark.req("EVSE-FW-CHANNEL")
    def test_case_with_notice_passes(target, notice):
        notice("the device answered slowly")

    @pytest.mark.req("EVSE-FW-CHANNEL")
    def test_case_with_notice_not_applicable(target):
        not_applicable("one OTA channel only")

    @pytest.mark.req("EVSE-WIFI-AP")
    def test_case_waived_but_passes(target):
        pass

    @pytest.mark.req("EVSE-RESTART")
    def test_case_unreachable(target):
        unreachable("did not come back within 120 s of POST /api/v1/restart")

    @pytest.fixture
    def broken_setup():
        raise AssertionError("cannot read the state to restore")

    @pytest.fixture
    def broken_teardown():
        yield
        raise RuntimeError("could not put the old value back")

    @pytest.mark.req("EVSE-FW-CHECK")
    def test_case_setup_error(target, broken_setup):
        assert False, "never runs"

    @pytest.mark.req("EVSE-SCRIPT-OUTPUT")
    def test_case_teardown_error(target, broken_teardown):
        pass

    @pytest.mark.req("EVSE-LOG-PANIC")
    def test_case_fail_beats_error_failing(target):
        assert False, "no X-Time header"

    @pytest.mark.req("EVSE-LOG-PANIC")
    def test_case_fail_beats_error_erroring(target, broken_setup):
        pass

    @pytest.mark.req("EVSE-FW-UPDATE")
    @pytest.mark.destructive("flashes the device")
    def test_case_destructive(target):
        pass

    @pytest.mark.req("EVSE-FW-UPLOAD")
    @pytest.mark.emulator_only("needs the emulator's version server")
    def test_case_emulator_only(target):
        pass
''')

CASE_TARGETS = textwrap.dedent(f'''
    [targets.lab]
    device = "esp32-evse"
    base_url = "http://127.0.0.1:9"
    timeout = 1
    waive = ["EVSE-AUTH-401", "EVSE-WIFI-AP", "EVSE-LOG"]
    [targets.lab.auth]
    username = "admin"
    password = "{PASSWORD}"

    [targets.lab2]
    device = "esp32-evse"
    base_url = "http://127.0.0.2:9"  # another device than lab's (two targets of one device are refused)
    timeout = 1
    [targets.lab2.auth]
    username = "admin"
    password = "{PASSWORD}"
''')

EXPECTED = {  # requirement: (verdict on lab, verdict on lab2)
    "EVSE-AUTH-401": ("WAIVED", "FAIL"),  # failed where attributed; "not reached" where another id failed
    "EVSE-CONV-OK": ("PARTIAL", "PARTIAL"),  # passed + not reached by the failure of EVSE-AUTH-401
    "EVSE-CONV-400-MALFORMED": ("FAIL", "FAIL"),  # unattributed: the primary id, though EVSE-AUTH-401 is waived
    "EVSE-CONV-413": ("FAIL", "FAIL"),  # the innermost requirement() wins
    "EVSE-CONV-415": ("NOT VERIFIED", "NOT VERIFIED"),
    "EVSE-CONV-404": ("NOT VERIFIED", "NOT VERIFIED"),
    "EVSE-CFG-CAPABILITY": ("FAIL", "FAIL"),
    "EVSE-CFG-COMBINED": ("NOT VERIFIED", "NOT VERIFIED"),
    "EVSE-AUTH-OPEN": ("NOT APPLICABLE", "NOT APPLICABLE"),
    "EVSE-LOG": ("NOT VERIFIED", "NOT VERIFIED"),  # waived on lab, and keeps its verdict
    "EVSE-NEXTION": ("PARTIAL", "PARTIAL"),
    "EVSE-FW-CHANNEL": ("PASS", "PASS"),  # passed (with a notice) + not applicable
    "EVSE-WIFI-AP": ("UNEXPECTED PASS", "PASS"),
    "EVSE-RESTART": ("ERROR", "ERROR"),
    "EVSE-FW-CHECK": ("ERROR", "ERROR"),  # a setup error is no verdict on the device
    "EVSE-SCRIPT-OUTPUT": ("ERROR", "ERROR"),
    "EVSE-LOG-PANIC": ("FAIL", "FAIL"),
    "EVSE-FW-UPDATE": ("NOT VERIFIED", "NOT VERIFIED"),
    "EVSE-FW-UPLOAD": ("NOT VERIFIED", "NOT VERIFIED"),
}


@pytest.fixture
def cases(tmp_path):
    """Run the suite above in a project of its own (ini, suites/esp32_evse/) on both targets."""
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p conformlab.plugin -p no:locust\njunit_family = xunit1\n")
    (tmp_path / "suites" / "esp32_evse").mkdir(parents=True)
    (tmp_path / "suites" / "esp32_evse" / "test_verdict_cases.py").write_text(CASES)
    (tmp_path / "targets.toml").write_text(CASE_TARGETS)

    def run_cases(*args):
        return subprocess.run([sys.executable, "-m", "pytest", "suites", "--targets-file=targets.toml", "--target=lab",
                               "--target=lab2", "-p", "no:cacheprovider", f"--junitxml={tmp_path}/r.xml",
                               f"--html={tmp_path}/r.html", *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    return run_cases


def test_every_verdict_of_a_run_with_attribution_and_waivers(cases, tmp_path):
    result = cases("-rx")
    out = result.stdout
    assert result.returncode == 1, out[-4000:] + result.stderr[-2000:]
    verdicts = global_properties(tmp_path / "r.xml")
    got = {rid: (verdicts.get(f"verdict lab {rid}"), verdicts.get(f"verdict lab2 {rid}")) for rid in EXPECTED}
    assert got == EXPECTED
    assert len(verdicts) == 2 * len(EXPECTED), "one verdict per target and requirement"

    # The waiver turned only the failure of its own requirement into an expected failure, on its target.
    junit = junit_cases(tmp_path / "r.xml")
    result_lab, props_lab = junit["test_case_fails_the_waived_id[lab]"]
    assert result_lab == "skipped" and props_lab["verdict_check"] == "waived"
    assert props_lab["failed_requirement"] == "EVSE-AUTH-401"
    assert junit["test_case_fails_the_waived_id[lab2]"][0] == "failure"
    result_primary, props_primary = junit["test_case_fails_the_primary_id[lab]"]
    assert result_primary == "failure" and props_primary["failed_requirement"] == "EVSE-CONV-400-MALFORMED"
    assert junit["test_case_nested_attribution[lab]"][1]["failed_requirement"] == "EVSE-CONV-413"
    assert junit["test_case_not_applicable[lab]"][1]["verdict_check"] == "not applicable"
    assert junit["test_case_plain_skip[lab]"][1]["verdict_check"] == "not verified"
    assert junit["test_case_unreachable[lab]"][1]["verdict_check"] == "error"
    assert junit["test_case_with_notice_passes[lab]"][1]["verdict_check"] == "passed"
    assert "waived on target lab: EVSE-AUTH-401" in out

    # The terminal lists the verdicts that are not PASS, with the reasons of what did not run.
    summary = out[out.index("= requirements ="):]
    assert re.search(r"^PARTIAL +lab +EVSE-NEXTION: .*\n +not verified \(1 check\): no display connected", summary, re.M)
    assert re.search(r"^NOT VERIFIED +lab +EVSE-LOG \(waived\): ", summary, re.M)
    assert re.search(r"^ERROR +lab2 +EVSE-FW-CHECK: .*\n +error \(1 check\): setup error: .*cannot read the state", summary, re.M)
    assert re.search(r"^ERROR +lab +EVSE-RESTART: .*\n +error \(1 check\): did not come back within 120 s", summary, re.M)
    assert re.search(r"^NOT VERIFIED +lab +EVSE-FW-UPDATE: .*\n +not verified \(1 check\): destructive \(flashes", summary, re.M)
    assert "UNEXPECTED PASS lab: EVSE-WIFI-AP is waived but every check of it passed; remove the waiver" in summary
    words = [word for pair in EXPECTED.values() for word in pair]
    order = ["FAIL", "UNEXPECTED PASS", "ERROR", "WAIVED", "PARTIAL", "NOT VERIFIED", "NOT APPLICABLE", "PASS"]
    assert ", ".join(f"{words.count(w)} {w}" for w in order) + " (requirement x target)" in summary
    assert not re.search(r"^PASS ", summary, re.M), "PASS rows are only counted"

    # The HTML report's requirement table: a coloured verdict and the details of what did not run.
    html = (tmp_path / "r.html").read_text()
    assert "UNEXPECTED PASS" in html and "PARTIAL" in html and "NOT APPLICABLE" in html
    assert "no display connected" in html and "test_case_partial_not_verified" in html
    for text in (out, result.stderr, html, (tmp_path / "r.xml").read_text()):
        assert PASSWORD not in text, "a secret in a skip reason must be masked"


def test_exit_status_is_no_verdict_when_only_errors_stand_against_passes(cases):
    result = cases("-k", "unreachable or setup_error or teardown_error or with_notice or conv_ok")
    assert result.returncode == 6, result.stdout[-3000:]
    assert "no verdict (exit status 6): 6 ERROR (requirement x target)" in result.stdout
    clean = cases("-k", "with_notice or not_applicable or partial or conv_ok")
    assert clean.returncode == 0, clean.stdout[-3000:]


def test_unreachable_device_is_no_verdict_exit_6(tmp_path):
    target = '[targets.gone]\ndevice = "esp32-evse"\nbase_url = "http://127.0.0.1:9"\ntimeout = 1\n'
    result = run(tmp_path, target, "--target=gone", "-k", "unknown_endpoint or test_left_as_found",
                 f"--junitxml={tmp_path}/r.xml", f"--html={tmp_path}/r.html")
    assert result.returncode == 6, result.stdout[-3000:]
    # One cause, one line: the requirements it stopped are counted, not listed with it each.
    assert re.search(r"^ERROR +gone +2 requirements: target gone: GET \S+/api/v1/info: cannot connect", result.stdout, re.M), result.stdout[-3000:]
    assert "FAIL " not in result.stdout
    verdicts = global_properties(tmp_path / "r.xml")
    assert verdicts["verdict gone EVSE-CONV-404"] == "ERROR" and verdicts["verdict gone HARNESS-LEFT-AS-FOUND"] == "ERROR"


@pytest.mark.parametrize("waive, returncode, verdict_401, verdict_required", [
    ("", 1, "FAIL", "NOT VERIFIED"),
    ('waive = ["EVSE-AUTH-401"]', 0, "WAIVED", "NOT VERIFIED"),
    ('waive = ["EVSE-AUTH-REQUIRED"]', 1, "FAIL", "NOT VERIFIED"),  # the waiver of the other id does not cover it
], ids=["no-waiver", "waived", "other-id-waived"])
def test_conformance_failure_exits_1_and_a_waiver_covers_its_own_requirement(tmp_path, waive, returncode,
                                                                            verdict_401, verdict_required):
    """esp32-evse with a wrong realm: the suite attributes the realm check to EVSE-AUTH-401, so the
    failures of test_operation_refused_with_missing_or_wrong_credentials (EVSE-AUTH-REQUIRED,
    EVSE-AUTH-401) belong to EVSE-AUTH-401 alone."""
    target = emulator("realm", f'faults = ["wrong_auth_realm"]\n{waive}', password=PASSWORD)
    result = run(tmp_path, target, "--target=realm", "-k", "refused_with_missing and GET",
                 f"--junitxml={tmp_path}/r.xml", f"--html={tmp_path}/r.html")
    assert result.returncode == returncode, result.stdout[-3000:]
    verdicts = global_properties(tmp_path / "r.xml")
    assert verdicts["verdict realm EVSE-AUTH-401"] == verdict_401
    assert verdicts["verdict realm EVSE-AUTH-REQUIRED"] == verdict_required
    assert PASSWORD not in result.stdout
