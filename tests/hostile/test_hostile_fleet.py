"""A fleet stays within the machine, and a lab can be spread over hosts.

Twenty emulator targets on a two-core machine: `-n 2` caps the workers, each target's checks stay
together (its end-of-run check compares with the snapshot its own session took), and the run ends
without memory or port exhaustion. pytest-xdist's remote execution (`--tx socket=...`) is tried
over loopback with execnet's own socket server, one per worker.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

AUTH = {
    "esp32-evse": 'username = "admin"\npassword = "fleet-evse-9d2c41"\n',
    "wattwaechter": 'read_token = "fleet-read-61ab0e"\nwrite_token = "fleet-write-7f3c29"\n',
    "wcc-lite": 'api_key = "fleet-key-0b84d6e2"\n',
    "overvis-mc252": 'login = "admin"\npassword = "fleet-mc252-5e1a70"\n',
}


def fleet_file(tmp_path: Path, per_device: int) -> tuple[Path, list[str]]:
    lines, names = [], []
    for device, auth in AUTH.items():
        for n in range(per_device):
            name = f"{device}-{n}"
            names.append(name)
            lines.append(f'[targets.{name}]\ndevice = "{device}"\nemulator = true\nboot_seconds = 0.5\n')
            if n % 2 or device == "overvis-mc252":  # half of them with credentials; the MC252 always needs a login
                lines.append(f"[targets.{name}.auth]\n{auth}")
    path = tmp_path / "fleet.toml"
    path.write_text("\n".join(lines))
    return path, names


def run(args: list[str], tmp_path: Path, timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    """pytest in the project (its testpaths: suites/; remote workers take no path arguments)."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                             f"--html={tmp_path / 'r.html'}", f"--junitxml={tmp_path / 'r.xml'}", *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    return result, time.monotonic() - started


def run_measured(args: list[str], tmp_path: Path, timeout: float) -> tuple[int, str, float, int]:
    """pytest as run() does, and the peak memory (KiB) of the run's own processes: the rusage of this
    child alone (os.wait4: it and the workers it waited for), not of every child this test process
    ever had (RUSAGE_CHILDREN would count a larger run of another test file on the same worker)."""
    started = time.monotonic()
    with open(tmp_path / "out.txt", "w+") as out:
        child = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                                  f"--html={tmp_path / 'r.html'}", f"--junitxml={tmp_path / 'r.xml'}", *args],
                                 cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        killer = threading.Timer(timeout, child.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            killer.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return child.returncode, out.read(), time.monotonic() - started, usage.ru_maxrss


def test_twenty_targets_on_two_workers(tmp_path):
    path, names = fleet_file(tmp_path, per_device=5)
    targets = [f"--target={name}" for name in names]
    status, output, seconds, peak_kib = run_measured([f"--targets-file={path}", *targets, "-n", "2", "-k", "left_as_found"],
                                                     tmp_path, timeout=120)
    assert status == 0, output[-4000:]
    assert "20 passed" in output.splitlines()[-1], output[-1500:]
    assert seconds < 60, f"took {seconds:.0f} s"
    # One worker holds one target's emulator at a time: no process grows with the fleet.
    assert peak_kib < 400 * 1024, f"a process of the run peaked at {peak_kib // 1024} MiB"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_workers_placed_with_xdist_remote_execution(tmp_path):
    """What a lab spread over hosts does (README: one execnet socket server per worker on each
    host, `--tx socket=HOST:PORT//chdir=...`), here with both "hosts" on loopback."""
    ports = [_free_port(), _free_port()]
    servers = [subprocess.Popen([sys.executable, "-m", "execnet.script.socketserver", f"127.0.0.1:{port}"],
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for port in ports]
    try:
        for port in ports:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
        path, _ = fleet_file(tmp_path, per_device=1)
        tx = [f"--tx=socket=127.0.0.1:{port}//chdir={ROOT}" for port in ports]
        result, seconds = run([f"--targets-file={path}", "--target=esp32-evse-0", "--target=wcc-lite-0", *tx,
                               "-k", "left_as_found"], tmp_path, timeout=90)
    finally:
        for server in servers:
            server.kill()
            server.wait()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout, result.stdout[-1500:]
    assert seconds < 60, f"took {seconds:.0f} s"


def test_load_scenario_in_locust_master_worker_mode():
    """locust's own distribution (README): one master that judges, workers that send and hand their
    request records over at their stop; here master and worker on loopback."""
    from conformlab.emulators import start_emulator

    port = _free_port()
    locust = [sys.executable, "-m", "locust", "-f", str(ROOT / "load" / "rate_limit.py")]
    with start_emulator("wattwaechter") as emulator:
        env = {**os.environ, "CONFORMLAB_SOURCE_ADDRESSES": "127.0.0.2,127.0.0.3"}
        started = time.monotonic()
        master = subprocess.Popen([*locust, "--master", "--expect-workers", "1", f"--master-bind-port={port}",
                                   "--host", emulator.url + "/api/v1"], cwd=ROOT, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        worker = subprocess.Popen([*locust, "--worker", "--master-host", "127.0.0.1", f"--master-port={port}"],
                                  cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = master.communicate(timeout=55)
            worker_out, _ = worker.communicate(timeout=10)
        finally:
            for process in (master, worker):
                process.kill()
        seconds = time.monotonic() - started
    assert master.returncode == 0, out[-3000:] + worker_out[-2000:]
    assert "rate_limit: PASS" in out, out[-3000:]  # judged on the master, from the worker's records
    for aspect in ("first_window", "every_window", "rejections", "shared_budget", "recovery"):
        assert f"ok   {aspect}" in out, out[-3000:]
    assert seconds < 60
