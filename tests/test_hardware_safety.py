"""A run against real hardware (destructive = false) leaves the device as it found it.

The "hardware" is the emulator served by `conformlab emulate` in its own process and named in
targets.toml by its base_url, so the harness treats it exactly as a charger on the bench: no
emulator controls, no destructive steps. A vehicle is waiting for authorization. The emulator's
request log then shows what the run sent.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-secret"
# Never sent by a run with destructive = false (the vehicle's authorization included).
FORBIDDEN = [
    ("POST", "/api/v1/restart"), ("POST", "/api/v1/firmware/update"), ("POST", "/api/v1/firmware/upload"),
    ("POST", "/api/v1/nextion/upload"), ("POST", "/api/v1/credentials"), ("POST", "/api/v1/state/reset-total-consumption"),
    ("DELETE", "/api/v1/log/panic"), ("POST", "/api/v1/config/wifi"), ("POST", "/api/v1/wifi/state/ap"),
    ("POST", "/api/v1/state/authorize"),
]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench")
    log = (work / "requests.log").open("w")  # a file, not a pipe: nobody reads a pipe during the run
    process = subprocess.Popen(
        [sys.executable, "-m", "conformlab", "emulate", "esp32-evse", "--port", "0", "--verbose",
         "--auth", "username=admin", "--auth", f"password={PASSWORD}"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    ready = process.stdout.readline().strip()
    assert re.fullmatch(r"READY http://127\.0\.0\.1:\d+", ready), ready
    url = ready.split()[1]
    # A vehicle is connected and waiting for authorization.
    requests.post(url + "/__emulator__/live", json={"state": "B1", "pendingAuth": True}, timeout=5)
    targets = work / "targets.toml"
    targets.write_text(f'[targets.bench]\ndevice = "esp32-evse"\nbase_url = "{url}"\ndestructive = false\n'
                       f'[targets.bench.auth]\nusername = "admin"\npassword = "{PASSWORD}"\n')
    before = requests.get(url + "/api/v1/config", auth=("admin", PASSWORD), timeout=5).json()
    result = subprocess.run([sys.executable, "-m", "pytest", "suites", f"--targets-file={targets}", "--target=bench",
                             "-p", "no:cacheprovider", "-q", f"--html={work / 'r.html'}", f"--junitxml={work / 'r.xml'}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    state = requests.get(url + "/api/v1/state", auth=("admin", PASSWORD), timeout=5).json()
    after = requests.get(url + "/api/v1/config", auth=("admin", PASSWORD), timeout=5).json()
    counters = requests.get(url + "/__emulator__/counters", timeout=5).json()
    process.terminate()
    process.wait(timeout=10)
    log.close()
    yield {"result": result, "state": state, "before": before, "after": after, "counters": counters,
           "log": (work / "requests.log").read_text()}


def test_run_passes(bench):
    assert bench["result"].returncode == 0, bench["result"].stdout[-4000:]


def test_no_destructive_request_was_sent(bench):
    requests_seen = re.findall(r'"([A-Z]+) (\S+) HTTP/1\.1"', bench["log"])
    assert len(requests_seen) > 300, "the request log is missing"
    sent = {(method, path.split("?")[0]) for method, path in requests_seen}
    assert not sent & set(FORBIDDEN), f"destructive requests sent to the bench device: {sorted(sent & set(FORBIDDEN))}"
    assert bench["counters"] == {"restarts": 0, "firmwareUpdates": 0, "firmwareUploads": 0, "nextionUploads": 0}


def test_device_left_as_found(bench):
    assert bench["after"] == bench["before"]
    assert bench["state"]["pendingAuth"] is True and bench["state"]["state"] == "B1", "the waiting vehicle was touched"


def test_password_not_in_outputs(bench):
    assert PASSWORD not in bench["result"].stdout
