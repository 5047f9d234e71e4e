"""Each check's report, as it is made (on the process that ran the check): its outcome and the
requirement its failure belongs to (a failure of a waived requirement becomes an expected failure:
conformlab.verdicts), the device exchanges of a failing check, evidence for the HTML report, the
operations it sent requests to, notices of a journal recovery; every text masked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from conformlab import journal, masking, secrets, verdicts
from conformlab.client import curl_line, render_exchange
from conformlab.plugin.collection import requirement_ids, target_of
from conformlab.plugin.fixtures import EXCHANGES, EXTRAS
from conformlab.plugin.options import is_active
from conformlab.requirements import all_requirements
from conformlab.schema import device_schema

SHOWN_EXCHANGES = 12  # the last exchanges of a failing check shown in its report
EVIDENCE_EXCHANGES = 3  # the last exchanges of a passing check kept as a requirement's evidence
# (target, requirement) that already have a passing check's exchanges as evidence, on this process (a
# target's checks all run on one process: its evidence is kept once, not for every check).
_evidenced: set[tuple[str, str]] = set()


@pytest.hookimpl(wrapper=True, tryfirst=True)  # pytest-html's wrapper is outside it: masking.py masks again later
def pytest_runtest_makereport(item, call):
    report = yield
    if not is_active(item.config):
        return report
    if report.skipped and isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        # A skip names the check it skipped (its path relative to the project), not the helper that
        # raised it (conformlab/verdicts.py) by an absolute path: in -rs, the JUnit and HTML reports.
        report.longrepr = (item.location[0], item.location[1] + 1, report.longrepr[2])
    recorded = item.stash.get(EXCHANGES, None)
    if recorded and report.failed:
        _add_exchanges(report, *recorded)
    # The check's outcome, the requirement a failure belongs to, and waivers (per requirement).
    verdicts.judge_phase(item, call, report, requirement_ids(item), target_of(item), cite=_cite)
    if call.when == "call":
        _attach_extras(item, report)
        if recorded and report.passed:
            _keep_evidence(item, report, *recorded)
        if recorded:
            _record_endpoints(item, report, *recorded)
    # Every registered secret masked in what the report carries (longrepr of any kind, sections,
    # properties, extras). Plugins that write later are masked again by conformlab.masking.
    masking.mask_report(report)
    return report


def _add_exchanges(report, client, mark) -> None:
    exchanges = client.since(mark)
    if not exchanges:
        return
    shown = exchanges[-SHOWN_EXCHANGES:]
    text = "\n\n".join(render_exchange(ex) for ex in shown)
    if len(exchanges) > len(shown):
        text = f"({len(exchanges) - len(shown)} earlier exchanges not shown)\n\n" + text
    report.sections.append(("device exchanges", text))
    report.sections.append(("reproduce the last request", curl_line(shown[-1])))


def _keep_evidence(item, report, client, mark) -> None:
    """"How do you know it works?": the first passing check of each requirement on a target keeps its
    last exchanges in its report (a text extra), and says for which requirements (property "evidence")."""
    target = target_of(item)
    name = getattr(target, "name", None)
    fresh = [rid for rid in requirement_ids(item) if name and (name, rid) not in _evidenced]
    exchanges = client.since(mark)[-EVIDENCE_EXCHANGES:]
    if not fresh or not exchanges:
        return
    _evidenced.update((name, rid) for rid in fresh)
    report.user_properties.append(("evidence", " ".join(fresh)))
    try:
        from pytest_html import extras
    except ImportError:
        return
    text = "\n\n".join(render_exchange(ex) for ex in exchanges) + "\n\nreproduce: " + curl_line(exchanges[-1])
    report.extras = [*getattr(report, "extras", []), extras.text(text, name=f"evidence of {', '.join(fresh)}")]


def _record_endpoints(item, report, client, mark) -> None:
    """Which documented operations the check sent requests to (property "endpoints", "GET /a POST /b/{id}"):
    the coverage of the annotated document (plugin/annotated.py). The emulator's controls are no operation."""
    target = target_of(item)
    if target is None:
        return
    prefix, schema = target.profile.prefix, device_schema(target.device)
    sent = {(ex.method, path[len(prefix):]) for ex in client.since(mark)
            if (path := urlsplit(ex.url).path).startswith(prefix)}
    keys = {op.key for method, path in sent if (op := schema.match(method, path)) is not None}
    if keys:
        report.user_properties.append(("endpoints", " ".join(sorted(keys))))


def _cite(rid: str) -> str:
    req = all_requirements().get(rid)
    return req.cite() if req else rid


def _attach_extras(item, report) -> None:
    try:
        from pytest_html import extras
    except ImportError:
        return
    for name, html_text, text in item.stash.get(EXTRAS, []):
        if html_text is not None:
            report.extras = [*getattr(report, "extras", []), extras.html(secrets.mask(html_text))]
        if text is not None:
            report.extras = [*getattr(report, "extras", []), extras.text(secrets.mask(text), name=name or "evidence")]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    """What a target's journal recovery put back (in the session set up with this check) goes into
    the report as notices of this check (conformlab.journal)."""
    try:
        return (yield)
    finally:
        while journal.NOTICES:
            item.user_properties.append(("notice", journal.NOTICES.pop(0)))
