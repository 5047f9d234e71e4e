"""The one HTTP client: a requests session per target, on the bounded transport every session of
the harness uses.

Every request the harness sends (checks, restores, the login, fuzzing, load scenarios, the VPN check)
goes through a session made by `bounded_session()`, which holds three rules:

- **Deadline.** The timeout (the target's `timeout`) bounds the whole exchange, from connecting to the
  answer's last byte: a watchdog shuts the connection down when it passes, also while the device is
  still dripping its status line or headers. The request then fails with "no complete answer within
  N s" (`AnswerDeadline`, a `requests.Timeout`); connecting gets the time that is left ("cannot
  connect"). An explicit per-request timeout is that request's whole deadline.
- **Size limit.** An answer is read in chunks as it arrives, at most `MAX_ANSWER_BYTES` (16 MiB,
  far more than the largest answer of the four device documents, e.g. a WattWächter history range of
  about 43 KB); past it the connection is closed and the request fails with "answer larger than N
  bytes" (`AnswerTooLarge`). Nothing reads an answer before this bounded read (hooks, recording, the
  login's re-login after a 401 come after it).
- **No redirect is followed.** A 3xx is an answer like any other, for the check to judge; following
  it could carry credentials to another host (requests strips only `Authorization`; `apiKey`,
  `Authorized`, `X-API-KEY` and the MC252 login's salted hash would go along). A session made for a
  device also refuses, before sending, a request to any other origin ("refusing to send to another
  origin").

On top, `DeviceClient` adds the target's auth, paces itself under the device's documented rate
budget, honours `Retry-After` on 429/503 (bounded) for every request through its session (generated
ones too), opens a fresh connection after an error answer (firmware closes it without saying so),
waits out restarts, recognises a device that went away in the middle of a check, and records every
exchange (secrets masked) so a failing check can show the request, the answer and a curl line that
reproduces it. Schemathesis calls go through the same session.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json as jsonlib
import re
import shlex
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError

from conformlab import secrets

if TYPE_CHECKING:  # profiles imports auth, which imports this module
    from conformlab.profiles import RateBudget

JSON = "application/json"  # sent exactly, without parameters: firmware compares the whole header
_DEFAULT = object()  # "use the target's auth"
MAX_RETRY_AFTER = 30.0  # never wait longer than this for a device that asks us to
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # the size limit of every answer (see the module docstring)
READ_CHUNK = 64 * 1024  # bytes read (and, for a compressed answer, decoded) at a time
PROBE_TIMEOUT = 5.0  # the deadline of a "does it answer at all?" probe
CLOSED_AT_ONCE = 0.2  # a connection the device closes unasked within this is one it does not serve
TRANSCRIPT_LIMIT = 2000
BODY_PREVIEW = 600


class DeviceError(AssertionError):
    """The device could not be talked to (unreachable, hung, not HTTP). One clear line."""


class DeviceGone(DeviceError):
    """The device did not come back after a restart: nothing more is sent to it in this run."""


class DeviceWentAway(DeviceError):
    """The device stopped answering in the middle of a check (a reboot the harness did not cause)
    and answers again: the check saw an outage, not the device's behaviour."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"the device went away for {seconds:.1f} s during this check (it answers again)")


class AnswerDeadline(requests.Timeout):
    """No complete answer within the exchange's deadline."""


class AnswerTooLarge(requests.RequestException):
    """The answer is larger than the size limit; it was not read further."""


# -- the deadline of an exchange ------------------------------------------------------------------


class _Deadline:
    """One exchange's deadline and the sockets it uses; `expire()` shuts them down."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self.finished = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(self.at - time.monotonic(), 0.001)

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self.finished:
                return
            if sock not in self._sockets:
                self._sockets.append(sock)
            if self.expired:
                _cut(sock)

    def expire(self) -> None:
        # Under the lock: once finished, the connection may already serve another exchange.
        with self._lock:
            if self.finished:
                return
            self.expired = True
            for sock in self._sockets:
                _cut(sock)

    def finish(self) -> None:
        with self._lock:
            self.finished = True


def _cut(sock: socket.socket) -> None:
    """Shut a connection down under the thread reading it: its read returns at once. The plain
    socket's shutdown, also for TLS (an SSLSocket's own would drop its TLS state under the reader)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, TypeError, ValueError):
        pass  # already closed


