"""What a run tells its reader: the terminal summary, the HTML report's additions, the JUnit
global properties and the exit status, all from the per-requirement verdicts (conformlab.verdicts).

Registered by the plugin on every process of an active run ("conformlab-reporting",
"conformlab-html"); the verdicts, the JUnit properties and the exit status are the controller's.
Every text added here passes through `secrets.mask`.
"""

from __future__ import annotations

import html
from collections import defaultdict

import pytest

from conformlab import secrets
from conformlab.requirements import all_requirements
from conformlab.verdicts import (
    ERROR, ERRORED, FAIL, FAILED, NO_VERDICT, PASS, PROP_FAILED, UNEXPECTED_PASS, VERDICTS, WAIVED, Row, VerdictBook,
)

# Properties a check records for the run's summary (terminal and top of the HTML report), by title.
SUMMARY_NOTES = {"security_finding": "SECURITY FINDINGS", "notice": "notices", "pacing": "rate budget"}
COLOURS = {PASS: "#1b7d3a", FAIL: "#b00020", UNEXPECTED_PASS: "#b00020", ERROR: "#6a1b9a", WAIVED: "#a66300",
           "PARTIAL": "#1f4e79", "NOT VERIFIED": "#666666", "NOT APPLICABLE": "#8a8a8a"}
TERMINAL_REASONS = 4  # distinct reasons per requirement in the terminal (the HTML report has them all)
HTML_CHECK_NAMES = 20  # check names per reason in the HTML report


def _props(report) -> dict:
    props = defaultdict(list)
    for key, value in getattr(report, "user_properties", []):
        props[key].append(value)
    return props


def _is_controller(config) -> bool:
    return not hasattr(config, "workerinput")


def _short(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1]


def _names(checks, limit: int) -> str:
    shown = ", ".join(_short(c) for c in checks[:limit])
    return shown + (f" and {len(checks) - limit} more" if len(checks) > limit else "")


def stale_line(row: Row) -> str:
    return f"{row.target}: {row.rid} is waived but every check of it passed; remove the waiver"


class Reporting:
    """Per-requirement verdicts, security findings, notices and unexpected passes, for the terminal,
    the JUnit report and the gate."""

    def __init__(self, config, targets):
        self.config = config
        self.targets = {t.name: t for t in targets}
        self.book = VerdictBook({t.name: t.waive for t in targets})
        self.notes: dict[str, list[tuple[str, str, str]]] = defaultdict(list)  # kind -> (target, nodeid, text)
        self.status: int | None = None  # the exit status the verdicts give (controller, at the end)

    @property
    def findings(self) -> list[tuple[str, str, str]]:
        return self.notes["security_finding"]

    @property
    def stale(self) -> list[str]:
        """The waivers to remove: "<target>: <id> is waived but every check of it passed; ..."."""
        return [stale_line(row) for row in self.book.rows() if row.verdict.word == UNEXPECTED_PASS]

    def requirement_rows(self) -> list[Row]:
        return self.book.rows()

    def pytest_runtest_logreport(self, report):
        if report.when == "call":  # the teardown report carries the same properties again
            props = _props(report)
            target = props.get("target", ["?"])[0]
            for kind in SUMMARY_NOTES:
                for text in props.get(kind, []):
                    # The same words from several parametrizations of a check are said once.
                    if not any(t == target and said == text for t, _, said in self.notes[kind]):
                        self.notes[kind].append((target, report.nodeid, text))
        self.book.add(report)

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file and pytest-html its report
    def pytest_sessionfinish(self, session):
        if not _is_controller(self.config):
            return
        rows = self.book.rows()
        try:
            from _pytest.junitxml import xml_key

            xml = self.config.stash.get(xml_key, None)
        except ImportError:
            xml = None
        if xml is not None:
            for row in rows:
                xml.add_global_property(secrets.mask(f"verdict {row.target} {row.rid}"), row.verdict.word)
        self.status = self.book.exit_status(session.exitstatus)
        session.exitstatus = self.status

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
        for kind, title in SUMMARY_NOTES.items():
            if self.notes.get(kind):
                alarming = kind == "security_finding"
                tr.write_sep("=", title, red=alarming, bold=alarming)
                for target, nodeid, text in self.notes[kind]:
                    tr.write_line(secrets.mask(f"{target}: {text}"), red=alarming)
        for row in rows:
            if row.verdict.word == UNEXPECTED_PASS:
                tr.write_line(secrets.mask(f"UNEXPECTED PASS {stale_line(row)}"), red=True)

    @staticmethod
    def _write_row(tr, row: Row, req) -> None:
        verdict = row.verdict
        if verdict.word == PASS:
            return
        waived = " (waived)" if verdict.waived and verdict.word not in (WAIVED, UNEXPECTED_PASS) else ""
        line = secrets.mask(f"{verdict.word:15} {row.target}  {row.rid}{waived}: {req.text if req else ''}")  # before cutting
        red = verdict.word in (FAIL, UNEXPECTED_PASS, ERROR)
        tr.write_line(line if len(line) <= 200 else line[:197] + "...", red=red, yellow=not red)
        if verdict.word == UNEXPECTED_PASS:
            tr.write_line(secrets.mask(f"    {stale_line(row)}"))
            return
        reasons = verdict.reasons
        for reason in reasons[:TERMINAL_REASONS]:
            n = len(reason.checks)
            text = secrets.mask(f"    {reason.kind} ({n} check{'s' if n != 1 else ''}): {reason.reason}")  # before cutting
            if len(text) > 180:
                text = text[:177] + "..."
            tr.write_line(f"{text}  [{secrets.mask(_names(reason.checks, 2))}]")
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


