"""Tests of the `conformlab` console command (emulate, faults, restore), run as a real subprocess."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys

import pytest
import requests

from conformlab.cli import main
from conformlab.emulators.esp32_evse import FAULTS


def run(*args: str, timeout: float = 20, home=None) -> subprocess.CompletedProcess:
    env = None if home is None else dict(os.environ, HOME=str(home))
    return subprocess.run([sys.executable, "-m", "conformlab", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def start(*args: str) -> tuple[subprocess.Popen, str]:
    """Start `conformlab emulate ...`; return the process and the URL from its READY line."""
    process = subprocess.Popen([sys.executable, "-m", "conformlab", "emulate", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout=20):
        process.kill()
        pytest.fail("no READY line within 20 s")
    line = process.stdout.readline()
    match = re.fullmatch(r"READY (http://127\.0\.0\.1:(\d+))\n", line)
    if not match:
        process.kill()
        pytest.fail(f"unexpected first line {line!r}; stderr: {process.stderr.read()}")
    return process, match.group(1)


def stop(process: subprocess.Popen, signum: int = signal.SIGINT) -> tuple[int, str, str]:
    process.send_signal(signum)
    out, err = process.communicate(timeout=10)
    return process.returncode, out, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_emulate_prints_ready_serves_and_exits_0(signum):
    process, url = start("esp32-evse", "--port", "0")
    try:
        assert requests.get(url + "/api/v1/state", timeout=5).json()["state"] == "C2"
        assert requests.get(url + "/nope", timeout=5).status_code == 404
    finally:
        code, out, err = stop(process, signum)
    assert (code, out, err) == (0, "", "")  # quiet: no request log, no traceback


def test_emulate_with_faults_and_auth_never_prints_credentials():
    process, url = start("esp32-evse", "--port", "0", "--fault", "wrong_auth_realm",
                         "--fault", "log_count_missing", "--auth", "username=admin", "--auth", "password=s3cr3t-pw")
    try:
        assert requests.get(url + "/__emulator__/", timeout=5).json()["faults"] == ["log_count_missing", "wrong_auth_realm"]
        response = requests.get(url + "/api/v1/info", timeout=5)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"] == 'Basic realm="EVSE"'
        assert requests.get(url + "/api/v1/info", auth=("admin", "s3cr3t-pw"), timeout=5).status_code == 200
    finally:
        code, out, err = stop(process)
    assert code == 0 and "s3cr3t-pw" not in out + err


def test_verbose_logs_requests_on_stderr_only():
    process, url = start("esp32-evse", "--port", "0", "--verbose")
    try:
        requests.get(url + "/api/v1/time", timeout=5)
    finally:
        code, out, err = stop(process)
    assert code == 0 and out == "" and "/api/v1/time" in err


@pytest.mark.parametrize("args, word", [
    (["emulate", "esp32-evse", "--port", "0", "--fault", "no_such_fault"], "no_such_fault"),
    (["emulate", "no-such-device", "--port", "0"], "no-such-device"),
    (["emulate", "esp32-evse", "--port", "0", "--host", "0.0.0.0"], "0.0.0.0"),
    (["emulate", "esp32-evse", "--port", "0", "--auth", "user=admin"], "user"),
    (["emulate", "esp32-evse", "--port", "0", "--auth", "hunter2"], "KEY=VALUE"),
    (["emulate", "esp32-evse", "--port", "70000"], "70000"),
    (["faults", "no-such-device"], "no-such-device"),
])
def test_errors_exit_2_with_one_line(args, word):
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and word in lines[0] and lines[0].startswith("conformlab: error: ")
    assert "hunter2" not in result.stderr  # a malformed --auth is not echoed


def test_port_in_use_exits_2():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("emulate", "esp32-evse", "--port", str(port))
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and str(port) in result.stderr


def test_faults_lists_the_catalogue():
    result = run("faults", "esp32-evse")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines == [f"{name}: {sentence}" for name, sentence in FAULTS.items()]
    assert len(lines) >= 24  # the device's own faults and the near-miss-credential ones


def test_main_in_process(capsys):
    assert main(["faults", "esp32-evse"]) == 0
    assert capsys.readouterr().out.startswith("partial_write_resets_others: ")
    assert main(["emulate", "esp32-evse", "--fault", "bogus"]) == 2
    assert "bogus" in capsys.readouterr().err


# -- restore (the journal and a killed run: tests/hostile/test_hostile_journal.py) ---------------------

LAB = """[targets.lab]
device = "esp32-evse"
base_url = "http://127.0.0.1:9"
[targets.lab.auth]
username = "admin"
password = "lab-pw-3c9e1f"
[targets.emu]
device = "esp32-evse"
emulator = true
"""


@pytest.fixture
def lab(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text(LAB)
    return path


def test_restore_with_nothing_to_restore_says_so(tmp_path, lab):
    """No journal: nothing is sent (the lab device's address is a closed port), exit 0."""
    result = run("restore", "lab", "--targets-file", str(lab), home=tmp_path)
    assert (result.returncode, result.stderr) == (0, ""), result
    assert result.stdout == f"lab: nothing to restore (no journal at {tmp_path}/.conformlab/journal/lab.json)\n"
    emulated = run("restore", "emu", "--targets-file", str(lab), home=tmp_path)
    assert emulated.returncode == 0 and "emulator target starts fresh each run" in emulated.stdout


def test_restore_refuses_a_journal_of_another_device(tmp_path, lab, monkeypatch):
    """A journal recorded at another address is never written to this one: one line, exit 1, kept."""
    monkeypatch.setenv("HOME", str(tmp_path))
    from conformlab.journal import Journal

    journal = Journal("lab", "esp32-evse", "http://127.0.0.1:10")
    journal.record({"/config": {"evse": {"maxChargingCurrent": 16}}})
    result = run("restore", "lab", "--targets-file", str(lab), home=tmp_path)
    assert result.returncode == 1 and result.stdout == "", result
    assert len(result.stderr.splitlines()) == 1 and "was recorded for the esp32-evse at http://127.0.0.1:10" in result.stderr
    assert journal.path.exists() and "lab-pw-3c9e1f" not in result.stderr


@pytest.mark.parametrize("args, word", [
    (["restore", "nope"], 'no target "nope"'),
    (["restore", "lab", "--targets-file", "/nonexistent/lab.toml"], "no such targets file"),
])
def test_restore_usage_errors_exit_2_with_one_line(tmp_path, lab, args, word):
    if "--targets-file" not in args:
        args = [*args, "--targets-file", str(lab)]
    result = run(*args, home=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and word in lines[0] and lines[0].startswith("conformlab: error: "), result.stderr
