"""Shared code of the locustfiles in load/: the device and its budget (from its profile), the
configuration from the environment, the device user (credentials, source address, request cap), the
per-request recorder, the bounded shape, and the steps after the timed load (waiting Retry-After,
then recovery/retry requests).

Imports locust (which monkey-patches the standard library with gevent): only ever imported in a
locust process (the `locust` command or `python -m conformlab.load.runner`), never by pytest.

Convention: the host is the device origin plus its API prefix, e.g. http://192.168.1.50/api/v1;
request paths are below it (the profile's, e.g. /system/info).

Environment:
    CONFORMLAB_DEVICE     the device (conformlab.profiles); default: the one device whose profile
                          declares a rate budget
    CONFORMLAB_<KEY>      the device's credentials, one per key of its [targets.<name>.auth]
                          (e.g. CONFORMLAB_READ_TOKEN); the scenarios send the access level the
                          profile's budget names (never printed)
    CONFORMLAB_SOURCE_ADDRESSES
                          client addresses to send from, comma separated (e.g. 127.0.0.2,127.0.0.3);
                          users take them round robin
    CONFORMLAB_RUN_SECONDS
                          length of the timed load (each locustfile has its default)
    CONFORMLAB_RATE_PATH  the rate scenario's request instead of the profile's
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import logging
import os
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from locust import HttpUser, LoadTestShape
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner
from requests.auth import AuthBase

from conformlab.client import BoundedAdapter, bounded_session
from conformlab.load import DEVICE_ENV, RATE_PATH_ENV, RUN_SECONDS_ENV, SOURCES_ENV, credential_env, verdicts
from conformlab.profiles import PROFILES, DeviceProfile, RateBudget

REQUEST_TIMEOUT = 10.0  # seconds for a whole exchange; a device that does not answer in time counts as "no answer"
MAX_WAIT = 30.0  # longest Retry-After honoured (a broken header must not stall the run)
WAIT_SLACK = 0.25  # waited beyond Retry-After: the device counts from its own clock
BODY_CHARS = 200
RECORDS_MESSAGE = "conformlab-records"  # master/worker mode: a worker's request records, sent at its stop

log = logging.getLogger(__name__)


@functools.cache
def device() -> DeviceProfile:
    """The device under load: CONFORMLAB_DEVICE, else the only device with a documented budget."""
    limited = sorted(name for name, profile in PROFILES.items() if profile.rate_budget)
    name = os.environ.get(DEVICE_ENV, "").strip() or (limited[0] if len(limited) == 1 else "")
    if name not in PROFILES:
        raise SystemExit(f"set {DEVICE_ENV} to the device under load: one of {', '.join(limited)}")
    return PROFILES[name]


def budget() -> RateBudget:
    return device().rate_budget  # type: ignore[return-value]  # checked by require()


def require(scenario: str) -> RateBudget:
    """The device's budget; stops with one line when its profile cannot drive `scenario`."""
    problem = verdicts.why_not_applicable(device().rate_budget, scenario)
    if problem:
        raise SystemExit(f"load scenario {scenario} for {device().name}: {problem}")
    return budget()


def credentials() -> dict[str, str]:
    found = {key: os.environ.get(credential_env(key), "").strip() for key in device().auth_keys}
    return {key: value for key, value in found.items() if value}


def scenario_auth() -> AuthBase | None:
    """What the scenarios send with: the access level the budget names (e.g. READ) of the credentials
    in the environment, else the target's default credentials; None without credentials."""
    profile, given = device(), credentials()
    if not given:
        return None
    level = profile.rate_budget.level if profile.rate_budget else None
    return (profile.auth_levels(given).get(level) if level else None) or profile.make_auth(given)


def source_addresses() -> list[str]:
    return [a.strip() for a in os.environ.get(SOURCES_ENV, "").split(",") if a.strip()]


def run_seconds(default: float) -> float:
    return float(os.environ.get(RUN_SECONDS_ENV) or default)


def rate_path() -> str:
    return os.environ.get(RATE_PATH_ENV, "").strip() or budget().path


def large_paths(today: dt.date | None = None) -> list[str]:
    """The largest documented answers the protection is provoked with (the profile's), from today (UTC)."""
    return list(budget().protection.large_paths(today or dt.datetime.now(dt.timezone.utc).date()))


