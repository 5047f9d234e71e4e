"""What a run tells its reader outside the HTML report: the terminal summary, the JUnit report's
verdict properties and the exit status, all from the per-requirement verdicts (conformlab.verdicts).

Registered by the plugin on every process of an active run ("conformlab-reporting"); the verdicts,
the JUnit properties and the exit status are the controller's. Every text added here passes through
`secrets.mask`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from xml.etree import ElementTree

import pytest

from conformlab import secrets
from conformlab.plugin.parallel import is_controller
from conformlab.requirements import Reading, Requirement, all_requirements
from conformlab.verdicts import ERROR, ERRORED, FAIL, NO_VERDICT, PASS, UNEXPECTED_PASS, VERDICTS, WAIVED, Row, VerdictBook, gate_failed

# Properties a check records for the run's summary (terminal and top of the HTML report), by title.
SUMMARY_NOTES = {"security_finding": "SECURITY FINDINGS", "notice": "notices", "pacing": "rate budget"}
TERMINAL_REASONS = 4  # distinct reasons per requirement in the terminal (the HTML report has them all)
XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'  # as pytest's junitxml writes it


def properties(report) -> dict:
    """A report's user properties: name -> the values recorded under it."""
    props = defaultdict(list)
    for key, value in getattr(report, "user_properties", []):
        props[key].append(value)
    return props


def check_names(checks, limit: int) -> str:
    shown = ", ".join(nodeid.rsplit("::", 1)[-1] for nodeid in checks[:limit])
    return shown + (f" and {len(checks) - limit} more" if len(checks) > limit else "")


def stale_line(row: Row) -> str:
    return f"{row.target}: {row.rid} is waived but every check of it passed; remove the waiver"


def expired_line(target, waiver) -> str:
    why = f" ({waiver.reason})" if waiver.reason else ""
    return (f"{target.name}: the waiver of {waiver.id}{why} expired on {waiver.until.isoformat()}: it waives nothing; "
            "remove it or renew it")


