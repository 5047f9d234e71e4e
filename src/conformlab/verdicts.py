"""Per-requirement verdicts: what a run says about each documented behaviour on each target.

A check verifies one or more requirements (`@pytest.mark.req("EVSE-A", "EVSE-B")`, the first one is
the check's primary requirement). Every check ends in one of these outcomes:

    passed          it ran and passed (a check that reported a notice still passed)
    failed          it failed; the failure belongs to ONE requirement: the one named by the innermost
                    `with requirement(...)` around the failing assertion, else the primary one.
                    For the check's other requirements it counts as "not verified" (the check
                    stopped before it could show them).
    waived          it failed for a requirement that the target waives: reported as an expected failure
    error           the harness or the device's reachability failed: a setup or teardown error, or the
                    check was skipped with `unreachable(...)`. Not a verdict on conformance.
    not applicable  skipped with `not_applicable(...)`: the device or target lacks the feature
    not verified    skipped with `not_verified(...)`, or any plain `pytest.skip(...)`: it could not run here

and every (target, requirement) gets exactly one verdict from the outcomes of its checks, by the
pure rule `verdict_of()`:

    FAIL            a check's failure is attributed to it (FAIL beats ERROR)
    ERROR           a check of it errored (setup/teardown/unreachable): no verdict on conformance
    PASS            every check ran and passed (not-applicable checks aside)
    PARTIAL         some checks passed, others could not run here (not verified)
    NOT APPLICABLE  every check was skipped as not applicable
    NOT VERIFIED    nothing could run here, at least one check skipped as not verified
    WAIVED          waived on the target (`waive = [...]`) and it failed
    UNEXPECTED PASS waived on the target and it would have been PASS: fails the gate, remove the waiver

A waived requirement whose verdict would be PARTIAL, NOT VERIFIED, NOT APPLICABLE or ERROR keeps it.

Exit status of a run: 1 when any requirement is FAIL or UNEXPECTED PASS (or a check tied to no
requirement failed), else NO_VERDICT (6) when any is ERROR, else 0. pytest's own 2/3/4/5 are kept.

The API for checks:

    from conformlab.verdicts import not_applicable, not_verified, unreachable, requirement, check

    if not device.has_credentials:
        not_applicable("the target has no credentials set; EVSE-AUTH-OPEN applies instead")
    with requirement("EVSE-AUTH-401"):
        assert challenge == 'Basic realm="Users"', f"401 must carry ..., got {challenge!r}"
    check("EVSE-AUTH-401", response.status_code == 401, "wrong credentials must get 401")

The category of a skip travels with its reason (a fixed tag at its start), so it survives
pytest-xdist; the outcome of a check travels as the user properties of its reports.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pytest

# -- the outcome of one check ----------------------------------------------------------------------

PASSED = "passed"
FAILED = "failed"
WAIVED_CHECK = "waived"  # failed for a requirement the target waives (an expected failure)
ERRORED = "error"
SKIPPED_NOT_APPLICABLE = "not applicable"
SKIPPED_NOT_VERIFIED = "not verified"
CHECK_KINDS = (PASSED, FAILED, WAIVED_CHECK, ERRORED, SKIPPED_NOT_APPLICABLE, SKIPPED_NOT_VERIFIED)

# The tags at the start of a skip reason that say its category. A skip without a tag is NOT VERIFIED.
NOT_APPLICABLE_TAG = "NOT APPLICABLE: "
NOT_VERIFIED_TAG = "NOT VERIFIED: "
UNREACHABLE_TAG = "UNREACHABLE: "
_TAGS = ((UNREACHABLE_TAG, ERRORED), (NOT_APPLICABLE_TAG, SKIPPED_NOT_APPLICABLE),
         (NOT_VERIFIED_TAG, SKIPPED_NOT_VERIFIED))

# -- the verdict of one requirement on one target --------------------------------------------------

PASS = "PASS"
PARTIAL = "PARTIAL"
FAIL = "FAIL"
ERROR = "ERROR"
NOT_APPLICABLE = "NOT APPLICABLE"
NOT_VERIFIED = "NOT VERIFIED"
WAIVED = "WAIVED"
UNEXPECTED_PASS = "UNEXPECTED PASS"
# Most severe first: the order of the summaries.
VERDICTS = (FAIL, UNEXPECTED_PASS, ERROR, WAIVED, PARTIAL, NOT_VERIFIED, NOT_APPLICABLE, PASS)
GATE_FAILING = frozenset({FAIL, UNEXPECTED_PASS})

NO_VERDICT = 6  # exit status: nothing failed, but some requirement could not be judged (ERROR)

# User properties of a check's reports (they reach the xdist controller and the JUnit report).
PROP_CHECK = "verdict_check"  # on the teardown report: one of CHECK_KINDS
PROP_REASON = "verdict_reason"  # on the teardown report: why the check did not pass
PROP_FAILED = "failed_requirement"  # on the failed call report and the teardown report

_ATTRIBUTE = "conformlab_requirement"
_REASON_LIMIT = 300


# -- the API for checks ---------------------------------------------------------------------------


def not_applicable(reason: str) -> None:
    """Skip the current check: the device or target lacks what it checks (no credentials set, a
    capability the board does not declare). Counted as NOT APPLICABLE, never against the device."""
    pytest.skip(NOT_APPLICABLE_TAG + reason)


def not_verified(reason: str) -> None:
    """Skip the current check: it cannot run here (destructive steps not allowed, emulator-only
    controls, a vehicle connected, an answer the document gives no form for). Counted as NOT
    VERIFIED; a plain `pytest.skip(reason)` counts the same."""
    pytest.skip(NOT_VERIFIED_TAG + reason)


def unreachable(reason: str) -> None:
    """Skip the current check because its target's device is unreachable or gone. Counted as ERROR
    (no verdict on conformance; the run exits with NO_VERDICT unless something failed)."""
    pytest.skip(UNREACHABLE_TAG + reason)


def not_verified_mark(reason: str):
    """`pytest.mark.skip` with the NOT VERIFIED tag, for collection-time skips."""
    return pytest.mark.skip(reason=NOT_VERIFIED_TAG + reason)


def not_applicable_mark(reason: str):
    """`pytest.mark.skip` with the NOT APPLICABLE tag, for collection-time skips."""
    return pytest.mark.skip(reason=NOT_APPLICABLE_TAG + reason)


@contextlib.contextmanager
def requirement(rid: str) -> Iterator[None]:
    """Attribute a failure raised inside the block (an AssertionError, `pytest.fail`, any other
    exception) to requirement `rid`. Nested blocks: the innermost wins. `rid` must be one of the
    check's `@pytest.mark.req` ids; otherwise the failure goes to the check's primary id."""
    try:
        yield
    except BaseException as exc:
        if _attributable(exc) and getattr(exc, _ATTRIBUTE, None) is None:
            try:
                setattr(exc, _ATTRIBUTE, rid)
            except (AttributeError, TypeError):
                pass
        raise


def check(rid: str, condition: object, message: str = "") -> None:
    """Fail the current check, attributed to `rid`, unless `condition` is true."""
    if not condition:
        with requirement(rid):
            raise AssertionError(message or f"{rid} is violated")


def _attributable(exc: BaseException) -> bool:
    if isinstance(exc, pytest.skip.Exception | pytest.xfail.Exception):
        return False
    return isinstance(exc, Exception | pytest.fail.Exception)


def attributed_requirement(exc: BaseException | None) -> str | None:
    """The requirement a failure was attributed to with `requirement()` (following the chain of
    exceptions it was raised from), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        rid = getattr(exc, _ATTRIBUTE, None)
        if rid:
            return rid
        exc = exc.__cause__ or exc.__context__
    return None


