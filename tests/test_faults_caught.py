"""The proof that matters: the suites pass on the clean emulators and catch every catalogued fault.

One pytest run per device (in subprocesses, with pytest-xdist, both devices at once) runs its suites
against clean emulators (without and with credentials) and one emulator per fault (with credentials,
so that auth faults can show). The JUnit report says which checks failed on which target. Each fault
must fail at least one check, and the check named in CATCHERS among them.

The EVSE run is CPU-bound and gets two workers. The WattWächter run is bound by the device's budget
(25 requests per 10 s, paced), so each of its targets gets a worker of its own; its fault targets run
only the checks that can see their fault (the load scenarios for the load faults, the rest for the
others), while the clean targets run everything.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformlab.emulators import EMULATORS

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "fault-matrix-secret"
WW_TOKENS = {"read_token": "fault-matrix-read-token", "write_token": "fault-matrix-write-token"}

# device -> fault -> the check that must catch it: a test function name, or (name, part of its
# parametrization id). Every fault of each catalogue is here.
CATCHERS = {"esp32-evse": {
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
}, "wattwaechter": {
    "budget_26": ("test_rate_limit_under_load", "first-window-exactly-25"),
    "budget_per_client": ("test_rate_limit_under_load", "clients-share-one-budget"),
    "rate_limit_no_retry_after": ("test_rate_limit_under_load", "rejections-are-the-documented-429"),
    "rate_limit_wrong_body": ("test_rate_limit_under_load", "rejections-are-the-documented-429"),
    "retry_after_fractional": ("test_rate_limit_under_load", "rejections-are-the-documented-429"),
    "heap_overload_500": ("test_heap_protection_under_load", "no-5xx-but-the-documented-503"),
    "heap_no_retry_after": ("test_heap_protection_under_load", "rejections-are-the-documented-503"),
    "read_token_can_write": "test_read_token_refused_403_on_write_endpoints",
    "confirm_after_expiry": "test_unconfirmed_tokens_lapse_after_60_seconds",
    "generate_activates_immediately": "test_generated_tokens_are_not_active_until_confirmed",
    "partial_settings_reset": "test_partial_write_changes_only_the_keys_sent",
    "settings_return_passwords": "test_settings_never_return_passwords",
    "alive_requires_token": "test_open_endpoints_need_no_token_with_auth_on",
    "missing_token_403": "test_missing_or_wrong_token_refused_401",
    "history_days_unchecked": "test_low_res_days_outside_1_to_31_not_served",
    "history_range_off_by_one": "test_low_res_is_one_value_per_day_of_the_range",
    "latest_empty_200": "test_latest_is_204_without_a_reading",
}, "wcc-lite": {
    "missing_key_accepted": ("test_missing_or_wrong_key_refused_401", "-missing]"),
    "wrong_key_accepted": ("test_missing_or_wrong_key_refused_401", "-wrong]"),
    "unauthorized_403": "test_missing_or_wrong_key_refused_401",
    "unauthorized_other_body": "test_missing_or_wrong_key_refused_401",
    "auth_always_on": "test_request_passes_with_the_key_or_without_authorization",
    "disabled_still_serves": "test_disabled_endpoint_serves_no_data",
    "numeric_value": "test_answer_matches_the_documented_shape",
    "flags_null": "test_answer_matches_the_documented_shape",
    "total_signals_number": "test_answer_matches_the_documented_shape",
    "timestamp_seconds": "test_timestamps_are_epoch_milliseconds",
    "ghost_device": "test_every_listed_device_can_be_read",
    "ghost_tag": "test_every_listed_tag_can_be_read",
    "unknown_alias_empty_200": ("test_missing_or_unknown_alias_refused", "-unknown]"),
    "missing_alias_all_devices": ("test_missing_or_unknown_alias_refused", "info-missing"),
    "signal_alias_ignored": "test_every_listed_tag_can_be_read",
    "bad_image_started": ("test_upgrade_answers_the_documented_message", "-bad-image]"),
    "no_file_wrong_message": ("test_upgrade_answers_the_documented_message", "-no-image]"),
    "upload_reads_raw_body": ("test_upgrade_answers_the_documented_message", "-valid-image]"),
}}


LOAD_FAULTS = {fault for fault, catcher in CATCHERS["wattwaechter"].items()
               if isinstance(catcher, tuple) and "under_load" in catcher[0]}


@dataclass(frozen=True)
class Matrix:
    device: str
    auth: dict[str, str]  # the credentials of the "-auth" clean target and of every fault target
    workers: str  # pytest-xdist -n
    select: str = ""  # pytest -k: which checks run on which targets
    options: str = ""  # targets.toml lines of the "-auth" clean target and of every fault target
    open_faults: frozenset[str] = frozenset()  # faults that show only with authorization off

    @property
    def faults(self) -> list[str]:
        return sorted(EMULATORS[self.device].FAULTS)

    def target(self, fault: str) -> str:
        kind = "load" if fault in LOAD_FAULTS else "bug"
        return f"{self.device}-{kind}-{fault}"

    def targets(self) -> dict[str, tuple[dict, str | None]]:
        """name -> (auth, fault)"""
        named = {f"{self.device}-clean-open": ({}, None), f"{self.device}-clean-auth": (self.auth, None)}
        named.update({self.target(fault): ({} if fault in self.open_faults else self.auth, fault) for fault in self.faults})
        return named

    def secrets(self) -> list[str]:
        values = list(self.auth.values())
        if self.device == "esp32-evse":
            values.append(base64.b64encode(f"admin:{PASSWORD}".encode()).decode())
        return values


MATRICES = {
    "esp32-evse": Matrix("esp32-evse", {"username": "admin", "password": PASSWORD}, workers="2"),
    "wattwaechter": Matrix("wattwaechter", WW_TOKENS, workers=str(2 + len(EMULATORS["wattwaechter"].FAULTS)),
                           select="clean or (-bug- and not test_load) or (-load- and test_load)"),
    "wcc-lite": Matrix("wcc-lite", {"api_key": "fault-matrix-api-key"}, workers="2",
                       options='disabled_endpoints = ["/api/syslog"]', open_faults=frozenset({"auth_always_on"})),
}


def _targets_file(matrix: Matrix, path: Path) -> None:
    lines = []
    for name, (auth, fault) in matrix.targets().items():
        lines += [f"[targets.{name}]", f'device = "{matrix.device}"', "emulator = true", "destructive = true"]
        if fault:
            lines.append(f'faults = ["{fault}"]')
        if matrix.options and not name.endswith("-clean-open"):
            lines.append(matrix.options)
        if auth:
            lines.append(f"[targets.{name}.auth]")
            lines += [f'{key} = "{value}"' for key, value in auth.items()]
    path.write_text("\n".join(lines) + "\n")


def _start(matrix: Matrix, work: Path):
    targets = work / f"{matrix.device}-targets.toml"
    _targets_file(matrix, targets)
    junit, html, log = (work / f"{matrix.device}-matrix{ext}" for ext in (".xml", ".html", ".log"))
    command = [sys.executable, "-m", "pytest", "suites", f"--targets-file={targets}", "-p", "no:cacheprovider",
               "-q", "-n", matrix.workers, f"--junitxml={junit}", f"--html={html}"]
    command += [f"--target={name}" for name in matrix.targets()]
    if matrix.select:
        command += ["-k", matrix.select]
    output = log.open("w")
    return subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, text=True), junit, html, log


def _outcomes(junit: Path):
    outcome = defaultdict(lambda: {"failed": [], "passed": 0})
    for case in ElementTree.parse(junit).iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        target = props.get("target", "?")
        if case.find("failure") is not None or case.find("error") is not None:
            outcome[target]["failed"].append(case.get("name"))
        elif case.find("skipped") is None:
            outcome[target]["passed"] += 1
    return outcome


@pytest.fixture(scope="module")
def matrices(tmp_path_factory):
    """Run every device's matrix at once; {device: {"targets": {target: {"failed", "passed"}}, ...}}."""
    work = tmp_path_factory.mktemp("matrix")
    running = {device: _start(matrix, work) for device, matrix in MATRICES.items()}
    results = {}
    for device, (process, junit, html, log) in running.items():
        try:
            process.wait(timeout=1500)
        except subprocess.TimeoutExpired:
            process.kill()
        output = log.read_text(errors="replace")
        assert junit.exists(), f"the {device} matrix run wrote no JUnit report:\n{output[-4000:]}"
        results[device] = {"targets": _outcomes(junit), "files": [junit, html], "stdout": output}
    return results


