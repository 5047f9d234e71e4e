"""A device on the bench whose writes take long, and a run of the suites against it as real hardware.

`HeldWrites` is a loopback HTTP proxy in front of a bundled emulator. It passes every request on at
once; while `holding` is set, it holds the answer to a POST (the device has already taken the write)
until `release()` or `hold_seconds` pass. A test waits for `held` (a write is in flight), then
signals the run: the run is "in the middle of a write", the moment that matters for restoring. With
`forward_held` off, a held write never reaches the device (it answers 503 once released).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from conformlab.emulators import start_emulator

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "admin", "bench-pw-5e1c07a3"
AUTH = {"username": USER, "password": PASSWORD}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
# The checks the interruption tests select: each writes the EVSE's configuration under preserved().
WRITE_CHECK = "test_serial_write_changes_only_the_port_changed"


class HeldWrites(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, port: int = 0, hold_seconds: float = 30.0):
        self.upstream = upstream.removeprefix("http://")
        self.hold_seconds = hold_seconds
        self.holding = threading.Event()  # hold the answers to writes while set
        self.forward_held = True  # a held write reaches the device first (False: never)
        self.held = threading.Event()  # a write is being held (clear it to wait for the next one)
        self.released = threading.Event()
        self.writes: list[str] = []  # "POST /api/v1/..." in arrival order
        self.requests = 0
        self.first_request = threading.Event()

        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.requests += 1
                proxy.first_request.set()
                write = self.command == "POST" and self.path.startswith("/api/")
                if write:
                    proxy.writes.append(f"POST {self.path}")
                held = write and proxy.holding.is_set()
                if held and not proxy.forward_held:  # a write that never reaches the device
                    proxy.held.set()
                    proxy.released.wait(proxy.hold_seconds)
                    return self._answer(503, "Service Unavailable", [], b"")
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                if held:  # the device has taken the write; its answer is late
                    proxy.held.set()
                    proxy.released.wait(proxy.hold_seconds)
                self._answer(answer.status, answer.reason, answer.getheaders(), data)

            def _answer(self, status, reason, headers, data):
                self.send_response(status, reason)
                for name, value in headers:
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

            do_GET = do_POST = do_DELETE = do_PUT = _relay

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def handle_error(self, request, client_address):
        pass  # a run that was interrupted or killed hangs up on the write it was waiting for

    def release(self) -> None:
        """Stop holding: answer the write in flight and every later one at once."""
        self.holding.clear()
        self.released.set()

    def close(self) -> None:
        self.release()
        self.shutdown()
        self.server_close()


class Bench:
    """One ESP32 EVSE on the bench: an emulator with credentials behind a HeldWrites proxy."""

    def __init__(self, name: str = "bench"):
        self.name = name
        self.emulator = start_emulator("esp32-evse", auth=AUTH)
        self.proxy = HeldWrites(self.emulator.url)

    def target_lines(self) -> str:
        return (f'[targets.{self.name}]\ndevice = "esp32-evse"\nbase_url = "{self.proxy.url}"\ndestructive = false\n'
                f'timeout = 5\n[targets.{self.name}.auth]\nusername = "{USER}"\npassword = "{PASSWORD}"\n')

    def state(self) -> dict:
        """What the run must leave as it found it, read with plain requests (the device's own API)."""
        auth, url = (USER, PASSWORD), self.emulator.url + "/api/v1"
        state = requests.get(url + "/state", auth=auth, timeout=5).json()
        writable = ("chargingCurrent", "enabled", "available", "consumptionLimit", "chargingTimeLimit", "underPowerLimit")
        return {"config": requests.get(url + "/config", auth=auth, timeout=5).json(),
                "channel": requests.get(url + "/firmware/channel", auth=auth, timeout=5).json(),
                "state": {key: state.get(key) for key in writable}}

    def close(self) -> None:
        self.proxy.close()
        self.emulator.stop()


def write_targets(tmp_path: Path, benches: list[Bench]) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text("".join(bench.target_lines() for bench in benches))
    return path


def environment(home: Path) -> dict[str, str]:
    env = dict(os.environ, HOME=str(home), PYTHONUNBUFFERED="1")
    env.pop("CONFORMLAB_RESTARTED", None)
    return env


def start_run(tmp_path: Path, targets: Path, names: list[str], *extra: str) -> subprocess.Popen:
    """The suites against `names`, in a session of its own (a signal to its group is what a
    terminal's Ctrl-C does: the controller and its xdist workers get it)."""
    command = [sys.executable, "-m", "pytest", "suites", f"--targets-file={targets}", *(f"--target={n}" for n in names),
               "-p", "no:cacheprovider", "-q", f"--html={tmp_path / 'report.html'}", f"--junitxml={tmp_path / 'report.xml'}",
               *extra]
    return subprocess.Popen(command, cwd=ROOT, env=environment(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(run: subprocess.Popen, timeout: float) -> tuple[str, float]:
    """Wait for the run; its output and the seconds it took (the run is killed past `timeout`)."""
    started = time.monotonic()
    try:
        output, _ = run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        output, _ = run.communicate()
        raise AssertionError(f"the run did not end within {timeout:g} s:\n{output[-3000:]}") from None
    return output, time.monotonic() - started


def wait_for(event: threading.Event, what: str, run: subprocess.Popen, timeout: float = 30.0) -> None:
    if not event.wait(timeout):
        os.killpg(run.pid, signal.SIGKILL)
        output, _ = run.communicate()
        raise AssertionError(f"{what} did not happen within {timeout:g} s:\n{output[-3000:]}")


def restore_command(tmp_path: Path, targets: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformlab", "restore", name, "--targets-file", str(targets)],
                          cwd=ROOT, env=environment(tmp_path), capture_output=True, text=True, timeout=60)


def journal_file(home: Path, name: str) -> Path:
    return home / ".conformlab" / "journal" / f"{name}.json"