class Reporting:
    """Per-requirement verdicts, security findings, notices and unexpected passes, for the terminal,
    the JUnit report and the gate."""

    def __init__(self, config, targets):
        self.config = config
        self.targets = {t.name: t for t in targets}
        self.book = VerdictBook({t.name: t.waive for t in targets})  # the waivers in force (not expired)
        self.notes: dict[str, list[tuple[str, str, str]]] = defaultdict(list)  # kind -> (target, nodeid, text)
        self.status: int | None = None  # the exit status the verdicts give (controller, at the end)
        # (target, requirement) -> the readings the device was seen to follow, where the vendor's pages
        # disagree (DeviceUnderTest.follows), and the firmware-dependent rules its checks judged by.
        self.followed: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.rules: dict[tuple[str, str], list[str]] = defaultdict(list)

    @property
    def findings(self) -> list[tuple[str, str, str]]:
        return self.notes["security_finding"]

    @property
    def stale(self) -> list[str]:
        """The waivers to remove: "<target>: <id> is waived but every check of it passed; ..."."""
        return [stale_line(row) for row in self.book.rows() if row.verdict.word == UNEXPECTED_PASS]

    @property
    def expired(self) -> list[str]:
        """The waivers past their date: each fails the run until it is removed or renewed."""
        return [expired_line(t, w) for t in self.targets.values() for w in t.expired_waivers]

    def waiver_text(self, row: Row) -> str:
        """What the target's waiver of a waived requirement says ("waived: <reason>; until <date>")."""
        target = self.targets.get(row.target)
        waiver = target.waiver(row.rid) if target is not None and row.verdict.waived else None
        return waiver.describe() if waiver else ""

    def requirement_rows(self) -> list[Row]:
        return self.book.rows()

    def conflict_rows(self) -> list[tuple[Row, Requirement, list[Reading]]]:
        """The CONFLICT entries: each (target, requirement) on which the vendor's pages disagree, with
        the requirement and the readings the device was seen to follow (none: no check could tell)."""
        known = all_requirements()
        found = []
        for row in self.book.rows():
            req = known.get(row.rid)
            if req is not None and req.conflict:
                followed = [r for r in req.conflict if r.name in self.followed.get((row.target, row.rid), ())]
                found.append((row, req, followed))
        return found

    def conflict_line(self, row: Row, followed: list[Reading]) -> str:
        said = " and ".join(f"{r.name} ({r.source})" for r in followed)
        return (f"CONFLICT {row.target}  {row.rid}: "
                + (f"the device follows {said}" if followed else f"no reading seen ({row.verdict.word})"))

    def pytest_runtest_logreport(self, report):
        if report.when == "call":  # the teardown report carries the same properties again
            props = properties(report)
            target = props.get("target", ["?"])[0]
            for kind in SUMMARY_NOTES:
                for text in props.get(kind, []):
                    # The same words from several parametrizations of a check are said once.
                    if not any(t == target and said == text for t, _, said in self.notes[kind]):
                        self.notes[kind].append((target, report.nodeid, text))
            for value in props.get("follows", []):
                rid, _, reading = str(value).partition(" ")
                self.followed[(target, rid)].add(reading)
            for rid in " ".join(props.get("requirement", [])).split():
                for rule in props.get("firmware_rule", []):
                    if rule not in self.rules[(target, rid)]:
                        self.rules[(target, rid)].append(rule)
        self.book.add(report)

    @pytest.hookimpl(wrapper=True, tryfirst=True)  # around junitxml and pytest-html writing their files
    def pytest_sessionfinish(self, session):
        if not is_controller(self.config):
            return (yield)
        self.status = self.book.exit_status(session.exitstatus)
        if self.expired:
            self.status = gate_failed(self.status)  # an expired waiver fails the gate, as a stale one does
        session.exitstatus = self.status
        result = yield
        self._add_verdicts_to_junit()  # before conformlab.masking's wrapper (outside this one) masks the file
        return result

    def _add_verdicts_to_junit(self) -> None:
        """Each requirement's verdict as a global <property> of the JUnit report junitxml wrote: its
        public way, the record_testsuite_property fixture, is gone by the time the verdicts are known."""
        option = self.config.getoption("xmlpath", None)
        rows = self.book.rows()
        if not rows or not option or not self.config.pluginmanager.hasplugin("junitxml"):
            return
        path = Path(os.path.abspath(os.path.expanduser(os.path.expandvars(option))))  # as junitxml reads it
        if not path.is_file():
            return
        root = ElementTree.parse(path).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        found = suite.find("properties")  # the suite's own, before its test cases
        if found is None:
            found = ElementTree.Element("properties")
            suite.insert(0, found)
        for row in rows:
            found.append(ElementTree.Element("property", name=secrets.mask(f"verdict {row.target} {row.rid}"),
                                             value=row.verdict.word))
        path.write_text(XML_DECLARATION + ElementTree.tostring(root, encoding="unicode"), encoding="utf-8")

    def pytest_terminal_summary(self, terminalreporter):
        tr = terminalreporter
        rows = self.book.rows()
        known = all_requirements()
        if rows:
            tr.write_sep("=", "requirements")
            severity = {word: n for n, word in enumerate(VERDICTS)}
            said: set[tuple[str, str]] = set()
            causes = _target_wide_causes(rows)
            for row in sorted(rows, key=lambda r: (r.target, severity[r.verdict.word], r.rid)):
                cause = _target_wide_cause(row, causes)
                if cause is None:
                    self._write_row(tr, row, known.get(row.rid))
                elif (row.target, cause) not in said:  # one cause, one line (not one per requirement)
                    said.add((row.target, cause))
                    stopped = sum(1 for other in rows if other.target == row.target and _target_wide_cause(other, causes) == cause)
                    line = secrets.mask(f"{ERROR:15} {row.target}  {stopped} requirement{'s' if stopped != 1 else ''}: {cause}")
                    tr.write_line(line if len(line) <= 300 else line[:297] + "...", red=True)
            counts = {word: sum(1 for r in rows if r.verdict.word == word) for word in VERDICTS}
            tr.write_line(", ".join(f"{n} {word}" for word, n in counts.items() if n) + " (requirement x target)")
            if self.status == NO_VERDICT:
                tr.write_line(f"no verdict (exit status {NO_VERDICT}): {counts[ERROR]} ERROR (requirement x target): the "
                              "harness or the device's reachability failed, not the device's conformance", red=True, bold=True)
        conflicts = self.conflict_rows()
        if conflicts:
            tr.write_sep("=", "where the vendor's pages disagree")
            for row, _, followed in conflicts:
                tr.write_line(secrets.mask(self.conflict_line(row, followed)))
        for kind, title in SUMMARY_NOTES.items():
            if self.notes.get(kind):
                alarming = kind == "security_finding"
                tr.write_sep("=", title, red=alarming, bold=alarming)
                for target, nodeid, text in self.notes[kind]:
                    tr.write_line(secrets.mask(f"{target}: {text}"), red=alarming)
        for line in self.stale:
            tr.write_line(secrets.mask(f"UNEXPECTED PASS {line}"), red=True)
        for line in self.expired:
            tr.write_line(secrets.mask(f"EXPIRED WAIVER {line}"), red=True)

    def _write_row(self, tr, row: Row, req) -> None:
        verdict = row.verdict
        if verdict.word == PASS:
            return
        said = self.waiver_text(row)  # a bare waiver of a WAIVED row needs no word more
        waived = f" ({said})" if verdict.waived and (said != "waived" or verdict.word not in (WAIVED, UNEXPECTED_PASS)) else ""
        line = secrets.mask(f"{verdict.word:15} {row.target}  {row.rid}{waived}: {req.text if req else ''}")  # before cutting
        red = verdict.word in (FAIL, UNEXPECTED_PASS, ERROR)
        tr.write_line(line if len(line) <= 200 else line[:197] + "...", red=red, yellow=not red)
        if verdict.word == UNEXPECTED_PASS:
            tr.write_line(secrets.mask(f"    {stale_line(row)}"))
            return
        for rule in self.rules.get((row.target, row.rid), []):
            tr.write_line(secrets.mask(f"    rule applied: {rule}"))
        reasons = verdict.reasons
        for reason in reasons[:TERMINAL_REASONS]:
            n = len(reason.checks)
            text = secrets.mask(f"    {reason.kind} ({n} check{'s' if n != 1 else ''}): {reason.reason}")  # before cutting
            if len(text) > 180:
                text = text[:177] + "..."
            tr.write_line(f"{text}  [{secrets.mask(check_names(reason.checks, 2))}]")
        if len(reasons) > TERMINAL_REASONS:
            tr.write_line(f"    ... {len(reasons) - TERMINAL_REASONS} more reasons: see the HTML report")


def _target_wide_causes(rows: list[Row]) -> dict[str, set[str]]:
    """Per target, the causes that stopped its checks wholesale: the target could not be tested at
    all (its one ERROR), or its device went away for good ("not run: ..." of every check after)."""
    causes: dict[str, set[str]] = {}
    for row in rows:
        for reason in row.verdict.reasons:
            if reason.kind == ERRORED and reason.reason.startswith("not run: "):
                causes.setdefault(row.target, set()).add(reason.reason.removeprefix("not run: "))
    return causes


def _target_wide_cause(row: Row, causes: dict[str, set[str]]) -> str | None:
    """The one target-wide cause this requirement's ERROR comes from, if that is all there is to it."""
    if row.verdict.word != ERROR:
        return None
    known = causes.get(row.target, set())
    said = set()
    for reason in row.verdict.reasons:
        if reason.kind != ERRORED:
            continue
        text = reason.reason.removeprefix("not run: ").removeprefix("setup error: ").removesuffix("...")
        # the first check's setup error tells the same cause, cut at another length
        said |= {cause for cause in known if cause.removesuffix("...").startswith(text) or text.startswith(cause.removesuffix("..."))} or {text}
    return said.pop() if len(said) == 1 and said <= known else None
