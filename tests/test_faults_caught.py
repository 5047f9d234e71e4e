"""The proof that matters: the suites pass on the clean emulators and catch every catalogued fault.

One pytest run per device (in subprocesses, with pytest-xdist, both devices at once) runs its suites
against clean emulators (without and with credentials, each in the default reading of what the
document leaves open and in the alternative one) and one emulator per fault (with credentials, so
that auth faults can show). The JUnit report says which checks failed on which target. Each fault
must fail at least one check, and the check named in CATCHERS among them.

The clean targets run every check; a fault target runs only the check named as its catcher (an
earlier run of every check on every fault target showed each fault caught; the catcher is what is
asserted). The EVSE and MC252 runs wait for emulated restarts more than they compute and get four and
three workers. The WattWächter run is bound by the device's budget (25 requests per 10 s, paced), so
each of its targets gets a worker of its own.
"""

from __future__ import annotations

import base64
import importlib
import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformlab.emulators import EMULATORS
from conformlab.scoped_keys import PERMISSIONS
from conformlab.targets import Target
from leaks import session_secrets_in

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "fault-matrix-secret"
# A clean MC252 run logs in once, and again after each of its restarts (a restart ends every session:
# the reboots of the settings check, the settings reset and import and the reboot that puts each
# back, the update program, the access matrix's reboot) and each moved clock (2).
MC252_LOGINS = 10
WW_TOKENS = {"read_token": "fault-matrix-read-token", "write_token": "fault-matrix-write-token"}
# The WisDM cloud's keys, as the bundled target has them: a read key, a write key with one permission and
# one with all, a key of the second organization, a key restricted to one location, an expired key.
WISDM_KEYS = {"keys": [
    {"name": "reader", "key": "fault-matrix-read-key", "access": "read", "permissions": []},
    {"name": "ops", "key": "fault-matrix-ops-key", "access": "write", "permissions": ["WRITE_REBOOT_GATEWAY"]},
    {"name": "admin", "key": "fault-matrix-admin-key", "access": "write", "permissions": list(PERMISSIONS)},
    {"name": "partner", "key": "fault-matrix-partner-key", "access": "write", "permissions": ["WRITE_REBOOT_GATEWAY"]},
    {"name": "factory-a", "key": "fault-matrix-site-key", "access": "read", "permissions": [],
     "locations": ["4fed110b-461b-4815-8bfc-4866b3b74c27"]},
    {"name": "lapsed", "key": "fault-matrix-lapsed-key", "access": "write", "permissions": ["WRITE_REBOOT_GATEWAY"],
     "expired": True},
]}

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
    "dav_open_on_new_firmware": "test_webdav_credentials_as_the_firmware_dictates",
    # near-miss credentials (conformlab.near_miss): each fault lets one through
    "empty_password_accepted": ("test_near_miss_credentials_refused_like_wrong_ones", "-password-empty]"),
    "password_prefix_accepted": ("test_near_miss_credentials_refused_like_wrong_ones", "-password-prefix]"),
    "password_last_char_ignored": ("test_near_miss_credentials_refused_like_wrong_ones", "-password-truncated]"),
    "password_extra_ignored": ("test_near_miss_credentials_refused_like_wrong_ones", "-password-extended]"),
    "password_case_insensitive": ("test_near_miss_credentials_refused_like_wrong_ones", "-password-case-swapped]"),
    "password_whitespace_trimmed": ("test_near_miss_credentials_refused_like_wrong_ones", "-password-trailing-space]"),
    "basic_scheme_unchecked": ("test_near_miss_credentials_refused_like_wrong_ones", "-credentials-in-bearer-scheme]"),
    "proxy_authorization_read": ("test_near_miss_credentials_refused_like_wrong_ones", "-credentials-in-proxy-authorization]"),
}, "wattwaechter": {
    "budget_26": ("test_rate_limit_under_load", "first-window-exactly-25"),
    "budget_per_client": ("test_rate_limit_under_load", "clients-share-one-budget"),
    "rate_limit_no_retry_after": ("test_rate_limit_under_load", "rejections-are-the-documented-429"),
    "rate_limit_wrong_body": ("test_rate_limit_under_load", "rejections-are-the-documented-429"),
    "retry_after_fractional": ("test_rate_limit_under_load", "rejections-are-the-documented-429"),
    "heap_overload_500": ("test_heap_protection_under_load", "no-5xx-but-the-documented-503"),
    "heap_no_retry_after": ("test_heap_protection_under_load", "rejections-are-the-documented-503"),
    "read_token_can_write": "test_operation_refused_to_a_credential_without_its_grant",
    "confirm_after_expiry": "test_unconfirmed_tokens_lapse_after_60_seconds",
    "generate_activates_immediately": "test_generated_tokens_are_not_active_until_confirmed",
    "partial_settings_reset": "test_partial_write_changes_only_the_keys_sent",
    "settings_return_passwords": "test_settings_never_return_passwords",
    "alive_requires_token": "test_open_operation_accepted_without_credentials",
    "missing_token_403": "test_operation_refused_with_missing_or_wrong_credentials",
    "history_days_unchecked": "test_low_res_days_outside_1_to_31_not_served",
    "history_range_off_by_one": "test_low_res_is_one_value_per_day_of_the_range",
    "latest_empty_200": "test_latest_is_204_without_a_reading",
    "empty_token_accepted": ("test_near_miss_credentials_refused_like_wrong_ones", "-token-empty]"),
    "token_prefix_accepted": ("test_near_miss_credentials_refused_like_wrong_ones", "-write-token-prefix]"),
    "token_last_char_ignored": ("test_near_miss_credentials_refused_like_wrong_ones", "-write-token-truncated]"),
    "token_extra_ignored": ("test_near_miss_credentials_refused_like_wrong_ones", "-write-token-extended]"),
    "token_case_insensitive": ("test_near_miss_credentials_refused_like_wrong_ones", "-write-token-case-swapped]"),
    "bearer_scheme_optional": ("test_near_miss_credentials_refused_like_wrong_ones", "-token-without-scheme]"),
    "token_scheme_unchecked": ("test_near_miss_credentials_refused_like_wrong_ones", "-token-in-basic-scheme]"),
    "proxy_authorization_read": ("test_near_miss_credentials_refused_like_wrong_ones", "-token-in-proxy-authorization]"),
}, "wcc-lite": {
    "missing_key_accepted": ("test_operation_refused_with_missing_or_wrong_credentials", "-missing]"),
    "wrong_key_accepted": ("test_operation_refused_with_missing_or_wrong_credentials", "-wrong]"),
    "unauthorized_403": "test_operation_refused_with_missing_or_wrong_credentials",
    "unauthorized_other_body": "test_operation_refused_with_missing_or_wrong_credentials",
    # The device demands a key the target says it does not need: on a real bench that is a wrong
    # targets file as much as a device fault, so the target stops with one ERROR that says so.
    "auth_always_on": "TARGET_ERROR",
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
    "empty_key_accepted": ("test_near_miss_credentials_refused_like_wrong_ones", "-key-empty]"),
    "key_prefix_accepted": ("test_near_miss_credentials_refused_like_wrong_ones", "-key-prefix]"),
    "key_last_char_ignored": ("test_near_miss_credentials_refused_like_wrong_ones", "-key-truncated]"),
    "key_extra_ignored": ("test_near_miss_credentials_refused_like_wrong_ones", "-key-extended]"),
    "key_case_insensitive": ("test_near_miss_credentials_refused_like_wrong_ones", "-key-case-swapped]"),
    "key_read_from_authorization": ("test_near_miss_credentials_refused_like_wrong_ones", "-key-in-authorization-header]"),
    "key_scheme_stripped": ("test_near_miss_credentials_refused_like_wrong_ones", "-key-with-bearer-scheme]"),
}, "overvis-mc252": {
    "card_open_to_guests": ("test_operation_refused_with_missing_or_wrong_credentials", "POST /card/dir/-guest]"),
    "version_needs_login": ("test_open_operation_accepted_without_credentials", "GET /version/]"),
    "any_hash_accepted": ("test_login_with_another_hash_refused", "-wrong-password]"),
    "unsalted_hash_accepted": ("test_login_with_another_hash_refused", "-unsalted]"),
    "salt_reusable": "test_salt_serves_one_login",
    "salt_short": ("test_open_operation_accepted_without_credentials", "GET /login/salt/]"),
    "logout_keeps_token": "test_logged_out_token_refused",
    "session_never_expires": "test_session_lapses_after_its_ttl",
    "authorized_header_ignored": "test_token_in_the_documented_authorized_header_is_honoured",
    "button_forever": "test_button_gives_guests_level_1_for_10_minutes",
    "vpn_not_admin": "test_vpn_cloud_requests_get_the_administrator_level",
    "error_bare_text": ("test_error_answers_carry_the_envelope", "-unknown-path]"),
    "keepalive_broken": "test_keep_alive_serves_several_requests_on_one_connection",
    "saved_applied_at_once": "test_saved_setting_read_back_and_active_unchanged",
    "state_keys_ignored": "test_state_by_bare_keys_answers_those_keys",
    "invalid_setting_accepted": ("test_invalid_settings_write_refused_and_nothing_changes", "-unknown-key]"),
    "modbus_resp_ignores_tid": "test_modbus_answers_are_found_by_their_tid",
    "hash_any_order_accepted": ("test_near_miss_credentials_refused_like_wrong_ones", "-hash-order-"),  # either order
    "empty_password_hash_accepted": ("test_near_miss_credentials_refused_like_wrong_ones", "-hash-empty-password]"),
    "password_trailing_space_accepted": ("test_near_miss_credentials_refused_like_wrong_ones", "-password-trailing-space]"),
    "login_case_insensitive": ("test_near_miss_credentials_refused_like_wrong_ones", "-login-case-swapped]"),
    "token_prefix_accepted": ("test_near_miss_credentials_refused_like_wrong_ones", "-token-truncated]"),
    "token_case_insensitive": ("test_near_miss_credentials_refused_like_wrong_ones", "-token-case-swapped]"),
    "bearer_scheme_optional": ("test_near_miss_credentials_refused_like_wrong_ones", "-token-without-scheme]"),
    "token_scheme_unchecked": ("test_near_miss_credentials_refused_like_wrong_ones", "-token-in-basic-scheme]"),
}, "wisdm": {
    # scopes
    "read_key_can_write": ("test_operation_refused_to_a_credential_without_its_grant", "POST /gateway/{sn}/network/priority-reader]"),
    "permission_unchecked": ("test_operation_refused_to_a_credential_without_its_grant", "POST /gateway/{sn}/network/priority-ops]"),
    "expired_key_accepted": ("test_operation_refused_with_missing_or_wrong_credentials", "GET /organization-lapsed]"),
    # near-miss keys
    "empty_key_accepted": ("test_near_miss_credentials_refused_like_wrong_ones", "-key-empty]"),
    "key_prefix_accepted": ("test_near_miss_credentials_refused_like_wrong_ones", "-key-prefix]"),
    "key_last_char_ignored": ("test_near_miss_credentials_refused_like_wrong_ones", "-key-truncated]"),
    "key_extra_ignored": ("test_near_miss_credentials_refused_like_wrong_ones", "-key-extended]"),
    "key_case_insensitive": ("test_near_miss_credentials_refused_like_wrong_ones", "-key-case-swapped]"),
    "key_read_from_authorization": ("test_near_miss_credentials_refused_like_wrong_ones", "-key-in-authorization-header]"),
    "key_scheme_stripped": ("test_near_miss_credentials_refused_like_wrong_ones", "-key-with-bearer-scheme]"),
    # isolation
    "other_organization_locations_listed": ("test_other_organizations_objects_are_out_of_reach", "-organization-locations]"),
    "other_organization_location_served": ("test_other_organizations_objects_are_out_of_reach", "-location-gateways]"),
    "other_organization_gateway_served": ("test_other_organizations_objects_are_out_of_reach", "-gateway-status]"),
    "existence_leaked_403": ("test_other_organizations_objects_are_out_of_reach", "-gateway-status]"),
    "location_restriction_ignored": "test_location_restricted_key_reaches_only_its_locations",
    "total_mismatch": "test_location_listing_total_matches",
    # pagination
    "page_larger_than_page_size": ("test_pages_visit_every_gateway_once", "-status]"),
    "pages_overlap": ("test_pages_visit_every_gateway_once", "-status]"),
    "pages_skip_one": ("test_pages_visit_every_gateway_once", "-status]"),
    "total_pages_off_by_one": ("test_pages_visit_every_gateway_once", "-status]"),
    "next_token_on_last_page": ("test_pages_visit_every_gateway_once", "-status]"),
    "malformed_token_first_page": ("test_page_token_that_names_no_page_refused", "-malformed-status]"),
    # validation
    "location_name_length_unchecked": ("test_location_field_rules_refused_400", "-name-3-characters]"),
    "channels_number_unchecked": ("test_location_field_rules_refused_400", "-channelsNumber-12]"),
    "server_port_unchecked": ("test_location_field_rules_refused_400", "-serverPort-0]"),
    "duplicate_location_201": "test_existing_location_name_refused_409",
    "non_basics_station_registration_accepted": ("test_registration_refused_406", "-location-not-basics-station]"),
    "unprovisioned_gateway_registered": ("test_registration_refused_406", "-gateway-not-provisioned]"),
    "tls_fields_not_required": ("test_registration_without_required_credentials_refused_400", "-tls-client-certificate-and-key]"),
    "max_files_unchecked": ("test_download_max_files_out_of_range_refused", "-201]"),
    "more_files_than_max_files": ("test_download_urls_at_most_max_files", "-1]"),
    "wifi_key_length_unchecked": ("test_invalid_setting_refused_and_nothing_changes", "-lan-key-7-characters]"),
    "ethernet_lan_change_applied": "test_ethernet_lan_change_is_restricted",
    # async lifecycle
    "command_stays_pending": ("test_command_answers_id_at_once_and_completes", "-online-gateway]"),
    "unknown_command_200": "test_unknown_command_id_answers_404",
    # status codes
    "created_as_200": "test_gateway_registered_201_and_listed",
    "no_content_as_200": ("test_setting_written_as_read_is_kept", "-priority]"),
    "unknown_gateway_200": ("test_unknown_gateway_answers_404", "-GET /gateway/{sn}/network/priority]"),
    "unknown_gateway_500": ("test_unknown_gateway_answers_404", "-GET /gateway/{sn}/network/priority]"),
    # transport
    "gzip_ignored": "test_answers_gzip_compressed",
}}


