"""Verdicts of the load scenarios, computed from request records and the device's profile alone.

Pure: no locust, no network. The pytest side, the runner and the locustfiles (at the end of a CLI
run) all judge a run with `evaluate(scenario, records, budget)`, where `budget` is the profile's
RateBudget (conformlab.profiles): the documented budget, the answer over it, and the heap-style
protection with its own answer. Every number and answer judged here comes from there.

A record is a dict describing one request (never its headers: the credentials stay out):

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
    kind          "rate" (rate-limit request), "large" (large answer), "health" (the health check)
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

if TYPE_CHECKING:  # not at run time: the runner imports this package before locust patches the standard library
    from conformlab.profiles import RateBudget, Refusal

# Timing tolerance. The timestamps are the client's. A request reaches the device after it was sent
# (t) and before its answer came back (t + elapsed). So the window checks count only what is certain:
# accepted requests sent at or after t_i whose answers were all back by the end of the window that
# starts at t_i certainly reached the device within one closed window. Network jitter or a slow
# answer can then only hide a violation near a window's edge, never invent one, so a conforming
# device is never flagged. CLOCK_SLACK covers the rounding between the wall clock (t) and the
# performance counter (elapsed). A budget one too large or one budget per client is still caught:
# the device spends its whole budget in the first second of the burst, far from any window edge.
CLOCK_SLACK = 0.01

RATE_ASPECTS = ("first_window", "every_window", "rejections", "shared_budget", "recovery")
HEAP_ASPECTS = ("only_documented_5xx", "rejections", "health_check", "retry")

MAX_LINES = 6  # problems listed per aspect; the rest are counted


@dataclass
class Verdict:
    scenario: str
    aspects: dict[str, list[str]]  # aspect -> problems (empty: the aspect passed)
    triggered: bool | None  # rate: an over-limit answer was seen; heap: a protection answer was seen
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


def evaluate(scenario: str, records: Sequence[dict[str, Any]], budget: RateBudget) -> Verdict:
    if scenario == "rate_limit":
        return rate_limit_verdict(records, budget)
    if scenario == "heap":
        return heap_verdict(records, budget)
    raise ValueError(f"unknown scenario {scenario!r} (rate_limit, heap)")


def why_not_applicable(budget: RateBudget | None, scenario: str) -> str | None:
    """Why the profile's budget cannot drive `scenario` (what it does not declare), or None."""
    if budget is None:
        return "the device has no documented rate budget"
    if budget.over_limit is None or not budget.path:
        return "the profile's rate budget names no over-limit answer or no request path"
    if scenario == "heap" and budget.protection is None:
        return "the device documents no heap-style protection"
    return None


# -- helpers -----------------------------------------------------------------------------------------


def refusals(budget: RateBudget) -> dict[int, Refusal]:
    """The documented answers that turn requests away, by status: over the budget, and protection."""
    found = [budget.over_limit, budget.protection.refusal if budget.protection else None]
    return {refusal.status: refusal for refusal in found if refusal is not None}


def answered_at(record: dict[str, Any]) -> float:
    return record["t"] + record["elapsed_ms"] / 1000


def accepted(record: dict[str, Any], budget: RateBudget) -> bool:
    """Let through by the rate limiter: an answer below 500 other than the over-limit refusal (a 401
    or 404 spends budget too). A 5xx or no answer is not counted: whether the limiter let it through
    is unknown, and it is reported as a problem of its own."""
    return 0 < record["status"] < 500 and record["status"] != budget.over_limit.status


def retry_after_seconds(value: str | None, default: float) -> float:
    """The delay a Retry-After value asks for, the documented `default` when missing or unreadable
    (the check of the header itself is the rejections aspect's job)."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return seconds if math.isfinite(seconds) and seconds >= 0 else default


def documented_wait(refusal: Refusal, budget: RateBudget) -> float:
    """How long a client waits after `refusal` when its Retry-After is missing or unreadable."""
    return float(refusal.retry_after if refusal.retry_after is not None else budget.seconds)


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


def _name(record: dict[str, Any]) -> str:
    return record.get("name") or record.get("path") or "?"


def refusal_issues(record: dict[str, Any], refusal: Refusal) -> list[str]:
    """What is wrong with a refusal answer against the documented one (the parts it documents)."""
    status = record["status"]
    issues = []
    if refusal.retry_after is not None:
        documented = str(refusal.retry_after)
        value = record.get("retry_after")
        if value is None:
            issues.append(f"{status} without Retry-After (documented: {documented})")
        elif value.strip() != documented:
            issues.append(f"{status} with Retry-After {value!r} (documented: {documented}, whole seconds)")
    if refusal.content_type:
        media = (record.get("content_type") or "").split(";")[0].strip().lower()
        if media != refusal.content_type:
            issues.append(f"{status} with Content-Type {record.get('content_type')!r} "
                          f"(documented: {refusal.content_type})")
    if refusal.body is not None:
        try:
            parsed = json.loads(record.get("body") or "")
        except ValueError:
            parsed = None
        if parsed != json.loads(refusal.body):
            issues.append(f"{status} with body {record.get('body')!r} (documented: {refusal.body})")
    return issues


def _certain_windows(records: list[dict[str, Any]], budget: RateBudget):
    """For each accepted request i (by send time): the accepted requests that certainly reached the
    device within the closed window starting at i's send time (see CLOCK_SLACK)."""
    ok = [r for r in records if accepted(r, budget)]
    for i, first in enumerate(ok):
        end = first["t"] + budget.seconds - CLOCK_SLACK
        members = [r for r in ok[i:] if r["t"] <= end and answered_at(r) <= end]
        yield first, members


