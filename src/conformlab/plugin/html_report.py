"""pytest-html additions: the title, a requirement column, and on top of the report the security
findings, notices, unexpected passes and the per-requirement verdict table (from the controller's
Reporting, summary.py). Every text added here passes through `secrets.mask`.
"""

from __future__ import annotations

import getpass
import html
import json
import re
import socket
from functools import cached_property
from pathlib import Path

import pytest

from conformlab import diff, secrets
from conformlab.plugin.summary import SUMMARY_NOTES, Reporting, check_names, properties
from conformlab.requirements import all_requirements
from conformlab.verdicts import ERROR, FAIL, FAILED, PASS, PROP_FAILED, UNEXPECTED_PASS, VERDICTS, WAIVED, Row

COLOURS = {PASS: "#1b7d3a", FAIL: "#b00020", UNEXPECTED_PASS: "#b00020", ERROR: "#6a1b9a", WAIVED: "#a66300",
           "PARTIAL": "#1f4e79", "NOT VERIFIED": "#666666", "NOT APPLICABLE": "#8a8a8a"}
HTML_CHECK_NAMES = 20  # check names per reason in the HTML report
TITLE_TARGETS = 3  # targets named in the report's title; more are counted
# The reader's first screen: pytest-html puts its environment table (Python, packages, plugins, targets)
# between the title and the summary. The page laid out as one column whose order CSS sets shows it after
# the summary instead, so the verdict per target opens the report; the results table stays last.
VERDICTS_FIRST_CSS = ("<style>body{display:flex;flex-direction:column}"
                      "#environment-header,#environment{order:1}#environment{align-self:flex-start}"
                      "#results-table,footer{order:2}</style>")


