"""The one HTTP client: a requests session per target.

It adds the target's auth and timeout, paces itself under the device's documented rate budget,
honours `Retry-After` on 429/503 (bounded), copes with firmware that closes the connection after an
error answer, and records every exchange (secrets masked) so a failing check can show the request,
the answer and a curl line that reproduces it. Schemathesis calls go through the same session.
"""

from __future__ import annotations

import json as jsonlib
import shlex
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from conformlab import secrets
from conformlab.profiles import RateBudget

JSON = "application/json"  # sent exactly, without parameters: firmware compares the whole header
_DEFAULT = object()  # "use the target's auth"
MAX_RETRY_AFTER = 30.0  # never wait longer than this for a device that asks us to
TRANSCRIPT_LIMIT = 2000
BODY_PREVIEW = 600


class DeviceError(AssertionError):
    """The device could not be talked to (unreachable, hung, not HTTP). One clear line."""


class DeviceGone(DeviceError):
    """The device did not come back after a restart: nothing more is sent to it in this run."""


class CloseAfterErrorAdapter(HTTPAdapter):
    """Opens a fresh connection after every error answer.

    Real firmware closes the connection after an error without announcing it; reusing the pooled
    connection would then fail the next request. Reading the answer and dropping idle connections
    keeps every request after an error on a new connection.
    """

    def send(self, request, stream=False, **kwargs):
        response = super().send(request, stream=stream, **kwargs)
        if response.status_code >= 400 and not stream:
            response.content  # read it all, so the connection is released before we drop it
            self.poolmanager.clear()
        return response


class Pacer:
    """Keeps requests under a sliding-window budget (requests per seconds), shared by the session.

    A request's place in the window is the moment its answer came back: the device counted it at
    some moment before that, so a window measured from there never holds more than the device's
    (a request measured from when it was sent could reach the device late and crowd the window)."""

    def __init__(self, budget: RateBudget, margin: int = 1):
        self.limit = max(1, budget.requests - margin)
        self.window = budget.seconds
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
                time.sleep(pause)

    def answered(self, slot: list[float]) -> None:
        slot[0] = time.monotonic()

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
                time.sleep(pause)
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
                 restart_timeout: float = 120.0):
        self.origin = origin.rstrip("/")
        self.prefix = prefix
        self.base_url = self.origin + prefix  # what schemathesis calls base_url
        self.auth = auth
        self.timeout = timeout
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
        self._polling = False
        self.session = self._new_session()

    def _new_session(self) -> requests.Session:
        s = requests.Session()
        adapter = CloseAfterErrorAdapter(pool_connections=1, pool_maxsize=4, max_retries=0)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        s.headers["User-Agent"] = "conformlab"
        s.auth = self.auth
        s.trust_env = False  # a lab proxy setting must not reroute traffic to the device
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
            self.sent += 1
            slot = self.pacer.wait() if self.pacer else None
            try:
                response = original(request, **kwargs)
            finally:
                if slot is not None:
                    self.pacer.answered(slot)
            if response.status_code < 300 and not self._polling:
                op = self.restarting(request.method, path[len(self.prefix):])
                if op is not None:
                    self._await_restart(f"{request.method} {path}", op.restart_within)
            return response

        s.send = counted_send
        return s

    def _answers(self) -> bool:
        """Does the device answer HTTP at all (any status) right now?"""
        try:
            self.session.get(self.url(self.probe_path), timeout=(min(self.timeout, 2.0), min(self.timeout, 3.0)),
                             allow_redirects=False).close()
            return True
        except requests.RequestException:
            return False

    def _await_restart(self, what: str, within: float) -> None:
        """After an answer that restarts the device: wait until it has gone down (within `within`
        seconds; none seen means it did not restart) and answers again (within restart_timeout).
        A device that never comes back ends the run's talk with it (DeviceGone)."""
        start = time.monotonic()
        self._polling = True
        try:
            while self._answers():
                if time.monotonic() - start >= within:
                    self.note("GET", self.url(self.probe_path), f"after {what}: the device kept answering for {within:g} s: no restart seen")
                    return
                time.sleep(0.25)
            down = time.monotonic() - start
            while not self._answers():
                if time.monotonic() - start >= self.restart_timeout:
                    self.gone = f"the device did not come back within {self.restart_timeout:g} s of {what}, which restarts it (restart_timeout)"
                    self.note("GET", self.url(self.probe_path), self.gone)
                    raise DeviceGone(secrets.mask(f"{self.name or 'device'}: {self.gone}"))
                time.sleep(0.5)
            self.note("GET", self.url(self.probe_path), f"after {what}: the device restarted (down {down:.1f} s after the "
                                                         f"answer, answering again after {time.monotonic() - start:.1f} s)")
        finally:
            self._polling = False

    def _record(self, response, *args, **kwargs):
        # Whatever the Content-Type says: a faulty device may leak a password under text/plain.
        if len(response.content) < 1_000_000 and response.content.lstrip()[:1] in (b"{", b"["):
            try:
                secrets.register_fields(jsonlib.loads(response.content))
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
        `retry=False` returns a 429/503 as it is (for checks of those answers).
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
        for attempt in range(3):
            response = self._send(method, url, kwargs)
            if not retry or response.status_code not in (429, 503) or attempt == 2:
                return response
            delay = _retry_after(response)
            if delay is None:
                return response
            self.note(method, url, f"{response.status_code}: waited {delay:g} s (Retry-After) and retried")
            time.sleep(delay)
            if self.pacer:
                self.pacer.refill()
        return response

    def _send(self, method, url, kwargs) -> requests.Response:
        try:
            return self.session.request(method, url, **kwargs)
        except requests.Timeout:
            note = f"no answer within {kwargs['timeout']:g} s"
        except requests.exceptions.ConnectionError as exc:
            note = _connection_problem(exc)
        except requests.RequestException as exc:
            note = f"request failed: {type(exc).__name__}: {exc}"
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


def _connection_problem(exc: Exception) -> str:
    text = str(exc)
    if "BadStatusLine" in text or "RemoteDisconnected" in text and "without response" in text:
        return f"the device answered something that is not HTTP, or closed the connection without answering ({text[:200]})"
    if "Connection refused" in text or "Failed to establish" in text or "Max retries" in text:
        return f"cannot connect (is the device on and reachable?): {text[:200]}"
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