class _Watchdog:
    """One thread per process that expires the deadlines of all exchanges, earliest first."""

    def __init__(self):
        self._wake = threading.Condition()
        self._due: list[tuple[float, int, _Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: _Deadline) -> None:
        with self._wake:
            heapq.heappush(self._due, (deadline.at, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._run, name="conformlab-deadlines", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._due and self._due[0][2].finished:
                    heapq.heappop(self._due)
                if not self._due:
                    self._wake.wait()
                    continue
                left = self._due[0][0] - time.monotonic()
                if left > 0:
                    self._wake.wait(left)
                    continue
                heapq.heappop(self._due)[2].expire()


_WATCHDOG = _Watchdog()
_exchange = threading.local()  # .deadline: the deadline of the exchange this thread is sending


@contextlib.contextmanager
def deadline_for(sock: socket.socket, seconds: float):
    """The deadline of an exchange made without requests (a check on a raw http.client connection):
    the socket is shut down when `seconds` have passed; the yielded deadline says if it expired."""
    deadline = _Deadline(seconds)
    _WATCHDOG.arm(deadline)
    deadline.watch(sock)
    try:
        yield deadline
    finally:
        deadline.finish()


class _WatchedConnection:
    """A urllib3 connection that puts its socket under the deadline of the exchange using it, when
    it connects and when it is reused. (Connecting itself is bounded by the socket timeout, which is
    the time left: CPython bounds a TLS handshake as a whole by it, too.)"""

    def connect(self):
        super().connect()
        _watch(self.sock)

    def request(self, *args, **kwargs):
        _watch(self.sock)
        return super().request(*args, **kwargs)


def _watch(sock) -> None:
    deadline = getattr(_exchange, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _HTTPConnection(_WatchedConnection, HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


def _seconds(timeout, default: float) -> float:
    """The whole deadline of a request's `timeout`: a number, or requests' (connect, read) pair summed."""
    if timeout is None:
        return default
    if isinstance(timeout, tuple):
        parts = [part for part in timeout if part is not None]
        return float(sum(parts)) if parts else default
    return float(timeout)


class BoundedAdapter(HTTPAdapter):
    """Every exchange within its deadline and every answer within the size limit, read here (in
    chunks, as it arrives) before any hook or caller sees it; a fresh connection after an error answer.

    `timeout` is the deadline of a request that names none; `source_address` a local address to send
    from. The answer is always read whole (up to the limit): `stream=True` gives the same answer."""

    def __init__(self, timeout: float, *, max_answer_bytes: int = MAX_ANSWER_BYTES, source_address: str | None = None,
                 **kwargs):
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        self.source_address = source_address
        super().__init__(max_retries=0, **kwargs)

    def init_poolmanager(self, *args, **kwargs):
        if self.source_address:
            kwargs["source_address"] = (self.source_address, 0)
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        deadline = _Deadline(_seconds(timeout, self.timeout))
        outer = getattr(_exchange, "deadline", None)  # a re-login sends from inside another exchange
        _exchange.deadline = deadline
        _WATCHDOG.arm(deadline)
        response, failure = None, None
        try:
            response = super().send(request, stream=True, timeout=deadline.remaining(), verify=verify, cert=cert,
                                    proxies=proxies)
            self._read_answer(response)
        except Exception as exc:  # noqa: BLE001 -- what a cut connection raises varies; judged below
            failure = exc
        finally:
            deadline.finish()
            _exchange.deadline = outer
        if isinstance(failure, requests.ConnectTimeout):
            raise failure  # never connected: the caller says "cannot connect"
        if deadline.expired or isinstance(failure, requests.ReadTimeout):
            if response is not None:
                response.close()
            self.poolmanager.clear()
            raise AnswerDeadline(f"no complete answer within {deadline.seconds:g} s", request=request) from failure
        if failure is not None:
            raise failure
        if response.status_code >= 400:
            # Real firmware closes the connection after an error without announcing it.
            self.poolmanager.clear()
        return response

    def _read_answer(self, response: requests.Response) -> None:
        limit = self.max_answer_bytes
        too_large = AnswerTooLarge(f"answer larger than {limit} bytes", request=response.request, response=response)
        declared = response.headers.get("Content-Length", "").strip()
        bodiless = response.request.method == "HEAD" or response.status_code in (204, 304)  # its length is a GET's
        if declared.isdigit() and int(declared) > limit and not bodiless:
            response.close()
            raise too_large
        chunks, size = [], 0
        try:
            for chunk in response.raw.stream(READ_CHUNK, decode_content=True):
                size += len(chunk)
                if size > limit:
                    response.close()  # drops the connection: the rest is never read
                    raise too_large
                chunks.append(chunk)
        except requests.RequestException:
            raise  # too large (an OSError too, for requests)
        except ReadTimeoutError as exc:
            raise requests.ReadTimeout(exc, request=response.request) from exc
        except SSLError as exc:
            raise requests.exceptions.SSLError(exc, request=response.request) from exc
        except DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(exc, request=response.request) from exc
        except (ProtocolError, OSError) as exc:
            cause = exc.args[-1] if isinstance(exc, ProtocolError) and exc.args else exc  # (text, the error)
            raise requests.ConnectionError(f"the answer broke off in the middle of its body: {cause}",
                                           request=response.request) from exc
        response._content = b"".join(chunks)
        response._content_consumed = True


def origin_of(url: str) -> str:
    """scheme://host:port of a URL, lowercased, with the scheme's default port written out."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


class _BoundedSession(requests.Session):
    """A requests session that follows no redirect and, when it belongs to a device, sends nothing
    to another origin (checked before the auth strategy runs: a login strategy logs in wherever the
    request goes)."""

    def __init__(self, origin: str | None):
        super().__init__()
        self.origin = origin_of(origin) if origin else None

    def refuse_other_origin(self, method: str, url: str) -> None:
        if self.origin is not None and origin_of(url) != self.origin:
            raise DeviceError(secrets.mask(f"refusing to send to another origin: {method} {url} "
                                           f"(this session talks to {self.origin} only)"))

    def prepare_request(self, request):
        self.refuse_other_origin(request.method, request.url)
        return super().prepare_request(request)

    def send(self, request, **kwargs):
        self.refuse_other_origin(request.method, request.url)
        return super().send(request, **kwargs)

    def resolve_redirects(self, *args, **kwargs):
        # The one place where requests follows redirects: whatever `allow_redirects` a caller passes
        # (schemathesis passes its own), a 3xx comes back as the answer.
        return iter(())


def bounded_session(timeout: float, *, max_answer_bytes: int = MAX_ANSWER_BYTES, origin: str | None = None,
                    source_address: str | None = None, pool_maxsize: int = 4) -> requests.Session:
    """A session on the bounded transport: each request's whole exchange within `timeout` seconds
    (unless the request names its own), each answer at most `max_answer_bytes`, no redirect
    followed, no proxy from the environment, and with `origin`, nothing sent anywhere else."""
    session = _BoundedSession(origin)
    adapter = BoundedAdapter(timeout, max_answer_bytes=max_answer_bytes, source_address=source_address,
                             pool_connections=1, pool_maxsize=pool_maxsize)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False  # a lab proxy setting must not reroute traffic to the device
    return session


# -- the device client ---------------------------------------------------------------------------

# Told of every wait of this process's clients, for the run's progress (conformlab.plugin.progress):
# on_wait(seconds, why) when a request is held back (the pacer, a Retry-After; a restart or outage: its
# longest), on_wait(0, "") when it goes on. It must not raise.
on_wait: Callable[[float, str], None] | None = None


def _wait(seconds: float, why: str) -> None:
    """time.sleep(seconds), told to `on_wait`."""
    told = on_wait
    if told is not None:
        told(seconds, why)
    try:
        time.sleep(seconds)
    finally:
        if told is not None:
            told(0.0, "")


class Pacer:
    """Keeps requests under a sliding-window budget (requests per seconds), shared by the session.

    A request's place in the window is the moment its answer came back: the device counted it at
    some moment before that, so a window measured from there never holds more than the device's
    (a request measured from when it was sent could reach the device late and crowd the window)."""

    def __init__(self, budget: RateBudget, margin: int = 1):
        self.limit = max(1, budget.requests - margin)
        self.window = budget.seconds
        self.why = f"rate budget {budget.requests} requests per {budget.seconds:g} s"  # its waits, told to on_wait
        self.sent: deque[list[float]] = deque()  # [moment] per request in the window, oldest first
        self.lock = threading.Lock()
        self.waited = 0.0

    def wait(self) -> list[float]:
        """Wait for room in the window; returns the request's slot, to hand to `answered()`."""
        with self.lock:
            while True:
                now = time.monotonic()
                while self.sent and now - self.sent[0][0] >= self.window:
                    self.sent.popleft()
                if len(self.sent) < self.limit:
                    slot = [now]
                    self.sent.append(slot)
                    return slot
                pause = self.window - (now - self.sent[0][0]) + 0.01
                self.waited += pause
                _wait(pause, self.why)

    def answered(self, slot: list[float]) -> None:
        slot[0] = time.monotonic()

    def room(self) -> bool:
        """Would a request go out now, without waiting? (No: while another thread waits for room.)"""
        if not self.lock.acquire(blocking=False):
            return False
        try:
            now = time.monotonic()
            return sum(now - slot[0] < self.window for slot in self.sent) < self.limit
        finally:
            self.lock.release()

    def refill(self, last_request_at: float | None = None) -> None:
        """Wait until the whole budget is available again: one window after our own last request,
        or after `last_request_at` (epoch seconds) when another client, such as a load scenario,
        spent the device's budget."""
        with self.lock:
            pause = 0.0
            if self.sent:
                pause = self.window - (time.monotonic() - max(slot[0] for slot in self.sent))
            if last_request_at is not None:
                pause = max(pause, self.window - (time.time() - last_request_at))
            if pause > 0:
                pause += 0.1  # the device's clock starts the window when the request arrives
                self.waited += pause
                _wait(pause, f"{self.why}, refilling")
            self.sent.clear()


@dataclass
class Exchange:
    response: requests.Response | None
    method: str
    url: str
    note: str = ""  # e.g. "waited 10 s (Retry-After)" or the error of a failed request
    started: float = field(default_factory=time.time)
    seq: int = 0


def _preview(body) -> str:
    if body is None or body == b"" or body == "":
        return ""
    if isinstance(body, bytes):
        if len(body) > BODY_PREVIEW:
            return f"<{len(body)} bytes> " + body[:BODY_PREVIEW].decode("utf-8", "replace") + " ..."
        return body.decode("utf-8", "replace")
    text = str(body)
    return text if len(text) <= BODY_PREVIEW else f"<{len(text)} chars> {text[:BODY_PREVIEW]} ..."


def _masked_headers(headers) -> dict[str, str]:
    shown = {}
    for name, value in headers.items():
        if name.lower() in ("authorization", "authorized", "apikey", "x-api-key", "cookie"):
            value = value.split(" ", 1)[0] + " " + secrets.MASK if " " in value else secrets.MASK
        shown[name] = secrets.mask(value)
    return shown


def render_exchange(ex: Exchange) -> str:
    lines = [f"> {ex.method} {secrets.mask(ex.url)}"]
    r = ex.response
    if r is not None:
        for k, v in _masked_headers(r.request.headers).items():
            if k.lower() not in ("user-agent", "accept-encoding", "accept", "connection"):
                lines.append(f"> {k}: {v}")
        body = _preview(r.request.body)
        if body:
            lines.append("> " + secrets.mask(body))
        lines.append(f"< {r.status_code} {r.reason} ({r.elapsed.total_seconds() * 1000:.0f} ms)")
        for k, v in _masked_headers(r.headers).items():
            lines.append(f"< {k}: {v}")
        body = _preview(r.content if not r.raw or r._content_consumed else b"")
        if body:
            lines.append("< " + secrets.mask(body))
    if ex.note:
        lines.append(f"! {secrets.mask(ex.note)}")
    return "\n".join(lines)


def curl_line(ex: Exchange) -> str:
    """A curl command that repeats the request; credentials are left as placeholders."""
    if ex.response is None:
        return f"curl -X {ex.method} {shlex.quote(secrets.mask(ex.url))}"
    req = ex.response.request
    parts = ["curl", "-i", "-X", req.method, shlex.quote(secrets.mask(req.url))]
    for name, value in _masked_headers(req.headers).items():
        if name.lower() in ("user-agent", "accept-encoding", "accept", "connection", "content-length"):
            continue
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    body = req.body
    if body:
        if isinstance(body, bytes) and len(body) > BODY_PREVIEW:
            parts += ["--data-binary", f"@body-{len(body)}-bytes.bin"]
        else:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
            parts += ["--data-binary", shlex.quote(secrets.mask(text))]
    return " ".join(parts)


class DeviceClient:
    """Talks to one target's documented API (origin + profile prefix)."""

    def __init__(self, origin: str, prefix: str, *, auth: AuthBase | None = None, timeout: float = 10.0,
                 rate_budget: RateBudget | None = None, name: str = "", probe_path: str = "/",
                 restart_timeout: float = 120.0, max_answer_bytes: int = MAX_ANSWER_BYTES, verify: bool | str = True):
        self.origin = origin.rstrip("/")
        # TLS is always verified: against the system's CAs, or a private CA's PEM file (a lab's, or an
        # emulator's throwaway test CA).
        self.verify = verify
        self.prefix = prefix
        self.base_url = self.origin + prefix  # what schemathesis calls base_url
        self.auth = auth
        self.timeout = timeout
        if isinstance(getattr(auth, "timeout", None), (int, float)):
            auth.timeout = timeout  # a login strategy's own exchanges (MC252 salt and login) get the target's
        self.max_answer_bytes = max_answer_bytes
        self.name = name
        self.pacer = Pacer(rate_budget) if rate_budget else None
        self.transcript: deque[Exchange] = deque(maxlen=TRANSCRIPT_LIMIT)
        self.sent = 0  # requests to the documented API
        self._seq = 0
        # Restarts: which requests restart the device (the schema's `restarts`, set by the device
        # under test), where to see that it answers, how long it may take to come back.
        self.restarting: Callable[[str, str], object | None] = lambda method, path: None
        self.probe_path = probe_path
        self.restart_timeout = restart_timeout
        self.gone: str | None = None  # why nothing more is sent to this device
        self.answered = False  # has the device answered in this run (one that never did cannot go away)
        self._polling = False
        self._thread = threading.local()  # .no_retry: this thread's requests return a 429/503 as it is
        self.session = self._new_session()

    def _new_session(self) -> requests.Session:
        s = bounded_session(self.timeout, max_answer_bytes=self.max_answer_bytes, origin=self.origin)
        s.headers["User-Agent"] = "conformlab"
        s.verify = self.verify
        s.auth = self.auth
        s.hooks["response"].append(self._record)
        original = s.send

        def counted_send(request, **kwargs):
            # Only the documented API counts: the budget is the device's ("API requests"), and an
            # emulator's /__emulator__/ controls are not part of it.
            path = urlsplit(request.url).path
            if not path.startswith(self.prefix):
                return original(request, **kwargs)
            if self.gone:
                raise DeviceGone(secrets.mask(f"{self.name or 'device'}: {self.gone}; nothing more is sent to it"))
            for attempt in range(3):
                response = self._paced(original, request, kwargs)
                delay = _retry_after(response) if response.status_code in (429, 503) else None
                if delay is None or attempt == 2 or not self._honours_retry_after():
                    break
                self.note(request.method, request.url, f"{response.status_code}: waited {delay:g} s (Retry-After) and retried")
                asked = response.headers["Retry-After"].strip()[:16]  # a number (_retry_after read it); bounded
                _wait(delay, f"the device answered {response.status_code} with Retry-After: {asked}")
                if self.pacer:
                    self.pacer.refill()
            if response.status_code < 300 and not self._polling:
                op = self.restarting(request.method, path[len(self.prefix):])
                if op is not None:
                    self._await_restart(f"{request.method} {path}", op.restart_within)
            return response

        s.send = counted_send
        return s

    def _paced(self, send, request, kwargs) -> requests.Response:
        """Send one request of the documented API within the rate budget; a connection-level failure
        of a device that had answered may be an outage (`_went_away`)."""
        self.sent += 1
        slot = self.pacer.wait() if self.pacer else None
        try:
            response = send(request, **kwargs)
        except (requests.ConnectionError, requests.Timeout):
            if self.answered and not self._polling:
                self._went_away(f"{request.method} {urlsplit(request.url).path}")
            raise
        finally:
            if slot is not None:
                self.pacer.answered(slot)
        self.answered = True
        return response

    @contextlib.contextmanager
    def without_retry(self):
        """Requests inside (from this thread) get a 429 or 503 back as it came, without honouring
        its Retry-After: for checks of those answers."""
        before = getattr(self._thread, "no_retry", False)
        self._thread.no_retry = True
        try:
            yield
        finally:
            self._thread.no_retry = before

    def _honours_retry_after(self) -> bool:
        return not self._polling and not getattr(self._thread, "no_retry", False)

    def _answers(self) -> bool:
        """Does the device answer HTTP at all (any status) right now?"""
        try:
            self.session.get(self.url(self.probe_path), timeout=min(self.timeout, PROBE_TIMEOUT)).close()
            return True
        except requests.RequestException:
            return False

    def _accepts(self) -> bool:
        """Does the device accept a TCP connection and keep it open? Nothing is sent on it: no API
        request, nothing of a rate budget spent. A restarting device refuses the connection, lets it
        time out (off the network), or closes it at once unanswered (as the emulators do while booting)."""
        parts = urlsplit(self.origin)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname, port), timeout=min(self.timeout, PROBE_TIMEOUT)) as sock:
                sock.settimeout(CLOSED_AT_ONCE)
                try:
                    return sock.recv(1, socket.MSG_PEEK) != b""  # b"": closed at once, unanswered
                except TimeoutError:
                    return True  # kept open, waiting for a request: it serves
        except OSError:
            return False

    def _poll(self, *, wait_for_budget: bool) -> bool:
        """One poll of a restart or outage wait: does the device answer? Without a rate budget, the
        probe as ever. With one, every probe the device answers costs budget, and a probe that waits
        for room in the window cannot see an outage that is over before it goes out (the request
        that restarts the device may take the window's last place: no request for up to a window,
        10 s on the WattWächter, which is down for a few seconds). So a poll first asks without a
        request (`_accepts`): refused or closed unanswered is down, and costs nothing. Then the
        probe, to hear the device answer HTTP: while waiting for it to go down, only if the window
        has room now (else it counts as still up until the next poll: it has not been seen down);
        while waiting for it to come back, behind the pacer like any request (the next check would
        wait for that room anyway)."""
        if self.pacer is None:
            return self._answers()
        if not self._accepts():
            return False
        if not wait_for_budget and not self.pacer.room():
            return True
        return self._answers()

    def _await_restart(self, what: str, within: float) -> None:
        """After an answer that restarts the device: wait until it has gone down (within `within`
        seconds; none seen means it did not restart) and answers again (within restart_timeout).
        A device that never comes back ends the run's talk with it (DeviceGone)."""
        start = time.monotonic()
        self._polling = True
        try:
            while self._poll(wait_for_budget=False):
                if time.monotonic() - start >= within:
                    self.note("GET", self.url(self.probe_path), f"after {what}: the device kept answering for {within:g} s: no restart seen")
                    return
                time.sleep(0.25)
            down = time.monotonic() - start
            self._wait_until_back(start, f"the device did not come back within {self.restart_timeout:g} s of {what}, "
                                         "which restarts it (restart_timeout)", f"{what} restarts it")
            self.note("GET", self.url(self.probe_path), f"after {what}: the device restarted (down {down:.1f} s after the "
                                                         f"answer, answering again after {time.monotonic() - start:.1f} s)")
        finally:
            self._polling = False

    def _went_away(self, what: str) -> None:
        """`what` failed at the connection level (refused, reset, closed, no answer in time). If the
        device does not answer the probe now either, it went away (a reboot the harness did not cause):
        wait until it is back, note it, and fail the check with DeviceWentAway (never retried here).
        Returns when the probe answers at once: then the request's own failure stands."""
        start = time.monotonic()
        self._polling = True
        try:
            if self._poll(wait_for_budget=True):
                return
            self._wait_until_back(start, f"the device went away during {what} and did not come back within "
                                         f"{self.restart_timeout:g} s (restart_timeout)", f"it went away during {what}")
        finally:
            self._polling = False
        seconds = time.monotonic() - start
        self.note("GET", self.url(self.probe_path), f"the device went away for {seconds:.1f} s (not a restart the harness asked for)")
        raise DeviceWentAway(seconds) from None

    def _wait_until_back(self, start: float, gone: str, why: str) -> None:
        """Poll the probe until the device answers; not within restart_timeout of `start`, it is gone:
        `gone` says why, and nothing more is sent to it. The wait is told to `on_wait` (its longest)."""
        told = on_wait
        if told is not None:
            told(max(self.restart_timeout - (time.monotonic() - start), 0.0), f"at most, until the device answers again ({why})")
        try:
            while not self._poll(wait_for_budget=True):
                if time.monotonic() - start >= self.restart_timeout:
                    self.gone = gone
                    self.note("GET", self.url(self.probe_path), gone)
                    raise DeviceGone(secrets.mask(f"{self.name or 'device'}: {gone}")) from None
                time.sleep(0.5)
        finally:
            if told is not None:
                told(0.0, "")

    def _record(self, response, *args, **kwargs):
        # The answer is already read, within the size limit (BoundedAdapter), before any hook runs.
        # Whatever the Content-Type says: a faulty device may leak a password under text/plain.
        content = response.content
        if len(content) < 1_000_000 and content.lstrip()[:1] in (b"{", b"["):
            try:
                secrets.register_fields(jsonlib.loads(content))
            except ValueError:
                pass
        if not self._polling:  # the polls of a restart wait are summed up in one note
            self._append(Exchange(response, response.request.method, response.request.url))
        return response

    # -- addresses ----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """The full URL of a documented path (relative to the prefix) or an absolute path."""
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + path

    # -- requests -----------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json=_DEFAULT, body=None, content_type=None, multipart=None,
                headers=None, params=None, auth=_DEFAULT, retry: bool = True, timeout=None) -> requests.Response:
        """Send one request.

        `json=` sends a JSON value (also bare scalars, also None as `null`) with the exact
        `Content-Type: application/json`. `body=` sends raw bytes/str with `content_type` if given.
        `multipart=` sends multipart/form-data: {name: "text field" or (filename, bytes)}.
        `auth=None` sends no credentials; another AuthBase replaces the target's.
        `retry=False` returns a 429/503 as it is (for checks of those answers; `without_retry()`
        does the same for requests sent otherwise, e.g. generated ones).
        """
        headers = dict(headers or {})
        if json is not _DEFAULT:
            body = jsonlib.dumps(json).encode()
            headers.setdefault("Content-Type", JSON)
        elif content_type is not None:
            headers["Content-Type"] = content_type
        url = self.url(path)
        kwargs = dict(data=body, headers=headers, params=params, timeout=timeout or self.timeout, allow_redirects=False)
        if multipart is not None:  # text fields as (None, value): requests makes them form-data parts
            kwargs["files"] = {name: (None, value) if isinstance(value, str) else value for name, value in multipart.items()}
        if auth is not _DEFAULT:
            kwargs["auth"] = auth if auth is not None else _NoAuth()
        with self.without_retry() if not retry else contextlib.nullcontext():
            return self._send(method, url, kwargs)

    def _send(self, method, url, kwargs) -> requests.Response:
        try:
            return self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            note = _problem(exc, kwargs["timeout"])
        self.note(method, url, note)
        raise DeviceError(secrets.mask(f"{self.name or 'device'}: {method} {url}: {note}"))

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=_DEFAULT, **kw):
        return self.request("POST", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def get_json(self, path: str, **kw):
        """GET a documented JSON answer; fails the check if it is not 200 JSON."""
        response = self.get(path, **kw)
        return expect_json(response)

    def note(self, method: str, url: str, text: str) -> None:
        self._append(Exchange(None, method, url, note=text))

    def _append(self, exchange: Exchange) -> None:
        self._seq += 1
        exchange.seq = self._seq
        self.transcript.append(exchange)

    def mark(self) -> int:
        """A position in the transcript; `since(mark)` returns what happened after it."""
        return self._seq

    def since(self, mark: int) -> list[Exchange]:
        return [ex for ex in self.transcript if ex.seq > mark]

    def close(self):
        self.session.close()


class _NoAuth(AuthBase):
    """Sends no credentials even though the session has some."""

    def __call__(self, request):
        request.headers.pop("Authorization", None)
        return request


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    try:
        delay = float(value)
    except ValueError:
        return None
    return min(max(delay, 0.0), MAX_RETRY_AFTER)


def _problem(exc: requests.RequestException, timeout) -> str:
    """The one line that says why a request got no usable answer."""
    if isinstance(exc, (AnswerDeadline, AnswerTooLarge)):
        return str(exc)
    if isinstance(exc, requests.ConnectTimeout):
        return f"cannot connect (is the device on and reachable?): nothing within {_seconds(timeout, 0):g} s"
    if isinstance(exc, requests.exceptions.SSLError):
        cause = re.search(r"certificate verify failed: [^'\")(]*|\[SSL[^\]]*\][^'\")(]*", str(exc))
        return (f"its TLS certificate cannot be verified ({cause.group(0).strip() if cause else str(exc)[:160]}): TLS is "
                "always verified; name a private CA's PEM file with ca_bundle in the target")
    if isinstance(exc, requests.ConnectionError):
        return _connection_problem(exc)
    return f"request failed: {type(exc).__name__}: {exc}"


def _connection_problem(exc: Exception) -> str:
    text = str(exc)
    if "BadStatusLine" in text or "RemoteDisconnected" in text and "without response" in text:
        return f"the device answered something that is not HTTP, or closed the connection without answering ({text[:200]})"
    if "Connection refused" in text or "Failed to establish" in text or "Max retries" in text:
        cause = re.search(r"\[Errno -?\d+\][^'\")]*", text)  # e.g. "[Errno 111] Connection refused", not urllib3's wrapping
        return f"cannot connect (is the device on and reachable?): {cause.group(0).strip() if cause else text[:200]}"
    return f"connection failed: {text[:200]}"


def expect_json(response: requests.Response):
    """The answer's JSON, or a failure that shows what came instead."""
    ctype = response.headers.get("Content-Type", "")
    assert response.status_code == 200, (
        f"{response.request.method} {response.url}: expected 200, got {response.status_code}: {secrets.mask(_preview(response.content))[:200]}")
    assert ctype.split(";")[0].strip() == JSON, (
        f"{response.request.method} {response.url}: expected Content-Type application/json, got {ctype!r}")
    try:
        return response.json()
    except ValueError:
        raise AssertionError(f"{response.request.method} {response.url}: body is not JSON: {secrets.mask(_preview(response.content))[:200]}") from None