def classify_skip(reason: str) -> tuple[str, str]:
    """(outcome, reason without its tag) of a skip reason: its tag decides; no tag is NOT VERIFIED."""
    text = (reason or "").strip()
    if text.startswith("Skipped: "):
        text = text[len("Skipped: "):]
    for tag, kind in _TAGS:
        if text[:len(tag)].upper() == tag.upper():
            return kind, text[len(tag):].strip()
    return SKIPPED_NOT_VERIFIED, text


# -- the rule -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One check's outcome for one requirement."""

    kind: str  # one of CHECK_KINDS (WAIVED_CHECK counts as FAILED here)
    check: str = ""  # the check's node id
    reason: str = ""  # why it did not run, or the first line of its failure


@dataclass(frozen=True)
class Reason:
    """Checks of a requirement that did not pass, grouped by what happened and why."""

    kind: str
    reason: str
    checks: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    word: str  # one of VERDICTS
    waived: bool = False
    counts: dict[str, int] = field(default_factory=dict)  # outcome kind -> number of checks
    reasons: tuple[Reason, ...] = ()  # the checks that did not pass, and why

    @property
    def not_run(self) -> tuple[Reason, ...]:
        """The checks that could not run here, and why (not applicable, not verified, error)."""
        return tuple(r for r in self.reasons if r.kind != FAILED)


