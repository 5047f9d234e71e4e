"""The per-requirement verdict rule (conformlab.verdicts), without pytest runs.

`verdict_of` is the pure rule; `run_check` below plays one check through the plugin's per-phase step
(`judge_phase`, as the makereport hook calls it) and the controller's `VerdictBook`, so attribution,
waivers and errors are shown as a run sees them.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from _pytest.reports import TestReport
from _pytest.runner import CallInfo

from conformlab import verdicts as v
from conformlab.verdicts import (
    ERROR, ERRORED, FAIL, FAILED, NO_VERDICT, NOT_APPLICABLE, NOT_VERIFIED, PARTIAL, PASS, PASSED,
    SKIPPED_NOT_APPLICABLE, SKIPPED_NOT_VERIFIED, UNEXPECTED_PASS, WAIVED, Outcome, VerdictBook, verdict_of,
)

LAB = SimpleNamespace(name="lab", waive=("EVSE-B",))  # what judge_phase needs of a Target


# -- the rule: one test per verdict word -----------------------------------------------------------


def test_pass_every_check_ran_and_passed():
    assert verdict_of([PASSED, PASSED]).word == PASS


def test_partial_some_passed_others_not_verified():
    verdict = verdict_of([Outcome(PASSED, "t1"), Outcome(SKIPPED_NOT_VERIFIED, "t2", "a vehicle is connected")])
    assert verdict.word == PARTIAL
    assert [(r.kind, r.reason, r.checks) for r in verdict.not_run] == [(SKIPPED_NOT_VERIFIED, "a vehicle is connected", ("t2",))]


def test_fail_a_failure_is_attributed():
    assert verdict_of([PASSED, FAILED, SKIPPED_NOT_VERIFIED]).word == FAIL


def test_error_the_harness_or_reachability_failed():
    verdict = verdict_of([PASSED, Outcome(ERRORED, "t2", "setup error: cannot connect")])
    assert verdict.word == ERROR
    assert verdict.not_run[0].reason == "setup error: cannot connect"


def test_not_applicable_every_check_skipped_as_not_applicable():
    assert verdict_of([SKIPPED_NOT_APPLICABLE, SKIPPED_NOT_APPLICABLE]).word == NOT_APPLICABLE


def test_not_verified_nothing_could_run_here():
    assert verdict_of([SKIPPED_NOT_VERIFIED]).word == NOT_VERIFIED
    assert verdict_of([]).word == NOT_VERIFIED


def test_waived_a_waived_requirement_that_failed():
    verdict = verdict_of([PASSED, FAILED], waived=True)
    assert verdict.word == WAIVED and verdict.waived


def test_unexpected_pass_a_waived_requirement_that_passed():
    assert verdict_of([PASSED, PASSED], waived=True).word == UNEXPECTED_PASS
    assert verdict_of([PASSED, SKIPPED_NOT_APPLICABLE], waived=True).word == UNEXPECTED_PASS


# -- the rule: the finer points --------------------------------------------------------------------


def test_passed_and_not_applicable_is_pass():
    assert verdict_of([PASSED, SKIPPED_NOT_APPLICABLE]).word == PASS


def test_not_applicable_and_not_verified_is_not_verified():
    assert verdict_of([SKIPPED_NOT_APPLICABLE, SKIPPED_NOT_VERIFIED]).word == NOT_VERIFIED


def test_mixed_passed_and_not_verified_is_partial_also_with_not_applicable():
    assert verdict_of([PASSED, SKIPPED_NOT_VERIFIED, SKIPPED_NOT_APPLICABLE]).word == PARTIAL


def test_fail_beats_error():
    assert verdict_of([ERRORED, FAILED, PASSED]).word == FAIL
    assert verdict_of([ERRORED, FAILED], waived=True).word == WAIVED


@pytest.mark.parametrize("outcomes, word", [
    ([PASSED, SKIPPED_NOT_VERIFIED], PARTIAL),
    ([SKIPPED_NOT_VERIFIED], NOT_VERIFIED),
    ([SKIPPED_NOT_APPLICABLE], NOT_APPLICABLE),
    ([PASSED, ERRORED], ERROR),
])
def test_a_waived_requirement_that_did_not_fail_or_pass_keeps_its_verdict(outcomes, word):
    verdict = verdict_of(outcomes, waived=True)
    assert verdict.word == word and verdict.waived


def test_reasons_group_the_checks_that_did_not_run_by_why():
    verdict = verdict_of([Outcome(PASSED, "a"), Outcome(SKIPPED_NOT_VERIFIED, "b", "destructive"),
                          Outcome(SKIPPED_NOT_VERIFIED, "c", "destructive"), Outcome(SKIPPED_NOT_APPLICABLE, "d", "no port")])
    assert verdict.word == PARTIAL
    assert [(r.kind, r.reason, r.checks) for r in verdict.reasons] == [
        (SKIPPED_NOT_VERIFIED, "destructive", ("b", "c")), (SKIPPED_NOT_APPLICABLE, "no port", ("d",))]
    assert verdict.counts == {PASSED: 1, SKIPPED_NOT_VERIFIED: 2, SKIPPED_NOT_APPLICABLE: 1}


def test_an_unknown_outcome_is_refused():
    with pytest.raises(ValueError):
        verdict_of(["skipped"])


@pytest.mark.parametrize("reason, kind, text", [
    ("NOT APPLICABLE: no serial ports", SKIPPED_NOT_APPLICABLE, "no serial ports"),
    ("NOT VERIFIED: destructive", SKIPPED_NOT_VERIFIED, "destructive"),
    ("UNREACHABLE: device gone", ERRORED, "device gone"),
    ("a plain pytest.skip", SKIPPED_NOT_VERIFIED, "a plain pytest.skip"),
    ("Skipped: NOT APPLICABLE: from a report's longrepr", SKIPPED_NOT_APPLICABLE, "from a report's longrepr"),
])
def test_the_tag_of_a_skip_reason_says_its_category(reason, kind, text):
    assert v.classify_skip(reason) == (kind, text)


# -- exit status -----------------------------------------------------------------------------------


@pytest.mark.parametrize("words, plain, pytest_status, expected", [
    ([PASS, PARTIAL, NOT_VERIFIED, NOT_APPLICABLE, WAIVED], [], 0, 0),
    ([PASS, FAIL], [], 1, 1),
    ([PASS, UNEXPECTED_PASS], [], 0, 1),
    ([PASS, ERROR], [], 1, NO_VERDICT),
    ([PASS, ERROR], [], 0, NO_VERDICT),
    ([ERROR, FAIL], [], 1, 1),
    ([PASS], [FAILED], 1, 1),  # a check tied to no requirement failed
    ([PASS], [ERRORED], 1, NO_VERDICT),
    ([PASS], [], 1, 1),  # pytest counted a failure nothing explains: never success
    ([FAIL], [], 2, 2),  # interrupted, usage error, no tests: pytest's own codes stay
    ([ERROR], [], 4, 4),
    ([], [], 5, 5),
])
def test_exit_status(words, plain, pytest_status, expected):
    assert v.exit_status(words, plain, pytest_status) == expected


# -- a check as a run sees it: attribution, waivers, errors ----------------------------------------


def _report(item, call, nodeid):
    excinfo = call.excinfo
    if excinfo is None:
        outcome, longrepr = "passed", None
    elif isinstance(excinfo.value, pytest.skip.Exception):
        outcome, longrepr = "skipped", ("check.py", 1, "Skipped: " + excinfo.value.msg)
    else:
        outcome, longrepr = "failed", excinfo.exconly()
    return TestReport(nodeid, ("check.py", 1, nodeid), {}, outcome, longrepr, call.when,
                      user_properties=list(item.user_properties))


def run_check(ids, body=None, *, setup=None, teardown=None, target=LAB, nodeid="check.py::test_x"):
    """The reports of one check whose phases run the given functions, through judge_phase."""
    item = SimpleNamespace(stash=pytest.Stash(), user_properties=[("requirement", " ".join(ids))])
    if target is not None:
        item.user_properties.append(("target", target.name))
    reports = []
    for when, func in (("setup", setup), ("call", body), ("teardown", teardown)):
        if when == "call" and not reports[-1].passed:
            continue  # pytest does not call a check whose setup failed or skipped
        call = CallInfo.from_call(func or (lambda: None), when)
        report = _report(item, call, nodeid)
        v.judge_phase(item, call, report, list(ids), target)
        reports.append(report)
    return reports


def verdicts_of(*checks, waivers=None):
    book = VerdictBook(waivers if waivers is not None else {LAB.name: LAB.waive})
    for reports in checks:
        for report in reports:
            book.add(report)
    return {row.rid: row.verdict.word for row in book.rows()}


def fail(message="boom"):
    def body():
        raise AssertionError(message)
    return body


def attributed(rid, message="boom"):
    def body():
        with v.requirement(rid):
            raise AssertionError(message)
    return body


def props(report) -> dict:
    return dict(report.user_properties)


def test_failure_attributed_to_the_requirement_whose_assertion_failed():
    reports = run_check(["EVSE-A", "EVSE-C"], attributed("EVSE-C"))
    call = reports[1]
    assert call.failed and props(call)[v.PROP_FAILED] == "EVSE-C"
    assert props(reports[-1])[v.PROP_CHECK] == FAILED
    assert verdicts_of(reports) == {"EVSE-A": NOT_VERIFIED, "EVSE-C": FAIL}, "not every id of the check fails"


def test_unattributed_failure_goes_to_the_primary_id():
    reports = run_check(["EVSE-A", "EVSE-C"], fail())
    assert props(reports[1])[v.PROP_FAILED] == "EVSE-A"
    assert verdicts_of(reports) == {"EVSE-A": FAIL, "EVSE-C": NOT_VERIFIED}


def test_innermost_requirement_wins_and_pytest_fail_is_attributed():
    def body():
        with v.requirement("EVSE-A"), v.requirement("EVSE-C"):
            pytest.fail("not as documented")
    assert verdicts_of(run_check(["EVSE-A", "EVSE-C"], body)) == {"EVSE-A": NOT_VERIFIED, "EVSE-C": FAIL}


def test_check_function_attributes_its_failure():
    reports = run_check(["EVSE-A", "EVSE-C"], lambda: v.check("EVSE-C", 1 + 1 == 3, "arithmetic"))
    assert "arithmetic" in str(reports[1].longrepr)
    assert verdicts_of(reports) == {"EVSE-A": NOT_VERIFIED, "EVSE-C": FAIL}
    assert verdicts_of(run_check(["EVSE-C"], lambda: v.check("EVSE-C", True, "fine"))) == {"EVSE-C": PASS}


def test_attribution_to_an_undeclared_requirement_goes_to_the_primary_id():
    reports = run_check(["EVSE-A", "EVSE-C"], attributed("EVSE-Z"))
    assert verdicts_of(reports) == {"EVSE-A": FAIL, "EVSE-C": NOT_VERIFIED}
    assert any("EVSE-Z" in text for _, text in reports[1].sections)


def test_a_skip_inside_a_requirement_block_stays_a_skip():
    def body():
        with v.requirement("EVSE-C"):
            v.not_applicable("no display")
    assert verdicts_of(run_check(["EVSE-C"], body)) == {"EVSE-C": NOT_APPLICABLE}


def test_waiver_affects_only_its_own_requirement():
    # EVSE-B is waived on LAB. A failure attributed to EVSE-B is an expected failure ...
    waived = run_check(["EVSE-A", "EVSE-B"], attributed("EVSE-B"), nodeid="check.py::test_waived")
    assert waived[1].skipped and waived[1].wasxfail.startswith("waived on target lab: EVSE-B")
    assert props(waived[-1])[v.PROP_CHECK] == v.WAIVED_CHECK
    # ... a failure of the same check attributed to EVSE-A stays a failure, although EVSE-B is waived.
    failing = run_check(["EVSE-A", "EVSE-B"], attributed("EVSE-A"), nodeid="check.py::test_failing")
    assert failing[1].failed and not hasattr(failing[1], "wasxfail")
    passing = run_check(["EVSE-A"], nodeid="check.py::test_passing")
    assert verdicts_of(waived, failing, passing) == {"EVSE-A": FAIL, "EVSE-B": WAIVED}
    assert verdicts_of(waived, passing) == {"EVSE-A": PARTIAL, "EVSE-B": WAIVED}
    # Another target does not waive it.
    other = run_check(["EVSE-A", "EVSE-B"], attributed("EVSE-B"), target=SimpleNamespace(name="other", waive=()))
    assert other[1].failed
    assert verdicts_of(other, waivers={"other": ()}) == {"EVSE-A": NOT_VERIFIED, "EVSE-B": FAIL}


def test_setup_error_is_error_not_fail():
    def setup():
        raise AssertionError("target lab: cannot connect (is the device on and reachable?)")
    reports = run_check(["EVSE-A", "EVSE-C"], fail(), setup=setup)
    assert len(reports) == 2 and reports[0].failed
    assert props(reports[-1])[v.PROP_CHECK] == ERRORED
    assert "cannot connect" in props(reports[-1])[v.PROP_REASON]
    assert verdicts_of(reports) == {"EVSE-A": ERROR, "EVSE-C": ERROR}


def test_teardown_error_is_error():
    def teardown():
        raise RuntimeError("could not put the old value back")
    assert verdicts_of(run_check(["EVSE-A"], teardown=teardown)) == {"EVSE-A": ERROR}


def test_unreachable_skip_is_error_and_a_plain_skip_not_verified():
    gone = run_check(["EVSE-A"], lambda: v.unreachable("did not come back within 120 s"), nodeid="check.py::test_gone")
    plain = run_check(["EVSE-C"], lambda: pytest.skip("the board declares no serial ports"), nodeid="check.py::test_plain")
    assert verdicts_of(gone, plain) == {"EVSE-A": ERROR, "EVSE-C": NOT_VERIFIED}
    assert props(gone[-1])[v.PROP_REASON] == "did not come back within 120 s"


def test_mixed_passed_and_not_verified_checks_are_partial():
    passed = run_check(["EVSE-A"], nodeid="check.py::test_one")
    skipped = run_check(["EVSE-A"], lambda: v.not_verified("a vehicle is connected"), nodeid="check.py::test_two")
    na = run_check(["EVSE-A"], lambda: v.not_applicable("no display"), nodeid="check.py::test_three")
    assert verdicts_of(passed, skipped, na) == {"EVSE-A": PARTIAL}
    assert verdicts_of(passed, na) == {"EVSE-A": PASS}


def test_a_failed_check_tied_to_no_requirement_still_fails_the_gate():
    book = VerdictBook({})
    for report in run_check([], fail(), target=None):
        book.add(report)
    assert book.rows() == [] and book.exit_status(1) == 1
