"""A device that is off, hung or not speaking HTTP gets one clear error per run, quickly."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conformlab.emulators import start_emulator
from conformlab.verdicts import NO_VERDICT

ROOT = Path(__file__).resolve().parents[1]


class Listener:
    """A loopback TCP server that misbehaves: `hang` (accepts, never answers) or `garbage`."""

    def __init__(self, behaviour: str):
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.open: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.open.append(conn)
            if self.behaviour == "garbage":
                try:
                    conn.recv(65536)
                    conn.sendall(b"\x00\x17garbage from a confused device\r\n\r\n")
                finally:
                    conn.close()

    def close(self):
        self.sock.close()
        for conn in self.open:
            conn.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_against(tmp_path, port: int, device: str = "esp32-evse", auth: str = ""):
    targets = tmp_path / "targets.toml"
    targets.write_text(f'[targets.bench]\ndevice = "{device}"\nbase_url = "http://127.0.0.1:{port}"\ntimeout = 1\n{auth}')
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pytest", "suites", f"--targets-file={targets}", "--target=bench",
                             "-p", "no:cacheprovider", "-q", f"--html={tmp_path / 'r.html'}", f"--junitxml={tmp_path / 'r.xml'}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    return result, time.monotonic() - started


@pytest.mark.parametrize("behaviour, message", [
    ("off", "cannot connect (is the device on and reachable?)"),
    ("hang", "no complete answer within 1 s"),
    ("garbage", "not HTTP"),
], ids=["unreachable", "hung", "garbage"])
def test_bad_device_fails_the_run_with_a_clear_error(tmp_path, behaviour, message):
    listener = None if behaviour == "off" else Listener(behaviour)
    try:
        result, seconds = run_against(tmp_path, closed_port() if listener is None else listener.port)
    finally:
        if listener:
            listener.close()
    assert result.returncode == NO_VERDICT, result.stdout[-2000:]  # no verdict on conformance, not a failure
    assert "target bench: " in result.stdout and message in result.stdout, result.stdout[-3000:]
    assert "passed" not in result.stdout.splitlines()[-1], result.stdout.splitlines()[-1]
    # The reachability probe fails once; the other checks reuse that verdict instead of waiting again.
    assert seconds < 60, f"took {seconds:.0f} s"


class NotTheApi(ThreadingHTTPServer):
    """Speaks HTTP, but every answer is a web page: no salt, no login."""

    def __init__(self):
        class Page(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 -- http.server's naming
                body = b"<html>router login page</html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Page)
        threading.Thread(target=self.serve_forever, daemon=True).start()


MC252_LOGIN = '[targets.bench.auth]\nlogin = "admin"\npassword = "bench-password-wrong"\n'


@pytest.mark.parametrize("device_kind, message", [
    ("wrong-password", "the device refused the login of 'admin' (401 on POST /api/login/)"),
    ("not-the-api", "GET /api/login/salt/ gave no salt (200"),
])
def test_mc252_login_problem_fails_the_run_with_a_clear_error(tmp_path, device_kind, message):
    if device_kind == "wrong-password":
        server = start_emulator("overvis-mc252", auth={"login": "admin", "password": "bench-password-right"})
        port, stop = server.port, server.stop
    else:
        page = NotTheApi()
        port, stop = page.server_address[1], page.shutdown
    try:
        result, _ = run_against(tmp_path, port, "overvis-mc252", MC252_LOGIN)
    finally:
        stop()
    assert result.returncode == NO_VERDICT, result.stdout[-2000:]  # no verdict on conformance, not a failure
    assert "target bench: " in result.stdout and message in result.stdout, result.stdout[-3000:]
    assert "bench-password-wrong" not in result.stdout
