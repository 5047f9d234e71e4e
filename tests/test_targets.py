"""targets.toml: the contract, and one clear line for every way it can be wrong."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conformlab.targets import TargetsError, load_targets

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """
    [targets.evse-emulator]
    device = "esp32-evse"
    emulator = true
    faults = ["wifi_password_returned"]

    [targets.evse-lab]
    device = "esp32-evse"
    base_url = "http://192.168.4.1/"
    timeout = 5
    destructive = false
    waive = ["EVSE-CFG-SCHED-TZ-POSIX"]
    [targets.evse-lab.auth]
    username = "admin"
    password = "${EVSE_PASSWORD}"
"""


def test_default_selection_is_every_emulator_target(tmp_path):
    targets = load_targets(write(tmp_path, GOOD), environ={})
    assert [t.name for t in targets] == ["evse-emulator"]
    assert targets[0].emulator and targets[0].faults == ("wifi_password_returned",)


def test_lab_target_resolves_variables_and_keeps_the_origin(tmp_path):
    [lab] = load_targets(write(tmp_path, GOOD), ["evse-lab"], environ={"EVSE_PASSWORD": "s3cret"})
    assert lab.base_url == "http://192.168.4.1"
    assert lab.auth == {"username": "admin", "password": "s3cret"}
    assert lab.timeout == 5.0 and lab.waive == ("EVSE-CFG-SCHED-TZ-POSIX",)
    assert "s3cret" not in lab.describe()


def test_restart_and_reading_keys(tmp_path):
    text = GOOD + """
    [targets.evse-alt]
    device = "esp32-evse"
    emulator = true
    reading = "alternative"
    boot_seconds = 0.5
    restart_timeout = 30
    """
    alt, lab = load_targets(write(tmp_path, text), ["evse-alt", "evse-lab"], environ={"EVSE_PASSWORD": "x"})
    assert (alt.reading, alt.boot_seconds, alt.restart_timeout) == ("alternative", 0.5, 30.0)
    assert not alt.enforces_readings and "alternative reading" in alt.describe()
    assert lab.restart_timeout == 120.0 and not lab.enforces_readings
    [default] = load_targets(write(tmp_path, GOOD), ["evse-emulator"], environ={})
    assert default.enforces_readings and default.boot_seconds == 2.0


def test_unset_variable_of_an_unselected_target_does_not_matter(tmp_path):
    load_targets(write(tmp_path, GOOD), ["evse-emulator"], environ={})


BAD = [
    ("unknown-device", '[targets.x]\ndevice = "esp32-evs"\nemulator = true', 'target "x": key "device": unknown device "esp32-evs" (did you mean "esp32-evse"?)'),
    ("missing-device", "[targets.x]\nemulator = true", 'target "x": key "device" is missing'),
    ("both", '[targets.x]\ndevice = "esp32-evse"\nemulator = true\nbase_url = "http://127.0.0.1"', 'target "x": key "base_url"/"emulator": give exactly one'),
    ("neither", '[targets.x]\ndevice = "esp32-evse"', 'target "x": key "base_url"/"emulator": give exactly one'),
    ("typo", '[targets.x]\ndevice = "esp32-evse"\nemulator = true\ndestructiv = true', 'target "x": unknown key "destructiv" (did you mean "destructive"?)'),
    ("auth-typo", '[targets.x]\ndevice = "esp32-evse"\nemulator = true\n[targets.x.auth]\nusername = "a"\npasword = "b"', 'target "x": unknown key "auth.pasword"'),
    ("half-credentials", '[targets.x]\ndevice = "esp32-evse"\nemulator = true\n[targets.x.auth]\nusername = "a"', 'target "x": key "auth": give both username and password'),
    ("unknown-fault", '[targets.x]\ndevice = "esp32-evse"\nemulator = true\nfaults = ["no_such_fault"]', 'target "x": key "faults": unknown fault "no_such_fault"'),
    ("fault-on-hardware", '[targets.x]\ndevice = "esp32-evse"\nbase_url = "http://127.0.0.1"\nfaults = ["wifi_password_returned"]', 'target "x": key "faults" is for emulator targets only'),
    ("path-in-base-url", '[targets.x]\ndevice = "esp32-evse"\nbase_url = "http://127.0.0.1/api/v1"', 'target "x": key "base_url": give the origin only ("http://127.0.0.1")'),
    ("not-a-url", '[targets.x]\ndevice = "esp32-evse"\nbase_url = "192.168.4.1"', 'target "x": key "base_url": "192.168.4.1" is not an http(s) URL'),
    ("bad-timeout", '[targets.x]\ndevice = "esp32-evse"\nemulator = true\ntimeout = "10"', 'target "x": key "timeout" must be a number'),
    ("bad-destructive", '[targets.x]\ndevice = "esp32-evse"\nemulator = true\ndestructive = "yes"', 'target "x": key "destructive" must be true or false'),
    ("bad-waive", '[targets.x]\ndevice = "esp32-evse"\nemulator = true\nwaive = "EVSE-AUTH-401"', 'target "x": key "waive" must be a list'),
    ("mc252-without-login", '[targets.x]\ndevice = "overvis-mc252"\nemulator = true', 'target "x": key "auth": give login and password'),
    ("mc252-without-password", '[targets.x]\ndevice = "overvis-mc252"\nemulator = true\n[targets.x.auth]\nlogin = "admin"', 'target "x": key "auth": give login and password'),
    ("token-header-on-hardware", '[targets.x]\ndevice = "overvis-mc252"\nbase_url = "http://127.0.0.1"\ntoken_header = "Authorized"\n[targets.x.auth]\nlogin = "a"\npassword = "b"', 'target "x": key "token_header" is for emulator targets only'),
    ("bad-token-header", '[targets.x]\ndevice = "overvis-mc252"\nemulator = true\ntoken_header = "Authorised"\n[targets.x.auth]\nlogin = "a"\npassword = "b"', 'target "x": key "token_header" must be "Authorized", "Authorization" or "both"'),
    ("reading-on-hardware", '[targets.x]\ndevice = "esp32-evse"\nbase_url = "http://127.0.0.1"\nreading = "alternative"', 'target "x": key "reading" is for emulator targets only'),
    ("bad-reading", '[targets.x]\ndevice = "esp32-evse"\nemulator = true\nreading = "other"', 'target "x": key "reading" must be one of'),
    ("boot-seconds-on-hardware", '[targets.x]\ndevice = "esp32-evse"\nbase_url = "http://127.0.0.1"\nboot_seconds = 3', 'target "x": key "boot_seconds" is for emulator targets only'),
    ("bad-boot-seconds", '[targets.x]\ndevice = "esp32-evse"\nemulator = true\nboot_seconds = 600', 'target "x": key "boot_seconds" must be a number'),
    ("bad-restart-timeout", '[targets.x]\ndevice = "esp32-evse"\nemulator = true\nrestart_timeout = 0', 'target "x": key "restart_timeout" must be a number'),
    ("not-toml", "[targets.x\ndevice=", "not valid TOML"),
    ("no-targets", "", "no [targets.<name>] tables"),
]


@pytest.mark.parametrize("text, message", [pytest.param(text, message, id=name) for name, text, message in BAD])
def test_wrong_file_gives_one_clear_line(tmp_path, text, message):
    with pytest.raises(TargetsError) as error:
        load_targets(write(tmp_path, text), environ={})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_unset_variables_are_all_named_in_one_line(tmp_path):
    text = GOOD + '\n    [targets.evse-2]\n    device = "esp32-evse"\n    base_url = "${EVSE2_URL}"\n'
    with pytest.raises(TargetsError) as error:
        load_targets(write(tmp_path, text), ["evse-lab", "evse-2"], environ={})
    message = str(error.value)
    assert 'target "evse-lab" key "auth.password" needs ${EVSE_PASSWORD}' in message
    assert 'target "evse-2" key "base_url" needs ${EVSE2_URL}' in message


def test_unknown_target_name_lists_the_known_ones(tmp_path):
    with pytest.raises(TargetsError) as error:
        load_targets(write(tmp_path, GOOD), ["evse-lap"], environ={})
    assert 'no target "evse-lap" (did you mean "evse-lab"?); known: evse-emulator, evse-lab' in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(TargetsError, match="no such targets file"):
        load_targets(tmp_path / "nope.toml")


def test_shipped_targets_file_is_valid():
    targets = load_targets(ROOT / "targets.toml", environ={})
    assert targets and all(t.emulator for t in targets)


def run_pytest(*args, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize("spelling", [["--target", "evse-lap"], ["--target=evse-lap"]], ids=["space", "equals"])
def test_pytest_stops_before_any_test_with_one_line(tmp_path, spelling):
    result = run_pytest("--targets-file", str(write(tmp_path, GOOD)), *spelling)
    assert result.returncode == 4, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and 'no target "evse-lap"' in errors[0], result.stderr
    assert "passed" not in result.stdout and "failed" not in result.stdout


def test_missing_environment_variable_stops_the_run(tmp_path):
    result = run_pytest(f"--targets-file={write(tmp_path, GOOD)}", "--target", "evse-lab", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 4, result.stdout + result.stderr
    assert "needs ${EVSE_PASSWORD}" in result.stderr


# -- WisDM: scoped keys, a list of tables in a fixed form -------------------------------------------

WISDM = """
    [targets.wisdm-cloud]
    device = "wisdm"
    base_url = "https://api.wisdm.network"
    [targets.wisdm-cloud.auth]
    keys = [
      { name = "reader", key = "${WISDM_READ_KEY}", access = "read", permissions = [] },
      { name = "ops", key = "${WISDM_OPS_KEY}", access = "write", permissions = ["WRITE_REBOOT_GATEWAY"], locations = ["4f"] },
    ]