def bound(session: requests.Session, source: str) -> None:
    """Put locust's session on the harness's bounded transport (conformlab.client): every exchange
    within REQUEST_TIMEOUT, connect to last byte, every answer within the size limit; sent from
    `source` (a local address) when given."""
    adapter = BoundedAdapter(REQUEST_TIMEOUT, source_address=source or None)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False  # loopback / lab network: no proxies


# -- records -----------------------------------------------------------------------------------------


def make_record(*, method: str, path: str, name: str, start: float, elapsed_ms: float, response: Any,
                error: BaseException | None, source: str, kind: str, phase: str) -> dict[str, Any]:
    """One request as a record of verdicts.py. Never the request headers (the credentials)."""
    status = (getattr(response, "status_code", 0) or 0) if response is not None else 0
    record = {"t": start, "elapsed_ms": round(elapsed_ms, 2), "method": method, "path": path, "name": name,
              "status": status, "retry_after": None, "content_type": "", "body": "", "source": source,
              "error": None, "kind": kind, "phase": phase}
    if status:
        record.update(retry_after=response.headers.get("Retry-After"),
                      content_type=response.headers.get("Content-Type", ""),
                      body=response.content[:BODY_CHARS].decode("utf-8", "replace"))
    else:  # no HTTP answer; locust keeps the exception on its stand-in response
        error = error or getattr(response, "error", None)
        record["error"] = f"{type(error).__name__}: {error}"[:200] if error else "connection error"
    return record


