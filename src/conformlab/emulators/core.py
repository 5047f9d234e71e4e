"""The emulator core: what every bundled device emulator shares.

An emulator module holds only what is its device's own: its state, data, handlers and fault
catalogue. This module is the rest:

- `Route`: the device's endpoints as data (method, path below the device's prefix with `{name}`
  segments, the handler's name, the body kind, the access the route needs in the device's words).
- `DeviceEmulator.device_handle`: one request pipeline for every device:

      screen(req)             device-wide answers before routing (rate limit, heap protection)
      [authorize(req, None)   for a device whose auth runs before routing]
      route                   ROUTES -> unknown path: not_found(req); known path, other method:
                              method_not_allowed(req, allowed)
      authorize(req, route)   the one auth hook: None to go on, or the device's refusal
      read_body(req, route)   route.body -> req.data (one body parser; Refused -> 400)
      handler(req)            the route's method; raises Refused(status, detail) for an error

  Every error answer, also a handler's `Refused`, is made by `error()`, the one place that knows the
  device's error envelope.
- One body parser: strict JSON (no NaN/Infinity; bare scalars are JSON too), raw bytes, and
  multipart/form-data through python-multipart.
- The fault switch (`fault(name)`), the reading switch (`reading`, `alternative`), a clock that the
  emulator controls move (`now()`, `wall()`), and the emulator controls every device has under
  /__emulator__/: GET faults (GET /__emulator__), GET counters, POST reset, POST advance
  {"seconds": N}, POST restart {"boot_seconds": N} (restart with an outage, as `restart()`).
- Restarts as firmware does them (`restart()`): the answer leaves, the device drops every
  connection and is off the network for `boot_seconds`, then `boot()` runs.

The device's profile (conformlab.profiles) is the one declaration of its name and credential keys:
the constructor checks `auth` against it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Any, Callable, Iterable, Mapping

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from .server import CONTROL_PREFIX, Request, Response, html_escape, is_control, reason_phrase

# The parser logs each malformed body before it raises; the emulator answers it instead.
logging.getLogger("python_multipart").addHandler(logging.NullHandler())

# Body kinds of a route
NONE, JSON, RAW, FORM = "none", "json", "raw", "form"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # below the device's PREFIX; a "{name}" segment matches one path segment
    handler: str  # the emulator's method that answers (called with the Request)
    body: str = NONE  # NONE, JSON, RAW or FORM: what read_body() makes of the body
    access: Any = None  # what the route needs, in the device's words (the auth hook reads it)
    arg: Any = None  # a value for the handler (e.g. which configuration block)


class Refused(Exception):
    """A request the device answers with an error (400 unless said otherwise); `error()` renders it
    in the device's envelope. `code` is for envelopes that carry an error code."""

    def __init__(self, detail: str, status: int = 400, *, headers: Mapping[str, str] | None = None,
                 code: str | None = None) -> None:
        super().__init__(detail)
        self.detail, self.status, self.headers, self.code = detail, status, dict(headers or {}), code


class MalformedBody(ValueError):
    """A body that does not follow its declared format."""


class ControlError(Exception):
    """Raised by a control handler: answered 400 with {"error": message}."""


# ---------------------------------------------------------------------------------------------
# The one body parser