class HtmlReport:
    """pytest-html additions: title, requirement column, requirement table and findings on top."""

    def __init__(self, reporting: Reporting, targets):
        self.reporting = reporting
        self.targets = targets
        self.target_names = [t.name for t in targets]
        self.evidence: dict[tuple[str, str], str] = {}  # (target, requirement) -> the check with its exchanges

    def pytest_runtest_logreport(self, report):
        """Which passing check keeps each requirement's evidence (plugin/outcomes.py), per target."""
        props = properties(report)
        if report.when == "call" and props.get("evidence"):
            target = str(props.get("target", ["?"])[0])
            for rid in " ".join(props["evidence"]).split():
                self.evidence.setdefault((target, rid), report.nodeid)

    def pytest_html_report_title(self, report):
        # A short title: the verdict per target below it names every target, on the first screen.
        names = self.target_names
        shown = ", ".join(names) if len(names) <= TITLE_TARGETS else f"{names[0]} and {len(names) - 1} more targets"
        report.title = secrets.mask(f"conformlab: {shown}")

    def pytest_html_results_table_header(self, cells):
        cells.insert(2, '<th class="sortable" data-column-type="requirement">Requirement</th>')

    def pytest_html_results_table_row(self, report, cells):
        props = properties(report)
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
        self._baseline_comparison(prefix, session)  # the very top of the report ...
        prefix.insert(0, self._verdicts_per_target(session))  # ... after the verdict of each target
        reporting = self.reporting
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
        if reporting.stale:
            items = "".join(f"<li>UNEXPECTED PASS {esc(s)}</li>" for s in reporting.stale)
            prefix.append('<div style="border:2px solid #b00020;padding:8px"><h3>Unexpected passes: remove the waivers</h3>'
                          f"<ul>{items}</ul></div>")
        if reporting.expired:
            items = "".join(f"<li>EXPIRED WAIVER {esc(s)}</li>" for s in reporting.expired)
            prefix.append('<div style="border:2px solid #b00020;padding:8px"><h3>Expired waivers: remove or renew them</h3>'
                          f"<ul>{items}</ul></div>")
        conflicts = self._conflicts(esc)
        if conflicts:
            prefix.append(conflicts)
        rows = reporting.requirement_rows()
        if not rows:
            return
        known = all_requirements()
        counts = {word: sum(1 for r in rows if r.verdict.word == word) for word in VERDICTS}
        tally = ", ".join(f'<span style="color:{COLOURS[w]};font-weight:bold">{n} {w}</span>' for w, n in counts.items() if n)
        lines = []
        for row in rows:
            verdict, req = row.verdict, known.get(row.rid)
            checks = ", ".join(f"{n} {kind}" for kind, n in verdict.counts.items())
            shown = self.evidence.get((row.target, row.rid))
            evidence = f"<br><small>exchanges: see {esc(check_names([shown], 1))} below</small>" if shown else ""
            waived = f"<br><small>{esc(reporting.waiver_text(row))}</small>" if verdict.waived else ""
            waived += "".join(f"<br><small>{esc(line)}</small>" for line in self._judged_by(row))
            source = esc(f"{req.source}, {req.section}" if req else "")
            lines.append(f'<tr id="req-{esc(row.target)}-{esc(row.rid)}"><td>{esc(row.target)}</td><td><b>{esc(row.rid)}</b></td>'
                         f'<td style="color:{COLOURS[verdict.word]};font-weight:bold">{verdict.word}{waived}</td>'
                         f"<td>{esc(req.text if req else '')}<br><small>{source}</small></td><td>{esc(checks)}{evidence}</td>"
                         f"<td>{self._details(row, esc)}</td></tr>")
        prefix.append(f"<h2>Requirements</h2><p>{tally} (requirement x target)</p>"
                      '<table style="border-collapse:collapse" border="1" cellpadding="3">'
                      "<tr><th>Target</th><th>Requirement</th><th>Verdict</th><th>Document</th><th>Checks</th>"
                      "<th>Details</th></tr>" + "".join(lines) + "</table>")
        prefix.append(session.config.pluginmanager.get_plugin("conformlab-annotated").section())  # plugin/annotated.py

    @staticmethod
    def _baseline_comparison(prefix, session) -> None:
        """With --baseline: the comparison with the earlier run (conformlab.diff, made by the results
        plugin before pytest-html writes the report) on top: a heading, the count line, the changes."""
        results = session.config.pluginmanager.get_plugin("conformlab-results")
        comparison = getattr(results, "comparison", None)
        if comparison is None:
            return
        esc = lambda text: html.escape(secrets.mask(str(text)))  # noqa: E731 -- every text added is masked
        worse = diff.regressed(comparison)
        colour = COLOURS[FAIL] if worse else COLOURS["PARTIAL"] if comparison.changes else COLOURS[PASS]
        rows = []
        for change in comparison.changes:
            style = ' style="color:#b00020"' if change.kind == diff.REGRESSED else ""  # regressions in red
            if not change.item:
                requirement = "(whole target)"
            else:
                requirement = f"<b>{esc(change.item)}</b>" + (f"<br><small>{esc(change.text)}</small>" if change.text else "")
            rows.append(f'<tr{style} class="baseline-{esc(change.kind.lower())}">'
                        f"<td><b>{esc(change.kind)}</b></td><td>{esc(change.target)}</td><td>{requirement}</td>"
                        f"<td>{esc(change.old) or '&ndash;'}</td><td>{esc(change.new) or '&ndash;'}</td>"
                        f"<td>{esc(change.why)}</td></tr>")
        table = ('<table style="border-collapse:collapse" border="1" cellpadding="3"><tr><th>Group</th><th>Target</th>'
                 "<th>Requirement</th><th>Old</th><th>New</th><th>Why</th></tr>" + "".join(rows) + "</table>") if rows else ""
        prefix.insert(0, f'<div id="conformlab-baseline" style="border:3px solid {colour};padding:8px;margin:8px 0">'
                         f'<h2 style="margin:0">Compared with {esc(results.baseline_name)}</h2>'
                         f'<p style="color:{colour};font-weight:bold">{esc(diff.count_line(comparison))}</p>{table}</div>')

    def _verdicts_per_target(self, session) -> str:
        """What a reader needs first: per target, the device and what it says it is (the identity
        answer's documented keys: model, firmware), and how many requirements got each verdict."""
        esc = lambda text: html.escape(secrets.mask(str(text)))  # noqa: E731 -- every text added is masked
        results = session.config.pluginmanager.get_plugin("conformlab-results")
        said_of = getattr(results, "said", {}) or {}
        rows = self.reporting.requirement_rows()
        lines = []
        for target in self.targets:
            mine = [r for r in rows if r.target == target.name]
            counts = {word: sum(1 for r in mine if r.verdict.word == word) for word in VERDICTS}
            tally = ", ".join(f'<span style="color:{COLOURS[w]};font-weight:bold">{n} {w}</span>'
                              for w, n in counts.items() if n) or "no verdict"
            answer = (said_of.get(target.name, {}).get("identity") or {}).get("answer") or {}
            keys = target.profile.identity.keys if target.profile.identity else ()
            # The firmware first (what the rules were judged by), then the identity's plain values.
            firmware = said_of.get(target.name, {}).get("firmware") or {}
            said = [f"firmware {firmware['version']}" if firmware.get("version") else "",
                    f"built {firmware['built']}" if firmware.get("built") else ""]
            said += [f"{key}: {_short(answer[key], 40)}" for key in keys if key in answer
                     and not isinstance(answer[key], (dict, list)) and str(answer[key]) != firmware.get("version")]
            said = "; ".join(part for part in said if part) or "did not say"
            where = target.base_url or "bundled emulator"
            lines.append(f'<tr><td style="white-space:nowrap"><b>{esc(target.name)}</b></td>'
                         f"<td>{esc(target.profile.title)} at {esc(where)}</td><td>{esc(said)}</td><td>{tally}</td></tr>")
        return ('<h2>Verdict per target</h2><table id="conformlab-verdicts" style="border-collapse:collapse;font-size:90%" '
                'border="1" cellpadding="2"><tr><th>Target</th><th>Device</th><th>What it says it is</th>'
                "<th>Requirements</th></tr>" + "".join(lines) + "</table>")

    def _judged_by(self, row: Row) -> list[str]:
        """Beside a verdict: the reading the device follows where the vendor's pages disagree, and the
        firmware-dependent rules its checks judged by."""
        req = all_requirements().get(row.rid)
        lines = []
        if req is not None and req.conflict:
            followed = [r.name for r in req.conflict if r.name in self.reporting.followed.get((row.target, row.rid), ())]
            lines.append("CONFLICT: follows " + (" and ".join(followed) if followed else "no reading seen"))
        lines += [f"rule applied: {rule}" for rule in self.reporting.rules.get((row.target, row.rid), [])]
        return lines

    def _conflicts(self, esc) -> str:
        """Where the vendor's pages disagree (NOTES.md): per requirement both sentences, and per target
        the one the device follows; a CONFLICT entry instead of failing one side."""
        entries: dict[str, list] = {}
        for row, req, followed in self.reporting.conflict_rows():
            entries.setdefault(row.rid, [req, []])[1].append((row, followed))
        if not entries:
            return ""
        items = []
        for rid, (req, seen) in sorted(entries.items()):
            sides = "".join(f"<li><b>{esc(r.name)}</b> ({esc(r.source)}): &ldquo;{esc(r.text)}&rdquo;</li>" for r in req.conflict)
            verdicts = "".join(
                f'<li><a href="#req-{esc(row.target)}-{esc(rid)}">{esc(row.target)}</a>: '
                f'<span style="color:{COLOURS[row.verdict.word]};font-weight:bold">{esc(row.verdict.word)}</span>, '
                + (f"follows <b>{esc(' and '.join(r.name for r in followed))}</b>" if followed else "no reading seen")
                + "</li>" for row, followed in seen)
            items.append(f"<li><b>CONFLICT {esc(rid)}</b> ({esc(req.section)})<ul>{sides}</ul>"
                         f"<ul>{verdicts}</ul></li>")
        return ('<div id="conformlab-conflicts" style="border:2px solid #1f4e79;padding:8px;margin:8px 0">'
                '<h3 style="color:#1f4e79;margin:0">Where the vendor\'s pages disagree</h3>'
                "<p>Both readings are checked; the verdict says which one each device follows.</p>"
                f"<ul>{''.join(items)}</ul></div>")

    @staticmethod
    def _details(row: Row, esc) -> str:
        if row.verdict.word == UNEXPECTED_PASS:
            return esc("is waived but every check of it passed; remove the waiver")
        items = []
        for reason in row.verdict.reasons:
            what = "failed" if reason.kind == FAILED else reason.kind
            names = esc(check_names(reason.checks, HTML_CHECK_NAMES)) if reason.checks else ""
            items.append(f"<li><b>{esc(what)}</b> ({len(reason.checks)}): {esc(reason.reason)}"
                         + (f"<br><small>{names}</small>" if names else "") + "</li>")
        return f'<ul style="margin:0;padding-left:16px">{"".join(items)}</ul>' if items else ""

    # -- a report that can be mailed: no local path, user or host name; the verdicts first ----------
    # (pytest takes hooks only from names that start with pytest_; specname says which hook it is)

    @pytest.hookimpl(specname="pytest_html_results_summary", trylast=True)
    def pytest_html_results_summary_for_mail(self, prefix, summary, postfix, session):
        """After every other addition: no local path in the summary's blocks (a notice may name a
        journal file), none and no host name in pytest-html's environment table (pytest-metadata's
        stash, which it renders; a CI's variables may name its workspace), and the verdicts first."""
        for part in (prefix, summary, postfix):
            part[:] = [self._local_names.without_paths(text) for text in part]
        try:
            from pytest_metadata.plugin import metadata_key

            environment = session.config.stash[metadata_key]
        except (ImportError, KeyError):
            environment = {}
        for key, value in environment.items():
            environment[key] = self._local_names.value_without_names(value)
        prefix.append(VERDICTS_FIRST_CSS)

    def pytest_html_results_table_html(self, report, data):
        """A check's log without local names: pytest-xdist's worker line names the Python executable
        and a skip names the file it was raised in, both as absolute paths."""
        data[:] = [self._local_names.without_names(text) for text in data]

    @cached_property
    def _local_names(self) -> LocalNames:
        return LocalNames(self.reporting.config.rootpath)


