"""A small, generic HTTP/1.1 server for device emulators (the transport; the emulator core, in
core.py, is what a device is made of).

Every bundled emulator is a real server on loopback. This module knows nothing about any device:

- `Request` / `Response` are plain data objects.
- `serve()` runs an emulator (anything with `head(request)`, `handle(request)`, `error(status)`,
  `down`, `NAME`) on a `ThreadingHTTPServer` in a daemon thread and returns a `RunningEmulator`
  handle (`.url`, `.emulator`, `.stop()`, context manager). `head()` may answer from the request
  head before the body is read (e.g. 413 for a huge Content-Length).
- While the emulator is `down` (booting), new connections are closed unanswered.

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
import ssl
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable, Mapping
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
    body: bytes = b""  # empty while the emulator's head() runs
    client_address: tuple[str, int] = ("127.0.0.1", 0)
    # Set by the emulator core's pipeline: the route, its {name} values, the parsed body.
    route: Any = None
    params: dict[str, str] = field(default_factory=dict)
    data: Any = None

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


def is_control(path: str) -> bool:
    """Is this an emulator-only control path (/__emulator__/...)?"""
    return path.startswith(CONTROL_PREFIX) or path == CONTROL_PREFIX[:-1]


def html_escape(text: str) -> str:
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

    def __init__(self, address: tuple[str, int], emulator: Any, verbose: bool = False,
                 tls: ssl.SSLContext | None = None) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.emulator = emulator
        self.verbose = verbose
        self.tls = tls
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() would do a reverse DNS lookup (socket.getfqdn): skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        if self.tls is not None:
            # The handshake happens at the first read, in the connection's own thread: a client that
            # never finishes it holds up no one else.
            connection = self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, address

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


class TestAuthority:
    """A throwaway certificate authority (trustme) and a server certificate it issued for the loopback
    names: what an emulator serves HTTPS with. `ca_file` is the CA's certificate (PEM) for clients to
    verify the server with; it is removed by `close()`."""

    def __init__(self, host: str) -> None:
        import trustme  # only emulators that serve HTTPS need it

        self.ca = trustme.CA(organization_name="conformlab test CA")
        certificate = self.ca.issue_cert(host, "127.0.0.1", "::1", "localhost")
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(self.context)
        with tempfile.NamedTemporaryFile("wb", prefix="conformlab-ca-", suffix=".pem", delete=False) as file:
            file.write(self.ca.cert_pem.bytes())
        self.ca_file = file.name

    def close(self) -> None:
        Path(self.ca_file).unlink(missing_ok=True)


class RunningEmulator:
    """A started emulator: `.url` (origin only), `.emulator`, `.stop()`; a context manager. An
    emulator serving HTTPS has `.ca_file`, the PEM of the test CA that issued its certificate (None
    for plain HTTP)."""

    def __init__(self, server: EmulatorServer, emulator: Any, authority: TestAuthority | None = None) -> None:
        self.server = server
        self.emulator = emulator
        self.authority = authority
        self.ca_file = authority.ca_file if authority else None
        host, port = server.server_address[:2]
        self.host, self.port = host, port
        scheme = "https" if authority else "http"
        self.url = f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
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
        if self.authority:
            self.authority.close()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RunningEmulator {self.emulator.NAME} at {self.url}>"


def serve(emulator: Any, host: str = "127.0.0.1", port: int = 0,
          verbose: bool = False, tls: bool = False) -> RunningEmulator:
    """Serve `emulator` on loopback (port 0 = a free port), over HTTPS with a throwaway test CA's
    certificate if `tls`. The listening socket accepts connections when this returns. OSError if the
    port is in use."""
    address = loopback_host(host)
    authority = TestAuthority(address) if tls else None
    server = EmulatorServer((address, port), emulator, verbose=verbose, tls=authority.context if authority else None)
    emulator.server = server
    return RunningEmulator(server, emulator, authority)

