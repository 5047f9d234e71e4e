"""Verdicts of the WattWächter load scenarios, computed from request records alone.

Pure: no locust, no network. The pytest side, the runner and the locustfiles (at the end of a CLI
run) all judge a run with `evaluate(scenario, records)`.

A record is a dict describing one request (never its headers: the token stays out):

    t             epoch seconds when the request was sent (client clock)
    elapsed_ms    until the answer (or the error) came back
    method, path, name
    status        HTTP status; 0 when no answer came (connection error, timeout)
    retry_after   the Retry-After header as received, or None
    content_type  the Content-Type header, or ""
    body          the first 200 characters of the answer
    source        the client address the request was sent from, "" for the default
    error         what went wrong when status is 0, else None
    phase         "load" (the timed load), "recovery" (rate: after waiting Retry-After),
                  "retry" (heap: after waiting Retry-After), "after" (heap: once the load stopped)
    kind          "rate" (rate-limit request), "large" (long history answer), "health" (/system/alive)

The documented behaviour (wattwaechter-api.txt, "Rate Limits & Error Codes"; NOTES.md: Retry-After is
whole seconds, JSON answers carry application/json):
- 25 requests per 10 s, device-wide; over it 429, `Retry-After: 10`, {"error":"Too many requests"}.
- Free heap below 25 KB: 503, `Retry-After: 5`, {"error":"Service temporary unavailable"}.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

LIMIT = 25
WINDOW = 10.0
RETRY_AFTER_429 = "10"
BODY_429 = {"error": "Too many requests"}
RETRY_AFTER_503 = "5"
BODY_503 = {"error": "Service temporary unavailable"}

# Timing tolerance. The timestamps are the client's. A request reaches the device after it was sent
# (t) and before its answer came back (t + elapsed). So the window checks count only what is certain:
# accepted requests sent at or after t_i whose answers were all back by t_i + 10 s certainly reached
# the device within one closed 10-second interval. Network jitter or a slow answer can then only
# hide a violation near a window's edge, never invent one, so a conforming device is never flagged.
# CLOCK_SLACK covers the rounding between the wall clock (t) and the performance counter (elapsed).
# A budget of 26 or one budget per client is still caught: the device spends its whole budget in the
# first second of the burst, far from any window edge.
CLOCK_SLACK = 0.01

RATE_ASPECTS = ("first_window", "every_window", "rejections", "shared_budget", "recovery")
HEAP_ASPECTS = ("only_documented_5xx", "rejections", "health_check", "retry")

MAX_LINES = 6  # problems listed per aspect; the rest are counted


@dataclass
class Verdict:
    scenario: str
    aspects: dict[str, list[str]]  # aspect -> problems (empty: the aspect passed)
    triggered: bool | None  # rate: a 429 was seen; heap: a 503 was seen
    notes: list[str] = field(default_factory=list)  # what was not checked or not triggered

    @property
    def passed(self) -> bool:
        return not any(self.aspects.values())

    def text(self) -> str:
        lines = [f"{self.scenario}: {'PASS' if self.passed else 'FAIL'}"]
        for aspect, problems in self.aspects.items():
            lines.append(f"  {'ok  ' if not problems else 'FAIL'} {aspect}")
            lines.extend(f"       - {problem}" for problem in problems)
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def evaluate(scenario: str, records: Sequence[dict[str, Any]]) -> Verdict:
    if scenario == "rate_limit":
        return rate_limit_verdict(records)
    if scenario == "heap":
        return heap_verdict(records)
    raise ValueError(f"unknown scenario {scenario!r} (rate_limit, heap)")


# -- helpers -----------------------------------------------------------------------------------------


def answered_at(record: dict[str, Any]) -> float:
    return record["t"] + record["elapsed_ms"] / 1000


def accepted(record: dict[str, Any]) -> bool:
    """Let through by the rate limiter: an answer below 500 other than the 429 refusal (a 401 or
    404 spends budget too). A 5xx or no answer is not counted: whether the limiter let it through is
    unknown, and it is reported as a problem of its own."""
    return 0 < record["status"] < 500 and record["status"] != 429


def retry_after_seconds(value: str | None, default: float) -> float:
    """The delay a Retry-After value asks for, the documented `default` when missing or unreadable
    (the check of the header itself is the rejections aspect's job)."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return seconds if math.isfinite(seconds) and seconds >= 0 else default


def _phase(records: Iterable[dict[str, Any]], phase: str) -> list[dict[str, Any]]:
    return sorted((r for r in records if r.get("phase", "load") == phase), key=lambda r: r["t"])


def _capped(problems: list[str]) -> list[str]:
    if len(problems) <= MAX_LINES:
        return problems
    return problems[:MAX_LINES] + [f"... and {len(problems) - MAX_LINES} more"]


def _grouped(issues: list[tuple[str, dict[str, Any]]], t0: float) -> list[str]:
    """One line per distinct issue: how often, and when it was first seen."""
    counts = Counter(issue for issue, _ in issues)
    first: dict[str, float] = {}
    for issue, record in issues:
        first.setdefault(issue, record["t"])
    return _capped([f"{issue} ({counts[issue]}x, first at +{first[issue] - t0:.2f} s)" for issue in counts])


def _answer(record: dict[str, Any]) -> str:
    if record["status"] == 0:
        return f"no HTTP answer ({record.get('error') or 'connection error'})"
    return f"{record['status']}"


def refusal_issues(record: dict[str, Any]) -> list[str]:
    """What is wrong with a 429 or 503 answer against the documented one."""
    status = record["status"]
    retry_after, body = (RETRY_AFTER_429, BODY_429) if status == 429 else (RETRY_AFTER_503, BODY_503)
    issues = []
    value = record.get("retry_after")
    if value is None:
        issues.append(f"{status} without Retry-After (documented: {retry_after})")
    elif value.strip() != retry_after:
        issues.append(f"{status} with Retry-After {value!r} (documented: {retry_after}, whole seconds)")
    media = (record.get("content_type") or "").split(";")[0].strip().lower()
    if media != "application/json":
        issues.append(f"{status} with Content-Type {record.get('content_type')!r} (documented: application/json)")
    try:
        parsed = json.loads(record.get("body") or "")
    except ValueError:
        parsed = None
    if parsed != body:
        issues.append(f"{status} with body {record.get('body')!r} (documented: "
                      f"{json.dumps(body, separators=(',', ':'))})")
    return issues


def _certain_windows(records: list[dict[str, Any]]):
    """For each accepted request i (by send time): the accepted requests that certainly reached the
    device within the closed 10 s interval starting at i's send time (see CLOCK_SLACK)."""
    ok = [r for r in records if accepted(r)]
    for i, first in enumerate(ok):
        end = first["t"] + WINDOW - CLOCK_SLACK
        members = [r for r in ok[i:] if r["t"] <= end and answered_at(r) <= end]
        yield first, members


# -- rate limit --------------------------------------------------------------------------------------


def rate_limit_verdict(records: Sequence[dict[str, Any]]) -> Verdict:
    load = _phase(records, "load")
    aspects: dict[str, list[str]] = {aspect: [] for aspect in RATE_ASPECTS}
    notes: list[str] = []
    rejected = [r for r in load if r["status"] == 429]
    if not load:
        aspects["first_window"].append("no request was sent")
        return Verdict("rate_limit", aspects, False, notes)
    t0 = load[0]["t"]

    # first_window: from a fresh budget exactly 25 are accepted in the device's first window. It opens
    # when the first request arrives: between t0 and t0 + elapsed of that request.
    certain = [r for r in load if accepted(r) and answered_at(r) <= t0 + WINDOW - CLOCK_SLACK]
    latest_open = answered_at(load[0]) + WINDOW
    possible = [r for r in load if accepted(r) and r["t"] <= latest_open]
    if len(certain) > LIMIT:
        aspects["first_window"].append(
            f"{len(certain)} requests accepted in the first 10 s (documented: {LIMIT} per {WINDOW:g} s)")
    elif len(possible) < LIMIT:
        refused = [r for r in load if r["status"] in (429, 503) and r["t"] <= latest_open]
        if refused:
            aspects["first_window"].append(
                f"only {len(possible)} requests accepted in the first 10 s before the first refusal at "
                f"+{refused[0]['t'] - t0:.2f} s (documented: {LIMIT}; was the device idle for 10 s "
                f"before the run?)")
        else:
            aspects["first_window"].append(
                f"only {len(possible)} requests reached the device in the first 10 s: too few to test "
                f"a budget of {LIMIT}")

    # every_window: no 10-second interval ever holds more than 25 accepted requests.
    worst: tuple[dict[str, Any], list[dict[str, Any]]] | None = None
    shared: list[str] = []
    for first, members in _certain_windows(load):
        if worst is None or len(members) > len(worst[1]):
            worst = (first, members)
        per_source = Counter(r.get("source", "") for r in members)
        # One budget per client shows as one address alone spending the whole budget while the
        # others are accepted in the same window too.
        if len(members) > LIMIT and len(per_source) > 1 and max(per_source.values()) >= LIMIT and not shared:
            counts = ", ".join(f"{source or 'default'}: {n}" for source, n in sorted(per_source.items()))
            shared.append(
                f"{len(members)} requests accepted within 10 s from +{first['t'] - t0:.2f} s ({counts}): "
                f"each address seems to have its own budget of {LIMIT} (documented: device-wide, shared)")
    if worst is not None and len(worst[1]) > LIMIT:
        first, members = worst
        aspects["every_window"].append(
            f"{len(members)} requests accepted within 10 s (sent from +{first['t'] - t0:.2f} s to "
            f"+{members[-1]['t'] - t0:.2f} s; documented: at most {LIMIT})")

    # rejections: every refusal is the documented 429 (a 503 of heap protection is documented too).
    issues: list[tuple[str, dict[str, Any]]] = []
    for record in load:
        if record["status"] in (429, 503):
            issues.extend((issue, record) for issue in refusal_issues(record))
        elif not 200 <= record["status"] < 300:
            issues.append((f"unexpected answer {_answer(record)} to {record.get('name') or record.get('path')}", record))
    aspects["rejections"] = _grouped(issues, t0)

    # shared_budget: requests from different source addresses share one budget.
    sources = sorted({r.get("source", "") for r in load})
    if len(sources) < 2:
        notes.append("shared budget not checked: the run used one source address "
                     "(give two, e.g. WW_SOURCE_ADDRESSES=127.0.0.2,127.0.0.3)")
    else:
        for source in sources:
            if not any(r["status"] for r in load if r.get("source", "") == source):
                shared.append(f"no HTTP answer to any request from {source or 'the default address'}: "
                              f"the shared budget could not be checked")
    aspects["shared_budget"] = shared

    # recovery: after waiting Retry-After, requests succeed again (from every source address).
    recovery = _phase(records, "recovery")
    if rejected:
        if not recovery:
            aspects["recovery"].append("no request was sent after waiting Retry-After")
        for record in recovery:
            if not 200 <= record["status"] < 300:
                aspects["recovery"].append(
                    f"after waiting Retry-After ({rejected[-1].get('retry_after')!r}) the request from "
                    f"{record.get('source') or 'the default address'} got {_answer(record)}")
    else:
        notes.append(f"the rate limit was not triggered (no 429 in {len(load)} requests)")
    return Verdict("rate_limit", aspects, bool(rejected), notes)


# -- heap protection ---------------------------------------------------------------------------------


def heap_verdict(records: Sequence[dict[str, Any]]) -> Verdict:
    load = _phase(records, "load")
    everything = sorted(records, key=lambda r: r["t"])
    aspects: dict[str, list[str]] = {aspect: [] for aspect in HEAP_ASPECTS}
    notes: list[str] = []
    if not load:
        aspects["only_documented_5xx"].append("no request was sent")
        return Verdict("heap", aspects, False, notes)
    t0 = load[0]["t"]
    refused = [r for r in load if r["status"] == 503]
    large = [r for r in load if r.get("kind") == "large"]

    # only_documented_5xx: the only server error is the documented 503; a request without any
    # answer (the device dropped it) is no better than a 500.
    issues = []
    for record in everything:
        if record["status"] >= 500 and record["status"] != 503:
            issues.append((f"{record['status']} to {record.get('name') or record.get('path')} "
                           f"(documented: only 503)", record))
        elif record["status"] == 0 and record.get("kind") != "health":  # the health check's own aspect
            issues.append((f"{_answer(record)} to {record.get('name') or record.get('path')}", record))
    aspects["only_documented_5xx"] = _grouped(issues, t0)

    # rejections: every 503 is the documented one; a refusal other than 429/503 is unexpected
    # (401: the READ token is missing or wrong). 429 is documented: the rate budget runs out.
    issues = []
    for record in everything:
        if record["status"] == 503:
            issues.extend((issue, record) for issue in refusal_issues(record))
        elif 400 <= record["status"] < 500 and record["status"] != 429:
            issues.append((f"unexpected answer {record['status']} to {record.get('name') or record.get('path')}",
                           record))
    aspects["rejections"] = _grouped(issues, t0)

    # health_check. Reading of "the health check answers throughout and after": the device stays up.
    # Throughout: every health check during the load gets an HTTP answer, 200 or a documented
    # refusal (429 when the shared budget is spent, 503 while the heap is low; heap protection covers
    # "new API requests", the health check included), never a connection error, timeout or another
    # 5xx. After: once the load stopped (and any Retry-After was honoured) it answers 200.
    health = [r for r in load if r.get("kind") == "health"]
    issues = [(f"health check got {_answer(r)}", r) for r in health if r["status"] not in (200, 429, 503)]
    problems = _grouped(issues, t0)
    if not health:
        problems.append("the health check was not polled during the load")
    after = _phase(records, "after")
    if not after:
        problems.append("the health check was not asked after the load")
    elif after[-1]["status"] != 200:
        problems.append(f"after the load the health check got {_answer(after[-1])} (expected 200)")
    aspects["health_check"] = problems

    # retry: "Retrying after a few seconds usually succeeds". Once the load has stopped, a large
    # request retried after the advertised delay (each 429 or 503 on the way honoured, at most three
    # attempts) must succeed in the end; a 5xx other than 503 on the way is a failure of its own.
    triggered = bool(refused)
    retry = _phase(records, "retry")
    if triggered:
        if not retry:
            aspects["retry"].append("no retry was sent after waiting Retry-After")
        for record in retry:
            if record["status"] == 0 or (record["status"] >= 500 and record["status"] != 503):
                aspects["retry"].append(f"retry got {_answer(record)}")
        if retry and not any(200 <= record["status"] < 300 for record in retry):
            aspects["retry"].append(f"no retry succeeded after waiting the advertised Retry-After; "
                                    f"the last got {_answer(retry[-1])}")
    else:
        notes.append(f"heap protection was not triggered (no 503 seen in {len(large)} large concurrent requests)")
    return Verdict("heap", aspects, triggered, notes)


def per_second(records: Sequence[dict[str, Any]]) -> dict[int, dict[str, int]]:
    """{second since the first request: {"accepted", "429", "503", "other"}} (for the chart)."""
    if not records:
        return {}
    t0 = min(r["t"] for r in records)
    buckets: dict[int, dict[str, int]] = defaultdict(lambda: {"accepted": 0, "429": 0, "503": 0, "other": 0})
    for record in records:
        status = record["status"]
        key = "429" if status == 429 else "503" if status == 503 else "other" if status == 0 or status >= 500 \
            else "accepted"
        buckets[int(record["t"] - t0)][key] += 1
    return dict(buckets)