# The clean emulators in the other reading of everything their documents leave open: a device that
# reads the documents otherwise, and conforms, must see notices and no failure.
ALTERNATIVE = "alt"
# Faults that let one near-miss credential through (conformlab.near_miss), per device.
NEAR_MISS_FAULTS = {device: set(importlib.import_module(cls.__module__).NEAR_MISS_FAULTS) for device, cls in EMULATORS.items()}
LOAD_FAULTS = {fault for fault, catcher in CATCHERS["wattwaechter"].items()
               if isinstance(catcher, tuple) and "under_load" in catcher[0]}


@dataclass(frozen=True)
class Matrix:
    device: str
    auth: dict[str, str]  # the credentials of the "-auth" clean target and of every fault target
    workers: str  # pytest-xdist -n
    options: str = ""  # targets.toml lines of the "-auth" clean target and of every fault target
    open_faults: frozenset[str] = frozenset()  # faults that show only with authorization off
    # The clean targets: "-clean-<kind>" -> (with the credentials?, its targets.toml lines; None: `options`)
    clean: tuple[tuple[str, bool, str | None], ...] = (("open", False, ""), ("auth", True, None))

    @property
    def faults(self) -> list[str]:
        return sorted(EMULATORS[self.device].FAULTS)

    def target(self, fault: str) -> str:
        kind = "load" if fault in LOAD_FAULTS else "nearmiss" if fault in NEAR_MISS_FAULTS[self.device] else "bug"
        return f"{self.device}-{kind}-{fault}"

    @property
    def selection(self) -> str:
        """pytest -k: the clean targets run everything; a fault target runs only the check named as its
        catcher (what test_fault_is_caught asserts; every check on every fault target was most of the
        own tests' time), or, for a fault that makes the target unusable, its first check."""
        picks = []
        for fault, catcher in CATCHERS[self.device].items():
            name = catcher[0] if isinstance(catcher, tuple) else catcher
            picks.append(f"-{fault}" if name == "TARGET_ERROR" else f"(-{fault} and {name})")
        return "(-clean-) or " + " or ".join(picks)  # not "-..." first: the command line would take it for an option

    @property
    def clean_kinds(self) -> list[str]:
        """Each clean target, and its twin in the alternative reading (ALTERNATIVE)."""
        return [kind for name, _, _ in self.clean for kind in (name, f"{ALTERNATIVE}-{name}")]

    def targets(self) -> dict[str, tuple[dict, str | None, str]]:
        """name -> (auth, fault, targets.toml lines)"""
        named = {}
        for kind, with_auth, lines in self.clean:
            lines = self.options if lines is None else lines
            auth = self.auth if with_auth else {}
            named[f"{self.device}-clean-{kind}"] = (auth, None, lines)
            named[f"{self.device}-clean-{ALTERNATIVE}-{kind}"] = (auth, None, f'{lines}\nreading = "alternative"')
        named.update({self.target(fault): ({} if fault in self.open_faults else self.auth, fault, self.options)
                      for fault in self.faults})
        return named

    def secrets(self) -> list[str]:
        values = Target("matrix", self.device, None, True, auth=self.auth).secrets()
        if self.device == "esp32-evse":
            values.append(base64.b64encode(f"admin:{PASSWORD}".encode()).decode())
        return values


