"""A hostile device on loopback (standard library only): it plays what a lab meets in firmware under
test, half-booted boards and clouds behind proxies, for the tests of a harness that must survive it.

    with HostileServer("drip", part="headers") as server:
        ...  # server.url, server.port, server.requests: what reached it, as Received
             # (method, path, headers as (name, value) pairs in order, body bytes; .text() all of it)

One behaviour per server; `paths={"/api/login/": "redirect"}` gives some paths (exact, without the
query) another one. The behaviours:

    ok        200 JSON `json=` (default {"ok": true})
    echo      200 JSON of the request as it arrived: {"method", "path", "headers": {name: value}, "body": text}
              (a name sent twice: its values joined with ", ")
    drip      a complete 200 JSON answer, one byte every `interval` s (default 0.5): `part="headers"`
              drips the status line and headers (about 300 bytes), `part="body"` (default) sends them
              at once and drips the body (about 200 bytes)
    endless   200 whose body never ends, as fast as the client reads: `framing="chunked"` (default) or
              "close" (no length: the body lasts until the connection closes)
    huge      200 with Content-Length `size` (default 64 MiB), and that many bytes
    redirect  `status` (default 307) with Location http://127.0.0.2:<port><the same path and query>,
              where `server.recorder` (a Recorder, or the one passed as `recorder=`) records what
              reaches it
    reset     200 with Content-Length 2000, 1000 bytes of it, then a TCP reset
    hang      reads the request and never answers
    garbage   bytes that are not HTTP, then closes

`tls=(certfile, keyfile)` serves HTTPS instead (the handshake in the connection's own thread).
`Recorder()` is the second listener: HostileServer("ok") on 127.0.0.2, recording every request that
reaches it (headers included) and answering as a device would ({"salt": ..., "token": ..., "ok": true}).
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BEHAVIOURS = ("ok", "echo", "drip", "endless", "huge", "redirect", "reset", "hang", "garbage")
MAX_REQUEST_BODY = 1024 * 1024  # what the server reads of a request's body
FLOOD_CHUNK = b"x" * 65536
PADDING = "p" * 200  # makes a dripped part last long enough that only a deadline ends it


@dataclass
class Received:
    """One request as it reached a server."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def text(self) -> str:
        """All of it as text, to look for a secret in."""
        lines = [f"{self.method} {self.path}", *(f"{name}: {value}" for name, value in self.headers)]
        return "\n".join(lines) + "\n\n" + self.body.decode("utf-8", "replace")


