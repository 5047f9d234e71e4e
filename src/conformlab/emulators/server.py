"""A small, generic HTTP/1.1 server for device emulators.

Every bundled emulator is a real server on loopback. This module knows nothing about any device:

- `Request` / `Response` are plain data objects.
- `DeviceEmulator` is the base class of a device: its fault catalogue (`FAULTS`), its credential
  keys (`AUTH_KEYS`), a `head()` hook that may answer from the request head before the body is
  read (e.g. 413 for a huge Content-Length), `handle()` for the full request, and the
  emulator-only control endpoints under `/__emulator__/` (JSON in, JSON out, never authenticated).
- `serve()` runs an emulator on a `ThreadingHTTPServer` in a daemon thread and returns a
  `RunningEmulator` handle (`.url`, `.emulator`, `.stop()`, context manager).
- `DeviceEmulator.restart()` restarts as firmware does: the answer leaves first; after the delay
  every open connection is dropped and the device is off the network for `boot_seconds` (new
  connections are closed unanswered), then it boots with what survives a restart.
- `DeviceEmulator.reading` is "default" (this project's reading of what a document leaves open) or
  "alternative" (every such choice made the other way a conforming device may make it).

The server speaks HTTP/1.1 with keep-alive, accepts any method (PROPFIND, MKCOL, ... included),
reads `Content-Length` and chunked bodies, and defers `Expect: 100-continue` until `head()` has
let the request through. A `Response` with `close=True` makes the server close the connection
after sending it, without announcing it in a `Connection` header (some firmware does exactly
that). A handler exception is printed to stderr and answered with 500; it never stops the server.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import socket
import socketserver
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

CONTROL_PREFIX = "/__emulator__/"


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _headers(value: Message | Mapping[str, str] | None) -> Message:
    """Request headers as a case-insensitive `email.message.Message`."""
    if isinstance(value, Message):
        return value
    message = Message()
    for name, item in (value or {}).items():
        message[name] = item
    return message


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query string
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: Message = field(default_factory=Message)  # case-insensitive .get()
    body: bytes = b""  # empty while DeviceEmulator.head() runs
    client_address: tuple[str, int] = ("127.0.0.1", 0)

    def __post_init__(self) -> None:
        self.headers = _headers(self.headers)


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    close: bool = False  # close the connection after sending this answer
    reason: str | None = None  # reason phrase; default from the status code

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        body = json.dumps(value, separators=(",", ":")).encode()
        return cls(status, {"Content-Type": "application/json", **(headers or {})}, body)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain",
             headers: Mapping[str, str] | None = None) -> Response:
        return cls(status, {"Content-Type": content_type, **(headers or {})}, text.encode())


class ControlError(Exception):
    """Raised by a control handler: answered 400 with {"error": message}."""


class DeviceEmulator:
    """Base class of a device emulator. Subclasses set NAME, FAULTS, AUTH_KEYS and implement
    `device_handle()` (and optionally `device_head()` and `controls()`)."""

    NAME: str = ""
    FAULTS: dict[str, str] = {}  # fault name -> the documented sentence it breaks
    AUTH_KEYS: tuple[str, ...] = ()  # keys of the `auth` dict (credentials set at start)
    # targets.toml keys of the device (profile target_options) the emulator takes at start, and the
    # constructor keyword each becomes (e.g. WCC Lite: disabled_endpoints -> disabled)
    TARGET_OPTIONS: dict[str, str] = {}
    # Set by start_emulator from the target (targets.toml keys of every emulator target).
    reading: str = "default"
    boot_seconds: float = 2.0

    def __init__(self, faults: Iterable[str] = (), auth: Mapping[str, Any] | None = None) -> None:
        faults = (faults,) if isinstance(faults, str) else tuple(faults)
        unknown = sorted(set(faults) - set(self.FAULTS))
        if unknown:
            raise ValueError(
                f"unknown fault {', '.join(map(repr, unknown))} for {self.NAME}; "
                f"known faults: {', '.join(self.FAULTS) or '(none)'}")
        auth = dict(auth or {})
        bad = sorted(set(auth) - set(self.AUTH_KEYS))
        if bad:
            raise ValueError(
                f"unknown auth key {', '.join(map(repr, bad))} for {self.NAME}; "
                f"known keys: {', '.join(self.AUTH_KEYS) or '(none)'}")
        self.faults: frozenset[str] = frozenset(faults)
        self.auth: dict[str, Any] = auth
        self.lock = threading.RLock()  # one request (or timer) at a time touches the state
        self._timers: list[threading.Timer] = []
        self._closed = False
        self.server: EmulatorServer | None = None  # set by serve(): restarts drop its connections
        self.down = False  # off the network while it boots
        self.restarts = 0  # restarts completed (the device booted again)

    @property
    def alternative(self) -> bool:
        """Is the emulator making the other reading of what its document leaves open?"""
        return self.reading == "alternative"

    def fault(self, name: str) -> bool:
        """Is fault `name` switched on? (A typo in a fault name is a bug: fail loudly.)"""
        if name not in self.FAULTS:
            raise KeyError(f"{self.NAME} has no fault {name!r}")
        return name in self.faults

    # -- entry points used by the server -------------------------------------------------------

    def head(self, request: Request) -> Response | None:
        """Answer from the request head alone (body not read yet), or None to go on."""
        if _is_control(request.path):
            return None
        with self.lock:
            return self.device_head(request)

    def handle(self, request: Request) -> Response:
        with self.lock:
            if _is_control(request.path):
                return self._control(request)
            return self.device_handle(request)

    # -- to override -----------------------------------------------------------------------------

    def device_head(self, request: Request) -> Response | None:
        return None

    def device_handle(self, request: Request) -> Response:
        raise NotImplementedError

    def controls(self) -> dict[tuple[str, str], Callable[[Any], Any]]:
        """(method, name) -> handler(payload) for /__emulator__/<name>; return value is JSON."""
        return {}

    def error(self, status: int, detail: str | None = None,
              headers: Mapping[str, str] | None = None) -> Response:
        """The one place where error answers are made: a short text/html body and the
        connection closed afterwards. Override for a device with another error envelope."""
        reason = reason_phrase(status)
        body = f"<h1>{status} {reason}</h1>"
        if detail:
            body += f"<p>{_html_escape(detail)}</p>"
        return Response(status, {"Content-Type": "text/html", **(headers or {})},
                        body.encode(), close=True)

    # -- helpers -------------------------------------------------------------------------------

    def later(self, delay: float, action: Callable[[], None]) -> None:
        """Run `action` (under the state lock) `delay` seconds from now, unless stopped."""
        def run() -> None:
            with self.lock:
                if not self._closed:
                    action()
        timer = threading.Timer(delay, run)
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def restart(self, delay: float, boot: Callable[[], None] = lambda: None) -> None:
        """Restart as real firmware does: `delay` seconds from now (the answer has gone out by
        then) drop every open connection and stay off the network for `boot_seconds`; then run
        `boot()` (what a start does to the state: sessions lost, saved settings applied, ...) and
        serve again. A restart requested while one is pending or under way is the same restart."""
        def go_down() -> None:
            if self.down:
                return
            self.down = True
            if self.server is not None:
                self.server.close_connections()
            self.later(self.boot_seconds, come_up)

        def come_up() -> None:
            boot()
            self.restarts += 1
            self.down = False

        self.later(delay, go_down)

    def cancel_timers(self) -> None:
        with self.lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()

    def close(self) -> None:
        with self.lock:
            self._closed = True
            self.cancel_timers()

    def _control(self, request: Request) -> Response:
        name = request.path[len(CONTROL_PREFIX):].strip("/") if request.path != CONTROL_PREFIX[:-1] else ""
        if request.method == "GET" and name == "":
            return Response.json({"device": self.NAME, "faults": sorted(self.faults)})
        handler = self.controls().get((request.method, name))
        if handler is None:
            return Response.json({"error": f"no control {request.method} {CONTROL_PREFIX}{name}"}, 404)
        try:
            payload = json.loads(request.body) if request.body.strip() else None
        except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
            return Response.json({"error": f"malformed JSON: {exc}"}, 400)
        try:
            result = handler(payload)
        except ControlError as exc:
            return Response.json({"error": str(exc)}, 400)
        return Response.json({} if result is None else result)


def _is_control(path: str) -> bool:
    return path.startswith(CONTROL_PREFIX) or path == CONTROL_PREFIX[:-1]


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------------------------------------
# The HTTP server


class _BadRequest(Exception):
    pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "conformlab-emulator"
    timeout = 120  # idle keep-alive connections are dropped after this many seconds
    # Headers and body leave in separate writes; with Nagle on, the body waits for the client's
    # delayed ACK (40 ms per keep-alive request).
    disable_nagle_algorithm = True
    server: EmulatorServer

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > 65536:
                self.requestline, self.request_version, self.command = "", "", ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.parse_request():  # answers malformed request lines itself
                return
            self._serve()
            self.wfile.flush()
        except (OSError, _BadRequest):  # timeouts, resets, a client that went away
            self.close_connection = True

    def version_string(self) -> str:
        return self.server_version

    def handle_expect_100(self) -> bool:
        return True  # "100 Continue" is sent only once head() let the request through

    def _serve(self) -> None:
        emulator = self.server.emulator
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=unquote(url.path) or "/",
            query=parse_qs(url.query, keep_blank_values=True),
            headers=self.headers,
            client_address=self.client_address,
        )
        unread = False
        response = self._call(emulator.head, request)
        if response is None:
            try:
                request.body = self._read_body()  # OSError: the client went away; end quietly
            except _BadRequest as exc:
                response = emulator.error(400, str(exc))
                response.close = True
            else:
                response = self._call(emulator.handle, request)
        elif self._body_pending():
            unread = response.close = True  # the unread body would be taken for the next request
        self._send(response)
        if unread:
            self._discard_unread_body()

    def _call(self, hook: Callable[[Request], Response | None], request: Request) -> Response | None:
        try:
            return hook(request)
        except Exception:  # a bug in a handler: report it, answer 500, keep serving
            print(f"conformlab emulator: error handling {self.command} {self.path}:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            response = self.server.emulator.error(500)
            response.close = True
            return response

    def _discard_unread_body(self) -> None:
        """After answering from the head (e.g. 413; _send has half-closed the connection): read
        and drop what the client still sends, so that closing does not reset the connection
        before the client has read the answer (a "lingering close"). Bounded in time and size."""
        try:
            self.connection.settimeout(0.5)
            deadline, budget = time.monotonic() + 2.0, 64 << 20
            while budget > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(65536)
                if not chunk:
                    break
                budget -= len(chunk)
        except OSError:
            pass

    def _body_pending(self) -> bool:
        return (self.headers.get("Transfer-Encoding", "").lower() == "chunked"
                or self.headers.get("Content-Length", "0").strip() not in ("", "0"))

    def _read_body(self) -> bytes:
        if self.headers.get("Expect", "").lower() == "100-continue" and self.request_version != "HTTP/1.0":
            self.send_response_only(HTTPStatus.CONTINUE)
            self.end_headers()
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.strip().isdigit():
            raise _BadRequest("invalid Content-Length")
        size = int(length)
        body = self.rfile.read(size)
        if len(body) != size:
            raise ConnectionError("client closed the connection mid-body")
        return body

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            line = self.rfile.readline(65537).split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise _BadRequest("invalid chunk size") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(65537)

    def _send(self, response: Response) -> None:
        if response.close:
            self._cork(True)  # the answer and the FIN leave together (see below)
        self.send_response(response.status, response.reason or reason_phrase(response.status))
        for name, value in response.headers.items():
            self.send_header(name, value)
        no_body = response.status == 204 or response.status == 304 or response.status < 200
        if response.status != 204:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and not no_body:
            self.wfile.write(response.body)
        if response.close:
            # Half-close right after the answer, in the same thread, with the data still corked:
            # the client sees the answer and the end of the connection at once, so a client that
            # checks a pooled connection before reusing it never sends its next request into a
            # connection that is about to close. (The close itself is not announced.)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self._cork(False)

    def _cork(self, on: bool) -> None:
        if hasattr(socket, "TCP_CORK"):
            try:
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, int(on))
            except OSError:
                pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


class EmulatorServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: DeviceEmulator, verbose: bool = False) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.emulator = emulator
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() would do a reverse DNS lookup (socket.getfqdn): skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def verify_request(self, request: Any, client_address: Any) -> bool:
        # While the emulated device boots, a connection is closed without an answer.
        return not self.emulator.down

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def loopback_host(host: str) -> str:
    """The address to bind: `host` if it is on loopback (127.0.0.0/8 or ::1), else ValueError."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ValueError(f"host {host!r} is not a loopback address; emulators listen only on "
                         "127.0.0.0/8 or ::1") from None
    if not address.is_loopback:
        raise ValueError(f"host {host!r} is not a loopback address; emulators listen only on "
                         "127.0.0.0/8 or ::1")
    return str(address)


class RunningEmulator:
    """A started emulator: `.url` (origin only), `.emulator`, `.stop()`; a context manager."""

    def __init__(self, server: EmulatorServer, emulator: DeviceEmulator) -> None:
        self.server = server
        self.emulator = emulator
        host, port = server.server_address[:2]
        self.host, self.port = host, port
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                                        name=f"emulator-{emulator.NAME}-{port}", daemon=True)
        self._stopped = False
        self._thread.start()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.server.shutdown()  # returns within one poll interval
        self.server.server_close()  # no new connections
        self.server.close_connections()  # wake and end the keep-alive connections
        self.emulator.close()  # cancel the device's pending timers
        self._thread.join(timeout=2)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RunningEmulator {self.emulator.NAME} at {self.url}>"


def serve(emulator: DeviceEmulator, host: str = "127.0.0.1", port: int = 0,
          verbose: bool = False) -> RunningEmulator:
    """Serve `emulator` on loopback (port 0 = a free port). The listening socket accepts
    connections when this returns. OSError if the port is in use."""
    server = EmulatorServer((loopback_host(host), port), emulator, verbose=verbose)
    emulator.server = server
    return RunningEmulator(server, emulator)