def verdict_of(outcomes: Iterable[Outcome | str], waived: bool = False) -> Verdict:
    """The verdict of one requirement on one target from the outcomes of its checks (an Outcome
    or just its kind) and whether the target waives it. Pure: no pytest involved."""
    items = [o if isinstance(o, Outcome) else Outcome(str(o)) for o in outcomes]
    items = [Outcome(FAILED, o.check, o.reason) if o.kind == WAIVED_CHECK else o for o in items]
    unknown = {o.kind for o in items} - set(CHECK_KINDS)
    if unknown:
        raise ValueError(f"unknown check outcome {sorted(unknown)}; expected one of {CHECK_KINDS}")
    counts: dict[str, int] = {}
    for o in items:
        counts[o.kind] = counts.get(o.kind, 0) + 1
    kinds = set(counts)
    if not items:
        return Verdict(NOT_VERIFIED, waived, counts, (Reason(SKIPPED_NOT_VERIFIED, "no check of it ran", ()),))
    if FAILED in kinds:
        word = WAIVED if waived else FAIL
    elif ERRORED in kinds:
        word = ERROR
    elif SKIPPED_NOT_VERIFIED in kinds:
        word = PARTIAL if PASSED in kinds else NOT_VERIFIED
    elif PASSED in kinds:
        word = UNEXPECTED_PASS if waived else PASS
    else:
        word = NOT_APPLICABLE
    return Verdict(word, waived, counts, _group(items))


def _group(items: list[Outcome]) -> tuple[Reason, ...]:
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    order = {kind: n for n, kind in enumerate((FAILED, ERRORED, SKIPPED_NOT_VERIFIED, SKIPPED_NOT_APPLICABLE))}
    for o in items:
        if o.kind != PASSED:
            groups[(o.kind, o.reason)].append(o.check)
    ordered = sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 9), -len(kv[1])))
    return tuple(Reason(kind, reason, tuple(checks)) for (kind, reason), checks in ordered)


def exit_status(verdicts: Iterable[str], plain: Iterable[str] = (), pytest_status: int = 0) -> int:
    """The run's exit status from the requirement verdicts and the outcomes of checks tied to no
    requirement: 1 for a conformance failure, NO_VERDICT for an error, else 0. Only pytest's own
    0 and 1 are replaced (2 interrupted, 3 internal error, 4 usage, 5 no tests stay)."""
    if pytest_status not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return pytest_status
    words, plain = set(verdicts), set(plain)
    if words & GATE_FAILING or plain & {FAILED}:
        return pytest.ExitCode.TESTS_FAILED
    if ERROR in words or ERRORED in plain:
        return NO_VERDICT
    # pytest counted a failure that none of the above explains: never report success for it.
    return pytest_status


# -- while a check runs (on the worker): the plugin's makereport wrapper calls this ---------------

_PHASES = pytest.StashKey[list]()


def judge_phase(item, call, report, ids: list[str], target, cite=lambda rid: rid) -> None:
    """Note what this phase of a check says; attribute a failure to one requirement; turn a failure
    of a requirement the target waives into an expected failure; and on the teardown report record
    the check's outcome (PROP_CHECK, PROP_REASON) for the controller and the JUnit report.

    `ids`: the check's requirement ids (primary first); `target`: its Target or None; `cite(rid)`:
    the text a waiver quotes."""
    phases = item.stash.setdefault(_PHASES, [])
    if call.when == "setup":
        phases.clear()
    kind, reason = _phase_outcome(call, report)
    if kind == FAILED:
        rid = attributed_requirement(call.excinfo.value if call.excinfo else None)
        if rid not in ids:
            if rid:
                report.sections.append(("requirement", f"the failure names {rid}, which the check does not declare "
                                                       f"(@pytest.mark.req); it is attributed to {ids[0] if ids else 'no requirement'}"))
            rid = ids[0] if ids else None
        if rid:
            item.user_properties.append((PROP_FAILED, rid))
            report.user_properties.append((PROP_FAILED, rid))
            if target is not None and rid in target.waive:
                report.outcome = "skipped"
                waiver = target.waiver(rid) if hasattr(target, "waiver") else None
                said = f" ({waiver.describe()})" if waiver is not None and (waiver.reason or waiver.until) else ""
                report.wasxfail = f"waived on target {target.name}{said}: {cite(rid)}"
                kind = WAIVED_CHECK
    if kind is not None:
        phases.append((kind, reason))
    if call.when == "teardown":
        kind, reason = _check_outcome(phases)
        report.user_properties.append((PROP_CHECK, kind))
        if reason:
            report.user_properties.append((PROP_REASON, reason))


