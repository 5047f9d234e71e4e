"""The rate limit and heap-style protection under load: the locustfiles in load/, run through
locust's library API in a process of their own (conformlab.load.run_scenario), judged aspect by
aspect. For every device with a documented rate budget: the budget, the answers judged, the requests
sent and the requirement IDs all come from the device's profile (conformlab.profiles, RateBudget);
a target whose device has none gets no load checks.

These checks spend the device's whole budget on purpose. Each scenario runs once per target (the
first aspect that needs it starts it; the others read its result), from a fresh budget: the client
stays silent for a full window before it, and after it the budget refills before anything else is
sent to the target. The locust statistics, a chart of accepted and rejected requests per second and
a link to locust's own report go into the HTML report of the scenario's first aspect.
"""

from __future__ import annotations

import datetime
import html
import time

import pytest

from conformlab.load import ScenarioError, ScenarioResult, not_applicable_because, run_scenario
from conformlab.profiles import RateBudget
from conformlab.schema import project_root
from conformlab.verdicts import not_applicable, not_verified

LOOPBACK_SOURCES = ["127.0.0.2", "127.0.0.3"]  # emulator targets: two clients on loopback
SCENARIO_TIMEOUT = 160  # seconds, and two windows more; a scenario takes about a window and 15 s

_results: dict[tuple[str, str], ScenarioResult | ScenarioError] = {}


def source_addresses(device) -> list[str]:
    return LOOPBACK_SOURCES if device.target.emulator else list(device.target.options.get("source_addresses", []))


def budget_for(device, name: str) -> RateBudget:
    """The target's budget, when its profile can drive scenario `name`; else the check is not applicable."""
    reason = not_applicable_because(device.profile.name, name)
    if reason:
        not_applicable(f"no {name} load scenario: {reason}")
    return device.profile.rate_budget


def scenario(device, name: str) -> tuple[ScenarioResult, bool]:
    """The scenario's result for this target, and whether this call ran it."""
    key = (device.target.name, name)
    if key in _results:
        if isinstance(_results[key], ScenarioError):
            raise _results[key]  # ran once for this target; not again for each aspect
        return _results[key], False
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = project_root() / "reports" / "load" / f"{device.target.name}-{name}-{stamp}"
    pacer = device.client.pacer
    started = time.monotonic()
    last_request_at = time.time()
    try:
        pacer.refill()  # a fresh budget: a full window without a request of ours
        result = run_scenario(name, device.client.base_url, device=device.profile.name, credentials=device.credentials,
                              source_addresses=source_addresses(device), out_dir=out_dir,
                              timeout=SCENARIO_TIMEOUT + 2 * device.profile.rate_budget.seconds)
        last_request_at = result.last_request_at
    except ScenarioError as error:
        _results[key] = error
        last_request_at = time.time()  # a scenario that broke off may have spent the budget until now
        raise
    finally:
        pacer.refill(last_request_at=last_request_at)  # the budget refills before anything else is sent
        device.load_seconds += time.monotonic() - started
    _results[key] = result
    return result, True


def attach_evidence(report_extra, result: ScenarioResult) -> None:
    # The report is one file to mail: the chart and the statistics are in it; locust's own report (about
    # 1 MB of script each) stays beside it, named by its path in the project, never linked by a local URL.
    try:
        kept = result.html_report.resolve().relative_to(project_root()).as_posix()
    except ValueError:
        kept = result.html_report.name
    report_extra(html=f'<div><b>{html.escape(result.name)}</b>: {result.requests_sent} requests in '
                      f'{result.wall_seconds:.0f} s; locust\'s own report: <code>{html.escape(kept)}</code></div>'
                      f'{result.chart_svg}')
    report_extra(text=result.verdict_text + "\n\n" + result.stats_text, name=f"locust statistics ({result.name})")


def scenario_with_evidence(device, report_extra, name: str) -> ScenarioResult:
    """The scenario's result; the check that ran it carries its statistics and chart in the report."""
    result, ran = scenario(device, name)
    if ran:
        attach_evidence(report_extra, result)
    return result


def assert_aspect(result: ScenarioResult, aspect: str) -> None:
    problems = result.verdicts[aspect]
    assert not problems, f"{result.name} scenario, {aspect}:\n" + "\n".join(problems)


def rate_aspects(profile) -> list:
    """Each aspect of the rate scenario, with the requirement whose sentence it checks."""
    if not_applicable_because(profile.name, "rate_limit"):
        return []
    budget = profile.rate_budget
    over = budget.over_limit
    return [
        pytest.param("first_window", marks=pytest.mark.req(budget.requirement),
                     id=f"first-window-exactly-{budget.requests}"),
        pytest.param("every_window", marks=pytest.mark.req(budget.requirement), id=f"no-window-over-{budget.requests}"),
        pytest.param("rejections", marks=pytest.mark.req(over.requirement),
                     id=f"rejections-are-the-documented-{over.status}"),
        pytest.param("shared_budget", marks=pytest.mark.req(budget.shared_requirement), id="clients-share-one-budget"),
        pytest.param("recovery", marks=pytest.mark.req(budget.retry_requirement), id="served-again-after-retry-after"),
    ]


@pytest.mark.per_target("aspect", lambda target: rate_aspects(target.profile))
def test_rate_limit_under_load(device, report_extra, aspect):
    budget = budget_for(device, "rate_limit")
    if aspect == "shared_budget" and len(source_addresses(device)) < 2:
        not_applicable("needs two client addresses: set source_addresses in the target (addresses of this host the lab routes)")
    result = scenario_with_evidence(device, report_extra, "rate_limit")
    assert_aspect(result, aspect)
    if aspect == "rejections":
        assert result.triggered, (f"the load never drew a {budget.over_limit.status}: the device accepted more than "
                                  f"{budget.requests} requests per {budget.seconds:g} s")


def heap_aspects(profile) -> list:
    """Each aspect of the heap scenario, with the requirement whose sentence it checks."""
    if not_applicable_because(profile.name, "heap"):
        return []
    protection = profile.rate_budget.protection
    refusal, stable = protection.refusal, protection.requirement
    return [
        pytest.param("only_documented_5xx", marks=pytest.mark.req(refusal.requirement),
                     id=f"no-5xx-but-the-documented-{refusal.status}"),
        pytest.param("rejections", marks=pytest.mark.req(refusal.requirement),
                     id=f"rejections-are-the-documented-{refusal.status}"),
        pytest.param("health_check", marks=pytest.mark.req(stable), id="health-check-answers-throughout"),
        pytest.param("retry", marks=pytest.mark.req(stable), id="retry-after-the-delay-succeeds"),
    ]


@pytest.mark.per_target("aspect", lambda target: heap_aspects(target.profile))
def test_heap_protection_under_load(device, report_extra, notice, aspect):
    protection = budget_for(device, "heap").protection
    status = protection.refusal.status
    result = scenario_with_evidence(device, report_extra, "heap")
    if not result.triggered and aspect in ("rejections", "retry"):
        if device.target.emulator:
            pytest.fail(f"{protection.name} was not triggered: the emulator's concurrent large answers must make it refuse "
                        f"(when {protection.condition}; no {status} seen)")
        if aspect == "rejections":
            notice(f"{protection.name} was not triggered: concurrent requests for the largest answers never drew a "
                   f"{status}, so the {status} answer and the retry after it are unverified on this device")
        not_verified(f"{protection.name} was not triggered on this device (no {status} under concurrent requests for the "
                     "largest answers)")
    assert_aspect(result, aspect)
