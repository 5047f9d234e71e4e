"""A run against real hardware (destructive = false) leaves the device as it found it.

The "hardware" is the emulator served by `conformlab emulate` in its own process and named in
targets.toml by its base_url, so the harness treats it exactly as a device on the bench: no emulator
controls, no destructive steps. The emulator's request log then shows what the run sent, and the
test reads the device's state before and after (through the API, and the emulator's own view).

- ESP32 EVSE with credentials; a vehicle is waiting for authorization.
- WattWächter with tokens (api_auth_required true): no reboot, OTA, token renewal, MQTT CA or cloud
  pairing request, the settings and the tokens unchanged. Its budget makes this run take minutes,
  so the devices run at once.
- WCC Lite with an API key: no firmware upgrade and no configuration upload.
- Overvis MC252 with its login: none of the schema's destructive commands (restart, updates, settings
  reset and import, SMS, activation, cloud reconnect, card eject and writes, clock), the active and
  saved settings unchanged, and no session token or login hash in the output or the report.

Each run has a HOME of its own: the write journal (conformlab.journal) of a device with state to
put back was written there, and removed at the clean end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from conformlab.schema import device_schema
from leaks import session_secrets_in

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-secret"
WW_TOKENS = {"read_token": "bench-read-token", "write_token": "bench-write-token"}
WW_AUTH = {"Authorization": f"Bearer {WW_TOKENS['write_token']}"}


@dataclass(frozen=True)
class Bench:
    device: str
    auth: dict[str, str]
    forbidden: tuple[tuple[str, str], ...]  # requests a run with destructive = false never sends
    min_requests: int  # the request log holds at least this many (else it is missing)

    def read_state(self, url: str) -> dict:
        """What the run must leave as it was, read by the test (it may use the emulator's view)."""
        if self.device == "esp32-evse":
            auth = (self.auth["username"], self.auth["password"])
            return {"config": requests.get(url + "/api/v1/config", auth=auth, timeout=5).json(),
                    "state": requests.get(url + "/api/v1/state", auth=auth, timeout=5).json()}
        if self.device == "overvis-mc252":
            return requests.get(url + "/__emulator__/settings", timeout=5).json()
        if self.device == "wcc-lite":  # nothing the API writes can be read back: the uploads are counted
            counters = requests.get(url + "/__emulator__/counters", timeout=5).json()
            return {name: counters[name] for name in ("upgradesStarted", "upgradesRefused", "syncUploads", "syncRefused")}
        requests.post(url + "/__emulator__/budget", json={"reset": True}, timeout=5)
        return {"settings": requests.get(url + "/api/v1/settings", headers=WW_AUTH, timeout=5).json(),
                "tokens": requests.get(url + "/__emulator__/tokens", timeout=5).json()}


BENCHES = {
    "esp32-evse": Bench("esp32-evse", {"username": "admin", "password": PASSWORD}, (
        ("POST", "/api/v1/restart"), ("POST", "/api/v1/firmware/update"), ("POST", "/api/v1/firmware/upload"),
        ("POST", "/api/v1/nextion/upload"), ("POST", "/api/v1/credentials"),
        ("POST", "/api/v1/state/reset-total-consumption"), ("DELETE", "/api/v1/log/panic"),
        ("POST", "/api/v1/config/wifi"), ("POST", "/api/v1/wifi/state/ap"), ("POST", "/api/v1/state/authorize"),
    ), min_requests=300),
    "wattwaechter": Bench("wattwaechter", WW_TOKENS, (
        ("POST", "/api/v1/system/reboot"), ("POST", "/api/v1/ota/start"), ("POST", "/api/v1/auth/tokens/generate"),
        ("POST", "/api/v1/auth/tokens/confirm"), ("POST", "/api/v1/mqtt/ca"), ("DELETE", "/api/v1/mqtt/ca"),
        ("POST", "/api/v1/cloud/pair"), ("DELETE", "/api/v1/cloud/pair"),
    ), min_requests=200),
    "wcc-lite": Bench("wcc-lite", {"api_key": "bench-api-key-1"}, (
        ("POST", "/api/sysupgrade"), ("POST", "/api/sync"),
    ), min_requests=50),
    "overvis-mc252": Bench("overvis-mc252", {"login": "admin", "password": PASSWORD}, tuple(
        (op.method, "/api" + op.path) for op in device_schema("overvis-mc252").operations if op.destructive
    ), min_requests=200),
}
MC252_EFFECTS = ("reboots", "updateDownloads", "updatePrograms", "settingsResets", "settingsImports", "smsTests",
                 "activations", "cardEjects", "cardWrites", "cardRemoves", "timeSets", "cloudReconnects")


def _start(bench: Bench, work: Path) -> dict:
    log_path = work / f"{bench.device}-requests.log"
    log = log_path.open("w")  # a file, not a pipe: nobody reads a pipe during the run
    auth_args = [arg for key, value in bench.auth.items() for arg in ("--auth", f"{key}={value}")]
    emulator = subprocess.Popen([sys.executable, "-m", "conformlab", "emulate", bench.device, "--port", "0", "--verbose",
                                 *auth_args], stdout=subprocess.PIPE, stderr=log, text=True)
    ready = emulator.stdout.readline().strip()
    assert re.fullmatch(r"READY http://127\.0\.0\.1:\d+", ready), ready
    url = ready.split()[1]
    if bench.device == "esp32-evse":  # a vehicle is connected and waiting for authorization
        requests.post(url + "/__emulator__/live", json={"state": "B1", "pendingAuth": True}, timeout=5)
    targets = work / f"{bench.device}-targets.toml"
    auth_lines = "".join(f'{key} = "{value}"\n' for key, value in bench.auth.items())
    targets.write_text(f'[targets.bench]\ndevice = "{bench.device}"\nbase_url = "{url}"\ndestructive = false\n'
                       f"[targets.bench.auth]\n{auth_lines}")
    before = bench.read_state(url)
    log.flush()
    offset = log_path.stat().st_size  # the run's own requests are logged after this point
    home = work / f"{bench.device}-home"
    home.mkdir()
    run = subprocess.Popen([sys.executable, "-m", "pytest", "suites", f"--targets-file={targets}", "--target=bench",
                            "-p", "no:cacheprovider", "-q", f"--html={work / (bench.device + '.html')}",
                            f"--junitxml={work / (bench.device + '.xml')}"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=dict(os.environ, HOME=str(home)))
    return {"emulator": emulator, "run": run, "url": url, "log": log, "log_path": log_path, "before": before,
            "offset": offset, "home": home}


@pytest.fixture(scope="module")
def benches(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench")
    started = {device: _start(bench, work) for device, bench in BENCHES.items()}
    results = {}
    for device, s in started.items():
        output, _ = s["run"].communicate(timeout=900)
        run_log = s["log_path"].read_bytes()[s["offset"]:].decode("utf-8", "replace")
        after = BENCHES[device].read_state(s["url"])
        counters = requests.get(s["url"] + "/__emulator__/counters", timeout=5).json()
        s["emulator"].terminate()
        s["emulator"].wait(timeout=10)
        s["log"].close()
        journals = s["home"] / ".conformlab" / "journal"
        results[device] = {"returncode": s["run"].returncode, "stdout": output, "before": s["before"], "after": after,
                           "counters": counters, "log": run_log, "html": (work / f"{device}.html").read_text(errors="replace"),
                           "journal": sorted(p.name for p in journals.iterdir()) if journals.is_dir() else None}
    return results


DEVICES = sorted(BENCHES)


@pytest.mark.parametrize("device", DEVICES)
def test_run_passes(benches, device):
    assert benches[device]["returncode"] == 0, benches[device]["stdout"][-4000:]


@pytest.mark.parametrize("device", DEVICES)
def test_no_destructive_request_was_sent(benches, device):
    requests_seen = re.findall(r'"([A-Z]+) (\S+) HTTP/1\.1"', benches[device]["log"])
    assert len(requests_seen) > BENCHES[device].min_requests, "the request log is missing"
    sent = {(method, path.split("?")[0]) for method, path in requests_seen}
    forbidden = set(BENCHES[device].forbidden)
    assert not sent & forbidden, f"destructive requests sent to the bench device: {sorted(sent & forbidden)}"
    counters = benches[device]["counters"]
    if device == "esp32-evse":
        assert counters == {"restarts": 0, "firmwareUpdates": 0, "firmwareUploads": 0, "nextionUploads": 0}
    elif device == "wcc-lite":
        assert counters["upgradesStarted"] == counters["syncUploads"] == 0, counters
    elif device == "overvis-mc252":
        assert {name: counters[name] for name in MC252_EFFECTS} == dict.fromkeys(MC252_EFFECTS, 0), counters
    else:
        effects = ("reboots", "otaStarts", "tokenRenewals", "caUploads", "cloudPairings")
        assert {name: counters[name] for name in effects} == dict.fromkeys(effects, 0), counters


@pytest.mark.parametrize("device", DEVICES)
def test_no_emulator_control_was_used(benches, device):
    """Emulator-only controls exist only on emulator targets: a hardware run never needs them.
    (The test reads the emulator's view before and after the run; only the run's requests count.)"""
    controls = re.findall(r'"[A-Z]+ (/__emulator__/\S*) HTTP/1\.1"', benches[device]["log"])
    assert not controls, f"the run used emulator controls: {controls}"


@pytest.mark.parametrize("device", DEVICES)
def test_device_left_as_found(benches, device):
    result = benches[device]
    if device == "esp32-evse":
        assert result["after"]["config"] == result["before"]["config"]
        state = result["after"]["state"]
        assert state["pendingAuth"] is True and state["state"] == "B1", "the waiting vehicle was touched"
    else:
        assert result["after"] == result["before"], "the settings or the tokens changed"


@pytest.mark.parametrize("device", DEVICES)
def test_secrets_not_in_outputs(benches, device):
    for key, value in BENCHES[device].auth.items():
        if key != "login":
            assert value not in benches[device]["stdout"]
    for text in (benches[device]["stdout"], benches[device]["html"]):
        assert not session_secrets_in(text), "a session token or login hash reached the output or the report"


@pytest.mark.parametrize("device", DEVICES)
def test_journal_written_and_removed_at_the_clean_end(benches, device):
    """A device with state to put back had a journal (its folder was made for it); the run ended
    with the device as found, so the journal is gone. The WCC Lite's API writes nothing readable."""
    if device == "wcc-lite":
        assert benches[device]["journal"] is None, "nothing to journal on a WCC Lite"
    else:
        assert benches[device]["journal"] == [], benches[device]["journal"]
