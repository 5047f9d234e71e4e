"""One cause, one line: a target that cannot be tested at all ends with one ERROR that says why.

The wrong kind of device (an identity probe: the documented version or info endpoint answers a JSON
object with the keys the document gives it), a device another run is testing (one run per device on
a host), and two targets naming the same device in one run (one line before any test).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformlab.emulators import start_emulator
from conformlab.verdicts import NO_VERDICT

ROOT = Path(__file__).resolve().parents[2]


def run_suites(tmp_path: Path, targets_toml: str, *targets: str, home: Path | None = None):
    path = tmp_path / "targets.toml"
    path.write_text(targets_toml)
    env = {**os.environ, "HOME": str(home or tmp_path)}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pytest", "suites", f"--targets-file={path}",
                             *(f"--target={t}" for t in targets), "-p", "no:cacheprovider", "-q",
                             f"--html={tmp_path / 'r.html'}", f"--junitxml={tmp_path / 'r.xml'}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    return result, time.monotonic() - started


def bench(device: str, url: str, name: str = "bench") -> str:
    return f'[targets.{name}]\ndevice = "{device}"\nbase_url = "{url}"\ntimeout = 2\n'


@pytest.mark.parametrize("claimed, actual, line", [
    ("wcc-lite", "esp32-evse", "is not a WCC Lite: GET /api/version answered 404"),
    ("esp32-evse", "wcc-lite", "is not an ESP32 EVSE: GET /api/v1/info answered 404"),
    ("wattwaechter", "esp32-evse", "is not a WattWächter: GET /api/v1/system/info answered 404"),
])
def test_the_wrong_device_is_one_error(tmp_path, claimed, actual, line):
    with start_emulator(actual) as emulator:
        result, seconds = run_suites(tmp_path, bench(claimed, emulator.url), "bench")
    out = result.stdout
    assert result.returncode == NO_VERDICT, out[-3000:]
    assert f"target bench: the device at {emulator.url} {line}" in out, out[-3000:]
    summary = out[out.index("short test summary info"):]
    assert summary.count("ERROR ") == 1 and "FAILED" not in summary, summary
    assert out.count(line) <= 3, f"the cause is repeated {out.count(line)} times:\n{out[-3000:]}"
    assert seconds < 60


def test_a_device_another_run_is_testing_is_refused(tmp_path):
    """Two runs on one host against one device would share its budget and its state unknowingly."""
    from conformlab import device_lock

    with start_emulator("esp32-evse") as emulator:
        previous = os.environ.get("HOME")
        os.environ["HOME"] = str(tmp_path)  # the lock lives under ~/.conformlab, as in the subprocess
        try:
            held = device_lock.hold(f"http://127.0.0.1:{emulator.port}", "the other run")
        finally:
            os.environ["HOME"] = previous or ""
        try:
            result, _ = run_suites(tmp_path, bench("esp32-evse", emulator.url), "bench")
        finally:
            held.close()
        assert result.returncode == NO_VERDICT, result.stdout[-3000:]
        assert f"another conformlab run is testing http://127.0.0.1:{emulator.port}" in result.stdout, result.stdout[-3000:]
        assert "target the other run" in result.stdout  # who holds it
        # Released (also when its process dies): the next run goes ahead.
        result, _ = run_suites(tmp_path, bench("esp32-evse", emulator.url), "bench")
        assert "another conformlab run" not in result.stdout


def test_two_targets_naming_one_device_stop_the_run(tmp_path):
    toml = bench("esp32-evse", "http://127.0.0.1:8080", "one") + bench("esp32-evse", "http://127.0.0.1:8080/", "two")
    result, seconds = run_suites(tmp_path, toml, "one", "two")
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert 'targets "one" and "two" name the same device (http://127.0.0.1:8080)' in result.stderr + result.stdout
    assert seconds < 30


def test_the_other_targets_go_on(tmp_path):
    """One target that cannot be tested costs that target only: the good one beside it gets its verdicts."""
    with start_emulator("esp32-evse") as good, start_emulator("esp32-evse") as other:
        toml = bench("esp32-evse", good.url, "good") + bench("wcc-lite", other.url, "wrong")
        result, seconds = run_suites(tmp_path, toml, "good", "wrong")
    out = result.stdout
    assert result.returncode == NO_VERDICT, out[-3000:]
    assert "target wrong: the device at" in out and "is not a WCC Lite" in out, out[-3000:]
    summary = out[out.index("short test summary info"):]
    assert summary.count("ERROR ") == 1 and "FAILED" not in summary, summary
    assert "[good]" not in summary and "passed" in out.splitlines()[-1], out[-2000:]
    assert seconds < 60