# -- rate limit --------------------------------------------------------------------------------------


def rate_limit_verdict(records: Sequence[dict[str, Any]], budget: RateBudget) -> Verdict:
    limit, window, over = budget.requests, budget.seconds, budget.over_limit.status
    load = _phase(records, "load")
    aspects: dict[str, list[str]] = {aspect: [] for aspect in RATE_ASPECTS}
    notes: list[str] = []
    rejected = [r for r in load if r["status"] == over]
    if not load:
        aspects["first_window"].append("no request was sent")
        return Verdict("rate_limit", aspects, False, notes)
    t0 = load[0]["t"]
    documented = refusals(budget)

    # first_window: from a fresh budget exactly `limit` are accepted in the device's first window. It
    # opens when the first request arrives: between t0 and t0 + elapsed of that request.
    certain = [r for r in load if accepted(r, budget) and answered_at(r) <= t0 + window - CLOCK_SLACK]
    latest_open = answered_at(load[0]) + window
    possible = [r for r in load if accepted(r, budget) and r["t"] <= latest_open]
    if len(certain) > limit:
        aspects["first_window"].append(
            f"{len(certain)} requests accepted in the first {window:g} s (documented: {limit} per {window:g} s)")
    elif len(possible) < limit:
        refused = [r for r in load if r["status"] in documented and r["t"] <= latest_open]
        if refused:
            aspects["first_window"].append(
                f"only {len(possible)} requests accepted in the first {window:g} s before the first refusal at "
                f"+{refused[0]['t'] - t0:.2f} s (documented: {limit}; was the device idle for {window:g} s "
                f"before the run?)")
        else:
            aspects["first_window"].append(
                f"only {len(possible)} requests reached the device in the first {window:g} s: too few to test "
                f"a budget of {limit}")

    # every_window: no window ever holds more than `limit` accepted requests.
    worst: tuple[dict[str, Any], list[dict[str, Any]]] | None = None
    shared: list[str] = []
    for first, members in _certain_windows(load, budget):
        if worst is None or len(members) > len(worst[1]):
            worst = (first, members)
        per_source = Counter(r.get("source", "") for r in members)
        # One budget per client shows as one address alone spending the whole budget while the
        # others are accepted in the same window too.
        if len(members) > limit and len(per_source) > 1 and max(per_source.values()) >= limit and not shared:
            counts = ", ".join(f"{source or 'default'}: {n}" for source, n in sorted(per_source.items()))
            shared.append(
                f"{len(members)} requests accepted within {window:g} s from +{first['t'] - t0:.2f} s ({counts}): "
                f"each address seems to have its own budget of {limit} (documented: device-wide, shared)")
    if worst is not None and len(worst[1]) > limit:
        first, members = worst
        aspects["every_window"].append(
            f"{len(members)} requests accepted within {window:g} s (sent from +{first['t'] - t0:.2f} s to "
            f"+{members[-1]['t'] - t0:.2f} s; documented: at most {limit})")

    # rejections: every refusal is a documented one (over the budget; protection is documented too).
    issues: list[tuple[str, dict[str, Any]]] = []
    for record in load:
        if record["status"] in documented:
            issues.extend((issue, record) for issue in refusal_issues(record, documented[record["status"]]))
        elif not 200 <= record["status"] < 300:
            issues.append((f"unexpected answer {_answer(record)} to {_name(record)}", record))
    aspects["rejections"] = _grouped(issues, t0)

    # shared_budget: requests from different source addresses share one budget.
    sources = sorted({r.get("source", "") for r in load})
    if len(sources) < 2:
        notes.append("shared budget not checked: the run used one source address "
                     "(give two, e.g. CONFORMLAB_SOURCE_ADDRESSES=127.0.0.2,127.0.0.3)")
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
        notes.append(f"the rate limit was not triggered (no {over} in {len(load)} requests)")
    return Verdict("rate_limit", aspects, bool(rejected), notes)


