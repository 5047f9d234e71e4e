"""Restarts as real firmware does them, and a harness that survives them.

A device answers first, restarts a moment later and is off the network while it boots. The
emulators do the same (DeviceEmulator.restart, `boot_seconds`); the schema marks the operations
that restart a device (`x-conformlab: restarts`), and the one client waits after each of them until
the device has gone down and come back. A device that never comes back fails the check that
restarted it, in one line, and the rest of its target's checks are not sent.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import requests

from conformlab.client import DeviceClient, DeviceError, DeviceGone
from conformlab.emulators import start_emulator
from conformlab.schema import device_schema

ROOT = Path(__file__).resolve().parents[1]


class _Restarts:
    restart_within = 5.0


def _client(url: str, restart_timeout: float = 10.0) -> DeviceClient:
    client = DeviceClient(url, "/api/v1", probe_path="/info", restart_timeout=restart_timeout, name="bench")
    # A stand-in for the schema's mark: here GET /state "restarts" the device (the test restarts it).
    client.restarting = lambda method, path: _Restarts() if (method, path) == ("GET", "/state") else None
    return client


def _answers(url: str) -> bool:
    try:
        requests.get(url + "/api/v1/info", timeout=2)
        return True
    except requests.RequestException:
        return False


def test_emulator_is_off_the_network_while_it_boots():
    with start_emulator("esp32-evse", boot_seconds=1.0) as emu:
        assert _answers(emu.url)
        emu.emulator.restart(0.2)
        assert _answers(emu.url), "the answer goes out before the restart"
        time.sleep(0.5)
        assert not _answers(emu.url), "a booting device answers nothing"
        assert emu.emulator.restarts == 0
        time.sleep(1.2)
        assert _answers(emu.url), "the device is back after its boot time"
        assert emu.emulator.restarts == 1


def test_every_schema_marks_its_restarting_operations():
    for device in ("esp32-evse", "wattwaechter", "overvis-mc252"):
        marked = [op for op in device_schema(device).operations if op.restarts]
        assert marked, f"{device}: no operation of the schema is marked as restarting the device"


def test_client_waits_until_the_device_is_back_and_says_so():
    with start_emulator("esp32-evse", boot_seconds=1.0) as emu:
        client = _client(emu.url)
        start = time.monotonic()
        emu.emulator.restart(0.3)
        assert client.get("/state").status_code == 200
        assert time.monotonic() - start >= 1.0, "the client returned before the device was back"
        assert emu.emulator.restarts == 1 and _answers(emu.url)
        notes = [ex.note for ex in client.transcript if ex.note]
        assert any("the device restarted" in note for note in notes), notes
        assert client.get("/info").status_code == 200


def test_no_outage_within_the_window_is_noted_not_waited_for_ever():
    with start_emulator("esp32-evse") as emu:
        client = _client(emu.url)
        client.restarting = lambda method, path: type("Op", (), {"restart_within": 1.0})() if path == "/state" else None
        start = time.monotonic()
        client.get("/state")
        assert 1.0 <= time.monotonic() - start < 5
        assert any("no restart seen" in ex.note for ex in client.transcript if ex.note)


def test_device_that_never_comes_back_ends_the_talk_with_one_line():
    with start_emulator("esp32-evse", boot_seconds=30) as emu:
        client = _client(emu.url, restart_timeout=2.0)
        emu.emulator.restart(0.2)
        start = time.monotonic()
        with pytest.raises(DeviceGone, match=r"did not come back within 2 s of GET /api/v1/state"):
            client.get("/state")
        assert time.monotonic() - start < 6
        with pytest.raises(DeviceError, match="nothing more is sent to it"):
            client.get("/info")


def _emulate(device: str, *args: str):
    process = subprocess.Popen([sys.executable, "-m", "conformlab", "emulate", device, "--port", "0", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready = process.stdout.readline().strip()
    assert re.fullmatch(r"READY http://127\.0\.0\.1:\d+", ready), ready
    return process, ready.split()[1]


def _run(targets: Path, work: Path, *args: str) -> tuple[int, str, ElementTree.ElementTree]:
    junit = work / "run.xml"
    run = subprocess.run([sys.executable, "-m", "pytest", "suites", f"--targets-file={targets}", "--target=bench",
                          "-p", "no:cacheprovider", "-q", "-n", "0", f"--junitxml={junit}",
                          f"--html={work / 'run.html'}", *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    return run.returncode, run.stdout + run.stderr, ElementTree.parse(junit)


@pytest.mark.parametrize("device, auth", [
    ("esp32-evse", {"username": "admin", "password": "bench-restart-secret"}),
    ("overvis-mc252", {"login": "admin", "password": "bench-restart-secret"}),
])
def test_destructive_bench_run_survives_every_restart(tmp_path, device, auth):
    """Real hardware with destructive = true: the emulator in its own process, named by base_url,
    off the network for 3 s at every restart. The run passes, and it did restart the device."""
    auth_args = [arg for key, value in auth.items() for arg in ("--auth", f"{key}={value}")]
    emulator, url = _emulate(device, "--boot-seconds", "3", *auth_args)
    try:
        targets = tmp_path / "targets.toml"
        auth_lines = "".join(f'{key} = "{value}"\n' for key, value in auth.items())
        targets.write_text(f'[targets.bench]\ndevice = "{device}"\nbase_url = "{url}"\ndestructive = true\n'
                           f"[targets.bench.auth]\n{auth_lines}")
        code, output, _ = _run(targets, tmp_path)
        counters = requests.get(url + "/__emulator__/counters", timeout=5).json()
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    assert code == 0, output[-4000:]
    restarts = counters.get("restarts", counters.get("reboots", 0))
    assert restarts >= 1, f"the run restarted nothing: {counters}"


def test_target_whose_device_never_comes_back_fails_one_check_and_stops(tmp_path):
    targets = tmp_path / "targets.toml"
    targets.write_text('[targets.bench]\ndevice = "esp32-evse"\nemulator = true\ndestructive = true\n'
                       "boot_seconds = 60\nrestart_timeout = 4\n")
    code, output, junit = _run(targets, tmp_path)
    failed = [case for case in junit.iter("testcase") if case.find("failure") is not None or case.find("error") is not None]
    skipped = [case.find("skipped").get("message", "") for case in junit.iter("testcase") if case.find("skipped") is not None]
    assert len(failed) == 1, f"one check restarted the device and fails; failed: {[c.get('name') for c in failed]}\n{output[-3000:]}"
    assert "did not come back within 4 s" in ElementTree.tostring(failed[0], encoding="unicode")
    gone = [reason for reason in skipped if "did not come back" in reason]
    assert gone, "the checks after the restart are reported as not run"
    assert code != 0