class Recorder:
    """Collects a record per request from locust's request event."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.sent = 0  # requests started, for the hard cap

    def attach(self, events: Any) -> None:
        events.request.add_listener(self.on_request)

    def on_request(self, request_type, name, response_time, response_length, response=None, context=None,
                   exception=None, start_time=None, url=None, **_: Any) -> None:
        context = context or {}
        self.records.append(make_record(
            method=request_type, path=context.get("path", urlsplit(url or "").path), name=name,
            start=start_time or time.time() - response_time / 1000, elapsed_ms=response_time,
            response=response, error=exception, source=context.get("source", ""),
            kind=context.get("kind", ""), phase="load"))


RECORDER = Recorder()  # one run per process


class DeviceUser(HttpUser):
    """A client of the device: the scenario's credentials when given, one of the source addresses,
    and a hard cap on the requests of the whole run (max_requests, shared by all users)."""

    abstract = True
    kind = "rate"
    send_credentials = True
    max_requests = 1000
    _sources = itertools.count()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source = ""

    def on_start(self) -> None:
        sources = source_addresses()
        if sources:
            self.source = sources[next(DeviceUser._sources) % len(sources)]
        bound(self.client, self.source)
        if self.send_credentials:
            self.client.auth = scenario_auth()

    def context(self) -> dict[str, Any]:
        return {"source": self.source}

    def get(self, path: str) -> None:
        if RECORDER.sent >= self.max_requests:
            raise StopUser()
        RECORDER.sent += 1
        # A redirect is recorded as the answer it is, never followed (locust's get would follow it).
        self.client.get(path, name=path.split("?")[0], timeout=REQUEST_TIMEOUT, allow_redirects=False,
                        context={"kind": self.kind, "path": path})


class BoundedShape(LoadTestShape):
    """All users at once for a bounded time, even when the command line gives no -t."""

    abstract = True
    users = 1
    seconds = 10.0

    def tick(self) -> tuple[int, float] | None:
        if self.get_run_time() >= run_seconds(self.seconds):
            return None
        return self.users, 100.0


# -- after the timed load ------------------------------------------------------------------------------


def send(base_url: str, path: str, *, source: str, auth: AuthBase | None, kind: str, phase: str) -> dict[str, Any]:
    session = bounded_session(REQUEST_TIMEOUT, source_address=source or None)
    session.auth = auth
    start, perf = time.time(), time.perf_counter()
    response, error = None, None
    try:
        response = session.get(base_url + path, timeout=REQUEST_TIMEOUT)
    except requests.RequestException as exc:
        error = exc
    finally:
        session.close()
    return make_record(method="GET", path=path, name=path.split("?")[0], start=start,
                       elapsed_ms=(time.perf_counter() - perf) * 1000, response=response, error=error,
                       source=source, kind=kind, phase=phase)


def sleep_until(when: float) -> None:
    time.sleep(min(MAX_WAIT, max(0.0, when - time.time())))


def honouring_retry_after(base_url: str, path: str, *, attempts: int, **kwargs: Any) -> list[dict[str, Any]]:
    """Ask once; on a documented refusal, wait its Retry-After and ask again (at most `attempts` in all)."""
    documented = verdicts.refusals(budget())
    records = []
    for _ in range(attempts):
        record = send(base_url, path, **kwargs)
        records.append(record)
        if record["status"] not in documented:
            break
        wait = verdicts.retry_after_seconds(record["retry_after"],
                                            verdicts.documented_wait(documented[record["status"]], budget()))
        sleep_until(verdicts.answered_at(record) + wait + WAIT_SLACK)
    return records


def post_run(scenario: str, base_url: str, records: list[dict[str, Any]], *, sources: list[str],
             auth: AuthBase | None) -> list[dict[str, Any]]:
    """The steps after the timed load; returns their records."""
    load = sorted((r for r in records if r["phase"] == "load"), key=lambda r: r["t"])
    if not load:
        return []
    plan = budget()
    # Retry-After is counted from the load's last answer: a request accepted after the last refusal
    # holds budget for another window, so waiting from the refusal itself could be too short.
    last_answer = max(verdicts.answered_at(r) for r in load)
    waits = {}  # status of a documented refusal seen -> the delay its last one asked for
    for status, refusal in verdicts.refusals(plan).items():
        last = [r for r in load if r["status"] == status][-1:]
        if last:
            waits[status] = verdicts.retry_after_seconds(last[0]["retry_after"], verdicts.documented_wait(refusal, plan))
    out: list[dict[str, Any]] = []
    if scenario == "rate_limit":
        if plan.over_limit.status in waits:  # after waiting Retry-After, requests succeed again, from every address
            log.info("waiting Retry-After (%g s) before the recovery requests", waits[plan.over_limit.status])
            sleep_until(last_answer + waits[plan.over_limit.status] + WAIT_SLACK)
            for source in sources or [""]:
                out.append(send(base_url, rate_path(), source=source, auth=auth, kind="rate", phase="recovery"))
        return out
    protection = plan.protection
    source = sources[0] if sources else ""
    if waits:
        log.info("waiting Retry-After (%g s) before the retry and the health check", max(waits.values()))
        sleep_until(last_answer + max(waits.values()) + WAIT_SLACK)
    if protection.refusal.status in waits:  # a large request after the advertised delay succeeds
        out += honouring_retry_after(base_url, large_paths()[0], attempts=3, source=source, auth=auth,
                                     kind="large", phase="retry")
    # the health check answers after the load (honouring a refusal if the budget happens to be spent)
    out += honouring_retry_after(base_url, protection.health_path, attempts=2, source=source,
                                 auth=None if protection.health_open else auth, kind="health", phase="after")
    return out


# -- the end of a `locust -f load/...` run -------------------------------------------------------------


def install_cli_hooks(scenario: str, events: Any) -> None:
    """For the `locust` command: record every request, and at the end run the post-load steps,
    print the verdict and exit 1 when an aspect failed. (The runner drives the same pieces itself:
    it makes its own Environment, where these hooks do not fire.)"""

    @events.init_command_line_parser.add_listener
    def _defaults(parser: Any, **_: Any) -> None:
        # Runnable as is: headless, and nothing listening beyond loopback if someone asks for more.
        parser.set_defaults(headless=True, web_host="127.0.0.1", master_bind_host="127.0.0.1")

    require(scenario)  # one line, before locust starts anything

    @events.init.add_listener
    def _init(environment: Any, **_: Any) -> None:
        RECORDER.attach(environment.events)
        if isinstance(environment.runner, MasterRunner):  # master/worker mode: the workers send their records
            environment.runner.register_message(RECORDS_MESSAGE, lambda msg, **_: RECORDER.records.extend(msg.data))

    @events.test_stop.add_listener
    def _hand_over(environment: Any, **_: Any) -> None:
        # A worker's records go to the master before it reports "stopped": the verdict is the master's.
        if isinstance(environment.runner, WorkerRunner):
            records, RECORDER.records = RECORDER.records, []
            environment.runner.send_message(RECORDS_MESSAGE, records)

    @events.quitting.add_listener
    def _quitting(environment: Any, **_: Any) -> None:
        if isinstance(environment.runner, WorkerRunner):
            return
        if environment.runner is not None:
            environment.runner.stop()
        RECORDER.records += post_run(scenario, environment.host or "", RECORDER.records,
                                     sources=source_addresses(), auth=scenario_auth())
        verdict = verdicts.evaluate(scenario, RECORDER.records, budget())
        print(verdict.text(), flush=True)
        environment.process_exit_code = 0 if verdict.passed else 1