def _short(value, limit: int = 80) -> str:
    """An identity value in one short line (an object as compact JSON)."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class LocalNames:
    """What a mailed report must not tell about the machine it was made on: the project's folder
    (paths in it become relative), the home folder (~), the user's name in pytest's temporary folders
    and the host's name."""

    def __init__(self, rootpath: Path):
        def whole(text: str) -> re.Pattern:  # a whole path or name, not a piece of a longer one
            return re.compile(r"(?<![\w.-])" + re.escape(text) + r"(?![\w.-])")

        self.paths: list[tuple[re.Pattern, str]] = []
        if len(str(rootpath)) > 1:
            self.paths += [(re.compile(r"(?<![\w.-])" + re.escape(f"{rootpath}/")), ""), (whole(str(rootpath)), ".")]
        if len(str(Path.home())) > 1:
            self.paths.append((whole(str(Path.home())), "~"))
        try:
            self.paths.append((whole(f"pytest-of-{getpass.getuser()}"), "pytest-of-USER"))
        except (KeyError, OSError):  # no user name to hide
            pass
        host = socket.gethostname()
        # The host's name as a word of a text; not in HTML, where a name like "table" would be markup.
        self.host = whole(host) if host and host != "localhost" else None

    def without_paths(self, text: str) -> str:
        for pattern, replacement in self.paths:
            text = pattern.sub(replacement, text)
        return text

    def without_names(self, text: str) -> str:
        text = self.without_paths(text)
        return self.host.sub("HOST", text) if self.host else text

    def value_without_names(self, value):
        """A value of pytest-metadata's table: a text, or a table of texts."""
        if isinstance(value, dict):
            return {key: self.value_without_names(item) for key, item in value.items()}
        return self.without_names(value) if isinstance(value, str) else value
