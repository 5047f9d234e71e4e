"""The proof that matters: the suites pass on the clean emulators and catch every catalogued fault.

One pytest run (in a subprocess, with pytest-xdist) runs the EVSE suites against a clean emulator
without credentials, a clean one with credentials, and one emulator per fault (with credentials, so
that auth faults can show). The JUnit report says which checks failed on which target. Each fault
must fail at least one check, and the check named in CATCHERS among them.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

import pytest

from conformlab.emulators import EMULATORS

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "fault-matrix-secret"
FAULTS = sorted(EMULATORS["esp32-evse"].FAULTS)

# fault -> the check (test function name) that must catch it. Every fault of the catalogue is here.
CATCHERS = {
    "partial_write_resets_others": "test_partial_write_changes_only_the_keys_sent",
    "oversized_body_accepted": "test_body_limit_is_51200_bytes",
    "body_limit_too_small": "test_body_limit_is_51200_bytes",
    "write_without_credentials": "test_operation_refused_with_missing_or_wrong_credentials",
    "wifi_password_returned": "test_wifi_password_never_returned",
    "max_current_range_unchecked": "test_invalid_value_refused_400",
    "empty_object_accepted": "test_object_write_without_a_known_key_refused_400",
    "wrong_auth_realm": "test_operation_refused_with_missing_or_wrong_credentials",
    "content_type_unchecked": "test_json_body_without_json_content_type_refused_415",
    "serial_length_unchecked": "test_serial_write_needs_one_entry_per_declared_port",
    "capability_unchecked": "test_config_write_checked_against_board_capabilities",
    "schedule_mask_unchecked": "test_invalid_value_refused_400",
    "unknown_timezone_accepted": "test_unknown_timezone_refused_400",
    "write_answers_json": "test_successful_write_answers_plain_text_ok",
    "missing_component_404": "test_missing_component_is_json_null",
    "log_count_missing": "test_log_is_plain_text_with_count_and_index_paging",
    "malformed_json_500": "test_malformed_json_refused_400",
    "bare_scalar_type_unchecked": "test_invalid_value_refused_400",
    "unknown_path_served": "test_unknown_endpoint_answers_404",
    "authorize_ignored": "test_authorize_clears_a_pending_authorization",
    "panic_time_missing": "test_panic_log_read_and_cleared",
    "state_current_as_string": "test_read_answer_matches_the_documented_shape",
    "log_index_ignored": "test_log_is_plain_text_with_count_and_index_paging",
    "combined_config_post": "test_config_has_no_combined_post",
}

CLEAN = {"clean-open": None, "clean-auth": PASSWORD}


def _targets_file(path: Path) -> None:
    lines = []
    for name, password in CLEAN.items():
        lines += [f"[targets.{name}]", 'device = "esp32-evse"', "emulator = true", "destructive = true"]
        if password:
            lines += [f"[targets.{name}.auth]", 'username = "admin"', f'password = "{password}"']
    for fault in FAULTS:
        lines += [f"[targets.fault-{fault}]", 'device = "esp32-evse"', "emulator = true", "destructive = true",
                  f'faults = ["{fault}"]', f"[targets.fault-{fault}.auth]", 'username = "admin"', f'password = "{PASSWORD}"']
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """Run the suites once against every target; return {target: {"failed": [...], "passed": n}}."""
    work = tmp_path_factory.mktemp("matrix")
    targets = work / "targets.toml"
    _targets_file(targets)
    junit, html = work / "matrix.xml", work / "matrix.html"
    command = [sys.executable, "-m", "pytest", "suites", f"--targets-file={targets}", "-p", "no:cacheprovider",
               "-q", "-n", os.environ.get("CONFORMLAB_MATRIX_WORKERS", "2"), f"--junitxml={junit}", f"--html={html}"]
    command += [f"--target=fault-{fault}" for fault in FAULTS] + [f"--target={name}" for name in CLEAN]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert junit.exists(), f"the matrix run wrote no JUnit report:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    outcome = defaultdict(lambda: {"failed": [], "passed": 0})
    for case in ElementTree.parse(junit).iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        target = props.get("target", "?")
        if case.find("failure") is not None or case.find("error") is not None:
            outcome[target]["failed"].append(case.get("name"))
        elif case.find("skipped") is None:
            outcome[target]["passed"] += 1
    return {"targets": outcome, "files": [junit, html], "stdout": result.stdout}


@pytest.mark.parametrize("target", sorted(CLEAN))
def test_clean_emulator_passes_every_check(matrix, target):
    outcome = matrix["targets"][target]
    assert outcome["passed"] > 100, f"{target}: too few checks ran ({outcome['passed']})"
    assert not outcome["failed"], f"{target}: the clean emulator failed {outcome['failed']}"


def test_every_fault_has_a_named_catcher():
    assert set(CATCHERS) == set(FAULTS), f"faults without a catcher: {set(FAULTS) - set(CATCHERS)}; stale: {set(CATCHERS) - set(FAULTS)}"


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_is_caught(matrix, fault):
    outcome = matrix["targets"][f"fault-{fault}"]
    failed = outcome["failed"]
    sentence = EMULATORS["esp32-evse"].FAULTS[fault]
    assert failed, f"fault {fault} ({sentence}) was not caught by any check"
    catcher = CATCHERS[fault]
    caught_by = sorted({name.split("[")[0] for name in failed})
    print(f"fault {fault}: caught by {', '.join(caught_by)} ({len(failed)} failing checks)")
    assert any(name.startswith(catcher + "[") for name in failed), (
        f"fault {fault}: expected {catcher} to fail; failing checks: {caught_by}")


def test_reports_carry_no_secret(matrix):
    """Failing auth checks show their exchanges; neither the password nor its Basic token may appear."""
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    for path in matrix["files"]:
        text = path.read_text(errors="replace")
        assert PASSWORD not in text and token not in text, f"{path.name} contains a secret"
    assert PASSWORD not in matrix["stdout"]