"""


def test_wisdm_keys_resolve_variables_inside_the_list(tmp_path):
    [cloud] = load_targets(write(tmp_path, WISDM), ["wisdm-cloud"],
                           environ={"WISDM_READ_KEY": "read-key-0123456789", "WISDM_OPS_KEY": "ops-key-9876543210"})
    reader, ops = cloud.auth["keys"]
    assert reader["key"] == "read-key-0123456789" and ops["key"] == "ops-key-9876543210"
    # Only the keys are secrets: names, access and permissions describe them.
    assert sorted(cloud.secrets()) == ["ops-key-9876543210", "read-key-0123456789"]
    assert "key-0123" not in cloud.describe()


def test_wisdm_missing_variables_reported_together(tmp_path):
    with pytest.raises(TargetsError) as exc:
        load_targets(write(tmp_path, WISDM), ["wisdm-cloud"], environ={})
    assert "WISDM_READ_KEY" in str(exc.value) and "WISDM_OPS_KEY" in str(exc.value)


@pytest.mark.parametrize("keys, expected", [
    ("[]", "at least one"),
    ('[{ name = "r", key = "k", access = "read", permissions = ["WRITE_REBOOT_GATEWAY"] }]', "read-only key holds no write"),
    ('[{ name = "w", key = "k", access = "write", permissions = ["WRITE_REBOOT"] }]',
     'unknown permission "WRITE_REBOOT"'),
    ('[{ name = "w", key = "k", access = "admin", permissions = [] }]', 'access must be "read" or "write"'),
    ('[{ name = "w", access = "read", permissions = [] }]', 'field "key" is missing'),
    ('[{ name = "Bad Name", key = "k", access = "read" }]', "short lower-case word"),
    ('[{ name = "missing", key = "k", access = "read" }]', "short lower-case word"),
    ('[{ name = "a", key = "k", access = "read" }, { name = "a", key = "l", access = "read" }]', "given twice"),
    ('[{ name = "a", key = "k", access = "read", scope = "x" }]', 'unknown field "scope"'),
    ('[{ name = "a", key = "k", access = "read", expired = true }]', "every key is expired"),
    ('"k"', "give keys"),
])
def test_wisdm_key_problems_are_one_line(tmp_path, keys, expected):
    text = f"""
    [targets.w]
    device = "wisdm"
    base_url = "https://api.wisdm.network"
    [targets.w.auth]
    keys = {keys}
    """
    with pytest.raises(TargetsError) as exc:
        load_targets(write(tmp_path, text), ["w"], environ={})
    message = str(exc.value)
    assert expected in message and "\n" not in message and 'target "w"' in message


def test_tls_is_for_emulators_and_ca_bundle_for_https_devices(tmp_path):
    (tmp_path / "lab-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    text = WISDM.replace('base_url = "https://api.wisdm.network"', 'base_url = "https://api.wisdm.network"\n    ca_bundle = "lab-ca.pem"')
    [cloud] = load_targets(write(tmp_path, text), ["wisdm-cloud"], environ={"WISDM_READ_KEY": "a" * 12, "WISDM_OPS_KEY": "b" * 12})
    assert cloud.ca_bundle == str(tmp_path / "lab-ca.pem")
    for extra, expected in (('tls = true', 'key "tls" is for emulator targets only'),
                            ('ca_bundle = "nowhere.pem"', "no such file")):
        bad = WISDM.replace('base_url = "https://api.wisdm.network"', f'base_url = "https://api.wisdm.network"\n    {extra}')
        with pytest.raises(TargetsError, match=expected):
            load_targets(write(tmp_path, bad), ["wisdm-cloud"], environ={})
    plain = GOOD.replace('timeout = 5', 'timeout = 5\n    ca_bundle = "lab-ca.pem"')
    with pytest.raises(TargetsError, match="https base_url"):
        load_targets(write(tmp_path, plain), ["evse-lab"], environ={"EVSE_PASSWORD": "x"})


# -- waivers: bare IDs, or tables with a reason and a date ------------------------------------------


def waiving(tmp_path, waive: str):
    text = f"""
    [targets.w]
    device = "esp32-evse"
    emulator = true
    waive = {waive}
    """
    return load_targets(write(tmp_path, text), ["w"], environ={})[0]


def test_waivers_with_a_reason_and_a_date(tmp_path):
    import datetime

    target = waiving(tmp_path, '["EVSE-CFG-SCHED-TZ-POSIX", { id = "EVSE-DAV-NOAUTH", reason = "fixed in 2.1, FW-812", '
                               'until = "2999-03-31" }, { id = "EVSE-CONV-404", until = 2020-01-31 }]')
    bare, reasoned, past = target.waivers
    assert bare.reason == "" and bare.until is None and bare.describe() == "waived"
    assert reasoned.until == datetime.date(2999, 3, 31) and reasoned.describe() == "waived: fixed in 2.1, FW-812; until 2999-03-31"
    assert past.until == datetime.date(2020, 1, 31) and past.expired()  # a TOML date works as well as a string
    assert target.waive == ("EVSE-CFG-SCHED-TZ-POSIX", "EVSE-DAV-NOAUTH")  # an expired waiver waives nothing
    assert target.expired_waivers == (past,)


@pytest.mark.parametrize("waive, expected", [
    ('"EVSE-A"', 'key "waive" must be a list'),
    ('[{ reason = "x" }]', 'key "waive" must be a list'),
    ('[{ id = "EVSE-A", because = "x" }]', 'unknown field "because"'),
    ('[{ id = "EVSE-A", until = "next spring" }]', 'until must be a date like "2027-03-31"'),
    ('[{ id = "EVSE-A", until = 2027-03-31T10:00:00 }]', 'until must be a date'),
    ('[{ id = "EVSE-A", reason = 3 }]', "reason must be one line of text"),
    ('["EVSE-A", { id = "EVSE-A" }]', "EVSE-A is waived twice"),
])
def test_waiver_problems_are_one_line(tmp_path, waive, expected):
    with pytest.raises(TargetsError) as exc:
        waiving(tmp_path, waive)
    assert expected in str(exc.value) and "\n" not in str(exc.value)


# -- firmware: what a device that does not report it runs -------------------------------------------


def test_firmware_key_is_the_version_as_a_string(tmp_path):
    text = GOOD.replace('timeout = 5', 'timeout = 5\n    firmware = "1.8.2"')
    [lab] = load_targets(write(tmp_path, text), ["evse-lab"], environ={"EVSE_PASSWORD": "x"})
    assert lab.firmware == "1.8.2"
    for bad in ("firmware = 18", 'firmware = ""'):
        with pytest.raises(TargetsError, match='key "firmware" must be the version the device runs'):
            load_targets(write(tmp_path, GOOD.replace('timeout = 5', f'timeout = 5\n    {bad}')), ["evse-lab"],
                         environ={"EVSE_PASSWORD": "x"})