class HostileServer:
    def __init__(self, behaviour: str, *, host: str = "127.0.0.1", paths: dict[str, str] | None = None,
                 tls: tuple[str, str] | None = None, recorder: HostileServer | None = None, **options):
        for name in (behaviour, *(paths or {}).values()):
            if name not in BEHAVIOURS:
                raise ValueError(f"unknown behaviour {name!r}; one of {', '.join(BEHAVIOURS)}")
        self.behaviour = behaviour
        self.paths = dict(paths or {})
        self.options = options
        self.requests: list[Received] = []
        self.stopping = threading.Event()
        self._own_recorder = None
        if recorder is None and "redirect" in (behaviour, *self.paths.values()):
            recorder = self._own_recorder = Recorder()
        self.recorder = recorder
        self._tls = None
        if tls is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*tls)
        self._server = _Server((host, 0), _Handler, self)
        self.host = host
        self.port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def behaviour_for(self, path: str) -> str:
        return self.paths.get(path.split("?", 1)[0], self.behaviour)

    def close(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._own_recorder is not None:
            self._own_recorder.close()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Recorder(HostileServer):
    """The other origin: a listener on 127.0.0.2 that records every request reaching it."""

    def __init__(self):
        super().__init__("ok", host="127.0.0.2", json={"ok": True, "salt": "recorder-salt", "token": "recorder-token"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, hostile: HostileServer):
        self.hostile = hostile
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        if self.hostile._tls is not None:  # in the connection's thread: a stalled handshake stalls only it
            try:
                request = self.hostile._tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
        self.RequestHandlerClass(request, client_address, self)

    def handle_error(self, request, client_address):
        pass  # a client that goes away mid-answer is what these behaviours provoke


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def __getattr__(self, name):
        if name.startswith("do_"):  # every method, also the ones a fuzzer makes up
            return self._serve
        raise AttributeError(name)

    def log_message(self, *args):
        pass

    # -- one request ------------------------------------------------------------------------------

    def _serve(self):
        hostile = self.server.hostile
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, MAX_REQUEST_BODY)) if length else b""
        hostile.requests.append(Received(self.command, self.path, list(self.headers.items()), body))
        behaviour = hostile.behaviour_for(self.path)
        try:
            getattr(self, f"_{behaviour}")(hostile.options, body)
        except OSError:
            self.close_connection = True  # the client went away: what a hostile answer provokes

    def _head(self, status: int, headers: dict[str, str]) -> bytes:
        reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}", *(f"{name}: {value}" for name, value in headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.wfile.write(self._head(status, {"Content-Type": "application/json", "Content-Length": str(len(body)),
                                             **(headers or {})}) + body)

    def _ok(self, options, body):
        self._answer(200, json.dumps(options.get("json", {"ok": True})).encode())

    def _echo(self, options, body):
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self._answer(200, json.dumps({"method": self.command, "path": self.path, "headers": headers,
                                      "body": body.decode("utf-8", "replace")}).encode())

    def _drip(self, options, body):
        interval = float(options.get("interval", 0.5))
        content = json.dumps({"dripping": PADDING}).encode()
        head = self._head(200, {"Content-Type": "application/json", "Content-Length": str(len(content)),
                                "X-Padding": PADDING})
        slow, fast = (head, content) if options.get("part", "body") == "headers" else (content, head)
        if slow is content:
            self.wfile.write(fast)
        for i in range(len(slow)):
            self.wfile.write(slow[i:i + 1])
            if self.server.hostile.stopping.wait(interval):
                return
        if slow is head:
            self.wfile.write(fast)

    def _endless(self, options, body):
        chunked = options.get("framing", "chunked") == "chunked"
        self.close_connection = True
        self.wfile.write(self._head(200, {"Content-Type": "application/json",
                                          **({"Transfer-Encoding": "chunked"} if chunked else {"Connection": "close"})}))
        piece = b"%x\r\n%s\r\n" % (len(FLOOD_CHUNK), FLOOD_CHUNK) if chunked else FLOOD_CHUNK
        self.wfile.write(b"[" if not chunked else b"1\r\n[\r\n")
        while not self.server.hostile.stopping.is_set():
            self.wfile.write(piece)

    def _huge(self, options, body):
        size = int(options.get("size", 64 * 1024 * 1024))
        self.close_connection = True
        self.wfile.write(self._head(200, {"Content-Type": "application/octet-stream", "Content-Length": str(size)}))
        sent = 0
        while sent < size and not self.server.hostile.stopping.is_set():
            piece = FLOOD_CHUNK[:size - sent]
            self.wfile.write(piece)
            sent += len(piece)

    def _redirect(self, options, body):
        location = f"http://127.0.0.2:{self.server.hostile.recorder.port}{self.path}"
        self._answer(int(options.get("status", 307)), b"", {"Location": location})

    def _reset(self, options, body):
        self.wfile.write(self._head(200, {"Content-Type": "application/json", "Content-Length": "2000"}) + b"[" + b"0" * 999)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        self.connection.close()
        self.close_connection = True

    def _hang(self, options, body):
        self.close_connection = True
        while not self.server.hostile.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.1)
            if readable and not self.connection.recv(65536):
                return  # the client gave up

    def _garbage(self, options, body):
        self.wfile.write(b"\x00\x17\xfe garbage from a confused device\r\n\r\n")
        self.close_connection = True