class HtmlReport:
    """pytest-html additions: title, requirement column, requirement table and findings on top."""

    def __init__(self, config, targets):
        self.config = config
        self.target_names = [t.name for t in targets]

    def _reporting(self) -> Reporting:
        return self.config.pluginmanager.get_plugin("conformlab-reporting")

    def pytest_html_report_title(self, report):
        report.title = secrets.mask(f"conformlab: {', '.join(self.target_names)}")

    def pytest_html_results_table_header(self, cells):
        cells.insert(2, '<th class="sortable" data-column-type="requirement">Requirement</th>')

    def pytest_html_results_table_row(self, report, cells):
        props = _props(report)
        known = all_requirements()
        ids = " ".join(props.get("requirement", [])).split()
        failed = set(props.get(PROP_FAILED, []))
        titles = " | ".join(known[r].text for r in ids if r in known)
        shown = " ".join(f"<b>{html.escape(r)}</b>" if r in failed else html.escape(r) for r in ids)
        badge = ""
        if props.get("security_finding"):
            badge = ' <span style="background:#b00020;color:#fff;padding:1px 4px;font-weight:bold">SECURITY FINDING</span>'
        cells.insert(2, f'<td class="col-requirement" title="{html.escape(secrets.mask(titles))}">{secrets.mask(shown)}{badge}</td>')

    def pytest_html_results_summary(self, prefix, summary, postfix, session):
        reporting = self._reporting()
        esc = lambda text: html.escape(secrets.mask(str(text)))  # noqa: E731 -- every text added is masked
        if reporting.findings:
            items = "".join(f"<li><b>{esc(t)}</b>: {esc(text)} <small>({esc(n)})</small></li>"
                            for t, n, text in reporting.findings)
            prefix.append('<div style="border:3px solid #b00020;background:#fde7ea;padding:8px;margin:8px 0">'
                          f'<h2 style="color:#b00020;margin:0">Security findings ({len(reporting.findings)})</h2><ul>{items}</ul></div>')
        for kind, colour in (("notice", "#a66300"), ("pacing", "#1f4e79")):
            if reporting.notes.get(kind):
                items = "".join(f"<li><b>{esc(t)}</b>: {esc(text)}</li>" for t, _, text in reporting.notes[kind])
                prefix.append(f'<div style="border:2px solid {colour};padding:8px;margin:8px 0">'
                              f'<h3 style="color:{colour};margin:0">{SUMMARY_NOTES[kind].capitalize()}</h3><ul>{items}</ul></div>')
        rows = reporting.requirement_rows()
        stale = [stale_line(row) for row in rows if row.verdict.word == UNEXPECTED_PASS]
        if stale:
            items = "".join(f"<li>UNEXPECTED PASS {esc(s)}</li>" for s in stale)
            prefix.append('<div style="border:2px solid #b00020;padding:8px"><h3>Unexpected passes: remove the waivers</h3>'
                          f"<ul>{items}</ul></div>")
        if not rows:
            return
        known = all_requirements()
        counts = {word: sum(1 for r in rows if r.verdict.word == word) for word in VERDICTS}
        tally = ", ".join(f'<span style="color:{COLOURS[w]};font-weight:bold">{n} {w}</span>' for w, n in counts.items() if n)
        lines = []
        for row in rows:
            verdict, req = row.verdict, known.get(row.rid)
            checks = ", ".join(f"{n} {kind}" for kind, n in verdict.counts.items())
            waived = "<br><small>waived on this target</small>" if verdict.waived else ""
            source = esc(f"{req.source}, {req.section}" if req else "")
            lines.append(f'<tr><td>{esc(row.target)}</td><td><b>{esc(row.rid)}</b></td>'
                         f'<td style="color:{COLOURS[verdict.word]};font-weight:bold">{verdict.word}{waived}</td>'
                         f"<td>{esc(req.text if req else '')}<br><small>{source}</small></td><td>{esc(checks)}</td>"
                         f"<td>{self._details(row, esc)}</td></tr>")
        prefix.append(f"<h2>Requirements</h2><p>{tally} (requirement x target)</p>"
                      '<table style="border-collapse:collapse" border="1" cellpadding="3">'
                      "<tr><th>Target</th><th>Requirement</th><th>Verdict</th><th>Document</th><th>Checks</th>"
                      "<th>Details</th></tr>" + "".join(lines) + "</table>")

    @staticmethod
    def _details(row: Row, esc) -> str:
        if row.verdict.word == UNEXPECTED_PASS:
            return esc("is waived but every check of it passed; remove the waiver")
        items = []
        for reason in row.verdict.reasons:
            what = "failed" if reason.kind == FAILED else reason.kind
            names = esc(_names(reason.checks, HTML_CHECK_NAMES)) if reason.checks else ""
            items.append(f"<li><b>{esc(what)}</b> ({len(reason.checks)}): {esc(reason.reason)}"
                         + (f"<br><small>{names}</small>" if names else "") + "</li>")
        return f'<ul style="margin:0;padding-left:16px">{"".join(items)}</ul>' if items else ""