MATRICES = {
    # An EVSE or MC252 target spends most of its time waiting for emulated restarts (off the network
    # while they boot), not computing: more workers than cores.
    "esp32-evse": Matrix("esp32-evse", {"username": "admin", "password": PASSWORD}, workers="4"),
    "wattwaechter": Matrix("wattwaechter", WW_TOKENS, workers=str(4 + len(EMULATORS["wattwaechter"].FAULTS))),
    "wcc-lite": Matrix("wcc-lite", {"api_key": "fault-matrix-api-key"}, workers="2",
                       options='disabled_endpoints = ["/api/syslog"]', open_faults=frozenset({"auth_always_on"})),
    # Every MC252 target logs in (all but two paths need a session); the clean ones differ in the header
    # the emulated firmware reads the token from: both names, or the document's "Authorized" only.
    "overvis-mc252": Matrix("overvis-mc252", {"login": "admin", "password": PASSWORD}, workers="3",
                            clean=(("both-headers", True, ""), ("authorized-header", True, 'token_header = "Authorized"'))),
    # The cloud always needs a key; its clean targets differ in transport: HTTP, and HTTPS (a test CA).
    "wisdm": Matrix("wisdm", WISDM_KEYS, workers="2", options='other_organization = ["partner"]',
                    clean=(("http", True, None), ("https", True, 'other_organization = ["partner"]\ntls = true'))),
}