def _phase_outcome(call, report) -> tuple[str | None, str]:
    excinfo = call.excinfo
    if report.failed:
        if call.when == "call" and not _exchange_failed(excinfo):
            return FAILED, _first_line(excinfo)
        return ERRORED, f"{call.when} error: {_first_line(excinfo)}"
    if report.skipped:
        if hasattr(report, "wasxfail"):  # pytest's own xfail (waivers are handled above)
            return SKIPPED_NOT_VERIFIED, f"expected to fail: {report.wasxfail}"
        if excinfo is not None and isinstance(excinfo.value, pytest.skip.Exception):
            return classify_skip(excinfo.value.msg or "")
        longrepr = report.longrepr
        return classify_skip(longrepr[2] if isinstance(longrepr, tuple | list) and len(longrepr) == 3 else str(longrepr))
    if call.when == "call":
        return PASSED, ""
    return None, ""


def _exchange_failed(excinfo) -> bool:
    """The exchange with the device failed (no complete answer in time, an answer past the size
    limit, a connection that broke, the device gone or away twice): no sentence of a document is
    judged by that, so it is no verdict on the device (ERROR), never a FAIL."""
    from conformlab.client import DeviceError

    return excinfo is not None and isinstance(excinfo.value, DeviceError)


def _first_line(excinfo) -> str:
    if excinfo is None:
        return ""
    value = excinfo.value
    if isinstance(value, pytest.fail.Exception):
        text = value.msg or ""
    else:
        text = excinfo.exconly()
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[0] if lines else type(value).__name__
    return line if len(line) <= _REASON_LIMIT else line[:_REASON_LIMIT - 3] + "..."


def _check_outcome(phases: list[tuple[str, str]]) -> tuple[str, str]:
    for wanted in (FAILED, WAIVED_CHECK, ERRORED, SKIPPED_NOT_APPLICABLE, SKIPPED_NOT_VERIFIED, PASSED):
        for kind, reason in phases:
            if kind == wanted:
                return kind, reason
    return SKIPPED_NOT_VERIFIED, "the check did not run"


def gate_failed(status: int) -> int:
    """The exit status once a gate outside the verdicts failed (an expired waiver, a regression
    against a baseline): 1 where the verdicts gave 0 or NO_VERDICT (a failure outranks an error);
    pytest's own 2 (interrupted), 3, 4 and 5 are kept."""
    return int(pytest.ExitCode.TESTS_FAILED) if status in (pytest.ExitCode.OK, NO_VERDICT) else status


# -- after the run (on the controller): the book of every check's outcome -------------------------


@dataclass(frozen=True)
class Row:
    target: str
    rid: str
    verdict: Verdict


class VerdictBook:
    """Collects the outcome of every check (from the teardown reports, also under xdist) and gives
    one verdict per (target, requirement)."""

    def __init__(self, waivers: dict[str, Iterable[str]]):
        self.waivers = {name: set(ids) for name, ids in waivers.items()}  # target -> waived requirement ids
        self.outcomes: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
        self.plain: list[Outcome] = []  # checks tied to no target or requirement

    def add(self, report) -> None:
        if report.when not in ("setup", "call", "teardown"):
            if report.failed:  # e.g. xdist's report of a crashed worker: no check outcome travels with it
                self.plain.append(Outcome(ERRORED, report.nodeid, "the worker running the check crashed"))
            return
        if report.when != "teardown":
            return
        props: dict[str, list] = defaultdict(list)
        for key, value in getattr(report, "user_properties", []):
            props[key].append(value)
        if not props.get(PROP_CHECK):
            return
        kind, reason = str(props[PROP_CHECK][-1]), str((props.get(PROP_REASON) or [""])[-1])
        target = str((props.get("target") or [""])[0])
        ids = " ".join(str(v) for v in props.get("requirement", [])).split()
        if not target or not ids:
            self.plain.append(Outcome(FAILED if kind == WAIVED_CHECK else kind, report.nodeid, reason))
            return
        failed = str((props.get(PROP_FAILED) or [ids[0]])[-1])
        for rid in dict.fromkeys(ids):
            if kind in (FAILED, WAIVED_CHECK) and rid != failed:
                self.outcomes[(target, rid)].append(
                    Outcome(SKIPPED_NOT_VERIFIED, report.nodeid, f"not reached: the check failed on {failed}"))
            else:
                self.outcomes[(target, rid)].append(Outcome(kind, report.nodeid, reason))

    def rows(self) -> list[Row]:
        return [Row(target, rid, verdict_of(outcomes, rid in self.waivers.get(target, ())))
                for (target, rid), outcomes in sorted(self.outcomes.items())]

    def exit_status(self, pytest_status: int) -> int:
        return exit_status((row.verdict.word for row in self.rows()), (o.kind for o in self.plain), pytest_status)