CLEAN_CASES = [(device, f"{device}-clean-{kind}") for device in MATRICES for kind in ("open", "auth")]
FAULT_CASES = [(device, fault) for device, matrix in MATRICES.items() for fault in matrix.faults]


@pytest.mark.parametrize("device, target", CLEAN_CASES)
def test_clean_emulator_passes_every_check(matrices, device, target):
    outcome = matrices[device]["targets"][target]
    assert outcome["passed"] > 30, f"{target}: too few checks ran ({outcome['passed']})"
    assert not outcome["failed"], f"{target}: the clean emulator failed {outcome['failed']}"


@pytest.mark.parametrize("device", sorted(MATRICES))
def test_every_fault_has_a_named_catcher(device):
    catchers, faults = set(CATCHERS[device]), set(MATRICES[device].faults)
    assert catchers == faults, f"faults without a catcher: {faults - catchers}; stale: {catchers - faults}"


@pytest.mark.parametrize("device, fault", FAULT_CASES)
def test_fault_is_caught(matrices, device, fault):
    matrix = MATRICES[device]
    failed = matrices[device]["targets"][matrix.target(fault)]["failed"]
    sentence = EMULATORS[device].FAULTS[fault]
    assert failed, f"fault {fault} ({sentence}) was not caught by any check"
    catcher = CATCHERS[device][fault]
    name, part = catcher if isinstance(catcher, tuple) else (catcher, "")
    caught_by = sorted({check.split("[")[0] for check in failed})
    print(f"fault {fault}: caught by {', '.join(caught_by)} ({len(failed)} failing checks)")
    assert any(check.startswith(name + "[") and part in check for check in failed), (
        f"fault {fault}: expected {name} {part} to fail; failing checks: {sorted(failed)}")


@pytest.mark.parametrize("device", sorted(MATRICES))
def test_reports_carry_no_secret(matrices, device):
    """Failing auth checks show their exchanges; no credential of the targets may appear."""
    result = matrices[device]
    for value in MATRICES[device].secrets():
        for path in result["files"]:
            assert value not in path.read_text(errors="replace"), f"{path.name} contains a secret"
        assert value not in result["stdout"], "the run's output contains a secret"