def json_value(body: bytes) -> Any:
    """Strict JSON (RFC 8259): UTF-8, no NaN or Infinity; a bare scalar is JSON too.
    MalformedBody otherwise."""
    def reject(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")
    try:
        return json.loads(body.decode("utf-8"), parse_constant=reject)
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        raise MalformedBody(f"malformed JSON: {exc}") from None


def media_type(request: Request) -> str:
    """The Content-Type's media type, lower case, without parameters ("" when absent)."""
    return (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Part:
    """One part of a multipart/form-data body."""

    name: str
    filename: str | None
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def multipart_form(body: bytes, content_type: str | None) -> dict[str, Part]:
    """The named parts of a multipart/form-data body (RFC 7578), the first of each name; parts
    that are not form-data are skipped. MalformedBody when the body does not follow its boundary."""
    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise MalformedBody("not multipart/form-data with a boundary")
    delimiter = b"--" + boundary
    if not body.startswith(delimiter):  # a preamble before the first delimiter line is ignored (RFC 2046)
        start = body.find(b"\r\n" + delimiter)
        body = body[start + 2:] if start >= 0 else body
    parts: list[tuple[Message, bytearray]] = []
    header: list[bytes] = [b"", b""]
    ended = []

    def begin() -> None:
        parts.append((Message(), bytearray()))

    def header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def header_end() -> None:
        parts[-1][0][header[0].decode("latin-1")] = header[1].decode("utf-8", errors="replace")
        header[:] = [b"", b""]

    def data(chunk: bytes, start: int, end: int) -> None:
        parts[-1][1].extend(chunk[start:end])

    parser = MultipartParser(boundary, {
        "on_part_begin": begin, "on_header_field": header_field, "on_header_value": header_value,
        "on_header_end": header_end, "on_part_data": data, "on_end": lambda: ended.append(True)})
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise MalformedBody(f"malformed multipart/form-data body: {exc}") from None
    if not ended:
        raise MalformedBody("malformed multipart/form-data body: no closing delimiter")
    form: dict[str, Part] = {}
    for headers, content in parts:
        disposition = headers.get("Content-Disposition")
        if disposition is None or disposition.split(";")[0].strip().lower() != "form-data":
            continue
        name, filename = (headers.get_param(key, header="Content-Disposition") for key in ("name", "filename"))
        name = collapse_rfc2231_value(name) if name is not None else None
        if name and name not in form:
            form[name] = Part(name, collapse_rfc2231_value(filename) if filename is not None else None, bytes(content))
    return form


# ---------------------------------------------------------------------------------------------
# The device emulator


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("".join(f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") and part.endswith("}")
                              else re.escape(part) for part in re.split(r"(\{[^/{}]+\})", path)))


class DeviceEmulator:
    """Base class of a device emulator. A device sets NAME (its profile's name), PREFIX, ROUTES,
    FAULTS, writes a handler per route and overrides the hooks it needs: `screen`, `authorize`,
    `read_body`, `error`, `not_found`, `method_not_allowed`, `outside_prefix`, `device_head`,
    `reset`, `boot`, `device_controls`."""

    NAME: str = ""
    PREFIX: str = ""
    ROUTES: tuple[Route, ...] = ()
    # A device whose auth runs before routing (an unknown path without credentials is refused like
    # a known one) calls authorize(req, None) first.
    AUTHORIZE_BEFORE_ROUTING = False
    FAULTS: dict[str, str] = {}  # fault name -> the documented sentence it breaks
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
        structured = bool(self.profile and self.profile.structured_auth)  # its check_auth judges the values
        for key, value in auth.items():
            if not isinstance(value, str) and not structured:
                raise ValueError(f"auth {key!r} must be a string")
        problem = self.profile.check_auth(auth) if auth and self.profile else None  # a targets file's rule
        if problem:
            raise ValueError(f"auth: {problem}")
        self.faults: frozenset[str] = frozenset(faults)
        self.auth: dict[str, Any] = auth
        self.lock = threading.RLock()  # one request (or timer) at a time touches the state
        self._timers: list[threading.Timer] = []
        self._closed = False
        self.server = None  # set by serve(): restarts drop its connections
        self.down = False  # off the network while it boots
        self.restarts = 0  # restarts completed (the device booted again)
        self.clock_offset = 0.0  # seconds the advance control moved the device's clock
        self.counters: dict[str, int] = {}
        self._exact = {(route.method, route.path): route for route in self.ROUTES if "{" not in route.path}
        self._patterns = [(_pattern(route.path), route) for route in self.ROUTES if "{" in route.path]

    # -- what the profile declares -----------------------------------------------------------------

    @property
    def profile(self):
        """The device's profile (None for an emulator that is no registered device, e.g. in tests)."""
        from conformlab.profiles import PROFILES  # the registry: the device's one declaration

        return PROFILES.get(self.NAME)

    @property
    def AUTH_KEYS(self) -> tuple[str, ...]:  # noqa: N802 (a class constant before the registry)
        return tuple(sorted(self.profile.auth_keys)) if self.profile else ()

    # -- switches ---------------------------------------------------------------------------------

    @property
    def alternative(self) -> bool:
        """Is the emulator making the other reading of what its document leaves open?"""
        return self.reading == "alternative"

    def fault(self, name: str) -> bool:
        """Is fault `name` switched on? (A typo in a fault name is a bug: fail loudly.)"""
        if name not in self.FAULTS:
            raise KeyError(f"{self.NAME} has no fault {name!r}")
        return name in self.faults

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def now(self) -> float:
        """The device's monotonic clock, as the advance control moves it."""
        return time.monotonic() + self.clock_offset

    def wall(self) -> float:
        """The device's wall clock (epoch seconds), as the advance control moves it."""
        return time.time() + self.clock_offset

    # -- entry points used by the server ------------------------------------------------------------

    def head(self, request: Request) -> Response | None:
        """Answer from the request head alone (body not read yet), or None to go on."""
        if is_control(request.path):
            return None
        with self.lock:
            return self.device_head(request)

    def handle(self, request: Request) -> Response:
        with self.lock:
            if is_control(request.path):
                return self._control(request)
            return self.device_handle(request)

    # -- the pipeline -------------------------------------------------------------------------------

    def device_handle(self, req: Request) -> Response:
        try:
            admitted = self.admit(req)
            if isinstance(admitted, Response):
                return admitted
            req.data = self.read_body(req, admitted)
            return getattr(self, admitted.handler)(req)
        except Refused as exc:
            return self.error(exc.status, exc.detail, exc.headers or None, code=exc.code)

    def admit(self, req: Request) -> Response | Route:
        """The pipeline up to the body: the request's route, or the answer that ends it there
        (a device that answers from the request head calls it from device_head)."""
        if not (req.path == self.PREFIX or req.path.startswith(self.PREFIX + "/")):
            return self.outside_prefix(req)
        early = self.screen(req)
        if early is None and self.AUTHORIZE_BEFORE_ROUTING:
            early = self.authorize(req, None)
        if early is not None:
            return early
        route = self.resolve(req)
        if route is None:
            allowed = self.allowed_methods(req.path)
            return self.method_not_allowed(req, allowed) if allowed else self.not_found(req)
        denied = None if self.AUTHORIZE_BEFORE_ROUTING else self.authorize(req, route)
        return denied if denied is not None else route

    def subpath(self, path: str) -> str:
        return path[len(self.PREFIX):]

    def resolve(self, req: Request) -> Route | None:
        """The route of the request (sets req.route and req.params), None if there is none."""
        sub = self.subpath(req.path)
        route, params = self._exact.get((req.method, sub)), {}
        if route is None:
            for pattern, candidate in self._patterns:
                match = pattern.fullmatch(sub) if candidate.method == req.method else None
                if match:
                    route, params = candidate, match.groupdict()
                    break
        req.route, req.params = route, params
        return route

    def allowed_methods(self, path: str) -> list[str]:
        """The methods the device serves at `path` (empty: the path is unknown)."""
        sub = self.subpath(path)
        return sorted({route.method for route in self.ROUTES
                       if route.path == sub or ("{" in route.path and _pattern(route.path).fullmatch(sub))})

    # -- hooks --------------------------------------------------------------------------------------

    def device_head(self, request: Request) -> Response | None:
        return None

    def outside_prefix(self, req: Request) -> Response:
        return self.error(404)

    def screen(self, req: Request) -> Response | None:
        """Device-wide answers before routing (e.g. a rate limit); None to go on."""
        return None

    def not_found(self, req: Request) -> Response:
        return self.error(404)

    def method_not_allowed(self, req: Request, allowed: list[str]) -> Response:
        """Default: a device that documents no 405 answers an unknown method like an unknown path."""
        return self.error(404)

    def authorize(self, req: Request, route: Route | None) -> Response | None:
        """The one auth hook: None to serve the request, or the device's refusal (route None:
        before routing, see AUTHORIZE_BEFORE_ROUTING)."""
        return None

    def read_body(self, req: Request, route: Route) -> Any:
        """What the handler gets in req.data: None (NONE), the JSON value (JSON), the bytes (RAW),
        the parts (FORM). Refused (400) for a body that does not follow its format."""
        if route.body == JSON:
            try:
                return json_value(req.body)
            except MalformedBody as exc:
                raise Refused(str(exc)) from None
        if route.body == RAW:
            return req.body
        if route.body == FORM:
            try:
                return multipart_form(req.body, req.headers.get("Content-Type"))
            except MalformedBody as exc:
                raise Refused(str(exc)) from None
        return None

    def error(self, status: int, detail: str | None = None, headers: Mapping[str, str] | None = None, *,
              code: str | None = None) -> Response:
        """The one place where error answers are made. Default: a short text/html body and the
        connection closed afterwards; a device with another envelope overrides it."""
        reason = reason_phrase(status)
        body = f"<h1>{status} {reason}</h1>"
        if detail:
            body += f"<p>{html_escape(detail)}</p>"
        return Response(status, {"Content-Type": "text/html", **(headers or {})}, body.encode(), close=True)

    def reset(self) -> None:
        """Back to the state at start (also POST /__emulator__/reset). A device extends it."""
        self.cancel_timers()
        self.down = False  # a restart under way is called off
        self.clock_offset = 0.0
        self.counters = {}

    def boot(self) -> None:
        """What a start does to the state (sessions lost, saved settings applied, ...)."""

    def device_controls(self) -> dict[tuple[str, str], Callable[[Any], Any]]:
        """(method, name) -> handler(payload) for the device's own /__emulator__/<name> controls."""
        return {}

    # -- timers and restarts ------------------------------------------------------------------------

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

    def restart(self, delay: float, boot: Callable[[], None] | None = None) -> None:
        """Restart as real firmware does: `delay` seconds from now (the answer has gone out by
        then) drop every open connection and stay off the network for `boot_seconds`; then run
        `boot()` and serve again. A restart requested while one is pending or under way is the
        same restart."""
        def go_down() -> None:
            if self.down:
                return
            self.down = True
            if self.server is not None:
                self.server.close_connections()
            self.later(self.boot_seconds, come_up)

        def come_up() -> None:
            (boot or self.boot)()
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

    # -- emulator controls --------------------------------------------------------------------------

    def controls(self) -> dict[tuple[str, str], Callable[[Any], Any]]:
        return {
            ("GET", "counters"): lambda payload: dict(self.counters),
            ("POST", "reset"): lambda payload: self.reset(),
            ("POST", "advance"): self._ctl_advance,
            ("POST", "restart"): self._ctl_restart,
            **self.device_controls(),
        }

    def _ctl_advance(self, payload: Any) -> dict[str, Any]:
        seconds = payload.get("seconds") if isinstance(payload, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < 1e9:
            raise ControlError('expected {"seconds": N} with N >= 0')
        self.clock_offset += seconds
        return {"advanced": self.clock_offset}

    def _ctl_restart(self, payload: Any) -> dict[str, Any]:
        payload = {} if payload is None else payload
        seconds = payload.get("boot_seconds", self.boot_seconds) if isinstance(payload, dict) else None
        if (not isinstance(payload, dict) or set(payload) - {"boot_seconds"} or isinstance(seconds, bool)
                or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 600):
            raise ControlError('expected {} or {"boot_seconds": N} with 0 <= N <= 600')
        self.boot_seconds = float(seconds)
        self.restart(0.05)  # the control's answer leaves first
        return {"bootSeconds": self.boot_seconds}

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