# -- heap-style protection -----------------------------------------------------------------------------


def heap_verdict(records: Sequence[dict[str, Any]], budget: RateBudget) -> Verdict:
    protection = budget.protection
    status = protection.refusal.status
    documented = refusals(budget)
    server_errors = " or ".join(str(s) for s in sorted(documented) if s >= 500) or "none"
    load = _phase(records, "load")
    everything = sorted(records, key=lambda r: r["t"])
    aspects: dict[str, list[str]] = {aspect: [] for aspect in HEAP_ASPECTS}
    notes: list[str] = []
    if not load:
        aspects["only_documented_5xx"].append("no request was sent")
        return Verdict("heap", aspects, False, notes)
    t0 = load[0]["t"]
    refused = [r for r in load if r["status"] == status]
    large = [r for r in load if r.get("kind") == "large"]

    # only_documented_5xx: the only server error is a documented refusal; a request without any
    # answer (the device dropped it) is no better than a 500.
    issues = []
    for record in everything:
        if record["status"] >= 500 and record["status"] not in documented:
            issues.append((f"{record['status']} to {_name(record)} (documented: only {server_errors})", record))
        elif record["status"] == 0 and record.get("kind") != "health":  # the health check's own aspect
            issues.append((f"{_answer(record)} to {_name(record)}", record))
    aspects["only_documented_5xx"] = _grouped(issues, t0)

    # rejections: every protection refusal is the documented one; another 4xx is unexpected (401:
    # the credentials are missing or wrong). The over-limit answer is documented: the budget runs out.
    issues = []
    for record in everything:
        if record["status"] == status:
            issues.extend((issue, record) for issue in refusal_issues(record, protection.refusal))
        elif 400 <= record["status"] < 500 and record["status"] not in documented:
            issues.append((f"unexpected answer {record['status']} to {_name(record)}", record))
    aspects["rejections"] = _grouped(issues, t0)

    # health_check. Reading of "the health check answers throughout and after": the device stays up.
    # Throughout: every health check during the load gets an HTTP answer, 200 or a documented
    # refusal (over the shared budget, or the protection's: it covers "new API requests", the health
    # check included), never a connection error, timeout or another 5xx. After: once the load stopped
    # (and any Retry-After was honoured) it answers 200.
    health = [r for r in load if r.get("kind") == "health"]
    issues = [(f"health check got {_answer(r)}", r) for r in health if r["status"] != 200 and r["status"] not in documented]
    problems = _grouped(issues, t0)
    if not health:
        problems.append("the health check was not polled during the load")
    after = _phase(records, "after")
    if not after:
        problems.append("the health check was not asked after the load")
    elif after[-1]["status"] != 200:
        problems.append(f"after the load the health check got {_answer(after[-1])} (expected 200)")
    aspects["health_check"] = problems

    # retry: once the load has stopped, a large request retried after the advertised delay (each
    # documented refusal on the way honoured, at most three attempts) must succeed in the end; an
    # undocumented 5xx on the way is a failure of its own.
    triggered = bool(refused)
    retry = _phase(records, "retry")
    if triggered:
        if not retry:
            aspects["retry"].append("no retry was sent after waiting Retry-After")
        for record in retry:
            if record["status"] == 0 or (record["status"] >= 500 and record["status"] not in documented):
                aspects["retry"].append(f"retry got {_answer(record)}")
        if retry and not any(200 <= record["status"] < 300 for record in retry):
            aspects["retry"].append(f"no retry succeeded after waiting the advertised Retry-After; "
                                    f"the last got {_answer(retry[-1])}")
    else:
        notes.append(f"{protection.name} was not triggered (no {status} seen in {len(large)} large concurrent requests)")
    return Verdict("heap", aspects, triggered, notes)


def per_second(records: Sequence[dict[str, Any]], budget: RateBudget) -> dict[int, dict[str, int]]:
    """{second since the first request: {"accepted", "over_limit", "protection", "other"}} (for the chart)."""
    if not records:
        return {}
    t0 = min(r["t"] for r in records)
    protection = budget.protection.refusal.status if budget.protection else None
    buckets: dict[int, dict[str, int]] = defaultdict(lambda: {"accepted": 0, "over_limit": 0, "protection": 0, "other": 0})
    for record in records:
        status = record["status"]
        key = ("over_limit" if status == budget.over_limit.status else "protection" if status == protection
               else "other" if status == 0 or status >= 500 else "accepted")
        buckets[int(record["t"] - t0)][key] += 1
    return dict(buckets)