def _targets_file(matrix: Matrix, path: Path) -> None:
    lines = []
    for name, (auth, fault, options) in matrix.targets().items():
        lines += [f"[targets.{name}]", f'device = "{matrix.device}"', "emulator = true", "destructive = true"]
        if fault:  # the clean targets show that restarts are survived; a fault target need not wait long
            lines += [f'faults = ["{fault}"]', "boot_seconds = 0.5"]
        if options:
            lines.append(options)
        if auth:
            lines.append(f"[targets.{name}.auth]")
            lines += [f"{key} = {_toml(value)}" for key, value in auth.items()]
    path.write_text("\n".join(lines) + "\n")


def _toml(value) -> str:
    """A TOML value: strings, booleans, lists and (one-line) inline tables; JSON's string escapes are TOML's."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(value)


def _start(matrix: Matrix, work: Path):
    targets = work / f"{matrix.device}-targets.toml"
    _targets_file(matrix, targets)
    junit, html, log = (work / f"{matrix.device}-matrix{ext}" for ext in (".xml", ".html", ".log"))
    command = [sys.executable, "-m", "pytest", "suites", f"--targets-file={targets}", "-p", "no:cacheprovider",
               "-q", "-n", matrix.workers, f"--junitxml={junit}", f"--html={html}"]
    command += [f"--target={name}" for name in matrix.targets()]
    command += ["-k", matrix.selection]
    output = log.open("w")
    return subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, text=True), junit, html, log


def _outcomes(junit: Path):
    outcome = defaultdict(lambda: {"failed": [], "passed": 0, "properties": {}, "notices": []})
    for case in ElementTree.parse(junit).iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        target = props.get("target", "?")
        outcome[target]["properties"].update(props)
        outcome[target]["notices"] += [p.get("value") for p in case.iter("property") if p.get("name") == "notice"]
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


CLEAN_CASES = [(device, f"{device}-clean-{kind}") for device, matrix in MATRICES.items() for kind in matrix.clean_kinds]
FAULT_CASES = [(device, fault) for device, matrix in MATRICES.items() for fault in matrix.faults]


@pytest.mark.parametrize("device, target", CLEAN_CASES)
def test_clean_emulator_passes_every_check(matrices, device, target):
    outcome = matrices[device]["targets"][target]
    assert outcome["passed"] > 30, f"{target}: too few checks ran ({outcome['passed']})"
    assert not outcome["failed"], f"{target}: the clean emulator failed {outcome['failed']}"


@pytest.mark.parametrize("device, target", [case for case in CLEAN_CASES if f"-clean-{ALTERNATIVE}-" in case[1]])
def test_alternative_reading_gives_notices_not_failures(matrices, device, target):
    """Where the document is silent, the emulator's other reading must be seen (notices) and never
    failed: the proof that no check enforces a reading the document does not make."""
    outcome = matrices[device]["targets"][target]
    assert not outcome["failed"], f"{target}: a device reading the document otherwise failed {outcome['failed']}"
    assert outcome["notices"], f"{target}: no check noticed the alternative reading"


@pytest.mark.parametrize("target", [target for device, target in CLEAN_CASES if device == "overvis-mc252"])
def test_login_session_is_obtained_once_per_run_not_per_request(matrices, target):
    """The end-of-run check records how often the run logged in: once, and again only where a check
    ended every session (a restart) or let it lapse (the emulator's clock moved past ttlSec)."""
    props = matrices["overvis-mc252"]["targets"][target]["properties"]
    logins, sent = int(props["session_logins"]), int(props["api_requests"])
    assert sent > 300, f"{target}: too few requests to tell ({sent})"
    assert 1 <= logins <= MC252_LOGINS, f"{target}: the run logged in {logins} times for {sent} requests"


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
    if catcher == "TARGET_ERROR":  # one cause, one line: the target's first check is its one ERROR
        assert len(failed) == 1, f"fault {fault}: expected the target's one ERROR; failing checks: {sorted(failed)}"
        return
    name, part = catcher if isinstance(catcher, tuple) else (catcher, "")
    caught_by = sorted({check.split("[")[0] for check in failed})
    print(f"fault {fault}: caught by {', '.join(caught_by)} ({len(failed)} failing checks)")
    assert any(check.startswith(name + "[") and part in check for check in failed), (
        f"fault {fault}: expected {name} {part} to fail; failing checks: {sorted(failed)}")


@pytest.mark.parametrize("device", sorted(MATRICES))
def test_reports_carry_no_secret(matrices, device):
    """Failing auth checks show their exchanges; no credential of the targets may appear."""
    result = matrices[device]
    texts = {path.name: path.read_text(errors="replace") for path in result["files"]} | {"the run's output": result["stdout"]}
    for value in MATRICES[device].secrets():
        for name, text in texts.items():
            assert value not in text, f"{name} contains a secret"
    for name, text in texts.items():  # tokens and hashes a run obtains are never known in advance
        assert not session_secrets_in(text), f"{name} contains a session token or a login hash"
